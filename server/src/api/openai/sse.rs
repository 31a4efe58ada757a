//! A reply streamed as server-sent events, the way OpenAI streams chat completions: a
//! first event with the assistant role, one event per piece of text, one with the finish
//! reason, then (when `stream_options.include_usage` asked for it) one with the usage and
//! no choices. The stream's status ends the body as a trailers frame; the audit layer
//! writes the call's event on it and only then sends `data: [DONE]`.

use axum::{
    body::{Body, Bytes},
    response::Response,
};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body::Frame;
use tonic::Code;

use super::{
    error::rest_error,
    queued_frames::{FrameQueue, QueuedFrames},
    response::{
        AnswerFunction, AnswerToolCall, ChatCompletionChunk, ChunkChoice, ChunkDelta, UsageCounts,
        finish_reason,
    },
    unix_now,
};
use crate::{
    chat::{Answered, ChatError, DetachedSink, ReplySink, Started},
    edge::openai_wire::error_event,
    llm::ToolCallPiece,
};

/// What every event of one reply repeats.
struct Identity {
    /// `chatcmpl-...`.
    pub id: String,
    /// Seconds since the epoch.
    pub created: i64,
    /// The model as the caller named it.
    pub model: String,
}

impl Identity {
    /// One event of the reply's choice.
    fn event(
        &self,
        delta: ChunkDelta<'_>,
        finish: Option<&'static str>,
        usage: Option<Option<UsageCounts>>,
    ) -> Bytes {
        let choice = ChunkChoice {
            index: 0,
            delta,
            logprobs: None,
            finish_reason: finish,
        };
        self.chunk(vec![choice], usage)
    }

    /// The last event when the caller asked for usage: no choices, the counts.
    fn usage_event(&self, usage: UsageCounts) -> Bytes {
        self.chunk(Vec::new(), Some(Some(usage)))
    }

    fn chunk(&self, choices: Vec<ChunkChoice<'_>>, usage: Option<Option<UsageCounts>>) -> Bytes {
        let chunk = ChatCompletionChunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            system_fingerprint: None,
            choices,
            usage,
        };
        let json = serde_json::to_string(&chunk).unwrap_or_else(|_| "{}".to_owned());
        Bytes::from(format!("data: {json}\n\n"))
    }
}

/// A reply as server-sent events: the opening event once the reply starts, content and
/// tool call events as they come, the finish (and usage) events or an error event at the
/// end, then the trailers frame carrying the stream's status for the audit layer.
pub(super) struct EventSink {
    frames: FrameQueue,
    identity: Identity,
    usage_requested: bool,
}

impl EventSink {
    /// Events of a reply to a call that named `model`, queued on `frames`; with
    /// `usage_requested`, every event carries `"usage": null` and a usage event ends them.
    pub(super) fn new(frames: FrameQueue, model: String, usage_requested: bool) -> Self {
        Self {
            frames,
            identity: Identity {
                id: String::new(),
                created: unix_now(),
                model,
            },
            usage_requested,
        }
    }

    async fn send(&self, event: Bytes) -> bool {
        self.frames.send(Frame::data(event)).await.is_ok()
    }

    fn usage_field(&self) -> Option<Option<UsageCounts>> {
        self.usage_requested.then_some(None)
    }
}

impl ReplySink for EventSink {
    async fn started(&mut self, started: Started) -> bool {
        self.identity.id = format!("chatcmpl-{}", started.reply.simple());
        let opening = ChunkDelta {
            role: Some("assistant"),
            content: Some(""),
            tool_calls: Vec::new(),
        };
        let event = self.identity.event(opening, None, self.usage_field());
        self.send(event).await
    }

    async fn text(&mut self, piece: String) -> bool {
        let delta = ChunkDelta {
            content: Some(&piece),
            ..ChunkDelta::default()
        };
        let event = self.identity.event(delta, None, self.usage_field());
        self.send(event).await
    }

    async fn tool_call(&mut self, piece: ToolCallPiece) -> bool {
        let call = AnswerToolCall {
            index: Some(piece.index),
            id: piece.id.as_deref(),
            kind: piece.id.is_some().then_some("function"),
            function: AnswerFunction {
                name: piece.name.as_deref(),
                arguments: &piece.arguments,
            },
        };
        let delta = ChunkDelta {
            tool_calls: vec![call],
            ..ChunkDelta::default()
        };
        let event = self.identity.event(delta, None, self.usage_field());
        self.send(event).await
    }

    async fn gone(&self) {
        self.frames.closed().await;
    }
}

impl DetachedSink for EventSink {
    async fn end(self, outcome: Result<Answered, ChatError>) {
        let code = match outcome.map(|answered| answered.said) {
            Ok(Some(said)) => {
                let last = self.identity.event(
                    ChunkDelta::default(),
                    Some(finish_reason(said.finish_reason)),
                    self.usage_field(),
                );
                self.send(last).await;
                if self.usage_requested {
                    self.send(self.identity.usage_event(said.usage.into()))
                        .await;
                }
                Code::Ok
            }
            Ok(None) => Code::Internal,
            Err(err) => {
                let status = rest_error(err).0;
                self.send(error_event(&status)).await;
                status.code()
            }
        };
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from(code as i32));
        let _ = self.frames.send(Frame::trailers(trailers)).await;
    }
}

/// The response carrying the event stream read from `body`.
pub(super) fn response(body: QueuedFrames) -> Response {
    let mut response = Response::new(Body::new(body));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
