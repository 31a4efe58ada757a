//! What the audit trail and encryption at rest cost per call, and how many audited calls
//! per second the server sustains.
//!
//! In-process through the server's own layers (audit → authentication/authorization →
//! service), against the real Postgres and Redis `make bench` starts (its durable
//! profile: fsync and synchronous commit on). Prints Markdown tables:
//! 1. sequential calls: latency with and without the audit layer, and what sealing and
//!    opening a 1 KiB message with the tenant's data key adds inside a call's transaction;
//! 2. sustained calls/s of 64 and 256 concurrent callers of one tenant and of eight
//!    tenants, with events committed in groups (the default writer settings) and, for
//!    comparison, one transaction per event; every chain is verified afterwards.
//!
//! Run with `make bench`.

use std::{
    convert::Infallible,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::body::Body;
use codexcontinue::{
    audit::{self, AuditWriter},
    caller::Principal,
    config::{AuditConfig, RateLimitConfig},
    crypto::{LocalMasterKey, Sealer},
    edge::{AuditLayer, AuditedBody},
    store::Database,
    tenancy::TenantId,
};
use codexcontinue_tests::{
    TestDatabase, TestEnv,
    bench::{AuthStack, mean, micros, percentile, stores},
    server::bootstrap,
};
use http::{Request, Response};
use tower::{Layer, Service, ServiceExt, service_fn, util::BoxCloneService};

const WARMUP: usize = 500;
const CALLS: usize = 5_000;
const CALLERS: [usize; 2] = [64, 256];
const RUN: Duration = Duration::from_secs(5);
const PATH: &str = "/codexcontinue.v1.AuthService/WhoAmI";
const MESSAGE: [u8; 1024] = [b'x'; 1024];

/// A service of the stack; `B` is its response body.
type Call<B = Body> = BoxCloneService<Request<String>, Response<B>, Infallible>;

fn request(key: &str) -> Request<String> {
    Request::builder()
        .uri(PATH)
        .header("content-type", "application/grpc")
        .header("authorization", format!("Bearer {key}"))
        .body(String::new())
        .expect("request")
}

/// A gRPC answer carried in the headers alone (status OK), as tonic sends empty replies.
fn answered() -> Response<Body> {
    let mut response = Response::new(Body::empty());
    response
        .headers_mut()
        .insert("grpc-status", http::HeaderValue::from_static("0"));
    response
}

async fn call<B>(service: &mut Call<B>, key: &str) -> Duration {
    let started = Instant::now();
    let response = service
        .ready()
        .await
        .expect("ready")
        .call(request(key))
        .await
        .expect("call");
    let elapsed = started.elapsed();
    let status = response.headers().get("grpc-status");
    assert_eq!(
        status.map(|s| s.as_bytes()),
        Some(&b"0"[..]),
        "{:?}",
        response.headers()
    );
    elapsed
}

async fn sequential<B>(mut service: Call<B>, key: &str) -> Vec<Duration> {
    for _ in 0..WARMUP {
        call(&mut service, key).await;
    }
    let mut samples = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        samples.push(call(&mut service, key).await);
    }
    samples.sort();
    samples
}

/// `callers` concurrent callers (caller i uses `keys[i % keys.len()]`) for `RUN`; returns
/// calls/s and the sorted latencies.
async fn sustained<B: 'static>(
    service: Call<B>,
    keys: &[String],
    callers: usize,
) -> (f64, Vec<Duration>) {
    let started = Instant::now();
    let callers: Vec<_> = (0..callers)
        .map(|i| {
            let mut service = service.clone();
            let key = keys[i % keys.len()].clone();
            tokio::spawn(async move {
                let mut samples = Vec::new();
                while started.elapsed() < RUN {
                    samples.push(call(&mut service, &key).await);
                }
                samples
            })
        })
        .collect();
    let mut samples = Vec::new();
    for caller in callers {
        samples.extend(caller.await.expect("caller"));
    }
    let rate = samples.len() as f64 / started.elapsed().as_secs_f64();
    samples.sort();
    (rate, samples)
}

fn noop() -> Call {
    BoxCloneService::new(service_fn(|_: Request<String>| async {
        Ok::<_, Infallible>(answered())
    }))
}

