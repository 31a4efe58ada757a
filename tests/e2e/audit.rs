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
