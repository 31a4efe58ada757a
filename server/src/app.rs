//! The server application: built from a [`Config`], bound to its listener, run until a
//! shutdown signal. `main` and the tests use exactly this.

use std::{future::Future, net::SocketAddr, pin::Pin, sync::Arc};

use tokio::{
    net::TcpListener,
    sync::{oneshot, watch},
    task::JoinHandle,
};
use tonic::transport::{Server, server::TcpIncoming};

use crate::{
    api,
    audit::{AuditWriter, CheckpointJob, CheckpointSigner, RetentionJob, SigningKeyError},
    auth::{
        credential_cache::CredentialCache,
        directory::Directory,
        identity_providers::IdentityProviders,
        oidc::{LoginGuards, Sso},
        policy_adapter::PostgresPolicyAdapter,
        rbac::{Rbac, RbacError},
        replica_sync::{ReplicaSync, SyncError},
        sessions::Sessions,
    },
    cache::{Cache, CacheError, SettingsChanges, rate_limit::RateLimiter},
    chat::{
        Accounting, ContextAssembler, Conversations, FollowUps, Generations, Generator,
        MemoryWriter, ProfilePicker, SettingsCache, Titler, UsageWriter,
    },
    config::Config,
    crypto::{CryptoError, LocalMasterKey, Sealer},
    egress::Egress,
    health::HealthMonitor,
    inference::{Registry, TenantModels},
    jobs::{Handlers, Jobs, Workers},
    llm::{Breakers, Providers},
    memory::{LongTermMemory, MessageIndexer, WorkingMemory},
    model_catalog::{Catalog, files::ModelFiles},
    store::{Database, StoreError},
    telemetry::Metrics,
    tenant_deletion::TenantDeletion,
};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Postgres is unreachable, unsafe to use, or not migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Redis is unreachable or misconfigured.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}: {source}; choose another server.listen (--listen)")]
    Bind {
        /// The address tried.
        addr: SocketAddr,
        /// Why binding failed.
        source: std::io::Error,
    },
    /// The master key is missing or malformed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// No key to sign audit checkpoints with.
    #[error(transparent)]
    SigningKey(#[from] SigningKeyError),
    /// The access control engine could not start.
    #[error(transparent)]
    Rbac(#[from] RbacError),
    /// Custom policies could not be loaded.
    #[error("cannot load access policies: {0}")]
    Policies(#[from] SyncError),
    /// The HTTP client for identity providers could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
    /// The server failed while serving.
    #[error("server error: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// The egress policy of `config`: its allow-list (validated when the configuration was
/// loaded), and the addresses of the server's own Postgres and Redis, never reachable
/// for tenants.
async fn egress_policy(config: &Config) -> Egress {
    use secrecy::ExposeSecret;
    let mut own = Vec::new();
    let urls = [config.database.url.as_ref(), config.redis.url.as_ref()];
    for url in urls.into_iter().flatten() {
        let Ok(parsed) = url::Url::parse(url.expose_secret()) else {
            continue;
        };
        let default_port = match parsed.scheme() {
            "redis" | "rediss" => 6379,
            _ => 5432,
        };
        let port = parsed.port().unwrap_or(default_port);
        let Some(host) = parsed.host_str() else {
            continue;
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(found) = tokio::net::lookup_host((host, port)).await {
            own.extend(found);
        }
    }
    Egress::new(config.egress.networks().unwrap_or_default(), own)
}

/// A server ready to run: dependencies connected and checked, listener bound.
pub struct App {
    config: Config,
    sealer: Sealer,
    signer: CheckpointSigner,
    listener: TcpListener,
    db: Database,
    cache: Cache,
}

impl App {
    /// Connects to Postgres and Redis (checking both), then binds the listener.
    ///
    /// # Errors
    /// [`AppError`] naming what is wrong and how to fix it.
    pub async fn build(config: Config) -> Result<Self, AppError> {
        let master_key = config
            .crypto
            .master_key
            .as_ref()
            .ok_or(CryptoError::MasterKey(
                "is not set: generate one with `head -c 32 /dev/urandom | base64` and set \
                 CODEXCONTINUE_CRYPTO__MASTER_KEY",
            ))?;
        let sealer = Sealer::new(Arc::new(LocalMasterKey::from_base64(master_key)?));
        let signer = CheckpointSigner::from_config(&config)?;
        let db = Database::connect(&config.database).await?;
        let cache = Cache::connect(&config.redis).await?;
        let addr = config.server.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| AppError::Bind { addr, source })?;
        Ok(Self {
            config,
            sealer,
            signer,
            listener,
            db,
            cache,
        })
    }

    /// The bound address (the real port when the configuration asked for port 0).
    ///
    /// # Errors
    /// When the OS cannot report the socket's address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then reports NOT_SERVING, stops accepting, and
    /// lets in-flight calls finish for up to `server.shutdown_grace`.
    ///
    /// # Errors
    /// [`AppError::Serve`] when the server fails.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let Self {
            config,
            sealer,
            signer,
            listener,
            db,
            cache,
        } = self;
        let metrics = Arc::new(Metrics::new());
        let egress = egress_policy(&config).await;

        let (reporter, health_service) = tonic_health::server::health_reporter();
        let limiter = Arc::new(RateLimiter::new(cache.clone(), config.rate_limit.clone()));
        let rbac = Arc::new(Rbac::new(PostgresPolicyAdapter::new(db.clone())).await?);
        let credentials = Arc::new(CredentialCache::new(config.auth.credential_cache_ttl));
        let replica_sync = Arc::new(ReplicaSync::new(
            db.clone(),
            cache.clone(),
            rbac.clone(),
            credentials.clone(),
            limiter.clone(),
        ));
        replica_sync.load_all().await?;
        let sessions = Sessions::new(db.clone(), cache.clone(), config.auth.clone());
        let public_url = match &config.auth.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!(
                "http://{}",
                listener.local_addr().map_err(|source| AppError::Bind {
                    addr: config.server.listen,
                    source,
                })?
            ),
        };
        let sso = Sso::new(
            db.clone(),
            sealer.clone(),
            cache.clone(),
            sessions.clone(),
            config.auth.clone(),
            LoginGuards {
                egress: egress.clone(),
                limiter: limiter.clone(),
            },
            format!("{public_url}/auth/callback"),
        )
        .map_err(|err| AppError::Http(err.to_string()))?;
        let monitor =
            HealthMonitor::new(db.clone(), cache.clone(), reporter, config.health.clone());
        monitor.probe_now().await;
        let readiness = monitor.readiness();
        let health_shutdown = monitor.shutdown_handle();
        let mut background = Background::default();
        background.spawn(|stop| monitor.run(stop));
        let deletion = TenantDeletion::new(db.clone(), cache.clone());
        let interval = config.auth.tenant_deletion_interval;
        background.spawn(|stop| deletion.run(interval, stop));
        let checkpoints = CheckpointJob::new(db.clone(), signer.clone());
        let interval = config.audit.checkpoint_interval;
        background.spawn(|stop| checkpoints.run(interval, stop));
        let retention = RetentionJob::new(db.clone(), signer.clone());
        let interval = config.audit.retention_sweep_interval;
        background.spawn(|stop| retention.run(interval, stop));
        let sync = replica_sync.clone();
        background.spawn(|stop| sync.listen(stop));
        let generations = Generations::new(cache.clone());
        let cancellations = generations.clone();
        background.spawn(|stop| cancellations.listen(stop));
        let audit_writer = AuditWriter::start(&db, config.audit.writers, config.audit.max_batch);
        let model_files = match config.inference.tenant_models_folder() {
            Some(dir) => {
                let files = ModelFiles::new(db.clone(), sealer.clone(), dir.clone());
                files.prepare().map_err(|err| {
                    AppError::Http(format!(
                        "inference.tenant_models_dir {}: {err}",
                        dir.display()
                    ))
                })?;
                Some(Arc::new(files))
            }
            None => None,
        };
        let registry = {
            let config = config.inference.clone();
            let metrics = metrics.clone();
            let source = model_files
                .clone()
                .map(|files| files as Arc<dyn TenantModels>);
            Arc::new(
                tokio::task::spawn_blocking(move || Registry::open(&config, &metrics, source))
                    .await
                    .map_err(|err| AppError::Http(format!("loading models: {err}")))?,
            )
        };
        let fetched_models = model_files.clone();
        let catalog = Arc::new(Catalog::new(
            db.clone(),
            cache.clone(),
            registry.clone(),
            model_files,
            config.inference.clone(),
        ));
        let changes = catalog.clone();
        background.spawn(|stop| changes.listen(stop));
        let settings_changes = Arc::new(SettingsChanges::new(cache.clone()));
        let changes = settings_changes.clone();
        background.spawn(|stop| changes.listen(stop));
        let providers = Providers::new(
            db.clone(),
            sealer.clone(),
            egress.clone(),
            config.llm.platform_default.as_ref(),
            registry.clone(),
            settings_changes.clone(),
        )
        .map_err(|err| AppError::Http(err.to_string()))?;
        let (usage_writer, usage_task) = UsageWriter::start(db.clone());
        let accounting = Accounting::new(
            db.clone(),
            config.llm.prices.clone(),
            usage_writer,
            settings_changes.clone(),
        );
        let conversations = Conversations::new(db.clone(), sealer.clone(), cache.clone());
        let long_term = LongTermMemory::new(
            db.clone(),
            sealer.clone(),
            cache.clone(),
            registry.clone(),
            config.memory.clone(),
        );
        let generator = Generator::new(
            conversations.clone(),
            providers.clone(),
            accounting.clone(),
            Breakers::new(cache.clone(), config.llm.breaker),
            FollowUps::new(Jobs::new(cache.clone()), config.memory.clone()),
            ContextAssembler::new(
                ProfilePicker::new(registry.clone()),
                long_term.clone(),
                registry.clone(),
                config.memory.clone(),
            ),
            Arc::new(SettingsCache::new(
                config.llm.settings_cache_ttl,
                settings_changes.clone(),
            )),
        );
        let titler = Titler::new(
            db.clone(),
            sealer.clone(),
            conversations.clone(),
            generator.clone(),
            providers.clone(),
            accounting.clone(),
        );
        let handlers = Handlers {
            titles: titler,
            indexing: MessageIndexer::new(db.clone(), sealer.clone(), long_term.clone()),
            memories: MemoryWriter::new(
                db.clone(),
                conversations.clone(),
                generator.clone(),
                accounting.clone(),
                long_term.clone(),
            ),
        };
        let workers = Workers::new(
            cache.clone(),
            handlers,
            config.jobs.clone(),
            metrics.clone(),
        );
        background.spawn(|stop| workers.run(stop));

        let working = WorkingMemory::new(
            db.clone(),
            sealer.clone(),
            cache.clone(),
            config.memory.clone(),
        );
        let (draining, drain_started) = oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            tracing::info!("shutdown requested: not serving, draining in-flight calls");
            health_shutdown.not_serving().await;
            let _ = draining.send(());
        };

        let routes = api::routes(
            health_service,
            api::ApiContext {
                db: db.clone(),
                rbac: rbac.clone(),
                directory: Directory::new(
                    db.clone(),
                    sessions.clone(),
                    replica_sync.clone(),
                    rbac.clone(),
                    config.auth.max_custom_policies,
                ),
                identity_providers: IdentityProviders::new(
                    db.clone(),
                    sealer.clone(),
                    egress.clone(),
                ),
                min_retention_days: config.audit.min_retention_days,
                max_keys_per_user: config.auth.max_keys_per_user,
                replica_sync,
                settings_changes,
                credentials,
                limiter,
                sessions: sessions.clone(),
                sso: Arc::new(sso),
                sealer,
                audit_writer,
                providers,
                accounting,
                conversations,
                generator,
                registry,
                catalog,
                long_term,
                working,
                generations,
                cache: cache.clone(),
                signer,
                console_url: config.auth.console_url.clone(),
                metrics,
                readiness,
                cors_allowed_origins: config.server.cors_allowed_origins.clone(),
                max_concurrent_calls: config.server.max_concurrent_calls,
            },
        );
        let server = Server::builder()
            .accept_http1(true)
            .timeout(config.server.request_timeout)
            .concurrency_limit_per_connection(config.server.max_concurrent_requests_per_connection)
            .layer(crate::edge::request_ids())
            .add_routes(routes)
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                signal,
            );

        let grace = config.server.shutdown_grace;
        let result = tokio::select! {
            result = server => result.map_err(AppError::from),
            () = async {
                if drain_started.await.is_ok() {
                    tokio::time::sleep(grace).await;
                } else {
                    std::future::pending::<()>().await;
                }
            } => {
                tracing::warn!(?grace, "shutdown grace elapsed: cutting off the calls still running");
                Ok(())
            }
        };
        background.stop().await;
        // Every holder of the usage writer is gone once the calls and jobs are: record
        // what it still holds (bounded by the grace period, for a call still streaming).
        if tokio::time::timeout(grace, usage_task.finished())
            .await
            .is_err()
        {
            tracing::warn!("usage events still queued at shutdown were not recorded");
        }
        if let Some(files) = fetched_models {
            files.remove();
        }
        db.close().await;
        tracing::info!("stopped");
        result
    }
}

/// The server's background jobs, all told to stop at once at shutdown.
struct Background {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Default for Background {
    fn default() -> Self {
        Self {
            stop: watch::channel(false).0,
            tasks: Vec::new(),
        }
    }
}

impl Background {
    /// Spawns the job `start` makes, handing it the future that resolves at shutdown.
    fn spawn<J>(&mut self, start: impl FnOnce(Pin<Box<dyn Future<Output = ()> + Send>>) -> J)
    where
        J: Future<Output = ()> + Send + 'static,
    {
        let mut stopped = self.stop.subscribe();
        let stop = Box::pin(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        });
        self.tasks.push(tokio::spawn(start(stop)));
    }

    /// Tells every job to stop and waits for them.
    async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
