//! The OpenAI-compatible REST API: the official OpenAI Python SDK as the client (models,
//! whole and streamed chat through an on-premises provider, embeddings, a wrong key, bad
//! requests, the rate limit), and the audit trail: every REST call recorded once, with
//! the fields its gRPC twin records.

use codexcontinue::pb::v1::{
    EmbedRequest, GenerationOptions, SendMessageRequest, model_service_client::ModelServiceClient,
};
use codexcontinue_tests::{
    TestEnv, TestServer, eventually, grpc::authorized, models::embedding_model_env,
};
use sqlx::Row;

use crate::chat_fixture::{self, Chat};

/// A chat server that also serves the embedding model, with the alias `team` on an
/// on-premises provider answering from the test upstream.
async fn setup() -> Chat {
    let mut chat = chat_fixture::setup_with(embedding_model_env()).await;
    chat_fixture::set_provider(
        &mut chat.admin,
        &chat.server.owner_key,
        "cloud",
        &chat.upstream.openai_base(),
        true,
    )
    .await;
    chat_fixture::set_route(
        &mut chat.admin,
        &chat.server.owner_key,
        "team",
        &[("cloud", "echo-1")],
        false,
        0,
    )
    .await
    .expect("route");
    chat
}

/// Runs the SDK script in `mode` against `server` with `key`.
async fn run_sdk(server: &TestServer, key: &str, mode: &str) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/external/openai_client.py");
    let output = tokio::process::Command::new(TestEnv::python())
        .arg(script)
        .arg(format!("{}/v1", server.url()))
        .arg(key)
        .arg(mode)
        .output()
        .await
        .expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        server.logs()
    );
    stdout
}

#[tokio::test]
async fn the_official_openai_sdk_lists_chats_streams_embeds_and_gets_openai_errors() {
    let chat = setup().await;
    let stdout = run_sdk(&chat.server, &chat.server.owner_key, "main").await;
    for line in [
        "ok: model retrieved",
        "ok: whole reply: 'Echo: Hello there'",
        "ok: streamed reply",
        "ok: streamed usage",
        "ok: tool call",
        "ok: streamed tool call",
        "ok: answer after the tool: 'Tool said: paid on May 3'",
        "ok: base64 embeddings equal the floats",
        "ok: wrong key: AuthenticationError",
        "ok: bad request names 'n'",
        "ok: bad request names 'messages'",
        "ok: bad request names 'model'",
        "ok: bad request names 'temperature'",
        "ok: unknown model: NotFoundError",
    ] {
        assert!(stdout.contains(line), "{line} missing from:\n{stdout}");
    }
    // The prompt reached the provider as the SDK sent it, after the profile's instructions.
    let sent = chat
        .upstream
        .requests()
        .into_iter()
        .find(|r| r.body["messages"].to_string().contains("Hello there"))
        .expect("the whole reply was asked for");
    let roles: Vec<_> = sent.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(roles, ["system", "system", "user"]);
    assert_eq!(sent.body["max_tokens"], 50);
    // Usage is accounted for stateless calls too (in the background): one event per chat
    // completion, no more.
    let db = &chat.server.db;
    eventually("the usage of the five chat completions", || async move {
        let mut owner = db.owner().await;
        let used: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM usage_events WHERE model = 'cloud/echo-1' AND completion_tokens > 0",
        )
        .fetch_one(&mut owner)
        .await
        .unwrap();
        assert!(used <= 5, "{used} usage events");
        (used == 5).then_some(())
    })
    .await;
    // The tool call and its answer went back to the provider as OpenAI has them.
    let after_tool = chat
        .upstream
        .requests()
        .into_iter()
        .find(|r| r.body["messages"].to_string().contains("paid on May 3"))
        .expect("the answer after the tool was asked for");
    let messages = after_tool.body["messages"].as_array().unwrap();
    let call = &messages[messages.len() - 2];
    assert_eq!(call["tool_calls"][0]["id"], "call_test_1");
    assert_eq!(call["tool_calls"][0]["function"]["name"], "lookup");
    assert_eq!(messages[messages.len() - 1]["tool_call_id"], "call_test_1");
    assert_eq!(after_tool.body["tools"][0]["function"]["name"], "lookup");
}

#[tokio::test]
async fn the_sdk_gets_a_rate_limit_error_with_retry_after() {
    let server = TestServer::with_env(vec![
        (
            "CODEXCONTINUE_RATE_LIMIT__PER_CALLER_BURST".into(),
            "3".into(),
        ),
        (
            "CODEXCONTINUE_RATE_LIMIT__PER_CALLER_PER_SECOND".into(),
            "0.01".into(),
        ),
    ])
    .await;
    let stdout = run_sdk(&server, &server.owner_key, "rate-limit").await;
    assert!(
        stdout.contains("ok: rate limited: RateLimitError"),
        "{stdout}"
    );
}

/// The audit events of the calls made with request id `id`.
async fn events_of(server: &TestServer, id: &str) -> Vec<sqlx::postgres::PgRow> {
    let mut owner = server.db.owner().await;
    sqlx::query(
        "SELECT action, actor_kind, actor_id, resource_type, resource_id, outcome, status_code,
                client_address, user_agent, phi, details
           FROM audit_events WHERE request_id = $1",
    )
    .bind(id)
    .fetch_all(&mut owner)
    .await
    .unwrap()
}

