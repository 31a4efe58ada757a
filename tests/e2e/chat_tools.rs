//! The assistant calls the tenant's plugins during a chat turn: the profile's plugins are
//! offered as `<plugin>__<tool>`, a call the model makes runs on a real gRPC plugin and its
//! result goes back to the model, the stream shows each call, the answer streams and is
//! stored; errors and timeouts become tool errors, rounds are bounded, PHI is guarded both
//! ways, and a caller without `plugin:use` gets no tools.

use codexcontinue::pb::{
    json,
    v1::{
        AddPolicyRequest, AuditEvent, AuditFilter, Capability, CreateConversationRequest,
        ListAuditEventsRequest, ListMessagesRequest, Permission, PhiPolicy, Policy, Profile,
        RegisterPluginRequest, SetProfileRequest, StreamMessageRequest, ToolCallFinished,
        ToolCallStarted, UpdatePluginRequest, VerifyChainRequest,
        audit_service_client::AuditServiceClient, plugin_service_client::PluginServiceClient,
        reply_chunk,
    },
};
use codexcontinue_tests::{
    eventually,
    grpc::{authorized, key_with_roles},
    llm_upstream::ESCAPED_ADDRESS,
    plugin_server::{TestPlugin, default_manifest},
};
use serde_json::Value;

use super::chat_fixture::{Chat, send_message, setup, setup_with};

/// What a streamed reply showed.
#[derive(Debug, Default)]
struct Streamed {
    text: String,
    started: Vec<ToolCallStarted>,
    finished: Vec<ToolCallFinished>,
    completed: bool,
}

/// Registers `plugin` as `name` (on the premises or not) in the server's tenant.
async fn register(t: &Chat, plugin: &TestPlugin, name: &str, on_premises: bool) -> String {
    PluginServiceClient::new(t.server.channel().await)
        .register_plugin(authorized(
            &t.server.owner_key,
            RegisterPluginRequest {
                endpoint: plugin.endpoint(),
                name: name.into(),
                on_premises,
                granted_capabilities: vec![Capability::ReadMemory.into()],
                ..RegisterPluginRequest::default()
            },
        ))
        .await
        .expect("registers")
        .into_inner()
        .plugin
        .expect("plugin")
        .id
}

/// A profile `assistant` allowing `plugins`, answering with `model` under `policy`.
async fn profile(t: &mut Chat, plugins: &[&str], model: &str, policy: PhiPolicy) {
    t.admin
        .set_profile(authorized(
            &t.server.owner_key,
            SetProfileRequest {
                profile: Some(Profile {
                    id: "assistant".into(),
                    display_name: "Assistant".into(),
                    default_model: model.into(),
                    phi_policy: policy.into(),
                    allowed_plugins: plugins.iter().map(|p| (*p).to_owned()).collect(),
                    ..Profile::default()
                }),
                system_prompt: "You help.".into(),
            },
        ))
        .await
        .expect("profile");
}

