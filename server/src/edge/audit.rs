//! One audit event for every call of the API, success or failure, written before the
//! caller learns the outcome: if the event cannot be written the caller gets `INTERNAL`
//! instead (fail closed).
//!
//! The layer sits outside authentication so that refused calls are recorded too; the
//! authentication layer tells it who the caller was through an [`AuditSlot`] in the request
//! extensions. A call's status is known either when the response starts (errors answered
//! at once, and every complete REST answer) or at the end of the body (gRPC trailers, or
//! the trailers frame that ends a REST event stream); in the second case the end is held
//! back until the event is committed: the gRPC trailers, or the REST stream's
//! `[DONE]`. Health checks and reflection are not audited
//! (they touch no tenant data and load balancers call them constantly).

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use axum::body::Bytes;
use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tonic::{Code, Status};

use super::{
    calls::{self, Protocol},
    openai_wire::CallCode,
    request_id::REQUEST_ID_HEADER,
};
use crate::{
    audit::{Actor, AuditWriter, NewEvent, Outcome, PLATFORM_CHAIN},
    caller::{AuditSlot, CallOrigin, SlotState},
};

/// Audits every API call.
#[derive(Clone)]
pub struct AuditLayer {
    writer: AuditWriter,
}

impl AuditLayer {
    /// Writes events through `writer`.
    pub fn new(writer: AuditWriter) -> Self {
        Self { writer }
    }
}

impl<S> tower::Layer<S> for AuditLayer {
    type Service = AuditService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuditService {
            inner,
            writer: self.writer.clone(),
        }
    }
}

/// Service made by [`AuditLayer`].
#[derive(Clone)]
pub struct AuditService<S> {
    inner: S,
    writer: AuditWriter,
}

/// What is known about a call before its outcome.
struct Draft {
    writer: AuditWriter,
    slot: AuditSlot,
    action: String,
    origin: CallOrigin,
}

impl Draft {
    /// Writes the event for a call that ended with `code`.
    ///
    /// The write runs as a task of its own: a client that hangs up while it runs cannot
    /// cancel it.
    fn write(self, code: Code) -> Pin<Box<dyn Future<Output = Result<(), Status>> + Send>> {
        let written = tokio::spawn(self.commit(code));
        Box::pin(async move {
            written.await.unwrap_or_else(|err| {
                tracing::error!(error = %err, "audit event task failed: failing the call");
                Err(Status::internal(
                    "the call could not be audited; it was not completed",
                ))
            })
        })
    }

    async fn commit(self, code: Code) -> Result<(), Status> {
        {
            let SlotState {
                caller,
                resource_id,
                phi,
            } = self.slot.take();
            let (tenant, actor, resource_type) = match caller {
                Some((principal, object)) => {
                    let actor = match (principal.api_key, principal.session) {
                        (Some(key), _) => Actor::ApiKey(key),
                        _ => Actor::User(principal.user),
                    };
                    (principal.tenant, actor, object.to_owned())
                }
                None => (PLATFORM_CHAIN, Actor::Anonymous, String::new()),
            };
            let outcome = match code {
                Code::Ok => Outcome::Success,
                Code::Unauthenticated | Code::PermissionDenied | Code::ResourceExhausted => {
                    Outcome::Denied
                }
                _ => Outcome::Failure,
            };
            let event = NewEvent::from_origin(
                actor,
                &self.origin,
                &self.action,
                &resource_type,
                resource_id,
                serde_json::json!({}),
            )
            .with_outcome(outcome, code)
            .with_phi(phi);
            self.writer.record(tenant, event).await.map_err(|err| {
                tracing::error!(error = %err, action = %self.action, "audit event not written: failing the call");
                Status::internal("the call could not be audited; it was not completed")
            })
        }
    }
}

fn header(headers: &HeaderMap, name: impl http::header::AsHeaderName) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .chars()
        .take(256)
        .collect()
}

