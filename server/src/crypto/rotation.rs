//! Data key rotation: a new key version for a tenant, then every value sealed with an
//! older version is opened and sealed again with the new one, a batch per transaction,
//! so a compromised old key stops mattering for live data. Old versions stay (backups
//! made before the rotation still need them) until the tenant is deleted.

use serde_json::json;

use super::{CryptoError, Sealer};
use crate::{
    audit::{self, NewEvent},
    store::{self, Database},
    tenancy::TenantId,
};

/// A column of sealed values: its table (also the table named in the associated data),
/// the column whose text identifies the row in the associated data, and the column itself.
#[derive(Debug, Clone, Copy)]
pub struct SealedColumn {
    /// Table.
    pub table: &'static str,
    /// Column identifying the row (bound into the associated data as text).
    pub row: &'static str,
    /// That column's SQL type (rows are looked up by it, not by its text).
    pub row_type: &'static str,
    /// Column holding the sealed bytes.
    pub column: &'static str,
    /// Values re-sealed per transaction (fewer for big values).
    pub batch: i64,
}

/// Identity provider client secrets (one per tenant).
pub const IDP_CLIENT_SECRET: SealedColumn = SealedColumn {
    table: "identity_providers",
    row: "tenant_id",
    row_type: "uuid",
    column: "client_secret_sealed",
    batch: SMALL_VALUES,
};

/// Conversation titles.
pub const CONVERSATION_TITLES: SealedColumn = SealedColumn {
    table: "conversations",
    row: "id",
    row_type: "uuid",
    column: "title_sealed",
    batch: SMALL_VALUES,
};

/// Message contents.
pub const MESSAGE_CONTENTS: SealedColumn = SealedColumn {
    table: "messages",
    row: "id",
    row_type: "uuid",
    column: "content_sealed",
    batch: SMALL_VALUES,
};

/// The tool calls of the turn that led to a reply.
pub const MESSAGE_TOOL_CALLS: SealedColumn = SealedColumn {
    table: "messages",
    row: "id",
    row_type: "uuid",
    column: "tool_calls_sealed",
    batch: SMALL_VALUES,
};

/// Model provider credentials.
pub const PROVIDER_CREDENTIALS: SealedColumn = SealedColumn {
    table: "providers",
    row: "name",
    row_type: "text",
    column: "credential_sealed",
    batch: SMALL_VALUES,
};

/// Plugins' credentials and opaque-id keys.
pub const PLUGIN_SECRETS: SealedColumn = SealedColumn {
    table: "plugins",
    row: "id",
    row_type: "uuid",
    column: "secrets_sealed",
    batch: SMALL_VALUES,
};

/// Parts (up to 1 MiB each) of the files of tenants' own models.
pub const TENANT_MODEL_PARTS: SealedColumn = SealedColumn {
    table: "tenant_model_parts",
    row: "id",
    row_type: "text",
    column: "data_sealed",
    batch: 16,
};

/// Memory texts (long-term and episodic memory).
pub const MEMORY_CONTENTS: SealedColumn = SealedColumn {
    table: "memories",
    row: "id",
    row_type: "uuid",
    column: "content_sealed",
    batch: SMALL_VALUES,
};

/// Each tenant's key of the blind keyword index of memories.
pub const MEMORY_KEYWORD_KEYS: SealedColumn = SealedColumn {
    table: "memory_keyword_keys",
    row: "tenant_id",
    row_type: "uuid",
    column: "key_sealed",
    batch: SMALL_VALUES,
};

/// Every column holding sealed values; modules that seal add theirs here.
pub const SEALED_COLUMNS: &[SealedColumn] = &[
    IDP_CLIENT_SECRET,
    CONVERSATION_TITLES,
    MESSAGE_CONTENTS,
    MESSAGE_TOOL_CALLS,
    PROVIDER_CREDENTIALS,
    PLUGIN_SECRETS,
    TENANT_MODEL_PARTS,
    MEMORY_CONTENTS,
    MEMORY_KEYWORD_KEYS,
];

