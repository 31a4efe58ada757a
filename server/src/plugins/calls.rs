//! Calls of a plugin's tools, by a user (`InvokePlugin`) or by the model in a chat turn.
//!
//! A gRPC plugin also gets the conversation's working memory and the turn's recalled
//! memories when granted `read_working_memory` and `read_memory`, and may write the
//! working memory when granted `write_working_memory`. Everything sent passes the PHI
//! policy as one value (see [`super::phi`]); then the plugin's circuit breaker and its
//! timeout (never past the turn's time budget). Each call is recorded as one `plugin.invoke`
//! event in the tenant's audit chain: the plugin, the tool, who asked, the outcome, the
//! latency, whether PHI was found, and the SHA-256 of the arguments and of the result,
//! never their content.

use std::time::{Duration, Instant};

use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{
    Capability, PluginError, Plugins,
    connections::Connection,
    invalid,
    payload::{CallContext, Payload, granted},
    phi,
    registry::usable,
    transport::{ToolCall, ToolOutput, TransportError},
};
use crate::{
    audit::{self, NewEvent, Outcome},
    auth::permissions::PLUGIN_INVOKE,
    caller::Principal,
    privacy::{self, PhiPolicy, PhiRefused},
    store::plugins::PluginRow,
};

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
    /// Its arguments, checked against the tool's schema.
    pub(super) arguments: serde_json::Value,
    /// The PHI policy they are sent under.
    pub(super) policy: PhiPolicy,
    /// When the call must be over, whatever the plugin's timeout (a turn's time budget).
    pub(super) deadline: Option<Instant>,
    /// What else it may carry.
    pub(super) context: &'a CallContext,
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
    /// It did not answer within this many milliseconds.
    TimedOut(u64),
    /// It was not called: its circuit is open, or the arguments were not acceptable.
    Refused(String),
    /// It was not called: the PHI policy keeps the arguments from it.
    Withheld(PhiRefused),
}

impl CallOutcome {
    /// Its name in audit events and for the client.
    pub(super) fn as_str(&self) -> &'static str {
        match self {
            Self::Answered(output) if output.is_error => "tool_error",
            Self::Answered(_) => "ok",
            Self::Unreachable(_) => "unreachable",
            Self::TimedOut(_) => "timeout",
            Self::Refused(_) | Self::Withheld(_) => "refused",
        }
    }
}

/// A call's outcome and how long it took.
pub(super) struct Called {
    /// How it went.
    pub(super) outcome: CallOutcome,
    /// How long.
    pub(super) latency: Duration,
}

/// How a call in a turn ended that did not run to its end.
pub(super) enum Unfinished {
    /// Refused before the plugin was asked: its arguments did not read or match the
    /// schema.
    Refused,
    /// Dropped while running: the client left or the generation was cancelled.
    Dropped,
}

/// What a call's audit event says of it.
struct Record<'a> {
    tool: &'a str,
    via: Via,
    phi: bool,
    arguments_sha256: String,
}

