//! The open connections of a replica, one per plugin (see [`super::connect`] for how one
//! is made).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use uuid::Uuid;

use super::{secrets::Secrets, transport::Transport};
use crate::tenancy::TenantId;

/// Connections kept open per replica; past that the cache starts over.
const MAX_CONNECTIONS: usize = 4096;

/// An open connection to one plugin, with its secrets, valid while its sealed secrets
/// are the ones it was opened from.
pub(super) struct Connection {
    /// The sealed secrets it was opened from.
    pub(super) sealed: Vec<u8>,
    /// The plugin's opened secrets.
    pub(super) secrets: Secrets,
    /// How it is reached.
    pub(super) transport: Arc<dyn Transport>,
}

/// Open connections by tenant and plugin.
type ByPlugin = HashMap<(TenantId, Uuid), Arc<Connection>>;

/// Open connections by tenant and plugin; cheap to clone (shared).
#[derive(Clone, Default)]
pub(super) struct Connections(Arc<Mutex<ByPlugin>>);

impl Connections {
    /// The connections, locked.
    pub(super) fn lock(&self) -> MutexGuard<'_, ByPlugin> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `connection` to plugin `id` of `tenant`.
    pub(super) fn keep(&self, tenant: TenantId, id: Uuid, connection: Arc<Connection>) {
        let mut connections = self.lock();
        if connections.len() >= MAX_CONNECTIONS {
            connections.clear();
        }
        connections.insert((tenant, id), connection);
    }

    /// Closes the connection to a plugin that is gone.
    pub(super) fn forget(&self, tenant: TenantId, id: Uuid) {
        self.lock().remove(&(tenant, id));
    }
}
