//! Dependency probes behind `grpc.health.v1.Health` and `/readyz`.
//!
//! A background task probes Postgres and Redis every `health.probe_interval`. While both
//! answer, the overall status ("") and every API service are SERVING; when either fails
//! they become NOT_SERVING, so load balancers stop sending traffic until it recovers.
//! Shutdown marks everything NOT_SERVING before draining.

use std::{sync::Arc, time::Duration};

use tokio::sync::watch;
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{cache::Cache, config::HealthConfig, edge::API_SERVICES, store::Database};

/// Result of one round of probes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ProbeResult {
    postgres_ok: bool,
    redis_ok: bool,
}

impl ProbeResult {
    fn serving(&self) -> bool {
        self.postgres_ok && self.redis_ok
    }
}

/// The latest readiness, cheap to clone and read from request handlers.
#[derive(Clone)]
pub struct Readiness(watch::Receiver<ProbeResult>);

impl Readiness {
    /// `None` when ready, else the names of the dependencies that do not answer.
    pub fn unavailable(&self) -> Option<String> {
        let state = self.0.borrow();
        let down: Vec<&str> = [("postgres", state.postgres_ok), ("redis", state.redis_ok)]
            .into_iter()
            .filter_map(|(name, ok)| (!ok).then_some(name))
            .collect();
        (!down.is_empty()).then(|| down.join(", "))
    }
}

/// Runs the probes and publishes what they find.
pub struct HealthMonitor {
    db: Database,
    cache: Cache,
    reporter: HealthReporter,
    config: HealthConfig,
    sender: Arc<watch::Sender<ProbeResult>>,
}

impl HealthMonitor {
    /// A monitor that reports into `reporter`; nothing is SERVING until the first probe.
    pub fn new(db: Database, cache: Cache, reporter: HealthReporter, config: HealthConfig) -> Self {
        let (sender, _) = watch::channel(ProbeResult::default());
        Self {
            db,
            cache,
            reporter,
            config,
            sender: Arc::new(sender),
        }
    }

    /// The readiness view for HTTP handlers.
    pub fn readiness(&self) -> Readiness {
        Readiness(self.sender.subscribe())
    }

    /// Probes once and publishes the result.
    pub async fn probe_now(&self) {
        let timeout = self.config.probe_timeout;
        let (postgres, redis) = tokio::join!(
            within(timeout, self.db.ping()),
            within(timeout, self.cache.ping()),
        );
        let result = ProbeResult {
            postgres_ok: report("postgres", postgres),
            redis_ok: report("redis", redis),
        };
        let serving = result.serving();
        let previous = self.sender.send_replace(result.clone());
        if previous != result {
            if serving {
                tracing::info!("dependencies answer: serving");
            }
            // /readyz (above) changes before gRPC health, so a client that saw the gRPC
            // status change finds /readyz agreeing.
            self.set_all(if serving {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            })
            .await;
        }
    }

    /// Probes every interval until `stop` resolves.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        let mut ticker = tokio::time::interval(self.config.probe_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = ticker.tick() => self.probe_now().await,
            }
        }
    }

    /// A handle that can mark everything NOT_SERVING at shutdown.
    pub fn shutdown_handle(&self) -> HealthShutdown {
        HealthShutdown {
            reporter: self.reporter.clone(),
            sender: self.sender.clone(),
        }
    }

    async fn set_all(&self, status: ServingStatus) {
        set_all(&self.reporter, status).await;
    }
}

/// Marks the server NOT_SERVING when it begins to shut down.
pub struct HealthShutdown {
    reporter: HealthReporter,
    sender: Arc<watch::Sender<ProbeResult>>,
}

impl HealthShutdown {
    /// Reports NOT_SERVING everywhere, including `/readyz`.
    pub async fn not_serving(&self) {
        set_all(&self.reporter, ServingStatus::NotServing).await;
        self.sender.send_replace(ProbeResult::default());
    }
}

async fn set_all(reporter: &HealthReporter, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    for service in API_SERVICES {
        reporter.set_service_status(service, status).await;
    }
}

async fn within<E: std::fmt::Display>(
    timeout: Duration,
    probe: impl std::future::Future<Output = Result<(), E>>,
) -> Result<(), String> {
    match tokio::time::timeout(timeout, probe).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

fn report(dependency: &str, result: Result<(), String>) -> bool {
    match result {
        Ok(()) => true,
        Err(reason) => {
            tracing::warn!(dependency, %reason, "health probe failed: not serving");
            false
        }
    }
}
