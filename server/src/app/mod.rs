//! The server application: built from a [`Config`], bound to its listener, run until a
//! shutdown signal. `main` and the tests use exactly this. The services are wired in
//! [`wiring`], the background work they need runs in a [`background::Background`].

mod background;
mod wiring;

use std::{future::Future, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use tokio::{net::TcpListener, sync::oneshot};
use tonic::transport::{Server, server::TcpIncoming};

use crate::{
    api,
    audit::{CheckpointSigner, SigningKeyError},
    auth::{rbac::RbacError, replica_sync::SyncError},
    cache::{Cache, CacheError},
    config::Config,
    crypto::{CryptoError, LocalMasterKey, Sealer},
    egress::Egress,
    llm::ProviderError,
    store::{Database, StoreError},
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
    #[error("cannot build the HTTP client for identity providers: {0}")]
    HttpClient(reqwest::Error),
    /// The platform's model provider could not be set up.
    #[error("llm.platform_default: {0}")]
    PlatformProvider(#[from] ProviderError),
    /// The folder tenant models are fetched into cannot be prepared.
    #[error("inference.tenant_models_dir {}: {source}", dir.display())]
    ModelsFolder {
        /// The folder.
        dir: PathBuf,
        /// Why it cannot be used.
        source: std::io::Error,
    },
    /// Loading the local models stopped abnormally.
    #[error("loading models: {0}")]
    ModelsLoad(tokio::task::JoinError),
    /// The WebAssembly sandbox could not start.
    #[error("WebAssembly plugins: {0}")]
    Sandbox(codexcontinue_sandbox::SandboxError),
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

/// What the server is built on, connected and checked before it binds.
struct Dependencies {
    db: Database,
    cache: Cache,
    sealer: Sealer,
    signer: CheckpointSigner,
    egress: Egress,
}

/// A server ready to run: dependencies connected and checked, listener bound.
pub struct App {
    config: Config,
    deps: Dependencies,
    listener: TcpListener,
}

impl App {
    /// Connects to Postgres and Redis (checking both; keys of Redis's earlier layout are
    /// moved into the current one), then binds the listener.
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
        cache.adopt_untagged_keys().await;
        let egress = egress_policy(&config).await;
        let addr = config.server.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| AppError::Bind { addr, source })?;
        Ok(Self {
            config,
            deps: Dependencies {
                db,
                cache,
                sealer,
                signer,
                egress,
            },
            listener,
        })
    }

    /// The bound address (the real port when the configuration asked for port 0).
    ///
    /// # Errors
    /// When the OS cannot report the socket's address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then reports NOT_SERVING, keeps accepting for
    /// `server.drain_delay`, stops accepting, and lets in-flight calls finish for up to
    /// `server.shutdown_grace`.
    ///
    /// # Errors
    /// [`AppError`] when a service cannot be set up or the server fails.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let Self {
            config,
            deps,
            listener,
        } = self;
        let public_url = self_url(&config, &listener)?;
        let (reporter, health) = tonic_health::server::health_reporter();
        let wired = wiring::wire(&config, &deps, reporter, &public_url).await?;
        let routes = if config.server.role.serves_api() {
            api::routes(health, wired.services, &wired.edge)
        } else {
            api::worker_routes(health, wired.services.ops)
        };
        tracing::info!(role = ?config.server.role, "replica role");
        let (draining, drain_started) = oneshot::channel::<()>();
        let health_shutdown = wired.health_shutdown;
        let drain_delay = config.server.drain_delay;
        let signal = async move {
            shutdown.await;
            tracing::info!(
                ?drain_delay,
                "shutdown requested: not serving; still accepting calls for the drain delay"
            );
            health_shutdown.not_serving().await;
            tokio::time::sleep(drain_delay).await;
            tracing::info!("no longer accepting calls; draining in-flight calls");
            let _ = draining.send(());
        };
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
            () = grace_after(drain_started, grace) => {
                tracing::warn!(?grace, "shutdown grace elapsed: cutting off the calls still running");
                Ok(())
            }
        };
        wired.background.stop().await;
        // Every holder of the usage writer is gone once the calls and jobs are: record
        // what it still holds (bounded by the grace period, for a call still streaming).
        if tokio::time::timeout(grace, wired.usage_task.finished())
            .await
            .is_err()
        {
            tracing::warn!("usage events still queued at shutdown were not recorded");
        }
        if let Some(files) = wired.model_files {
            files.remove();
        }
        deps.db.close().await;
        tracing::info!("stopped");
        result
    }
}

/// Where this server is reached: `auth.public_url`, else the bound address.
fn self_url(config: &Config, listener: &TcpListener) -> Result<String, AppError> {
    Ok(match &config.auth.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => format!(
            "http://{}",
            listener.local_addr().map_err(|source| AppError::Bind {
                addr: config.server.listen,
                source,
            })?
        ),
    })
}

/// Resolves `grace` after draining started; never when it does not.
async fn grace_after(drain_started: oneshot::Receiver<()>, grace: Duration) {
    if drain_started.await.is_ok() {
        tokio::time::sleep(grace).await;
    } else {
        std::future::pending::<()>().await;
    }
}
