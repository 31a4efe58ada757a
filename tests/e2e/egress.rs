//! One outbound-address policy for every URL a tenant chooses: loopback, link-local,
//! metadata, private and unspecified addresses (and names resolving to them) are refused
//! with the field and the setting that would allow them; the allow-list admits; the
//! server's own Postgres stays refused; and the policy holds when the call is made, not
//! only when the URL is saved.

use codexcontinue::pb::v1::{
    EntraAuth, IdentityProvider, Provider, ProviderKind, SetIdentityProviderRequest,
    SetProviderRequest, admin_service_client::AdminServiceClient,
};
use codexcontinue_tests::{
    ServerOptions, TestDatabase, TestServer,
    grpc::{authorized, bad_field},
};
use tonic::Code;

use super::chat_fixture::{self, KEY};

/// A server with no addresses allowed beyond the public internet.
async fn strict_server() -> TestServer {
    TestServer::spawn(
        TestDatabase::migrated().await,
        ServerOptions {
            env: vec![("CODEXCONTINUE_EGRESS__ALLOW".into(), "[]".into())],
            redis_url: None,
        },
    )
    .await
}

fn provider(endpoint: &str) -> SetProviderRequest {
    SetProviderRequest {
        provider: Some(Provider {
            name: "target".into(),
            kind: ProviderKind::OpenaiCompatible.into(),
            endpoint: endpoint.into(),
            models: vec!["echo-1".into()],
            ..Provider::default()
        }),
        credential: KEY.into(),
    }
}

#[tokio::test]
async fn every_internal_address_class_is_refused_with_its_field() {
    let server = strict_server().await;
    let mut admin = AdminServiceClient::new(server.channel().await);
    let key = &server.owner_key;
    for endpoint in [
        "http://127.0.0.1:8080/v1",
        "http://localhost:8080/v1",
        "http://[::1]/v1",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.7/v1",
        "http://192.168.1.1/v1",
        "http://0.0.0.0/v1",
        "http://[::ffff:127.0.0.1]/v1",
        "http://224.0.0.1/v1",
        // A credential in the URL would reach logs, audit details and listings.
        "https://user:sk-in-url@93.184.216.34/v1",
    ] {
        let refused = admin
            .set_provider(authorized(key, provider(endpoint)))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{endpoint}");
        assert_eq!(bad_field(&refused), "provider.endpoint", "{endpoint}");
        assert!(
            refused.message().contains("egress.allow") || refused.message().contains("password"),
            "{refused:?}"
        );
    }
    let entra = SetProviderRequest {
        provider: Some(Provider {
            name: "azure".into(),
            kind: ProviderKind::AzureOpenai.into(),
            endpoint: "https://93.184.216.34".into(),
            api_version: "2024-10-21".into(),
            entra: Some(EntraAuth {
                tenant_id: "contoso".into(),
                client_id: "app".into(),
                authority: "http://169.254.169.254".into(),
                scope: String::new(),
            }),
            ..Provider::default()
        }),
        credential: "secret".into(),
    };
    let refused = admin
        .set_provider(authorized(key, entra))
        .await
        .unwrap_err();
    assert_eq!(bad_field(&refused), "provider.entra.authority");
    let idp = admin
        .set_identity_provider(authorized(
            key,
            SetIdentityProviderRequest {
                identity_provider: Some(IdentityProvider {
                    issuer_url: "http://localhost:9000".into(),
                    client_id: "codexcontinue".into(),
                    allowed_email_domains: vec!["*".into()],
                    ..IdentityProvider::default()
                }),
                client_secret: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_field(&idp), "identity_provider.issuer_url");
}

#[tokio::test]
async fn the_allow_list_admits_but_never_the_servers_own_database() {
    let mut chat = chat_fixture::setup().await;
    // The suite's servers allow 127.0.0.0/8 (the stand-in provider listens there).
    let reply = {
        let conversation = chat.conversation("cloud/echo-1").await;
        chat.send(&conversation, "hello", "").await.unwrap()
    };
    assert_eq!(reply.reply.unwrap().content, "Echo: hello");
    let postgres = url::Url::parse(&chat.server.db.app_url).unwrap();
    let endpoint = format!(
        "http://{}:{}/v1",
        postgres.host_str().unwrap(),
        postgres.port().unwrap_or(5432)
    );
    let refused = chat
        .admin
        .set_provider(authorized(&chat.server.owner_key, provider(&endpoint)))
        .await
        .unwrap_err();
    assert_eq!(bad_field(&refused), "provider.endpoint");
    assert!(refused.message().contains("own database"), "{refused:?}");
}

#[tokio::test]
async fn the_policy_holds_when_the_call_is_made() {
    // Saved while the operator allowed loopback; a replica started without that
    // allowance refuses to connect there.
    let mut chat = chat_fixture::setup().await;
    let conversation = chat.conversation("cloud/echo-1").await;
    let strict = chat
        .server
        .replica_with(vec![
            ("CODEXCONTINUE_EGRESS__ALLOW".into(), "[]".into()),
            ("CODEXCONTINUE_JOBS__WORKERS".into(), "0".into()),
        ])
        .await;
    let mut client =
        codexcontinue::pb::v1::chat_service_client::ChatServiceClient::new(strict.channel().await);
    let refused =
        chat_fixture::send_message(&mut client, &strict.owner_key, &conversation, "hello", "")
            .await
            .unwrap_err();
    assert_ne!(refused.code(), Code::Ok);
    assert!(
        chat.upstream.requests().is_empty(),
        "nothing reached the upstream"
    );
}
