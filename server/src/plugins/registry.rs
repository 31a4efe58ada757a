//! A tenant's plugins: registration (the manifest read and pinned), settings, approval of
//! a changed manifest and removal, each recorded in the tenant's audit chain
//! (`plugin.register`, `.update`, `.approve`, `.unregister`).

use std::{sync::Arc, time::Duration};

use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    Capability, Manifest, PluginError, PluginInfo, Registration, SettingsChange,
    connections::Connections,
    invalid,
    manifest::{ManifestError, RawManifest},
    secrets::Secrets,
    transport::{self, Means, Target, Transport, TransportError, TransportKind},
};
use crate::{
    audit::{self, NewEvent},
    auth::rbac::Rbac,
    caller::Principal,
    config::PluginsConfig,
    crypto::Sealer,
    llm::Breakers,
    memory::WorkingMemory,
    privacy::PhiGuard,
    store::{self, Database, StoreError, plugins::PluginRow},
    tenancy::is_identifier,
};

/// Per-call timeout when a registration names none.
const DEFAULT_TIMEOUT_MS: i32 = 10_000;
/// Longest per-call timeout.
const MAX_TIMEOUT_MS: i32 = 60_000;
/// Longest plugin name (its tools reach models as `<name>__<tool>`, at most 64 long).
const MAX_NAME: usize = 32;
/// Longest credential accepted.
const MAX_CREDENTIAL: usize = 4096;

/// The tenants' plugins; cheap to clone.
#[derive(Clone)]
pub struct Plugins {
    pub(super) db: Database,
    pub(super) sealer: Sealer,
    pub(super) means: Means,
    pub(super) rbac: Arc<Rbac>,
    pub(super) breakers: Breakers,
    pub(super) guard: PhiGuard,
    pub(super) working: WorkingMemory,
    pub(super) limits: PluginsConfig,
    pub(super) connections: Connections,
}

impl Plugins {
    /// Plugins kept in `db`, their secrets sealed with `sealer`, reached through `means`
    /// (the network only as its egress policy allows), past `breakers`; `rbac` decides who
    /// may have the assistant use them, `working` is the working memory plugins granted it
    /// read and write, and `limits` bound what a chat turn offers and spends.
    pub fn new(
        db: Database,
        sealer: Sealer,
        means: Means,
        rbac: Arc<Rbac>,
        breakers: Breakers,
        working: WorkingMemory,
        limits: PluginsConfig,
    ) -> Self {
        Self {
            db,
            sealer,
            means,
            rbac,
            breakers,
            guard: PhiGuard::default(),
            working,
            limits,
            connections: Connections::default(),
        }
    }

    /// Registers a plugin in the caller's tenant: checks the endpoint against the egress
    /// policy (a WebAssembly plugin: takes its component, uploaded or shipped), reads the
    /// manifest from the plugin, pins it and stores the plugin enabled.
    ///
    /// # Errors
    /// [`PluginError::Invalid`] naming the field (the manifest's fields as
    /// `manifest.…`), [`PluginError::Unreachable`] when the plugin does not answer,
    /// [`PluginError::NameTaken`].
    pub async fn register(
        &self,
        principal: &Principal,
        registration: Registration,
    ) -> Result<PluginInfo, PluginError> {
        let (endpoint, uploaded, component) = self.reach(&registration).await?;
        let timeout_ms = match registration.timeout_ms {
            0 => DEFAULT_TIMEOUT_MS,
            ms => check_timeout(ms)?,
        };
        if registration.credential.len() > MAX_CREDENTIAL {
            return Err(invalid(
                "credential",
                format!("at most {MAX_CREDENTIAL} bytes"),
            ));
        }
        let credential =
            (!registration.credential.is_empty()).then(|| registration.credential.clone());
        let secrets = Secrets::new(credential)?;
        let id = Uuid::now_v7();
        let target = Target {
            kind: registration.transport,
            endpoint: &endpoint,
            credential: secrets.credential.as_deref(),
            audience: &id.to_string(),
            component,
        };
        let transport = transport::connect(target, &self.means)
            .map_err(|err| invalid("endpoint", err.to_string()))?;
        let label = if registration.name.is_empty() {
            "the plugin"
        } else {
            registration.name.as_str()
        };
        let raw = describe(transport.as_ref(), label, timeout_ms).await?;
        let name = if registration.name.is_empty() {
            raw.name.trim().to_lowercase()
        } else {
            registration.name.clone()
        };
        if !is_identifier(&name) || name.len() > MAX_NAME || name.contains("__") {
            let reason = format!(
                "{name:?}: must be lowercase letters, digits, '_' or '-', starting with a letter, \
                 at most {MAX_NAME}, without \"__\""
            );
            return Err(if registration.name.is_empty() {
                invalid("name", format!("the manifest's name {reason}; give one"))
            } else {
                invalid("name", reason)
            });
        }
        let manifest = Manifest::pin(raw, &name).map_err(from_manifest)?;
        let granted = check_grants(&registration.granted, &manifest, registration.transport)?;
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let secrets_sealed = secrets
            .seal(&self.sealer, &mut tx, principal.tenant, id)
            .await?;
        let hash = manifest.sha256();
        let now = OffsetDateTime::now_utc();
        let row = PluginRow {
            id,
            name: name.clone(),
            transport: registration.transport.as_str().to_owned(),
            endpoint,
            on_premises: registration.on_premises,
            secrets_sealed,
            credential_set: secrets.credential.is_some(),
            manifest: Json(serde_json::to_value(&manifest).unwrap_or_default()),
            manifest_sha256: hash.to_vec(),
            pending_manifest: None,
            pending_manifest_sha256: None,
            granted: granted.iter().map(|c| c.as_str().to_owned()).collect(),
            enabled: true,
            timeout_ms,
            created_at: now,
            updated_at: now,
            refreshed_at: now,
        };
        let Some(saved) = store::plugins::insert(&mut tx, &row, uploaded.as_deref()).await? else {
            return Err(PluginError::NameTaken(name));
        };
        let details = json!({
            "name": row.name,
            "transport": row.transport,
            "endpoint": row.endpoint,
            "on_premises": row.on_premises,
            "manifest_sha256": hex::encode(hash),
            "tools": manifest.tools.len(),
            "granted": row.granted,
            "credential_set": row.credential_set,
        });
        let event = NewEvent::by(principal, "plugin.register", "plugin", id, details);
        audit::append(&mut tx, principal.tenant, &event).await?;
        tx.commit().await?;
        info_of(saved)
    }

