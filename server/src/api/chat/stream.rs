//! Streaming a reply to the client: started, text deltas (placeholders restored), then
//! completed; the turn is stored at the end. A client that hangs up, or a cancellation
//! from any replica, stops the provider call and the reply is stored as far as it got.

use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tonic::Status;
use uuid::Uuid;

use super::ApiError;
use crate::{
    auth::Principal,
    chat::{Claim, Generator, Message, PreparedTurn, Reply, Restorer, Running},
    llm::{Delta, FinishReason, LlmError, Usage},
    pb::v1 as pb,
};

impl From<LlmError> for ApiError {
    fn from(err: LlmError) -> Self {
        match err {
            LlmError::RateLimited { retry_after } => ApiError::ResourceExhausted {
                message: err.to_string(),
                retry_after: retry_after.map(|d| d.as_secs().max(1)),
            },
            LlmError::Unauthorized(_) | LlmError::Rejected(_) => {
                ApiError::FailedPrecondition(err.to_string())
            }
            LlmError::Upstream { .. } | LlmError::Unreachable(_) | LlmError::Protocol(_) => {
                ApiError::Unavailable(err.to_string())
            }
        }
    }
}

/// The response messages of a streamed reply (StreamMessage's or RegenerateReply's).
pub(super) trait ChunkMessage: Send + 'static {
    fn wrap(chunk: pb::ReplyChunk) -> Self;
}

impl ChunkMessage for pb::StreamMessageResponse {
    fn wrap(chunk: pb::ReplyChunk) -> Self {
        Self { chunk: Some(chunk) }
    }
}

impl ChunkMessage for pb::RegenerateReplyResponse {
    fn wrap(chunk: pb::ReplyChunk) -> Self {
        Self { chunk: Some(chunk) }
    }
}

fn chunk<T: ChunkMessage>(event: pb::reply_chunk::Event) -> T {
    T::wrap(pb::ReplyChunk { event: Some(event) })
}

fn finish_reason(reason: FinishReason) -> pb::FinishReason {
    match reason {
        FinishReason::Stop => pb::FinishReason::Stop,
        FinishReason::Length => pb::FinishReason::Length,
        FinishReason::ContentFilter => pb::FinishReason::ContentFilter,
        FinishReason::ToolCalls => pb::FinishReason::ToolCalls,
        FinishReason::Cancelled => pb::FinishReason::Cancelled,
    }
}

/// Streams a reply to `lines`: started, deltas (placeholders restored), completed; stores
/// the turn at the end. A client that goes away cancels the upstream call and the reply is
/// stored as far as it got.
pub(super) async fn stream_reply<T: ChunkMessage>(
    generator: Generator,
    principal: Principal,
    turn: PreparedTurn,
    running: Running,
    lines: mpsc::Sender<Result<T, Status>>,
    claim: Option<Box<Claim>>,
) {
    let stored = generate(generator, principal, turn, running, lines).await;
    if let Some(claim) = claim {
        claim.settle(stored).await;
    }
}

/// Streams the reply; returns the ids of the stored (user message, reply), if stored.
async fn generate<T: ChunkMessage>(
    generator: Generator,
    principal: Principal,
    turn: PreparedTurn,
    mut running: Running,
    lines: mpsc::Sender<Result<T, Status>>,
) -> Option<(Uuid, Uuid)> {
    let started = pb::ReplyStarted {
        user_message_id: if turn.regenerates() {
            String::new()
        } else {
            turn.user_message_id.to_string()
        },
        reply_message_id: turn.reply_id.to_string(),
        generation_id: turn.reply_id.to_string(),
    };
    if lines
        .send(Ok(chunk(pb::reply_chunk::Event::Started(started))))
        .await
        .is_err()
    {
        return None;
    }
    let started_at = std::time::Instant::now();
    let opened = match turn.open().await {
        Ok(opened) => opened,
        Err(err) => {
            let _ = lines.send(Err(ApiError::from(err).into())).await;
            return None;
        }
    };
    let model_used = opened.model_used;
    let mut upstream = opened.stream;
    let mut restorer = opened.redactions.map(Restorer::new);
    let mut content = String::new();
    let mut usage = Usage::default();
    let mut reason = FinishReason::Cancelled;
    let mut client_gone = false;
    let mut cancelled = false;
    loop {
        let delta = tokio::select! {
            () = lines.closed() => { client_gone = true; break; }
            () = running.cancelled() => { cancelled = true; break; }
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
                if !shown.is_empty()
                    && lines
                        .send(Ok(chunk(pb::reply_chunk::Event::Delta(shown))))
                        .await
                        .is_err()
                {
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
            Some(Err(err)) => {
                let _ = lines.send(Err(ApiError::from(err).into())).await;
                return None;
            }
        }
    }
    // Dropping the upstream stream ends the provider request when the client left early.
    drop(upstream);
    if let Some(restorer) = restorer.as_mut() {
        let tail = restorer.finish();
        content.push_str(&tail);
        if !client_gone && !tail.is_empty() {
            let _ = lines
                .send(Ok(chunk(pb::reply_chunk::Event::Delta(tail))))
                .await;
        }
    }
    if client_gone || cancelled {
        reason = FinishReason::Cancelled;
    }
    drop(running);
    let reply = Reply {
        content,
        model_used,
        latency_ms: u32::try_from(started_at.elapsed().as_millis()).unwrap_or(u32::MAX),
        usage,
        finish_reason: reason,
    };
    match generator.finish(&principal, &turn, &reply).await {
        Ok((user, stored)) => {
            let ids = (user.id, stored.id);
            let completed = pb::ReplyCompleted {
                usage: Some(pb::Usage {
                    prompt_tokens: usage.prompt_tokens,
                    completion_tokens: usage.completion_tokens,
                    total_tokens: usage.prompt_tokens + usage.completion_tokens,
                    cost_micros: stored.cost_micros,
                }),
                model_used: stored.model_used,
                finish_reason: finish_reason(reason).into(),
                memory_ids: turn.memory_ids.iter().map(ToString::to_string).collect(),
            };
            let _ = lines
                .send(Ok(chunk(pb::reply_chunk::Event::Completed(completed))))
                .await;
            Some(ids)
        }
        Err(err) => {
            let _ = lines.send(Err(ApiError::from(err).into())).await;
            None
        }
    }
}

/// Answers a retried call with what its first call stored: started, the whole reply as one
/// delta, completed.
pub(super) async fn replay(
    user: Message,
    reply: Message,
    lines: mpsc::Sender<Result<pb::StreamMessageResponse, Status>>,
) {
    let stored: pb::Message = reply.into();
    let events = [
        pb::reply_chunk::Event::Started(pb::ReplyStarted {
            user_message_id: user.id.to_string(),
            reply_message_id: stored.id.clone(),
            generation_id: stored.id.clone(),
        }),
        pb::reply_chunk::Event::Delta(stored.content.clone()),
        pb::reply_chunk::Event::Completed(pb::ReplyCompleted {
            usage: stored.usage,
            model_used: stored.model_used.clone(),
            finish_reason: stored.finish_reason,
            memory_ids: Vec::new(),
        }),
    ];
    for event in events {
        if lines.send(Ok(chunk(event))).await.is_err() {
            return;
        }
    }
}