async fn conversation(t: &mut Chat, key: &str) -> String {
    t.chat
        .create_conversation(authorized(
            key,
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
        .id
}

async fn stream(t: &mut Chat, key: &str, conversation: &str, content: &str) -> Streamed {
    let mut replies = t
        .chat
        .stream_message(authorized(
            key,
            StreamMessageRequest {
                conversation_id: conversation.into(),
                content: content.into(),
                ..StreamMessageRequest::default()
            },
        ))
        .await
        .expect("streams")
        .into_inner();
    let mut streamed = Streamed::default();
    while let Some(message) = replies.message().await.expect("a chunk") {
        match message.chunk.and_then(|c| c.event).expect("an event") {
            reply_chunk::Event::Started(_) => {}
            reply_chunk::Event::Delta(piece) => streamed.text.push_str(&piece),
            reply_chunk::Event::ToolCallStarted(started) => streamed.started.push(started),
            reply_chunk::Event::ToolCallFinished(finished) => streamed.finished.push(finished),
            reply_chunk::Event::Completed(_) => streamed.completed = true,
        }
    }
    streamed
}

/// A server whose `assistant` profile offers the test plugin as `helper` (off the
/// premises, PHI passed), with the owner's key and a conversation there.
struct WithHelper {
    t: Chat,
    plugin: TestPlugin,
    /// The plugin's id.
    id: String,
    key: String,
    conversation: String,
}

/// [`WithHelper`] on a server with the settings `env`.
async fn with_helper(env: Vec<(String, String)>) -> WithHelper {
    let mut t = setup_with(env).await;
    let plugin = TestPlugin::start().await;
    let id = register(&t, &plugin, "helper", false).await;
    profile(&mut t, &["helper"], "cloud/echo-1", PhiPolicy::Allow).await;
    let key = t.server.owner_key.clone();
    let conversation = conversation(&mut t, &key).await;
    WithHelper {
        t,
        plugin,
        id,
        key,
        conversation,
    }
}

async fn invocations(t: &Chat) -> Vec<AuditEvent> {
    let mut events = AuditServiceClient::new(t.server.channel().await)
        .list_audit_events(authorized(
            &t.server.owner_key,
            ListAuditEventsRequest {
                filter: Some(AuditFilter {
                    action: "plugin.invoke".into(),
                    ..AuditFilter::default()
                }),
                page_size: 100,
                page_token: String::new(),
            },
        ))
        .await
        .expect("audit events")
        .into_inner()
        .events;
    events.sort_by_key(|e| e.seq);
    events
}

fn detail(event: &AuditEvent, name: &str) -> Value {
    json::from_struct(event.details.clone().unwrap_or_default()).expect("details")[name].clone()
}

/// The tool messages the upstream model was sent, in order.
fn tool_messages(t: &Chat) -> Vec<String> {
    t.upstream
        .requests()
        .iter()
        .filter_map(|r| r.body["messages"].as_array().cloned())
        .filter_map(|messages| {
            messages
                .iter()
                .rev()
                .find(|m| m["role"] == "tool")
                .and_then(|m| m["content"].as_str().map(str::to_owned))
        })
        .collect()
}

#[tokio::test]
async fn the_assistant_calls_a_plugin_and_streams_what_it_found() {
    let WithHelper {
        mut t,
        plugin,
        key,
        conversation,
        ..
    } = with_helper(Vec::new()).await;

    let streamed = stream(&mut t, &key, &conversation, "tool:helper__echo what is new").await;
    assert!(streamed.completed, "{streamed:?}");
    assert_eq!(streamed.started.len(), 1, "{streamed:?}");
    let started = &streamed.started[0];
    assert_eq!(
        (started.plugin.as_str(), started.tool.as_str()),
        ("helper", "echo")
    );
    let finished = &streamed.finished[0];
    assert_eq!(finished.call_id, started.call_id);
    assert_eq!(finished.outcome, "ok");
    assert!(streamed.text.starts_with("Tool said:"), "{streamed:?}");
    assert!(streamed.text.contains("what is new"), "{streamed:?}");

    // The plugin got the model's arguments; the model got the plugin's answer.
    let received = plugin.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].tool, "echo");
    assert_eq!(received[0].arguments["q"], "tool:helper__echo what is new");
    let requests = t.upstream.requests();
    let offered: Vec<&str> = requests[0].body["tools"]
        .as_array()
        .expect("tools offered")
        .iter()
        .filter_map(|tool| tool["function"]["name"].as_str())
        .collect();
    assert_eq!(
        offered,
        [
            "helper__echo",
            "helper__fail",
            "helper__noop",
            "helper__sleep"
        ]
    );
    let answered = tool_messages(&t);
    assert_eq!(answered.len(), 1, "{answered:?}");
    let answer: Value = serde_json::from_str(&answered[0]).expect("the tool answer is JSON");
    assert_eq!(answer["q"], "tool:helper__echo what is new");

    // The turn is stored as the user saw it, and the call is in the audit chain.
    let messages = t
        .chat
        .list_messages(authorized(
            &key,
            ListMessagesRequest {
                conversation_id: conversation.clone(),
                ..ListMessagesRequest::default()
            },
        ))
        .await
        .expect("messages")
        .into_inner()
        .messages;
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1].content, streamed.text);
    assert!(messages[0].tool_calls.is_empty());
    let kept = &messages[1].tool_calls;
    assert_eq!(kept.len(), 1, "the reply keeps its tool call: {kept:?}");
    assert_eq!(
        (
            kept[0].plugin.as_str(),
            kept[0].tool.as_str(),
            kept[0].outcome.as_str()
        ),
        ("helper", "echo", "ok")
    );
    assert_eq!(kept[0].call_id, started.call_id);
    // What was sent and answered is kept sealed, never as plain text.
    let (sealed,): (Option<Vec<u8>>,) =
        sqlx::query_as("SELECT tool_calls_sealed FROM messages WHERE id = $1::uuid")
            .bind(&messages[1].id)
            .fetch_one(&mut t.server.db.owner().await)
            .await
            .expect("the stored reply");
    let sealed = sealed.expect("tool calls stored");
    assert!(
        !String::from_utf8_lossy(&sealed).contains("what is new"),
        "sealed"
    );
    let events = invocations(&t).await;
    assert_eq!(events.len(), 1);
    assert_eq!(detail(&events[0], "via"), "chat");
    assert_eq!(detail(&events[0], "outcome"), "ok");

    // The unary call takes the same path.
    let reply = send_message(
        &mut t.chat,
        &key,
        &conversation,
        "tool:helper__noop now",
        "",
    )
    .await
    .expect("sends");
    assert_eq!(reply.reply.expect("reply").content, "Tool said: {}");
    let verified = AuditServiceClient::new(t.server.channel().await)
        .verify_chain(authorized(&key, VerifyChainRequest::default()))
        .await
        .expect("verifies")
        .into_inner();
    assert!(verified.intact);
}

