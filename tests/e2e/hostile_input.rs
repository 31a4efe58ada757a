//! Every method of every service, called as owner, member and viewer with hostile values
//! made from the compiled descriptors: none answers INTERNAL or UNKNOWN, none takes 10 s,
//! and afterwards the server is healthy and the tenant's audit chain intact.

use std::time::{Duration, Instant};

use codexcontinue::pb::v1::{
    FILE_DESCRIPTOR_SET, VerifyChainRequest, audit_service_client::AuditServiceClient,
};
use codexcontinue_tests::{
    TestServer,
    grpc::{authorized, key_with_roles},
    hostile::{Api, Hostility, call},
};
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// The longest any one hostile call may take.
const SLOWEST: Duration = Duration::from_secs(10);

#[tokio::test]
async fn hostile_values_in_every_field_of_every_method_are_answered_cleanly() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let member = key_with_roles(channel.clone(), &server.owner_key, &["member"]).await;
    let viewer = key_with_roles(channel.clone(), &server.owner_key, &["viewer"]).await;
    let api = Api::read(FILE_DESCRIPTOR_SET, "codexcontinue.v1");
    assert!(api.methods.len() > 60, "{} methods", api.methods.len());

    let mut failures = Vec::new();
    let mut calls = 0;
    for method in &api.methods {
        for hostility in Hostility::ALL {
            let request = api.request(&method.input, hostility);
            for (role, key) in [
                ("owner", &server.owner_key),
                ("member", &member),
                ("viewer", &viewer),
            ] {
                calls += 1;
                let started = Instant::now();
                let outcome = call(channel.clone(), method, key, request.clone()).await;
                let took = started.elapsed();
                let code = outcome.as_ref().err().map(tonic::Status::code);
                if matches!(code, Some(Code::Internal | Code::Unknown)) || took > SLOWEST {
                    failures.push(format!(
                        "{} {hostility:?} as {role}: {outcome:?} in {took:?}",
                        method.path
                    ));
                }
            }
        }
    }
    println!("{calls} hostile calls, {} failed", failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status(), ServingStatus::Serving);
    let chain = AuditServiceClient::new(channel)
        .verify_chain(authorized(&server.owner_key, VerifyChainRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(chain.intact, "{chain:?}");
    assert!(chain.events_checked > 1_000, "{chain:?}");
}
