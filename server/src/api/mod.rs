//! The gRPC API: one module per service, plus the routes every server carries.
//!
//! Handlers here are thin: convert proto to domain types, call the domain, convert back.

mod catalog;
mod ops_http;
mod pending;
mod web;

use std::sync::Arc;

pub use catalog::{API_SERVICES, ApiCatalog};
use pending::{AdminApi, AuditApi, AuthApi, ChatApi, MemoryApi, ModelApi, Pending, PluginApi};
use tonic::service::Routes;
use tonic_web::GrpcWebLayer;

use crate::{
    health::Readiness,
    pb,
    telemetry::{Metrics, RpcTelemetryLayer},
};

/// Everything served on the listener: the API services, health, reflection (v1 and
/// v1alpha, since common tools such as grpcurl 1.8 speak only v1alpha) and the operator
/// HTTP routes. gRPC calls (native or gRPC-Web, translated first) pass through the RPC
/// telemetry layer; the operator routes do not.
///
/// # Panics
/// If the embedded descriptor sets do not decode, which would be a build defect.
pub fn routes(
    health: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
    metrics: Arc<Metrics>,
    readiness: Readiness,
    cors_allowed_origins: &[String],
) -> Routes {
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .build_v1()
        .expect("embedded descriptor sets are valid");
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .expect("embedded descriptor sets are valid");

    let grpc = Routes::new(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(Pending::<ChatApi>::new())
        .add_service(Pending::<MemoryApi>::new())
        .add_service(Pending::<AuthApi>::new())
        .add_service(Pending::<AdminApi>::new())
        .add_service(Pending::<PluginApi>::new())
        .add_service(Pending::<ModelApi>::new())
        .add_service(Pending::<AuditApi>::new());
    let telemetry = RpcTelemetryLayer::new(metrics.clone(), Arc::new(ApiCatalog::served()));
    let grpc = grpc
        .into_axum_router()
        .layer(telemetry)
        .layer(GrpcWebLayer::new())
        .layer(web::cors_layer(cors_allowed_origins));
    Routes::from(grpc.merge(ops_http::router(metrics, readiness)))
}
