//! The hash-chained audit trail: appends never fork under concurrency, and editing,
//! deleting, reordering or cutting off events is detected (by the library and by
//! `codexcontinue audit verify`).

use codexcontinue::{
    audit::{self, Actor, NewEvent, Outcome},
    config::DatabaseConfig,
    store::Database,
    tenancy::{self, TenantId},
};
use codexcontinue_tests::{TestDatabase, server::command};
use secrecy::SecretString;
use uuid::Uuid;

fn event(n: usize) -> NewEvent {
    NewEvent {
        actor: Actor::User(Uuid::nil()),
        action: format!("/codexcontinue.v1.ChatService/SendMessage#{n}"),
        resource_type: "conversation".into(),
        resource_id: format!("c-{n}"),
        outcome: Outcome::Success,
        status_code: 0,
        request_id: format!("req-{n}"),
        client_address: "127.0.0.1".into(),
        user_agent: "test".into(),
        phi: n.is_multiple_of(2),
        details: serde_json::json!({"n": n, "note": "no content"}),
    }
}

async fn database(db: &TestDatabase) -> Database {
    Database::connect(&DatabaseConfig {
        url: Some(SecretString::from(db.app_url.clone())),
        ..DatabaseConfig::default()
    })
    .await
    .unwrap()
}

async fn tenant_with_events(db: &TestDatabase, database: &Database, count: usize) -> TenantId {
    let mut app = db.app().await;
    let tenant = TenantId(Uuid::now_v7());
    sqlx::query("SELECT codexcontinue_create_tenant($1, 'audited', 'Audited')")
        .bind(tenant.0)
        .execute(&mut app)
        .await
        .unwrap();
    for n in 1..=count {
        let mut tx = tenancy::begin(database, tenant).await.unwrap();
        assert_eq!(
            audit::append(&mut tx, tenant, &event(n)).await.unwrap(),
            n as i64
        );
        tx.commit().await.unwrap();
    }
    tenant
}

/// Runs `sql` as the owner on the retention path (past the append-only trigger).
async fn tamper(db: &TestDatabase, sql: &str) {
    let mut owner = db.owner().await;
    sqlx::raw_sql(&format!("SET codexcontinue.audit_retention = 'on'; {sql}"))
        .execute(&mut owner)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_intact_chain_verifies_and_each_kind_of_tampering_is_found() {
    for (sql, seq, problem) in [
        (
            "UPDATE audit_events SET action = 'forged' WHERE seq = 3",
            3,
            "hash mismatch",
        ),
        ("DELETE FROM audit_events WHERE seq = 2", 2, "missing event"),
        (
            "UPDATE audit_events SET seq = 1000 WHERE seq = 2;
             UPDATE audit_events SET seq = 2 WHERE seq = 4;
             UPDATE audit_events SET seq = 4 WHERE seq = 1000;",
            2,
            "hash mismatch",
        ),
        (
            "DELETE FROM audit_events WHERE seq = 5",
            5,
            "chain head does not match",
        ),
    ] {
        let db = TestDatabase::migrated().await;
        let database = database(&db).await;
        let tenant = tenant_with_events(&db, &database, 5).await;
        let intact = audit::verify(&database, tenant).await.unwrap();
        assert_eq!((intact.events_checked, intact.broken), (5, None));

        tamper(&db, sql).await;
        let result = audit::verify(&database, tenant).await.unwrap();
        let (found_seq, found_problem) = result.broken.expect("tampering detected");
        assert_eq!(found_seq, seq, "{sql}");
        assert!(found_problem.starts_with(problem), "{sql}: {found_problem}");

        let output = command()
            .args(["audit", "verify"])
            .env("DATABASE_URL", &db.app_url)
            .output()
            .await
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{sql}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains(&format!("BROKEN at seq {seq}")), "{stdout}");
    }
}

#[tokio::test]
async fn events_cannot_be_changed_by_the_server_role_or_by_accident() {
    let db = TestDatabase::migrated().await;
    let database = database(&db).await;
    let tenant = tenant_with_events(&db, &database, 2).await;
    let mut tx = tenancy::begin(&database, tenant).await.unwrap();
    let denied = sqlx::query("UPDATE audit_events SET action = 'x'")
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert!(denied.to_string().contains("permission denied"), "{denied}");
    drop(tx);
    let mut owner = db.owner().await;
    let refused = sqlx::query("DELETE FROM audit_events")
        .execute(&mut owner)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("append-only"), "{refused}");

    let output = command()
        .args(["audit", "verify", "--tenant", "audited"])
        .env("DATABASE_URL", &db.app_url)
        .output()
        .await
        .unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("intact, 2 events"));
}

#[tokio::test]
async fn concurrent_writers_of_one_tenant_never_fork_the_chain() {
    let db = TestDatabase::migrated().await;
    let database = database(&db).await;
    let tenant = tenant_with_events(&db, &database, 0).await;
    let writers: Vec<_> = (1..=32)
        .map(|n| {
            let database = database.clone();
            tokio::spawn(async move {
                let mut tx = tenancy::begin(&database, tenant).await.unwrap();
                let seq = audit::append(&mut tx, tenant, &event(n)).await.unwrap();
                tx.commit().await.unwrap();
                seq
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for writer in writers {
        seqs.push(writer.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=32).collect::<Vec<i64>>());
    let result = audit::verify(&database, tenant).await.unwrap();
    assert_eq!((result.events_checked, result.broken), (32, None));
}

#[tokio::test]
async fn every_api_call_leaves_exactly_one_event_before_its_answer() {
    use codexcontinue::api::{API_SERVICES, ApiCatalog};
    use codexcontinue_tests::{TestServer, grpc::call_empty};
    use tonic::Code;

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
    let events: Vec<(String, i32, String, String)> = sqlx::query_as(
        "SELECT action, status_code, outcome, actor_kind FROM audit_events
         WHERE tenant_id = $1 ORDER BY seq",
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
    let intact = audit::verify(&database(&server.db).await, TenantId(tenant))
        .await
        .unwrap();
    assert_eq!(
        (intact.events_checked, intact.broken),
        (calls.len() as i64, None)
    );
}

#[tokio::test]
async fn a_call_that_cannot_be_audited_fails_closed() {
    use codexcontinue::pb::v1::{WhoAmIRequest, auth_service_client::AuthServiceClient};
    use codexcontinue_tests::{TestServer, grpc::authorized};

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
    assert_eq!(failed.code(), tonic::Code::Internal, "{failed:?}");
    assert!(
        failed.message().contains("could not be audited"),
        "{failed:?}"
    );
}

#[tokio::test]
async fn auditors_list_and_verify_the_trail_over_the_api() {
    use codexcontinue::pb::v1::{
        AuditFilter, AuditOutcome, ListAuditEventsRequest, VerifyChainRequest, WhoAmIRequest,
        audit_service_client::AuditServiceClient, auth_service_client::AuthServiceClient,
    };
    use codexcontinue_tests::{TestServer, grpc::authorized};

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
        .verify_chain(authorized(&server.owner_key, VerifyChainRequest {}))
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
        .verify_chain(authorized(&server.owner_key, VerifyChainRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(!broken.intact);
    assert_eq!(broken.first_broken_seq, 2);
    assert_eq!(broken.problem, "hash mismatch");
}
