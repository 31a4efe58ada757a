//! PluginService against a real gRPC plugin on loopback: registration reads and pins the
//! manifest, calls reach the plugin with its credential and opaque ids only, tool errors
//! and timeouts come back as such, a changed manifest disables the plugin until its hash
//! is approved, every change and call is in the audit chain (hashes, never content),
//! roles decide who may do what, tenants never see each other's plugins, what a plugin is
//! sent follows the PHI policy, and working memory goes to a plugin only as granted.

use codexcontinue::pb::{
    json,
    plugin::Tool,
    v1::{
        AddPolicyRequest, ApprovePluginRequest, AuditEvent, AuditFilter, Capability,
        GetPluginRequest, GetWorkingStateRequest, InvokePluginRequest, InvokePluginResponse,
        ListAuditEventsRequest, ListPluginsRequest, Permission, PhiPolicy, Plugin, PluginTransport,
        Policy, RefreshPluginRequest, RegisterPluginRequest, SetWorkingStateRequest,
        UnregisterPluginRequest, UpdatePluginRequest, VerifyChainRequest, WhoAmIRequest,
        admin_service_client::AdminServiceClient, audit_service_client::AuditServiceClient,
        auth_service_client::AuthServiceClient, chat_service_client::ChatServiceClient,
        memory_service_client::MemoryServiceClient, plugin_service_client::PluginServiceClient,
    },
};
use codexcontinue_tests::{
    TestServer, eventually,
    grpc::{authorized, bad_field, key_with_roles},
    plugin_server::{TestPlugin, default_manifest},
};
use serde_json::json;
use tonic::{Code, Status, transport::Channel};

use crate::chat_fixture::{create_conversation, set_tenant_phi_policy};

const PLUGIN_SECRET: &str = "plugin-static-credential";

fn registration(plugin: &TestPlugin) -> RegisterPluginRequest {
    RegisterPluginRequest {
        endpoint: plugin.endpoint(),
        transport: PluginTransport::Grpc.into(),
        credential: PLUGIN_SECRET.into(),
        granted_capabilities: vec![Capability::ReadMemory.into()],
        ..RegisterPluginRequest::default()
    }
}

async fn register(
    client: &mut PluginServiceClient<Channel>,
    key: &str,
    request: RegisterPluginRequest,
) -> Result<Plugin, Status> {
    Ok(client
        .register_plugin(authorized(key, request))
        .await?
        .into_inner()
        .plugin
        .expect("a plugin"))
}

/// Registers `plugin` as `name`, with [`registration`]'s settings otherwise.
async fn register_named(
    client: &mut PluginServiceClient<Channel>,
    key: &str,
    plugin: &TestPlugin,
    name: &str,
) -> Plugin {
    let request = RegisterPluginRequest {
        name: name.into(),
        ..registration(plugin)
    };
    register(client, key, request).await.expect("registers")
}

async fn invoke(
    client: &mut PluginServiceClient<Channel>,
    key: &str,
    plugin: &Plugin,
    tool: &str,
    arguments: serde_json::Value,
) -> Result<InvokePluginResponse, Status> {
    invoke_in(client, key, plugin, tool, arguments, "").await
}

/// Like [`invoke`], within `conversation` (empty: none).
async fn invoke_in(
    client: &mut PluginServiceClient<Channel>,
    key: &str,
    plugin: &Plugin,
    tool: &str,
    arguments: serde_json::Value,
    conversation: &str,
) -> Result<InvokePluginResponse, Status> {
    Ok(client
        .invoke_plugin(authorized(
            key,
            InvokePluginRequest {
                plugin_id: plugin.id.clone(),
                tool: tool.into(),
                arguments: Some(json::to_struct(arguments)),
                conversation_id: conversation.into(),
            },
        ))
        .await?
        .into_inner())
}

/// The tenant's audit events of `action`, oldest first.
async fn events(server: &TestServer, action: &str) -> Vec<AuditEvent> {
    let mut found = AuditServiceClient::new(server.channel().await)
        .list_audit_events(authorized(
            &server.owner_key,
            ListAuditEventsRequest {
                filter: Some(AuditFilter {
                    action: action.into(),
                    ..AuditFilter::default()
                }),
                page_size: 100,
                page_token: String::new(),
            },
        ))
        .await
        .expect("list audit events")
        .into_inner()
        .events;
    found.sort_by_key(|event| event.seq);
    found
}

