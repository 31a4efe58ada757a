//! The tools one chat turn offers the model: those of the profile's allowed plugins that
//! are enabled, when the caller may use plugins (`plugin:use`), named
//! `<plugin>__<tool>`, at most `plugins.max_tools`.
//!
//! A call the model asks for never fails the turn for the plugin's sake: bad arguments,
//! a tool's error, a plugin that is down, slow or disabled meanwhile all come back as a
//! tool error the model can read. Results longer than `plugins.max_result_bytes` are cut
//! with a marker.

use std::time::Duration;

use uuid::Uuid;

use super::{
    Capability, PluginError, Plugins, TOOL_SEPARATOR,
    registry::{Call, CallOutcome, Via, check_arguments, manifest_of, usable},
};
use crate::{auth::permissions::PLUGIN_USE, caller::Principal, store};

/// A tool offered to the model.
#[derive(Debug, Clone)]
pub struct Offered {
    /// The name the model calls it by: `<plugin>__<tool>`.
    pub function: String,
    /// The plugin's name.
    pub plugin: String,
    plugin_id: Uuid,
    /// The tool's name within the plugin.
    pub tool: String,
    /// The plugin runs inside the tenant's premises.
    pub on_premises: bool,
    /// The plugin was granted `receive_phi`.
    pub receives_phi: bool,
    description: String,
    parameters: serde_json::Value,
}

/// The tools of one turn.
pub struct Toolbox {
    plugins: Plugins,
    principal: Principal,
    offered: Vec<Offered>,
}

/// What a call of a tool came to, for the model and the client.
#[derive(Debug, Clone)]
pub struct ToolReport {
    /// The plugin.
    pub plugin: String,
    /// The tool.
    pub tool: String,
    /// `ok`, `tool_error`, `unreachable`, `timeout` or `refused`.
    pub outcome: &'static str,
    /// What the model reads: the result as JSON, or `{"error": …}`.
    pub content: String,
    /// How long the plugin took.
    pub latency: Duration,
}

impl ToolReport {
    /// Whether the tool answered without error.
    pub fn succeeded(&self) -> bool {
        self.outcome == "ok"
    }
}

impl Plugins {
    /// The tools `principal`'s turn may offer from the plugins named in `allowed` (a
    /// profile's list): empty when the list is, or when the caller may not use plugins.
    ///
    /// # Errors
    /// [`PluginError::Store`] when Postgres fails.
    pub async fn toolbox(
        &self,
        principal: &Principal,
        allowed: &[String],
    ) -> Result<Toolbox, PluginError> {
        let mut offered = Vec::new();
        if !allowed.is_empty() && self.rbac.allows(principal, PLUGIN_USE).await {
            let mut tx = self.db().begin_tenant(principal.tenant).await?;
            let rows = store::plugins::by_names(&mut tx, Some(allowed)).await?;
            tx.commit().await?;
            for row in rows.iter().filter(|row| row.enabled) {
                let manifest = manifest_of(&row.manifest)?;
                let receives_phi = row
                    .granted
                    .iter()
                    .any(|name| Capability::parse(name) == Some(Capability::ReceivePhi));
                offered.extend(manifest.tools.into_iter().map(|tool| Offered {
                    function: format!("{}{TOOL_SEPARATOR}{}", row.name, tool.name),
                    plugin: row.name.clone(),
                    plugin_id: row.id,
                    tool: tool.name,
                    on_premises: row.on_premises,
                    receives_phi,
                    description: tool.description,
                    parameters: tool.parameters,
                }));
            }
            offered.truncate(self.limits.max_tools);
        }
        Ok(Toolbox {
            plugins: self.clone(),
            principal: principal.clone(),
            offered,
        })
    }
}

impl Toolbox {
    /// Whether there is nothing to offer.
    pub fn is_empty(&self) -> bool {
        self.offered.is_empty()
    }

    /// The tools as OpenAI-style function definitions.
    pub fn definitions(&self) -> Vec<serde_json::Value> {
        self.offered
            .iter()
            .map(|tool| {
                serde_json::json!({
                    "type": "function",
                    "function": {
                        "name": tool.function,
                        "description": tool.description,
                        "parameters": tool.parameters,
                    }
                })
            })
            .collect()
    }

