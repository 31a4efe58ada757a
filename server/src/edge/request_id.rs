//! Request ids: the client's `x-request-id` is kept (when it is reasonable), otherwise the
//! server makes one; either way it is echoed in the response metadata and recorded in the
//! call's span, logs and audit event.

use http::{HeaderName, HeaderValue, Request};
use tower::{
    ServiceBuilder,
    layer::util::{Identity, Stack},
};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};

/// The metadata key carrying the request id, both ways.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-supplied request id kept; longer ones are replaced.
const MAX_CLIENT_REQUEST_ID_LEN: usize = 128;

/// Makes a UUIDv7 request id (time-ordered, so ids sort by arrival) where the client sent
/// none.
#[derive(Clone, Copy, Default)]
pub struct KeepOrMakeRequestId;

impl MakeRequestId for KeepOrMakeRequestId {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&uuid::Uuid::now_v7().to_string())
            .ok()
            .map(RequestId::new)
    }
}

/// The request-id layers, outermost first: drop an unreasonable client id, make one where
/// there is none, copy it to the response.
pub type RequestIds = Stack<
    PropagateRequestIdLayer,
    Stack<SetRequestIdLayer<KeepOrMakeRequestId>, Stack<DropUnreasonableIdLayer, Identity>>,
>;

/// The request-id layers, for the server itself (every route, the operator ones too).
pub fn request_ids() -> RequestIds {
    ServiceBuilder::new()
        .layer(DropUnreasonableIdLayer)
        .layer(SetRequestIdLayer::new(
            REQUEST_ID_HEADER,
            KeepOrMakeRequestId,
        ))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID_HEADER))
        .into_inner()
}

/// Removes a client `x-request-id` that is too long or not plain visible ASCII, so that
/// logs and audit records only ever hold short printable ids.
#[derive(Clone, Copy, Default)]
pub struct DropUnreasonableIdLayer;

impl<S> tower::Layer<S> for DropUnreasonableIdLayer {
    type Service = DropUnreasonableId<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DropUnreasonableId { inner }
    }
}

/// Service made by [`DropUnreasonableIdLayer`].
#[derive(Clone)]
pub struct DropUnreasonableId<S> {
    inner: S,
}

impl<S, B> tower::Service<Request<B>> for DropUnreasonableId<S>
where
    S: tower::Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let reasonable = request.headers().get(&REQUEST_ID_HEADER).is_none_or(|id| {
            let bytes = id.as_bytes();
            !bytes.is_empty()
                && bytes.len() <= MAX_CLIENT_REQUEST_ID_LEN
                && bytes.iter().all(|b| b.is_ascii_graphic())
        });
        if !reasonable {
            request.headers_mut().remove(&REQUEST_ID_HEADER);
        }
        self.inner.call(request)
    }
}