    /// Where a registration's plugin is: its endpoint as stored, the component to store
    /// (uploaded) and the component to run (uploaded or shipped), for WebAssembly.
    ///
    /// # Errors
    /// [`PluginError::Invalid`] on `endpoint` or `component`.
    async fn reach(
        &self,
        registration: &Registration,
    ) -> Result<(String, Option<Vec<u8>>, Option<Vec<u8>>), PluginError> {
        let endpoint = registration.endpoint.trim();
        if endpoint.len() > 2048 {
            return Err(invalid("endpoint", "at most 2048 characters"));
        }
        let uploaded = !registration.component.is_empty();
        match registration.transport {
            TransportKind::Wasm if uploaded => {
                if !endpoint.is_empty() {
                    return Err(invalid(
                        "endpoint",
                        "leave it empty when uploading a component",
                    ));
                }
                let max = self.limits.wasm_max_component_bytes;
                if registration.component.len() > max {
                    return Err(invalid("component", format!("at most {max} bytes")));
                }
                let hash = hex::encode(Sha256::digest(&registration.component));
                let component = registration.component.clone();
                Ok((
                    format!("{}{hash}", transport::wasm::UPLOADED),
                    Some(component.clone()),
                    Some(component),
                ))
            }
            TransportKind::Wasm => {
                let shipped =
                    transport::wasm::shipped(self.limits.wasm_folder.as_deref(), endpoint)
                        .map_err(|err| invalid("endpoint", err.to_string()))?;
                Ok((endpoint.to_owned(), None, Some(shipped)))
            }
            TransportKind::Grpc | TransportKind::Mcp => {
                if uploaded {
                    return Err(invalid(
                        "component",
                        "only WebAssembly plugins take a component",
                    ));
                }
                if endpoint.is_empty() {
                    return Err(invalid("endpoint", "is required"));
                }
                self.means.egress.check_url(endpoint).await?;
                Ok((endpoint.to_owned(), None, None))
            }
        }
    }

