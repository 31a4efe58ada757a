//! What `crypto rotate` costs on a tenant with 100,000 messages: values re-sealed per
//! second, and, side by side, one row's update found through its key (how the re-seal
//! finds rows) and through `id::text` (how it found them before, a scan per row).
//!
//! Against the real Postgres `make bench` starts (durable settings). Prints a Markdown
//! table. Run with `make bench`.

use std::{sync::Arc, time::Instant};

use codexcontinue::{
    crypto::{self, LocalMasterKey, Sealer},
    tenancy::TenantId,
};
use codexcontinue_tests::{
    TestDatabase, TestEnv, bench::stores, sealed::conversation_with_messages, server::bootstrap,
};
use uuid::Uuid;

const MESSAGES: usize = 100_000;
const BATCH: usize = 5_000;
const PROBES: usize = 200;

#[tokio::main]
async fn main() {
    let env = TestEnv::get();
    let db = TestDatabase::migrated().await;
    bootstrap(&db, "acme", "owner@acme.example").await;
    let (database, _) = stores(&db).await;
    let sealer = Sealer::new(Arc::new(
        LocalMasterKey::from_base64(&env.master_key.clone().into()).expect("master key"),
    ));
    let mut owner = db.owner().await;
    let (tenant, user): (Uuid, Uuid) = sqlx::query_as("SELECT tenant_id, id FROM users LIMIT 1")
        .fetch_one(&mut owner)
        .await
        .expect("the bootstrapped owner");
    let tenant = TenantId(tenant);

    let filled = Instant::now();
    conversation_with_messages(&database, &sealer, (tenant, user), MESSAGES, BATCH).await;
    eprintln!("{MESSAGES} messages written in {:?}", filled.elapsed());
    sqlx::query("ANALYZE messages")
        .execute(&mut owner)
        .await
        .expect("analyze");

    // One row's update, found both ways, on the same table.
    let probes: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM messages ORDER BY random() LIMIT $1")
            .bind(PROBES as i64)
            .fetch_all(&mut owner)
            .await
            .expect("probes");
    let mut per_update = Vec::new();
    for (label, predicate) in [
        ("by key (`id = $2::uuid`)", "id = $2::uuid"),
        ("by text (`id::text = $2`)", "id::text = $2"),
    ] {
        let mut tx = database.begin_tenant(tenant).await.expect("begin");
        let started = Instant::now();
        for id in &probes {
            sqlx::query(&format!(
                "UPDATE messages SET content_sealed = content_sealed || $1 WHERE {predicate}"
            ))
            .bind(&b""[..])
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .expect("update");
        }
        let each = started.elapsed() / PROBES as u32;
        drop(tx); // rolled back: the probes change nothing
        per_update.push((label, each));
    }

    let started = Instant::now();
    let rotation = crypto::rotate_data_key(&database, &sealer, tenant, "bench", |_, _| {})
        .await
        .expect("rotate");
    let took = started.elapsed();
    assert!(
        rotation.resealed as usize > MESSAGES,
        "every message and the title"
    );

    println!("\n### Data key rotation: re-sealing {MESSAGES} messages\n");
    println!("| measure | value |");
    println!("|---|---:|");
    println!("| values re-sealed | {} |", rotation.resealed);
    println!("| time | {:.1} s |", took.as_secs_f64());
    println!(
        "| values re-sealed per second | {:.0} |",
        rotation.resealed as f64 / took.as_secs_f64()
    );
    for (label, each) in per_update {
        println!(
            "| one row's update, found {label} | {:.3} ms |",
            each.as_secs_f64() * 1000.0
        );
    }
    db.drop_database().await;
}
