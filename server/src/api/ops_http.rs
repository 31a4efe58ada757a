//! Plain HTTP routes for operators, on the same port as gRPC: `/healthz` (the process is
//! up), `/readyz` (Postgres and Redis answer) and `/metrics` (Prometheus).

use std::sync::Arc;

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};

use crate::{health::Readiness, telemetry::Metrics};

/// Content type of the OpenMetrics text format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone)]
struct OpsState {
    metrics: Arc<Metrics>,
    readiness: Readiness,
}

/// The operator routes.
pub fn router(metrics: Arc<Metrics>, readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(OpsState { metrics, readiness })
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<OpsState>) -> impl IntoResponse {
    match state.readiness.unavailable() {
        None => (StatusCode::OK, "ready\n".to_owned()),
        Some(dependencies) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {dependencies} unavailable\n"),
        ),
    }
}

async fn metrics_text(State(state): State<OpsState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, OPENMETRICS)],
        state.metrics.render(),
    )
}
