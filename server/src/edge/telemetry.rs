//! Tower layer that observes every gRPC call, and every call of the OpenAI-compatible
//! routes (service label `openai`, method label the route), from request to final status.
//!
//! A gRPC status arrives either in the response headers (a "trailers-only" response, e.g.
//! an error before any message) or in the trailers at the end of the body, possibly long
//! after the handler returned for a streaming call. So the layer wraps the response body and
//! finishes the observation when it sees the status; a body dropped before that means the
//! client went away (`Cancelled`). Finishing records the metrics and writes one log line in
//! the call's span.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Instant,
};

use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tonic::Code;
use tracing::Span;

use super::{
    ApiCatalog,
    calls::{self, Protocol},
    openai_wire::CallCode,
    request_id::REQUEST_ID_HEADER,
};
use crate::telemetry::{FinishedRpc, Metrics};

/// Label used for paths that are not a known RPC, to keep metric cardinality bounded.
const UNKNOWN: &str = "unknown";
/// The service label of the OpenAI-compatible routes (the method label is the route).
const OPENAI_SERVICE: &str = "openai";

/// Adds span, log line and metrics to every gRPC and OpenAI-compatible call; other HTTP
/// requests pass untouched.
#[derive(Clone)]
pub struct RpcTelemetryLayer {
    metrics: Arc<Metrics>,
    catalog: Arc<ApiCatalog>,
}

impl RpcTelemetryLayer {
    /// Records into `metrics`, naming calls after the methods in `catalog`.
    pub fn new(metrics: Arc<Metrics>, catalog: Arc<ApiCatalog>) -> Self {
        Self { metrics, catalog }
    }
}

impl<S> tower::Layer<S> for RpcTelemetryLayer {
    type Service = RpcTelemetry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcTelemetry {
            inner,
            layer: self.clone(),
        }
    }
}

/// Service made by [`RpcTelemetryLayer`].
#[derive(Clone)]
pub struct RpcTelemetry<S> {
    inner: S,
    layer: RpcTelemetryLayer,
}

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for RpcTelemetry<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body,
{
    type Response = Response<ObservedBody<ResBody>>;
    type Error = S::Error;
    type Future = ObservedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let observation = Observation::start(&self.layer, &mut request);
        let span = observation
            .as_ref()
            .map_or_else(Span::none, |o| o.span.clone());
        let inner = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        ObservedFuture {
            inner,
            span,
            observation,
        }
    }
}

/// One call being observed; finishing it (or dropping it unfinished) records it once.
struct Observation {
    metrics: Arc<Metrics>,
    kind: &'static str,
    service: String,
    method: String,
    path: String,
    started: Instant,
    span: Span,
    finished: bool,
}

impl Observation {
    fn start<B>(layer: &RpcTelemetryLayer, request: &mut Request<B>) -> Option<Self> {
        let call = calls::of(request);
        let path = request.uri().path();
        let (service, method) = match call.protocol {
            Protocol::OpenAi => (
                OPENAI_SERVICE,
                if call.twin().is_some() {
                    call.action.as_str()
                } else {
                    UNKNOWN
                },
            ),
            Protocol::Grpc => {
                let is_grpc = request
                    .headers()
                    .get(http::header::CONTENT_TYPE)
                    .is_some_and(|ct| ct.as_bytes().starts_with(b"application/grpc"));
                if !is_grpc {
                    return None;
                }
                layer.catalog.resolve(path).unwrap_or((UNKNOWN, UNKNOWN))
            }
        };
        let request_id = request
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let span = tracing::info_span!(
            "rpc",
            rpc = %path,
            request_id = %request_id,
            tenant = tracing::field::Empty,
        );
        let kind = match call.protocol {
            Protocol::OpenAi => "http",
            Protocol::Grpc => layer.catalog.kind(service, method).unwrap_or(UNKNOWN),
        };
        Some(Self {
            metrics: layer.metrics.clone(),
            kind,
            service: service.to_owned(),
            method: method.to_owned(),
            path: path.to_owned(),
            started: Instant::now(),
            span,
            finished: false,
        })
    }

    fn finish(&mut self, code: Code) {
        if self.finished {
            return;
        }
        self.finished = true;
        let elapsed = self.started.elapsed();
        self.metrics.record_rpc(FinishedRpc {
            kind: self.kind,
            service: &self.service,
            method: &self.method,
            code,
            seconds: elapsed.as_secs_f64(),
        });
        let _entered = self.span.enter();
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        match code {
            Code::Ok => tracing::info!(code = ?code, latency_ms, "rpc finished"),
            Code::Internal | Code::Unknown | Code::DataLoss => {
                tracing::error!(code = ?code, latency_ms, path = %self.path, "rpc failed")
            }
            _ => tracing::warn!(code = ?code, latency_ms, "rpc finished with error"),
        }
    }
}

impl Drop for Observation {
    fn drop(&mut self) {
        self.finish(Code::Cancelled);
    }
}

/// The `grpc-status` in a header map, if any.
fn grpc_status(headers: &HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .map(|value| Code::from_bytes(value.as_bytes()))
}

/// The status a non-gRPC HTTP response implies (gRPC over HTTP/2 spec, "HTTP to gRPC
/// status code mapping").
fn status_from_http(status: http::StatusCode) -> Code {
    match status.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502..=504 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

pin_project! {
    /// Response future of [`RpcTelemetry`].
    pub struct ObservedFuture<F> {
        #[pin]
        inner: F,
        span: Span,
        observation: Option<Observation>,
    }
}

impl<F, ResBody, E> Future for ObservedFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<ObservedBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let _entered = this.span.enter();
            ready!(this.inner.poll(cx))
        };
        let mut observation = this.observation.take();
        match result {
            Ok(response) => {
                if let Some(obs) = observation.as_mut() {
                    if let Some(CallCode(code)) = response.extensions().get::<CallCode>() {
                        obs.finish(*code);
                    } else if response.status() != http::StatusCode::OK {
                        obs.finish(status_from_http(response.status()));
                    } else if let Some(code) = grpc_status(response.headers()) {
                        obs.finish(code);
                    }
                }
                let observation = observation.filter(|obs| !obs.finished);
                Poll::Ready(Ok(response.map(|inner| ObservedBody { inner, observation })))
            }
            Err(err) => {
                if let Some(obs) = observation.as_mut() {
                    obs.finish(Code::Unknown);
                }
                Poll::Ready(Err(err))
            }
        }
    }
}

pin_project! {
    /// Response body of [`RpcTelemetry`]: finishes the observation at the trailers.
    pub struct ObservedBody<B> {
        #[pin]
        inner: B,
        observation: Option<Observation>,
    }
}

impl<B: Body> Body for ObservedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if let Some(mut obs) = this.observation.take() {
            match &frame {
                Some(Ok(frame)) => match frame.trailers_ref() {
                    Some(trailers) => obs.finish(grpc_status(trailers).unwrap_or(Code::Unknown)),
                    None => *this.observation = Some(obs),
                },
                Some(Err(_)) => obs.finish(Code::Unknown),
                None => obs.finish(Code::Unknown),
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
