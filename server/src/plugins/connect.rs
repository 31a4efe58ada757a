//! Opening a connection to a plugin: made (and its secrets opened) at first use on a
//! replica and kept, made again when its secrets change or its manifest is read afresh;
//! a plugin on the network passes the egress policy again each time.

use std::sync::Arc;

use uuid::Uuid;

use super::{
    PluginError, Plugins,
    connections::Connection,
    registry::unreachable,
    secrets::Secrets,
    transport::{self, Target, TransportKind},
};
use crate::{
    store::{self, StoreError, plugins::PluginRow},
    tenancy::TenantId,
};

impl Plugins {
    /// The plugin's row and an open connection to it (made, and its secrets opened, on
    /// first use).
    pub(super) async fn connection(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<(PluginRow, Arc<Connection>), PluginError> {
        self.connect(tenant, id, false).await
    }

    /// Like [`Self::connection`]; `fresh` makes a new connection (which reads a shipped
    /// WebAssembly component from its folder again) even when one is open.
    pub(super) async fn connect(
        &self,
        tenant: TenantId,
        id: Uuid,
        fresh: bool,
    ) -> Result<(PluginRow, Arc<Connection>), PluginError> {
        let mut tx = self.db.begin_tenant(tenant).await?;
        let row = store::plugins::get(&mut tx, id)
            .await?
            .ok_or_else(|| PluginError::NotFound(id.to_string()))?;
        let cached = self
            .connections
            .lock()
            .get(&(tenant, id))
            .filter(|c| !fresh && c.sealed == row.secrets_sealed)
            .cloned();
        if let Some(connection) = cached {
            tx.commit().await?;
            return Ok((row, connection));
        }
        let secrets = Secrets::open(&self.sealer, &mut tx, tenant, id, &row.secrets_sealed).await?;
        let kind = TransportKind::parse(&row.transport).ok_or_else(|| {
            PluginError::Store(StoreError::Inconsistent(
                "a plugin has an unknown transport",
            ))
        })?;
        let component = match kind {
            TransportKind::Wasm => match store::plugins::component(&mut tx, id).await? {
                Some(uploaded) => Some(uploaded),
                None => Some(
                    transport::wasm::shipped(self.limits.wasm_folder.as_deref(), &row.endpoint)
                        .map_err(|err| unreachable(&row.name, &err))?,
                ),
            },
            TransportKind::Grpc | TransportKind::Mcp => None,
        };
        tx.commit().await?;
        if component.is_none() {
            // Checked again for each new connection: the operator's allow-list may have
            // narrowed since the endpoint was saved.
            self.means
                .egress
                .check_url(&row.endpoint)
                .await
                .map_err(|err| PluginError::Unreachable {
                    name: row.name.clone(),
                    reason: err.to_string(),
                })?;
        }
        let target = Target {
            kind,
            endpoint: &row.endpoint,
            credential: secrets.credential.as_deref(),
            audience: &id.to_string(),
            component,
        };
        let transport =
            transport::connect(target, &self.means).map_err(|err| unreachable(&row.name, &err))?;
        let connection = Arc::new(Connection {
            sealed: row.secrets_sealed.clone(),
            secrets,
            transport,
        });
        self.connections.keep(tenant, id, connection.clone());
        Ok((row, connection))
    }
}