fn detail(event: &AuditEvent, name: &str) -> serde_json::Value {
    json::from_struct(event.details.clone().unwrap_or_default()).expect("details")[name].clone()
}

#[tokio::test]
async fn a_grpc_plugin_is_registered_called_with_opaque_ids_and_audited_by_hash() {
    let server = TestServer::start().await;
    let plugin = TestPlugin::start().await;
    let mut client = PluginServiceClient::new(server.channel().await);
    let key = &server.owner_key;

    let registered = register(&mut client, key, registration(&plugin))
        .await
        .expect("registers");
    assert_eq!(registered.name, "helper", "named after its manifest");
    assert_eq!(registered.transport(), PluginTransport::Grpc);
    assert!(registered.enabled && registered.credential_set);
    assert_eq!(registered.manifest_sha256.len(), 64);
    assert!(registered.pending_manifest_sha256.is_empty());
    let tools: Vec<&str> = registered.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(tools, ["echo", "fail", "noop", "sleep"]);
    assert_eq!(
        registered.requested_capabilities,
        [Capability::ReadMemory as i32]
    );
    assert_eq!(
        registered.granted_capabilities,
        [Capability::ReadMemory as i32]
    );
    assert_eq!(registered.timeout_ms, 10_000);

    let listed = client
        .list_plugins(authorized(key, ListPluginsRequest::default()))
        .await
        .expect("lists")
        .into_inner();
    assert_eq!(listed.plugins, std::slice::from_ref(&registered));

    let answer = invoke(
        &mut client,
        key,
        &registered,
        "echo",
        json!({ "text": "hello" }),
    )
    .await
    .expect("echo answers");
    assert!(!answer.is_error);
    let result = json::from_struct(answer.result.expect("result")).expect("json");
    assert_eq!(result["text"], "hello");
    let received = plugin.received();
    let call = received.last().expect("the plugin was called");
    assert_eq!(
        call.authorization.as_deref(),
        Some("Bearer plugin-static-credential")
    );
    let me = AuthServiceClient::new(server.channel().await)
        .who_am_i(authorized(key, WhoAmIRequest {}))
        .await
        .expect("who am i")
        .into_inner()
        .principal
        .expect("principal");
    for (opaque, real) in [
        (&call.tenant_id, &me.tenant_id),
        (&call.user_id, &me.user_id),
    ] {
        assert_eq!(opaque.len(), 32, "an opaque id: {opaque}");
        let real = uuid::Uuid::try_parse(real).expect("real id");
        assert_ne!(opaque, &real.simple().to_string(), "not the real id");
        assert!(!opaque.contains(&real.simple().to_string()[..8]));
    }
    assert_ne!(call.tenant_id, call.user_id);

    // The tool's own failure is its answer; bad arguments and tools never reach it.
    let failed = invoke(&mut client, key, &registered, "fail", json!({}))
        .await
        .expect("a tool error is an answer");
    assert!(failed.is_error);
    let said = json::from_struct(failed.result.expect("result")).expect("json");
    assert!(
        said["error"]
            .as_str()
            .unwrap_or_default()
            .contains("always fails"),
        "{said}"
    );
    let calls_before = plugin.received().len();
    let err = invoke(&mut client, key, &registered, "echo", json!({ "text": 7 }))
        .await
        .expect_err("argument of the wrong type");
    assert_eq!(bad_field(&err), "arguments");
    let err = invoke(&mut client, key, &registered, "missing", json!({}))
        .await
        .expect_err("no such tool");
    assert_eq!(bad_field(&err), "tool");
    assert_eq!(plugin.received().len(), calls_before);

    // A plugin slower than its timeout.
    client
        .update_plugin(authorized(
            key,
            UpdatePluginRequest {
                plugin_id: registered.id.clone(),
                timeout_ms: Some(200),
                ..UpdatePluginRequest::default()
            },
        ))
        .await
        .expect("sets the timeout");
    let err = invoke(
        &mut client,
        key,
        &registered,
        "sleep",
        json!({ "ms": 3000 }),
    )
    .await
    .expect_err("times out");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().contains("200 ms"), "{err:?}");

    // Disabled: refused before the plugin is called.
    client
        .update_plugin(authorized(
            key,
            UpdatePluginRequest {
                plugin_id: registered.id.clone(),
                enabled: Some(false),
                ..UpdatePluginRequest::default()
            },
        ))
        .await
        .expect("disables");
    let err = invoke(&mut client, key, &registered, "noop", json!({}))
        .await
        .expect_err("disabled");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");

    let invocations = events(&server, "plugin.invoke").await;
    assert_eq!(invocations.len(), 3, "echo, fail, sleep: {invocations:?}");
    let outcomes: Vec<String> = invocations
        .iter()
        .map(|e| detail(e, "outcome").as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(outcomes, ["ok", "tool_error", "timeout"]);
    let echo = &invocations[0];
    assert_eq!(detail(echo, "tool"), "echo");
    assert_eq!(
        detail(echo, "arguments_sha256").as_str().map(str::len),
        Some(64)
    );
    assert_eq!(
        detail(echo, "result_sha256").as_str().map(str::len),
        Some(64)
    );
    assert!(
        !format!("{:?}", echo.details).contains("hello"),
        "no content in the trail: {echo:?}"
    );
    assert_eq!(events(&server, "plugin.register").await.len(), 1);
    assert_eq!(events(&server, "plugin.update").await.len(), 2);

    client
        .unregister_plugin(authorized(
            key,
            UnregisterPluginRequest {
                plugin_id: registered.id.clone(),
            },
        ))
        .await
        .expect("unregisters");
    let err = client
        .get_plugin(authorized(
            key,
            GetPluginRequest {
                plugin_id: registered.id.clone(),
            },
        ))
        .await
        .expect_err("gone");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(events(&server, "plugin.unregister").await.len(), 1);
    let verified = AuditServiceClient::new(server.channel().await)
        .verify_chain(authorized(key, VerifyChainRequest::default()))
        .await
        .expect("verifies")
        .into_inner();
    assert!(verified.intact, "{verified:?}");
}

