//! The composition root: every service of the server built once, wing by wing (identity,
//! models, memory, usage, plugins, chat, audit), the request edge, and the background work each
//! wing needs, started in one place.

use std::sync::Arc;

use codexcontinue_sandbox::{Limits, Sandbox};
use tonic_health::server::HealthReporter;

use super::{AppError, Dependencies, background::Background};
use crate::{
    api::{ChatWing, IdentityWing, MemoryWing, ModelWing, OpsWing, Services},
    audit::{AuditTrail, AuditWriter, CheckpointJob, RetentionJob},
    auth::{
        Authenticator,
        credential_cache::CredentialCache,
        directory::Directory,
        identity_providers::IdentityProviders,
        key_management::ApiKeys,
        oidc::{LoginGuards, Sso},
        policy_adapter::PostgresPolicyAdapter,
        rbac::Rbac,
        replica_sync::ReplicaSync,
        sessions::Sessions,
    },
    cache::{SettingsChanges, rate_limit::RateLimiter},
    chat::{
        ContextAssembler, Conversations, FollowUps, Generations, Generator, Idempotency,
        MemoryWriter, ProfilePicker, Profiles, SettingsCache, Titler, Turns,
    },
    config::Config,
    edge::{AuthLayer, Edge, EdgeParts},
    health::{HealthMonitor, HealthShutdown},
    inference::{Registry, TenantModels},
    jobs::{Handlers, Jobs, Workers},
    llm::{Breakers, Providers},
    memory::{LongTermMemory, MessageIndexer, WorkingMemory},
    model_catalog::{Catalog, files::ModelFiles},
    platform::Platform,
    plugins::{Means, Plugins, transport::wasm},
    telemetry::Metrics,
    tenant_deletion::TenantDeletion,
    usage::{Accounting, UsageWriter, UsageWriterTask},
};

/// The server, wired: what the API serves, the edge in front of it, and what runs beside
/// it until shutdown.
pub(super) struct Wired {
    /// The services the API adapts.
    pub services: Services,
    /// The layers every call passes.
    pub edge: Edge,
    /// Background work, stopped at shutdown.
    pub background: Background,
    /// Flushes queued usage events at shutdown.
    pub usage_task: UsageWriterTask,
    /// The folder tenant models are fetched into, removed at shutdown.
    pub model_files: Option<Arc<ModelFiles>>,
    /// Reports NOT_SERVING when shutdown starts.
    pub health_shutdown: HealthShutdown,
}

/// What every wing is built on.
struct Ground<'a> {
    config: &'a Config,
    deps: &'a Dependencies,
    metrics: Arc<Metrics>,
    settings_changes: Arc<SettingsChanges>,
}

/// Identity and access, with what the edge needs of it.
struct Identity {
    wing: IdentityWing,
    access: AuthLayer,
}

/// Builds every service from `config` on `deps`, reporting health through `reporter`;
/// SSO callbacks come back to `public_url`.
///
/// # Errors
/// [`AppError`] when policies cannot be loaded or a service cannot be set up.
pub(super) async fn wire(
    config: &Config,
    deps: &Dependencies,
    reporter: HealthReporter,
    public_url: &str,
) -> Result<Wired, AppError> {
    let metrics = Arc::new(Metrics::new());
    let mut background = Background::default();
    let monitor = HealthMonitor::new(
        deps.db.clone(),
        deps.cache.clone(),
        reporter,
        config.health.clone(),
    );
    monitor.probe_now().await;
    let readiness = monitor.readiness();
    let health_shutdown = monitor.shutdown_handle();
    background.spawn(|stop| monitor.run(stop));
    let settings_changes = Arc::new(SettingsChanges::new(deps.cache.clone()));
    let changes = settings_changes.clone();
    background.spawn(|stop| changes.listen(stop));

    let ground = Ground {
        config,
        deps,
        metrics: metrics.clone(),
        settings_changes: settings_changes.clone(),
    };
    let identity = identity(&ground, public_url, &mut background).await?;
    if config.server.role.runs_background_work() {
        audit_passes(config, deps, &mut background);
    }
    let (models, model_files) = models(&ground, &mut background).await?;
    let (usage_writer, usage_task) = UsageWriter::start(deps.db.clone());
    let usage = Accounting::new(
        deps.db.clone(),
        config.llm.prices.clone(),
        usage_writer,
        settings_changes.clone(),
    );
    let memory = MemoryWing {
        long_term: LongTermMemory::new(
            deps.db.clone(),
            deps.sealer.clone(),
            deps.cache.clone(),
            models.registry.clone(),
            config.memory.clone(),
        ),
        working: WorkingMemory::new(
            deps.db.clone(),
            deps.sealer.clone(),
            deps.cache.clone(),
            config.memory.clone(),
        ),
    };
    let plugins = plugins(
        &ground,
        identity.wing.rbac.clone(),
        memory.working.clone(),
        &mut background,
    )?;
    let chat = chat(&ground, &models, &memory, &usage, &plugins, &mut background);
    let edge = Edge::new(EdgeParts {
        access: identity.access,
        audit_writer: AuditWriter::start(&deps.db, config.audit.writers, config.audit.max_batch),
        metrics: metrics.clone(),
        max_concurrent_calls: config.server.max_concurrent_calls,
        cors_allowed_origins: config.server.cors_allowed_origins.clone(),
    });
    Ok(Wired {
        services: Services {
            identity: identity.wing,
            chat,
            models,
            memory,
            usage,
            plugins,
            audit: AuditTrail::new(
                deps.db.clone(),
                deps.signer.clone(),
                config.audit.min_retention_days,
            ),
            ops: OpsWing { metrics, readiness },
        },
        edge,
        background,
        usage_task,
        model_files,
        health_shutdown,
    })
}

