//! Azure OpenAI with Microsoft Entra ID: the server gets tokens with the client
//! credentials flow, keeps them until they near expiry, and names the setting to fix
//! when Entra refuses.

use codexcontinue::pb::v1::{EntraAuth, Provider, ProviderKind, SetProviderRequest};
use codexcontinue_tests::{
    grpc::{authorized, bad_field},
    llm_upstream::ENTRA_CLIENT_ID,
};
use tonic::Code;

use super::chat_fixture::{Chat, KEY, setup};

fn azure(
    t: &Chat,
    entra: Option<EntraAuth>,
    kind: ProviderKind,
    secret: &str,
) -> SetProviderRequest {
    SetProviderRequest {
        provider: Some(Provider {
            name: "azure-entra".into(),
            kind: kind.into(),
            endpoint: t.upstream.base(),
            api_version: "2024-10-21".into(),
            entra,
            ..Provider::default()
        }),
        credential: secret.into(),
    }
}

fn registration(t: &Chat, client_id: &str) -> Option<EntraAuth> {
    Some(EntraAuth {
        tenant_id: "contoso.onmicrosoft.com".into(),
        client_id: client_id.into(),
        authority: format!("{}/", t.upstream.base()),
        scope: String::new(),
    })
}

#[tokio::test]
async fn azure_openai_calls_carry_entra_tokens_fetched_once() {
    let mut t = setup().await;
    let key = t.server.owner_key.clone();
    let request = azure(
        &t,
        registration(&t, ENTRA_CLIENT_ID),
        ProviderKind::AzureOpenai,
        KEY,
    );
    let saved = t
        .admin
        .set_provider(authorized(&key, request))
        .await
        .unwrap()
        .into_inner()
        .provider
        .unwrap();
    let entra = saved.entra.unwrap();
    assert_eq!(entra.authority, t.upstream.base(), "trailing slash trimmed");
    assert_eq!(entra.scope, "https://cognitiveservices.azure.com/.default");
    assert!(saved.credential_set);

    let conversation = t.conversation("azure-entra/gpt-4o").await;
    for content in ["first", "second"] {
        let reply = t
            .send(&conversation, content, "")
            .await
            .unwrap()
            .reply
            .unwrap();
        assert_eq!(reply.content, format!("Echo: {content}"));
    }
    let sent = t.upstream.requests().pop().unwrap();
    assert!(
        sent.credential.starts_with("Bearer eyJ"),
        "{}",
        sent.credential
    );
    assert_eq!(sent.path, "/openai/deployments/gpt-4o/chat/completions");
    assert_eq!(t.upstream.entra_tokens_issued(), 1, "the token is reused");

    // A wrong secret: Entra refuses, the caller learns which settings to check.
    let request = azure(
        &t,
        registration(&t, ENTRA_CLIENT_ID),
        ProviderKind::AzureOpenai,
        "not-the-secret",
    );
    t.admin
        .set_provider(authorized(&key, request))
        .await
        .unwrap();
    let refused = t.send(&conversation, "third", "").await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    let message = refused.message();
    assert!(
        message.contains("invalid_client") && message.contains("AADSTS7000215"),
        "{message}"
    );
    assert!(
        message.contains("client_id") && !message.contains("Trace ID"),
        "{message}"
    );
    assert!(!message.contains("not-the-secret"), "{message}");

    // Another registration without a new secret: the old secret is not sent to it.
    let request = azure(
        &t,
        registration(&t, "another-app"),
        ProviderKind::AzureOpenai,
        "",
    );
    let saved = t
        .admin
        .set_provider(authorized(&key, request))
        .await
        .unwrap()
        .into_inner()
        .provider
        .unwrap();
    assert!(!saved.credential_set);
    let missing = t.send(&conversation, "fourth", "").await.unwrap_err();
    assert_eq!(missing.code(), Code::FailedPrecondition);
    assert!(
        missing.message().contains("no client secret"),
        "{}",
        missing.message()
    );
}

#[tokio::test]
async fn entra_settings_are_checked() {
    let mut t = setup().await;
    let key = t.server.owner_key.clone();
    let cases = [
        (
            azure(
                &t,
                registration(&t, ENTRA_CLIENT_ID),
                ProviderKind::Ollama,
                KEY,
            ),
            "provider.entra",
        ),
        (
            azure(&t, registration(&t, ""), ProviderKind::AzureOpenai, KEY),
            "provider.entra.client_id",
        ),
        (
            azure(
                &t,
                Some(EntraAuth {
                    tenant_id: "contoso/../x".into(),
                    ..registration(&t, ENTRA_CLIENT_ID).unwrap()
                }),
                ProviderKind::AzureOpenai,
                KEY,
            ),
            "provider.entra.tenant_id",
        ),
        (
            azure(
                &t,
                Some(EntraAuth {
                    authority: "login.microsoftonline.com".into(),
                    ..registration(&t, ENTRA_CLIENT_ID).unwrap()
                }),
                ProviderKind::AzureOpenai,
                KEY,
            ),
            "provider.entra.authority",
        ),
    ];
    for (request, field) in cases {
        let status = t
            .admin
            .set_provider(authorized(&key, request))
            .await
            .unwrap_err();
        assert_eq!(bad_field(&status), field);
    }
}

#[tokio::test]
async fn a_token_lifetime_that_overflows_the_clock_is_survived() {
    let mut t = setup().await;
    let key = t.server.owner_key.clone();
    t.upstream.set_entra_expires_in(u64::MAX);
    let request = azure(
        &t,
        registration(&t, ENTRA_CLIENT_ID),
        ProviderKind::AzureOpenai,
        KEY,
    );
    t.admin
        .set_provider(authorized(&key, request))
        .await
        .unwrap();
    let conversation = t.conversation("azure-entra/gpt-4o").await;
    for content in ["first", "second"] {
        let reply = t
            .send(&conversation, content, "")
            .await
            .unwrap()
            .reply
            .unwrap();
        assert_eq!(reply.content, format!("Echo: {content}"));
    }
}
