//! Routing and accounting of chat calls: aliases with retries and fallback, the circuit
//! breaker, usage with prices and budgets, idempotent retries.

use codexcontinue::pb::v1::{
    Budget, BudgetPeriod, DeleteConversationRequest, GenerationOptions, GetUsageReportRequest,
    ListBudgetsRequest, ListModelRoutesRequest, PhiPolicy, SendMessageRequest, SetBudgetRequest,
    StreamMessageRequest, reply_chunk,
};
use codexcontinue_tests::grpc::authorized;
use tonic::Code;
use tonic_types::StatusExt;

use super::chat_fixture::{Chat, Target, set_provider, set_route, setup, setup_with};

#[tokio::test]
async fn aliases_retry_retryable_failures_and_fall_back_through_their_targets() {
    let mut t = setup().await;
    let key = t.server.owner_key.clone();
    let base = t.upstream.openai_base();
    set_provider(&mut t.admin, &key, "onprem", &base, true).await;
    let routes: [(&str, &[Target], i32); 4] = [
        (
            "default",
            &[("cloud", "rate-limited"), ("cloud", "echo-1")],
            0,
        ),
        ("steady", &[("cloud", "flaky")], 1),
        ("fragile", &[("cloud", "broken")], 0),
        ("mixed", &[("cloud", "echo-1"), ("onprem", "echo-1")], 0),
    ];
    for (alias, targets, retries) in routes {
        set_route(&mut t.admin, &key, alias, targets, false, retries)
            .await
            .unwrap();
    }
    let private = set_route(
        &mut t.admin,
        &key,
        "private",
        &[("cloud", "echo-1")],
        true,
        0,
    )
    .await
    .unwrap_err();
    assert_eq!(
        private
            .get_error_details()
            .bad_request()
            .unwrap()
            .field_violations[0]
            .field,
        "route.targets"
    );
    set_route(
        &mut t.admin,
        &key,
        "private",
        &[("onprem", "echo-1")],
        true,
        0,
    )
    .await
    .unwrap();
    let aliases: Vec<String> = t
        .admin
        .list_model_routes(authorized(&key, ListModelRoutesRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .routes
        .into_iter()
        .map(|r| r.alias)
        .collect();
    assert_eq!(
        aliases,
        ["default", "fragile", "mixed", "private", "steady"]
    );

    let conversation = t.conversation("default").await;
    let reply = t
        .send(&conversation, "hi", "")
        .await
        .unwrap()
        .reply
        .unwrap();
    assert_eq!(
        (reply.content.as_str(), reply.model_used.as_str()),
        ("Echo: hi", "cloud/echo-1"),
        "fell back past the rate-limited target"
    );
    let models: Vec<String> = t
        .upstream
        .requests()
        .iter()
        .map(|r| r.body["model"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(models, ["rate-limited", "echo-1"]);

    let reply = t
        .send(&conversation, "hi", "steady")
        .await
        .unwrap()
        .reply
        .unwrap();
    assert_eq!(reply.model_used, "cloud/flaky", "retried once after a 503");
    let broken = t.send(&conversation, "hi", "fragile").await.unwrap_err();
    assert_eq!(broken.code(), Code::Unavailable);
    let unknown = t.send(&conversation, "hi", "turbo").await.unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument);
    assert_eq!(
        unknown
            .get_error_details()
            .bad_request()
            .unwrap()
            .field_violations[0]
            .field,
        "options.model"
    );
    assert!(
        unknown.message().contains("\"turbo\"") && unknown.message().contains("steady"),
        "{}",
        unknown.message()
    );

    // With PHI refused for providers off the premises, a mixed alias answers on the premises.
    t.set_tenant_phi_policy(PhiPolicy::Refuse).await;
    let reply = t
        .send(&conversation, "my SSN is 219-09-9999", "mixed")
        .await
        .unwrap()
        .reply
        .unwrap();
    assert_eq!(reply.model_used, "onprem/echo-1");
    let private = t
        .send(&conversation, "my SSN is 219-09-9999", "private")
        .await
        .unwrap()
        .reply
        .unwrap();
    assert_eq!(private.content, "Echo: my SSN is 219-09-9999");
}

#[tokio::test]
async fn a_failing_provider_is_skipped_once_its_circuit_opens() {
    let mut t = setup().await;
    let key = t.server.owner_key.clone();
    let base = t.upstream.openai_base();
    set_provider(&mut t.admin, &key, "onprem", &base, true).await;
    set_route(
        &mut t.admin,
        &key,
        "guarded",
        &[("cloud", "broken"), ("onprem", "echo-1")],
        false,
        0,
    )
    .await
    .unwrap();
    let conversation = t.conversation("guarded").await;
    let broken_calls = |t: &Chat| {
        t.upstream
            .requests()
            .iter()
            .filter(|r| r.body["model"] == "broken")
            .count()
    };
    for n in 1..=5 {
        let reply = t
            .send(&conversation, "hi", "")
            .await
            .unwrap()
            .reply
            .unwrap();
        assert_eq!(reply.model_used, "onprem/echo-1");
        assert_eq!(broken_calls(&t), n, "tried the failing provider first");
    }
    let reply = t
        .send(&conversation, "hi", "")
        .await
        .unwrap()
        .reply
        .unwrap();
    assert_eq!(reply.model_used, "onprem/echo-1");
    assert_eq!(broken_calls(&t), 5, "the open circuit skipped it");
}

/// The model that answered `hi` in `conversation`.
async fn model_used(t: &mut Chat, conversation: &str) -> String {
    t.send(conversation, "hi", "")
        .await
        .unwrap()
        .reply
        .unwrap()
        .model_used
}

#[tokio::test]
async fn an_open_circuit_lets_one_probe_through_and_closes_when_it_answers() {
    let env = |key: &str, value: &str| {
        (
            format!("CODEXCONTINUE_LLM__BREAKER__{key}"),
            value.to_owned(),
        )
    };
    let mut t = setup_with(vec![env("FAILURES", "2"), env("OPEN_FOR", "1s")]).await;
    let key = t.server.owner_key.clone();
    let base = t.upstream.openai_base();
    set_provider(&mut t.admin, &key, "onprem", &base, true).await;
    set_route(
        &mut t.admin,
        &key,
        "guarded",
        &[("cloud", "ailing"), ("onprem", "echo-1")],
        false,
        0,
    )
    .await
    .unwrap();
    let conversation = t.conversation("guarded").await;
    let ailing_calls = |t: &Chat| {
        t.upstream
            .requests()
            .iter()
            .filter(|r| r.body["model"] == "ailing")
            .count()
    };
    for _ in 0..2 {
        assert_eq!(model_used(&mut t, &conversation).await, "onprem/echo-1");
    }
    assert_eq!(model_used(&mut t, &conversation).await, "onprem/echo-1");
    assert_eq!(
        ailing_calls(&t),
        2,
        "the open circuit skipped the third call"
    );

    // Once open_for is up, one call probes; it fails, so the circuit opens again at once.
    let deadline = tokio::time::Instant::now() + codexcontinue_tests::WAIT_LIMIT;
    while ailing_calls(&t) < 3 {
        assert!(tokio::time::Instant::now() < deadline, "no probe came");
        assert_eq!(model_used(&mut t, &conversation).await, "onprem/echo-1");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(model_used(&mut t, &conversation).await, "onprem/echo-1");
    assert_eq!(
        ailing_calls(&t),
        3,
        "the failed probe opened the circuit again"
    );

    // The provider recovers: the next probe succeeds and closes the circuit.
    t.upstream.heal();
    while model_used(&mut t, &conversation).await != "cloud/ailing" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no probe found the provider answering"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        model_used(&mut t, &conversation).await,
        "cloud/ailing",
        "closed again"
    );

    let metrics = codexcontinue_tests::metrics::scrape(&t.server).await;
    let transitions = |to: &str| {
        codexcontinue_tests::metrics::value(
            &metrics,
            &format!("llm_breaker_transitions_total{{to=\"{to}\"}}"),
        )
    };
    assert_eq!(transitions("open"), 2, "{metrics}");
    assert!(transitions("half_open") >= 2, "{metrics}");
    assert_eq!(transitions("closed"), 1, "{metrics}");
}

#[tokio::test]
async fn usage_is_priced_and_reported_and_spent_budgets_refuse_calls() {
    let price = |field: &str, value: &str| {
        (
            format!("CODEXCONTINUE_LLM__PRICES__ECHO-1__{field}"),
            value.to_owned(),
        )
    };
    let mut t = setup_with(vec![
        price("PROMPT_PER_MILLION", "1000000"),
        price("COMPLETION_PER_MILLION", "2000000"),
    ])
    .await;
    let key = t.server.owner_key.clone();
    let conversation = t.conversation("cloud/echo-1").await;
    let mut spent = 0;
    for text in ["one two three", "four five"] {
        let reply = t
            .send(&conversation, text, "")
            .await
            .unwrap()
            .reply
            .unwrap();
        let usage = reply.usage.unwrap();
        assert_eq!(
            usage.cost_micros,
            usage.prompt_tokens + 2 * usage.completion_tokens
        );
        spent += usage.total_tokens;
    }
    let report = t
        .admin
        .get_usage_report(authorized(&key, GetUsageReportRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.rows.len(), 1);
    let row = &report.rows[0];
    assert_eq!((row.model.as_str(), row.requests), ("cloud/echo-1", 2));
    assert_eq!(row.usage.as_ref().unwrap().total_tokens, spent);
    assert_eq!(report.total.unwrap().total_tokens, spent);

    // The whole tenant may use what it already used today: the next call is refused.
    let set = |limit: i64, period: BudgetPeriod, user: &str| SetBudgetRequest {
        budget: Some(Budget {
            user_id: user.into(),
            period: period.into(),
            token_limit: limit,
            tokens_used: 0,
        }),
    };
    t.admin
        .set_budget(authorized(&key, set(spent, BudgetPeriod::Day, "")))
        .await
        .unwrap();
    let budgets = t
        .admin
        .list_budgets(authorized(&key, ListBudgetsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .budgets;
    assert_eq!((budgets.len(), budgets[0].tokens_used), (1, spent));
    let refused = t.send(&conversation, "six", "").await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused.message().contains("budget per day"),
        "{}",
        refused.message()
    );
    for (bad, field) in [
        (set(10, BudgetPeriod::Unspecified, ""), "budget.period"),
        (set(10, BudgetPeriod::Day, "not-a-user"), "budget.user_id"),
        (set(-1, BudgetPeriod::Month, ""), "budget.token_limit"),
    ] {
        let status = t.admin.set_budget(authorized(&key, bad)).await.unwrap_err();
        assert_eq!(
            status
                .get_error_details()
                .bad_request()
                .unwrap()
                .field_violations[0]
                .field,
            field
        );
    }
    t.admin
        .set_budget(authorized(&key, set(0, BudgetPeriod::Day, "")))
        .await
        .unwrap();
    t.send(&conversation, "six", "").await.unwrap();

    // Usage outlives the conversation it came from.
    t.chat
        .delete_conversation(authorized(
            &key,
            DeleteConversationRequest {
                conversation_id: conversation,
            },
        ))
        .await
        .unwrap();
    let report = t
        .admin
        .get_usage_report(authorized(&key, GetUsageReportRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.rows[0].requests, 3);
}

#[tokio::test]
async fn a_retried_call_with_the_same_idempotency_key_is_answered_once() {
    let mut t = setup().await;
    let key = t.server.owner_key.clone();
    let conversation = t.conversation("cloud/echo-1").await;
    let send = |content: &str, model: &str, idempotency_key: &str| {
        authorized(
            &key,
            SendMessageRequest {
                conversation_id: conversation.clone(),
                content: content.into(),
                options: Some(GenerationOptions {
                    model: model.into(),
                    ..GenerationOptions::default()
                }),
                idempotency_key: idempotency_key.into(),
            },
        )
    };
    let first = t
        .chat
        .send_message(send("once", "", "k-1"))
        .await
        .unwrap()
        .into_inner();
    let again = t
        .chat
        .send_message(send("once", "", "k-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        first.reply.as_ref().unwrap().id,
        again.reply.as_ref().unwrap().id
    );
    assert_eq!(again.reply.unwrap().content, "Echo: once");
    assert_eq!(t.upstream.requests().len(), 1, "generated once");
    let mut stream = t
        .chat
        .stream_message(authorized(
            &key,
            StreamMessageRequest {
                conversation_id: conversation.clone(),
                content: "once".into(),
                options: None,
                idempotency_key: "k-1".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let mut replayed = String::new();
    let mut reply_id = String::new();
    while let Some(message) = stream.message().await.unwrap() {
        match message.chunk.unwrap().event.unwrap() {
            reply_chunk::Event::Started(s) => reply_id = s.reply_message_id,
            reply_chunk::Event::Delta(d) => replayed.push_str(&d),
            reply_chunk::Event::Completed(_) => {}
            other => panic!("this profile offers no tools: {other:?}"),
        }
    }
    assert_eq!(
        (replayed.as_str(), reply_id.as_str()),
        ("Echo: once", first.reply.unwrap().id.as_str())
    );
    assert_eq!(t.upstream.requests().len(), 1);

    // A failed call releases its key; a malformed key is refused.
    let failed = t
        .chat
        .send_message(send("twice", "cloud/broken", "k-2"))
        .await
        .unwrap_err();
    assert_eq!(failed.code(), Code::Unavailable);
    t.chat.send_message(send("twice", "", "k-2")).await.unwrap();
    let bad = t
        .chat
        .send_message(send("x", "", "has spaces"))
        .await
        .unwrap_err();
    assert_eq!(
        bad.get_error_details()
            .bad_request()
            .unwrap()
            .field_violations[0]
            .field,
        "idempotency_key"
    );

    // While the first call runs, a retry is told to wait.
    let _running = t
        .chat
        .stream_message(authorized(
            &key,
            StreamMessageRequest {
                conversation_id: conversation.clone(),
                content: "long".into(),
                options: Some(GenerationOptions {
                    model: "cloud/slow".into(),
                    ..GenerationOptions::default()
                }),
                idempotency_key: "k-3".into(),
            },
        ))
        .await
        .unwrap();
    let busy = t
        .chat
        .send_message(send("long", "cloud/slow", "k-3"))
        .await
        .unwrap_err();
    assert_eq!(busy.code(), Code::Aborted, "{busy:?}");

    // A call dropped while it waits for the model (its deadline passed) releases its key:
    // a retry runs at once instead of being told to wait for a day.
    let mut impatient = send("stalled", "cloud/stall", "k-4");
    impatient.set_timeout(std::time::Duration::from_millis(300));
    let gave_up = t.chat.send_message(impatient).await.unwrap_err();
    assert!(
        matches!(gave_up.code(), Code::Cancelled | Code::DeadlineExceeded),
        "{gave_up:?}"
    );
    let retried = codexcontinue_tests::eventually("the dropped call's key to be released", || {
        let mut chat = t.chat.clone();
        let request = send("stalled", "", "k-4");
        async move {
            match chat.send_message(request).await {
                Ok(answer) => Some(answer.into_inner()),
                Err(status) if status.code() == Code::Aborted => None,
                Err(status) => panic!("{status:?}"),
            }
        }
    })
    .await;
    assert_eq!(retried.reply.unwrap().content, "Echo: stalled");
}
