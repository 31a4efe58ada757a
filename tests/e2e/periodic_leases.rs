//! Repeating passes (tenant data deletion, audit checkpoints, audit retention) run on one
//! replica at a time: each replica claims the job's lease in Postgres before a pass, the
//! holder renews it, and when the holder stops another replica takes the job over.

use std::{collections::BTreeMap, time::Duration};

use codexcontinue_tests::{TestDatabase, TestServer, eventually};
use uuid::Uuid;

const JOBS: [&str; 3] = [
    "audit checkpoints",
    "audit retention",
    "tenant data deletion",
];

/// Who holds each job's lease.
async fn holders(db: &TestDatabase) -> BTreeMap<String, Uuid> {
    sqlx::query_as("SELECT job, holder FROM periodic_leases")
        .fetch_all(&mut db.owner().await)
        .await
        .expect("leases")
        .into_iter()
        .collect()
}

#[tokio::test]
async fn one_replica_at_a_time_runs_each_pass_and_another_takes_over_when_it_stops() {
    let env = [
        "CODEXCONTINUE_AUDIT__CHECKPOINT_INTERVAL",
        "CODEXCONTINUE_AUDIT__RETENTION_SWEEP_INTERVAL",
        "CODEXCONTINUE_AUTH__TENANT_DELETION_INTERVAL",
    ]
    .map(|name| (name.to_owned(), "1s".to_owned()))
    .to_vec();
    let first = TestServer::with_env(env).await;
    let db = first.db.clone();
    let first_holders = eventually("the first replica leases every job", || async {
        let held = holders(&db).await;
        (held.len() == JOBS.len()).then_some(held)
    })
    .await;
    assert_eq!(first_holders.keys().collect::<Vec<_>>(), JOBS);
    let one = first_holders.values().next().copied();
    assert!(
        first_holders.values().all(|h| Some(*h) == one),
        "{first_holders:?}"
    );

    let second = first.replica().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        holders(&db).await,
        first_holders,
        "while the first replica runs, the second runs none of these passes"
    );

    drop(first);
    let taken = eventually("the second replica takes every job over", || async {
        let held = holders(&db).await;
        held.values()
            .all(|holder| Some(*holder) != one)
            .then_some(held)
    })
    .await;
    assert_eq!(taken.len(), JOBS.len());
    drop(second);
}
