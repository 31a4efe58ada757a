//! The platform's model provider: offered to every tenant, read-only for them, serving the
//! `default` alias of tenants without one, replaced by a tenant provider of its name.

use codexcontinue::pb::v1::{
    CreateConversationRequest, DeleteProviderRequest, GenerationOptions, ListProvidersRequest,
    ProviderKind, SendMessageRequest, SendMessageResponse,
    admin_service_client::AdminServiceClient, chat_service_client::ChatServiceClient,
};
use codexcontinue_tests::{TestServer, grpc::authorized, llm_upstream::LlmUpstream};
use tonic::{Code, transport::Channel};

use super::chat_fixture::{KEY, set_provider, set_route};

async fn send(
    chat: &mut ChatServiceClient<Channel>,
    key: &str,
    conversation: &str,
    model: &str,
) -> Result<SendMessageResponse, tonic::Status> {
    chat.send_message(authorized(
        key,
        SendMessageRequest {
            conversation_id: conversation.into(),
            content: "hi".into(),
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

#[tokio::test]
async fn the_platform_provider_serves_tenants_until_they_configure_their_own() {
    let upstream = LlmUpstream::start(KEY).await;
    let env = [
        ("NAME", "shared".to_owned()),
        ("KIND", "openai_compatible".to_owned()),
        ("ENDPOINT", upstream.openai_base()),
        ("CREDENTIAL", KEY.to_owned()),
        ("MODELS", r#"["echo-1", "broken"]"#.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (format!("CODEXCONTINUE_LLM__PLATFORM_DEFAULT__{k}"), v))
    .chain([("CODEXCONTINUE_JOBS__WORKERS".to_owned(), "0".to_owned())])
    .collect();
    let server = TestServer::with_env(env).await;
    let key = server.owner_key.clone();
    let channel = server.channel().await;
    let mut admin = AdminServiceClient::new(channel.clone());
    let mut chat = ChatServiceClient::new(channel);
    let list = |admin: &mut AdminServiceClient<Channel>| {
        let mut admin = admin.clone();
        let key = key.clone();
        async move {
            admin
                .list_providers(authorized(&key, ListProvidersRequest::default()))
                .await
                .unwrap()
                .into_inner()
                .providers
        }
    };

    let providers = list(&mut admin).await;
    assert_eq!(providers.len(), 1);
    let platform = &providers[0];
    assert_eq!(platform.name, "shared");
    assert!(platform.platform_default && platform.credential_set);
    assert_eq!(platform.kind(), ProviderKind::OpenaiCompatible);
    assert_eq!(platform.models, ["echo-1", "broken"]);

    let conversation = chat
        .create_conversation(authorized(&key, CreateConversationRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .conversation
        .unwrap()
        .id;
    let reply = send(&mut chat, &key, &conversation, "").await.unwrap();
    assert_eq!(
        reply.reply.unwrap().model_used,
        "shared/echo-1",
        "the default alias"
    );
    assert_eq!(upstream.requests()[0].credential, format!("Bearer {KEY}"));
    let broken = send(&mut chat, &key, &conversation, "shared/broken")
        .await
        .unwrap_err();
    assert_eq!(broken.code(), Code::Unavailable);
    let unknown = send(&mut chat, &key, &conversation, "turbo")
        .await
        .unwrap_err();
    assert!(
        unknown.message().contains("aliases: default"),
        "{}",
        unknown.message()
    );

    // The tenant's own alias and provider take precedence; deleting its provider brings
    // the platform's back.
    set_route(
        &mut admin,
        &key,
        "default",
        &[("shared", "broken")],
        false,
        0,
    )
    .await
    .unwrap();
    let own_alias = send(&mut chat, &key, &conversation, "").await.unwrap_err();
    assert_eq!(own_alias.code(), Code::Unavailable);
    set_provider(&mut admin, &key, "shared", &upstream.openai_base(), true).await;
    let providers = list(&mut admin).await;
    assert_eq!(providers.len(), 1);
    assert!(!providers[0].platform_default && providers[0].on_premises);
    let delete = |name: &str| DeleteProviderRequest { name: name.into() };
    admin
        .delete_provider(authorized(&key, delete("shared")))
        .await
        .unwrap();
    assert!(list(&mut admin).await[0].platform_default);
    let platform_only = admin
        .delete_provider(authorized(&key, delete("shared")))
        .await
        .unwrap_err();
    assert_eq!(
        platform_only.code(),
        Code::NotFound,
        "read-only for tenants"
    );
}
