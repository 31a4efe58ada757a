//! What calling a plugin costs.
//!
//! 1. Per call, in-process through the server's own transports, against a no-op tool:
//!    gRPC (the suite's plugin on loopback), MCP (a server on the official Python SDK on
//!    loopback, with a session and stateless), WebAssembly warm (component compiled and
//!    cached) and cold (compiled for the call). Sequential calls, p50/p99.
//! 2. A whole streamed chat turn through a running server and the stand-in provider, with
//!    one round of a no-op tool against the same turn without tools: turn latency p50/p99
//!    and what the round adds.
//!
//! Run with `make bench`.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use codexcontinue::{
    egress::Egress,
    pb::v1::{
        CreateConversationRequest, PhiPolicy, Profile, Provider, ProviderKind,
        RegisterPluginRequest, SetProfileRequest, SetProviderRequest, StreamMessageRequest,
        admin_service_client::AdminServiceClient, chat_service_client::ChatServiceClient,
        plugin_service_client::PluginServiceClient,
    },
    plugins::transport::{self, Means, Target, ToolCall, Transport, TransportKind, wasm},
};
use codexcontinue_sandbox::{Limits, Sandbox};
use codexcontinue_tests::{
    TestServer,
    bench::percentile,
    grpc::authorized,
    llm_upstream::LlmUpstream,
    mcp_server::PythonMcp,
    plugin_server::TestPlugin,
    wasm_component::{ANSWER_EMPTY_OBJECT, component},
};
use tonic::transport::Channel;

const CALLS: usize = 2_000;
const COLD_CALLS: usize = 30;
const TURNS: usize = 300;
const UPSTREAM_KEY: &str = "sk-bench-upstream";

/// A component whose only tool, `noop`, answers `{}`; each variant compiles anew.
fn noop_component(variant: usize) -> Vec<u8> {
    component("noop", ANSWER_EMPTY_OBJECT, variant)
}

fn means() -> Means {
    let sandbox = Sandbox::new(Limits::default()).expect("sandbox");
    Means {
        egress: Egress::new(vec!["127.0.0.0/8".parse().expect("cidr")], Vec::new()),
        sandbox: Arc::new(wasm::Runtime::new(sandbox, 8)),
    }
}

fn connect(
    kind: TransportKind,
    endpoint: &str,
    component: Option<Vec<u8>>,
    means: &Means,
) -> Arc<dyn Transport> {
    transport::connect(
        Target {
            kind,
            endpoint,
            credential: None,
            audience: "bench",
            component,
        },
        means,
    )
    .expect("connect")
}

fn noop_call() -> ToolCall {
    ToolCall {
        tool: "noop".into(),
        arguments: serde_json::json!({}),
        tenant: "t".into(),
        user: "u".into(),
        request_id: "bench".into(),
        timeout: Duration::from_secs(10),
        working_memory: None,
        recalled_memories: Vec::new(),
    }
}

async fn sample(transport: &dyn Transport, calls: usize) -> Vec<Duration> {
    for _ in 0..calls / 10 {
        transport.invoke(noop_call()).await.expect("warm-up call");
    }
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        let output = transport.invoke(noop_call()).await.expect("call");
        samples.push(started.elapsed());
        assert!(!output.is_error, "{:?}", output.result);
    }
    samples.sort();
    samples
}

fn row(name: &str, samples: &[Duration]) {
    println!(
        "| {name} | {:.3} | {:.3} | {} |",
        percentile(samples, 0.50).as_secs_f64() * 1e3,
        percentile(samples, 0.99).as_secs_f64() * 1e3,
        samples.len()
    );
}

async fn transports() {
    let means = means();
    println!("\n| no-op tool call through | p50 ms | p99 ms | calls |");
    println!("|---|---|---|---|");

    let plugin = TestPlugin::start().await;
    let grpc = connect(TransportKind::Grpc, &plugin.endpoint(), None, &means);
    row(
        "gRPC plugin (loopback)",
        &sample(grpc.as_ref(), CALLS).await,
    );

    for (stateless, name) in [
        (false, "MCP, session (Python SDK, loopback)"),
        (true, "MCP, stateless (Python SDK, loopback)"),
    ] {
        let server = PythonMcp::start(stateless).await;
        let mcp = connect(TransportKind::Mcp, &server.endpoint(), None, &means);
        row(name, &sample(mcp.as_ref(), CALLS / 4).await);
    }

    let wasm = connect(
        TransportKind::Wasm,
        "component:noop",
        Some(noop_component(0)),
        &means,
    );
    row("WebAssembly, warm", &sample(wasm.as_ref(), CALLS).await);

    let mut cold = Vec::with_capacity(COLD_CALLS);
    for variant in 1..=COLD_CALLS {
        let fresh = connect(
            TransportKind::Wasm,
            "component:noop",
            Some(noop_component(variant)),
            &means,
        );
        let started = Instant::now();
        fresh.invoke(noop_call()).await.expect("cold call");
        cold.push(started.elapsed());
    }
    cold.sort();
    row("WebAssembly, cold (compile + call)", &cold);
}

