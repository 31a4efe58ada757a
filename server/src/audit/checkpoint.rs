//! Signed checkpoints of tenants' chains.
//!
//! A checkpoint is an Ed25519 signature over (tenant, seq, hash, kind, time) of a point in
//! a chain. Whoever can write the database but not sign cannot cut off the newest events
//! (a periodic checkpoint names a seq beyond them) nor pass a deletion off as retention (the
//! purge leaves a retention checkpoint at the cut). The signing key is `audit.signing_key`
//! or, when unset, derived from the master key; auditors get the public half from
//! `codexcontinue audit public-key`.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::STANDARD};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::{
    Config, periodic,
    store::{self, Database, StoreError, audit::CheckpointRow},
    tenancy::TenantId,
};

/// Domain separation for deriving the signing key from the master key.
const DERIVATION_LABEL: &[u8] = b"codexcontinue audit checkpoint signing key v1\0";

/// Why a signing key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    /// The named setting is not 32 bytes of base64.
    #[error("{0} must be 32 bytes, base64")]
    Malformed(&'static str),
    /// Neither `audit.signing_key` nor `crypto.master_key` is set.
    #[error("audit.signing_key (or crypto.master_key to derive it from) is not set")]
    Missing,
}

/// Why a checkpoint was signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointKind {
    /// The chain head, on a timer.
    Periodic,
    /// Where the retention purge cut the chain.
    Retention,
}

impl CheckpointKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Periodic => "periodic",
            Self::Retention => "retention",
        }
    }
}

/// Signs and verifies checkpoints.
#[derive(Clone)]
pub struct CheckpointSigner {
    key: SigningKey,
    key_id: String,
}

impl CheckpointSigner {
    /// A signer from a base64 32-byte seed (`audit.signing_key`).
    ///
    /// # Errors
    /// [`SigningKeyError`] when it is not 32 bytes of base64.
    pub fn from_base64(seed: &SecretString) -> Result<Self, SigningKeyError> {
        let bytes = decode_32(seed).ok_or(SigningKeyError::Malformed("audit.signing_key"))?;
        Ok(Self::from_seed(&bytes))
    }

    /// A signer derived from the master key (SHA-256 of a fixed label and the key).
    ///
    /// # Errors
    /// [`SigningKeyError`] when the master key is not 32 bytes of base64.
    pub fn derived_from_master_key(master_key: &SecretString) -> Result<Self, SigningKeyError> {
        let bytes = decode_32(master_key).ok_or(SigningKeyError::Malformed("crypto.master_key"))?;
        let seed: [u8; 32] = Sha256::new()
            .chain_update(DERIVATION_LABEL)
            .chain_update(bytes)
            .finalize()
            .into();
        Ok(Self::from_seed(&seed))
    }

    /// The signer the configuration calls for: `audit.signing_key`, else derived from
    /// `crypto.master_key`.
    ///
    /// # Errors
    /// [`SigningKeyError`] when neither is set or the one used is malformed.
    pub fn from_config(config: &Config) -> Result<Self, SigningKeyError> {
        match (&config.audit.signing_key, &config.crypto.master_key) {
            (Some(seed), _) => Self::from_base64(seed),
            (None, Some(master_key)) => Self::derived_from_master_key(master_key),
            (None, None) => Err(SigningKeyError::Missing),
        }
    }

    fn from_seed(seed: &[u8; 32]) -> Self {
        let key = SigningKey::from_bytes(seed);
        let key_id = hex::encode(&Sha256::digest(key.verifying_key().as_bytes())[..8]);
        Self { key, key_id }
    }

    /// The public key, base64, for verifying checkpoints elsewhere.
    pub fn public_key_base64(&self) -> String {
        STANDARD.encode(self.key.verifying_key().as_bytes())
    }

    /// Short id of the key, stored with each checkpoint.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// A signed checkpoint of `tenant`'s chain at (`seq`, `hash`).
    pub fn sign(
        &self,
        tenant: TenantId,
        seq: i64,
        hash: &[u8],
        kind: CheckpointKind,
    ) -> CheckpointRow {
        let now = OffsetDateTime::now_utc();
        let signed_at = now
            .replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
            .unwrap_or(now);
        let mut row = CheckpointRow {
            tenant_id: tenant.0,
            seq,
            hash: hash.to_vec(),
            kind: kind.as_str().to_owned(),
            signed_at,
            key_id: self.key_id.clone(),
            signature: Vec::new(),
        };
        row.signature = self.key.sign(&signed_message(&row)).to_bytes().to_vec();
        row
    }

    /// Whether `row` carries this key's valid signature.
    pub fn verifies(&self, row: &CheckpointRow) -> bool {
        let verifying: VerifyingKey = self.key.verifying_key();
        row.key_id == self.key_id
            && Signature::from_slice(&row.signature)
                .is_ok_and(|signature| verifying.verify(&signed_message(row), &signature).is_ok())
    }
}

fn decode_32(encoded: &SecretString) -> Option<[u8; 32]> {
    STANDARD
        .decode(encoded.expose_secret().trim())
        .ok()?
        .try_into()
        .ok()
}

/// What is signed: every field but the signature, one per line.
fn signed_message(row: &CheckpointRow) -> Vec<u8> {
    format!(
        "codexcontinue audit checkpoint v1\n{}\n{}\n{}\n{}\n{}",
        row.tenant_id,
        row.seq,
        hex::encode(&row.hash),
        row.kind,
        row.signed_at.format(&Rfc3339).unwrap_or_default(),
    )
    .into_bytes()
}

/// Signs the current head of the scoped tenant's chain when it moved past the last
/// checkpoint; returns the seq signed.
///
/// # Errors
/// [`StoreError`] when Postgres fails.
pub async fn checkpoint_head(
    db: &Database,
    signer: &CheckpointSigner,
    tenant: TenantId,
) -> Result<Option<i64>, StoreError> {
    let mut tx = db.begin_tenant(tenant).await?;
    let Some((seq, hash)) = store::audit::head(&mut tx).await? else {
        return Ok(None);
    };
    let last = store::audit::last_checkpoint_seq(&mut tx).await?;
    if seq == 0 || last.is_some_and(|last| last >= seq) {
        return Ok(None);
    }
    let row = signer.sign(tenant, seq, &hash, CheckpointKind::Periodic);
    store::audit::insert_checkpoint(&mut tx, &row).await?;
    tx.commit().await?;
    Ok(Some(seq))
}

/// Signs every tenant's chain head on a timer.
pub struct CheckpointJob {
    db: Database,
    signer: CheckpointSigner,
}

impl CheckpointJob {
    /// Signs with `signer` the chains in `db`.
    pub fn new(db: Database, signer: CheckpointSigner) -> Self {
        Self { db, signer }
    }

    /// Checkpoints every chain that moved; returns how many were signed.
    ///
    /// # Errors
    /// [`StoreError`] when Postgres fails; chains signed before stay signed.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let mut signed = 0;
        for tenant in store::audit::audited_tenants(&self.db).await? {
            if checkpoint_head(&self.db, &self.signer, tenant)
                .await?
                .is_some()
            {
                signed += 1;
            }
        }
        Ok(signed)
    }

    /// Runs a pass every `interval` until `stop` resolves, on one replica at a time.
    pub async fn run(self, interval: Duration, stop: impl Future<Output = ()>) {
        periodic::alone("audit checkpoints", interval, &self.db, stop, || async {
            self.run_once().await.map(drop)
        })
        .await;
    }
}
