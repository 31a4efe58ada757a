//! Group commit for the events of read calls and refusals.
//!
//! A transaction per event is bounded by commit latency (about a millisecond), so a busy
//! tenant would wait on its own audit trail. Instead each call hands its event to a writer
//! lane and waits; a lane takes everything queued (up to `audit.max_batch`), appends it to
//! the tenants' chains in one transaction, and only then releases each waiting call, so
//! no response leaves before its event is committed. A tenant always maps to the same
//! lane, so lanes never contend for a chain head; different tenants spread over lanes.
//! If a group fails, each tenant's events are retried in a transaction of their own, so
//! one tenant's failure does not fail another's calls.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{NewEvent, chained_row};
use crate::{
    store::{self, Database, StoreError},
    tenancy::{self, TenantId},
};

/// Events a lane holds before callers wait to enqueue, per event of a batch.
const QUEUE_PER_BATCH: usize = 4;

/// One call's event waiting for its commit.
struct Job {
    tenant: TenantId,
    event: NewEvent,
    done: oneshot::Sender<Result<(), String>>,
}

/// Why an event was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Postgres refused or failed.
    #[error("audit events not committed: {0}")]
    Failed(String),
    /// The writer has stopped (the server is shutting down).
    #[error("the audit writer has stopped")]
    Stopped,
}

/// Hands events to the writer lanes; cheap to clone.
#[derive(Clone)]
pub struct AuditWriter {
    lanes: Arc<[mpsc::Sender<Job>]>,
}

impl AuditWriter {
    /// Starts `lanes` writer tasks on `db`, each committing up to `max_batch` events per
    /// transaction. They stop when the last clone of the writer is dropped.
    pub fn start(db: &Database, lanes: usize, max_batch: usize) -> Self {
        let lanes: Vec<_> = (0..lanes.max(1))
            .map(|_| {
                let (sender, receiver) = mpsc::channel(max_batch.max(1) * QUEUE_PER_BATCH);
                tokio::spawn(run_lane(db.clone(), receiver, max_batch.max(1)));
                sender
            })
            .collect();
        Self {
            lanes: lanes.into(),
        }
    }

    /// Appends `event` to `tenant`'s chain; returns once it is committed.
    ///
    /// # Errors
    /// [`WriteError`] when it could not be committed; the caller must then fail.
    pub async fn record(&self, tenant: TenantId, event: NewEvent) -> Result<(), WriteError> {
        let (high, low) = tenant.0.as_u64_pair();
        let lane = &self.lanes[((high ^ low) % self.lanes.len() as u64) as usize];
        let (done, committed) = oneshot::channel();
        lane.send(Job {
            tenant,
            event,
            done,
        })
        .await
        .map_err(|_| WriteError::Stopped)?;
        committed
            .await
            .map_err(|_| WriteError::Stopped)?
            .map_err(WriteError::Failed)
    }
}

async fn run_lane(db: Database, mut queue: mpsc::Receiver<Job>, max_batch: usize) {
    let mut batch = Vec::with_capacity(max_batch);
    while queue.recv_many(&mut batch, max_batch).await > 0 {
        let groups = by_tenant(std::mem::take(&mut batch));
        match commit(&db, &groups).await {
            Ok(()) => groups
                .into_iter()
                .flat_map(|(_, jobs)| jobs)
                .for_each(|job| drop(job.done.send(Ok(())))),
            Err(err) if groups.len() == 1 => fail(groups, &err),
            Err(_) => {
                for group in groups {
                    let single = [group];
                    match commit(&db, &single).await {
                        Ok(()) => single
                            .into_iter()
                            .flat_map(|(_, jobs)| jobs)
                            .for_each(|job| drop(job.done.send(Ok(())))),
                        Err(err) => fail(single, &err),
                    }
                }
            }
        }
        batch = Vec::with_capacity(max_batch);
    }
}

/// Jobs grouped by tenant, tenants in order of first appearance, events in arrival order.
fn by_tenant(jobs: Vec<Job>) -> Vec<(TenantId, Vec<Job>)> {
    let mut groups: Vec<(TenantId, Vec<Job>)> = Vec::new();
    for job in jobs {
        match groups.iter_mut().find(|(tenant, _)| *tenant == job.tenant) {
            Some((_, jobs)) => jobs.push(job),
            None => groups.push((job.tenant, vec![job])),
        }
    }
    groups
}

/// Appends every group to its tenant's chain in one transaction.
async fn commit(db: &Database, groups: &[(TenantId, Vec<Job>)]) -> Result<(), StoreError> {
    let mut tx = db.pool().begin().await?;
    for (tenant, jobs) in groups {
        tenancy::scope(&mut tx, *tenant).await?;
        let (mut seq, mut previous) = store::audit::lock_head(&mut tx, *tenant).await?;
        let rows: Vec<_> = jobs
            .iter()
            .map(|job| {
                seq += 1;
                let row = chained_row(*tenant, seq, &previous, &job.event);
                previous.clone_from(&row.hash);
                row
            })
            .collect();
        store::audit::insert(&mut tx, &rows).await?;
    }
    tx.commit().await.map_err(StoreError::from)
}

fn fail<I: IntoIterator<Item = (TenantId, Vec<Job>)>>(groups: I, err: &StoreError) {
    tracing::error!(error = %err, "audit events not written: failing their calls");
    for job in groups.into_iter().flat_map(|(_, jobs)| jobs) {
        drop(job.done.send(Err(err.to_string())));
    }
}
