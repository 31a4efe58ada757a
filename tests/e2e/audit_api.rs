//! The audit trail through the API: one event per call, fail closed, security actions
//! recorded in the transaction of their change, listing, export, verification, retention,
//! and group commit under concurrent callers of several tenants.

use codexcontinue::{
    audit::{self, CheckpointSigner},
    pb::v1::{
        AuditFilter, AuditOutcome, CreateApiKeyRequest, ExportAuditEventsRequest, ExportFormat,
        GetCheckpointPublicKeyRequest, GetRetentionPolicyRequest, ListAuditEventsRequest,
        RevokeApiKeyRequest, SetRetentionPolicyRequest, VerifyChainRequest, WhoAmIRequest,
        audit_service_client::AuditServiceClient, auth_service_client::AuthServiceClient,
    },
    tenancy::TenantId,
};
use codexcontinue_tests::{
    TestEnv, TestServer,
    grpc::{authorized, key_with_roles},
};
use tonic::Code;
use tonic_types::StatusExt;
use uuid::Uuid;

use super::audit::{database, tamper};

fn signer() -> CheckpointSigner {
    TestEnv::get().checkpoint_signer()
}

#[tokio::test]
async fn every_api_call_leaves_exactly_one_event_before_its_answer() {
    use codexcontinue::edge::{API_SERVICES, ApiCatalog};
    use codexcontinue_tests::grpc::call_empty;

    let server = TestServer::start().await;
    let channel = server.channel().await;
    let catalog = ApiCatalog::served();
    let authorization = format!("Bearer {}", server.owner_key);
    let mut calls = Vec::new();
    for service in API_SERVICES {
        for method in catalog.methods(service) {
            let path = format!("/{service}/{method}");
            let result =
                call_empty(channel.clone(), &path, &[("authorization", &authorization)]).await;
            let code = result.err().map_or(Code::Ok, |status| status.code());
            // The login calls need no credential: without a caller they land in the
            // platform chain.
            if !matches!(method, "StartLogin" | "CompleteLogin" | "ExchangeLoginCode") {
                calls.push((path, code));
            }
        }
    }
    // Refused before authentication: recorded in the platform chain.
    let refused = call_empty(
        channel.clone(),
        "/codexcontinue.v1.ChatService/ListConversations",
        &[],
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    // Health checks are not audited.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .unwrap();

    let mut owner = server.db.owner().await;
    let tenant: Uuid = sqlx::query_scalar("SELECT id FROM tenants WHERE slug = 'acme'")
        .fetch_one(&mut owner)
        .await
        .unwrap();
    // RPC events only: actions such as "audit.export" are recorded besides them.
    let events: Vec<(String, i32, String, String)> = sqlx::query_as(
        "SELECT action, status_code, outcome, actor_kind FROM audit_events
         WHERE tenant_id = $1 AND action LIKE '/%' ORDER BY seq",
    )
    .bind(tenant)
    .fetch_all(&mut owner)
    .await
    .unwrap();
    assert_eq!(events.len(), calls.len(), "one event per call");
    for ((path, code), (action, status_code, outcome, actor)) in calls.iter().zip(&events) {
        assert_eq!(action, path);
        assert_eq!(*status_code, *code as i32, "{path}");
        let expected = match code {
            Code::Ok => "success",
            Code::PermissionDenied | Code::Unauthenticated | Code::ResourceExhausted => "denied",
            _ => "failure",
        };
        assert_eq!(outcome, expected, "{path}");
        assert_eq!(actor, "api_key");
    }
    let platform: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, actor_kind FROM audit_events WHERE tenant_id = $1 ORDER BY seq",
    )
    .bind(Uuid::nil())
    .fetch_all(&mut owner)
    .await
    .unwrap();
    let platform_actions: Vec<&str> = platform.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        platform_actions,
        [
            "/codexcontinue.v1.AuthService/CompleteLogin",
            "/codexcontinue.v1.AuthService/ExchangeLoginCode",
            "/codexcontinue.v1.AuthService/StartLogin",
            "/codexcontinue.v1.ChatService/ListConversations",
        ]
    );
    assert!(platform.iter().all(|(_, actor)| actor == "anonymous"));
    let intact = audit::verify(&database(&server.db).await, &signer(), TenantId(tenant))
        .await
        .unwrap();
    assert_eq!(intact.broken, None);
    assert!(intact.events_checked >= calls.len() as i64);
}