#[tokio::test]
async fn registration_refuses_what_it_cannot_accept_naming_the_field() {
    let server = TestServer::start().await;
    let plugin = TestPlugin::start().await;
    let mut client = PluginServiceClient::new(server.channel().await);
    let key = &server.owner_key;

    let metadata = RegisterPluginRequest {
        endpoint: "http://169.254.169.254:80".into(),
        ..registration(&plugin)
    };
    let err = register(&mut client, key, metadata)
        .await
        .expect_err("metadata address");
    assert_eq!(bad_field(&err), "endpoint");
    assert!(err.message().contains("egress.allow"), "{err:?}");

    let nobody = RegisterPluginRequest {
        endpoint: "http://127.0.0.1:9".into(),
        ..registration(&plugin)
    };
    let err = register(&mut client, key, nobody)
        .await
        .expect_err("nobody listens");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");

    let ungrantable = RegisterPluginRequest {
        granted_capabilities: vec![Capability::ReceivePhi.into()],
        ..registration(&plugin)
    };
    let err = register(&mut client, key, ungrantable)
        .await
        .expect_err("not requested");
    assert_eq!(bad_field(&err), "granted_capabilities");

    for (request, field) in [
        (
            RegisterPluginRequest {
                timeout_ms: 60_001,
                ..registration(&plugin)
            },
            "timeout_ms",
        ),
        (
            RegisterPluginRequest {
                name: "Not A Name".into(),
                ..registration(&plugin)
            },
            "name",
        ),
    ] {
        let err = register(&mut client, key, request)
            .await
            .expect_err("refused");
        assert_eq!(bad_field(&err), field);
    }

    let mut manifest = default_manifest();
    manifest.tools.push(Tool {
        name: "has spaces".into(),
        ..Tool::default()
    });
    plugin.set_manifest(manifest);
    let err = register(&mut client, key, registration(&plugin))
        .await
        .expect_err("bad tool name");
    assert_eq!(bad_field(&err), "manifest.tools[4].name");

    plugin.set_manifest(default_manifest());
    register(&mut client, key, registration(&plugin))
        .await
        .expect("registers");
    let err = register(&mut client, key, registration(&plugin))
        .await
        .expect_err("same name");
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
}

