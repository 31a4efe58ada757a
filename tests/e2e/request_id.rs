//! Request ids: echoed when the client sends a sane one, generated otherwise, and present
//! in the server's log line for the call.

use codexcontinue_tests::{TestServer, grpc::call_empty};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

fn check(id: Option<&str>) -> tonic::Request<HealthCheckRequest> {
    let mut request = tonic::Request::new(HealthCheckRequest::default());
    if let Some(id) = id {
        request
            .metadata_mut()
            .insert("x-request-id", id.parse().unwrap());
    }
    request
}

#[tokio::test]
async fn request_id_round_trips_and_is_logged() {
    let server = TestServer::start().await;
    let mut health = HealthClient::new(server.channel().await);

    let response = health.check(check(Some("req-abc-123"))).await.unwrap();
    assert_eq!(
        response.metadata().get("x-request-id").unwrap(),
        "req-abc-123"
    );

    let response = health.check(check(None)).await.unwrap();
    let generated = response
        .metadata()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(uuid::Uuid::parse_str(generated).is_ok(), "{generated}");

    // An unreasonable client id is replaced, not echoed.
    let long = "x".repeat(500);
    let response = health.check(check(Some(&long))).await.unwrap();
    let replaced = response
        .metadata()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(uuid::Uuid::parse_str(replaced).is_ok(), "{replaced}");

    // Errors carry it too.
    let status = call_empty(
        server.channel().await,
        "/codexcontinue.v1.ChatService/ListConversations",
        &[("x-request-id", "req-err-7")],
    )
    .await
    .unwrap_err();
    assert_eq!(status.metadata().get("x-request-id").unwrap(), "req-err-7");

    let logs = server.logs();
    assert!(logs.contains("req-abc-123"), "{logs}");
    assert!(logs.contains("req-err-7"), "{logs}");
}
