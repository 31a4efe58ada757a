//! Asking the model for a turn's reply, in rounds when it calls the tenant's plugins.
//!
//! Without tools a turn is one round: relayed to the sink piece by piece, or collected
//! whole. With the plugins' tools offered, a reply that calls them starts a round of
//! calls (at most `plugins.max_calls_per_round`; the rest are answered with a tool
//! error): each announced to the client, run (a few at once, each within its plugin's
//! timeout and the turn's time budget, `plugins.turn_budget`), announced again with its
//! outcome, and fed back to the model as a tool message (data, never instructions). Then
//! the model is asked again, with the tools while rounds (`plugins.max_rounds`) and time
//! remain, else without them, so it answers. The reply is the text of every round, the
//! usage their sum.
//!
//! The PHI policy holds both ways: each round's prompt passes the guard as a whole (tool
//! results headed off the premises are redacted like any message, placeholders stable
//! within the turn); what a plugin is sent, the toolbox decides (see `plugins`). A client
//! that hangs up, or a cancelled generation, drops the calls still running.

use std::{
    future::Future,
    pin::Pin,
    time::{Duration, Instant},
};

use futures_util::stream::{FuturesUnordered, StreamExt};

use crate::chat::{
    ChatError, MessageRole, Running, ToolUse,
    turn::{
        prompt::{Prompt, Reply, Turn, complete},
        relay::{ReplySink, ToolEvent, relay},
    },
};
use crate::{
    llm::{FinishReason, ToolCall, Usage},
    plugins::{PluginError, ToolReport, Toolbox},
    privacy::PhiGuard,
};

/// Asks for the reply to `prompt` into `sink`, calling `toolbox`'s tools when the model
/// asks for them.
///
/// # Errors
/// [`ChatError::Llm`] when no target answered or a reply broke off; [`ChatError::Plugin`]
/// when a tool call cannot be recorded.
pub(in crate::chat) async fn answer(
    guard: &PhiGuard,
    prompt: &Prompt,
    toolbox: Option<&Toolbox>,
    mut running: Option<&mut Running>,
    sink: &mut impl ReplySink,
) -> Result<Reply, ChatError> {
    let Some(toolbox) = toolbox else {
        return ask(prompt, running, sink).await;
    };
    let deadline = Instant::now() + toolbox.turn_budget();
    let mut said = Said::default();
    let mut next: Option<Prompt> = None;
    let mut round = 0;
    loop {
        round += 1;
        let asked = next.as_ref().unwrap_or(prompt);
        let reply = ask(asked, running.as_deref_mut(), sink).await?;
        let calls_tools = asked.runs_tools()
            && reply.finish_reason == FinishReason::ToolCalls
            && !reply.tool_calls.is_empty();
        if !calls_tools {
            return Ok(said.end(reply));
        }
        said.add(&reply);
        let Some(done) = call_tools(
            toolbox,
            &reply.tool_calls,
            deadline,
            running.as_deref_mut(),
            sink,
        )
        .await?
        else {
            let stopped = Reply {
                content: String::new(),
                tool_calls: Vec::new(),
                usage: Usage::default(),
                latency_ms: 0,
                finish_reason: FinishReason::Cancelled,
                ..reply
            };
            return Ok(said.end(stopped));
        };
        said.tools_used.extend(done.used);
        let mut more = vec![Turn {
            role: MessageRole::Assistant,
            text: reply.content,
            tool_calls: reply.tool_calls,
            tool_call_id: None,
        }];
        more.extend(done.answers);
        let offer_tools = round < toolbox.max_rounds() && Instant::now() < deadline;
        next = Some(asked.followed_by(guard, more, offer_tools)?);
    }
}

/// One round: relayed piece by piece when the sink streams, else collected whole.
async fn ask(
    prompt: &Prompt,
    running: Option<&mut Running>,
    sink: &mut impl ReplySink,
) -> Result<Reply, ChatError> {
    if sink.streams() {
        relay(prompt, running, sink).await
    } else {
        complete(prompt).await
    }
}

/// What the rounds said so far.
#[derive(Default)]
struct Said {
    content: String,
    usage: Usage,
    latency_ms: u32,
    tools_used: Vec<ToolUse>,
}

impl Said {
    fn add(&mut self, reply: &Reply) {
        self.content.push_str(&reply.content);
        self.usage.prompt_tokens += reply.usage.prompt_tokens;
        self.usage.completion_tokens += reply.usage.completion_tokens;
        self.latency_ms = self.latency_ms.saturating_add(reply.latency_ms);
    }

    /// The turn's reply: `last` with the earlier rounds' text and usage.
    fn end(mut self, last: Reply) -> Reply {
        self.add(&last);
        Reply {
            content: self.content,
            usage: self.usage,
            latency_ms: self.latency_ms,
            tools_used: self.tools_used,
            ..last
        }
    }
}

/// A round of tool calls, done.
struct Round {
    /// The answers as tool messages, in the calls' order.
    answers: Vec<Turn>,
    /// The calls as kept with the reply, in the same order.
    used: Vec<ToolUse>,
}

