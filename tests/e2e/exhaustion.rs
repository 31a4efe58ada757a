//! The exhaustion paths of the public and outbound surfaces: login steps are limited per
//! address, calls refused by access control still count against the rate limits, a
//! provider cannot make the server hold an endless event or a huge answer, what a
//! provider says is not repeated to unauthenticated callers, and a replica at capacity
//! refuses more calls at once instead of queueing them.

use codexcontinue::pb::v1::{
    ListConversationsRequest, ListUsersRequest, StartLoginRequest, StreamMessageRequest,
    admin_service_client::AdminServiceClient, auth_service_client::AuthServiceClient,
};
use codexcontinue_tests::{
    TestServer,
    grpc::{authorized, key_with_roles},
};
use tonic::Code;

use super::chat_fixture;

#[tokio::test]
async fn login_steps_are_limited_per_address() {
    let server = TestServer::with_env(vec![
        (
            "CODEXCONTINUE_RATE_LIMIT__LOGIN_PER_ADDRESS_PER_MINUTE".into(),
            "1".into(),
        ),
        ("CODEXCONTINUE_RATE_LIMIT__LOGIN_BURST".into(), "3".into()),
    ])
    .await;
    let mut auth = AuthServiceClient::new(server.channel().await);
    let mut codes = Vec::new();
    for _ in 0..8 {
        let status = auth
            .start_login(StartLoginRequest {
                tenant: "no-such-tenant".into(),
                redirect_uri: String::new(),
            })
            .await
            .unwrap_err();
        codes.push(status.code());
        if status.code() == Code::ResourceExhausted {
            assert!(status.metadata().get("retry-after").is_some(), "{status:?}");
        }
    }
    assert_eq!(codes[0], Code::NotFound);
    assert_eq!(codes.last(), Some(&Code::ResourceExhausted), "{codes:?}");
    // The browser callback shares the address's budget.
    let callback = reqwest::get(format!(
        "{}/auth/callback?state=cc_state_x&code=y",
        server.url()
    ))
    .await
    .unwrap();
    assert_eq!(callback.status(), 429);
}

#[tokio::test]
async fn calls_refused_by_access_control_still_count() {
    let server = TestServer::with_env(vec![
        (
            "CODEXCONTINUE_RATE_LIMIT__PER_CALLER_PER_SECOND".into(),
            "0.01".into(),
        ),
        (
            "CODEXCONTINUE_RATE_LIMIT__PER_CALLER_BURST".into(),
            "3".into(),
        ),
    ])
    .await;
    let channel = server.channel().await;
    let viewer = key_with_roles(channel.clone(), &server.owner_key, &["viewer"]).await;
    let mut admin = AdminServiceClient::new(channel);
    let mut codes = Vec::new();
    for _ in 0..8 {
        let status = admin
            .list_users(authorized(&viewer, ListUsersRequest::default()))
            .await
            .unwrap_err();
        codes.push(status.code());
    }
    assert_eq!(codes[0], Code::PermissionDenied);
    assert_eq!(codes.last(), Some(&Code::ResourceExhausted), "{codes:?}");
}

#[tokio::test]
async fn a_provider_cannot_flood_the_server() {
    let mut chat = chat_fixture::setup().await;
    let conversation = chat.conversation("cloud/echo-1").await;
    for model in ["cloud/flood", "cloud/huge-error"] {
        let refused = chat.send(&conversation, "hello", model).await.unwrap_err();
        assert_ne!(refused.code(), Code::Internal, "{model}: {refused:?}");
        assert!(
            refused.message().len() < 2_000,
            "{model}: {} bytes",
            refused.message().len()
        );
    }
    // The server is none the worse.
    let reply = chat.send(&conversation, "still here", "").await.unwrap();
    assert_eq!(reply.reply.unwrap().content, "Echo: still here");
}

#[tokio::test]
async fn the_callback_does_not_repeat_what_the_provider_said() {
    let server = TestServer::start().await;
    let response = reqwest::get(format!(
        "{}/auth/callback?error=access_denied&error_description=%3Cscript%3Esecret-detail",
        server.url()
    ))
    .await
    .unwrap();
    assert_eq!(response.status(), 401);
    let body = response.text().await.unwrap();
    assert!(
        !body.contains("secret-detail") && !body.contains("<script>"),
        "{body}"
    );
}

