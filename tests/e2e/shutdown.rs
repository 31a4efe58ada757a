//! SIGTERM drains: an in-flight streaming call keeps working until the client ends it,
//! health turns NOT_SERVING first (and new calls are still taken for the drain delay),
//! and the process exits cleanly.

use codexcontinue_tests::{ServerOptions, TestDatabase, TestServer, WAIT_LIMIT};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

fn list_services() -> ServerReflectionRequest {
    ServerReflectionRequest {
        message_request: Some(MessageRequest::ListServices(String::new())),
        ..Default::default()
    }
}

#[tokio::test]
async fn sigterm_finishes_an_in_flight_stream_then_exits_zero() {
    let mut server = TestServer::spawn(
        TestDatabase::migrated().await,
        ServerOptions {
            // Long enough that exiting within the test's wait proves the drain completed
            // rather than the grace period cutting the call off.
            env: vec![("CODEXCONTINUE_SERVER__SHUTDOWN_GRACE".into(), "10m".into())],
            ..ServerOptions::default()
        },
    )
    .await;
    let channel = server.channel().await;

    // A bidirectional stream, open across the signal.
    let (requests, request_stream) = mpsc::channel(4);
    let mut reflection = ServerReflectionClient::new(channel.clone());
    requests.send(list_services()).await.unwrap();
    let mut responses = reflection
        .server_reflection_info(ReceiverStream::new(request_stream))
        .await
        .unwrap()
        .into_inner();
    assert!(responses.message().await.unwrap().is_some());

    // Watch health so the test knows when the server has begun shutting down.
    let mut watch = HealthClient::new(channel)
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        watch.message().await.unwrap().unwrap().status(),
        ServingStatus::Serving
    );

    server.signal("TERM");
    tokio::time::timeout(WAIT_LIMIT, async {
        loop {
            match watch.message().await {
                Ok(Some(update)) if update.status() == ServingStatus::NotServing => break,
                Ok(Some(_)) => continue,
                other => panic!("watch ended without NOT_SERVING: {other:?}"),
            }
        }
    })
    .await
    .expect("NOT_SERVING after SIGTERM");
    drop(watch);

    // New connections are refused while draining (the listener closes just after the
    // status flips, so wait for it)...
    tokio::time::timeout(WAIT_LIMIT, async {
        while tokio::net::TcpStream::connect(server.addr).await.is_ok() {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("listener closes while draining");

    // ...while the in-flight stream still answers.
    requests.send(list_services()).await.unwrap();
    match responses.message().await.unwrap().unwrap().message_response {
        Some(MessageResponse::ListServicesResponse(list)) => assert!(!list.service.is_empty()),
        other => panic!("unexpected reply {other:?}"),
    }
    drop(requests);
    assert!(
        responses.message().await.unwrap().is_none(),
        "stream ends cleanly"
    );

    let status = server.wait_exit().await;
    assert!(status.success(), "exit status {status:?}");
    let logs = server.logs();
    assert!(logs.contains("shutdown requested"), "{logs}");
    assert!(!logs.contains("grace elapsed"), "{logs}");
}

#[tokio::test]
async fn grace_period_bounds_shutdown_when_a_stream_never_ends() {
    let mut server = TestServer::spawn(
        TestDatabase::migrated().await,
        ServerOptions {
            env: vec![(
                "CODEXCONTINUE_SERVER__SHUTDOWN_GRACE".into(),
                "200ms".into(),
            )],
            ..ServerOptions::default()
        },
    )
    .await;
    // A watch stream never ends on its own.
    let mut watch = HealthClient::new(server.channel().await)
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(watch.message().await.unwrap().is_some());
    server.signal("INT");
    let status = server.wait_exit().await;
    assert!(status.success(), "exit status {status:?}");
    assert!(server.logs().contains("grace elapsed"));
}

#[tokio::test]
async fn during_the_drain_delay_readiness_fails_but_new_calls_are_still_served() {
    let mut server = TestServer::spawn(
        TestDatabase::migrated().await,
        ServerOptions {
            env: vec![("CODEXCONTINUE_SERVER__DRAIN_DELAY".into(), "5s".into())],
            ..ServerOptions::default()
        },
    )
    .await;
    let readyz = format!("{}/readyz", server.url());
    server.signal("TERM");
    tokio::time::timeout(WAIT_LIMIT, async {
        while reqwest::get(&readyz).await.unwrap().status()
            != reqwest::StatusCode::SERVICE_UNAVAILABLE
        {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("/readyz fails after SIGTERM");

    // A new connection, as a load balancer that has not yet seen readiness fail would
    // open, is still accepted and served.
    let answer = HealthClient::new(server.channel().await)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("a new call during the drain delay is served");
    assert_eq!(answer.into_inner().status(), ServingStatus::NotServing);

    let status = server.wait_exit().await;
    assert!(status.success(), "exit status {status:?}");
    let logs = server.logs();
    assert!(logs.contains("no longer accepting calls"), "{logs}");
}
