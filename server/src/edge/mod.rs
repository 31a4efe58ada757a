//! The edge of the server: everything a call passes before a handler sees it, and the one
//! place the order of those layers is written down ([`Edge::grpc`], [`Edge::rest`]).
//!
//! Outermost first, for both wire formats:
//! 1. request ids ([`request_ids`], on the server itself): kept from the client when
//!    reasonable, made otherwise, echoed back; every later layer logs them.
//! 2. CORS ([`cors`]) for the web console, and gRPC-Web translated to gRPC.
//! 3. telemetry ([`telemetry`]): the call's span, log line and metrics.
//! 4. audit ([`audit`]): one event per call, written before the caller learns the outcome.
//!    It sits outside everything that can refuse a call, so refusals (unauthenticated,
//!    denied, rate limited, shed) are recorded too; inner layers tell it who called through
//!    the [`crate::caller::AuditSlot`] it puts in the request.
//! 5. load shedding ([`shed`]): a replica at `server.max_concurrent_calls` refuses more with
//!    `RESOURCE_EXHAUSTED` instead of queueing them.
//! 6. access ([`access`]): authenticate, authorize with the method's rule, rate-limit, and
//!    leave the [`crate::caller::Principal`] for the handler.
//! 7. the request's fields ([`CheckedCodec`], in the generated services): NUL and control
//!    characters, oversized strings and lists, deep nesting and malformed protobuf are
//!    refused as `INVALID_ARGUMENT` naming the field, by rules read from the API's own
//!    descriptors ([`request_fields`]).
//!
//! On the REST routes telemetry sits inside audit, which turns the status that ends an
//! event stream into its last event. A call is identified once ([`calls::of`]) and each
//! layer renders its refusals in the call's own format ([`calls::Protocol::refusal`]).
//! `api` builds on this module, never the reverse.

mod access;
mod audit;
pub mod calls;
mod catalog;
mod codec;
mod cors;
pub mod openai_wire;
pub mod request_fields;
mod request_id;
mod shed;
mod status;
mod telemetry;

use std::sync::Arc;

pub use access::AuthLayer;
pub use audit::{AuditLayer, AuditedBody};
pub use catalog::{API_SERVICES, ApiCatalog};
pub use codec::CheckedCodec;
pub use request_id::{REQUEST_ID_HEADER, RequestIds, request_ids};
pub use status::ApiError;
pub use telemetry::RpcTelemetryLayer;

use shed::ShedLayer;
use tonic_web::GrpcWebLayer;
use tower_http::cors::CorsLayer;

use crate::{audit::AuditWriter, telemetry::Metrics};

/// The layers every API call passes, built once and shared by both wire formats (so one
/// capacity, one rate limiter, one audit writer serve them all).
#[derive(Clone)]
pub struct Edge {
    access: AuthLayer,
    audit: AuditLayer,
    shed: ShedLayer,
    telemetry: RpcTelemetryLayer,
    cors: CorsLayer,
}

/// What the edge is built from.
pub struct EdgeParts {
    /// Authentication, authorization and rate limits.
    pub access: AuthLayer,
    /// Writes each call's audit event.
    pub audit_writer: AuditWriter,
    /// Where per-call metrics go.
    pub metrics: Arc<Metrics>,
    /// Calls this replica runs at once before it sheds more.
    pub max_concurrent_calls: usize,
    /// Browser origins allowed to use gRPC-Web.
    pub cors_allowed_origins: Vec<String>,
}

impl Edge {
    /// The edge `parts` describe.
    pub fn new(parts: EdgeParts) -> Self {
        Self {
            access: parts.access,
            audit: AuditLayer::new(parts.audit_writer),
            shed: ShedLayer::new(parts.max_concurrent_calls),
            telemetry: RpcTelemetryLayer::new(parts.metrics, Arc::new(ApiCatalog::served())),
            cors: cors::cors_layer(&parts.cors_allowed_origins),
        }
    }

    /// The gRPC services (native, or gRPC-Web from browsers) behind the edge.
    pub fn grpc(&self, services: axum::Router) -> axum::Router {
        services
            .layer(self.access.clone())
            .layer(self.shed.clone())
            .layer(self.audit.clone())
            .layer(self.telemetry.clone())
            .layer(GrpcWebLayer::new())
            .layer(self.cors.clone())
    }

    /// The OpenAI-compatible REST routes behind the edge.
    pub fn rest(&self, routes: axum::Router) -> axum::Router {
        routes
            .layer(self.access.clone())
            .layer(self.shed.clone())
            .layer(self.telemetry.clone())
            .layer(self.audit.clone())
            .layer(self.cors.clone())
    }
}
