//! How much latency the authentication + authorization + rate-limit stack adds per call.
//!
//! The same inner service is called in-process through `tower`, once bare and once behind
//! `AuthLayer` (API key lookup in Postgres, Casbin decision, GCRA in Redis), against the
//! real services `make bench` starts. Sequential calls, so each figure is one call's own
//! latency. Prints a Markdown table of p50/p99/mean per mode and the added latency.
//!
//! Run with `make bench`.

use std::{
    convert::Infallible,
    time::{Duration, Instant},
};

use codexcontinue::config::{AuthConfig, RateLimitConfig};
use codexcontinue_tests::{
    TestDatabase,
    bench::{AuthStack, mean, percentile, stores},
    server::bootstrap,
};
use http::{Request, Response};
use tower::{Layer, Service, ServiceExt, service_fn};

const WARMUP: usize = 2_000;
const CALLS: usize = 20_000;
const PATH: &str = "/codexcontinue.v1.AuthService/WhoAmI";

fn request(key: &str) -> Request<String> {
    Request::builder()
        .uri(PATH)
        .header("content-type", "application/grpc")
        .header("authorization", format!("Bearer {key}"))
        .body(String::new())
        .expect("request")
}

async fn measure<S>(service: &mut S, key: &str) -> Vec<Duration>
where
    S: Service<Request<String>, Response = Response<axum::body::Body>>,
    S::Error: std::fmt::Debug,
{
    let mut samples = Vec::with_capacity(CALLS);
    for i in 0..WARMUP + CALLS {
        let started = Instant::now();
        let response = service
            .ready()
            .await
            .expect("ready")
            .call(request(key))
            .await
            .expect("call");
        let elapsed = started.elapsed();
        assert!(
            response.headers().get("grpc-status").is_none(),
            "call refused: {response:?}"
        );
        if i >= WARMUP {
            samples.push(elapsed);
        }
    }
    samples.sort();
    samples
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let db = TestDatabase::migrated().await;
    let key = bootstrap(&db, "bench", "bench@bench.example").await;
    let (database, cache) = stores(&db).await;
    let limits = RateLimitConfig {
        per_caller_per_second: 1e9,
        per_caller_burst: u32::MAX / 2,
        per_tenant_per_second: 1e9,
        per_tenant_burst: u32::MAX / 2,
        ..RateLimitConfig::default()
    };
    let config = AuthConfig::default();
    let auth = AuthStack::new(&database, &cache).await;
    let stack = |key_cache_ttl: Duration| auth.layer(key_cache_ttl, limits.clone());

    let inner = service_fn(|_: Request<String>| async {
        Ok::<_, Infallible>(Response::new(axum::body::Body::empty()))
    });
    let mut bare = inner;
    let mut stacked = stack(config.credential_cache_ttl).layer(inner);
    let mut uncached = stack(Duration::ZERO).layer(inner);

    let bare_samples = measure(&mut bare, &key).await;
    let stacked_samples = measure(&mut stacked, &key).await;
    let uncached_samples = measure(&mut uncached, &key).await;

    let row = |name: &str, s: &[Duration]| {
        format!(
            "| {name} | {:.1} | {:.1} | {:.1} |",
            percentile(s, 0.50).as_secs_f64() * 1e6,
            percentile(s, 0.99).as_secs_f64() * 1e6,
            mean(s).as_secs_f64() * 1e6,
        )
    };
    println!("{CALLS} sequential calls of {PATH} after {WARMUP} warm-up calls, in-process\n");
    println!("| stack | p50 µs | p99 µs | mean µs |");
    println!("|---|---|---|---|");
    println!("{}", row("off (bare service)", &bare_samples));
    println!(
        "{}",
        row(
            "on (authn + RBAC + rate limit), default config",
            &stacked_samples
        )
    );
    println!(
        "{}",
        row(
            "on, API key looked up in Postgres on every call",
            &uncached_samples
        )
    );
    let edge_samples = edge_checks();
    println!(
        "{}",
        row(
            "edge check of a request's fields (SendMessage, 1 KiB content)",
            &edge_samples
        )
    );
    println!(
        "\nadded by the stack (default config) and the edge check: p50 {:.1} µs, p99 {:.1} µs",
        (percentile(&stacked_samples, 0.5) - percentile(&bare_samples, 0.5)
            + percentile(&edge_samples, 0.5))
        .as_secs_f64()
            * 1e6,
        (percentile(&stacked_samples, 0.99) - percentile(&bare_samples, 0.99)
            + percentile(&edge_samples, 0.99))
        .as_secs_f64()
            * 1e6,
    );
}

/// What the API's codec spends checking a typical chat request's wire bytes.
fn edge_checks() -> Vec<Duration> {
    use codexcontinue::{edge::request_fields, pb::v1};
    use prost::Message;

    let request = v1::SendMessageRequest {
        conversation_id: uuid::Uuid::now_v7().to_string(),
        content: "The patient reports improvement since Tuesday. ".repeat(22),
        options: Some(v1::GenerationOptions {
            model: "cloud/gpt-4o".into(),
            stop: vec!["END".into()],
            ..Default::default()
        }),
        idempotency_key: uuid::Uuid::now_v7().to_string(),
    }
    .encode_to_vec();
    let mut samples = Vec::with_capacity(CALLS);
    for i in 0..WARMUP + CALLS {
        let started = Instant::now();
        request_fields::check("codexcontinue.v1.SendMessageRequest", &request).expect("clean");
        if i >= WARMUP {
            samples.push(started.elapsed());
        }
    }
    samples.sort();
    samples
}
