//! Sandboxed WebAssembly plugins: the shipped `text_stats` component registered from the
//! operator's folder and called directly and during a chat turn; uploaded components that
//! trap or spin come back as a tool error or a timeout and leave the server working; bad
//! endpoints and oversized uploads are refused naming the field.

use std::path::PathBuf;

use codexcontinue::pb::{
    json,
    v1::{
        CreateConversationRequest, InvokePluginRequest, PhiPolicy, Plugin, PluginTransport,
        Profile, RegisterPluginRequest, SetProfileRequest, StreamMessageRequest,
        plugin_service_client::PluginServiceClient, reply_chunk,
    },
};
use codexcontinue_tests::{
    grpc::{authorized, bad_field},
    wasm_component::component,
};
use serde_json::{Value, json};
use tonic::{Code, Status, transport::Channel};

use super::chat_fixture::{Chat, setup_with};

/// A component with one tool, `x`, whose `invoke` runs `body`.
fn component_invoking(body: &str) -> Vec<u8> {
    component("x", body, 0)
}

async fn wasm_chat() -> Chat {
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../server/sandbox/plugins");
    setup_with(vec![
        (
            "CODEXCONTINUE_PLUGINS__WASM_FOLDER".into(),
            folder.display().to_string(),
        ),
        (
            "CODEXCONTINUE_PLUGINS__WASM_MAX_COMPONENT_BYTES".into(),
            "65536".into(),
        ),
        // Fuel enough that a spinning component meets its deadline first (fuel has unit
        // tests of its own in the sandbox crate).
        (
            "CODEXCONTINUE_PLUGINS__WASM_FUEL".into(),
            "1000000000000".into(),
        ),
    ])
    .await
}

async fn register(
    client: &mut PluginServiceClient<Channel>,
    key: &str,
    request: RegisterPluginRequest,
) -> Result<Plugin, Status> {
    Ok(client
        .register_plugin(authorized(
            key,
            RegisterPluginRequest {
                transport: PluginTransport::Wasm.into(),
                ..request
            },
        ))
        .await?
        .into_inner()
        .plugin
        .expect("plugin"))
}

async fn invoke(
    client: &mut PluginServiceClient<Channel>,
    key: &str,
    plugin: &Plugin,
    tool: &str,
    arguments: Value,
) -> Result<(Value, bool), Status> {
    let answer = client
        .invoke_plugin(authorized(
            key,
            InvokePluginRequest {
                plugin_id: plugin.id.clone(),
                tool: tool.into(),
                arguments: Some(json::to_struct(arguments)),
                conversation_id: String::new(),
            },
        ))
        .await?
        .into_inner();
    Ok((
        json::from_struct(answer.result.expect("result")).expect("json"),
        answer.is_error,
    ))
}

