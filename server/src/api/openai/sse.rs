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
use tonic::{Code, Status};

use super::{
    OpenAiState, RestError, error_event,
    prepared::{Prepared, rest_error},
    queued_frames::{FrameQueue, QueuedFrames},
    response::{
        AnswerFunction, AnswerToolCall, ChatCompletionChunk, ChunkChoice, ChunkDelta, UsageCounts,
        finish_reason,
    },
};
use crate::{
    auth::Principal,
    chat::{ReplySink, relay},
    llm::ToolCallPiece,
};

/// Events buffered ahead of a slow client.
const STREAM_BUFFER: usize = 32;

/// What every event of one reply repeats.
pub(super) struct Identity {
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

/// Sends relayed text as content events.
struct EventSink<'a> {
    frames: &'a FrameQueue,
    identity: &'a Identity,
    usage_requested: bool,
}

impl ReplySink for EventSink<'_> {
    async fn text(&mut self, piece: String) -> bool {
        let delta = ChunkDelta {
            content: Some(&piece),
            ..ChunkDelta::default()
        };
        let event = self
            .identity
            .event(delta, None, self.usage_requested.then_some(None));
        self.frames.send(Frame::data(event)).await.is_ok()
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
        let event = self
            .identity
            .event(delta, None, self.usage_requested.then_some(None));
        self.frames.send(Frame::data(event)).await.is_ok()
    }

    async fn gone(&self) {
        self.frames.closed().await;
    }
}

/// Starts streaming the reply to `prepared` and answers with the event stream.
///
/// # Errors
/// [`RestError`] when the conversation's generation cannot be registered.
pub(super) async fn stream(
    state: OpenAiState,
    principal: Principal,
    prepared: Prepared,
    identity: Identity,
    include_usage: bool,
) -> Result<Response, RestError> {
    let running = match &prepared {
        Prepared::Turn(turn) => Some(
            state
                .generations
                .begin(&principal, turn.reply_id)
                .await
                .map_err(rest_error)?,
        ),
        Prepared::Stateless(_) => None,
    };
    let (frames, body) = QueuedFrames::channel(STREAM_BUFFER);
    tokio::spawn(async move {
        let code = produce(
            &state,
            &principal,
            &prepared,
            running,
            &identity,
            include_usage,
            &frames,
        )
        .await
        .err()
        .map_or(Code::Ok, |status| status.code());
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from(code as i32));
        let _ = frames.send(Frame::trailers(trailers)).await;
    });
    let mut response = Response::new(Body::new(body));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// Sends the events of the reply; a failure is sent as an error event and returned.
async fn produce(
    state: &OpenAiState,
    principal: &Principal,
    prepared: &Prepared,
    mut running: Option<crate::chat::Running>,
    identity: &Identity,
    include_usage: bool,
    frames: &FrameQueue,
) -> Result<(), Status> {
    let usage_field = include_usage.then_some(None);
    let opening = ChunkDelta {
        role: Some("assistant"),
        content: Some(""),
        tool_calls: Vec::new(),
    };
    let first = identity.event(opening, None, usage_field);
    if frames.send(Frame::data(first)).await.is_err() {
        return Err(Status::cancelled("the client went away"));
    }
    let mut sink = EventSink {
        frames,
        identity,
        usage_requested: include_usage,
    };
    let relayed = relay(prepared.prompt(), running.as_mut(), &mut sink).await;
    drop(running);
    let settled = match relayed {
        Ok(reply) => prepared
            .settle(state, principal, &reply)
            .await
            .map(|()| reply),
        Err(err) => Err(err),
    };
    let reply = match settled {
        Ok(reply) => reply,
        Err(err) => {
            let status = rest_error(err).0;
            let _ = frames.send(Frame::data(error_event(&status))).await;
            return Err(status);
        }
    };
    let last = identity.event(
        ChunkDelta::default(),
        Some(finish_reason(reply.finish_reason)),
        usage_field,
    );
    let _ = frames.send(Frame::data(last)).await;
    if include_usage {
        let usage = identity.usage_event(reply.usage.into());
        let _ = frames.send(Frame::data(usage)).await;
    }
    Ok(())
}
