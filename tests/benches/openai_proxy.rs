//! Streamed `/v1/chat/completions` through CodexContinue against the LiteLLM proxy, both in
//! front of the same local OpenAI-compatible upstream (the suite's stand-in provider,
//! which answers at once), at 1, 16 and 64 concurrent callers.
//!
//! CodexContinue runs as `make run` would serve (release build, durable Postgres
//! settings) with every control on: the API key is checked, the call authorized, counted
//! against rate limits (set high enough not to refuse), its usage recorded and its audit
//! event written before `[DONE]`. LiteLLM runs as its docs start it (`litellm --config`,
//! one worker, master key, no database). Added latency is each proxy's latency minus the
//! upstream's own at the same concurrency. Peak RSS is the process's high-water mark
//! (`VmHWM`), children included for LiteLLM. CodexContinue runs twice: on one Redis, and
//! on a 3-node Redis Cluster (where its rate limits, sessions and the rest live then).
//!
//! Needs `CODEXCONTINUE_BENCH_LITELLM` (the `litellm` executable; `make bench` installs it),
//! `CODEXCONTINUE_TEST_REDIS_CLUSTER_URL` and the services of `make bench`. Prints a
//! Markdown table.

use std::{
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use codexcontinue::pb::v1::{
    ModelRoute, Provider, ProviderKind, RouteTarget, SetModelRouteRequest, SetProviderRequest,
    admin_service_client::AdminServiceClient,
};
use codexcontinue_tests::{
    ServerOptions, TestDatabase, TestServer, bench::percentile, grpc::authorized,
    llm_upstream::LlmUpstream,
};
use tokio_stream::StreamExt;

const UPSTREAM_KEY: &str = "sk-bench-upstream";
const LITELLM_KEY: &str = "sk-bench-litellm";
const CONCURRENCY: [usize; 3] = [1, 16, 64];
const WARMUP: Duration = Duration::from_secs(2);
const RUN: Duration = Duration::from_secs(10);
/// The message every call sends: the upstream echoes it word by word (12 content events).
const MESSAGE: &str = "Summarize the quarterly report for the finance team in three short lines";

/// One measured run.
struct Run {
    requests_per_second: f64,
    p50: Duration,
    p99: Duration,
    failures: usize,
}

/// Calls `url` with streamed completions from `callers` tasks for `length`; each call reads
/// the stream to `[DONE]`.
async fn load(url: &str, key: &str, model: &str, callers: usize, length: Duration) -> Run {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(callers)
        .build()
        .expect("client");
    let body = serde_json::json!({
        "model": model,
        "stream": true,
        "messages": [{"role": "user", "content": MESSAGE}],
    });
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let (client, body, url, key) =
            (client.clone(), body.clone(), url.to_owned(), key.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut failures = 0;
            while started.elapsed() < length {
                let began = Instant::now();
                let ok = async {
                    let response = client
                        .post(&url)
                        .bearer_auth(&key)
                        .json(&body)
                        .send()
                        .await
                        .ok()?;
                    if !response.status().is_success() {
                        return None;
                    }
                    let mut stream = response.bytes_stream();
                    let mut tail = Vec::new();
                    while let Some(chunk) = stream.next().await {
                        tail.extend_from_slice(&chunk.ok()?);
                        let keep = tail.len().saturating_sub(32);
                        tail.drain(..keep);
                    }
                    String::from_utf8_lossy(&tail)
                        .contains("[DONE]")
                        .then_some(())
                }
                .await;
                match ok {
                    Some(()) => samples.push(began.elapsed()),
                    None => failures += 1,
                }
            }
            (samples, failures)
        }));
    }
    let mut samples = Vec::new();
    let mut failures = 0;
    for task in tasks {
        let (mut mine, failed) = task.await.expect("caller");
        samples.append(&mut mine);
        failures += failed;
    }
    let elapsed = started.elapsed().as_secs_f64();
    samples.sort();
    assert!(!samples.is_empty(), "no call to {url} succeeded");
    Run {
        requests_per_second: samples.len() as f64 / elapsed,
        p50: percentile(&samples, 0.5),
        p99: percentile(&samples, 0.99),
        failures,
    }
}

/// Peak resident memory of process `pid` and its children, in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let high_water = |pid: &str| -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0)
    };
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    let total: u64 = std::iter::once(pid.to_string())
        .chain(children.split_whitespace().map(str::to_owned))
        .map(|p| high_water(&p))
        .sum();
    total as f64 / 1024.0
}

