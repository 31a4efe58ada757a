//! What a call sends a plugin besides the tool's name: its arguments and, for a gRPC
//! plugin granted them, the conversation's working memory and the turn's recalled
//! memories; and keeping the working memory a plugin granted `write_working_memory`
//! writes. The whole payload passes the PHI policy as one value (see [`super::phi`]).

use serde_json::json;
use uuid::Uuid;

use super::{Capability, Plugins, transport::ToolOutput};
use crate::{caller::Principal, store::plugins::PluginRow};

/// What a call may carry besides its arguments, as the plugin's grants allow.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// The conversation the call is made in, whose working memory a plugin may read and
    /// write.
    pub conversation: Option<Uuid>,
    /// The memories recalled for the turn, as the model read them.
    pub recalled: Vec<String>,
}

/// What goes to the plugin.
pub(super) struct Payload {
    /// The tool's arguments.
    pub(super) arguments: serde_json::Value,
    /// The conversation's working memory, when granted.
    pub(super) working_memory: Option<serde_json::Value>,
    /// The turn's recalled memories, when granted.
    pub(super) recalled_memories: Vec<String>,
}

impl Payload {
    /// The payload as one JSON value, for the PHI guard.
    pub(super) fn to_value(&self) -> serde_json::Value {
        json!({
            "arguments": self.arguments,
            "working_memory": self.working_memory,
            "recalled_memories": self.recalled_memories,
        })
    }

    /// The payload back from [`Self::to_value`] (after the guard, which keeps its shape).
    pub(super) fn from_value(mut value: serde_json::Value) -> Self {
        let working_memory = value["working_memory"].take();
        Self {
            arguments: value["arguments"].take(),
            working_memory: (!working_memory.is_null()).then_some(working_memory),
            recalled_memories: serde_json::from_value(value["recalled_memories"].take())
                .unwrap_or_default(),
        }
    }
}

/// The capabilities `row`'s plugin was granted.
pub(super) fn granted(row: &PluginRow) -> Vec<Capability> {
    row.granted
        .iter()
        .filter_map(|name| Capability::parse(name))
        .collect()
}

impl Plugins {
    /// The payload of a call with `arguments` in `context` for a plugin `granted` these
    /// capabilities.
    pub(super) async fn payload(
        &self,
        principal: &Principal,
        granted: &[Capability],
        context: &CallContext,
        arguments: serde_json::Value,
    ) -> Payload {
        let working_memory = match context.conversation {
            Some(conversation) if granted.contains(&Capability::ReadWorkingMemory) => {
                self.working_memory(principal, conversation).await
            }
            _ => None,
        };
        let recalled_memories = if granted.contains(&Capability::ReadMemory) {
            context.recalled.clone()
        } else {
            Vec::new()
        };
        Payload {
            arguments,
            working_memory,
            recalled_memories,
        }
    }

    /// The working memory of the caller's `conversation`, if it has one (none when it
    /// cannot be read: the call goes on without it).
    async fn working_memory(
        &self,
        principal: &Principal,
        conversation: Uuid,
    ) -> Option<serde_json::Value> {
        match self.working.get(principal, conversation).await {
            Ok(state) => state.map(|state| state.state),
            Err(err) => {
                tracing::warn!(error = %err, "working memory not passed to a plugin");
                None
            }
        }
    }

    /// Keeps the working memory a plugin wrote in `output` for `conversation` (`None`:
    /// it may not write it, and what it wrote is dropped). A state that cannot be kept
    /// makes the answer a tool error saying why.
    pub(super) async fn keep_working_memory(
        &self,
        principal: &Principal,
        conversation: Option<Uuid>,
        mut output: ToolOutput,
    ) -> ToolOutput {
        let (Some(conversation), Some(state)) = (conversation, output.working_memory.take()) else {
            return output;
        };
        match self
            .working
            .set(principal, conversation, &state, None)
            .await
        {
            Ok(_) => output,
            Err(err) => {
                ToolOutput::error(format!("the plugin's working memory was not kept: {err}"))
            }
        }
    }
}
