//! Redis keys carry their owner as a hash tag (`cc:{<tenant>}:…`), and a replica that
//! starts moves keys of the layout before tags into it, so sessions and queued jobs
//! survive the upgrade, on one Redis and on a Redis Cluster.

use codexcontinue_tests::{ServerOptions, TestDatabase, TestEnv, TestServer};
use redis::AsyncCommands;

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

    let server = TestServer::spawn(
        TestDatabase::migrated().await,
        ServerOptions {
            env: vec![("CODEXCONTINUE_REDIS__KEY_PREFIX".into(), prefix.clone())],
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
    let due: Option<i64> = redis
        .zscore(
            format!("{prefix}cc:{{_platform}}:jobs:delayed"),
            "a queued job",
        )
        .await
        .unwrap();
    assert_eq!(due, Some(DUE_MS), "the delayed job is still queued");
    let window: Option<String> = redis
        .get(format!("{prefix}cc:{{{tenant}}}:window:c1"))
        .await
        .unwrap();
    assert_eq!(window.as_deref(), Some("window one"));
    let kept: Option<String> = redis.get(&new_c2).await.unwrap();
    assert_eq!(kept.as_deref(), Some("newer"));
    for old in [&old_session, &old_delayed, &old_window, &old_stale] {
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
