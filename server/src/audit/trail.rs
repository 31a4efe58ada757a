//! A tenant's own view of its audit trail: listing and exporting its events, checking its
//! chain, and its retention. The domain side of `AuditService`; every read runs in the
//! caller's tenant transaction, and an export is itself recorded before its first row.

use serde_json::Value;
use tokio::sync::mpsc;

use super::{CheckpointSigner, ExportFormat, ExportRows, NewEvent, Verification, VerifyError};
use crate::{
    caller::Principal,
    config::MAX_RETENTION_DAYS,
    store::{
        self, Database, StoreError,
        audit::{EventFilter, EventRow},
    },
    tenancy::TenantId,
};

/// Longest one listing query may run: a filter that matches little in a long trail must
/// not hold a connection for long.
const LISTING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Rows fetched per page while exporting.
const EXPORT_PAGE: i64 = 500;
/// Export lines buffered ahead of a slow client.
const EXPORT_BUFFER: usize = 64;

/// Why a trail operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TrailError {
    /// Postgres failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A chain check is already running for the tenant, or the replica runs its share.
    #[error(transparent)]
    Busy(VerifyError),
    /// A retention outside what the platform allows.
    #[error(
        "must be between {floor} (the platform's floor, audit.min_retention_days) and {MAX_RETENTION_DAYS}"
    )]
    RetentionOutOfRange {
        /// The platform's floor.
        floor: i32,
    },
}

impl From<VerifyError> for TrailError {
    fn from(err: VerifyError) -> Self {
        match err {
            VerifyError::Store(err) => Self::Store(err),
            busy => Self::Busy(busy),
        }
    }
}

/// The audit trail as its tenant sees it.
pub struct AuditTrail {
    db: Database,
    verifier: super::Verifier,
    public_key: CheckpointPublicKey,
    min_retention_days: i32,
}

/// The key checkpoints are verified with, as auditors need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointPublicKey {
    /// The id stored with each checkpoint.
    pub key_id: String,
    /// The raw Ed25519 public key, base64.
    pub public_key: String,
}

impl AuditTrail {
    /// Reads events from `db`, checks chains against `signer`'s checkpoints; no tenant
    /// keeps its trail fewer than `min_retention_days` days.
    pub fn new(db: Database, signer: CheckpointSigner, min_retention_days: i32) -> Self {
        Self {
            public_key: CheckpointPublicKey {
                key_id: signer.key_id().to_owned(),
                public_key: signer.public_key_base64(),
            },
            verifier: super::Verifier::new(db.clone(), signer),
            db,
            min_retention_days,
        }
    }

    /// The public key of the checkpoints' signatures.
    pub fn checkpoint_public_key(&self) -> &CheckpointPublicKey {
        &self.public_key
    }

    /// Up to `limit` of the caller's tenant's events matching `filter`, newest first,
    /// older than `before`.
    ///
    /// # Errors
    /// [`TrailError::Store`] when Postgres fails (or the listing runs too long).
    pub async fn list(
        &self,
        principal: &Principal,
        filter: &EventFilter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<EventRow>, TrailError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        store::audit::limit_statement_time(&mut tx, LISTING_TIMEOUT).await?;
        let rows = store::audit::list(&mut tx, filter, before, limit).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// The caller's tenant's events matching `filter` as lines of `format`, oldest first,
    /// until they run out or the receiver is dropped. The export is recorded (with
    /// `details`) before this returns.
    ///
    /// # Errors
    /// [`TrailError::Store`] when the export cannot be recorded; a failure later ends the
    /// lines with the error.
    pub async fn export(
        &self,
        principal: &Principal,
        filter: EventFilter,
        format: ExportFormat,
        details: Value,
    ) -> Result<mpsc::Receiver<Result<String, TrailError>>, TrailError> {
        let event = NewEvent::by(principal, "audit.export", "audit_events", "", details);
        super::record(&self.db, principal.tenant, &event).await?;
        let (lines, receiver) = mpsc::channel(EXPORT_BUFFER);
        tokio::spawn(export_lines(
            self.db.clone(),
            principal.tenant,
            filter,
            ExportRows::new(format),
            lines,
        ));
        Ok(receiver)
    }

    /// Checks the caller's tenant's chain (from its last checkpoint when
    /// `since_checkpoint`).
    ///
    /// # Errors
    /// [`TrailError::Busy`] while another check runs; [`TrailError::Store`].
    pub async fn verify(
        &self,
        principal: &Principal,
        since_checkpoint: bool,
    ) -> Result<Verification, TrailError> {
        Ok(self
            .verifier
            .verify(principal.tenant, since_checkpoint)
            .await?)
    }

    /// Days the caller's tenant keeps its events.
    ///
    /// # Errors
    /// [`TrailError::Store`] when Postgres fails.
    pub async fn retention_days(&self, principal: &Principal) -> Result<i32, TrailError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let days = store::audit::retention_days(&mut tx).await?;
        tx.commit().await?;
        Ok(days)
    }

    /// Sets (and records) how many days the caller's tenant keeps its events.
    ///
    /// # Errors
    /// [`TrailError::RetentionOutOfRange`] below the platform's floor or above 100 years;
    /// [`TrailError::Store`].
    pub async fn set_retention_days(
        &self,
        principal: &Principal,
        days: i32,
    ) -> Result<(), TrailError> {
        if !(self.min_retention_days..=MAX_RETENTION_DAYS).contains(&days) {
            return Err(TrailError::RetentionOutOfRange {
                floor: self.min_retention_days,
            });
        }
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        super::set_retention_days(&mut tx, principal, days).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Sends the lines of an export, page by page, until the events run out or the receiver
/// goes away.
async fn export_lines(
    db: Database,
    tenant: TenantId,
    filter: EventFilter,
    mut rows: ExportRows,
    lines: mpsc::Sender<Result<String, TrailError>>,
) {
    let mut after = 0;
    loop {
        let page = async {
            let mut tx = db.begin_tenant(tenant).await?;
            let page = store::audit::list_after(&mut tx, &filter, after, EXPORT_PAGE).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(page)
        };
        let page = match page.await {
            Ok(page) => page,
            Err(err) => {
                let _ = lines.send(Err(err.into())).await;
                return;
            }
        };
        let done = (page.len() as i64) < EXPORT_PAGE;
        for event in &page {
            after = event.seq;
            for row in rows.lines(event) {
                if lines.send(Ok(row)).await.is_err() {
                    return;
                }
            }
        }
        if done {
            break;
        }
    }
    if let Some(row) = rows.trailer() {
        let _ = lines.send(Ok(row)).await;
    }
}