/// A call that opens its tenant's transaction and, when `seal`, seals and opens a 1 KiB
/// message in it.
fn transaction(database: Database, sealer: Sealer, seal: bool) -> Call {
    BoxCloneService::new(service_fn(move |request: Request<String>| {
        let database = database.clone();
        let sealer = sealer.clone();
        async move {
            let tenant = request
                .extensions()
                .get::<Principal>()
                .expect("authenticated")
                .tenant;
            let mut tx = database.begin_tenant(tenant).await.expect("begin");
            if seal {
                let sealed = sealer
                    .seal(&mut tx, tenant, "messages", "m1", &MESSAGE)
                    .await
                    .expect("seal");
                let opened = sealer
                    .open(&mut tx, tenant, "messages", "m1", &sealed)
                    .await
                    .expect("open");
                assert_eq!(opened, MESSAGE);
            }
            tx.commit().await.expect("commit");
            Ok::<_, Infallible>(answered())
        }
    }))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let env = TestEnv::get();
    let db = TestDatabase::migrated().await;
    let mut keys = Vec::new();
    for n in 1..=8 {
        keys.push(
            bootstrap(
                &db,
                &format!("bench-{n}"),
                &format!("owner@bench-{n}.example"),
            )
            .await,
        );
    }
    let (database, cache) = stores(&db).await;
    let auth = AuthStack::new(&database, &cache).await;
    let unlimited = RateLimitConfig {
        enabled: false,
        ..RateLimitConfig::default()
    };
    let authenticated = |inner: Call| -> Call {
        BoxCloneService::new(
            auth.layer(Duration::from_secs(30), unlimited.clone())
                .layer(inner),
        )
    };
    let audited = |writer: &AuditWriter, inner: Call| -> Call<AuditedBody<Body>> {
        BoxCloneService::new(AuditLayer::new(writer.clone()).layer(authenticated(inner)))
    };
    let defaults = AuditConfig::default();
    let grouped = AuditWriter::start(&database, defaults.writers, defaults.max_batch);
    let one_by_one = AuditWriter::start(&database, 2, 1);
    let sealer = Sealer::new(Arc::new(
        LocalMasterKey::from_base64(&env.master_key.clone().into()).expect("master key"),
    ));

    let key = &keys[0];
    let per_call = [
        (
            "authn + RBAC, no audit",
            sequential(authenticated(noop()), key).await,
        ),
        (
            "authn + RBAC + audit (group commit)",
            sequential(audited(&grouped, noop()), key).await,
        ),
        (
            "authn + RBAC + audit + tenant transaction",
            sequential(
                audited(
                    &grouped,
                    transaction(database.clone(), sealer.clone(), false),
                ),
                key,
            )
            .await,
        ),
        (
            "… + seal and open a 1 KiB message in it",
            sequential(
                audited(
                    &grouped,
                    transaction(database.clone(), sealer.clone(), true),
                ),
                key,
            )
            .await,
        ),
    ];
    println!("{CALLS} sequential calls after {WARMUP} warm-up calls, in-process\n");
    println!("| stack | p50 µs | p99 µs | mean µs |");
    println!("|---|---|---|---|");
    for (name, samples) in &per_call {
        println!(
            "| {name} | {} | {} | {} |",
            micros(percentile(samples, 0.5)),
            micros(percentile(samples, 0.99)),
            micros(mean(samples))
        );
    }
    let p = |i: usize, q: f64| percentile(&per_call[i].1, q);
    println!(
        "\nadded by the audit layer: p50 {} µs, p99 {} µs; by sealing + opening: p50 {} µs, p99 {} µs",
        micros(p(1, 0.5).saturating_sub(p(0, 0.5))),
        micros(p(1, 0.99).saturating_sub(p(0, 0.99))),
        micros(p(3, 0.5).saturating_sub(p(2, 0.5))),
        micros(p(3, 0.99).saturating_sub(p(2, 0.99))),
    );

    println!(
        "\nconcurrent callers for {} s each, in-process\n",
        RUN.as_secs()
    );
    println!("| audit writes | tenants | callers | calls/s | p50 µs | p99 µs |");
    println!("|---|---|---|---|---|---|");
    for (writes, writer) in [
        ("group commit", &grouped),
        ("one transaction per event", &one_by_one),
    ] {
        for tenants in [1, 8] {
            for callers in CALLERS {
                let service = audited(writer, noop());
                let (rate, samples) = sustained(service, &keys[..tenants], callers).await;
                println!(
                    "| {writes} | {tenants} | {callers} | {rate:.0} | {} | {} |",
                    micros(percentile(&samples, 0.5)),
                    micros(percentile(&samples, 0.99))
                );
            }
        }
    }

    let signer = env.checkpoint_signer();
    let mut events = 0;
    for tenant in codexcontinue::store::audit::audited_tenants(&database)
        .await
        .expect("tenants")
    {
        let verified = audit::verify(&database, &signer, TenantId(tenant.0))
            .await
            .expect("verify");
        assert_eq!(verified.broken, None, "chain of {tenant}");
        events += verified.events_checked;
    }
    println!("\nevery chain verifies ({events} events)");
    db.drop_database().await;
}
