//! Relaying a reply as it is generated, and the port ([`ReplySink`]) every API's encoding
//! plugs into: text pieces go to the client with placeholders
//! restored (when the provider is off the premises), the provider call stops as soon as
//! the client goes away or the generation is cancelled, and what was said until then is
//! returned as the reply (finish reason `cancelled`). The gRPC stream and the
//! OpenAI-compatible event stream relay through here; only their wire formats differ.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use tokio_stream::StreamExt;
use uuid::Uuid;

use crate::chat::{
    ChatError, Restorer, Running,
    turn::prompt::{Prompt, Reply, ToolCalls},
};
use crate::llm::{Delta, FinishReason, ToolCallPiece, Usage};

/// What a reply starts with, once the turn is prepared and before the model is asked.
#[derive(Debug, Clone, Copy)]
pub struct Started {
    /// The reply's id: the id it is stored under (the generation id a cancellation
    /// names), or a fresh one for a stateless call.
    pub reply: Uuid,
    /// The id the user's message is stored under; `None` for a regeneration (the message
    /// is the stored one) and for a stateless call.
    pub user_message: Option<Uuid>,
}

/// Where a reply goes: each API plugs in its encoding (collected whole, gRPC chunks,
/// server-sent events).
pub trait ReplySink: Send {
    /// Announces the reply; `false` when the client has gone (then nothing is generated).
    fn started(&mut self, started: Started) -> impl Future<Output = bool> + Send {
        let _ = started;
        async { true }
    }

    /// Whether the reply is relayed piece by piece (and, in a conversation, registered
    /// so a cancellation from any replica stops it) rather than collected whole.
    fn streams(&self) -> bool {
        true
    }

    /// Delivers a piece of text; `false` when the client has gone.
    fn text(&mut self, piece: String) -> impl Future<Output = bool> + Send;

    /// Delivers a piece of a tool call (arguments restored); `false` when the client has
    /// gone. Sinks of APIs without tools ignore them.
    fn tool_call(&mut self, piece: ToolCallPiece) -> impl Future<Output = bool> + Send {
        let _ = piece;
        async { true }
    }

    /// Tells the client about a call of one of the server's tools (a plugin) during the
    /// turn; `false` when the client has gone. Sinks that show no tool activity ignore it.
    fn tool_event(&mut self, event: ToolEvent) -> impl Future<Output = bool> + Send {
        let _ = event;
        async { true }
    }

    /// Resolves when the client has gone.
    fn gone(&self) -> impl Future<Output = ()> + Send;
}

/// A call of a plugin's tool during a turn, as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolEvent {
    /// The model asked for the call; it runs now.
    Started {
        /// The model's id of the call.
        call_id: String,
        /// The plugin.
        plugin: String,
        /// The tool.
        tool: String,
    },
    /// The call ended.
    Finished {
        /// The model's id of the call.
        call_id: String,
        /// The plugin.
        plugin: String,
        /// The tool.
        tool: String,
        /// `ok`, `tool_error`, `unreachable`, `timeout` or `refused`.
        outcome: &'static str,
        /// How long it took.
        latency: Duration,
    },
}

/// Asks `prompt`'s targets and relays the reply to `sink` until it ends, the client goes
/// away or `running` is cancelled.
///
/// # Errors
/// [`ChatError::Llm`] when no target answered or the reply broke off.
pub async fn relay(
    prompt: &Prompt,
    mut running: Option<&mut Running>,
    sink: &mut impl ReplySink,
) -> Result<Reply, ChatError> {
    let started_at = Instant::now();
    let opened = prompt.open().await?;
    let model_used = opened.model_used;
    let mut upstream = opened.stream;
    let redactions = opened.redactions;
    let mut restorer = redactions.map(Restorer::new);
    // The server's own tools are called here, not by the client: their calls are not
    // relayed.
    let relays_calls = !prompt.runs_tools();
    let mut calls = ToolCalls::default();
    let mut content = String::new();
    let mut usage = Usage::default();
    let mut reason = FinishReason::Cancelled;
    let mut client_gone = false;
    let mut cancelled_here = false;
    loop {
        let cancelled = async {
            match running.as_deref_mut() {
                Some(running) => running.cancelled().await,
                None => std::future::pending().await,
            }
        };
        let delta = tokio::select! {
            () = sink.gone() => { client_gone = true; break; }
            () = cancelled => { cancelled_here = true; break; }
            delta = upstream.next() => delta,
        };
        match delta {
            None => break,
            Some(Ok(Delta::Text(piece))) => {
                let shown = match restorer.as_mut() {
                    Some(restorer) => restorer.push(&piece),
                    None => piece,
                };
                content.push_str(&shown);
                if !shown.is_empty() && !sink.text(shown).await {
                    client_gone = true;
                    break;
                }
            }
            Some(Ok(Delta::ToolCall(piece))) => {
                calls.add(&piece);
                // Arguments are sent as they come but for placeholders, which a piece may
                // cut: with redactions, each call goes whole at the end instead.
                if relays_calls && redactions.is_none() && !sink.tool_call(piece).await {
                    client_gone = true;
                    break;
                }
            }
            Some(Ok(Delta::Finished {
                usage: counted,
                finish_reason: ended,
            })) => {
                usage = counted.unwrap_or_default();
                reason = ended;
            }
            Some(Err(err)) => return Err(err.into()),
        }
    }
    // Dropping the upstream stream ends the provider request when the client left early.
    drop(upstream);
    if let Some(restorer) = restorer.as_mut() {
        let tail = restorer.finish();
        content.push_str(&tail);
        if !client_gone && !tail.is_empty() {
            sink.text(tail).await;
        }
    }
    let tool_calls = calls.finish(|arguments| match redactions {
        Some(redactions) => redactions.restore(arguments),
        None => arguments.to_owned(),
    });
    if relays_calls && redactions.is_some() && !client_gone {
        for (index, call) in tool_calls.iter().enumerate() {
            let piece = ToolCallPiece {
                index: u32::try_from(index).unwrap_or(u32::MAX),
                id: Some(call.id.clone()),
                name: Some(call.name.clone()),
                arguments: call.arguments.clone(),
            };
            if !sink.tool_call(piece).await {
                client_gone = true;
                break;
            }
        }
    }
    if client_gone || cancelled_here {
        reason = FinishReason::Cancelled;
    }
    Ok(Reply {
        content,
        tool_calls,
        model_used,
        latency_ms: u32::try_from(started_at.elapsed().as_millis()).unwrap_or(u32::MAX),
        usage,
        finish_reason: reason,
        tools_used: Vec::new(),
    })
}