/// Access control, sessions, SSO, users and the tenant lifecycle; access changes from
/// other replicas are followed in the background.
async fn identity(
    ground: &Ground<'_>,
    public_url: &str,
    background: &mut Background,
) -> Result<Identity, AppError> {
    let Ground {
        config,
        deps,
        settings_changes,
        ..
    } = ground;
    let (db, cache) = (&deps.db, &deps.cache);
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
    let sync = replica_sync.clone();
    background.spawn(|stop| sync.listen(stop));
    if config.server.role.runs_background_work() {
        let deletion = TenantDeletion::new(db.clone(), cache.clone());
        let interval = config.auth.tenant_deletion_interval;
        background.spawn(|stop| deletion.run(interval, stop));
    }
    let sessions = Sessions::new(db.clone(), cache.clone(), config.auth.clone());
    let sso = Sso::new(
        db.clone(),
        deps.sealer.clone(),
        cache.clone(),
        sessions.clone(),
        config.auth.clone(),
        LoginGuards {
            egress: deps.egress.clone(),
            limiter: limiter.clone(),
        },
        format!("{public_url}/auth/callback"),
    )
    .map_err(AppError::HttpClient)?;
    let access = AuthLayer::new(
        Authenticator::new(db.clone(), sessions.clone(), credentials),
        rbac.clone(),
        limiter,
    );
    Ok(Identity {
        wing: IdentityWing {
            keys: ApiKeys::new(
                db.clone(),
                rbac.clone(),
                replica_sync.clone(),
                config.auth.max_keys_per_user,
            ),
            directory: Directory::new(
                db.clone(),
                sessions.clone(),
                replica_sync.clone(),
                rbac.clone(),
                config.auth.max_custom_policies,
            ),
            identity_providers: IdentityProviders::new(
                db.clone(),
                deps.sealer.clone(),
                deps.egress.clone(),
            ),
            platform: Platform::new(
                db.clone(),
                sessions.clone(),
                replica_sync.clone(),
                settings_changes.clone(),
            ),
            rbac,
            sessions,
            sso: Arc::new(sso),
            console_url: config.auth.console_url.clone().or_else(|| {
                config
                    .server
                    .console_dir
                    .as_ref()
                    .map(|_| format!("{public_url}/console/"))
            }),
            console_dir: config.server.console_dir.clone(),
        },
        access,
    })
}

/// The audit trail's periodic passes: signed checkpoints and retention.
fn audit_passes(config: &Config, deps: &Dependencies, background: &mut Background) {
    let checkpoints = CheckpointJob::new(deps.db.clone(), deps.signer.clone());
    let interval = config.audit.checkpoint_interval;
    background.spawn(|stop| checkpoints.run(interval, stop));
    let retention = RetentionJob::new(deps.db.clone(), deps.signer.clone());
    let interval = config.audit.retention_sweep_interval;
    background.spawn(|stop| retention.run(interval, stop));
}

