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
    grpc_type: &'static str,
    grpc_service: String,
    grpc_method: String,
    grpc_code: String,
}

/// A status code's canonical name (`OK`, `INVALID_ARGUMENT`, …), as gRPC dashboards and
/// alert rules expect in `grpc_code`.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Labels of an RPC method.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    grpc_type: &'static str,
    grpc_service: String,
    grpc_method: String,
}

/// One finished RPC, as metrics see it.
#[derive(Debug, Clone, Copy)]
pub struct FinishedRpc<'a> {
    /// `unary`, `client_stream`, `server_stream` or `bidi_stream` (`http` for the
    /// OpenAI-compatible routes).
    pub kind: &'static str,
    /// The service.
    pub service: &'a str,
    /// The method.
    pub method: &'a str,
    /// How it ended.
    pub code: tonic::Code,
    /// How long it took.
    pub seconds: f64,
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

/// Labels of a circuit breaker transition.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BreakerLabels {
    to: &'static str,
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
    generated_tokens: Family<ModelLabels, Counter>,
    breaker_transitions: Family<BreakerLabels, Counter>,
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
        let generated_tokens = Family::<ModelLabels, Counter>::default();
        registry.register(
            "inference_generated_tokens",
            "Tokens generated by local language models (cancelled generations included)",
            generated_tokens.clone(),
        );
        let breaker_transitions = Family::<BreakerLabels, Counter>::default();
        registry.register(
            "llm_breaker_transitions",
            "Circuit breaker transitions of providers and plugins, by the state entered: \
             open (skipped), half_open (one probe let through), closed (answering again)",
            breaker_transitions.clone(),
        );
        Self {
            registry,
            rpc_handled,
            rpc_latency,
            jobs,
            job_latency,
            inference_batch,
            generated_tokens,
            breaker_transitions,
        }
    }

    /// Records `count` tokens generated by `model`.
    pub fn record_generated_tokens(&self, model: &str, count: usize) {
        self.generated_tokens
            .get_or_create(&ModelLabels {
                model: model.to_owned(),
            })
            .inc_by(u64::try_from(count).unwrap_or(u64::MAX));
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

    /// Records a circuit breaker entering state `to` (`open`, `half_open`, `closed`).
    pub fn record_breaker(&self, to: &'static str) {
        self.breaker_transitions
            .get_or_create(&BreakerLabels { to })
            .inc();
    }

    /// Records one finished RPC.
    pub fn record_rpc(&self, rpc: FinishedRpc<'_>) {
        self.rpc_handled
            .get_or_create(&HandledLabels {
                grpc_type: rpc.kind,
                grpc_service: rpc.service.to_owned(),
                grpc_method: rpc.method.to_owned(),
                grpc_code: code_name(rpc.code).to_owned(),
            })
            .inc();
        self.rpc_latency
            .get_or_create(&MethodLabels {
                grpc_type: rpc.kind,
                grpc_service: rpc.service.to_owned(),
                grpc_method: rpc.method.to_owned(),
            })
            .observe(rpc.seconds);
    }

    /// Renders every metric in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_carry_their_canonical_names() {
        let codes = (0..=16).map(tonic::Code::from_i32);
        let names: Vec<&str> = codes.map(code_name).collect();
        assert_eq!(names[0], "OK");
        assert_eq!(names[3], "INVALID_ARGUMENT");
        assert_eq!(names[16], "UNAUTHENTICATED");
        let mut distinct = names.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 17);
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        );
    }
}
