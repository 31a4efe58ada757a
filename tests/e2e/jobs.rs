//! Background jobs through Redis Streams, seen through the title job: a new conversation
//! is titled by the model, deliveries of a finished job are skipped, failing jobs are
//! retried with backoff and dead-lettered, a rename is never overwritten, and a replica
//! without workers leaves its jobs to another.

use codexcontinue::pb::v1::{GetConversationRequest, RenameConversationRequest};
use codexcontinue_tests::{eventually, grpc::authorized, metrics};
use redis::AsyncCommands;

use super::chat_fixture::{Chat, set_route, setup_with};

const TITLE_DONE: &str = r#"jobs_total{kind="title_conversation",outcome="done"}"#;
const TITLE_DUPLICATE: &str = r#"jobs_total{kind="title_conversation",outcome="duplicate"}"#;
const TITLE_RETRY: &str = r#"jobs_total{kind="title_conversation",outcome="retry"}"#;
const TITLE_DEAD: &str = r#"jobs_total{kind="title_conversation",outcome="dead"}"#;
const TITLE_SKIPPED: &str = r#"jobs_total{kind="title_conversation",outcome="skipped"}"#;

/// Settings `pairs`, with chat turns not indexed as memories: these tests count the jobs
/// in the stream, and titles are the jobs they are about.
fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    std::iter::once(&("CODEXCONTINUE_MEMORY__INDEX_MESSAGES", "false"))
        .chain(pairs)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