/// Local models (loaded now, off the async runtime), tenants' own models (their changes
/// followed in the background) and the tenants' model providers.
async fn models(
    ground: &Ground<'_>,
    background: &mut Background,
) -> Result<(ModelWing, Option<Arc<ModelFiles>>), AppError> {
    let Ground {
        config,
        deps,
        metrics,
        settings_changes,
    } = ground;
    let model_files = match config.inference.tenant_models_folder() {
        Some(dir) => {
            let files = ModelFiles::new(deps.db.clone(), deps.sealer.clone(), dir.clone());
            files
                .prepare()
                .map_err(|source| AppError::ModelsFolder { dir, source })?;
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
                .map_err(AppError::ModelsLoad)?,
        )
    };
    let catalog = Arc::new(Catalog::new(
        deps.db.clone(),
        deps.cache.clone(),
        registry.clone(),
        model_files.clone(),
        config.inference.clone(),
    ));
    let changes = catalog.clone();
    background.spawn(|stop| changes.listen(stop));
    let providers = Providers::new(
        deps.db.clone(),
        deps.sealer.clone(),
        deps.egress.clone(),
        config.llm.platform_default.as_ref(),
        registry.clone(),
        settings_changes.clone(),
    )?;
    let wing = ModelWing {
        providers,
        registry,
        catalog,
    };
    Ok((wing, model_files))
}

/// The tenants' plugins, their manifests read again on a schedule.
fn plugins(
    ground: &Ground<'_>,
    rbac: Arc<Rbac>,
    working: WorkingMemory,
    background: &mut Background,
) -> Result<Plugins, AppError> {
    let settings = &ground.config.plugins;
    let sandbox = Sandbox::new(Limits {
        fuel: settings.wasm_fuel,
        memory_bytes: settings.wasm_memory_bytes,
        max_component_bytes: settings.wasm_max_component_bytes,
        ..Limits::default()
    })
    .map_err(AppError::Sandbox)?;
    let means = Means {
        egress: ground.deps.egress.clone(),
        sandbox: Arc::new(wasm::Runtime::new(
            sandbox,
            settings.wasm_max_concurrent_calls,
        )),
    };
    let plugins = Plugins::new(
        ground.deps.db.clone(),
        ground.deps.sealer.clone(),
        means,
        rbac,
        Breakers::new(
            ground.deps.cache.clone(),
            ground.config.llm.breaker,
            ground.metrics.clone(),
        ),
        working,
        ground.config.plugins.clone(),
    );
    if ground.config.server.role.runs_background_work() {
        let refresher = plugins.clone();
        let every = ground.config.plugins.refresh_interval;
        background.spawn(move |stop| async move {
            crate::periodic::every("plugin manifest refresh", every, stop, || async {
                refresher.refresh_due(every, 100).await.map(drop)
            })
            .await;
        });
    }
    Ok(plugins)
}

/// Conversations and their turns (offering the tools of the profile's plugins), and the
/// job workers that follow a turn (titles, memory indexing, facts and summaries).
fn chat(
    ground: &Ground<'_>,
    models: &ModelWing,
    memory: &MemoryWing,
    usage: &Accounting,
    plugins: &Plugins,
    background: &mut Background,
) -> ChatWing {
    let Ground {
        config,
        deps,
        metrics,
        settings_changes,
    } = ground;
    let (db, cache, sealer) = (&deps.db, &deps.cache, &deps.sealer);
    let conversations = Conversations::new(db.clone(), sealer.clone(), cache.clone());
    let generator = Generator::new(
        conversations.clone(),
        models.providers.clone(),
        usage.clone(),
        Breakers::new(cache.clone(), config.llm.breaker, metrics.clone()),
        FollowUps::new(Jobs::new(cache.clone()), config.memory.clone()),
        ContextAssembler::new(
            ProfilePicker::new(models.registry.clone()),
            memory.long_term.clone(),
            models.registry.clone(),
            config.memory.clone(),
        ),
        Arc::new(SettingsCache::new(
            config.llm.settings_cache_ttl,
            settings_changes.clone(),
        )),
        plugins.clone(),
    );
    let handlers = Handlers {
        titles: Titler::new(
            db.clone(),
            sealer.clone(),
            conversations.clone(),
            generator.clone(),
            models.providers.clone(),
            usage.clone(),
        ),
        indexing: MessageIndexer::new(db.clone(), sealer.clone(), memory.long_term.clone()),
        memories: MemoryWriter::new(
            db.clone(),
            conversations.clone(),
            generator.clone(),
            usage.clone(),
            memory.long_term.clone(),
        ),
    };
    let workers = Workers::new(
        cache.clone(),
        handlers,
        config.jobs.clone(),
        metrics.clone(),
    );
    if config.server.role.runs_background_work() {
        background.spawn(|stop| workers.run(stop));
    }
    let generations = Generations::new(cache.clone());
    let cancellations = generations.clone();
    background.spawn(|stop| cancellations.listen(stop));
    ChatWing {
        turns: Turns::new(
            generator,
            generations.clone(),
            Idempotency::new(cache.clone(), conversations.clone()),
        ),
        profiles: Profiles::new(db.clone(), settings_changes.clone()),
        conversations,
        generations,
    }
}
