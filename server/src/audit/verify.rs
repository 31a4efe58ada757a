//! Checking a tenant's chain: every stored event must hash to its successor's link, every
//! checkpoint must carry the server's signature and match the event it names, the chain
//! must reach its head and every checkpoint, and it may start after seq 1 only at a signed
//! retention cut.
//!
//! A chain can hold millions of events, so checking one must not hold a pooled connection
//! (the audit trail of every call needs the pool) or the async runtime: each page is read
//! in a short transaction of its own and hashed on a blocking thread, and [`Verifier`]
//! lets at most one verification per tenant and [`MAX_RUNNING`] per replica run at once.
//! A check can also start from the newest signed checkpoint instead of the first event
//! (`since_checkpoint`): the signature vouches for everything before it.

use std::{
    collections::{BTreeMap, HashSet},
    sync::{Arc, Mutex},
};

use tokio::sync::Semaphore;

use super::{CheckpointKind, CheckpointSigner, chain_hash};
use crate::{
    store::{
        self, Database, StoreError,
        audit::{CheckpointRow, EventRow},
    },
    tenancy::TenantId,
};

/// Events checked per page (one short transaction each).
const PAGE: i64 = 1000;
/// Verifications one replica runs at once.
pub const MAX_RUNNING: usize = 2;

/// What checking a chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Events checked.
    pub events_checked: i64,
    /// Checkpoints whose signature and hash were checked.
    pub checkpoints_checked: i64,
    /// The first sequence number that does not check out, and why.
    pub broken: Option<(i64, String)>,
}

/// Why a verification did not run.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// This tenant's chain is being verified already.
    #[error("this tenant's audit chain is being verified already; retry when it is done")]
    TenantBusy,
    /// The replica runs as many verifications as it may.
    #[error("{MAX_RUNNING} audit chains are being verified on this server; retry shortly")]
    ReplicaBusy,
    /// Postgres failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Runs verifications, at most one per tenant and [`MAX_RUNNING`] at once.
#[derive(Clone)]
pub struct Verifier {
    db: Database,
    signer: CheckpointSigner,
    running: Arc<Mutex<HashSet<TenantId>>>,
    permits: Arc<Semaphore>,
}

impl Verifier {
    /// Verifies chains in `db` against checkpoints signed by `signer`.
    pub fn new(db: Database, signer: CheckpointSigner) -> Self {
        Self {
            db,
            signer,
            running: Arc::default(),
            permits: Arc::new(Semaphore::new(MAX_RUNNING)),
        }
    }

