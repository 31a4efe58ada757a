//! What the chat tests share: a server with the acme tenant, a local stand-in model
//! provider registered as `cloud`, and helpers to configure providers and aliases and to
//! send messages.

use codexcontinue::pb::v1::{
    CreateConversationRequest, GenerationOptions, ModelRoute, PhiPolicy, Provider, ProviderKind,
    RouteTarget, SendMessageRequest, SendMessageResponse, SetModelRouteRequest, SetProviderRequest,
    TenantSettings, UpdateTenantRequest, admin_service_client::AdminServiceClient,
    chat_service_client::ChatServiceClient,
};
use codexcontinue_tests::{TestServer, grpc::authorized, llm_upstream::LlmUpstream};
use tonic::transport::Channel;

pub const KEY: &str = "sk-test-upstream";

pub struct Chat {
    pub server: TestServer,
    pub upstream: LlmUpstream,
    pub chat: ChatServiceClient<Channel>,
    pub admin: AdminServiceClient<Channel>,
}

pub async fn set_provider(
    admin: &mut AdminServiceClient<Channel>,
    key: &str,
    name: &str,
    base: &str,
    on_premises: bool,
) {
    admin
        .set_provider(authorized(
            key,
            SetProviderRequest {
                provider: Some(Provider {
                    name: name.into(),
                    kind: ProviderKind::OpenaiCompatible.into(),
                    endpoint: base.into(),
                    models: vec![
                        "echo-1".into(),
                        "slow".into(),
                        "looping".into(),
                        "escaping".into(),
                        "stall".into(),
                        "rate-limited".into(),
                        "broken".into(),
                        "ailing".into(),
                        "flaky".into(),
                        "flood".into(),
                        "huge-error".into(),
                    ],
                    on_premises,
                    ..Provider::default()
                }),
                credential: KEY.into(),
            },
        ))
        .await
        .unwrap();
}

pub async fn setup() -> Chat {
    setup_with(Vec::new()).await
}

/// A chat server with configuration overrides `env`. Its job workers are off (so title
/// jobs do not add model calls to what a test counts) unless `env` turns them on.
pub async fn setup_with(env: Vec<(String, String)>) -> Chat {
    let mut settings = vec![("CODEXCONTINUE_JOBS__WORKERS".to_owned(), "0".to_owned())];
    settings.extend(env);
    let server = TestServer::spawn(
        codexcontinue_tests::TestDatabase::migrated().await,
        codexcontinue_tests::ServerOptions {
            env: settings,
            redis_url: None,
        },
    )
    .await;
    let upstream = LlmUpstream::start(KEY).await;
    let channel = server.channel().await;
    let mut admin = AdminServiceClient::new(channel.clone());
    set_provider(
        &mut admin,
        &server.owner_key,
        "cloud",
        &upstream.openai_base(),
        false,
    )
    .await;
    Chat {
        chat: ChatServiceClient::new(channel),
        admin,
        server,
        upstream,
    }
}

/// Sets the default PHI policy of `server`'s tenant, as its owner.
pub async fn set_tenant_phi_policy(server: &TestServer, policy: PhiPolicy) {
    AdminServiceClient::new(server.channel().await)
        .update_tenant(authorized(
            &server.owner_key,
            UpdateTenantRequest {
                settings: Some(TenantSettings {
                    phi_policy: policy.into(),
                    rate_limits: None,
                }),
                ..UpdateTenantRequest::default()
            },
        ))
        .await
        .unwrap();
}

impl Chat {
    /// Sets the tenant's default PHI policy, as its owner.
    pub async fn set_tenant_phi_policy(&mut self, policy: PhiPolicy) {
        set_tenant_phi_policy(&self.server, policy).await;
    }

    /// Registers the stand-in upstream as an Ollama server `name` on the premises.
    pub async fn add_ollama(&mut self, name: &str) {
        self.admin
            .set_provider(authorized(
                &self.server.owner_key,
                SetProviderRequest {
                    provider: Some(Provider {
                        name: name.into(),
                        kind: ProviderKind::Ollama.into(),
                        endpoint: self.upstream.base(),
                        on_premises: true,
                        ..Provider::default()
                    }),
                    credential: String::new(),
                },
            ))
            .await
            .unwrap();
    }

    pub async fn conversation(&mut self, model: &str) -> String {
        create_conversation(&mut self.chat, &self.server.owner_key, "", model).await
    }

    pub async fn send(
        &mut self,
        conversation: &str,
        content: &str,
        model: &str,
    ) -> Result<SendMessageResponse, tonic::Status> {
        send_message(
            &mut self.chat,
            &self.server.owner_key,
            conversation,
            content,
            model,
        )
        .await
    }
}

/// Creates a conversation as `key` with `profile` and `model` (empty: the defaults); its id.
pub async fn create_conversation(
    chat: &mut ChatServiceClient<Channel>,
    key: &str,
    profile: &str,
    model: &str,
) -> String {
    chat.create_conversation(authorized(
        key,
        CreateConversationRequest {
            profile: profile.into(),
            model: model.into(),
            ..CreateConversationRequest::default()
        },
    ))
    .await
    .unwrap()
    .into_inner()
    .conversation
    .unwrap()
    .id
}

/// Sends `content` in `conversation` as `key`, asking `model` (empty: the conversation's).
pub async fn send_message(
    chat: &mut ChatServiceClient<Channel>,
    key: &str,
    conversation: &str,
    content: &str,
    model: &str,
) -> Result<SendMessageResponse, tonic::Status> {
    chat.send_message(authorized(
        key,
        SendMessageRequest {
            conversation_id: conversation.into(),
            content: content.into(),
            options: Some(GenerationOptions {
                model: model.into(),
                ..GenerationOptions::default()
            }),
            idempotency_key: String::new(),
        },
    ))
    .await
    .map(tonic::Response::into_inner)
}

/// (provider, model).
pub type Target<'a> = (&'a str, &'a str);

pub async fn set_route(
    admin: &mut AdminServiceClient<Channel>,
    key: &str,
    alias: &str,
    targets: &[Target<'_>],
    private_only: bool,
    max_retries: i32,
) -> Result<(), tonic::Status> {
    admin
        .set_model_route(authorized(
            key,
            SetModelRouteRequest {
                route: Some(ModelRoute {
                    alias: alias.into(),
                    targets: targets
                        .iter()
                        .map(|(provider, model)| RouteTarget {
                            provider: (*provider).into(),
                            model: (*model).into(),
                        })
                        .collect(),
                    private_only,
                    timeout_ms: 0,
                    max_retries,
                }),
            },
        ))
        .await
        .map(drop)
}
