//! Group commit for the events of read calls and refusals.
//!
//! A transaction per event is bounded by commit latency (about a millisecond), so a busy
//! tenant would wait on its own audit trail. Instead each call hands its event to a writer
//! lane and waits; a lane takes everything queued (up to `audit.max_batch`), appends it to
//! the tenants' chains in one transaction, and only then releases each waiting call, so
//! no response leaves before its event is committed. A tenant always maps to the same
//! lane, so lanes never contend for a chain head; different tenants spread over lanes.
//! A lane remembers the heads it wrote, so a batch usually takes one statement (chained
//! onto the remembered heads, checked under lock by Postgres, committed at once); when a
//! head moved elsewhere the batch is chained again onto the locked heads. If a group
//! fails, each tenant's events are retried on their own, and then each event alone, so
//! one tenant's (or one event's) failure does not fail another's calls.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use tokio::sync::{mpsc, oneshot};

use super::{NewEvent, chained_row};
use crate::{
    store::{
        self, Database, StoreError,
        audit::{EventRow, Head},
    },
    tenancy::TenantId,
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
    let mut lane = Lane {
        db,
        heads: HashMap::new(),
    };
    let mut batch = Vec::with_capacity(max_batch);
    while queue.recv_many(&mut batch, max_batch).await > 0 {
        let groups = by_tenant(std::mem::take(&mut batch));
        if let Err(err) = lane.commit(&groups).await {
            // Retried tenant by tenant, then event by event: one tenant's or one event's
            // failure fails only its own calls.
            tracing::warn!(error = %err, "audit batch failed; retrying its parts alone");
            for group in groups {
                lane.commit_alone(group).await;
            }
        } else {
            succeed(groups);
        }
        batch = Vec::with_capacity(max_batch);
    }
}

/// Jobs grouped by tenant, in ascending tenant order, events in arrival order.
fn by_tenant(jobs: Vec<Job>) -> Vec<(TenantId, Vec<Job>)> {
    let mut groups: BTreeMap<TenantId, Vec<Job>> = BTreeMap::new();
    for job in jobs {
        groups.entry(job.tenant).or_default().push(job);
    }
    groups.into_iter().collect()
}

/// One writer task's state: the chain heads it last wrote (or saw) for its tenants, so
/// that a batch is usually chained and committed in one statement.
struct Lane {
    db: Database,
    heads: HashMap<TenantId, (i64, Vec<u8>)>,
}

impl Lane {
    /// Appends every group to its tenant's chain in one transaction. Chains onto the
    /// remembered heads and commits in one statement; if a head is unknown or has moved
    /// (a change recorded by a handler, another replica), locks and reads the heads in a
    /// transaction and chains onto them instead.
    async fn commit(&mut self, groups: &[(TenantId, Vec<Job>)]) -> Result<(), StoreError> {
        let expected = self.expected(groups);
        if expected.iter().all(|(_, seq, _)| *seq >= 0) {
            let rows = chain(groups, &expected)?;
            let mut conn = self.db.platform_connection().await?;
            let moved = store::audit::append(&mut conn, &expected, &rows).await?;
            if moved.is_empty() {
                self.remember(&rows);
                return Ok(());
            }
            self.forget(groups);
        }
        let mut tx = self.db.begin_platform().await?;
        let unknown = self.expected(groups);
        let heads = store::audit::append(&mut tx, &unknown, &[]).await?;
        let rows = chain(groups, &heads)?;
        let moved = store::audit::append(&mut tx, &heads, &rows).await?;
        if !moved.is_empty() {
            return Err(StoreError::Inconsistent("a locked chain head moved"));
        }
        tx.commit().await?;
        self.remember(&rows);
        Ok(())
    }

    /// Commits one tenant's events; if that fails, each event on its own.
    async fn commit_alone(&mut self, group: (TenantId, Vec<Job>)) {
        let single = [group];
        let err = match self.commit(&single).await {
            Ok(()) => return succeed(single),
            Err(err) => err,
        };
        let [(tenant, jobs)] = single;
        if jobs.len() == 1 {
            return fail([(tenant, jobs)], &err);
        }
        for job in jobs {
            let one = [(tenant, vec![job])];
            match self.commit(&one).await {
                Ok(()) => succeed(one),
                Err(err) => fail(one, &err),
            }
        }
    }

    /// The remembered head of each group's tenant (seq -1: unknown).
    fn expected(&self, groups: &[(TenantId, Vec<Job>)]) -> Vec<Head> {
        groups
            .iter()
            .map(|(tenant, _)| match self.heads.get(tenant) {
                Some((seq, hash)) => (*tenant, *seq, hash.clone()),
                None => (*tenant, -1, Vec::new()),
            })
            .collect()
    }

    fn remember(&mut self, rows: &[EventRow]) {
        for row in rows {
            self.heads
                .insert(TenantId(row.tenant_id), (row.seq, row.hash.clone()));
        }
    }

    fn forget(&mut self, groups: &[(TenantId, Vec<Job>)]) {
        for (tenant, _) in groups {
            self.heads.remove(tenant);
        }
    }
}

/// The events of `groups`, each tenant's chained onto its head in `heads`.
fn chain(groups: &[(TenantId, Vec<Job>)], heads: &[Head]) -> Result<Vec<EventRow>, StoreError> {
    let mut rows = Vec::with_capacity(groups.iter().map(|(_, jobs)| jobs.len()).sum());
    for (tenant, jobs) in groups {
        let (_, mut seq, mut previous) = heads
            .iter()
            .find(|(head, ..)| head == tenant)
            .cloned()
            .ok_or(StoreError::Inconsistent("no chain head"))?;
        for job in jobs {
            seq += 1;
            let row = chained_row(*tenant, seq, &previous, &job.event);
            previous.clone_from(&row.hash);
            rows.push(row);
        }
    }
    Ok(rows)
}

fn succeed<I: IntoIterator<Item = (TenantId, Vec<Job>)>>(groups: I) {
    for job in groups.into_iter().flat_map(|(_, jobs)| jobs) {
        drop(job.done.send(Ok(())));
    }
}

fn fail<I: IntoIterator<Item = (TenantId, Vec<Job>)>>(groups: I, err: &StoreError) {
    tracing::error!(error = %err, "audit events not written: failing their calls");
    for job in groups.into_iter().flat_map(|(_, jobs)| jobs) {
        drop(job.done.send(Err(err.to_string())));
    }
}