/// Runs one round of `calls`, to end by `deadline`; `None` when the client left or the
/// generation was cancelled meanwhile (the calls still running are dropped).
async fn call_tools(
    toolbox: &Toolbox,
    calls: &[ToolCall],
    deadline: Instant,
    mut running: Option<&mut Running>,
    sink: &mut impl ReplySink,
) -> Result<Option<Round>, ChatError> {
    let names = |call: &ToolCall| match toolbox.find(&call.name) {
        Some(tool) => (tool.plugin.clone(), tool.tool.clone()),
        None => (String::new(), call.name.clone()),
    };
    for call in calls {
        let (plugin, tool) = names(call);
        let started = ToolEvent::Started {
            call_id: call.id.clone(),
            plugin,
            tool,
        };
        if !sink.tool_event(started).await {
            return Ok(None);
        }
    }
    let allowed = toolbox.max_calls_per_round();
    let mut queued = calls.iter().enumerate().take(allowed);
    let mut pending = FuturesUnordered::new();
    let mut in_flight = vec![false; calls.len()];
    for (index, call) in queued.by_ref().take(toolbox.max_parallel_calls()) {
        in_flight[index] = true;
        pending.push(start(toolbox, index, call, deadline));
    }
    for (index, call) in calls.iter().enumerate().skip(allowed) {
        let reason = format!("at most {allowed} tool calls are run in one round");
        pending.push(Box::pin(std::future::ready((
            index,
            Ok(refused(call, reason)),
        ))));
    }
    let mut answers: Vec<Option<(Turn, ToolUse)>> = vec![None; calls.len()];
    loop {
        let cancelled = async {
            match running.as_deref_mut() {
                Some(running) => running.cancelled().await,
                None => std::future::pending().await,
            }
        };
        let next = tokio::select! {
            () = sink.gone() => None,
            () = cancelled => None,
            next = pending.next() => Some(next),
        };
        let Some(next) = next else {
            drop(pending);
            for (call, _) in calls
                .iter()
                .zip(&in_flight)
                .filter(|(_, running)| **running)
            {
                toolbox.record_dropped(&call.name, &call.arguments).await?;
            }
            return Ok(None);
        };
        let Some((index, report)) = next else {
            break;
        };
        in_flight[index] = false;
        if let Some((index, call)) = queued.next() {
            in_flight[index] = true;
            pending.push(start(toolbox, index, call, deadline));
        }
        let report = report?;
        let call = &calls[index];
        let finished = ToolEvent::Finished {
            call_id: call.id.clone(),
            plugin: report.plugin.clone(),
            tool: report.tool.clone(),
            outcome: report.outcome,
            latency: report.latency,
        };
        if !sink.tool_event(finished).await {
            return Ok(None);
        }
        let used = ToolUse {
            call_id: call.id.clone(),
            plugin: report.plugin,
            tool: report.tool,
            arguments: call.arguments.clone(),
            result: report.content.clone(),
            outcome: report.outcome.to_owned(),
            latency_ms: u64::try_from(report.latency.as_millis()).unwrap_or(u64::MAX),
        };
        let answer = Turn {
            role: MessageRole::Tool,
            text: report.content,
            tool_calls: Vec::new(),
            tool_call_id: Some(call.id.clone()),
        };
        answers[index] = Some((answer, used));
    }
    let (answers, used) = answers.into_iter().flatten().unzip();
    Ok(Some(Round { answers, used }))
}

/// A call of a round, running: its index in the round, and how it went.
type RunningCall<'a> =
    Pin<Box<dyn Future<Output = (usize, Result<ToolReport, PluginError>)> + Send + 'a>>;

/// Starts call `index` of a round (boxed: the round holds calls of one type), to end by
/// `deadline`.
fn start<'a>(
    toolbox: &'a Toolbox,
    index: usize,
    call: &'a ToolCall,
    deadline: Instant,
) -> RunningCall<'a> {
    Box::pin(async move { (index, call_tool(toolbox, call, deadline).await) })
}

/// One call the model asked for (the toolbox sends its arguments as the PHI policy
/// allows).
async fn call_tool(
    toolbox: &Toolbox,
    call: &ToolCall,
    deadline: Instant,
) -> Result<ToolReport, PluginError> {
    let Some(tool) = toolbox.find(&call.name) else {
        return Ok(refused(call, format!("there is no tool {:?}", call.name)));
    };
    toolbox
        .run(tool, arguments_of(&call.arguments), deadline)
        .await
}

/// A call answered with a tool error without calling anything.
fn refused(call: &ToolCall, reason: String) -> ToolReport {
    ToolReport {
        plugin: String::new(),
        tool: call.name.clone(),
        outcome: "refused",
        content: serde_json::json!({ "error": reason }).to_string(),
        latency: Duration::ZERO,
    }
}

/// The arguments a model wrote, as a JSON object (none written: `{}`).
fn arguments_of(text: &str) -> Result<serde_json::Value, String> {
    if text.trim().is_empty() {
        return Ok(serde_json::json!({}));
    }
    match serde_json::from_str(text) {
        Ok(object @ serde_json::Value::Object(_)) => Ok(object),
        Ok(_) => Err("arguments must be a JSON object".into()),
        Err(err) => Err(format!("arguments are not valid JSON: {err}")),
    }
}