#[tokio::test]
async fn a_call_that_cannot_be_audited_fails_closed() {
    let server = TestServer::start().await;
    let mut auth = AuthServiceClient::new(server.channel().await);
    auth.who_am_i(authorized(&server.owner_key, WhoAmIRequest {}))
        .await
        .unwrap();
    sqlx::raw_sql("REVOKE INSERT ON audit_events FROM codexcontinue_app")
        .execute(&mut server.db.owner().await)
        .await
        .unwrap();
    let failed = auth
        .who_am_i(authorized(&server.owner_key, WhoAmIRequest {}))
        .await
        .unwrap_err();
    assert_eq!(failed.code(), Code::Internal, "{failed:?}");
    assert!(
        failed.message().contains("could not be audited"),
        "{failed:?}"
    );
}

#[tokio::test]
async fn auditors_list_and_verify_the_trail_over_the_api() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let mut auth = AuthServiceClient::new(channel.clone());
    for _ in 0..3 {
        auth.who_am_i(authorized(&server.owner_key, WhoAmIRequest {}))
            .await
            .unwrap();
    }
    let mut trail = AuditServiceClient::new(channel);
    let whoami = "/codexcontinue.v1.AuthService/WhoAmI";
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = trail
            .list_audit_events(authorized(
                &server.owner_key,
                ListAuditEventsRequest {
                    filter: Some(AuditFilter {
                        action: whoami.into(),
                        outcome: AuditOutcome::Success.into(),
                        ..AuditFilter::default()
                    }),
                    page_size: 2,
                    page_token: token,
                },
            ))
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.events.into_iter().map(|e| (e.seq, e.action, e.hash)));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), 3);
    assert!(seen.windows(2).all(|w| w[0].0 > w[1].0), "newest first");
    assert!(
        seen.iter()
            .all(|(_, action, hash)| action == whoami && hash.len() == 64)
    );

    let verified = trail
        .verify_chain(authorized(&server.owner_key, VerifyChainRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(verified.intact);
    assert!(verified.events_checked >= 4, "{verified:?}");

    tamper(
        &server.db,
        "UPDATE audit_events SET status_code = 7 WHERE seq = 2",
    )
    .await;
    let broken = trail
        .verify_chain(authorized(&server.owner_key, VerifyChainRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(!broken.intact);
    assert_eq!(broken.first_broken_seq, 2);
    assert_eq!(broken.problem, "hash mismatch");
}

#[tokio::test]
async fn exports_stream_matching_events_as_jsonl_or_csv_and_are_recorded() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let mut auth = AuthServiceClient::new(channel.clone());
    for _ in 0..3 {
        auth.who_am_i(authorized(&server.owner_key, WhoAmIRequest {}))
            .await
            .unwrap();
    }
    let whoami = "/codexcontinue.v1.AuthService/WhoAmI";
    let mut trail = AuditServiceClient::new(channel.clone());
    let export = |format: ExportFormat| {
        authorized(
            &server.owner_key,
            ExportAuditEventsRequest {
                filter: Some(AuditFilter {
                    action: whoami.into(),
                    ..AuditFilter::default()
                }),
                format: format.into(),
            },
        )
    };
    let mut stream = trail
        .export_audit_events(export(ExportFormat::Jsonl))
        .await
        .unwrap()
        .into_inner();
    let mut rows = Vec::new();
    while let Some(message) = stream.message().await.unwrap() {
        rows.push(serde_json::from_str::<serde_json::Value>(message.row.trim_end()).unwrap());
    }
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter()
            .all(|row| row["action"] == whoami && row["outcome"] == "success")
    );
    assert!(
        rows.windows(2)
            .all(|w| w[0]["seq"].as_i64() < w[1]["seq"].as_i64())
    );

    let mut stream = trail
        .export_audit_events(export(ExportFormat::Csv))
        .await
        .unwrap()
        .into_inner();
    let mut lines = Vec::new();
    while let Some(message) = stream.message().await.unwrap() {
        lines.push(message.row);
    }
    assert_eq!(lines.len(), 4, "header and three rows");
    assert!(lines[0].starts_with("seq,id,time,actor_kind,"));
    assert!(
        lines[1..]
            .iter()
            .all(|line| line.contains(whoami) && line.ends_with("\r\n"))
    );

    let bad = trail
        .export_audit_events(authorized(
            &server.owner_key,
            ExportAuditEventsRequest {
                filter: None,
                format: 99,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(
        bad.get_error_details()
            .bad_request()
            .unwrap()
            .field_violations[0]
            .field,
        "format"
    );
    let member = key_with_roles(channel.clone(), &server.owner_key, &["member"]).await;
    let denied = trail
        .export_audit_events(authorized(&member, ExportAuditEventsRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    let exports: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE action = 'audit.export' AND actor_kind = 'api_key'",
    )
    .fetch_one(&mut server.db.owner().await)
    .await
    .unwrap();
    assert_eq!(exports, 2, "each export recorded before its first row");
}

#[tokio::test]
async fn auditors_read_the_checkpoint_public_key_and_members_do_not() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let mut trail = AuditServiceClient::new(channel.clone());
    let auditor = key_with_roles(channel.clone(), &server.owner_key, &["auditor"]).await;
    let member = key_with_roles(channel.clone(), &server.owner_key, &["member"]).await;
    let key = trail
        .get_checkpoint_public_key(authorized(&auditor, GetCheckpointPublicKeyRequest {}))
        .await
        .unwrap()
        .into_inner();
    let expected = signer();
    assert_eq!(key.key_id, expected.key_id());
    assert_eq!(key.public_key, expected.public_key_base64());
    let refused = trail
        .get_checkpoint_public_key(authorized(&member, GetCheckpointPublicKeyRequest {}))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn retention_is_read_by_auditors_and_changed_only_by_owners() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let mut trail = AuditServiceClient::new(channel.clone());
    let auditor = key_with_roles(channel.clone(), &server.owner_key, &["auditor"]).await;
    let admin = key_with_roles(channel.clone(), &server.owner_key, &["admin"]).await;
    let days = trail
        .get_retention_policy(authorized(&auditor, GetRetentionPolicyRequest {}))
        .await
        .unwrap()
        .into_inner()
        .retention_days;
    assert_eq!(days, 2192, "six years by default");
    // Below the platform's floor (audit.min_retention_days, six years by default) too.
    for bad in [0, -5, 30, 2191, 36_526] {
        let refused = trail
            .set_retention_policy(authorized(
                &server.owner_key,
                SetRetentionPolicyRequest {
                    retention_days: bad,
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{bad}");
        assert_eq!(
            refused
                .get_error_details()
                .bad_request()
                .unwrap()
                .field_violations[0]
                .field,
            "retention_days"
        );
    }
    let denied = trail
        .set_retention_policy(authorized(
            &admin,
            SetRetentionPolicyRequest {
                retention_days: 3000,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let set = trail
        .set_retention_policy(authorized(
            &server.owner_key,
            SetRetentionPolicyRequest {
                retention_days: 3000,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(set.retention_days, 3000);
    let read = trail
        .get_retention_policy(authorized(&auditor, GetRetentionPolicyRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.retention_days, 3000);
    let (details,): (serde_json::Value,) =
        sqlx::query_as("SELECT details FROM audit_events WHERE action = 'audit.retention.set'")
            .fetch_one(&mut server.db.owner().await)
            .await
            .unwrap();
    assert_eq!(
        details,
        serde_json::json!({"from_days": 2192, "to_days": 3000})
    );
}

#[tokio::test]
async fn security_actions_are_recorded_with_their_change_or_not_made_at_all() {
    let server = TestServer::start().await;
    let mut auth = AuthServiceClient::new(server.channel().await);
    let created = auth
        .create_api_key(authorized(
            &server.owner_key,
            CreateApiKeyRequest {
                name: "ci".into(),
                roles: vec!["member".into()],
                expire_time: None,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .api_key
        .unwrap();
    auth.revoke_api_key(authorized(
        &server.owner_key,
        RevokeApiKeyRequest {
            api_key_id: created.id.clone(),
        },
    ))
    .await
    .unwrap();
    let mut owner = server.db.owner().await;
    let recorded: Vec<(String, String, String, String, String)> = sqlx::query_as(
        "SELECT action, resource_type, resource_id, actor_kind, request_id FROM audit_events
         WHERE action IN ('api_key.create', 'api_key.revoke') ORDER BY seq",
    )
    .fetch_all(&mut owner)
    .await
    .unwrap();
    assert_eq!(recorded.len(), 2);
    for ((action, kind, id, actor, request_id), expected) in
        recorded.iter().zip(["api_key.create", "api_key.revoke"])
    {
        assert_eq!(
            (action.as_str(), kind.as_str(), id.as_str(), actor.as_str()),
            (expected, "api_key", created.id.as_str(), "api_key")
        );
        assert!(!request_id.is_empty());
    }

    let (rpc_resource,): (String,) = sqlx::query_as(
        "SELECT resource_type || '/' || resource_id FROM audit_events
         WHERE action = '/codexcontinue.v1.AuthService/RevokeApiKey'",
    )
    .fetch_one(&mut owner)
    .await
    .unwrap();
    assert_eq!(
        rpc_resource,
        format!("api_key/{}", created.id),
        "the call names its resource"
    );

    // The key's event cannot be written: the key must not exist either.
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_key_events() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'audit store refuses'; END $$;
         CREATE TRIGGER refuse_key_events BEFORE INSERT ON audit_events FOR EACH ROW
             WHEN (NEW.action = 'api_key.create') EXECUTE FUNCTION refuse_key_events();",
    )
    .execute(&mut owner)
    .await
    .unwrap();
    let keys = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM api_keys")
            .fetch_one(&mut server.db.owner().await)
            .await
            .unwrap()
    };
    let before = keys().await;
    let failed = auth
        .create_api_key(authorized(
            &server.owner_key,
            CreateApiKeyRequest {
                name: "never".into(),
                roles: vec![],
                expire_time: None,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(failed.code(), Code::Internal, "{failed:?}");
    assert_eq!(
        keys().await,
        before,
        "the key was rolled back with its event"
    );
    let (status,): (i32,) = sqlx::query_as(
        "SELECT status_code FROM audit_events
         WHERE action = '/codexcontinue.v1.AuthService/CreateApiKey' ORDER BY seq DESC LIMIT 1",
    )
    .fetch_one(&mut owner)
    .await
    .unwrap();
    assert_eq!(
        status,
        Code::Internal as i32,
        "the failed call itself is recorded"
    );
    let tenant: Uuid = sqlx::query_scalar("SELECT id FROM tenants WHERE slug = 'acme'")
        .fetch_one(&mut owner)
        .await
        .unwrap();
    let verified = audit::verify(&database(&server.db).await, &signer(), TenantId(tenant))
        .await
        .unwrap();
    assert_eq!(
        verified.broken, None,
        "handler and call events share one chain"
    );
}

#[tokio::test]
async fn group_commit_keeps_every_tenants_chain_whole_under_concurrent_calls_of_two_replicas() {
    let server = TestServer::start().await;
    let globex = server.add_tenant("globex").await;
    // Two replicas append to the same chains: each one's remembered heads go stale.
    let replica = server.replica().await;
    let channels = [server.channel().await, replica.channel().await];
    let mut calls = tokio::task::JoinSet::new();
    for n in 0..96 {
        let key = if n % 2 == 0 {
            server.owner_key.clone()
        } else {
            globex.clone()
        };
        let mut auth = AuthServiceClient::new(channels[n / 2 % 2].clone());
        calls.spawn(async move {
            auth.who_am_i(authorized(&key, WhoAmIRequest {}))
                .await
                .map(drop)
        });
    }
    while let Some(call) = calls.join_next().await {
        call.unwrap().unwrap();
    }
    let database = database(&server.db).await;
    let mut owner = server.db.owner().await;
    for slug in ["acme", "globex"] {
        let tenant: Uuid = sqlx::query_scalar("SELECT id FROM tenants WHERE slug = $1")
            .bind(slug)
            .fetch_one(&mut owner)
            .await
            .unwrap();
        let calls: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM audit_events
             WHERE tenant_id = $1 AND action = '/codexcontinue.v1.AuthService/WhoAmI'",
        )
        .bind(tenant)
        .fetch_one(&mut owner)
        .await
        .unwrap();
        assert_eq!(calls, 48, "{slug}");
        let verified = audit::verify(&database, &signer(), TenantId(tenant))
            .await
            .unwrap();
        assert_eq!(verified.broken, None, "{slug}");
    }
}