/// Starts the LiteLLM proxy in front of `upstream` and waits until it answers.
async fn start_litellm(
    litellm: &str,
    upstream: &str,
    folder: &Path,
) -> (tokio::process::Child, u16) {
    let port = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        socket.local_addr().expect("address").port()
    };
    let config = folder.join("litellm.yaml");
    std::fs::write(
        &config,
        format!(
            "model_list:\n  - model_name: bench\n    litellm_params:\n      model: openai/echo-1\n      api_base: {upstream}\n      api_key: {UPSTREAM_KEY}\ngeneral_settings:\n  master_key: {LITELLM_KEY}\nlitellm_settings:\n  telemetry: false\n  drop_params: true\n"
        ),
    )
    .expect("write the LiteLLM configuration");
    let child = tokio::process::Command::new(litellm)
        .args(["--config", &config.display().to_string()])
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--num_workers",
            "1",
        ])
        // Nothing of the bench's environment (DATABASE_URL above all: LiteLLM would use it).
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", folder)
        .env("LITELLM_MASTER_KEY", LITELLM_KEY)
        .env("LITELLM_LOG", "ERROR")
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .env("NO_DOCS", "True")
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(folder.join("litellm.log")).expect("log file"),
        ))
        .kill_on_drop(true)
        .spawn()
        .expect("start litellm");
    let client = reqwest::Client::new();
    let ready = Instant::now();
    loop {
        let answered = client
            .get(format!("http://127.0.0.1:{port}/health/liveliness"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if answered {
            break;
        }
        assert!(
            ready.elapsed() < Duration::from_secs(120),
            "LiteLLM did not start: {}",
            std::fs::read_to_string(folder.join("litellm.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    (child, port)
}

/// A CodexContinue server whose tenant reaches `upstream` through the alias `bench`; on
/// the Redis Cluster at `cluster` when given, else on the single Redis.
async fn start_codexcontinue(upstream: &str, cluster: Option<&str>) -> TestServer {
    let server = TestServer::spawn(
        TestDatabase::migrated().await,
        ServerOptions {
            env: vec![
                (
                    "CODEXCONTINUE_REDIS__CLUSTER".into(),
                    cluster.is_some().to_string(),
                ),
                ("CODEXCONTINUE_JOBS__WORKERS".into(), "0".into()),
                (
                    "CODEXCONTINUE_RATE_LIMIT__PER_CALLER_PER_SECOND".into(),
                    "1000000".into(),
                ),
                (
                    "CODEXCONTINUE_RATE_LIMIT__PER_CALLER_BURST".into(),
                    "1000000".into(),
                ),
                (
                    "CODEXCONTINUE_RATE_LIMIT__PER_TENANT_PER_SECOND".into(),
                    "1000000".into(),
                ),
                (
                    "CODEXCONTINUE_RATE_LIMIT__PER_TENANT_BURST".into(),
                    "1000000".into(),
                ),
            ],
            redis_url: cluster.map(str::to_owned),
        },
    )
    .await;
    let mut admin = AdminServiceClient::new(server.channel().await);
    admin
        .set_provider(authorized(
            &server.owner_key,
            SetProviderRequest {
                provider: Some(Provider {
                    name: "up".into(),
                    kind: ProviderKind::OpenaiCompatible.into(),
                    endpoint: upstream.into(),
                    models: vec!["echo-1".into()],
                    on_premises: true,
                    ..Provider::default()
                }),
                credential: UPSTREAM_KEY.into(),
            },
        ))
        .await
        .expect("provider");
    admin
        .set_model_route(authorized(
            &server.owner_key,
            SetModelRouteRequest {
                route: Some(ModelRoute {
                    alias: "bench".into(),
                    targets: vec![RouteTarget {
                        provider: "up".into(),
                        model: "echo-1".into(),
                    }],
                    ..ModelRoute::default()
                }),
            },
        ))
        .await
        .expect("alias");
    server
}

fn millis(duration: Duration) -> String {
    format!("{:.1}", duration.as_secs_f64() * 1e3)
}

fn added(through: Duration, direct: Duration) -> String {
    millis(through.saturating_sub(direct))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let litellm = std::env::var("CODEXCONTINUE_BENCH_LITELLM")
        .expect("CODEXCONTINUE_BENCH_LITELLM: the litellm executable (make bench installs it)");
    let folder = std::env::temp_dir().join(format!("cc-bench-proxy-{}", std::process::id()));
    std::fs::create_dir_all(&folder).expect("bench folder");
    let upstream = LlmUpstream::start(UPSTREAM_KEY).await;
    let base = upstream.openai_base();
    let server = start_codexcontinue(&base, None).await;
    let cluster_url = std::env::var("CODEXCONTINUE_TEST_REDIS_CLUSTER_URL")
        .expect("CODEXCONTINUE_TEST_REDIS_CLUSTER_URL: the test profile's Redis Cluster (make bench starts it)");
    let on_cluster = start_codexcontinue(&base, Some(&cluster_url)).await;
    let (litellm_child, litellm_port) = start_litellm(&litellm, &base, &folder).await;
    let litellm_pid = litellm_child.id().expect("litellm running");

    let targets = [
        (
            "upstream alone",
            format!("{base}/chat/completions"),
            UPSTREAM_KEY.to_owned(),
            "echo-1",
        ),
        (
            "CodexContinue",
            format!("{}/v1/chat/completions", server.url()),
            server.owner_key.clone(),
            "bench",
        ),
        (
            "CodexContinue, Redis Cluster",
            format!("{}/v1/chat/completions", on_cluster.url()),
            on_cluster.owner_key.clone(),
            "bench",
        ),
        (
            "LiteLLM proxy",
            format!("http://127.0.0.1:{litellm_port}/v1/chat/completions"),
            LITELLM_KEY.to_owned(),
            "bench",
        ),
    ];
    println!(
        "\n| callers | through | requests/s | p50 ms | p99 ms | added p50 ms | added p99 ms | failed |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for callers in CONCURRENCY {
        let mut direct = None;
        for (name, url, key, model) in &targets {
            load(url, key, model, callers, WARMUP).await;
            let run = load(url, key, model, callers, RUN).await;
            let (added_p50, added_p99) = match &direct {
                None => ("–".to_owned(), "–".to_owned()),
                Some(Run { p50, p99, .. }) => (added(run.p50, *p50), added(run.p99, *p99)),
            };
            println!(
                "| {callers} | {name} | {:.0} | {} | {} | {added_p50} | {added_p99} | {} |",
                run.requests_per_second,
                millis(run.p50),
                millis(run.p99),
                run.failures
            );
            if direct.is_none() {
                direct = Some(run);
            }
        }
    }
    let server_pid = server.pid().expect("server running");
    println!(
        "\nPeak RSS: CodexContinue {:.0} MiB, LiteLLM proxy {:.0} MiB",
        peak_rss_mib(server_pid),
        peak_rss_mib(litellm_pid)
    );
    drop(litellm_child);
    let _ = std::fs::remove_dir_all(&folder);
}