    /// One plugin of the caller's tenant.
    ///
    /// # Errors
    /// [`PluginError::NotFound`].
    pub async fn get(&self, principal: &Principal, id: Uuid) -> Result<PluginInfo, PluginError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let row = store::plugins::get(&mut tx, id).await?;
        tx.commit().await?;
        info_of(row.ok_or_else(|| PluginError::NotFound(id.to_string()))?)
    }

    /// A page of the caller's tenant's plugins by id, after `after`.
    ///
    /// # Errors
    /// [`PluginError::Store`] when Postgres fails.
    pub async fn list(
        &self,
        principal: &Principal,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<PluginInfo>, PluginError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let rows = store::plugins::list(&mut tx, after, i64::from(limit)).await?;
        tx.commit().await?;
        rows.into_iter().map(info_of).collect()
    }

    /// Changes whether a plugin is enabled, what it is granted and its timeout; recorded
    /// as `plugin.update`.
    ///
    /// # Errors
    /// [`PluginError::Invalid`], [`PluginError::NotFound`], or
    /// [`PluginError::Disabled`] when enabling a plugin whose changed manifest awaits
    /// approval.
    pub async fn update(
        &self,
        principal: &Principal,
        id: Uuid,
        change: SettingsChange,
    ) -> Result<PluginInfo, PluginError> {
        let timeout_ms = change.timeout_ms.map(check_timeout).transpose()?;
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let mut row = store::plugins::get_for_update(&mut tx, id)
            .await?
            .ok_or_else(|| PluginError::NotFound(id.to_string()))?;
        let manifest = manifest_of(&row.manifest)?;
        if let Some(granted) = &change.granted {
            let transport = TransportKind::parse(&row.transport).unwrap_or(TransportKind::Grpc);
            row.granted = check_grants(granted, &manifest, transport)?
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect();
        }
        if let Some(enabled) = change.enabled {
            if enabled && row.pending_manifest.is_some() {
                return Err(PluginError::Disabled {
                    name: row.name,
                    pending: true,
                });
            }
            row.enabled = enabled;
        }
        if let Some(timeout_ms) = timeout_ms {
            row.timeout_ms = timeout_ms;
        }
        let saved = store::plugins::update_settings(&mut tx, &row).await?;
        let details = json!({
            "name": saved.name,
            "enabled": saved.enabled,
            "granted": saved.granted,
            "timeout_ms": saved.timeout_ms,
        });
        let event = NewEvent::by(principal, "plugin.update", "plugin", id, details);
        audit::append(&mut tx, principal.tenant, &event).await?;
        tx.commit().await?;
        info_of(saved)
    }

    /// Removes a plugin; recorded as `plugin.unregister`.
    ///
    /// # Errors
    /// [`PluginError::NotFound`].
    pub async fn unregister(&self, principal: &Principal, id: Uuid) -> Result<(), PluginError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let row = store::plugins::get_for_update(&mut tx, id)
            .await?
            .ok_or_else(|| PluginError::NotFound(id.to_string()))?;
        store::plugins::delete(&mut tx, id).await?;
        let details = json!({ "name": row.name });
        let event = NewEvent::by(principal, "plugin.unregister", "plugin", id, details);
        audit::append(&mut tx, principal.tenant, &event).await?;
        tx.commit().await?;
        self.connections.forget(principal.tenant, id);
        Ok(())
    }

    /// Pins the changed manifest whose hash is `sha256_hex` and enables the plugin again;
    /// grants the new manifest no longer requests are dropped. Recorded as
    /// `plugin.approve` with both hashes.
    ///
    /// # Errors
    /// [`PluginError::NotPending`] when no manifest, or another one, awaits approval.
    pub async fn approve(
        &self,
        principal: &Principal,
        id: Uuid,
        sha256_hex: &str,
    ) -> Result<PluginInfo, PluginError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let row = store::plugins::get_for_update(&mut tx, id)
            .await?
            .ok_or_else(|| PluginError::NotFound(id.to_string()))?;
        let (Some(pending), Some(pending_hash)) =
            (&row.pending_manifest, &row.pending_manifest_sha256)
        else {
            return Err(PluginError::NotPending(row.name));
        };
        if !sha256_hex
            .trim()
            .eq_ignore_ascii_case(&hex::encode(pending_hash))
        {
            return Err(invalid(
                "manifest_sha256",
                format!(
                    "the manifest awaiting approval is {}; review it (GetPlugin) and approve that \
                     hash",
                    hex::encode(pending_hash)
                ),
            ));
        }
        let manifest = manifest_of(pending)?;
        let granted: Vec<String> = row
            .granted
            .iter()
            .filter_map(|name| Capability::parse(name))
            .filter(|c| manifest.requested.contains(c))
            .map(|c| c.as_str().to_owned())
            .collect();
        let saved = store::plugins::approve_pending(&mut tx, id, &granted).await?;
        let details = json!({
            "name": saved.name,
            "previous_manifest_sha256": hex::encode(&row.manifest_sha256),
            "manifest_sha256": hex::encode(&saved.manifest_sha256),
            "granted": saved.granted,
        });
        let event = NewEvent::by(principal, "plugin.approve", "plugin", id, details);
        audit::append(&mut tx, principal.tenant, &event).await?;
        tx.commit().await?;
        info_of(saved)
    }
}

/// The plugin's manifest, read within its timeout.
pub(super) async fn describe(
    transport: &dyn Transport,
    name: &str,
    timeout_ms: i32,
) -> Result<RawManifest, PluginError> {
    match tokio::time::timeout(
        Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(1)),
        transport.describe(),
    )
    .await
    {
        Ok(Ok(raw)) => Ok(raw),
        Ok(Err(TransportError::Component(reason))) => Err(invalid("component", reason)),
        Ok(Err(err)) => Err(unreachable(name, &err)),
        Err(_) => Err(PluginError::TimedOut {
            name: name.to_owned(),
            timeout_ms,
        }),
    }
}