async fn title_of(t: &mut Chat, conversation: &str) -> String {
    t.chat
        .get_conversation(authorized(
            &t.server.owner_key,
            GetConversationRequest {
                conversation_id: conversation.into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .conversation
        .unwrap()
        .title
}

/// Waits until the server's `series` reaches `at_least`.
async fn wait_for(t: &Chat, series: &str, at_least: u64) -> String {
    eventually(series, || async {
        let scraped = metrics::scrape(&t.server).await;
        (metrics::value(&scraped, series) >= at_least).then_some(scraped)
    })
    .await
}

/// Requests the upstream got for titles.
fn title_requests(t: &Chat) -> usize {
    t.upstream
        .requests()
        .iter()
        .filter(|r| {
            r.body["messages"][0]["content"]
                .as_str()
                .is_some_and(|s| s.starts_with("Write a title"))
        })
        .count()
}

#[tokio::test]
async fn a_new_conversation_is_titled_by_the_model_once() {
    let mut t = setup_with(env(&[("CODEXCONTINUE_JOBS__WORKERS", "1")])).await;
    let conversation = t.conversation("cloud/echo-1").await;
    t.send(&conversation, "Plan the Q3 budget review\nwith finance", "")
        .await
        .unwrap();
    assert_eq!(
        title_of(&mut t, &conversation).await,
        "Plan the Q3 budget review"
    );

    wait_for(&t, TITLE_DONE, 1).await;
    assert_eq!(
        title_of(&mut t, &conversation).await,
        "Echo: Plan the Q3 budget review",
        "the model's first line"
    );
    let asked = t.upstream.requests().pop().unwrap();
    assert_eq!(asked.body["max_tokens"], 32);
    assert_eq!(title_requests(&t), 1);
    let (actor, phi): (String, bool) = sqlx::query_as(
        "SELECT actor_kind || ':' || actor_id, phi FROM audit_events
         WHERE action = 'conversation.title' AND resource_id = $1",
    )
    .bind(&conversation)
    .fetch_one(&mut t.server.db.owner().await)
    .await
    .unwrap();
    assert_eq!(actor, "system:title_conversation");
    assert!(!phi);
    let usage_rows: i64 = sqlx::query_scalar("SELECT count(*) FROM usage_events")
        .fetch_one(&mut t.server.db.owner().await)
        .await
        .unwrap();
    assert_eq!(usage_rows, 2, "the reply and the title");

    // The same job delivered again is acknowledged without a second model call.
    let mut redis = t.server.redis().await;
    let stream = t.server.platform_key(&["jobs"]);
    let entries: redis::streams::StreamRangeReply = redis.xrange_all(&stream).await.unwrap();
    let job: String = entries.ids[0].get("job").unwrap();
    let _: String = redis.xadd(&stream, "*", &[("job", job)]).await.unwrap();
    wait_for(&t, TITLE_DUPLICATE, 1).await;
    assert_eq!(title_requests(&t), 1);

    // Later turns queue no title job.
    t.send(&conversation, "And Q4?", "").await.unwrap();
    let entries: redis::streams::StreamRangeReply = redis.xrange_all(&stream).await.unwrap();
    assert_eq!(entries.ids.len(), 2);
}

#[tokio::test]
async fn a_failing_job_is_retried_with_backoff_then_dead_lettered() {
    let mut t = setup_with(env(&[
        ("CODEXCONTINUE_JOBS__WORKERS", "2"),
        ("CODEXCONTINUE_JOBS__RETRY_BASE", "50ms"),
        ("CODEXCONTINUE_JOBS__RETRY_MAX", "100ms"),
        ("CODEXCONTINUE_JOBS__MAX_ATTEMPTS", "3"),
    ]))
    .await;
    set_route(
        &mut t.admin,
        &t.server.owner_key,
        "title",
        &[("cloud", "broken")],
        false,
        0,
    )
    .await
    .unwrap();
    let conversation = t.conversation("cloud/echo-1").await;
    t.send(&conversation, "Draft the vendor contract", "")
        .await
        .unwrap();

    let scraped = wait_for(&t, TITLE_DEAD, 1).await;
    assert_eq!(metrics::value(&scraped, TITLE_RETRY), 2, "{scraped}");
    assert_eq!(title_requests(&t), 3, "one call per attempt");
    let mut redis = t.server.redis().await;
    let dead: redis::streams::StreamRangeReply = redis
        .xrange_all(t.server.platform_key(&["jobs", "dead"]))
        .await
        .unwrap();
    assert_eq!(dead.ids.len(), 1);
    let attempts: String = dead.ids[0].get("attempts").unwrap();
    let error: String = dead.ids[0].get("error").unwrap();
    assert_eq!(attempts, "3");
    assert!(error.contains("HTTP 500"), "{error}");
    assert_eq!(
        title_of(&mut t, &conversation).await,
        "Draft the vendor contract",
        "the provisional title stays"
    );
}

#[tokio::test]
async fn a_conversation_renamed_before_the_retry_keeps_its_name() {
    // Retries wait an hour unless the test makes them due.
    let mut t = setup_with(env(&[
        ("CODEXCONTINUE_JOBS__WORKERS", "1"),
        ("CODEXCONTINUE_JOBS__RETRY_BASE", "1h"),
        ("CODEXCONTINUE_JOBS__RETRY_MAX", "1h"),
    ]))
    .await;
    let key = t.server.owner_key.clone();
    set_route(
        &mut t.admin,
        &key,
        "title",
        &[("cloud", "broken")],
        false,
        0,
    )
    .await
    .unwrap();
    let conversation = t.conversation("cloud/echo-1").await;
    t.send(&conversation, "Summarise the audit findings", "")
        .await
        .unwrap();
    wait_for(&t, TITLE_RETRY, 1).await;

    t.chat
        .rename_conversation(authorized(
            &key,
            RenameConversationRequest {
                conversation_id: conversation.clone(),
                title: "Audit 2026".into(),
            },
        ))
        .await
        .unwrap();
    set_route(
        &mut t.admin,
        &key,
        "title",
        &[("cloud", "echo-1")],
        false,
        0,
    )
    .await
    .unwrap();
    let mut redis = t.server.redis().await;
    let delayed = t.server.platform_key(&["jobs", "delayed"]);
    let waiting: Vec<String> = redis.zrange(&delayed, 0, -1).await.unwrap();
    assert_eq!(waiting.len(), 1);
    let _: i64 = redis.zadd(&delayed, &waiting[0], 0).await.unwrap();

    wait_for(&t, TITLE_SKIPPED, 1).await;
    assert_eq!(title_of(&mut t, &conversation).await, "Audit 2026");
    assert_eq!(
        title_requests(&t),
        2,
        "the retry asked the model, then found the rename"
    );
}

#[tokio::test]
async fn a_replica_without_workers_leaves_its_jobs_to_another() {
    let mut t = setup_with(env(&[])).await;
    let conversation = t.conversation("cloud/echo-1").await;
    t.send(&conversation, "Refactor the billing service", "")
        .await
        .unwrap();
    let mut redis = t.server.redis().await;
    let stream = t.server.platform_key(&["jobs"]);
    let queued: usize = redis.xlen(&stream).await.unwrap();
    assert_eq!(queued, 1);
    assert_eq!(title_requests(&t), 0);

    // Default settings: this replica runs job workers.
    let worker = t.server.replica_with(Vec::new()).await;
    eventually("the other replica titles it", || async {
        let scraped = metrics::scrape(&worker).await;
        (metrics::value(&scraped, TITLE_DONE) == 1).then_some(())
    })
    .await;
    assert_eq!(
        title_of(&mut t, &conversation).await,
        "Echo: Refactor the billing service"
    );
}

#[tokio::test]
async fn api_and_worker_replicas_split_the_work() {
    // The API replica takes calls and runs no workers; the worker takes no calls.
    let mut t = setup_with(env(&[("CODEXCONTINUE_SERVER__ROLE", "api")])).await;
    let worker = t
        .server
        .replica_with(vec![("CODEXCONTINUE_SERVER__ROLE".into(), "worker".into())])
        .await;
    let conversation = t.conversation("cloud/echo-1").await;
    t.send(&conversation, "Plan the data migration", "")
        .await
        .unwrap();
    eventually("the worker titles it", || async {
        let scraped = metrics::scrape(&worker).await;
        (metrics::value(&scraped, TITLE_DONE) == 1).then_some(())
    })
    .await;
    assert_eq!(
        title_of(&mut t, &conversation).await,
        "Echo: Plan the data migration"
    );
    assert_eq!(
        metrics::value(&metrics::scrape(&t.server).await, TITLE_DONE),
        0,
        "the API replica ran no job"
    );

    let channel = worker.channel().await;
    let refused =
        codexcontinue::pb::v1::chat_service_client::ChatServiceClient::new(channel.clone())
            .get_conversation(authorized(
                &worker.owner_key,
                GetConversationRequest {
                    conversation_id: conversation.clone(),
                },
            ))
            .await
            .expect_err("a worker serves no API");
    assert_eq!(refused.code(), tonic::Code::Unimplemented, "{refused:?}");
    let health = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("health")
        .into_inner();
    assert_eq!(
        health.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
}
