//! A job handler that panics fails its own job (dead-lettered, never retried) and leaves
//! the worker running the jobs after it, against the suite's real Redis.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use codexcontinue::{
    config::JobsConfig,
    jobs::{Handled, Job, JobError, JobHandler, Jobs, Workers},
    telemetry::Metrics,
};
use codexcontinue_tests::{TestDatabase, bench::stores, eventually};
use uuid::Uuid;

/// Panics on the job of conversation `poison`, finishes every other.
struct Handler {
    poison: Uuid,
    done: Arc<AtomicUsize>,
}

impl JobHandler for Handler {
    async fn handle(&self, job: &Job) -> Result<Handled, JobError> {
        if let Job::TitleConversation { conversation, .. } = job
            && *conversation == self.poison
        {
            panic!("a defect in a handler");
        }
        self.done.fetch_add(1, Ordering::SeqCst);
        Ok(Handled::Done)
    }
}

fn title(conversation: Uuid) -> Job {
    Job::TitleConversation {
        tenant: Uuid::now_v7(),
        user: Uuid::now_v7(),
        conversation,
        message: Uuid::now_v7(),
        model: "cloud/echo-1".into(),
    }
}

#[tokio::test]
async fn a_panicking_handler_fails_its_job_and_the_worker_goes_on() {
    let db = TestDatabase::migrated().await;
    let (_, cache) = stores(&db).await;
    let poison = Uuid::now_v7();
    let done = Arc::new(AtomicUsize::new(0));
    let metrics = Arc::new(Metrics::new());
    let workers = Workers::new(
        cache.clone(),
        Handler {
            poison,
            done: done.clone(),
        },
        JobsConfig {
            workers: 1,
            ..JobsConfig::default()
        },
        metrics.clone(),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(workers.run(async {
        let _ = stopped.await;
    }));
    let jobs = Jobs::new(cache);
    jobs.enqueue(title(poison)).await.unwrap();
    for _ in 0..3 {
        jobs.enqueue(title(Uuid::now_v7())).await.unwrap();
    }
    eventually("the jobs after the panic are done", || {
        let done = done.clone();
        async move { (done.load(Ordering::SeqCst) == 3).then_some(()) }
    })
    .await;
    let rendered = metrics.render();
    assert!(
        rendered.contains(r#"jobs_total{kind="title_conversation",outcome="dead"} 1"#),
        "{rendered}"
    );
    let _ = stop.send(());
    running.await.unwrap();
}
