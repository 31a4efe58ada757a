//! A replica's short-lived memory of verified API keys and of whether tenants are active, so
//! that a call does not cost a Postgres round trip to learn either.
//!
//! Entries live for `auth.credential_cache_ttl` at most. Anything that can make a key or a
//! session stop working (revocation, a user disabled or deleted, a tenant suspended or
//! deleted) drops the tenant's entries on every replica through [`super::replica_sync`], so
//! those changes still take effect at once; the TTL bounds staleness should an
//! announcement be lost.

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
    /// Whether each tenant was active when last read (sessions carry no tenant state).
    tenants: Mutex<HashMap<TenantId, (bool, Instant)>>,
}

impl CredentialCache {
    /// Remembers keys for `ttl` (zero: not at all).
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
            tenants: Mutex::new(HashMap::new()),
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

    /// Whether `tenant` was active when read within the TTL.
    pub fn tenant_active(&self, tenant: TenantId) -> Option<bool> {
        let tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        tenants
            .get(&tenant)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(active, _)| *active)
    }

    /// Remembers whether `tenant` is active, as just read from Postgres.
    pub fn put_tenant_state(&self, tenant: TenantId, active: bool) {
        if self.ttl.is_zero() {
            return;
        }
        let mut tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        if tenants.len() >= MAX_ENTRIES {
            tenants.clear();
        }
        tenants.insert(tenant, (active, Instant::now()));
    }

    /// Forgets every key of `tenant`, and its state.
    pub fn forget_tenant(&self, tenant: TenantId) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, (credential, _)| credential.tenant_id != tenant.0);
        drop(entries);
        self.tenants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&tenant);
    }

    /// Forgets everything (after a lost subscription).
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.tenants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}