/// Asserts that `rest` and `grpc` agree on every field but the action.
fn same_fields(rest: &sqlx::postgres::PgRow, grpc: &sqlx::postgres::PgRow) {
    for column in [
        "actor_kind",
        "actor_id",
        "resource_type",
        "resource_id",
        "outcome",
        "client_address",
    ] {
        assert_eq!(
            rest.get::<String, _>(column),
            grpc.get::<String, _>(column),
            "{column}"
        );
    }
    assert_eq!(
        rest.get::<i32, _>("status_code"),
        grpc.get::<i32, _>("status_code")
    );
    assert_eq!(rest.get::<bool, _>("phi"), grpc.get::<bool, _>("phi"));
    assert_eq!(
        rest.get::<serde_json::Value, _>("details"),
        grpc.get::<serde_json::Value, _>("details")
    );
    assert!(!rest.get::<String, _>("user_agent").is_empty());
}

#[tokio::test]
async fn every_rest_call_is_audited_once_with_its_grpc_twins_fields() {
    let mut chat = setup().await;
    let key = chat.server.owner_key.clone();
    let base = chat.server.url();
    let http = reqwest::Client::builder()
        .user_agent("codexcontinue-e2e")
        .build()
        .unwrap();
    let conversation = chat.conversation("team").await;

    // A chat turn in a conversation, streamed over REST and sent over gRPC.
    let streamed = http
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(&key)
        .header("x-request-id", "rest-chat")
        .header("x-codexcontinue-conversation", &conversation)
        .json(&serde_json::json!({
            "model": "team",
            "stream": true,
            "messages": [{"role": "user", "content": "write to jane.doe@example.com"}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status(), 200);
    let body = streamed.text().await.unwrap();
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    assert!(
        body.contains("\"content\":\" jane.doe@example.com\""),
        "{body}"
    );
    let mut request = authorized(
        &key,
        SendMessageRequest {
            conversation_id: conversation.clone(),
            content: "write to jane.doe@example.com".into(),
            options: Some(GenerationOptions::default()),
            idempotency_key: String::new(),
        },
    );
    request
        .metadata_mut()
        .insert("x-request-id", "grpc-chat".parse().unwrap());
    chat.chat.send_message(request).await.unwrap();
    // The REST turn was stored in the conversation like the gRPC one.
    let mut owner = chat.server.db.owner().await;
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM messages WHERE conversation_id = $1::uuid")
            .bind(&conversation)
            .fetch_one(&mut owner)
            .await
            .unwrap();
    assert_eq!(stored, 4);

    // Embeddings over both.
    let embedded = http
        .post(format!("{base}/v1/embeddings"))
        .bearer_auth(&key)
        .header("x-request-id", "rest-embed")
        .json(&serde_json::json!({"model": "minilm-l6", "input": "a text"}))
        .send()
        .await
        .unwrap();
    assert_eq!(embedded.status(), 200);
    let mut models = ModelServiceClient::new(chat.server.channel().await);
    let mut request = authorized(
        &key,
        EmbedRequest {
            model: "minilm-l6".into(),
            texts: vec!["a text".into()],
        },
    );
    request
        .metadata_mut()
        .insert("x-request-id", "grpc-embed".parse().unwrap());
    models.embed(request).await.unwrap();

    // A refusal: no credential.
    let refused = http
        .get(format!("{base}/v1/models"))
        .header("x-request-id", "rest-refused")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let error: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["type"], "authentication_error");

    for (rest, grpc, action) in [
        ("rest-chat", "grpc-chat", "/v1/chat/completions"),
        ("rest-embed", "grpc-embed", "/v1/embeddings"),
    ] {
        let rest_events = events_of(&chat.server, rest).await;
        let grpc_events = events_of(&chat.server, grpc).await;
        assert_eq!(rest_events.len(), 1, "{rest} audited once");
        assert_eq!(grpc_events.len(), 1, "{grpc} audited once");
        assert_eq!(rest_events[0].get::<String, _>("action"), action);
        same_fields(&rest_events[0], &grpc_events[0]);
    }
    let chat_event = &events_of(&chat.server, "rest-chat").await[0];
    assert_eq!(chat_event.get::<String, _>("resource_id"), conversation);
    assert_eq!(chat_event.get::<String, _>("outcome"), "success");
    assert!(chat_event.get::<bool, _>("phi"), "an email address is PHI");
    // The calls are counted on /metrics under service `openai`, by route and status.
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for labels in [
        r#"grpc_type="http",grpc_service="openai",grpc_method="/v1/chat/completions",grpc_code="OK""#,
        r#"grpc_type="http",grpc_service="openai",grpc_method="/v1/embeddings",grpc_code="OK""#,
        r#"grpc_type="http",grpc_service="openai",grpc_method="/v1/models",grpc_code="UNAUTHENTICATED""#,
    ] {
        assert!(metrics.contains(labels), "{labels} not in:\n{metrics}");
    }
    let refusal = events_of(&chat.server, "rest-refused").await;
    assert_eq!(refusal.len(), 1);
    assert_eq!(refusal[0].get::<String, _>("outcome"), "denied");
    assert_eq!(refusal[0].get::<String, _>("actor_kind"), "anonymous");
}
