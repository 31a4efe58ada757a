//! The API: one module per gRPC service, the OpenAI-compatible REST routes
//! ([`openai`]), plus the routes every server carries.
//!
//! Handlers here are thin: convert wire types to domain types, call the domain, convert
//! back.

mod admin;
mod audit;
mod auth;
mod chat;
mod convert;
mod error;
mod login_http;
mod memory;
mod models;
mod openai;
mod ops_http;
mod pagination;
mod pending;

use std::sync::Arc;

pub use error::ApiError;
use pending::{Pending, PluginApi};
use tonic::service::Routes;

use crate::{
    audit::{AuditTrail, AuditWriter, CheckpointSigner},
    auth::{
        Authenticator, credential_cache::CredentialCache, directory::Directory,
        identity_providers::IdentityProviders, oidc::Sso, rbac::Rbac, replica_sync::ReplicaSync,
        sessions::Sessions,
    },
    cache::{Cache, SettingsChanges, rate_limit::RateLimiter},
    chat::{Accounting, Conversations, Generations, Generator, Idempotency, Profiles, Turns},
    crypto::Sealer,
    edge::{AuthLayer, Edge, EdgeParts},
    health::Readiness,
    inference::Registry,
    llm::Providers,
    memory::{LongTermMemory, WorkingMemory},
    model_catalog::Catalog,
    pb,
    platform::Platform,
    store::Database,
    telemetry::Metrics,
};

/// What the API needs from the rest of the server.
pub struct ApiContext {
    /// The database.
    pub db: Database,
    /// The policy decision point.
    pub rbac: Arc<Rbac>,
    /// Call rate limits.
    pub limiter: Arc<RateLimiter>,
    /// Login sessions.
    pub sessions: Sessions,
    /// SSO login.
    pub sso: Arc<Sso>,
    /// Seals secrets at rest.
    pub sealer: Sealer,
    /// Commits the audit events of calls.
    pub audit_writer: AuditWriter,
    /// The tenants' model providers.
    pub providers: Providers,
    /// Usage, budgets and reports.
    pub accounting: Accounting,
    /// Users' conversations.
    pub conversations: Conversations,
    /// Generates replies.
    pub generator: Generator,
    /// Local models.
    pub registry: Arc<Registry>,
    /// Tenants' own models and model changes across replicas.
    pub catalog: Arc<Catalog>,
    /// Users' long-term and episodic memories.
    pub long_term: LongTermMemory,
    /// Conversations' working state.
    pub working: WorkingMemory,
    /// Streamed generations, cancellable from any replica.
    pub generations: Generations,
    /// Redis: idempotency keys of chat calls.
    pub cache: Cache,
    /// Signs and checks audit checkpoints.
    pub signer: CheckpointSigner,
    /// Users, roles and custom policies.
    pub directory: Directory,
    /// The tenants' identity providers.
    pub identity_providers: IdentityProviders,
    /// The platform's floor under tenants' audit retention (days).
    pub min_retention_days: i32,
    /// Most working API keys one user may hold.
    pub max_keys_per_user: usize,
    /// Tells other replicas about access changes.
    pub replica_sync: Arc<ReplicaSync>,
    /// Tells other replicas about changes of tenants' chat settings.
    pub settings_changes: Arc<SettingsChanges>,
    /// Verified API keys, remembered briefly.
    pub credentials: Arc<CredentialCache>,
    /// Where the web console receives login codes.
    pub console_url: Option<String>,
    /// Where per-RPC metrics go.
    pub metrics: Arc<Metrics>,
    /// Dependency status for `/readyz`.
    pub readiness: Readiness,
    /// Browser origins allowed to use gRPC-Web.
    pub cors_allowed_origins: Vec<String>,
    /// Calls this replica runs at once before it sheds more.
    pub max_concurrent_calls: usize,
}

/// Everything served on the listener: the API services, health, reflection (v1 and
/// v1alpha, since common tools such as grpcurl 1.8 speak only v1alpha), the
/// OpenAI-compatible routes and the operator HTTP routes. gRPC calls (native or gRPC-Web,
/// translated first) pass through the RPC telemetry layer, the audit layer (one event per
/// call, fail closed) and then authentication, authorization and rate limiting; the
/// OpenAI-compatible routes pass the same audit and access layers; the operator routes
/// pass none.
///
/// # Panics
/// If the embedded descriptor sets do not decode, which would be a build defect.
pub fn routes(
    health: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
    context: ApiContext,
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

    let turns = Turns::new(
        context.generator.clone(),
        context.generations.clone(),
        Idempotency::new(context.cache.clone(), context.conversations.clone()),
    );
    let grpc = Routes::new(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(pb::v1::chat_service_server::ChatServiceServer::new({
            let profiles = Profiles::new(context.db.clone(), context.settings_changes.clone());
            chat::ChatApi::new(
                context.conversations.clone(),
                turns.clone(),
                context.generations.clone(),
                profiles,
            )
        }))
        .add_service(pb::v1::memory_service_server::MemoryServiceServer::new(
            memory::MemoryApi::new(context.long_term, context.working),
        ))
        .add_service(pb::v1::auth_service_server::AuthServiceServer::new(
            auth::AuthApi::new(
                context.db.clone(),
                context.rbac.clone(),
                context.sessions.clone(),
                context.sso.clone(),
                context.replica_sync.clone(),
                context.max_keys_per_user,
            ),
        ))
        .add_service(pb::v1::admin_service_server::AdminServiceServer::new(
            admin::AdminApi::new(
                context.identity_providers,
                context.directory,
                Platform::new(
                    context.db.clone(),
                    context.sessions.clone(),
                    context.replica_sync.clone(),
                    context.settings_changes.clone(),
                ),
                context.providers.clone(),
                context.accounting.clone(),
                Profiles::new(context.db.clone(), context.settings_changes.clone()),
            ),
        ))
        .add_service(Pending::<PluginApi>::new())
        .add_service(
            pb::v1::model_service_server::ModelServiceServer::new(models::ModelApi::new(
                context.registry.clone(),
                context.catalog,
            ))
            .max_decoding_message_size(models::MAX_MESSAGE_BYTES),
        )
        .add_service(pb::v1::audit_service_server::AuditServiceServer::new(
            audit::AuditApi::new(AuditTrail::new(
                context.db.clone(),
                context.signer,
                context.min_retention_days,
            )),
        ));
    let edge = Edge::new(EdgeParts {
        access: AuthLayer::new(
            Authenticator::new(context.db, context.sessions, context.credentials),
            context.rbac.clone(),
            context.limiter,
        ),
        audit_writer: context.audit_writer,
        metrics: context.metrics.clone(),
        max_concurrent_calls: context.max_concurrent_calls,
        cors_allowed_origins: context.cors_allowed_origins,
    });
    let grpc = edge.grpc(grpc.into_axum_router());
    let rest = edge.rest(openai::router(openai::OpenAiState {
        turns,
        accounting: context.accounting,
        providers: context.providers,
        registry: context.registry,
        rbac: context.rbac,
    }));
    Routes::from(
        grpc.merge(rest)
            .merge(ops_http::router(context.metrics, context.readiness))
            .merge(login_http::router(context.sso, context.console_url)),
    )
}
