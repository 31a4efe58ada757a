//! The hash-chained audit trail: appends never fork under concurrency, and editing,
//! deleting, reordering or cutting off events is detected (by the library and by
//! `codexcontinue audit verify`).

use codexcontinue::{
    audit::{self, Actor, CheckpointJob, CheckpointSigner, NewEvent, Outcome, RetentionJob},
    config::DatabaseConfig,
    store::Database,
    tenancy::TenantId,
};
use codexcontinue_tests::{TestDatabase, TestEnv, server::command};
use secrecy::SecretString;
use uuid::Uuid;

/// A made-up event, numbered `n`.
pub fn event(n: usize) -> NewEvent {
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

/// A pool on `db` as the server's role.
pub async fn database(db: &TestDatabase) -> Database {
    Database::connect(&DatabaseConfig {
        url: Some(SecretString::from(db.app_url.clone())),
        ..DatabaseConfig::default()
    })
    .await
    .unwrap()
}

/// A tenant `audited` whose chain holds `count` events.
pub async fn tenant_with_events(db: &TestDatabase, database: &Database, count: usize) -> TenantId {
    let mut app = db.app().await;
    let tenant = TenantId(Uuid::now_v7());
    sqlx::query("SELECT codexcontinue_create_tenant($1, 'audited', 'Audited')")
        .bind(tenant.0)
        .execute(&mut app)
        .await
        .unwrap();
    for n in 1..=count {
        let mut tx = database.begin_tenant(tenant).await.unwrap();
        assert_eq!(
            audit::append(&mut tx, tenant, &event(n)).await.unwrap(),
            n as i64
        );
        tx.commit().await.unwrap();
    }
    tenant
}

/// Runs `sql` as the owner on the retention path (past the append-only trigger).
pub async fn tamper(db: &TestDatabase, sql: &str) {
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
        let intact = audit::verify(&database, &TestEnv::get().checkpoint_signer(), tenant)
            .await
            .unwrap();
        assert_eq!((intact.events_checked, intact.broken), (5, None));

        tamper(&db, sql).await;
        let result = audit::verify(&database, &TestEnv::get().checkpoint_signer(), tenant)
            .await
            .unwrap();
        let (found_seq, found_problem) = result.broken.expect("tampering detected");
        assert_eq!(found_seq, seq, "{sql}");
        assert!(found_problem.starts_with(problem), "{sql}: {found_problem}");

        let output = command()
            .args(["audit", "verify"])
            .env("DATABASE_URL", &db.app_url)
            .env(
                "CODEXCONTINUE_CRYPTO__MASTER_KEY",
                TestEnv::get().master_key,
            )
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
    let mut tx = database.begin_tenant(tenant).await.unwrap();
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
        .env(
            "CODEXCONTINUE_CRYPTO__MASTER_KEY",
            TestEnv::get().master_key,
        )
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
                let mut tx = database.begin_tenant(tenant).await.unwrap();
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
    let result = audit::verify(&database, &TestEnv::get().checkpoint_signer(), tenant)
        .await
        .unwrap();
    assert_eq!((result.events_checked, result.broken), (32, None));
}

#[tokio::test]
async fn signed_checkpoints_reveal_a_cut_off_tail_and_forged_signatures() {
    let db = TestDatabase::migrated().await;
    let database = database(&db).await;
    let signer = TestEnv::get().checkpoint_signer();
    let tenant = tenant_with_events(&db, &database, 5).await;
    let job = CheckpointJob::new(database.clone(), signer.clone());
    assert_eq!(job.run_once().await.unwrap(), 1);
    assert_eq!(job.run_once().await.unwrap(), 0, "nothing new to sign");
    for n in 6..=7 {
        let mut tx = database.begin_tenant(tenant).await.unwrap();
        audit::append(&mut tx, tenant, &event(n)).await.unwrap();
        tx.commit().await.unwrap();
    }
    let intact = audit::verify(&database, &signer, tenant).await.unwrap();
    assert_eq!(
        (
            intact.events_checked,
            intact.checkpoints_checked,
            intact.broken
        ),
        (7, 1, None)
    );

    // Another key's view: the checkpoint is not the server's.
    let zero_seed = format!("{}=", "A".repeat(43));
    let other = CheckpointSigner::from_base64(&zero_seed.into()).unwrap();
    let foreign = audit::verify(&database, &other, tenant).await.unwrap();
    assert_eq!(
        foreign.broken,
        Some((5, "checkpoint signature does not verify".into()))
    );

    // Cutting off the tail, head rewound to match, is caught by the checkpoint at 5.
    tamper(
        &db,
        "DELETE FROM audit_events WHERE seq > 3;
         UPDATE audit_chain_heads SET seq = 3, hash = (SELECT hash FROM audit_events WHERE seq = 3);",
    )
    .await;
    let cut = audit::verify(&database, &signer, tenant).await.unwrap();
    let (seq, problem) = cut.broken.expect("truncation detected");
    assert_eq!(seq, 4);
    assert!(problem.contains("chain cut off"), "{problem}");

    // A checkpoint whose signature was altered.
    tamper(
        &db,
        "UPDATE audit_checkpoints SET signature = set_byte(signature, 0, get_byte(signature, 0) # 1)",
    )
    .await;
    let forged = audit::verify(&database, &signer, tenant).await.unwrap();
    assert_eq!(
        forged.broken,
        Some((5, "checkpoint signature does not verify".into()))
    );
}

#[tokio::test]
async fn the_retention_purge_keeps_the_chain_verifiable() {
    let db = TestDatabase::migrated().await;
    let database = database(&db).await;
    let signer = TestEnv::get().checkpoint_signer();
    let tenant = tenant_with_events(&db, &database, 6).await;
    CheckpointJob::new(database.clone(), signer.clone())
        .run_once()
        .await
        .unwrap();
    let retention = RetentionJob::new(database.clone(), signer.clone());
    assert_eq!(retention.run_once().await.unwrap(), 0, "nothing is old yet");

    let mut owner = db.owner().await;
    sqlx::query("UPDATE tenants SET audit_retention_days = 30 WHERE id = $1")
        .bind(tenant.0)
        .execute(&mut owner)
        .await
        .unwrap();
    assert_eq!(
        retention.run_once().await.unwrap(),
        0,
        "the platform's floor (six years) still keeps them"
    );
    // The operator lowers the floor (what `migrate` does with audit.min_retention_days).
    sqlx::query("UPDATE audit_retention_floor SET days = 30")
        .execute(&mut owner)
        .await
        .unwrap();
    // Events 1..3 happened 40 days ago (their hashes stay as they were).
    tamper(
        &db,
        "UPDATE audit_events SET occurred_at = occurred_at - interval '40 days' WHERE seq <= 3",
    )
    .await;
    assert_eq!(retention.run_once().await.unwrap(), 3);
    assert_eq!(retention.run_once().await.unwrap(), 0);

    let remaining: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT seq, action, actor_kind FROM audit_events WHERE tenant_id = $1 ORDER BY seq",
    )
    .bind(tenant.0)
    .fetch_all(&mut owner)
    .await
    .unwrap();
    let seqs: Vec<i64> = remaining.iter().map(|(seq, ..)| *seq).collect();
    assert_eq!(seqs, [4, 5, 6, 7]);
    assert_eq!(
        (remaining[3].1.as_str(), remaining[3].2.as_str()),
        ("audit.purge", "system")
    );
    let verified = audit::verify(&database, &signer, tenant).await.unwrap();
    assert_eq!(verified.broken, None);
    assert_eq!(verified.events_checked, 4);
    assert_eq!(
        verified.checkpoints_checked, 2,
        "the cut at 3 and the head at 6"
    );

    // The server's role cannot purge what retention still covers, nor without a cut.
    let mut tx = database.begin_tenant(tenant).await.unwrap();
    let refused = sqlx::query("SELECT codexcontinue_audit_purge(5)")
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("no retention checkpoint"),
        "{refused}"
    );
    drop(tx);

    // Deleting the oldest survivor is not passed off as retention.
    tamper(&db, "DELETE FROM audit_events WHERE seq = 4").await;
    let broken = audit::verify(&database, &signer, tenant).await.unwrap();
    assert_eq!(broken.broken, Some((4, "missing event".into())));
}