fn grpc_status(headers: &HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .map(|value| Code::from_bytes(value.as_bytes()))
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for AuditService<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Body<Data = Bytes> + From<axum::body::Body> + Send + 'static,
{
    type Response = Response<AuditedBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if calls::is_infrastructure(request.uri().path()) {
            return Box::pin(async move {
                Ok(inner.call(request).await?.map(AuditedBody::passthrough))
            });
        }
        let call = calls::of(&mut request);
        let (protocol, action) = (call.protocol, call.action.clone());
        let slot = AuditSlot::default();
        let origin = CallOrigin {
            request_id: header(request.headers(), &REQUEST_ID_HEADER),
            client_address: request
                .extensions()
                .get::<tonic::transport::server::TcpConnectInfo>()
                .and_then(|info| info.remote_addr())
                .map(|addr| addr.ip().to_string())
                .unwrap_or_default(),
            user_agent: header(request.headers(), http::header::USER_AGENT),
        };
        request.extensions_mut().insert(slot.clone());
        request.extensions_mut().insert(origin.clone());
        // Until the response is there, a dropped call (the client went away, the server's
        // timeout struck) is still recorded, as cancelled.
        let mut pending = PendingDraft(Some(Draft {
            writer: self.writer.clone(),
            slot,
            action,
            origin,
        }));
        Box::pin(async move {
            let response = inner.call(request).await?;
            let code = match protocol {
                Protocol::Grpc if response.status() == http::StatusCode::OK => {
                    grpc_status(response.headers())
                }
                Protocol::Grpc => Some(Code::Unknown),
                Protocol::OpenAi => response.extensions().get::<CallCode>().map(|c| c.0),
            };
            match code {
                // Answered at once: record before answering.
                Some(code) => match pending.write(code).await {
                    Ok(()) => Ok(response.map(AuditedBody::passthrough)),
                    Err(status) => Ok(protocol
                        .refusal(&status)
                        .map(|body| AuditedBody::passthrough(ResBody::from(body)))),
                },
                None => Ok(response.map(|body| AuditedBody::pending(body, pending, protocol))),
            }
        })
    }
}

/// A call's draft event until it is written; a call dropped unfinished (the client went
/// away) is recorded as cancelled.
struct PendingDraft(Option<Draft>);

impl PendingDraft {
    /// Writes the event for a call that ended with `code` (once).
    async fn write(&mut self, code: Code) -> Result<(), Status> {
        match self.0.take() {
            Some(draft) => draft.write(code).await,
            None => Ok(()),
        }
    }
}

impl Drop for PendingDraft {
    fn drop(&mut self) {
        if let Some(draft) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(draft.write(Code::Cancelled));
        }
    }
}

pin_project! {
    /// Response body of [`AuditService`]: holds the trailers back until the event is
    /// written.
    pub struct AuditedBody<B> {
        #[pin]
        inner: B,
        draft: PendingDraft,
        protocol: Protocol,
        writing: Option<BoxFuture<Result<(), Status>>>,
        held: Option<(Code, HeaderMap)>,
    }
}

impl<B> AuditedBody<B> {
    fn passthrough(inner: B) -> Self {
        Self {
            inner,
            draft: PendingDraft(None),
            protocol: Protocol::Grpc,
            writing: None,
            held: None,
        }
    }

    fn pending(inner: B, draft: PendingDraft, protocol: Protocol) -> Self {
        Self {
            inner,
            draft,
            protocol,
            writing: None,
            held: None,
        }
    }
}

impl<B: Body<Data = Bytes>> Body for AuditedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        loop {
            if let Some(writing) = this.writing.as_mut() {
                let result = ready!(writing.as_mut().poll(cx));
                *this.writing = None;
                let (code, trailers) = this
                    .held
                    .take()
                    .unwrap_or_else(|| (Code::Unknown, HeaderMap::new()));
                // Fail closed: the caller learns the call did not complete.
                return Poll::Ready(this.protocol.stream_end(code, trailers, result).map(Ok));
            }
            let frame = ready!(this.inner.as_mut().poll_frame(cx));
            match frame {
                Some(Ok(frame)) if frame.is_trailers() && this.draft.0.is_some() => {
                    let trailers = frame.into_trailers().unwrap_or_default();
                    let code = grpc_status(&trailers).unwrap_or(Code::Unknown);
                    if let Some(draft) = this.draft.0.take() {
                        *this.writing = Some(draft.write(code));
                    }
                    *this.held = Some((code, trailers));
                }
                None => {
                    if let Some(draft) = this.draft.0.take() {
                        tokio::spawn(draft.write(Code::Unknown));
                    }
                    return Poll::Ready(None);
                }
                other => return Poll::Ready(other),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.draft.0.is_none()
            && self.writing.is_none()
            && self.held.is_none()
            && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