/// A server whose `bench` profile answers through the stand-in provider, with the no-op
/// plugin allowed when `tools`.
async fn chat_server(
    upstream: &LlmUpstream,
    plugin: &TestPlugin,
) -> (TestServer, ChatServiceClient<Channel>) {
    let server = TestServer::with_env(vec![
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
    ])
    .await;
    let key = server.owner_key.clone();
    let channel = server.channel().await;
    let mut admin = AdminServiceClient::new(channel.clone());
    admin
        .set_provider(authorized(
            &key,
            SetProviderRequest {
                provider: Some(Provider {
                    name: "up".into(),
                    kind: ProviderKind::OpenaiCompatible.into(),
                    endpoint: upstream.openai_base(),
                    models: vec!["echo-1".into()],
                    on_premises: true,
                    ..Provider::default()
                }),
                credential: UPSTREAM_KEY.into(),
            },
        ))
        .await
        .expect("provider");
    PluginServiceClient::new(channel.clone())
        .register_plugin(authorized(
            &key,
            RegisterPluginRequest {
                endpoint: plugin.endpoint(),
                name: "helper".into(),
                on_premises: true,
                ..RegisterPluginRequest::default()
            },
        ))
        .await
        .expect("plugin");
    for (id, plugins) in [("plain", vec![]), ("tooled", vec!["helper".to_owned()])] {
        admin
            .set_profile(authorized(
                &key,
                SetProfileRequest {
                    profile: Some(Profile {
                        id: id.into(),
                        display_name: id.into(),
                        default_model: "up/echo-1".into(),
                        phi_policy: PhiPolicy::Allow.into(),
                        allowed_plugins: plugins,
                        ..Profile::default()
                    }),
                    system_prompt: "You help.".into(),
                },
            ))
            .await
            .expect("profile");
    }
    (server, ChatServiceClient::new(channel))
}

async fn turns(
    chat: &mut ChatServiceClient<Channel>,
    key: &str,
    profile: &str,
    content: &str,
) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(TURNS);
    for turn in 0..TURNS + TURNS / 10 {
        let conversation = chat
            .create_conversation(authorized(
                key,
                CreateConversationRequest {
                    profile: profile.into(),
                    ..CreateConversationRequest::default()
                },
            ))
            .await
            .expect("conversation")
            .into_inner()
            .conversation
            .expect("conversation")
            .id;
        let started = Instant::now();
        let mut replies = chat
            .stream_message(authorized(
                key,
                StreamMessageRequest {
                    conversation_id: conversation,
                    content: content.into(),
                    ..StreamMessageRequest::default()
                },
            ))
            .await
            .expect("streams")
            .into_inner();
        while replies.message().await.expect("chunk").is_some() {}
        if turn >= TURNS / 10 {
            samples.push(started.elapsed());
        }
    }
    samples.sort();
    samples
}

async fn chat_turns() {
    let upstream = LlmUpstream::start(UPSTREAM_KEY).await;
    let plugin = TestPlugin::start().await;
    let (server, mut chat) = chat_server(&upstream, &plugin).await;
    let key = server.owner_key.clone();
    let plain = turns(&mut chat, &key, "plain", "tool:helper__noop hello").await;
    let tooled = turns(&mut chat, &key, "tooled", "tool:helper__noop hello").await;
    println!(
        "\n| streamed chat turn (new conversation, stand-in provider) | p50 ms | p99 ms | turns |"
    );
    println!("|---|---|---|---|");
    row("without tools", &plain);
    row("with one round of a no-op gRPC tool", &tooled);
    println!(
        "\nOne tool round adds {:.2} ms at p50 (two model calls instead of one, the plugin call, its audit event).",
        (percentile(&tooled, 0.5).as_secs_f64() - percentile(&plain, 0.5).as_secs_f64()) * 1e3
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    transports().await;
    chat_turns().await;
}
