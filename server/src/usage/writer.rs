//! Recording the usage of stateless calls without holding up their replies.
//!
//! A stateless call (the OpenAI-compatible API without a conversation) stores nothing but
//! its usage, and a transaction of its own would add a commit to every reply. Instead the
//! call hands its usage event to this writer and goes on; the writer gathers what arrives
//! within [`GATHER`] of the first event (up to [`MAX_BATCH`] events) and records it in one
//! statement per tenant, so a steady stream of calls costs a few commits a second rather
//! than one per call. Usage therefore shows in budgets and reports up to [`GATHER`] after
//! the reply. The queue is bounded: when it is full, calls wait for room. When every handle is gone (the
//! server stopping), the writer records what is left and ends; [`UsageWriterTask::finished`]
//! waits for that. When a batch fails, each of its events is tried alone; an event that
//! still fails (Postgres down) is logged and not counted.

use std::collections::BTreeMap;

use std::time::Duration;

use tokio::{sync::mpsc, task::JoinHandle, time::Instant};

use crate::{
    store::{self, Database, StoreError, usage::UsageEvent},
    tenancy::TenantId,
};

/// Most events recorded in one go.
const MAX_BATCH: usize = 256;
/// How long the writer gathers events after the first of a batch.
const GATHER: Duration = Duration::from_millis(50);
/// Events queued before callers wait.
const QUEUE: usize = 4 * MAX_BATCH;

/// Hands usage events to the background writer.
#[derive(Clone)]
pub struct UsageWriter {
    events: mpsc::Sender<(TenantId, UsageEvent)>,
}

/// The writer's task, to wait for at shutdown.
pub struct UsageWriterTask(JoinHandle<()>);

impl UsageWriterTask {
    /// Resolves once every handle is dropped and the queue is recorded.
    pub async fn finished(self) {
        let _ = self.0.await;
    }
}

impl UsageWriter {
    /// Starts the writer on `db`.
    pub fn start(db: Database) -> (Self, UsageWriterTask) {
        let (events, queue) = mpsc::channel(QUEUE);
        let task = tokio::spawn(run(db, queue));
        (Self { events }, UsageWriterTask(task))
    }

    /// Queues `event` of `tenant`.
    pub async fn record(&self, tenant: TenantId, event: UsageEvent) {
        if self.events.send((tenant, event)).await.is_err() {
            tracing::error!("usage writer stopped: a usage event was not recorded");
        }
    }
}

async fn run(db: Database, mut queue: mpsc::Receiver<(TenantId, UsageEvent)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let until = Instant::now() + GATHER;
        while batch.len() < MAX_BATCH {
            let room = MAX_BATCH - batch.len();
            match tokio::time::timeout_at(until, queue.recv_many(&mut batch, room)).await {
                // The queue is closed (the server stopping), or the time is up.
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let mut by_tenant: BTreeMap<TenantId, Vec<UsageEvent>> = BTreeMap::new();
        for (tenant, event) in batch.drain(..) {
            by_tenant.entry(tenant).or_default().push(event);
        }
        for (tenant, events) in by_tenant {
            if let Err(err) = write(&db, tenant, &events).await {
                // One bad event must not cost the others: each is tried again alone.
                tracing::warn!(error = %err, %tenant, events = events.len(), "usage batch failed; recording one by one");
                for event in &events {
                    if let Err(err) = write(&db, tenant, std::slice::from_ref(event)).await {
                        tracing::error!(error = %err, %tenant, model = %event.model, "usage event not recorded");
                    }
                }
            }
        }
    }
}

async fn write(db: &Database, tenant: TenantId, events: &[UsageEvent]) -> Result<(), StoreError> {
    let mut tx = db.begin_tenant(tenant).await?;
    store::usage::record(&mut tx, events).await?;
    tx.commit().await
}
