//! Logs, per-RPC spans and Prometheus metrics.
//!
//! Every gRPC call gets a span carrying its method and request id, one log line when it
//! ends (status code and latency), and a sample in the per-RPC metrics that `/metrics`
//! serves.

mod metrics;
mod request_id;
mod rpc_layer;

pub use metrics::Metrics;
pub use request_id::{
    DropUnreasonableIdLayer, REQUEST_ID_HEADER, propagate_request_id_layer, set_request_id_layer,
};
pub use rpc_layer::RpcTelemetryLayer;

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::{LogFormat, TelemetryConfig};

/// Installs the global log subscriber writing to stderr. `RUST_LOG`, when set, replaces the
/// configured filter. Calling it twice keeps the first subscriber.
pub fn init_logging(config: &TelemetryConfig) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log_filter));
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match config.log_format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(fmt::layer().with_target(false).with_writer(std::io::stderr))
            .try_init(),
    };
    drop(installed);
}
