//! Logs and Prometheus metrics: the subscriber set up at start, and the metrics registry
//! `/metrics` serves. The per-call span, log line and metric sample are taken at the edge
//! (`edge::telemetry`).

mod metrics;

pub use metrics::{FinishedRpc, Metrics};

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
