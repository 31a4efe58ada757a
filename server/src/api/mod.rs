//! The API: one module per gRPC service, the OpenAI-compatible REST routes
//! ([`openai`]), plus the routes every server carries.
//!
//! Handlers here are thin: convert wire types to domain types, call the domain, convert
//! back.

mod admin;
mod audit;
mod auth;
mod chat;
mod console_http;
mod convert;
mod login_http;
mod memory;
mod models;
mod openai;
mod ops_http;
mod pagination;
mod plugins;

use std::sync::Arc;

use tonic::service::Routes;

use crate::{
    audit::AuditTrail,
    auth::{
        directory::Directory, identity_providers::IdentityProviders, key_management::ApiKeys,
        oidc::Sso, rbac::Rbac, sessions::Sessions,
    },
    chat::{Conversations, Generations, Profiles, Turns},
    edge::Edge,
    health::Readiness,
    inference::Registry,
    llm::Providers,
    memory::{LongTermMemory, WorkingMemory},
    model_catalog::Catalog,
    pb,
    platform::Platform,
    plugins::Plugins,
    telemetry::Metrics,
    usage::Accounting,
};

/// The domain services the API adapts, grouped by wing; built once by the composition
/// root (`app`).
pub struct Services {
    /// Who may call, and the tenants they belong to.
    pub identity: IdentityWing,
    /// Conversations and their turns.
    pub chat: ChatWing,
    /// Model providers, local models and tenants' own models.
    pub models: ModelWing,
    /// Users' memories.
    pub memory: MemoryWing,
    /// Usage, budgets and reports.
    pub usage: Accounting,
    /// Tenants' plugins.
    pub plugins: Plugins,
    /// Tenants' audit trails.
    pub audit: AuditTrail,
    /// What operators watch.
    pub ops: OpsWing,
}

/// Identity and access, and the tenant lifecycle.
pub struct IdentityWing {
    /// Users' API keys.
    pub keys: ApiKeys,
    /// The policy decision point.
    pub rbac: Arc<Rbac>,
    /// Login sessions.
    pub sessions: Sessions,
    /// SSO login.
    pub sso: Arc<Sso>,
    /// Users, roles and custom policies.
    pub directory: Directory,
    /// The tenants' identity providers.
    pub identity_providers: IdentityProviders,
    /// The tenant lifecycle.
    pub platform: Platform,
    /// Where the web console receives login codes.
    pub console_url: Option<String>,
    /// The web console's built files, served at `/console/`.
    pub console_dir: Option<std::path::PathBuf>,
}

/// Conversations, turns and domain profiles.
pub struct ChatWing {
    /// Users' conversations.
    pub conversations: Conversations,
    /// Conducts chat turns.
    pub turns: Turns,
    /// Streamed generations, cancellable from any replica.
    pub generations: Generations,
    /// Domain profiles.
    pub profiles: Profiles,
}

/// Models: providers and aliases, local models, tenants' own models.
pub struct ModelWing {
    /// The tenants' model providers.
    pub providers: Providers,
    /// Local models.
    pub registry: Arc<Registry>,
    /// Tenants' own models.
    pub catalog: Arc<Catalog>,
}

/// Users' long-term memories and conversations' working state.
pub struct MemoryWing {
    /// Long-term and episodic memories.
    pub long_term: LongTermMemory,
    /// Conversations' working state.
    pub working: WorkingMemory,
}

/// What operators watch.
pub struct OpsWing {
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Dependency status for `/readyz`.
    pub readiness: Readiness,
}

/// What a worker replica (`server.role = "worker"`) serves: gRPC health, readiness and
/// metrics, nothing of the API.
pub fn worker_routes(
    health: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
    ops: OpsWing,
) -> Routes {
    Routes::from(
        Routes::new(health)
            .into_axum_router()
            .merge(ops_http::router(ops.metrics, ops.readiness)),
    )
}

/// Everything served on the listener, behind `edge`: the API services, health,
/// reflection (v1 and v1alpha, since common tools such as grpcurl 1.8 speak only
/// v1alpha) and the OpenAI-compatible routes; plus the operator and login HTTP routes and
/// the web console's files, which pass no edge layer.
///
/// # Panics
/// If the embedded descriptor sets do not decode, which would be a build defect.
pub fn routes(
    health: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
    services: Services,
    edge: &Edge,
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
    let Services {
        identity,
        chat: conversing,
        models: modelling,
        memory: remembering,
        usage,
        plugins: tools,
        audit: trail,
        ops,
    } = services;
    let grpc = Routes::new(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(pb::v1::chat_service_server::ChatServiceServer::new(
            chat::ChatApi::new(
                conversing.conversations,
                conversing.turns.clone(),
                conversing.generations,
                conversing.profiles.clone(),
            ),
        ))
        .add_service(pb::v1::memory_service_server::MemoryServiceServer::new(
            memory::MemoryApi::new(remembering.long_term, remembering.working),
        ))
        .add_service(pb::v1::auth_service_server::AuthServiceServer::new(
            auth::AuthApi::new(
                identity.keys,
                identity.sessions,
                identity.sso.clone(),
                identity.rbac.clone(),
            ),
        ))
        .add_service(pb::v1::admin_service_server::AdminServiceServer::new(
            admin::AdminApi::new(
                identity.identity_providers,
                identity.directory,
                identity.platform,
                modelling.providers.clone(),
                usage.clone(),
                conversing.profiles,
            ),
        ))
        .add_service(
            pb::v1::plugin_service_server::PluginServiceServer::new(plugins::PluginApi::new(tools))
                .max_decoding_message_size(plugins::MAX_MESSAGE_BYTES),
        )
        .add_service(
            pb::v1::model_service_server::ModelServiceServer::new(models::ModelApi::new(
                modelling.registry.clone(),
                modelling.catalog,
            ))
            .max_decoding_message_size(models::MAX_MESSAGE_BYTES),
        )
        .add_service(pb::v1::audit_service_server::AuditServiceServer::new(
            audit::AuditApi::new(trail),
        ));
    let rest = openai::router(openai::OpenAiState {
        turns: conversing.turns,
        accounting: usage,
        providers: modelling.providers,
        registry: modelling.registry,
        rbac: identity.rbac,
    });
    let mut router = edge
        .grpc(grpc.into_axum_router())
        .merge(edge.rest(rest))
        .merge(ops_http::router(ops.metrics, ops.readiness))
        .merge(login_http::router(identity.sso, identity.console_url));
    if let Some(dir) = &identity.console_dir {
        router = router.merge(console_http::router(dir));
    }
    Routes::from(router)
}
