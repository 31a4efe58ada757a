//! Services of the API whose implementation is not in this build yet.
//!
//! Each is registered under its real name (so reflection, health and routing treat it like
//! any other) and answers every method with `UNIMPLEMENTED` and a message naming the
//! method and what it is waiting for. A service's real implementation replaces its entry
//! here.

use std::{
    convert::Infallible,
    future::{Ready, ready},
    marker::PhantomData,
    task::{Context, Poll},
};

use http::{Request, Response};
use tonic::{Status, body::Body, server::NamedService};

use crate::pb::v1 as pb;

/// A service of the API that is not available yet.
pub trait PendingApi: Send + Sync + 'static {
    /// Fully qualified service name.
    const NAME: &'static str;
    /// What the service needs before it can answer, for the error message.
    const MISSING: &'static str;
}

/// Answers every method of `P` with `UNIMPLEMENTED`.
pub struct Pending<P>(PhantomData<fn() -> P>);

impl<P> Pending<P> {
    /// The placeholder for `P`.
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

impl<P> Default for Pending<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P> Clone for Pending<P> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<P: PendingApi> NamedService for Pending<P> {
    const NAME: &'static str = P::NAME;
}

impl<P: PendingApi, B> tower::Service<Request<B>> for Pending<P> {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let method = request.uri().path().rsplit('/').next().unwrap_or_default();
        ready(Ok(pending_status(P::NAME, method, P::MISSING).into_http()))
    }
}

/// The `UNIMPLEMENTED` answer of a method that is not built yet.
pub fn pending_status(service: &str, method: &str, missing: &str) -> Status {
    Status::unimplemented(format!(
        "{service}/{method} is not available in this build yet: {missing}"
    ))
}

macro_rules! pending_api {
    ($(#[$doc:meta])* $marker:ident, $name:expr, $missing:expr) => {
        $(#[$doc])*
        pub struct $marker;

        impl PendingApi for $marker {
            const NAME: &'static str = $name;
            const MISSING: &'static str = $missing;
        }
    };
}

pending_api!(
    /// PluginService.
    PluginApi,
    pb::plugin_service_server::SERVICE_NAME,
    "the plugin registry is not built yet"
);
