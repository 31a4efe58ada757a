//! grpc.health.v1 and /readyz follow Postgres and Redis.

use codexcontinue::edge::API_SERVICES;
use codexcontinue_tests::{OwnedRedis, ServerOptions, TestDatabase, TestServer, WAIT_LIMIT};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

#[tokio::test]
async fn serving_for_overall_and_every_api_service() {
    let server = TestServer::start().await;
    let mut health = HealthClient::new(server.channel().await);
    for service in std::iter::once("").chain(API_SERVICES) {
        let status = health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap()
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "{service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "no.such.Service".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    let ready = reqwest::get(format!("{}/readyz", server.url()))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let live = reqwest::get(format!("{}/healthz", server.url()))
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
}

/// Reads the watch stream until it reports `wanted`.
async fn wait_for(
    stream: &mut tonic::Streaming<tonic_health::pb::HealthCheckResponse>,
    wanted: ServingStatus,
) {
    tokio::time::timeout(WAIT_LIMIT, async {
        while let Some(update) = stream.message().await.expect("watch stream") {
            if update.status() == wanted {
                return;
            }
        }
        panic!("watch stream ended before {wanted:?}");
    })
    .await
    .unwrap_or_else(|_| panic!("no {wanted:?} within {WAIT_LIMIT:?}"));
}

#[tokio::test]
async fn not_serving_while_redis_is_down_and_serving_again_after() {
    let mut redis = OwnedRedis::start().await;
    let server = TestServer::spawn(
        TestDatabase::migrated().await,
        ServerOptions {
            redis_url: Some(redis.url()),
            ..ServerOptions::default()
        },
    )
    .await;
    let mut health = HealthClient::new(server.channel().await);
    let mut overall = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut chat = health
        .watch(HealthCheckRequest {
            service: API_SERVICES[0].to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    wait_for(&mut overall, ServingStatus::Serving).await;

    redis.stop().await;
    wait_for(&mut overall, ServingStatus::NotServing).await;
    wait_for(&mut chat, ServingStatus::NotServing).await;
    let ready = reqwest::get(format!("{}/readyz", server.url()))
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.text().await.unwrap().contains("redis"));
    // Liveness is about the process, not its dependencies.
    let live = reqwest::get(format!("{}/healthz", server.url()))
        .await
        .unwrap();
    assert_eq!(live.status(), 200);

    redis.resume().await;
    wait_for(&mut overall, ServingStatus::Serving).await;
    let ready = reqwest::get(format!("{}/readyz", server.url()))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}
