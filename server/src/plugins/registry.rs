//! A tenant's plugins: registration (the manifest read and pinned), settings, approval of
//! a changed manifest, refresh, and calls to a tool.
//!
//! Every change is recorded in the tenant's audit chain (`plugin.register`, `.update`,
//! `.unregister`, `.approve`, `.manifest_changed`), and so is every call to a tool
//! (`plugin.invoke`): the plugin, the tool, the outcome, the latency and the SHA-256 of
//! the arguments and of the result, never their content.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    Capability, Manifest, PluginError, PluginInfo, Registration, SettingsChange, invalid,
    manifest::ManifestError,
    secrets::Secrets,
    transport::{
        self, Means, Target, ToolCall, ToolOutput, Transport, TransportError, TransportKind,
    },
};
use crate::{
    audit::{self, NewEvent, Outcome},
    auth::rbac::Rbac,
    caller::Principal,
    config::PluginsConfig,
    crypto::Sealer,
    llm::Breakers,
    store::{self, Database, StoreError, plugins::PluginRow},
    tenancy::{TenantId, is_identifier},
};

/// Per-call timeout when a registration names none.
const DEFAULT_TIMEOUT_MS: i32 = 10_000;
/// Longest per-call timeout.
const MAX_TIMEOUT_MS: i32 = 60_000;
/// Longest plugin name (its tools reach models as `<name>__<tool>`, at most 64 long).
const MAX_NAME: usize = 32;
/// Connections kept open per replica; past that the cache starts over.
const MAX_CONNECTIONS: usize = 4096;
/// Longest credential accepted.
const MAX_CREDENTIAL: usize = 4096;

/// What one call to a tool gave.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The tool's answer (or its error).
    pub output: ToolOutput,
    /// How long the plugin took.
    pub latency: Duration,
}

/// Who asks a plugin for a tool: a user directly (`InvokePlugin`) or the model in a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Via {
    /// `PluginService.InvokePlugin`.
    Api,
    /// The model, during a chat turn.
    Chat,
}

impl Via {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Chat => "chat",
        }
    }
}

/// One call of a tool.
pub(super) struct Call<'a> {
    /// The tool, within the plugin.
    pub(super) tool: &'a str,
    /// Its arguments (checked).
    pub(super) arguments: serde_json::Value,
    /// Whether PHI is in the arguments (for the audit event).
    pub(super) phi: bool,
    /// Who asks.
    pub(super) via: Via,
}

/// How a call went.
#[derive(Debug, Clone)]
pub(super) enum CallOutcome {
    /// The plugin answered (perhaps with the tool's error).
    Answered(ToolOutput),
    /// The plugin could not be reached.
    Unreachable(String),
    /// It did not answer in its time.
    TimedOut,
    /// It was not called (its circuit is open, or the PHI policy keeps the arguments
    /// from it).
    Refused(String),
}

impl CallOutcome {
    /// Its name in audit events.
    pub(super) fn as_str(&self) -> &'static str {
        match self {
            Self::Answered(output) if output.is_error => "tool_error",
            Self::Answered(_) => "ok",
            Self::Unreachable(_) => "unreachable",
            Self::TimedOut => "timeout",
            Self::Refused(_) => "refused",
        }
    }
}

/// What a call's audit event says of it.
struct Record<'a> {
    tool: &'a str,
    via: Via,
    phi: bool,
    arguments_sha256: String,
}

/// A call's outcome and how long it took.
pub(super) struct Called {
    /// How it went.
    pub(super) outcome: CallOutcome,
    /// How long.
    pub(super) latency: Duration,
}

/// An open connection to one plugin, with its secrets, valid while its sealed secrets
/// are the ones it was opened from.
pub(super) struct Connection {
    sealed: Vec<u8>,
    secrets: Secrets,
    transport: Arc<dyn Transport>,
}

/// Open connections by tenant and plugin.
type Connections = HashMap<(TenantId, Uuid), Arc<Connection>>;

/// The tenants' plugins; cheap to clone.
#[derive(Clone)]
pub struct Plugins {
    db: Database,
    sealer: Sealer,
    means: Means,
    pub(super) rbac: Arc<Rbac>,
    breakers: Breakers,
    pub(super) limits: PluginsConfig,
    connections: Arc<Mutex<Connections>>,
}