#[tokio::test]
async fn a_changed_manifest_disables_the_plugin_until_that_hash_is_approved() {
    let server = TestServer::with_env(vec![(
        "CODEXCONTINUE_PLUGINS__REFRESH_INTERVAL".into(),
        "1s".into(),
    )])
    .await;
    let plugin = TestPlugin::start().await;
    let mut client = PluginServiceClient::new(server.channel().await);
    let key = &server.owner_key;
    let registered = register(&mut client, key, registration(&plugin))
        .await
        .expect("registers");

    // The plugin adds a tool and stops asking for memory; the scheduled refresh notices.
    let mut manifest = default_manifest();
    manifest.tools.push(Tool {
        name: "extra".into(),
        description: "New".into(),
        parameters_schema: None,
    });
    manifest.requested_capabilities.clear();
    plugin.set_manifest(manifest);
    let get = GetPluginRequest {
        plugin_id: registered.id.clone(),
    };
    let disabled = eventually("the refresh disables the plugin", || {
        let mut client = client.clone();
        let get = get.clone();
        async move {
            let plugin = client
                .get_plugin(authorized(key, get))
                .await
                .ok()?
                .into_inner()
                .plugin?;
            (!plugin.pending_manifest_sha256.is_empty()).then_some(plugin)
        }
    })
    .await;
    assert!(!disabled.enabled);
    assert_eq!(
        disabled.manifest_sha256, registered.manifest_sha256,
        "still pinned"
    );
    assert_eq!(disabled.tools.len(), 4, "the pinned tools are shown");
    let pending = disabled.pending_manifest_sha256.clone();

    let err = invoke(&mut client, key, &registered, "noop", json!({}))
        .await
        .expect_err("disabled");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("ApprovePlugin"), "{err:?}");
    let err = client
        .update_plugin(authorized(
            key,
            UpdatePluginRequest {
                plugin_id: registered.id.clone(),
                enabled: Some(true),
                ..UpdatePluginRequest::default()
            },
        ))
        .await
        .expect_err("cannot be enabled around the approval");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");

    let err = client
        .approve_plugin(authorized(
            key,
            ApprovePluginRequest {
                plugin_id: registered.id.clone(),
                manifest_sha256: registered.manifest_sha256.clone(),
            },
        ))
        .await
        .expect_err("not the pending hash");
    assert_eq!(bad_field(&err), "manifest_sha256");
    let approved = client
        .approve_plugin(authorized(
            key,
            ApprovePluginRequest {
                plugin_id: registered.id.clone(),
                manifest_sha256: pending.clone(),
            },
        ))
        .await
        .expect("approves")
        .into_inner()
        .plugin
        .expect("plugin");
    assert!(approved.enabled);
    assert_eq!(approved.manifest_sha256, pending);
    assert!(approved.pending_manifest_sha256.is_empty());
    assert_eq!(approved.tools.len(), 5);
    assert!(
        approved.granted_capabilities.is_empty(),
        "no longer requested, no longer granted"
    );
    invoke(&mut client, key, &approved, "noop", json!({}))
        .await
        .expect("callable again");

    let refreshed = client
        .refresh_plugin(authorized(
            key,
            RefreshPluginRequest {
                plugin_id: registered.id.clone(),
            },
        ))
        .await
        .expect("refreshes")
        .into_inner();
    assert!(!refreshed.changed);

    let changed = events(&server, "plugin.manifest_changed").await;
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(
        detail(&changed[0], "previous_manifest_sha256"),
        registered.manifest_sha256
    );
    assert_eq!(detail(&changed[0], "manifest_sha256"), pending.as_str());
    let approvals = events(&server, "plugin.approve").await;
    assert_eq!(approvals.len(), 1);
    assert_eq!(detail(&approvals[0], "manifest_sha256"), pending.as_str());
}

#[tokio::test]
async fn replicas_share_the_scheduled_refresh_and_a_plugin_that_is_down_holds_up_none() {
    let server = TestServer::with_env(vec![(
        "CODEXCONTINUE_PLUGINS__REFRESH_INTERVAL".into(),
        "1s".into(),
    )])
    .await;
    let replica = server.replica().await;
    let down = TestPlugin::start().await;
    let up = TestPlugin::start().await;
    let mut client = PluginServiceClient::new(server.channel().await);
    let key = &server.owner_key;
    let gone = register_named(&mut client, key, &down, "gone").await;
    let kept = register_named(&mut client, key, &up, "kept").await;
    drop(down);
    let mut manifest = default_manifest();
    manifest.tools.pop();
    up.set_manifest(manifest);

    let get = GetPluginRequest {
        plugin_id: kept.id.clone(),
    };
    eventually("the plugin that answers is read", || {
        let mut client = client.clone();
        let get = get.clone();
        async move {
            let plugin = client
                .get_plugin(authorized(key, get))
                .await
                .ok()?
                .into_inner()
                .plugin?;
            (!plugin.pending_manifest_sha256.is_empty()).then_some(())
        }
    })
    .await;
    let id: uuid::Uuid = gone.id.parse().expect("uuid");
    let failures = eventually("the one that is down counts its failures", || {
        let db = &server.db;
        async move {
            let (failures, waits): (i32, bool) = sqlx::query_as(
                "SELECT refresh_failures, refresh_next_at > now() FROM plugins WHERE id = $1",
            )
            .bind(id)
            .fetch_one(&mut db.owner().await)
            .await
            .ok()?;
            (failures >= 3 && waits).then_some(failures)
        }
    })
    .await;
    assert!(failures >= 3);
    // Both replicas run the schedule; each pass claims the plugins it reads, so the
    // change was read, and recorded, once.
    let changed = events(&server, "plugin.manifest_changed").await;
    assert_eq!(changed.len(), 1, "{changed:?}");
    drop(replica);
}

