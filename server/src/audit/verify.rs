//! Checking a tenant's chain: every stored event must hash to its successor's link, every
//! checkpoint must carry the server's signature and match the event it names, the chain
//! must reach its head and every checkpoint, and it may start after seq 1 only at a signed
//! retention cut.

use std::collections::BTreeMap;

use super::{CheckpointKind, CheckpointSigner, chain_hash};
use crate::{
    store::{self, Database, StoreError, audit::CheckpointRow},
    tenancy::{self, TenantId},
};

/// Events checked per page.
const PAGE: i64 = 1000;

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

/// Recomputes `tenant`'s chain and checks it against its checkpoints and head.
///
/// # Errors
/// [`StoreError`] when Postgres fails.
pub async fn verify(
    db: &Database,
    signer: &CheckpointSigner,
    tenant: TenantId,
) -> Result<Verification, StoreError> {
    let mut tx = tenancy::begin(db, tenant).await?;
    let checkpoints = store::audit::checkpoints(&mut tx).await?;
    let mut report = Verification {
        events_checked: 0,
        checkpoints_checked: 0,
        broken: None,
    };
    if let Some(forged) = checkpoints.iter().find(|cp| !signer.verifies(cp)) {
        return Ok(report.broken_at(forged.seq, "checkpoint signature does not verify"));
    }
    let mut by_seq: BTreeMap<i64, Vec<&CheckpointRow>> = BTreeMap::new();
    for checkpoint in &checkpoints {
        by_seq.entry(checkpoint.seq).or_default().push(checkpoint);
    }
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
    let head = store::audit::head(&mut tx).await?;
    let first = store::audit::first_seq(&mut tx).await?;
    // Where the stored chain starts: seq 1, or just after a signed retention cut.
    let start = first.or(latest_cut.map(|seq| seq + 1)).unwrap_or(1);
    let mut previous = if start == 1 {
        vec![0u8; 32]
    } else if let Some(cut) = cut(start - 1) {
        report.checkpoints_checked += 1;
        cut.hash.clone()
    } else {
        let missing = latest_cut
            .filter(|seq| *seq < start)
            .map_or(1, |seq| seq + 1);
        return Ok(report.broken_at(missing, "missing event"));
    };
    let mut expected = start;
    loop {
        let rows = store::audit::page(&mut tx, expected - 1, PAGE).await?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            if row.seq != expected {
                return Ok(report.broken_at(expected, "missing event"));
            }
            if chain_hash(&previous, row) != row.hash {
                return Ok(report.broken_at(expected, "hash mismatch"));
            }
            for checkpoint in by_seq.get(&row.seq).into_iter().flatten() {
                if checkpoint.hash != row.hash {
                    return Ok(
                        report.broken_at(row.seq, "event differs from its signed checkpoint")
                    );
                }
                report.checkpoints_checked += 1;
            }
            previous.clone_from(&row.hash);
            expected += 1;
            report.events_checked += 1;
        }
    }
    tx.commit().await.map_err(StoreError::from)?;
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

impl Verification {
    fn broken_at(mut self, seq: i64, problem: &str) -> Self {
        self.broken = Some((seq, problem.to_owned()));
        self
    }
}
