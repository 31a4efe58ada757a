//! /metrics counts calls per method, method kind and canonical status code.

use codexcontinue_tests::{
    TestServer,
    grpc::call_empty,
    metrics::{scrape, value as count},
};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

#[tokio::test]
async fn metrics_count_each_call_with_its_code() {
    let server = TestServer::start().await;
    let ok_series = r#"grpc_server_handled_total{grpc_type="unary",grpc_service="grpc.health.v1.Health",grpc_method="Check",grpc_code="OK"}"#;
    let invalid_series = r#"grpc_server_handled_total{grpc_type="unary",grpc_service="codexcontinue.v1.MemoryService",grpc_method="Recall",grpc_code="INVALID_ARGUMENT"}"#;
    let before = scrape(&server).await;
    assert_eq!(count(&before, invalid_series), 0);

    let mut health = HealthClient::new(server.channel().await);
    for _ in 0..3 {
        health.check(HealthCheckRequest::default()).await.unwrap();
    }
    let channel = server.channel().await;
    let authorization = format!("Bearer {}", server.owner_key);
    call_empty(
        channel.clone(),
        "/codexcontinue.v1.MemoryService/Recall",
        &[("authorization", &authorization)],
    )
    .await
    .unwrap_err();
    // Refusals are counted under their own code.
    call_empty(
        channel.clone(),
        "/codexcontinue.v1.MemoryService/Recall",
        &[],
    )
    .await
    .unwrap_err();

    let after = scrape(&server).await;
    let refused_series = r#"grpc_server_handled_total{grpc_type="unary",grpc_service="codexcontinue.v1.MemoryService",grpc_method="Recall",grpc_code="UNAUTHENTICATED"}"#;
    assert_eq!(count(&after, refused_series), 1, "{after}");
    assert_eq!(
        count(&after, ok_series),
        count(&before, ok_series) + 3,
        "{after}"
    );
    assert_eq!(count(&after, invalid_series), 1, "{after}");
    assert!(after.contains(
        r#"grpc_server_handling_seconds_count{grpc_type="unary",grpc_service="grpc.health.v1.Health",grpc_method="Check"}"#
    ));

    // A made-up path does not become a label value.
    call_empty(channel, "/evil.Service/Anything", &[])
        .await
        .unwrap_err();
    let after = scrape(&server).await;
    assert!(!after.contains("evil.Service"), "{after}");
    assert!(after.contains(r#"grpc_service="unknown""#), "{after}");
}