#[tokio::test]
async fn roles_decide_who_registers_and_calls_and_tenants_never_share_plugins() {
    let server = TestServer::start().await;
    let plugin = TestPlugin::start().await;
    let channel = server.channel().await;
    let mut client = PluginServiceClient::new(channel.clone());
    let registered = register(&mut client, &server.owner_key, registration(&plugin))
        .await
        .expect("registers");

    let member = key_with_roles(channel.clone(), &server.owner_key, &["member"]).await;
    let viewer = key_with_roles(channel.clone(), &server.owner_key, &["viewer"]).await;
    invoke(&mut client, &member, &registered, "noop", json!({}))
        .await
        .expect("members call tools");
    let err = register(&mut client, &member, registration(&plugin))
        .await
        .expect_err("members do not register");
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = invoke(&mut client, &viewer, &registered, "noop", json!({}))
        .await
        .expect_err("viewers do not call tools");
    assert_eq!(err.code(), Code::PermissionDenied);
    let seen = client
        .list_plugins(authorized(&viewer, ListPluginsRequest::default()))
        .await
        .expect("viewers list")
        .into_inner();
    assert_eq!(seen.plugins.len(), 1);

    // A grant on one plugin: that plugin's tools, no other's, and nothing else.
    let second = register_named(&mut client, &server.owner_key, &plugin, "second").await;
    let mut admin = AdminServiceClient::new(channel.clone());
    let grant = |object: &str, action: &str| AddPolicyRequest {
        policy: Some(Policy {
            role: "helper-caller".into(),
            permission: Some(Permission {
                object: object.into(),
                action: action.into(),
            }),
        }),
    };
    admin
        .add_policy(authorized(
            &server.owner_key,
            grant("plugin/helper", "invoke"),
        ))
        .await
        .expect("a grant on one plugin");
    for (object, action) in [("plugin/helper", "manage"), ("plugin/Not A Name", "invoke")] {
        let err = admin
            .add_policy(authorized(&server.owner_key, grant(object, action)))
            .await
            .expect_err("refused");
        assert_eq!(bad_field(&err), "policy", "{err:?}");
    }
    let caller = key_with_roles(channel.clone(), &server.owner_key, &["helper-caller"]).await;
    invoke(&mut client, &caller, &registered, "noop", json!({}))
        .await
        .expect("calls the plugin it was granted");
    let err = invoke(&mut client, &caller, &second, "noop", json!({}))
        .await
        .expect_err("not another");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let unknown = Plugin {
        id: uuid::Uuid::now_v7().to_string(),
        ..second.clone()
    };
    let err = invoke(&mut client, &caller, &unknown, "noop", json!({}))
        .await
        .expect_err("no such plugin");
    assert_eq!(
        err.code(),
        Code::PermissionDenied,
        "whether it exists is not told: {err:?}"
    );
    let err = client
        .list_plugins(authorized(&caller, ListPluginsRequest::default()))
        .await
        .expect_err("reading plugins is another permission");
    assert_eq!(err.code(), Code::PermissionDenied);

    let other = server.add_tenant("globex").await;
    let theirs = client
        .list_plugins(authorized(&other, ListPluginsRequest::default()))
        .await
        .expect("lists")
        .into_inner();
    assert!(theirs.plugins.is_empty(), "{theirs:?}");
    let get = GetPluginRequest {
        plugin_id: registered.id.clone(),
    };
    let err = client
        .get_plugin(authorized(&other, get))
        .await
        .expect_err("not theirs");
    assert_eq!(err.code(), Code::NotFound);
    let calls = plugin.received().len();
    let err = invoke(&mut client, &other, &registered, "noop", json!({}))
        .await
        .expect_err("not theirs");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(plugin.received().len(), calls);
    // The same plugin registered by the other tenant is another plugin with other ids.
    let their_own = register(&mut client, &other, registration(&plugin))
        .await
        .expect("registers its own");
    assert_ne!(their_own.id, registered.id);
    invoke(
        &mut client,
        &other,
        &their_own,
        "echo",
        json!({ "text": "x" }),
    )
    .await
    .expect("calls its own");
    invoke(
        &mut client,
        &server.owner_key,
        &registered,
        "echo",
        json!({ "text": "y" }),
    )
    .await
    .expect("calls its own");
    let received = plugin.received();
    let [.., theirs, ours] = received.as_slice() else {
        panic!("two calls: {received:?}")
    };
    assert_ne!(theirs.tenant_id, ours.tenant_id);
}

