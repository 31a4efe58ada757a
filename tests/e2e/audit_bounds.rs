//! What a caller puts in an audit event is bounded and cannot fail the trail: a NUL or a
//! 100 KB name reaching the audit writer (here through the OpenAI-compatible routes,
//! which take JSON) is stored cut and cleaned, and the call is answered as it deserves.

use codexcontinue::pb::v1::{VerifyChainRequest, audit_service_client::AuditServiceClient};
use codexcontinue_tests::{TestServer, grpc::authorized};

#[tokio::test]
async fn a_nul_or_huge_resource_id_is_stored_bounded_and_fails_nothing() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let model = format!("a\u{0}{}", "x".repeat(100_000));
    let calls = ["rest-nul-1", "rest-nul-2", "rest-nul-3"].map(|id| {
        http.post(format!("{}/v1/embeddings", server.url()))
            .bearer_auth(&server.owner_key)
            .header("x-request-id", id)
            .json(&serde_json::json!({"model": model, "input": "a text"}))
            .send()
    });
    for response in futures_join(calls).await {
        let response = response.unwrap();
        assert!(response.status().is_client_error(), "{}", response.status());
    }
    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT resource_id FROM audit_events WHERE request_id LIKE 'rest-nul-%'",
    )
    .fetch_all(&mut server.db.owner().await)
    .await
    .unwrap();
    assert_eq!(stored.len(), 3);
    for resource in stored {
        assert_eq!(resource.chars().count(), 512);
        assert!(resource.starts_with("a\u{FFFD}x"), "{resource:.20}");
    }
    let chain = AuditServiceClient::new(server.channel().await)
        .verify_chain(authorized(&server.owner_key, VerifyChainRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(chain.intact, "{chain:?}");
}

/// Runs the three calls at once, so their events can share a batch.
async fn futures_join<F: std::future::Future>(calls: [F; 3]) -> [F::Output; 3] {
    let [a, b, c] = calls;
    let (a, b, c) = tokio::join!(a, b, c);
    [a, b, c]
}
