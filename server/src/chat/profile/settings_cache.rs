//! A replica's memory of what every model call reads before its prompt is built: the
//! tenant's budgets, the profile and the route of the model asked for. With it, a call of
//! a tenant without budgets reads nothing from Postgres before the provider is asked.
//!
//! Entries are trusted only at the version of the tenant's settings they were read at
//! ([`SettingsChanges`]): every change of a profile, provider, alias, budget or the
//! tenant's PHI policy moves the version on every replica, so the next call reads the
//! settings again. `llm.settings_cache_ttl` bounds an entry's life should an announcement
//! be lost. Routes to the server's own models are not kept: those models are loaded and
//! unloaded at run time.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::chat::Profile;
use crate::{
    cache::SettingsChanges,
    llm::{LOCAL_PROVIDER, Route},
    store::usage::BudgetRow,
    tenancy::TenantId,
};

/// Tenants remembered at most; past that the cache starts over.
const MAX_TENANTS: usize = 10_000;
/// Profiles or routes remembered per tenant at most; past that the tenant's start over
/// (a `provider/model` reference may name any model of a provider that lists none).
const MAX_PER_TENANT: usize = 256;

/// What one tenant's calls read, at one version of its settings.
struct Remembered {
    version: u64,
    since: Instant,
    /// Every budget of the tenant, once read.
    budgets: Option<Vec<BudgetRow>>,
    /// Profiles by [`profile_key`].
    profiles: HashMap<String, Profile>,
    /// Routes by model reference.
    routes: HashMap<String, Route>,
}

/// Budgets, profiles and routes by tenant.
pub struct SettingsCache {
    ttl: Duration,
    changes: Arc<SettingsChanges>,
    tenants: Mutex<HashMap<TenantId, Remembered>>,
}

/// The key of a profile looked up by `id`, `fallback` saying whether the default one
/// serves in place of a missing one.
pub(in crate::chat) fn profile_key(id: &str, fallback: bool) -> String {
    format!("{}:{id}", if fallback { "serving" } else { "named" })
}

impl SettingsCache {
    /// Remembers for `ttl` at most (zero: nothing), as long as `changes` announces nothing.
    pub fn new(ttl: Duration, changes: Arc<SettingsChanges>) -> Self {
        Self {
            ttl,
            changes,
            tenants: Mutex::new(HashMap::new()),
        }
    }

    /// The version of `tenant`'s settings to read at: take it before reading from
    /// Postgres, and give it back when keeping what was read.
    pub fn version(&self, tenant: TenantId) -> u64 {
        self.changes.version(tenant)
    }

    /// Every budget of `tenant`, if remembered at `version`.
    pub fn budgets(&self, tenant: TenantId, version: u64) -> Option<Vec<BudgetRow>> {
        self.read(tenant, version, |r| r.budgets.clone())
    }

    /// Profile `key` ([`profile_key`]) of `tenant`, if remembered at `version`.
    pub fn profile(&self, tenant: TenantId, version: u64, key: &str) -> Option<Profile> {
        self.read(tenant, version, |r| r.profiles.get(key).cloned())
    }

    /// The route of `reference` for `tenant`, if remembered at `version`.
    pub fn route(&self, tenant: TenantId, version: u64, reference: &str) -> Option<Route> {
        self.read(tenant, version, |r| r.routes.get(reference).cloned())
    }

    /// Remembers every budget of `tenant`, read at `version`.
    pub fn keep_budgets(&self, tenant: TenantId, version: u64, budgets: Vec<BudgetRow>) {
        self.keep(tenant, version, |r| r.budgets = Some(budgets));
    }

    /// Remembers profile `key` of `tenant`, read at `version`.
    pub fn keep_profile(&self, tenant: TenantId, version: u64, key: String, profile: Profile) {
        self.keep(tenant, version, |r| {
            if r.profiles.len() >= MAX_PER_TENANT {
                r.profiles.clear();
            }
            r.profiles.insert(key, profile);
        });
    }

    /// Remembers the route of `reference` for `tenant`, read at `version`, unless one of
    /// its targets is the server's own.
    pub fn keep_route(&self, tenant: TenantId, version: u64, reference: &str, route: &Route) {
        if route.targets.iter().any(|t| t.provider == LOCAL_PROVIDER) {
            return;
        }
        self.keep(tenant, version, |r| {
            if r.routes.len() >= MAX_PER_TENANT {
                r.routes.clear();
            }
            r.routes.insert(reference.to_owned(), route.clone());
        });
    }

    fn read<T>(
        &self,
        tenant: TenantId,
        version: u64,
        part: impl FnOnce(&Remembered) -> Option<T>,
    ) -> Option<T> {
        let tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        tenants
            .get(&tenant)
            .filter(|r| r.version == version && r.since.elapsed() < self.ttl)
            .and_then(part)
    }

    /// Adds to what is remembered of `tenant`, unless its settings changed since `version`
    /// (then what was read may already be out of date).
    fn keep(&self, tenant: TenantId, version: u64, add: impl FnOnce(&mut Remembered)) {
        if self.ttl.is_zero() {
            return;
        }
        let mut tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        // What was read at an older version is out of date already, and must not take the
        // place of what was read since.
        if self.changes.version(tenant) != version {
            return;
        }
        let current = tenants
            .get(&tenant)
            .is_some_and(|r| r.version == version && r.since.elapsed() < self.ttl);
        if !current {
            if tenants.len() >= MAX_TENANTS {
                tenants.clear();
            }
            tenants.insert(
                tenant,
                Remembered {
                    version,
                    since: Instant::now(),
                    budgets: None,
                    profiles: HashMap::new(),
                    routes: HashMap::new(),
                },
            );
        }
        if let Some(remembered) = tenants.get_mut(&tenant) {
            add(remembered);
        }
    }
}