    /// Verifies `tenant`'s chain (from its newest checkpoint with `since_checkpoint`).
    ///
    /// # Errors
    /// [`VerifyError::TenantBusy`] or [`VerifyError::ReplicaBusy`] when it may not run now,
    /// [`VerifyError::Store`] when Postgres fails.
    pub async fn verify(
        &self,
        tenant: TenantId,
        since_checkpoint: bool,
    ) -> Result<Verification, VerifyError> {
        let _permit = self
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| VerifyError::ReplicaBusy)?;
        if !self.running().insert(tenant) {
            return Err(VerifyError::TenantBusy);
        }
        let result = check(&self.db, &self.signer, tenant, since_checkpoint).await;
        self.running().remove(&tenant);
        Ok(result?)
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashSet<TenantId>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Recomputes `tenant`'s whole chain and checks it against its checkpoints and head.
///
/// # Errors
/// [`StoreError`] when Postgres fails.
pub async fn verify(
    db: &Database,
    signer: &CheckpointSigner,
    tenant: TenantId,
) -> Result<Verification, StoreError> {
    check(db, signer, tenant, false).await
}

/// Like [`verify`], from the newest signed checkpoint on.
///
/// # Errors
/// [`StoreError`] when Postgres fails.
pub async fn verify_since_checkpoint(
    db: &Database,
    signer: &CheckpointSigner,
    tenant: TenantId,
) -> Result<Verification, StoreError> {
    check(db, signer, tenant, true).await
}

/// A check that finds a break re-runs once: a retention purge that removed the chain's
/// start between two pages would otherwise look like a missing event.
async fn check(
    db: &Database,
    signer: &CheckpointSigner,
    tenant: TenantId,
    since_checkpoint: bool,
) -> Result<Verification, StoreError> {
    let first = check_once(db, signer, tenant, since_checkpoint).await?;
    if first.broken.is_none() {
        return Ok(first);
    }
    check_once(db, signer, tenant, since_checkpoint).await
}

/// Where a check starts: the first seq to read and the link it must chain onto.
struct Start {
    seq: i64,
    previous: Vec<u8>,
}

async fn check_once(
    db: &Database,
    signer: &CheckpointSigner,
    tenant: TenantId,
    since_checkpoint: bool,
) -> Result<Verification, StoreError> {
    // The chain as it is now: checkpoints first, then the head (never behind them). Events
    // appended later are not checked.
    let mut tx = db.begin_tenant(tenant).await?;
    let checkpoints = store::audit::checkpoints(&mut tx).await?;
    let head = store::audit::head(&mut tx).await?;
    let first = store::audit::first_seq(&mut tx).await?;
    tx.commit().await?;
    let mut report = Verification {
        events_checked: 0,
        checkpoints_checked: 0,
        broken: None,
    };
    let (signer_copy, signed) = (signer.clone(), checkpoints.clone());
    let forged = tokio::task::spawn_blocking(move || {
        signed
            .iter()
            .find(|cp| !signer_copy.verifies(cp))
            .map(|cp| cp.seq)
    })
    .await
    .map_err(|_| StoreError::Inconsistent("checkpoint verification panicked"))?;
    if let Some(seq) = forged {
        return Ok(report.broken_at(seq, "checkpoint signature does not verify"));
    }
    let mut by_seq: BTreeMap<i64, Vec<CheckpointRow>> = BTreeMap::new();
    for checkpoint in &checkpoints {
        by_seq
            .entry(checkpoint.seq)
            .or_default()
            .push(checkpoint.clone());
    }
    let head_seq = head.as_ref().map_or(0, |(seq, _)| *seq);
    let start = if since_checkpoint {
        match anchor(db, tenant, &checkpoints, head_seq, &mut report).await? {
            Ok(start) => start,
            Err(broken) => return Ok(broken),
        }
    } else {
        match origin(&checkpoints, first, &mut report) {
            Ok(start) => start,
            Err(broken) => return Ok(broken),
        }
    };
    let by_seq = Arc::new(by_seq);
    let mut previous = start.previous;
    let mut expected = start.seq;
    while expected <= head_seq {
        let mut tx = db.begin_tenant(tenant).await?;
        let rows = store::audit::page(&mut tx, expected - 1, PAGE).await?;
        tx.commit().await?;
        let rows: Vec<EventRow> = rows.into_iter().filter(|r| r.seq <= head_seq).collect();
        if rows.is_empty() {
            break;
        }
        let checkpoints = by_seq.clone();
        let page = tokio::task::spawn_blocking(move || {
            check_page(&rows, expected, previous, &checkpoints)
        })
        .await
        .map_err(|_| StoreError::Inconsistent("chain hashing panicked"))?;
        report.events_checked += page.events;
        report.checkpoints_checked += page.checkpoints;
        if let Some((seq, problem)) = page.broken {
            return Ok(report.broken_at(seq, problem));
        }
        previous = page.previous;
        expected = page.next;
    }
    let last = expected - 1;
    if by_seq.range(last + 1..).next().is_some() {
        return Ok(report.broken_at(
            last + 1,
            "events a signed checkpoint covers are missing (chain cut off)",
        ));
    }
    let head_matches = match &head {
        Some((seq, hash)) => *seq == last && *hash == previous,
        None => last == 0,
    };
    if !head_matches {
        return Ok(report.broken_at(
            last + 1,
            "chain head does not match the last event (events cut off?)",
        ));
    }
    Ok(report)
}

/// The start of a whole-chain check: seq 1, or just after a signed retention cut.
fn origin(
    checkpoints: &[CheckpointRow],
    first: Option<i64>,
    report: &mut Verification,
) -> Result<Start, Verification> {
    let cut = |seq: i64| {
        checkpoints
            .iter()
            .find(|cp| cp.seq == seq && cp.kind == CheckpointKind::Retention.as_str())
    };
    let latest_cut = checkpoints
        .iter()
        .filter(|cp| cp.kind == CheckpointKind::Retention.as_str())
        .map(|cp| cp.seq)
        .max();
    let start = first.or(latest_cut.map(|seq| seq + 1)).unwrap_or(1);
    if start == 1 {
        return Ok(Start {
            seq: 1,
            previous: vec![0u8; 32],
        });
    }
    if let Some(cut) = cut(start - 1) {
        report.checkpoints_checked += 1;
        return Ok(Start {
            seq: start,
            previous: cut.hash.clone(),
        });
    }
    let missing = latest_cut
        .filter(|seq| *seq < start)
        .map_or(1, |seq| seq + 1);
    Err(report.clone().broken_at(missing, "missing event"))
}

/// The start of a check from the newest signed checkpoint at or before the head: the event
/// it names must be there with the signed hash; the chain goes on from it.
async fn anchor(
    db: &Database,
    tenant: TenantId,
    checkpoints: &[CheckpointRow],
    head_seq: i64,
    report: &mut Verification,
) -> Result<Result<Start, Verification>, StoreError> {
    let Some(anchor) = checkpoints
        .iter()
        .filter(|cp| cp.seq <= head_seq && cp.seq > 0)
        .max_by_key(|cp| cp.seq)
    else {
        return Ok(Ok(Start {
            seq: 1,
            previous: vec![0u8; 32],
        }));
    };
    let mut tx = db.begin_tenant(tenant).await?;
    let named = store::audit::page(&mut tx, anchor.seq - 1, 1).await?;
    tx.commit().await?;
    match named.first() {
        Some(row) if row.seq == anchor.seq && row.hash == anchor.hash => {
            report.checkpoints_checked += 1;
            Ok(Ok(Start {
                seq: anchor.seq + 1,
                previous: anchor.hash.clone(),
            }))
        }
        Some(row) if row.seq == anchor.seq => Ok(Err(report
            .clone()
            .broken_at(anchor.seq, "event differs from its signed checkpoint"))),
        _ => Ok(Err(report.clone().broken_at(anchor.seq, "missing event"))),
    }
}

/// What hashing one page found.
struct PageCheck {
    events: i64,
    checkpoints: i64,
    previous: Vec<u8>,
    next: i64,
    broken: Option<(i64, &'static str)>,
}

/// Checks `rows` (from `expected` on) chain onto `previous` and match their checkpoints.
fn check_page(
    rows: &[EventRow],
    mut expected: i64,
    mut previous: Vec<u8>,
    checkpoints: &BTreeMap<i64, Vec<CheckpointRow>>,
) -> PageCheck {
    let mut page = PageCheck {
        events: 0,
        checkpoints: 0,
        previous: Vec::new(),
        next: expected,
        broken: None,
    };
    for row in rows {
        if row.seq != expected {
            page.broken = Some((expected, "missing event"));
            return page;
        }
        if chain_hash(&previous, row) != row.hash {
            page.broken = Some((expected, "hash mismatch"));
            return page;
        }
        for checkpoint in checkpoints.get(&row.seq).into_iter().flatten() {
            if checkpoint.hash != row.hash {
                page.broken = Some((row.seq, "event differs from its signed checkpoint"));
                return page;
            }
            page.checkpoints += 1;
        }
        previous.clone_from(&row.hash);
        expected += 1;
        page.events += 1;
    }
    page.previous = previous;
    page.next = expected;
    page
}

impl Verification {
    fn broken_at(mut self, seq: i64, problem: &str) -> Self {
        self.broken = Some((seq, problem.to_owned()));
        self
    }
}
