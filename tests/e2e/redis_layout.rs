//! Redis keys carry their owner as a hash tag (`cc:{<tenant>}:…`), and a replica that
//! starts moves keys of the layout before tags into it, so sessions and queued jobs
//! survive the upgrade (queues under both names are merged), on one Redis and on a Redis
//! Cluster.

use codexcontinue_tests::{ServerOptions, TestDatabase, TestEnv, TestServer};
use redis::{AsyncCommands, streams::StreamRangeReply};

/// Far in the future (2100), so no worker releases the delayed job during the test.
const DUE_MS: i64 = 4_102_444_800_000;

#[tokio::test]
async fn a_starting_replica_moves_untagged_keys_keeping_values_and_expiry() {
    let prefix = format!("t:{}:", uuid::Uuid::new_v4().simple());
    let tenant = uuid::Uuid::new_v4();
    let mut redis = codexcontinue::cache::Cache::connect(&TestEnv::get().redis_config())
        .await
        .unwrap()
        .connection()
        .await
        .unwrap();
    let old_session = format!("{prefix}cc:{tenant}:session:ab12");
    let old_delayed = format!("{prefix}cc:_platform:jobs:delayed");
    let old_window = format!("{prefix}cc:{tenant}:window:c1");
    let old_stale = format!("{prefix}cc:{tenant}:window:c2");
    let _: () = redis
        .hset_multiple(&old_session, &[("data", "{}"), ("abs", "9999999999")])
        .await
        .unwrap();
    let _: () = redis.expire(&old_session, 600).await.unwrap();
    let _: () = redis
        .zadd(&old_delayed, "a queued job", DUE_MS)
        .await
        .unwrap();
    let _: () = redis.set(&old_window, "window one").await.unwrap();
    let _: () = redis.set(&old_stale, "older").await.unwrap();
    // Written by an upgraded replica already: it wins over the old key.
    let new_c2 = format!("{prefix}cc:{{{tenant}}}:window:c2");
    let _: () = redis.set(&new_c2, "newer").await.unwrap();
    // Queues under both names (an old replica kept writing): merged, nothing lost. The old
    // job stream holds one finished job, one being worked on and one nobody took yet.
    let old_jobs = format!("{prefix}cc:_platform:jobs");
    let new_jobs = format!("{prefix}cc:{{_platform}}:jobs");
    let new_delayed = format!("{prefix}cc:{{_platform}}:jobs:delayed");
    let _: () = redis
        .zadd(&new_delayed, "a newer job", DUE_MS)
        .await
        .unwrap();
    let _: () = redis
        .xgroup_create_mkstream(&old_jobs, "workers", "$")
        .await
        .unwrap();
    let _: () = redis
        .xgroup_create_mkstream(&new_jobs, "workers", "$")
        .await
        .unwrap();
    for job in ["finished", "taken"] {
        let _: String = redis.xadd(&old_jobs, "*", &[("job", job)]).await.unwrap();
    }
    let taken: redis::streams::StreamReadReply = redis
        .xread_options(
            &[&old_jobs],
            &[">"],
            &redis::streams::StreamReadOptions::default()
                .group("workers", "old-replica")
                .count(2),
        )
        .await
        .unwrap();
    let finished = taken.keys[0].ids[0].id.clone();
    let _: () = redis
        .xack(&old_jobs, "workers", &[&finished])
        .await
        .unwrap();
    let _: String = redis
        .xadd(&old_jobs, "*", &[("job", "waiting")])
        .await
        .unwrap();

    let server = TestServer::spawn(
        TestDatabase::migrated().await,
        ServerOptions {
            env: vec![
                ("CODEXCONTINUE_REDIS__KEY_PREFIX".into(), prefix.clone()),
                // No worker takes the moved jobs before the test has looked at them.
                ("CODEXCONTINUE_JOBS__WORKERS".into(), "0".into()),
            ],
            ..ServerOptions::default()
        },
    )
    .await;

    let session = format!("{prefix}cc:{{{tenant}}}:session:ab12");
    let data: Option<String> = redis.hget(&session, "data").await.unwrap();
    assert_eq!(data.as_deref(), Some("{}"));
    let ttl: i64 = redis.ttl(&session).await.unwrap();
    assert!(
        (1..=600).contains(&ttl),
        "the session keeps its expiry: {ttl}"
    );
    let delayed: Vec<(String, i64)> = redis.zrange_withscores(&new_delayed, 0, -1).await.unwrap();
    assert_eq!(
        delayed,
        vec![
            ("a newer job".to_owned(), DUE_MS),
            ("a queued job".to_owned(), DUE_MS)
        ],
        "both delayed queues are kept"
    );
    let queued: StreamRangeReply = redis.xrange_all(&new_jobs).await.unwrap();
    let jobs: Vec<String> = queued
        .ids
        .iter()
        .filter_map(|entry| entry.get::<String>("job"))
        .collect();
    assert_eq!(
        jobs,
        ["taken", "waiting"],
        "unfinished jobs move to the tagged stream, the finished one does not"
    );
    let window: Option<String> = redis
        .get(format!("{prefix}cc:{{{tenant}}}:window:c1"))
        .await
        .unwrap();
    assert_eq!(window.as_deref(), Some("window one"));
    let kept: Option<String> = redis.get(&new_c2).await.unwrap();
    assert_eq!(kept.as_deref(), Some("newer"));
    for old in [
        &old_session,
        &old_delayed,
        &old_window,
        &old_stale,
        &old_jobs,
    ] {
        let left: bool = redis.exists(old).await.unwrap();
        assert!(!left, "{old} is left behind");
    }
    assert!(
        server
            .logs()
            .contains("moved Redis keys of the layout before hash tags"),
        "{}",
        server.logs()
    );
}