#[tokio::test]
async fn chat_options_are_bounded_in_count_and_length() {
    use codexcontinue::pb::v1::{GenerationOptions, SendMessageRequest};
    use codexcontinue_tests::grpc::bad_field;

    let mut chat = chat_fixture::setup().await;
    let conversation = chat.conversation("cloud/echo-1").await;
    for (stop, field) in [
        (vec!["s".to_owned(); 17], "options.stop"),
        (vec!["s".repeat(257)], "options.stop[0]"),
    ] {
        let refused = chat
            .chat
            .send_message(authorized(
                &chat.server.owner_key,
                SendMessageRequest {
                    conversation_id: conversation.clone(),
                    content: "hello".into(),
                    options: Some(GenerationOptions {
                        stop,
                        ..GenerationOptions::default()
                    }),
                    idempotency_key: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert_eq!(bad_field(&refused), field);
    }

    let http = reqwest::Client::new();
    let tool = serde_json::json!({"type": "function", "function": {"name": "t"}});
    for (extra, param) in [
        (serde_json::json!({"tools": vec![tool; 129]}), "tools"),
        (serde_json::json!({"stop": ["x".repeat(257)]}), "stop"),
    ] {
        let mut body = serde_json::json!({
            "model": "cloud/echo-1",
            "messages": [{"role": "user", "content": "hello"}],
        });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let refused = http
            .post(format!("{}/v1/chat/completions", chat.server.url()))
            .bearer_auth(&chat.server.owner_key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 400, "{param}");
        let error: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(error["error"]["param"], param);
    }
}

#[tokio::test]
async fn an_identity_provider_cannot_flood_the_server() {
    use codexcontinue::pb::v1::{IdentityProvider, SetIdentityProviderRequest};

    // A "provider" whose discovery document is 8 MiB of whitespace-padded JSON.
    let app = axum::Router::new().route(
        "/.well-known/openid-configuration",
        axum::routing::get(|| async { format!("{{{}}}", " ".repeat(8 << 20)) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let server = TestServer::start().await;
    AdminServiceClient::new(server.channel().await)
        .set_identity_provider(authorized(
            &server.owner_key,
            SetIdentityProviderRequest {
                identity_provider: Some(IdentityProvider {
                    issuer_url: issuer,
                    client_id: "codexcontinue".into(),
                    allowed_email_domains: vec!["*".into()],
                    ..IdentityProvider::default()
                }),
                client_secret: "secret".into(),
            },
        ))
        .await
        .unwrap();
    let refused = AuthServiceClient::new(server.channel().await)
        .start_login(StartLoginRequest {
            tenant: "acme".into(),
            redirect_uri: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(!refused.message().contains("127.0.0.1"), "{refused:?}");
    assert!(
        server.logs().contains("larger than"),
        "the cause is in the log"
    );
}

#[tokio::test]
async fn a_replica_at_capacity_refuses_more_calls_at_once_and_records_them() {
    let mut chat = chat_fixture::setup_with(vec![(
        "CODEXCONTINUE_SERVER__MAX_CONCURRENT_CALLS".into(),
        "1".into(),
    )])
    .await;
    let conversation = chat.conversation("cloud/slow").await;
    // A long streamed reply holds the one place while it runs.
    let mut stream = chat
        .chat
        .stream_message(authorized(
            &chat.server.owner_key,
            StreamMessageRequest {
                conversation_id: conversation.clone(),
                content: "tell me everything".into(),
                ..StreamMessageRequest::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    stream.message().await.unwrap().expect("the stream started");

    let refused = chat
        .chat
        .list_conversations(authorized(
            &chat.server.owner_key,
            ListConversationsRequest::default(),
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(refused.metadata().get("retry-after").unwrap(), "1");
    let rest = reqwest::Client::new()
        .get(format!("{}/v1/models", chat.server.url()))
        .bearer_auth(&chat.server.owner_key)
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), reqwest::StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(rest.headers()["retry-after"], "1");
    let body: serde_json::Value = rest.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");

    // Both refusals were audited, before anyone was authenticated.
    let shed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events
         WHERE outcome = 'denied' AND status_code = 8
           AND action IN ('/codexcontinue.v1.ChatService/ListConversations', '/v1/models')",
    )
    .fetch_one(&mut chat.server.db.owner().await)
    .await
    .unwrap();
    assert_eq!(shed, 2);

    // Once the stream ends its place is free again.
    drop(stream);
    let mut attempts = 0;
    loop {
        let listed = chat
            .chat
            .list_conversations(authorized(
                &chat.server.owner_key,
                ListConversationsRequest::default(),
            ))
            .await;
        match listed {
            Ok(_) => break,
            Err(status) if status.code() == Code::ResourceExhausted && attempts < 100 => {
                attempts += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(status) => panic!("the place was not freed: {status:?}"),
        }
    }
}
