//! A replica's short-lived memory of verified API keys, so that a key's every call does not
//! cost a Postgres round trip.
//!
//! Entries live for `auth.credential_cache_ttl` at most. Anything that can make a key stop
//! working (revocation, a user disabled or deleted, a tenant suspended or deleted) drops the
//! tenant's entries on every replica through [`super::replica_sync`], so those changes still
//! take effect at once; the TTL bounds staleness should an announcement be lost.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::{store::api_keys::KeyCredential, tenancy::TenantId};

/// Entries kept at most; past that the cache starts over.
const MAX_ENTRIES: usize = 100_000;

/// Verified API keys by the SHA-256 of their secret.
pub struct CredentialCache {
    ttl: Duration,
    entries: Mutex<HashMap<[u8; 32], (KeyCredential, Instant)>>,
}

impl CredentialCache {
    /// Remembers keys for `ttl` (zero: not at all).
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The key's credential, if verified within the TTL.
    pub fn get(&self, digest: &[u8; 32]) -> Option<KeyCredential> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(digest)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(credential, _)| credential.clone())
    }

    /// Remembers a credential just read from Postgres.
    pub fn put(&self, digest: [u8; 32], credential: KeyCredential) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(digest, (credential, Instant::now()));
    }

    /// Forgets every key of `tenant`.
    pub fn forget_tenant(&self, tenant: TenantId) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, (credential, _)| credential.tenant_id != tenant.0);
    }

    /// Forgets everything (after a lost subscription).
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}
