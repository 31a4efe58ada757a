//! Load shedding: at most `server.max_concurrent_calls` calls run at once on this replica,
//! streams counted until their last frame. A call beyond that is refused at once with
//! `RESOURCE_EXHAUSTED` (HTTP 429 on the REST routes) and a `retry-after` of one second,
//! instead of queueing behind the others until every call times out: a saturated replica
//! answers quickly, and clients (and the load balancer) go elsewhere or come back. Health
//! checks and reflection are never shed.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum::body::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;

use super::calls;

/// Seconds a refused client is told to wait.
const RETRY_AFTER_SECONDS: &str = "1";

/// The replica's call capacity, shared by every route it is layered on.
#[derive(Clone)]
pub struct ShedLayer {
    capacity: Arc<Semaphore>,
    limit: usize,
}

impl ShedLayer {
    /// Lets `limit` calls run at once.
    pub fn new(limit: usize) -> Self {
        Self {
            capacity: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }
}

impl<S> tower::Layer<S> for ShedLayer {
    type Service = Shed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Shed {
            inner,
            layer: self.clone(),
        }
    }
}

/// Service made by [`ShedLayer`].
#[derive(Clone)]
pub struct Shed<S> {
    inner: S,
    layer: ShedLayer,
}

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for Shed<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: From<axum::body::Body> + Send + 'static,
{
    type Response = Response<ShedBody<ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let permit = if calls::is_infrastructure(request.uri().path()) {
            None
        } else if let Ok(permit) = self.layer.capacity.clone().try_acquire_owned() {
            Some(permit)
        } else {
            let protocol = calls::of(&mut request).protocol;
            tracing::warn!(limit = self.layer.limit, "at capacity: call refused");
            let mut status = Status::resource_exhausted(format!(
                "the server is at capacity ({} calls at once); retry shortly",
                self.layer.limit
            ));
            status.metadata_mut().insert(
                "retry-after",
                tonic::metadata::MetadataValue::from_static(RETRY_AFTER_SECONDS),
            );
            let refusal = protocol.refusal(&status).map(|body| ShedBody {
                inner: ResBody::from(body),
                permit: None,
            });
            return Box::pin(async move { Ok(refusal) });
        };
        let answered = self.inner.call(request);
        Box::pin(async move {
            let response = answered.await?;
            Ok(response.map(|inner| ShedBody { inner, permit }))
        })
    }
}

pin_project! {
    /// Response body of [`Shed`]: the call keeps its place until the body ends.
    pub struct ShedBody<B> {
        #[pin]
        inner: B,
        permit: Option<OwnedSemaphorePermit>,
    }
}

impl<B: Body<Data = Bytes>> Body for ShedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        let frame = this.inner.poll_frame(cx);
        if matches!(frame, Poll::Ready(None)) {
            this.permit.take();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B: From<axum::body::Body>> From<axum::body::Body> for ShedBody<B> {
    fn from(body: axum::body::Body) -> Self {
        Self {
            inner: B::from(body),
            permit: None,
        }
    }
}