#[tokio::test]
async fn failures_and_timeouts_are_tool_errors_and_rounds_are_bounded() {
    let WithHelper {
        mut t,
        plugin: _plugin,
        id,
        key,
        conversation,
    } = with_helper(vec![(
        "CODEXCONTINUE_PLUGINS__MAX_ROUNDS".into(),
        "2".into(),
    )])
    .await;

    let failed = stream(&mut t, &key, &conversation, "tool:helper__fail please").await;
    assert!(failed.completed);
    assert_eq!(failed.finished[0].outcome, "tool_error");
    assert!(failed.text.contains("always fails"), "{failed:?}");

    PluginServiceClient::new(t.server.channel().await)
        .update_plugin(authorized(
            &key,
            UpdatePluginRequest {
                plugin_id: id,
                timeout_ms: Some(300),
                ..UpdatePluginRequest::default()
            },
        ))
        .await
        .expect("timeout set");
    let slow = stream(&mut t, &key, &conversation, "tool:helper__sleep a while").await;
    assert!(slow.completed);
    assert_eq!(slow.finished[0].outcome, "timeout");
    assert!(
        slow.text.contains("did not answer within 300 ms"),
        "{slow:?}"
    );

    // A model that calls tools after every answer gets two rounds, then no tools.
    let before = t.upstream.requests().len();
    let looping = conversation_with_model(&mut t, &key, "cloud/looping").await;
    let rounds = stream(&mut t, &key, &looping, "tool:helper__noop again and again").await;
    assert!(rounds.completed);
    assert_eq!(rounds.finished.len(), 2, "{rounds:?}");
    let asked = &t.upstream.requests()[before..];
    assert_eq!(asked.len(), 3, "two rounds with tools, one without");
    assert!(asked[2].body.get("tools").is_none_or(Value::is_null));
    assert!(rounds.text.ends_with("Tool said: {}"), "{rounds:?}");

    let outcomes: Vec<Value> = invocations(&t)
        .await
        .iter()
        .map(|e| detail(e, "outcome"))
        .collect();
    assert_eq!(outcomes, ["tool_error", "timeout", "ok", "ok"]);
}

#[tokio::test]
async fn the_turns_time_budget_cuts_a_slow_call_short() {
    let WithHelper {
        mut t,
        plugin: _plugin,
        key,
        conversation,
        ..
    } = with_helper(vec![(
        "CODEXCONTINUE_PLUGINS__TURN_BUDGET".into(),
        "1s".into(),
    )])
    .await;

    // The plugin may take 10 s and the tool sleeps 5 s; the turn has 1 s for tools.
    let slow = stream(&mut t, &key, &conversation, "tool:helper__sleep a while").await;
    assert!(slow.completed, "{slow:?}");
    assert_eq!(slow.finished[0].outcome, "timeout", "{slow:?}");
    assert!(slow.text.contains("did not answer within"), "{slow:?}");
    assert!(
        !slow.text.contains("10000 ms"),
        "cut by the budget: {slow:?}"
    );
    let outcomes: Vec<Value> = invocations(&t)
        .await
        .iter()
        .map(|e| detail(e, "outcome"))
        .collect();
    assert_eq!(outcomes, ["timeout"]);
}

