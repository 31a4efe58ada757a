//! Prometheus metrics, served in the OpenMetrics text format on `/metrics`.

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

/// Labels of a finished RPC.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandledLabels {
    grpc_service: String,
    grpc_method: String,
    grpc_code: String,
}

/// Labels of an RPC method.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    grpc_service: String,
    grpc_method: String,
}

/// Labels of a finished background job.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    kind: String,
    outcome: String,
}

/// Labels of a job kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobKindLabels {
    kind: String,
}

/// Labels of a model.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    model: String,
}

type LatencyFamily = Family<MethodLabels, Histogram, fn() -> Histogram>;
type BatchFamily = Family<ModelLabels, Histogram, fn() -> Histogram>;
type JobLatencyFamily = Family<JobKindLabels, Histogram, fn() -> Histogram>;

/// The server's metrics registry and the instruments every layer records into. One per
/// process, shared behind an `Arc`.
pub struct Metrics {
    registry: Registry,
    rpc_handled: Family<HandledLabels, Counter>,
    rpc_latency: LatencyFamily,
    jobs: Family<JobLabels, Counter>,
    job_latency: JobLatencyFamily,
    inference_batch: BatchFamily,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates the registry with every instrument registered.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let rpc_handled = Family::<HandledLabels, Counter>::default();
        registry.register(
            "grpc_server_handled",
            "RPCs completed on the server, by status code",
            rpc_handled.clone(),
        );
        let rpc_latency: LatencyFamily = Family::new_with_constructor(|| {
            // 1 ms .. ~33 s
            Histogram::new(exponential_buckets(0.001, 2.0, 16))
        });
        registry.register(
            "grpc_server_handling_seconds",
            "Time from request to final status (whole stream for streaming RPCs)",
            rpc_latency.clone(),
        );
        let jobs = Family::<JobLabels, Counter>::default();
        registry.register(
            "jobs",
            "Background job runs by outcome: done, skipped, retry, duplicate (already done), \
             dead (moved to the dead letters)",
            jobs.clone(),
        );
        let job_latency: JobLatencyFamily =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.0, 18)));
        registry.register(
            "job_duration_seconds",
            "Time a background job ran",
            job_latency.clone(),
        );
        let inference_batch: BatchFamily = Family::new_with_constructor(|| {
            Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0])
        });
        registry.register(
            "inference_batch_size",
            "Texts per model call (requests batched together)",
            inference_batch.clone(),
        );
        Self {
            registry,
            rpc_handled,
            rpc_latency,
            jobs,
            job_latency,
            inference_batch,
        }
    }

    /// Records one model call on a batch of `size` items.
    pub fn record_inference_batch(&self, model: &str, size: usize) {
        #[allow(clippy::cast_precision_loss)]
        self.inference_batch
            .get_or_create(&ModelLabels {
                model: model.to_owned(),
            })
            .observe(size as f64);
    }

    /// Records one run of a background job.
    pub fn record_job(&self, kind: &str, outcome: &str, seconds: f64) {
        self.jobs
            .get_or_create(&JobLabels {
                kind: kind.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        if matches!(outcome, "done" | "skipped" | "retry") {
            self.job_latency
                .get_or_create(&JobKindLabels {
                    kind: kind.to_owned(),
                })
                .observe(seconds);
        }
    }

    /// Records one finished RPC.
    pub fn record_rpc(&self, service: &str, method: &str, code: tonic::Code, seconds: f64) {
        self.rpc_handled
            .get_or_create(&HandledLabels {
                grpc_service: service.to_owned(),
                grpc_method: method.to_owned(),
                grpc_code: format!("{code:?}"),
            })
            .inc();
        self.rpc_latency
            .get_or_create(&MethodLabels {
                grpc_service: service.to_owned(),
                grpc_method: method.to_owned(),
            })
            .observe(seconds);
    }

    /// Renders every metric in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
