//! Envelope encryption at rest.
//!
//! Each tenant has data keys (AES-256-GCM, versioned) that exist in the database only
//! wrapped by the deployment's master key ([`KeyWrapper`]: a local key from the
//! configuration here; a cloud KMS implements the same trait). A sealed value is
//! `version (4 bytes, big-endian) || nonce (12 random bytes) || ciphertext+tag`, with
//! associated data binding it to its tenant, table and row, so a value copied to another
//! row or tenant does not open. Destroying a tenant's keys makes every value sealed for it
//! unreadable (crypto-shredding) in the database and in backups taken afterwards; a backup
//! taken before still holds the wrapped keys, so it opens with the master key.

mod master_key;
mod rotation;
mod sealer;

pub use master_key::{KeyWrapper, LocalMasterKey};
pub use rotation::{
    CONVERSATION_TITLES, IDP_CLIENT_SECRET, MEMORY_CONTENTS, MEMORY_KEYWORD_KEYS, MESSAGE_CONTENTS,
    MESSAGE_TOOL_CALLS, PLUGIN_SECRETS, PROVIDER_CREDENTIALS, Rotation, SEALED_COLUMNS,
    SealedColumn, TENANT_MODEL_PARTS, reseal_stale, rotate_data_key,
};
pub use sealer::{Keyring, Sealer};

/// Why sealing or opening failed.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// `crypto.master_key` is missing or malformed.
    #[error("crypto.master_key {0}")]
    MasterKey(&'static str),
    /// A value or key did not authenticate: wrong key, tenant, row, or tampering.
    #[error("sealed value does not open (wrong key or context, or altered)")]
    Unauthentic,
    /// The value names a key version the tenant does not have (e.g. destroyed).
    #[error("data key version {0} is not available")]
    MissingKey(i32),
    /// The value is too short to be sealed data.
    #[error("malformed sealed value")]
    Malformed,
    /// No random bytes.
    #[error(transparent)]
    Randomness(#[from] crate::random::RandomnessUnavailable),
    /// Postgres failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}