impl Plugins {
    /// Calls `tool` of plugin `id` with `arguments` (checked against the tool's schema)
    /// for the caller, under the tenant's PHI policy; recorded as `plugin.invoke`. A
    /// tool's own error is an `Ok` with `is_error`.
    ///
    /// The caller needs `plugin:invoke` on every plugin or on this one.
    ///
    /// # Errors
    /// [`PluginError::Denied`], [`PluginError::Disabled`], [`PluginError::Invalid`]
    /// (`tool`, `arguments`), [`PluginError::PhiRefused`], [`PluginError::Unreachable`],
    /// [`PluginError::TimedOut`].
    pub async fn invoke(
        &self,
        principal: &Principal,
        id: Uuid,
        tool: &str,
        arguments: serde_json::Value,
        conversation: Option<Uuid>,
    ) -> Result<Invocation, PluginError> {
        let everywhere = self.rbac.allows(principal, PLUGIN_INVOKE).await;
        let denied = |name: String| PluginError::Denied {
            permission: PLUGIN_INVOKE,
            name,
        };
        let (row, connection) = match self.connection(principal.tenant, id).await {
            // Which plugins exist is not told to a caller who may call none of them.
            Err(PluginError::NotFound(_)) if !everywhere => return Err(denied(id.to_string())),
            found => found?,
        };
        if !everywhere
            && !self
                .rbac
                .allows_on_plugin(principal, PLUGIN_INVOKE, &row.name)
                .await
        {
            return Err(denied(row.name));
        }
        let manifest = usable(&row)?;
        let described = manifest.tool(tool).ok_or_else(|| {
            let tools: Vec<_> = manifest.tools.iter().map(|t| t.name.as_str()).collect();
            invalid(
                "tool",
                format!(
                    "plugin {:?} has no tool {tool:?}; it has: {}",
                    row.name,
                    tools.join(", ")
                ),
            )
        })?;
        check_arguments(&described.parameters, &arguments)
            .map_err(|reason| invalid("arguments", reason))?;
        let policy = {
            let mut tx = self.db.begin_tenant(principal.tenant).await?;
            let policy = privacy::tenant_policy(&mut tx).await?;
            tx.commit().await?;
            policy
        };
        let context = CallContext {
            conversation,
            recalled: Vec::new(),
        };
        let call = Call {
            tool,
            arguments,
            policy,
            deadline: None,
            context: &context,
            via: Via::Api,
        };
        let called = self.call(principal, &row, &connection, call).await?;
        let name = row.name;
        match called.outcome {
            CallOutcome::Answered(output) => Ok(Invocation {
                output,
                latency: called.latency,
            }),
            CallOutcome::Unreachable(reason) | CallOutcome::Refused(reason) => {
                Err(PluginError::Unreachable { name, reason })
            }
            CallOutcome::TimedOut(_) => Err(PluginError::TimedOut {
                name,
                timeout_ms: row.timeout_ms,
            }),
            CallOutcome::Withheld(refused) => Err(withheld(name, &refused)),
        }
    }