/// Small values re-sealed per transaction.
const SMALL_VALUES: i64 = 200;

/// What a rotation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// The new key version.
    pub version: i32,
    /// Values sealed again with it.
    pub resealed: u64,
}

impl SealedColumn {
    fn place(&self) -> store::sealed::Place<'static> {
        (self.table, self.row, self.row_type, self.column)
    }
}

/// Rotates `tenant`'s data key and re-seals its values; `job` names who asked in the
/// audit trail, `progress` hears (table, values re-sealed so far in it) after each batch.
/// When values are still sealed with an older version (an earlier rotation was
/// interrupted), no new version is made: the pending re-seal is finished instead.
///
/// # Errors
/// [`CryptoError`] when a key or value cannot be read or written; values done before stay
/// done, and running it again finishes the job.
pub async fn rotate_data_key(
    db: &Database,
    sealer: &Sealer,
    tenant: TenantId,
    job: &str,
    progress: impl FnMut(&str, u64),
) -> Result<Rotation, CryptoError> {
    let mut tx = db.begin_tenant(tenant).await?;
    let pending = match store::data_keys::latest(&mut tx).await? {
        Some((latest, _)) => {
            let mut pending = None;
            for sealed in SEALED_COLUMNS {
                if store::sealed::any_stale(&mut tx, sealed.place(), latest).await? {
                    pending = Some(latest);
                    break;
                }
            }
            pending
        }
        None => None,
    };
    let version = match pending {
        Some(version) => version,
        None => {
            let version = sealer.rotate(&mut tx, tenant).await?;
            let event = NewEvent::by_system(
                job,
                "data_key.rotate",
                "tenant",
                tenant,
                json!({ "version": version }),
            );
            audit::append(&mut tx, tenant, &event).await?;
            version
        }
    };
    tx.commit().await?;
    let resealed = reseal_stale(db, sealer, tenant, job, progress).await?;
    Ok(Rotation { version, resealed })
}

/// Seals every value of `tenant` not on its newest key version again with that version;
/// returns how many. `progress` hears (table, values re-sealed so far in it) after each
/// batch.
///
/// # Errors
/// [`CryptoError`] when a key or value cannot be read or written.
pub async fn reseal_stale(
    db: &Database,
    sealer: &Sealer,
    tenant: TenantId,
    job: &str,
    mut progress: impl FnMut(&str, u64),
) -> Result<u64, CryptoError> {
    let mut resealed = 0;
    for sealed in SEALED_COLUMNS {
        let place = sealed.place();
        let mut after: Option<String> = None;
        let mut in_table = 0u64;
        loop {
            let mut tx = db.begin_tenant(tenant).await?;
            let Some((latest, _)) = store::data_keys::latest(&mut tx).await? else {
                return Ok(resealed);
            };
            let stale =
                store::sealed::stale(&mut tx, place, latest, after.as_deref(), sealed.batch)
                    .await?;
            // One keyring for the batch: each key is read and unwrapped once.
            let mut keyring = sealer.keyring(tenant);
            let mut fresh = Vec::with_capacity(stale.len());
            for (row, value) in &stale {
                let plain = keyring.open(&mut tx, sealed.table, row, value).await?;
                fresh.push(keyring.seal(&mut tx, sealed.table, row, &plain).await?);
            }
            let rows: Vec<&str> = stale.iter().map(|(row, _)| row.as_str()).collect();
            store::sealed::replace_all(&mut tx, place, &rows, &fresh).await?;
            if !stale.is_empty() {
                let details =
                    json!({ "table": sealed.table, "values": stale.len(), "version": latest });
                let event = NewEvent::by_system(job, "data.reseal", sealed.table, "", details);
                audit::append(&mut tx, tenant, &event).await?;
            }
            tx.commit().await?;
            resealed += stale.len() as u64;
            in_table += stale.len() as u64;
            if !stale.is_empty() {
                progress(sealed.table, in_table);
            }
            if (stale.len() as i64) < sealed.batch {
                break;
            }
            after = stale.last().map(|(row, _)| row.clone());
        }
    }
    Ok(resealed)
}