impl Plugins {
    /// Plugins kept in `db`, their secrets sealed with `sealer`, reached through `means`
    /// (the network only as its egress policy allows), past `breakers`; `rbac` decides who
    /// may have the assistant use them, and `limits` bound what a chat turn offers and
    /// spends.
    pub fn new(
        db: Database,
        sealer: Sealer,
        means: Means,
        rbac: Arc<Rbac>,
        breakers: Breakers,
        limits: PluginsConfig,
    ) -> Self {
        Self {
            db,
            sealer,
            means,
            rbac,
            breakers,
            limits,
            connections: Arc::default(),
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
        let granted = check_grants(&registration.granted, &manifest, "granted_capabilities")?;
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
            row.granted = check_grants(granted, &manifest, "granted_capabilities")?
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
        self.forget(principal.tenant, id);
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

    /// Reads the plugin's manifest now. A manifest other than the pinned one is kept as
    /// pending and disables the plugin, recorded as `plugin.manifest_changed` with both
    /// hashes. Returns the plugin and whether its manifest changed.
    ///
    /// # Errors
    /// [`PluginError::Unreachable`] or [`PluginError::TimedOut`] when the plugin does not
    /// answer; [`PluginError::Invalid`] when its new manifest cannot be pinned.
    pub async fn refresh(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<(PluginInfo, bool), PluginError> {
        self.refresh_as(principal.tenant, id, Some(principal)).await
    }

    /// Refreshes up to `batch` plugins of any tenant whose manifest was last read more
    /// than `every` ago; returns how many were read (those that did not answer are tried
    /// again at the next pass).
    ///
    /// # Errors
    /// [`PluginError::Store`] when Postgres fails.
    pub async fn refresh_due(&self, every: Duration, batch: i32) -> Result<usize, PluginError> {
        let before = OffsetDateTime::now_utc() - every;
        let due = store::plugins::due_for_refresh(&self.db, before, batch).await?;
        let mut read = 0;
        for (tenant, id) in due {
            match self.refresh_as(tenant, id, None).await {
                Ok(_) => read += 1,
                Err(err) => {
                    tracing::warn!(%tenant, plugin = %id, error = %err, "plugin manifest refresh failed")
                }
            }
        }
        Ok(read)
    }

    async fn refresh_as(
        &self,
        tenant: TenantId,
        id: Uuid,
        principal: Option<&Principal>,
    ) -> Result<(PluginInfo, bool), PluginError> {
        let (row, connection) = self.connect(tenant, id, true).await?;
        let raw = describe(connection.transport.as_ref(), &row.name, row.timeout_ms).await?;
        let manifest = Manifest::pin(raw, &row.name).map_err(from_manifest)?;
        let hash = manifest.sha256();
        let changed = hash.as_slice() != row.manifest_sha256.as_slice();
        let already_pending = row.pending_manifest_sha256.as_deref() == Some(hash.as_slice());
        let mut tx = self.db.begin_tenant(tenant).await?;
        let value = serde_json::to_value(&manifest).unwrap_or_default();
        let pending = changed.then_some((&value, hash.as_slice()));
        let saved = store::plugins::record_refresh(&mut tx, id, pending).await?;
        if changed && !already_pending {
            let details = json!({
                "name": saved.name,
                "previous_manifest_sha256": hex::encode(&row.manifest_sha256),
                "manifest_sha256": hex::encode(hash),
            });
            let event = match principal {
                Some(principal) => {
                    NewEvent::by(principal, "plugin.manifest_changed", "plugin", id, details)
                }
                None => NewEvent::by_system(
                    "plugin-refresh",
                    "plugin.manifest_changed",
                    "plugin",
                    id,
                    details,
                ),
            };
            audit::append(&mut tx, tenant, &event).await?;
        }
        tx.commit().await?;
        Ok((info_of(saved)?, changed))
    }

    /// Calls `tool` of plugin `id` with `arguments` (checked against the tool's schema)
    /// for the caller; recorded as `plugin.invoke`. A tool's own error is an `Ok` with
    /// `is_error`.
    ///
    /// # Errors
    /// [`PluginError::Disabled`], [`PluginError::Invalid`] (`tool`, `arguments`),
    /// [`PluginError::Unreachable`], [`PluginError::TimedOut`].
    pub async fn invoke(
        &self,
        principal: &Principal,
        id: Uuid,
        tool: &str,
        arguments: serde_json::Value,
    ) -> Result<Invocation, PluginError> {
        let (row, connection) = self.connection(principal.tenant, id).await?;
        let manifest = usable(&row)?;
        let described = manifest.tool(tool).ok_or_else(|| {
            invalid(
                "tool",
                format!(
                    "plugin {:?} has no tool {tool:?}; it has: {}",
                    row.name,
                    manifest
                        .tools
                        .iter()
                        .map(|t| t.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        check_arguments(&described.parameters, &arguments)
            .map_err(|reason| invalid("arguments", reason))?;
        let call = Call {
            tool,
            arguments,
            phi: false,
            via: Via::Api,
        };
        let called = self.call(principal, &row, &connection, call).await?;
        match called.outcome {
            CallOutcome::Unreachable(reason) => Err(PluginError::Unreachable {
                name: row.name,
                reason,
            }),
            CallOutcome::TimedOut => Err(PluginError::TimedOut {
                name: row.name,
                timeout_ms: row.timeout_ms,
            }),
            CallOutcome::Answered(output) => Ok(Invocation {
                output,
                latency: called.latency,
            }),
            CallOutcome::Refused(reason) => Err(PluginError::Unreachable {
                name: row.name,
                reason,
            }),
        }
    }

    /// Calls a tool of a plugin whose row and connection the caller holds, past the
    /// plugin's circuit breaker and within its timeout, and records the call as
    /// `plugin.invoke` (hashes of arguments and result, never their content).
    ///
    /// # Errors
    /// [`PluginError::Store`] when the audit event cannot be written.
    pub(super) async fn call(
        &self,
        principal: &Principal,
        row: &PluginRow,
        connection: &Connection,
        call: Call<'_>,
    ) -> Result<Called, PluginError> {
        let arguments_sha256 = digest(&call.arguments);
        let breaker = self.breakers.of(principal.tenant);
        let breaker_key = format!("plugin:{}", row.id);
        let started = Instant::now();
        let outcome = match breaker.allows(&breaker_key).await {
            None => CallOutcome::Refused(format!(
                "plugin {:?} failed repeatedly and is skipped for a while",
                row.name
            )),
            Some(failing) => {
                let request = ToolCall {
                    tool: call.tool.to_owned(),
                    arguments: call.arguments,
                    tenant: connection.secrets.opaque_id("tenant", principal.tenant.0),
                    user: connection.secrets.opaque_id("user", principal.user),
                    request_id: principal.origin.request_id.clone(),
                    timeout: Duration::from_millis(u64::try_from(row.timeout_ms).unwrap_or(1)),
                };
                let answer = tokio::time::timeout(
                    Duration::from_millis(u64::try_from(row.timeout_ms).unwrap_or(1)),
                    connection.transport.invoke(request),
                )
                .await;
                let (outcome, trouble) = match answer {
                    Ok(Ok(output)) => (CallOutcome::Answered(output), None),
                    Ok(Err(TransportError::Deadline(_))) | Err(_) => {
                        (CallOutcome::TimedOut, Some(true))
                    }
                    Ok(Err(err)) => (CallOutcome::Unreachable(err.to_string()), Some(true)),
                };
                breaker.note(&breaker_key, failing, trouble).await;
                outcome
            }
        };
        let latency = started.elapsed();
        let record = Record {
            tool: call.tool,
            via: call.via,
            phi: call.phi,
            arguments_sha256,
        };
        self.record(principal, row, record, &outcome, latency)
            .await?;
        Ok(Called { outcome, latency })
    }

    /// Records a call of `row`'s tool that was refused before the plugin was asked.
    ///
    /// # Errors
    /// [`PluginError::Store`] when the audit event cannot be written.
    pub(super) async fn record_refusal(
        &self,
        principal: &Principal,
        row: &PluginRow,
        call: Call<'_>,
        reason: &str,
    ) -> Result<(), PluginError> {
        let record = Record {
            tool: call.tool,
            via: call.via,
            phi: call.phi,
            arguments_sha256: digest(&call.arguments),
        };
        let outcome = CallOutcome::Refused(reason.to_owned());
        self.record(principal, row, record, &outcome, Duration::ZERO)
            .await
    }

    /// Appends a call's `plugin.invoke` event to the tenant's chain: the plugin, the tool,
    /// the outcome, the latency and hashes, never content (nor a refusal's reason, which
    /// may quote arguments).
    async fn record(
        &self,
        principal: &Principal,
        row: &PluginRow,
        record: Record<'_>,
        outcome: &CallOutcome,
        latency: Duration,
    ) -> Result<(), PluginError> {
        let mut details = json!({
            "name": row.name,
            "tool": record.tool,
            "via": record.via.as_str(),
            "outcome": outcome.as_str(),
            "latency_ms": u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
            "arguments_sha256": record.arguments_sha256,
        });
        if let CallOutcome::Answered(output) = outcome {
            details["result_sha256"] = json!(digest(&output.result));
        }
        let mut event = NewEvent::by(principal, "plugin.invoke", "plugin", row.id, details)
            .with_phi(record.phi);
        if !matches!(outcome, CallOutcome::Answered(_)) {
            event = event.with_outcome(Outcome::Failure, tonic::Code::Unavailable);
        }
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        audit::append(&mut tx, principal.tenant, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Where plugins are kept.
    pub(super) fn db(&self) -> &Database {
        &self.db
    }

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
    async fn connect(
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
        let mut connections = self.lock();
        if connections.len() >= MAX_CONNECTIONS {
            connections.clear();
        }
        connections.insert((tenant, id), connection.clone());
        Ok((row, connection))
    }

    fn forget(&self, tenant: TenantId, id: Uuid) {
        self.lock().remove(&(tenant, id));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connections> {
        self.connections.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The plugin's manifest, read within its timeout.
async fn describe(
    transport: &dyn Transport,
    name: &str,
    timeout_ms: i32,
) -> Result<super::manifest::RawManifest, PluginError> {
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

fn unreachable(name: &str, err: &TransportError) -> PluginError {
    PluginError::Unreachable {
        name: name.to_owned(),
        reason: err.to_string(),
    }
}

fn from_manifest(err: ManifestError) -> PluginError {
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

/// `granted`, each of which the manifest must request.
fn check_grants(
    granted: &[Capability],
    manifest: &Manifest,
    field: &str,
) -> Result<Vec<Capability>, PluginError> {
    let mut checked = Vec::with_capacity(granted.len());
    for capability in granted {
        if !manifest.requested.contains(capability) {
            return Err(invalid(
                field,
                format!(
                    "{} is not requested by the plugin's manifest",
                    capability.as_str()
                ),
            ));
        }
        checked.push(*capability);
    }
    checked.sort();
    checked.dedup();
    Ok(checked)
}

/// Whether `arguments` satisfy `schema`; if not, the first problem.
pub(super) fn check_arguments(
    schema: &serde_json::Value,
    arguments: &serde_json::Value,
) -> Result<(), String> {
    if !arguments.is_object() {
        return Err("must be a JSON object".into());
    }
    let validator = jsonschema::validator_for(schema)
        .map_err(|err| format!("the tool's schema does not compile: {err}"))?;
    if let Some(error) = validator.iter_errors(arguments).next() {
        let path = error.instance_path().to_string();
        let at = if path.is_empty() {
            String::new()
        } else {
            format!(" at {path}")
        };
        return Err(format!("do not match the tool's schema{at}: {error}"));
    }
    Ok(())
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

/// Hex SHA-256 of a JSON value as written.
fn digest(value: &serde_json::Value) -> String {
    hex::encode(Sha256::digest(
        serde_json::to_vec(value).unwrap_or_default(),
    ))
}

pub(super) fn manifest_of(value: &Json<serde_json::Value>) -> Result<Manifest, PluginError> {
    serde_json::from_value(value.0.clone()).map_err(|_| {
        PluginError::Store(StoreError::Inconsistent(
            "a stored plugin manifest does not read",
        ))
    })
}

fn info_of(row: PluginRow) -> Result<PluginInfo, PluginError> {
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
