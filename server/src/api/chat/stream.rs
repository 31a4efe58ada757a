//! A streamed reply in gRPC chunks: started, text deltas (placeholders restored) and the
//! plugins' tool calls as they happen, then completed. The turn itself is conducted by `chat::Turns`; a client that hangs up, or a
//! cancellation from any replica, stops the provider call and the reply is stored as far
//! as it got.

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Response, Status};

use crate::{
    caller::Caller,
    chat::{Answered, Ask, ChatError, DetachedSink, ReplySink, Started, ToolEvent, Turns},
    edge::ApiError,
    pb::v1 as pb,
};

/// Stream chunks buffered ahead of a slow client.
const STREAM_BUFFER: usize = 32;

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

/// A streamed reply's chunks: started, text deltas, then completed (or the error that
/// ended it).
pub(super) struct ChunkSink<T>(mpsc::Sender<Result<T, Status>>);

impl<T: ChunkMessage> ReplySink for ChunkSink<T> {
    async fn started(&mut self, started: Started) -> bool {
        let started = pb::ReplyStarted {
            user_message_id: started
                .user_message
                .map(|id| id.to_string())
                .unwrap_or_default(),
            reply_message_id: started.reply.to_string(),
            generation_id: started.reply.to_string(),
        };
        self.0
            .send(Ok(chunk(pb::reply_chunk::Event::Started(started))))
            .await
            .is_ok()
    }

    async fn text(&mut self, piece: String) -> bool {
        self.0
            .send(Ok(chunk(pb::reply_chunk::Event::Delta(piece))))
            .await
            .is_ok()
    }

    async fn tool_event(&mut self, event: ToolEvent) -> bool {
        let event = match event {
            ToolEvent::Started {
                call_id,
                plugin,
                tool,
            } => pb::reply_chunk::Event::ToolCallStarted(pb::ToolCallStarted {
                call_id,
                plugin,
                tool,
            }),
            ToolEvent::Finished {
                call_id,
                plugin,
                tool,
                outcome,
                latency,
            } => pb::reply_chunk::Event::ToolCallFinished(pb::ToolCallFinished {
                call_id,
                plugin,
                tool,
                outcome: outcome.to_owned(),
                latency_ms: i64::try_from(latency.as_millis()).unwrap_or(i64::MAX),
            }),
        };
        self.0.send(Ok(chunk(event))).await.is_ok()
    }

    async fn gone(&self) {
        self.0.closed().await;
    }
}

impl<T: ChunkMessage> DetachedSink for ChunkSink<T> {
    async fn end(self, outcome: Result<Answered, ChatError>) {
        let last = match outcome {
            Ok(Answered {
                stored: Some((_, reply)),
                memory_ids,
                ..
            }) => {
                let reply: pb::Message = reply.into();
                Ok(chunk(pb::reply_chunk::Event::Completed(
                    pb::ReplyCompleted {
                        usage: reply.usage,
                        model_used: reply.model_used,
                        finish_reason: reply.finish_reason,
                        memory_ids: memory_ids.iter().map(ToString::to_string).collect(),
                    },
                )))
            }
            Ok(_) => Err(ApiError::internal("a conversation turn was not stored").into()),
            Err(err) => Err(ApiError::from(err).into()),
        };
        let _ = self.0.send(last).await;
    }
}

/// Answers `ask` as a stream of chunks: the call fails with the error that ends the turn
/// before it starts; later the stream carries the reply and its end.
pub(super) async fn streamed<T: ChunkMessage>(
    turns: &Turns,
    caller: Caller,
    ask: Ask,
) -> Result<Response<ReceiverStream<Result<T, Status>>>, Status> {
    let (lines, stream) = mpsc::channel(STREAM_BUFFER);
    turns.reply_detached(caller, ask, ChunkSink(lines)).await?;
    Ok(Response::new(ReceiverStream::new(stream)))
}
