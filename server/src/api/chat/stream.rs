//! Streaming a reply to the client: started, text deltas (placeholders restored), then
//! completed; the turn is stored at the end. A client that hangs up, or a cancellation
//! from any replica, stops the provider call and the reply is stored as far as it got.

use tokio::sync::mpsc;
use tonic::Status;
use uuid::Uuid;

use super::ApiError;
use crate::{
    auth::Principal,
    chat::{Claim, Generator, Message, PreparedTurn, ReplySink, Running, relay},
    llm::{FinishReason, LlmError},
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

/// Sends relayed text to the client as delta chunks.
struct ChunkSink<T>(mpsc::Sender<Result<T, Status>>);

impl<T: ChunkMessage> ReplySink for ChunkSink<T> {
    async fn text(&mut self, piece: String) -> bool {
        self.0
            .send(Ok(chunk(pb::reply_chunk::Event::Delta(piece))))
            .await
            .is_ok()
    }

    async fn gone(&self) {
        self.0.closed().await;
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
    let mut sink = ChunkSink(lines);
    let relayed = relay(&turn.prompt, Some(&mut running), &mut sink).await;
    drop(running);
    let ChunkSink(lines) = sink;
    let reply = match relayed {
        Ok(reply) => reply,
        Err(err) => {
            let _ = lines.send(Err(ApiError::from(err).into())).await;
            return None;
        }
    };
    let usage = reply.usage;
    let reason = reply.finish_reason;
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