#[tokio::test]
async fn an_ollama_model_calls_plugins_in_its_own_wire_format() {
    let mut t = setup().await;
    t.add_ollama("lab").await;
    let plugin = TestPlugin::start().await;
    register(&t, &plugin, "helper", false).await;
    profile(&mut t, &["helper"], "lab/llama3.1", PhiPolicy::Allow).await;
    let key = t.server.owner_key.clone();
    let conversation = conversation(&mut t, &key).await;

    let streamed = stream(&mut t, &key, &conversation, "tool:helper__echo lab news").await;
    assert!(streamed.completed, "{streamed:?}");
    assert_eq!(streamed.finished.len(), 1, "{streamed:?}");
    assert_eq!(streamed.finished[0].outcome, "ok");
    assert_eq!(
        plugin.received()[0].arguments["q"],
        "tool:helper__echo lab news"
    );
    assert!(
        streamed.text.starts_with("Tool helper__echo said:"),
        "the answer went back naming the tool: {streamed:?}"
    );
    let asked = t.upstream.requests();
    let first = &asked[asked.len() - 2].body;
    assert_eq!(first["tools"][0]["function"]["name"], "helper__echo");
    let second = &asked[asked.len() - 1].body;
    let messages = second["messages"].as_array().expect("messages");
    let call = &messages[messages.len() - 2];
    assert_eq!(call["role"], "assistant");
    assert_eq!(
        call["tool_calls"][0]["function"]["arguments"]["q"], "tool:helper__echo lab news",
        "arguments go back as an object: {call}"
    );
    let answer = &messages[messages.len() - 1];
    assert_eq!(answer["role"], "tool");
    assert_eq!(answer["tool_name"], "helper__echo");
}

#[tokio::test]
async fn hanging_up_during_a_call_drops_it_and_records_it_cancelled() {
    let WithHelper {
        mut t,
        plugin,
        key,
        conversation,
        ..
    } = with_helper(Vec::new()).await;
    let mut replies = t
        .chat
        .stream_message(authorized(
            &key,
            StreamMessageRequest {
                conversation_id: conversation.clone(),
                content: "tool:helper__sleep a while".into(),
                ..StreamMessageRequest::default()
            },
        ))
        .await
        .expect("streams")
        .into_inner();
    loop {
        let chunk = replies.message().await.expect("a chunk").expect("more");
        if let Some(reply_chunk::Event::ToolCallStarted(_)) = chunk.chunk.and_then(|c| c.event) {
            break;
        }
    }
    eventually("the plugin is called", || async {
        (!plugin.received().is_empty()).then_some(())
    })
    .await;
    drop(replies);
    let outcome = eventually("the dropped call is recorded", || async {
        let events = invocations(&t).await;
        events.first().map(|event| detail(event, "outcome"))
    })
    .await;
    assert_eq!(outcome, "cancelled");
}

async fn conversation_with_model(t: &mut Chat, key: &str, model: &str) -> String {
    t.chat
        .create_conversation(authorized(
            key,
            CreateConversationRequest {
                profile: "assistant".into(),
                model: model.into(),
                ..CreateConversationRequest::default()
            },
        ))
        .await
        .expect("conversation")
        .into_inner()
        .conversation
        .expect("conversation")
        .id
}

#[tokio::test]
async fn phi_is_redacted_both_ways_around_a_plugin_off_the_premises() {
    let mut t = setup().await;
    let plugin = TestPlugin::start().await;
    // A contact address in a tool's description is configuration, not a patient's data:
    // it must not keep every turn from the provider off the premises.
    let mut manifest = default_manifest();
    manifest.tools[0].description =
        "Answers what it was given; owner oncall@hospital.example".into();
    plugin.set_manifest(manifest);
    register(&t, &plugin, "remote", false).await;
    register(&t, &plugin, "inhouse", true).await;
    profile(
        &mut t,
        &["remote", "inhouse"],
        "cloud/echo-1",
        PhiPolicy::Redact,
    )
    .await;
    let key = t.server.owner_key.clone();
    let conversation = conversation(&mut t, &key).await;
    const SSN: &str = "123-45-6789";

    let remote = stream(
        &mut t,
        &key,
        &conversation,
        &format!("tool:remote__echo my SSN is {SSN}"),
    )
    .await;
    assert_eq!(remote.finished[0].outcome, "ok", "{remote:?}");
    let sent = plugin.received();
    let q = sent[0].arguments["q"].as_str().expect("q").to_owned();
    assert!(
        !q.contains(SSN),
        "the plugin off the premises got a placeholder: {q}"
    );
    assert!(q.contains("[SSN_"), "{q}");
    for request in t.upstream.requests() {
        assert!(
            !request.body.to_string().contains(SSN),
            "the model off the premises never sees the number: {}",
            request.body
        );
    }
    assert!(
        remote.text.contains(SSN),
        "the user reads it back: {remote:?}"
    );

    let inhouse = stream(
        &mut t,
        &key,
        &conversation,
        &format!("tool:inhouse__echo my SSN is {SSN}"),
    )
    .await;
    assert_eq!(inhouse.finished[0].outcome, "ok");
    let sent = plugin.received();
    assert!(
        sent[1].arguments["q"]
            .as_str()
            .unwrap_or_default()
            .contains(SSN),
        "a plugin on the premises gets what the user wrote"
    );
    for request in t.upstream.requests() {
        assert!(!request.body.to_string().contains(SSN));
    }
    let events = invocations(&t).await;
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e.phi), "{events:?}");
}