#[tokio::test]
async fn the_servers_role_cannot_purge_what_retention_keeps() {
    let db = TestDatabase::migrated().await;
    let database = database(&db).await;
    let tenant = tenant_with_events(&db, &database, 5).await;
    // As the server's own role: shorten the tenant's retention, append an event dated long
    // ago, forge a retention checkpoint at it, and ask the purge to cut there.
    let mut tx = database.begin_tenant(tenant).await.unwrap();
    sqlx::query("UPDATE tenants SET audit_retention_days = 1")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO audit_events (tenant_id, seq, id, occurred_at, actor_kind, action,
                                   outcome, status_code, hash)
         VALUES ($1, 6, $2, now() - interval '20 years', 'system', 'forged', 'success', 0,
                 decode(repeat('00', 32), 'hex'))",
    )
    .bind(tenant.0)
    .bind(Uuid::now_v7())
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO audit_checkpoints (tenant_id, seq, hash, kind, signed_at, key_id, signature)
         VALUES ($1, 6, decode(repeat('00', 32), 'hex'), 'retention', now(), 'forged',
                 decode(repeat('00', 64), 'hex'))",
    )
    .bind(tenant.0)
    .execute(&mut *tx)
    .await
    .unwrap();
    let refused = sqlx::query_scalar::<_, i64>("SELECT codexcontinue_audit_purge(6)")
        .fetch_one(&mut *tx)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("within the retention period"),
        "{refused}"
    );
    drop(tx);
    // Nor can it read or move the platform's floor.
    let mut app = db.app().await;
    let denied = sqlx::query("UPDATE audit_retention_floor SET days = 1")
        .execute(&mut app)
        .await
        .unwrap_err();
    assert!(denied.to_string().contains("permission denied"), "{denied}");
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE tenant_id = $1")
        .bind(tenant.0)
        .fetch_one(&mut db.owner().await)
        .await
        .unwrap();
    assert_eq!(kept, 5, "nothing was deleted");
}