    /// The tool the model calls `function`.
    pub fn find(&self, function: &str) -> Option<&Offered> {
        self.offered.iter().find(|tool| tool.function == function)
    }

    /// Rounds of tool calls a turn may take.
    pub fn max_rounds(&self) -> usize {
        self.plugins.limits.max_rounds
    }

    /// Time a turn may spend on tools.
    pub fn turn_budget(&self) -> Duration {
        self.plugins.limits.turn_budget
    }

    /// Calls of one round run at once.
    pub fn max_parallel_calls(&self) -> usize {
        self.plugins.limits.max_parallel_calls
    }

    /// Calls `tool` with `arguments` (`Err` with the reason when they may not be sent:
    /// the call is then refused, and recorded as such); `phi` says whether they hold PHI.
    /// `restore` turns what the plugin answered into what the model reads (placeholders
    /// put back).
    ///
    /// # Errors
    /// [`PluginError::Store`] when the call's audit event cannot be written.
    pub async fn run(
        &self,
        tool: &Offered,
        arguments: Result<serde_json::Value, String>,
        phi: bool,
        restore: impl Fn(&str) -> String,
    ) -> Result<ToolReport, PluginError> {
        let report = |outcome: &'static str, content: String, latency: Duration| ToolReport {
            plugin: tool.plugin.clone(),
            tool: tool.tool.clone(),
            outcome,
            content: self.cut(content),
            latency,
        };
        let error = |message: String| serde_json::json!({ "error": message }).to_string();
        let (row, connection) = match self
            .plugins
            .connection(self.principal.tenant, tool.plugin_id)
            .await
        {
            Ok(found) => found,
            Err(PluginError::NotFound(_)) => {
                let gone = format!("plugin {:?} was removed", tool.plugin);
                return Ok(report("refused", error(gone), Duration::ZERO));
            }
            Err(err @ (PluginError::Store(_) | PluginError::Crypto(_))) => return Err(err),
            Err(err) => {
                return Ok(report(
                    "unreachable",
                    error(err.to_string()),
                    Duration::ZERO,
                ));
            }
        };
        let manifest = match usable(&row) {
            Ok(manifest) => manifest,
            Err(err) => return Ok(report("refused", error(err.to_string()), Duration::ZERO)),
        };
        let checked = arguments.and_then(|arguments| {
            let schema = manifest
                .tool(&tool.tool)
                .map(|t| &t.parameters)
                .ok_or_else(|| format!("plugin {:?} no longer has this tool", tool.plugin))?;
            check_arguments(schema, &arguments).map_err(|reason| format!("arguments {reason}"))?;
            Ok(arguments)
        });
        let arguments = match checked {
            Ok(arguments) => arguments,
            Err(reason) => {
                let call = Call {
                    tool: &tool.tool,
                    arguments: serde_json::Value::Null,
                    phi,
                    via: Via::Chat,
                };
                self.plugins
                    .record_refusal(&self.principal, &row, call, &reason)
                    .await?;
                return Ok(report("refused", error(reason), Duration::ZERO));
            }
        };
        let call = Call {
            tool: &tool.tool,
            arguments,
            phi,
            via: Via::Chat,
        };
        let called = self
            .plugins
            .call(&self.principal, &row, &connection, call)
            .await?;
        let content = match &called.outcome {
            CallOutcome::Answered(output) => restore(&output.result.to_string()),
            CallOutcome::Unreachable(reason) | CallOutcome::Refused(reason) => {
                error(reason.clone())
            }
            CallOutcome::TimedOut => error(format!(
                "plugin {:?} did not answer within {} ms",
                tool.plugin, row.timeout_ms
            )),
        };
        Ok(report(called.outcome.as_str(), content, called.latency))
    }

    /// `content`, cut to `plugins.max_result_bytes` with a marker saying so.
    fn cut(&self, content: String) -> String {
        let max = self.plugins.limits.max_result_bytes;
        if content.len() <= max {
            return content;
        }
        let mut end = max;
        while !content.is_char_boundary(end) {
            end -= 1;
        }
        format!(
            "{}… [cut: {} of {} bytes shown]",
            &content[..end],
            end,
            content.len()
        )
    }
}