    /// Calls a tool of a plugin whose row (read for this call) and connection the caller
    /// holds: the arguments as the PHI policy lets this plugin have them, past its circuit
    /// breaker, within its timeout and the call's deadline; placeholders put back in the
    /// answer. Recorded as `plugin.invoke`.
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
        let started = Instant::now();
        let arguments_sha256 = digest(&call.arguments);
        let granted = granted(row);
        let outgoing = self
            .payload(principal, &granted, call.context, call.arguments)
            .await;
        // One value through the guard: placeholders are numbered across all of it.
        let guarded = phi::outgoing(&self.guard, call.policy, row, &outgoing.to_value());
        let phi = guarded.as_ref().map_or(true, |sent| !sent.kinds.is_empty());
        let outcome = match guarded {
            Err(refused) => CallOutcome::Withheld(refused),
            Ok(guarded) => {
                let sent = Payload::from_value(guarded.value);
                let timeout = timeout_of(row, call.deadline);
                let outcome = self
                    .send(principal, row, connection, call.tool, sent, timeout)
                    .await;
                match outcome {
                    CallOutcome::Answered(output) => {
                        let output = ToolOutput {
                            result: guarded.redactions.restore_json(&output.result),
                            working_memory: output
                                .working_memory
                                .map(|state| guarded.redactions.restore_json(&state)),
                            ..output
                        };
                        let conversation = call
                            .context
                            .conversation
                            .filter(|_| granted.contains(&Capability::WriteWorkingMemory));
                        CallOutcome::Answered(
                            self.keep_working_memory(principal, conversation, output)
                                .await,
                        )
                    }
                    outcome => outcome,
                }
            }
        };
        let latency = started.elapsed();
        let record = Record {
            tool: call.tool,
            via: call.via,
            phi,
            arguments_sha256,
        };
        let result = match &outcome {
            CallOutcome::Answered(output) => Some(&output.result),
            _ => None,
        };
        self.record(principal, row, record, (outcome.as_str(), result), latency)
            .await?;
        Ok(Called { outcome, latency })
    }

    /// Sends one call to the plugin, past its circuit breaker, within `timeout`.
    async fn send(
        &self,
        principal: &Principal,
        row: &PluginRow,
        connection: &Connection,
        tool: &str,
        sent: Payload,
        timeout: Duration,
    ) -> CallOutcome {
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        if timeout.is_zero() {
            return CallOutcome::TimedOut(timeout_ms);
        }
        let breaker = self.breakers.of(principal.tenant);
        let breaker_key = format!("plugin:{}", row.id);
        let Some(failing) = breaker.allows(&breaker_key).await else {
            return CallOutcome::Refused(format!(
                "plugin {:?} failed repeatedly and is skipped for a while",
                row.name
            ));
        };
        let request = ToolCall {
            tool: tool.to_owned(),
            arguments: sent.arguments,
            working_memory: sent.working_memory,
            recalled_memories: sent.recalled_memories,
            tenant: connection.secrets.opaque_id("tenant", principal.tenant.0),
            user: connection.secrets.opaque_id("user", principal.user),
            request_id: principal.origin.request_id.clone(),
            timeout,
        };
        let answer = tokio::time::timeout(timeout, connection.transport.invoke(request)).await;
        let (outcome, trouble) = match answer {
            Ok(Ok(output)) => (CallOutcome::Answered(output), None),
            Ok(Err(TransportError::Deadline(_))) | Err(_) => {
                (CallOutcome::TimedOut(timeout_ms), Some(true))
            }
            Ok(Err(err)) => (CallOutcome::Unreachable(err.to_string()), Some(true)),
        };
        breaker.note(&breaker_key, failing, trouble).await;
        outcome
    }

    /// Records a call of `row`'s tool in a turn that did not run to its end: refused
    /// before the plugin was asked (its arguments did not read or match the schema), or
    /// dropped unfinished. `phi` says whether its arguments held PHI.
    ///
    /// # Errors
    /// [`PluginError::Store`] when the audit event cannot be written.
    pub(super) async fn record_unfinished(
        &self,
        principal: &Principal,
        row: &PluginRow,
        tool: &str,
        phi: bool,
        how: Unfinished,
    ) -> Result<(), PluginError> {
        let record = Record {
            tool,
            via: Via::Chat,
            phi,
            arguments_sha256: digest(&serde_json::Value::Null),
        };
        let outcome = match how {
            Unfinished::Refused => "refused",
            Unfinished::Dropped => "cancelled",
        };
        self.record(principal, row, record, (outcome, None), Duration::ZERO)
            .await
    }

    /// Appends a call's `plugin.invoke` event to the tenant's chain: the plugin, the tool,
    /// the outcome (with the result, when the plugin answered), the latency and hashes,
    /// never content (nor a refusal's reason, which may quote arguments).
    async fn record(
        &self,
        principal: &Principal,
        row: &PluginRow,
        record: Record<'_>,
        (outcome, result): (&str, Option<&serde_json::Value>),
        latency: Duration,
    ) -> Result<(), PluginError> {
        let mut details = json!({
            "name": row.name,
            "tool": record.tool,
            "via": record.via.as_str(),
            "outcome": outcome,
            "latency_ms": u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
            "arguments_sha256": record.arguments_sha256,
        });
        if let Some(result) = result {
            details["result_sha256"] = json!(digest(result));
        }
        let mut event = NewEvent::by(principal, "plugin.invoke", "plugin", row.id, details)
            .with_phi(record.phi);
        if result.is_none() {
            event = event.with_outcome(Outcome::Failure, tonic::Code::Unavailable);
        }
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        audit::append(&mut tx, principal.tenant, &event).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The error of a call whose arguments the PHI policy kept from plugin `name`.
pub(super) fn withheld(name: String, refused: &PhiRefused) -> PluginError {
    PluginError::PhiRefused {
        name,
        kinds: refused.kinds.iter().map(|kind| kind.as_str()).collect(),
    }
}

/// How long a call of `row`'s plugin may take: its timeout, or less to end by `deadline`.
fn timeout_of(row: &PluginRow, deadline: Option<Instant>) -> Duration {
    let own = Duration::from_millis(u64::try_from(row.timeout_ms).unwrap_or(1));
    deadline.map_or(own, |deadline| {
        own.min(deadline.saturating_duration_since(Instant::now()))
    })
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

/// Hex SHA-256 of a JSON value as written.
fn digest(value: &serde_json::Value) -> String {
    hex::encode(Sha256::digest(
        serde_json::to_vec(value).unwrap_or_default(),
    ))
}