pub(super) fn unreachable(name: &str, err: &TransportError) -> PluginError {
    PluginError::Unreachable {
        name: name.to_owned(),
        reason: err.to_string(),
    }
}

pub(super) fn from_manifest(err: ManifestError) -> PluginError {
    invalid(err.field, err.reason)
}

fn check_timeout(ms: i32) -> Result<i32, PluginError> {
    if (1..=MAX_TIMEOUT_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(invalid(
            "timeout_ms",
            format!("must be 1 to {MAX_TIMEOUT_MS}"),
        ))
    }
}

/// `granted`, each of which the manifest must request; memory only for a plugin over
/// `transport` gRPC (the other protocols have no place for it).
fn check_grants(
    granted: &[Capability],
    manifest: &Manifest,
    transport: TransportKind,
) -> Result<Vec<Capability>, PluginError> {
    const FIELD: &str = "granted_capabilities";
    let mut checked = Vec::with_capacity(granted.len());
    for capability in granted {
        if !manifest.requested.contains(capability) {
            return Err(invalid(
                FIELD,
                format!(
                    "{} is not requested by the plugin's manifest",
                    capability.as_str()
                ),
            ));
        }
        if capability.is_memory() && transport != TransportKind::Grpc {
            return Err(invalid(
                FIELD,
                format!(
                    "{} reaches gRPC plugins only; this one speaks {}",
                    capability.as_str(),
                    transport.as_str()
                ),
            ));
        }
        checked.push(*capability);
    }
    checked.sort();
    checked.dedup();
    Ok(checked)
}

/// The plugin's pinned manifest, when it may be called.
///
/// # Errors
/// [`PluginError::Disabled`].
pub(super) fn usable(row: &PluginRow) -> Result<Manifest, PluginError> {
    if !row.enabled {
        return Err(PluginError::Disabled {
            name: row.name.clone(),
            pending: row.pending_manifest.is_some(),
        });
    }
    manifest_of(&row.manifest)
}

pub(super) fn manifest_of(value: &Json<serde_json::Value>) -> Result<Manifest, PluginError> {
    serde_json::from_value(value.0.clone()).map_err(|_| {
        PluginError::Store(StoreError::Inconsistent(
            "a stored plugin manifest does not read",
        ))
    })
}

pub(super) fn info_of(row: PluginRow) -> Result<PluginInfo, PluginError> {
    let hash = |bytes: &[u8]| <[u8; 32]>::try_from(bytes).unwrap_or_default();
    Ok(PluginInfo {
        id: row.id,
        transport: TransportKind::parse(&row.transport).unwrap_or(TransportKind::Grpc),
        manifest: manifest_of(&row.manifest)?,
        manifest_sha256: hash(&row.manifest_sha256),
        pending_sha256: row.pending_manifest_sha256.as_deref().map(hash),
        granted: row
            .granted
            .iter()
            .filter_map(|name| Capability::parse(name))
            .collect(),
        name: row.name,
        endpoint: row.endpoint,
        on_premises: row.on_premises,
        credential_set: row.credential_set,
        enabled: row.enabled,
        timeout_ms: row.timeout_ms,
        created_at: row.created_at,
        updated_at: row.updated_at,
        refreshed_at: row.refreshed_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_granted_to_grpc_plugins_only_and_only_as_requested() {
        let manifest = Manifest {
            name: "m".into(),
            version: String::new(),
            description: String::new(),
            tools: Vec::new(),
            requested: vec![Capability::ReadMemory, Capability::ReceivePhi],
        };
        let granted = [Capability::ReceivePhi, Capability::ReadMemory];
        assert_eq!(
            check_grants(&granted, &manifest, TransportKind::Grpc).unwrap(),
            [Capability::ReadMemory, Capability::ReceivePhi]
        );
        for transport in [TransportKind::Mcp, TransportKind::Wasm] {
            let refused = check_grants(&granted, &manifest, transport).unwrap_err();
            assert!(
                matches!(&refused, PluginError::Invalid { field, reason }
                    if field == "granted_capabilities" && reason.contains("gRPC plugins only")),
                "{refused:?}"
            );
            assert_eq!(
                check_grants(&[Capability::ReceivePhi], &manifest, transport).unwrap(),
                [Capability::ReceivePhi]
            );
        }
        let unrequested = check_grants(
            &[Capability::WriteWorkingMemory],
            &manifest,
            TransportKind::Grpc,
        );
        assert!(unrequested.is_err());
    }
}
