//! The exhaustion paths of the public and outbound surfaces: login steps are limited per
//! address, calls refused by access control still count against the rate limits, a
//! provider cannot make the server hold an endless event or a huge answer, and what a
//! provider says is not repeated to unauthenticated callers.

use codexcontinue::pb::v1::{
    ListUsersRequest, StartLoginRequest, admin_service_client::AdminServiceClient,
    auth_service_client::AuthServiceClient,
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