#[tokio::test]
async fn escaped_phi_in_a_models_arguments_is_found_and_redacted() {
    let mut t = setup().await;
    let plugin = TestPlugin::start().await;
    register(&t, &plugin, "remote", false).await;
    profile(&mut t, &["remote"], "cloud/echo-1", PhiPolicy::Redact).await;
    let key = t.server.owner_key.clone();
    let conversation = conversation_with_model(&mut t, &key, "cloud/escaping").await;

    let streamed = stream(
        &mut t,
        &key,
        &conversation,
        "tool:remote__echo ask the clinic",
    )
    .await;
    assert_eq!(streamed.finished[0].outcome, "ok", "{streamed:?}");
    let sent = plugin.received();
    let q = sent[0].arguments["q"].as_str().expect("q");
    assert!(
        !q.contains(ESCAPED_ADDRESS),
        "written as \\u0040, the address is still an address: {q}"
    );
    assert!(q.contains("[EMAIL_"), "{q}");
    let events = invocations(&t).await;
    assert!(events[0].phi, "{events:?}");
}

#[tokio::test]
async fn callers_without_plugin_use_get_no_tools_and_a_grant_on_one_plugin_offers_that_one() {
    let mut t = setup().await;
    let plugin = TestPlugin::start().await;
    register(&t, &plugin, "helper", false).await;
    register(&t, &plugin, "weather", false).await;
    profile(
        &mut t,
        &["helper", "weather"],
        "cloud/echo-1",
        PhiPolicy::Allow,
    )
    .await;
    let add = |role: &'static str, object: &'static str, action: &'static str| AddPolicyRequest {
        policy: Some(Policy {
            role: role.into(),
            permission: Some(Permission {
                object: object.into(),
                action: action.into(),
            }),
        }),
    };
    for (role, object, action) in [
        ("drafter", "conversation", "*"),
        ("drafter", "profile", "read"),
        ("forecaster", "conversation", "*"),
        ("forecaster", "profile", "read"),
        ("forecaster", "plugin/weather", "use"),
    ] {
        t.admin
            .add_policy(authorized(&t.server.owner_key, add(role, object, action)))
            .await
            .expect("policy");
    }
    let drafter = key_with_roles(t.server.channel().await, &t.server.owner_key, &["drafter"]).await;
    let drafted = conversation(&mut t, &drafter).await;
    let streamed = stream(&mut t, &drafter, &drafted, "tool:helper__echo hi").await;
    assert!(streamed.completed);
    assert!(streamed.started.is_empty(), "{streamed:?}");
    assert!(plugin.received().is_empty());
    let last = t.upstream.requests().pop().expect("asked");
    assert!(
        last.body.get("tools").is_none_or(Value::is_null),
        "{}",
        last.body
    );

    // A grant on one plugin offers that plugin's tools only.
    let forecaster = key_with_roles(
        t.server.channel().await,
        &t.server.owner_key,
        &["forecaster"],
    )
    .await;
    let forecast = conversation(&mut t, &forecaster).await;
    let asked_before = t.upstream.requests().len();
    let streamed = stream(&mut t, &forecaster, &forecast, "tool:helper__echo hi").await;
    let offered: Vec<String> = t.upstream.requests()[asked_before].body["tools"]
        .as_array()
        .expect("tools offered")
        .iter()
        .filter_map(|tool| tool["function"]["name"].as_str().map(str::to_owned))
        .collect();
    assert!(
        !offered.is_empty() && offered.iter().all(|name| name.starts_with("weather__")),
        "{offered:?}"
    );
    assert_eq!(streamed.started.len(), 1, "{streamed:?}");
    assert_eq!(streamed.started[0].plugin, "weather");

    // A member may use them all.
    let member = key_with_roles(t.server.channel().await, &t.server.owner_key, &["member"]).await;
    let theirs = conversation(&mut t, &member).await;
    let streamed = stream(&mut t, &member, &theirs, "tool:helper__echo hi").await;
    assert_eq!(streamed.started.len(), 1, "{streamed:?}");
    assert_eq!(streamed.started[0].plugin, "helper");
}
