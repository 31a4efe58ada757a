//! MCP plugins over streamable HTTP, against servers built on the official Python and Rust
//! SDKs: registration reads their tools, calls reach them and come back (a tool's failure as
//! a tool error), with sessions or without, a restarted server (sessions gone) is reached
//! again, the assistant calls their tools during a chat turn, and a narrowed egress policy
//! holds.

use codexcontinue::pb::{
    json,
    v1::{
        CreateConversationRequest, InvokePluginRequest, PhiPolicy, Plugin, PluginTransport,
        Profile, RegisterPluginRequest, SetProfileRequest, StreamMessageRequest,
        plugin_service_client::PluginServiceClient, reply_chunk,
    },
};
use codexcontinue_tests::{
    TestServer, grpc::authorized, mcp_server::PythonMcp, rmcp_server::RustMcp,
};
use serde_json::{Value, json};
use tonic::transport::Channel;

use super::chat_fixture::setup;

async fn register(
    client: &mut PluginServiceClient<Channel>,
    key: &str,
    endpoint: String,
    name: &str,
) -> Plugin {
    client
        .register_plugin(authorized(
            key,
            RegisterPluginRequest {
                endpoint,
                name: name.into(),
                transport: PluginTransport::Mcp.into(),
                credential: "mcp-static-credential".into(),
                ..RegisterPluginRequest::default()
            },
        ))
        .await
        .expect("registers")
        .into_inner()
        .plugin
        .expect("plugin")
}

async fn call(
    client: &mut PluginServiceClient<Channel>,
    key: &str,
    plugin: &Plugin,
    tool: &str,
    arguments: Value,
) -> (Value, bool) {
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
        .await
        .expect("answers")
        .into_inner();
    (
        json::from_struct(answer.result.expect("result")).expect("json"),
        answer.is_error,
    )
}

#[tokio::test]
async fn a_python_mcp_server_is_registered_and_called_with_and_without_sessions() {
    let server = TestServer::start().await;
    let key = &server.owner_key;
    let mut client = PluginServiceClient::new(server.channel().await);
    for (stateless, name) in [(false, "pysession"), (true, "pystateless")] {
        let mcp = PythonMcp::start(stateless).await;
        let plugin = register(&mut client, key, mcp.endpoint(), name).await;
        assert_eq!(plugin.transport(), PluginTransport::Mcp);
        assert_eq!(plugin.version, "2.3.0");
        assert_eq!(plugin.description, "Small tools in Python");
        let tools: Vec<&str> = plugin.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(tools, ["add", "fail", "noop", "shout"], "{name}");
        assert!(plugin.requested_capabilities.is_empty());

        let (added, is_error) =
            call(&mut client, key, &plugin, "add", json!({ "a": 2, "b": 40 })).await;
        assert!(!is_error);
        assert!(added.to_string().contains("42"), "{name}: {added}");
        let (failed, is_error) = call(&mut client, key, &plugin, "fail", json!({})).await;
        assert!(is_error, "{name}: {failed}");
        let said = failed["error"].as_str().unwrap_or_default();
        assert!(said.contains("fail"), "{name}: {failed}");

        // Every session the server had is gone: the next call still gets through.
        let mcp = mcp.restart().await;
        let (shouted, _) = call(&mut client, key, &plugin, "shout", json!({ "text": "hi" })).await;
        assert!(shouted.to_string().contains("HI"), "{name}: {shouted}");
        drop(mcp);
    }
}

#[tokio::test]
async fn the_assistant_calls_an_mcp_tool_during_a_turn() {
    let mut t = setup().await;
    let mcp = PythonMcp::start(false).await;
    let key = t.server.owner_key.clone();
    let mut plugins = PluginServiceClient::new(t.server.channel().await);
    register(&mut plugins, &key, mcp.endpoint(), "py").await;
    t.admin
        .set_profile(authorized(
            &key,
            SetProfileRequest {
                profile: Some(Profile {
                    id: "assistant".into(),
                    display_name: "Assistant".into(),
                    default_model: "cloud/echo-1".into(),
                    phi_policy: PhiPolicy::Allow.into(),
                    allowed_plugins: vec!["py".into()],
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
                content: "tool:py__shout make this loud".into(),
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
    assert!(text.contains("TOOL:PY__SHOUT MAKE THIS LOUD"), "{text}");
}

#[tokio::test]
async fn an_mcp_plugin_outside_a_narrowed_egress_policy_is_not_called() {
    let server = TestServer::start().await;
    let mcp = PythonMcp::start(true).await;
    let key = &server.owner_key;
    let mut client = PluginServiceClient::new(server.channel().await);
    let plugin = register(&mut client, key, mcp.endpoint(), "py").await;
    // A replica whose operator allows no private addresses any more: the endpoint is an
    // address (no name for the policy's resolver to see), so it is checked itself.
    let strict = server
        .replica_with(vec![("CODEXCONTINUE_EGRESS__ALLOW".into(), "[]".into())])
        .await;
    let err = PluginServiceClient::new(strict.channel().await)
        .invoke_plugin(authorized(
            key,
            InvokePluginRequest {
                plugin_id: plugin.id.clone(),
                tool: "noop".into(),
                arguments: Some(json::to_struct(json!({}))),
                conversation_id: String::new(),
            },
        ))
        .await
        .expect_err("refused before connecting");
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert!(err.message().contains("egress.allow"), "{err:?}");
}

#[tokio::test]
async fn an_rmcp_server_is_registered_and_called() {
    let server = TestServer::start().await;
    let mcp = RustMcp::start().await;
    let key = &server.owner_key;
    let mut client = PluginServiceClient::new(server.channel().await);
    let plugin = register(&mut client, key, mcp.endpoint(), "rusty").await;
    assert_eq!(plugin.description, "Adds numbers (rmcp)");
    let tools: Vec<&str> = plugin.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(tools, ["add"]);
    let (added, is_error) = call(
        &mut client,
        key,
        &plugin,
        "add",
        json!({ "a": 20, "b": 22 }),
    )
    .await;
    assert!(!is_error, "{added}");
    assert!(added.to_string().contains("42"), "{added}");
}