#[tokio::test]
async fn a_plugin_outside_a_narrowed_egress_policy_is_not_called() {
    let server = TestServer::start().await;
    let plugin = TestPlugin::start().await;
    let mut client = PluginServiceClient::new(server.channel().await);
    let registered = register(&mut client, &server.owner_key, registration(&plugin))
        .await
        .expect("registers while loopback is allowed");
    // A replica whose operator allows no private addresses any more.
    let strict = server
        .replica_with(vec![("CODEXCONTINUE_EGRESS__ALLOW".into(), "[]".into())])
        .await;
    let mut strict_client = PluginServiceClient::new(strict.channel().await);
    let err = invoke(
        &mut strict_client,
        &server.owner_key,
        &registered,
        "noop",
        json!({}),
    )
    .await
    .expect_err("refused at connection");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().contains("egress.allow"), "{err:?}");
    assert!(plugin.received().is_empty(), "the plugin was never called");
}

#[tokio::test]
async fn invoke_plugin_sends_arguments_as_the_tenants_phi_policy_allows() {
    let server = TestServer::start().await;
    let plugin = TestPlugin::start().await;
    let mut client = PluginServiceClient::new(server.channel().await);
    let key = &server.owner_key;
    let remote = register_named(&mut client, key, &plugin, "remote").await;
    let inhouse = register(
        &mut client,
        key,
        RegisterPluginRequest {
            name: "inhouse".into(),
            on_premises: true,
            ..registration(&plugin)
        },
    )
    .await
    .expect("registers");
    const SSN: &str = "123-45-6789";
    const ADDRESS: &str = "jane.doe@example.org";
    // Decoded from JSON, the address is plain text; the guard reads strings, not escapes.
    let arguments: serde_json::Value = serde_json::from_str(&format!(
        r#"{{"q": "SSN {SSN}, write to {}"}}"#,
        ADDRESS.replace('@', "\\u0040")
    ))
    .expect("JSON");

    set_tenant_phi_policy(&server, PhiPolicy::Redact).await;
    let answered = invoke(&mut client, key, &remote, "echo", arguments.clone())
        .await
        .expect("invokes");
    let sent = plugin.received().last().expect("called").arguments["q"].clone();
    let sent = sent.as_str().expect("q");
    assert!(
        !sent.contains(SSN) && !sent.contains(ADDRESS),
        "a plugin off the premises gets placeholders: {sent}"
    );
    assert!(
        sent.contains("[SSN_1]") && sent.contains("[EMAIL_1]"),
        "{sent}"
    );
    let result = json::from_struct(answered.result.expect("result")).expect("JSON");
    assert_eq!(
        result["q"], arguments["q"],
        "the caller reads its own values back"
    );

    invoke(&mut client, key, &inhouse, "echo", arguments.clone())
        .await
        .expect("invokes");
    assert_eq!(
        plugin.received().last().expect("called").arguments["q"],
        arguments["q"],
        "a plugin on the premises gets the arguments as written"
    );

    set_tenant_phi_policy(&server, PhiPolicy::Refuse).await;
    let calls = plugin.received().len();
    let refused = invoke(&mut client, key, &remote, "echo", arguments.clone())
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("ssn") && refused.message().contains("email"),
        "names the kinds: {}",
        refused.message()
    );
    assert!(!refused.message().contains(SSN));
    assert_eq!(plugin.received().len(), calls, "the plugin was not called");
    let clean = invoke(
        &mut client,
        key,
        &remote,
        "echo",
        json!({ "q": "no identifiers" }),
    )
    .await
    .expect("clean arguments pass");
    assert!(!clean.is_error);

    let events = events(&server, "plugin.invoke").await;
    let phi: Vec<bool> = events.iter().map(|e| e.phi).collect();
    assert_eq!(phi, [true, true, true, false]);
    let outcomes: Vec<_> = events.iter().map(|e| detail(e, "outcome")).collect();
    assert_eq!(outcomes, ["ok", "ok", "refused", "ok"]);
}

