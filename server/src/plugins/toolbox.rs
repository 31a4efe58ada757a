//! The tools one chat turn offers the model: those of the profile's allowed plugins that
//! are enabled and the caller may use (`plugin:use` on every plugin, or on that one),
//! named `<plugin>__<tool>`, at most `plugins.max_tools`.
//!
//! A call the model asks for never fails the turn for the plugin's sake: bad arguments,
//! a tool's error, a plugin that is down, slow or disabled meanwhile, arguments the PHI
//! policy keeps from it, a call cut short by the turn's time budget all come back as a
//! tool error the model can read. Results longer than `plugins.max_result_bytes` are cut
//! with a marker.

use std::time::{Duration, Instant};

use uuid::Uuid;

use super::{
    Manifest, PluginError, Plugins, TOOL_SEPARATOR,
    calls::{Call, CallOutcome, Unfinished, Via, check_arguments, withheld},
    payload::CallContext,
    phi::holds_phi,
    registry::{manifest_of, usable},
};
use crate::{auth::permissions::PLUGIN_USE, caller::Principal, privacy::PhiPolicy, store};

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
    description: String,
    parameters: serde_json::Value,
}

/// The tools of one turn.
pub struct Toolbox {
    plugins: Plugins,
    principal: Principal,
    policy: PhiPolicy,
    context: CallContext,
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
    /// profile's list) that the caller may use: empty when the list is.
    /// Their calls send arguments under `policy` (the profile's PHI policy).
    ///
    /// # Errors
    /// [`PluginError::Store`] when Postgres fails.
    pub async fn toolbox(
        &self,
        principal: &Principal,
        allowed: &[String],
        policy: PhiPolicy,
    ) -> Result<Toolbox, PluginError> {
        let mut offered = Vec::new();
        if !allowed.is_empty() {
            let mut tx = self.db.begin_tenant(principal.tenant).await?;
            let rows = store::plugins::by_names(&mut tx, Some(allowed)).await?;
            tx.commit().await?;
            for row in rows.iter().filter(|row| row.enabled) {
                if !self
                    .rbac
                    .allows_on_plugin(principal, PLUGIN_USE, &row.name)
                    .await
                {
                    continue;
                }
                let manifest = manifest_of(&row.manifest)?;
                offered.extend(manifest.tools.into_iter().map(|tool| Offered {
                    function: format!("{}{TOOL_SEPARATOR}{}", row.name, tool.name),
                    plugin: row.name.clone(),
                    plugin_id: row.id,
                    tool: tool.name,
                    description: tool.description,
                    parameters: tool.parameters,
                }));
            }
            offered.truncate(self.limits.max_tools);
        }
        Ok(Toolbox {
            plugins: self.clone(),
            principal: principal.clone(),
            policy,
            context: CallContext::default(),
            offered,
        })
    }
}

impl Toolbox {
    /// The same tools, for a turn in `conversation` whose prompt holds the `recalled`
    /// memories (what plugins granted memory may be given).
    #[must_use]
    pub fn in_turn(mut self, conversation: Uuid, recalled: Vec<String>) -> Self {
        self.context = CallContext {
            conversation: Some(conversation),
            recalled,
        };
        self
    }

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

    /// Calls the model may ask for in one round.
    pub fn max_calls_per_round(&self) -> usize {
        self.plugins.limits.max_calls_per_round
    }

    /// Calls `tool` with `arguments` as the model wrote them (`Err` with the reason when
    /// they do not read: the call is then refused, and recorded as such), sent as the
    /// plugin as it is now and the PHI policy allow, ending by `deadline`.
    ///
    /// # Errors
    /// [`PluginError::Store`] when the call's audit event cannot be written.
    pub async fn run(
        &self,
        tool: &Offered,
        arguments: Result<serde_json::Value, String>,
        deadline: Instant,
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
        let arguments = match self.checked(&manifest, tool, arguments) {
            Ok(arguments) => arguments,
            Err((reason, phi)) => {
                self.plugins
                    .record_unfinished(&self.principal, &row, &tool.tool, phi, Unfinished::Refused)
                    .await?;
                return Ok(report("refused", error(reason), Duration::ZERO));
            }
        };
        let call = Call {
            tool: &tool.tool,
            arguments,
            policy: self.policy,
            deadline: Some(deadline),
            context: &self.context,
            via: Via::Chat,
        };
        let called = self
            .plugins
            .call(&self.principal, &row, &connection, call)
            .await?;
        let content = match &called.outcome {
            CallOutcome::Answered(output) => output.result.to_string(),
            CallOutcome::Unreachable(reason) | CallOutcome::Refused(reason) => {
                error(reason.clone())
            }
            CallOutcome::Withheld(refused) => {
                error(withheld(tool.plugin.clone(), refused).to_string())
            }
            CallOutcome::TimedOut(ms) => error(format!(
                "plugin {:?} did not answer within {ms} ms",
                tool.plugin
            )),
        };
        Ok(report(called.outcome.as_str(), content, called.latency))
    }

    /// Records a call of `function` with `arguments` (as the model wrote them) that was
    /// dropped unfinished, the client having left or the generation been cancelled, as
    /// `cancelled`.
    ///
    /// # Errors
    /// [`PluginError::Store`] when the audit event cannot be written.
    pub async fn record_dropped(&self, function: &str, arguments: &str) -> Result<(), PluginError> {
        let Some(tool) = self.find(function) else {
            return Ok(());
        };
        let row = match self
            .plugins
            .connection(self.principal.tenant, tool.plugin_id)
            .await
        {
            Ok((row, _)) => row,
            Err(err @ (PluginError::Store(_) | PluginError::Crypto(_))) => return Err(err),
            Err(_) => return Ok(()),
        };
        let phi = serde_json::from_str(arguments)
            .is_ok_and(|arguments| holds_phi(&self.plugins.guard, &arguments));
        self.plugins
            .record_unfinished(&self.principal, &row, &tool.tool, phi, Unfinished::Dropped)
            .await
    }

    /// `arguments` when they match the tool's schema in `manifest`; else why not, and
    /// whether they held PHI (for the audit event).
    fn checked(
        &self,
        manifest: &Manifest,
        tool: &Offered,
        arguments: Result<serde_json::Value, String>,
    ) -> Result<serde_json::Value, (String, bool)> {
        let arguments = arguments.map_err(|reason| (reason, false))?;
        let problem = match manifest.tool(&tool.tool) {
            None => format!("plugin {:?} no longer has this tool", tool.plugin),
            Some(described) => match check_arguments(&described.parameters, &arguments) {
                Ok(()) => return Ok(arguments),
                Err(reason) => format!("arguments {reason}"),
            },
        };
        Err((problem, holds_phi(&self.plugins.guard, &arguments)))
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
