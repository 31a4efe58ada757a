//! The guards of the OpenAI-compatible API: the PHI policy on provider embeddings and
//! tool definitions, refusals (wrong role, another tenant's conversation), a provider
//! failing in a stream and a client hanging up in one, each answered in OpenAI's shape and
//! audited once.

use codexcontinue_tests::eventually;

use crate::chat_fixture;

#[tokio::test]
async fn provider_embeddings_pass_the_phi_policy_off_the_premises() {
    // `cloud` is off the premises here; the tenant's policy is the default, `redact`.
    let chat = chat_fixture::setup().await;
    let key = chat.server.owner_key.clone();
    let http = reqwest::Client::new();
    let embed = |model: &'static str, input: serde_json::Value| {
        http.post(format!("{}/v1/embeddings", chat.server.url()))
            .bearer_auth(&key)
            .json(&serde_json::json!({"model": model, "input": input}))
            .send()
    };
    let vectors = |input: serde_json::Value| async {
        let answer = embed("cloud/echo-1", input).await.unwrap();
        assert_eq!(answer.status(), 200);
        answer.json::<serde_json::Value>().await.unwrap()
    };
    let answer = vectors(serde_json::json!([
        "two words",
        "write to jane.doe@example.com"
    ]))
    .await;
    assert_eq!(
        answer["data"][0]["embedding"],
        serde_json::json!([9.0, 2.0, 1.0])
    );
    assert_eq!(answer["data"].as_array().unwrap().len(), 2);
    assert_eq!(answer["usage"]["prompt_tokens"], 5);
    let sent = chat
        .upstream
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/embeddings")
        .expect("the provider was asked");
    assert_eq!(sent.body["model"], "echo-1");
    assert_eq!(
        sent.body["input"],
        serde_json::json!(["two words", "write to [EMAIL_1]"]),
        "the address stays on the premises"
    );
    let mut owner = chat.server.db.owner().await;
    let phi: bool = sqlx::query_scalar(
        "SELECT phi FROM audit_events WHERE action = '/v1/embeddings' AND resource_id = 'cloud/echo-1'",
    )
    .fetch_one(&mut owner)
    .await
    .unwrap();
    assert!(phi, "the call is marked as handling PHI");
    let db = &chat.server.db;
    eventually("the usage of the provider's embeddings", || async move {
        let mut owner = db.owner().await;
        let tokens: Option<i64> = sqlx::query_scalar(
            "SELECT sum(prompt_tokens)::bigint FROM usage_events WHERE model = 'cloud/echo-1'",
        )
        .fetch_one(&mut owner)
        .await
        .unwrap();
        (tokens == Some(5)).then_some(())
    })
    .await;

    let single = vectors(serde_json::json!("one")).await;
    assert_eq!(
        single["data"][0]["embedding"],
        serde_json::json!([3.0, 1.0, 1.0])
    );
    let no_provider = embed("nowhere/model", serde_json::json!("x"))
        .await
        .unwrap();
    assert_eq!(no_provider.status(), 404);
}

#[tokio::test]
async fn refusals_hang_ups_and_failed_streams_are_answered_and_audited_once() {
    // `cloud` is off the premises here, under the tenant's default policy (`redact`).
    let mut chat = chat_fixture::setup().await;
    let base = chat.server.url();
    let owner = chat.server.owner_key.clone();
    let mine = chat.conversation("cloud/echo-1").await;
    let http = reqwest::Client::new();
    let post = |key: &str, id: &str, headers: &[(&str, &str)], body: serde_json::Value| {
        let mut request = http
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(key)
            .header("x-request-id", id)
            .json(&body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };
    let hello = |model: &str, stream: bool| serde_json::json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hello"}]});

    // A viewer may not chat.
    let viewer =
        codexcontinue_tests::grpc::key_with_roles(chat.server.channel().await, &owner, &["viewer"])
            .await;
    let denied = post(&viewer, "rest-viewer", &[], hello("cloud/echo-1", false))
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
    let error: serde_json::Value = denied.json().await.unwrap();
    assert_eq!(error["error"]["type"], "permission_error");

    // Another tenant's conversation does not exist for this caller.
    let globex = chat.server.add_tenant("globex").await;
    let foreign = post(
        &globex,
        "rest-foreign",
        &[("x-codexcontinue-conversation", &mine)],
        hello("cloud/echo-1", false),
    )
    .await
    .unwrap();
    assert_eq!(foreign.status(), 404);

    // PHI in a tool definition keeps the call from a provider off the premises.
    let with_tools = serde_json::json!({
        "model": "cloud/echo-1",
        "messages": [{"role": "user", "content": "find it"}],
        "tools": [{"type": "function", "function": {
            "name": "lookup", "description": "Finds records of jane.doe@example.com"}}],
    });
    let refused = post(&owner, "rest-tools-phi", &[], with_tools)
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let error: serde_json::Value = refused.json().await.unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("email"),
        "{error}"
    );
    assert!(
        chat.upstream
            .requests()
            .iter()
            .all(|r| !r.body.to_string().contains("jane.doe")),
        "nothing with the address reached the provider"
    );

    // A provider failing before it answers: the stream carries an error event, no [DONE].
    let failed = post(&owner, "rest-broken", &[], hello("cloud/broken", true))
        .await
        .unwrap();
    assert_eq!(failed.status(), 200);
    let events = failed.text().await.unwrap();
    assert!(events.contains("\"error\""), "{events}");
    assert!(!events.contains("[DONE]"), "{events}");

    // A client hanging up in the middle of a long reply.
    let mut long = post(&owner, "rest-gone", &[], hello("cloud/slow", true))
        .await
        .unwrap();
    assert!(long.chunk().await.unwrap().is_some(), "the stream started");
    drop(long);

    let db = &chat.server.db;
    let outcome = |id: &'static str| async move {
        eventually(&format!("the audit event of {id}"), || async move {
            let mut conn = db.owner().await;
            let rows: Vec<(String, i32)> = sqlx::query_as(
                "SELECT outcome, status_code FROM audit_events WHERE request_id = $1",
            )
            .bind(id)
            .fetch_all(&mut conn)
            .await
            .unwrap();
            assert!(rows.len() <= 1, "{id} audited {} times", rows.len());
            rows.into_iter().next()
        })
        .await
    };
    assert_eq!(outcome("rest-viewer").await, ("denied".to_owned(), 7));
    assert_eq!(outcome("rest-foreign").await, ("failure".to_owned(), 5));
    assert_eq!(outcome("rest-tools-phi").await, ("failure".to_owned(), 9));
    assert_eq!(outcome("rest-broken").await, ("failure".to_owned(), 14));
    assert_eq!(outcome("rest-gone").await, ("failure".to_owned(), 1));
    eventually("the provider call to stop", || async {
        chat.upstream.saw_hang_up().then_some(())
    })
    .await;
}