#[tokio::test]
async fn the_shipped_component_counts_and_broken_ones_leave_the_server_working() {
    let t = wasm_chat().await;
    let key = &t.server.owner_key;
    let mut client = PluginServiceClient::new(t.server.channel().await);

    let stats = register(
        &mut client,
        key,
        RegisterPluginRequest {
            endpoint: "builtin:text_stats".into(),
            ..RegisterPluginRequest::default()
        },
    )
    .await
    .expect("registers the shipped component");
    assert_eq!(stats.name, "text_stats");
    assert_eq!(stats.transport(), PluginTransport::Wasm);
    assert_eq!(stats.tools[0].name, "count");
    let (counted, is_error) = invoke(
        &mut client,
        key,
        &stats,
        "count",
        json!({ "text": "Zwei Wörter\nund mehr" }),
    )
    .await
    .expect("counts");
    assert!(!is_error);
    assert_eq!(counted, json!({ "characters": 20, "words": 4, "lines": 2 }));

    let trapping = register(
        &mut client,
        key,
        RegisterPluginRequest {
            name: "trapper".into(),
            component: component_invoking("unreachable"),
            ..RegisterPluginRequest::default()
        },
    )
    .await
    .expect("registers an uploaded component");
    assert!(
        trapping.endpoint.starts_with("component:"),
        "{}",
        trapping.endpoint
    );
    let (said, is_error) = invoke(&mut client, key, &trapping, "x", json!({}))
        .await
        .expect("a trap is the tool's error");
    assert!(is_error, "{said}");
    assert!(
        said["error"].as_str().unwrap_or_default().contains("trap"),
        "{said}"
    );

    let spinning = register(
        &mut client,
        key,
        RegisterPluginRequest {
            name: "spinner".into(),
            component: component_invoking("(loop $l (br $l)) (i32.const 0)"),
            timeout_ms: 300,
            ..RegisterPluginRequest::default()
        },
    )
    .await
    .expect("registers");
    let err = invoke(&mut client, key, &spinning, "x", json!({}))
        .await
        .expect_err("stopped at its deadline");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().contains("300 ms"), "{err:?}");

    // Unharmed.
    let (again, _) = invoke(&mut client, key, &stats, "count", json!({ "text": "ok" }))
        .await
        .expect("still counts");
    assert_eq!(again["words"], 1);

    for (request, field) in [
        (
            RegisterPluginRequest {
                endpoint: "builtin:../../etc/passwd".into(),
                ..RegisterPluginRequest::default()
            },
            "endpoint",
        ),
        (
            RegisterPluginRequest {
                endpoint: "builtin:nothing_shipped".into(),
                ..RegisterPluginRequest::default()
            },
            "endpoint",
        ),
        (
            RegisterPluginRequest {
                endpoint: "http://127.0.0.1:1".into(),
                component: component_invoking("unreachable"),
                ..RegisterPluginRequest::default()
            },
            "endpoint",
        ),
        (
            RegisterPluginRequest {
                name: "huge".into(),
                component: vec![0; 65_537],
                ..RegisterPluginRequest::default()
            },
            "component",
        ),
        (
            RegisterPluginRequest {
                name: "garbage".into(),
                component: b"\0asm nonsense".to_vec(),
                ..RegisterPluginRequest::default()
            },
            "component",
        ),
    ] {
        let err = register(&mut client, key, request)
            .await
            .expect_err("refused");
        assert_eq!(bad_field(&err), field, "{err:?}");
    }
}

#[tokio::test]
async fn the_assistant_counts_with_the_sandboxed_tool() {
    let mut t = wasm_chat().await;
    let key = t.server.owner_key.clone();
    let mut client = PluginServiceClient::new(t.server.channel().await);
    register(
        &mut client,
        &key,
        RegisterPluginRequest {
            endpoint: "builtin:text_stats".into(),
            on_premises: true,
            ..RegisterPluginRequest::default()
        },
    )
    .await
    .expect("registers");
    t.admin
        .set_profile(authorized(
            &key,
            SetProfileRequest {
                profile: Some(Profile {
                    id: "assistant".into(),
                    display_name: "Assistant".into(),
                    default_model: "cloud/echo-1".into(),
                    phi_policy: PhiPolicy::Allow.into(),
                    allowed_plugins: vec!["text_stats".into()],
                    ..Profile::default()
                }),
                system_prompt: "You help.".into(),
            },
        ))
        .await
        .expect("profile");
    let conversation = t
        .chat
        .create_conversation(authorized(
            &key,
            CreateConversationRequest {
                profile: "assistant".into(),
                ..CreateConversationRequest::default()
            },
        ))
        .await
        .expect("conversation")
        .into_inner()
        .conversation
        .expect("conversation")
        .id;
    let mut replies = t
        .chat
        .stream_message(authorized(
            &key,
            StreamMessageRequest {
                conversation_id: conversation,
                content: "tool:text_stats__count how many words are here".into(),
                ..StreamMessageRequest::default()
            },
        ))
        .await
        .expect("streams")
        .into_inner();
    let (mut text, mut outcomes) = (String::new(), Vec::new());
    while let Some(message) = replies.message().await.expect("chunk") {
        match message.chunk.and_then(|c| c.event).expect("event") {
            reply_chunk::Event::Delta(piece) => text.push_str(&piece),
            reply_chunk::Event::ToolCallFinished(finished) => outcomes.push(finished.outcome),
            _ => {}
        }
    }
    assert_eq!(outcomes, ["ok"]);
    assert!(text.contains(r#""words":6"#), "{text}");
}