#[tokio::test]
async fn a_grpc_plugin_reads_and_writes_working_memory_only_as_granted() {
    let server = TestServer::start().await;
    let plugin = TestPlugin::start().await;
    let mut manifest = default_manifest();
    manifest.requested_capabilities = vec![
        "CAPABILITY_READ_WORKING_MEMORY".into(),
        "CAPABILITY_WRITE_WORKING_MEMORY".into(),
    ];
    plugin.set_manifest(manifest);
    let channel = server.channel().await;
    let mut client = PluginServiceClient::new(channel.clone());
    let key = &server.owner_key;
    let registered = register(
        &mut client,
        key,
        RegisterPluginRequest {
            granted_capabilities: vec![
                Capability::ReadWorkingMemory.into(),
                Capability::WriteWorkingMemory.into(),
            ],
            ..registration(&plugin)
        },
    )
    .await
    .expect("registers");
    let conversation =
        create_conversation(&mut ChatServiceClient::new(channel.clone()), key, "", "").await;
    let mut memory = MemoryServiceClient::new(channel.clone());
    let state = json!({ "step": 1, "note": "patient SSN 123-45-6789" });
    memory
        .set_working_state(authorized(
            key,
            SetWorkingStateRequest {
                conversation_id: conversation.clone(),
                state: Some(json::to_struct(state.clone())),
                ttl_seconds: 0,
            },
        ))
        .await
        .expect("state set");
    let working = || {
        let mut memory = memory.clone();
        let conversation = conversation.clone();
        async move {
            let state = memory
                .get_working_state(authorized(
                    key,
                    GetWorkingStateRequest {
                        conversation_id: conversation,
                    },
                ))
                .await
                .expect("state")
                .into_inner()
                .state
                .unwrap_or_default();
            json::from_struct(state).expect("JSON")
        }
    };

    // Read: passed, under the tenant's PHI policy (the plugin is off the premises).
    set_tenant_phi_policy(&server, PhiPolicy::Redact).await;
    invoke_in(
        &mut client,
        key,
        &registered,
        "noop",
        json!({}),
        &conversation,
    )
    .await
    .expect("invokes");
    let given = plugin
        .received()
        .last()
        .expect("called")
        .working_memory
        .clone();
    let given = given.expect("the granted plugin reads the working memory");
    assert_eq!(given["step"], 1);
    let note = given["note"].as_str().expect("note");
    assert!(
        !note.contains("123-45-6789") && note.contains("[SSN_1]"),
        "{note}"
    );
    assert_eq!(working().await, state, "reading changes nothing");
    // Write: kept.
    invoke_in(
        &mut client,
        key,
        &registered,
        "echo",
        json!({ "text": "keep going" }),
        &conversation,
    )
    .await
    .expect("invokes");
    assert_eq!(working().await, json!({ "kept": "going" }));

    // Without the grants: nothing read, nothing written.
    client
        .update_plugin(authorized(
            key,
            UpdatePluginRequest {
                plugin_id: registered.id.clone(),
                granted_capabilities: Vec::new(),
                update_capabilities: true,
                ..UpdatePluginRequest::default()
            },
        ))
        .await
        .expect("grants withdrawn");
    invoke_in(
        &mut client,
        key,
        &registered,
        "echo",
        json!({ "text": "keep other" }),
        &conversation,
    )
    .await
    .expect("invokes");
    assert!(
        plugin
            .received()
            .last()
            .expect("called")
            .working_memory
            .is_none()
    );
    assert_eq!(working().await, json!({ "kept": "going" }));

    let err = invoke_in(&mut client, key, &registered, "noop", json!({}), "nope")
        .await
        .expect_err("not a conversation id");
    assert_eq!(bad_field(&err), "conversation_id");
}
