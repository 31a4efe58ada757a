//! Authentication and authorization on every RPC: deny by default, per-role permissions,
//! API key lifecycle, and tenant isolation through the API.

use codexcontinue::edge::ApiCatalog;
use codexcontinue_tests::{
    TestServer,
    grpc::{authorized, call_empty, key_with_roles},
};
use tonic::Code;
use tonic_types::StatusExt;

use codexcontinue::pb::v1::{
    CreateApiKeyRequest, ListApiKeysRequest, RevokeApiKeyRequest, WhoAmIRequest,
    auth_service_client::AuthServiceClient,
};

/// Methods anyone may call without credentials.
fn is_public(service: &str, method: &str) -> bool {
    service.starts_with("grpc.")
        || matches!(method, "StartLogin" | "CompleteLogin" | "ExchangeLoginCode")
}

#[tokio::test]
async fn every_non_public_rpc_refuses_missing_and_bad_credentials() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let catalog = ApiCatalog::served();
    let mut checked = 0;
    for service in catalog.services() {
        for method in catalog.methods(service) {
            if is_public(service, method) {
                continue;
            }
            let path = format!("/{service}/{method}");
            for metadata in [
                &[][..],
                &[("authorization", "Bearer cc_live_0000")],
                &[("authorization", "Basic dXNlcjpwYXNz")],
            ] {
                let status = call_empty(channel.clone(), &path, metadata)
                    .await
                    .unwrap_err();
                assert_eq!(status.code(), Code::Unauthenticated, "{path} {metadata:?}");
            }
            checked += 1;
        }
    }
    assert!(checked > 70, "checked {checked}");
}

#[tokio::test]
async fn who_am_i_names_the_bootstrap_owner() {
    let server = TestServer::start().await;
    let mut auth = AuthServiceClient::new(server.channel().await);
    let me = auth
        .who_am_i(authorized(&server.owner_key, WhoAmIRequest {}))
        .await
        .unwrap()
        .into_inner()
        .principal
        .unwrap();
    assert_eq!(me.tenant_slug, "acme");
    assert_eq!(me.email, "owner@acme.example");
    assert_eq!(me.roles, ["owner"]);
    assert!(!me.api_key_id.is_empty());
}

/// (method path, roles allowed). Every other built-in role is denied.
const ROLE_TABLE: &[(&str, &[&str])] = &[
    (
        "/codexcontinue.v1.ChatService/ListConversations",
        &["owner", "admin", "member", "viewer"],
    ),
    (
        "/codexcontinue.v1.ChatService/SendMessage",
        &["owner", "admin", "member"],
    ),
    (
        "/codexcontinue.v1.ChatService/DeleteConversation",
        &["owner", "admin", "member"],
    ),
    (
        "/codexcontinue.v1.MemoryService/Recall",
        &["owner", "admin", "member", "viewer"],
    ),
    (
        "/codexcontinue.v1.MemoryService/Forget",
        &["owner", "admin", "member"],
    ),
    (
        "/codexcontinue.v1.AuthService/WhoAmI",
        &["owner", "admin", "member", "viewer", "auditor"],
    ),
    (
        "/codexcontinue.v1.AdminService/ListUsers",
        &["owner", "admin", "auditor"],
    ),
    (
        "/codexcontinue.v1.AdminService/GrantRole",
        &["owner", "admin"],
    ),
    (
        "/codexcontinue.v1.AdminService/SetIdentityProvider",
        &["owner"],
    ),
    (
        "/codexcontinue.v1.AdminService/GetUsageReport",
        &["owner", "admin", "auditor"],
    ),
    ("/codexcontinue.v1.AdminService/CreateTenant", &[]),
    ("/codexcontinue.v1.AdminService/SuspendTenant", &[]),
    (
        "/codexcontinue.v1.PluginService/InvokePlugin",
        &["owner", "admin", "member"],
    ),
    (
        "/codexcontinue.v1.PluginService/RegisterPlugin",
        &["owner", "admin"],
    ),
    (
        "/codexcontinue.v1.ModelService/Embed",
        &["owner", "admin", "member"],
    ),
    (
        "/codexcontinue.v1.ModelService/RegisterModel",
        &["owner", "admin"],
    ),
    (
        "/codexcontinue.v1.AuditService/ListAuditEvents",
        &["owner", "admin", "auditor"],
    ),
    (
        "/codexcontinue.v1.AuditService/SetRetentionPolicy",
        &["owner"],
    ),
];

#[tokio::test]
async fn each_builtin_role_is_allowed_exactly_its_rpcs() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    for role in ["owner", "admin", "member", "viewer", "auditor"] {
        let key = key_with_roles(server.channel().await, &server.owner_key, &[role]).await;
        let authorization = format!("Bearer {key}");
        for (path, allowed) in ROLE_TABLE {
            let result =
                call_empty(channel.clone(), path, &[("authorization", &authorization)]).await;
            let denied = matches!(&result, Err(s) if s.code() == Code::PermissionDenied);
            assert_eq!(
                denied,
                !allowed.contains(&role),
                "{role} {path}: {result:?}"
            );
            if let Err(status) = &result {
                assert_ne!(status.code(), Code::Unauthenticated, "{role} {path}");
            }
        }
    }
}

#[tokio::test]
async fn api_keys_are_scoped_listed_and_revoked() {
    let server = TestServer::start().await;
    let mut auth = AuthServiceClient::new(server.channel().await);

    // A member cannot mint a key with more rights than they have.
    let member = key_with_roles(server.channel().await, &server.owner_key, &["member"]).await;
    let escalate = auth
        .create_api_key(authorized(
            &member,
            CreateApiKeyRequest {
                name: "escalate".into(),
                roles: vec!["admin".into()],
                expire_time: None,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(escalate.code(), Code::PermissionDenied, "{escalate:?}");

    // Nobody mints platform keys through the API, not even the owner.
    let platform = auth
        .create_api_key(authorized(
            &server.owner_key,
            CreateApiKeyRequest {
                name: "platform".into(),
                roles: vec!["platform-admin".into()],
                expire_time: None,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(platform.code(), Code::PermissionDenied);

    // Bad input names the field.
    let bad = auth
        .create_api_key(authorized(
            &server.owner_key,
            CreateApiKeyRequest {
                name: " ".into(),
                roles: vec![],
                expire_time: None,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let violations = bad
        .get_error_details()
        .bad_request()
        .unwrap()
        .field_violations
        .clone();
    assert_eq!(violations[0].field, "name");
    let past = auth
        .create_api_key(authorized(
            &server.owner_key,
            CreateApiKeyRequest {
                name: "old".into(),
                roles: vec![],
                expire_time: Some(prost_types::Timestamp {
                    seconds: 1,
                    nanos: 0,
                }),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(past.code(), Code::InvalidArgument);

    // Keys belong to the user who made them: the member-role key acts for the owner's
    // user, so both list that user's two keys.
    let list = |key: String| {
        let mut auth = auth.clone();
        async move {
            auth.list_api_keys(authorized(&key, ListApiKeysRequest::default()))
                .await
                .unwrap()
                .into_inner()
                .api_keys
        }
    };
    let mine = list(member.clone()).await;
    assert_eq!(mine.len(), 2);
    let member_record = mine
        .iter()
        .find(|k| member.starts_with(&k.prefix))
        .expect("the member key is listed")
        .clone();
    assert_eq!(member_record.roles, ["member"]);
    assert_eq!(list(server.owner_key.clone()).await.len(), 2);

    // Paging walks every key exactly once.
    for _ in 0..3 {
        key_with_roles(server.channel().await, &server.owner_key, &["viewer"]).await;
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = auth
            .list_api_keys(authorized(
                &server.owner_key,
                ListApiKeysRequest {
                    page_size: 2,
                    page_token: token,
                    include_inactive: false,
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(page.api_keys.len() <= 2);
        seen.extend(page.api_keys.into_iter().map(|k| k.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (5, 5));

    // Revocation works at once; the revoked key is refused.
    let revoked = auth
        .revoke_api_key(authorized(
            &server.owner_key,
            RevokeApiKeyRequest {
                api_key_id: member_record.id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .api_key
        .unwrap();
    assert!(revoked.revoke_time.is_some());
    let refused = auth
        .who_am_i(authorized(&member, WhoAmIRequest {}))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert!(refused.message().contains("revoked"), "{refused:?}");
}

#[tokio::test]
async fn tenants_cannot_see_or_touch_each_others_keys() {
    let server = TestServer::start().await;
    let other = server.add_tenant("globex").await;
    let mut auth = AuthServiceClient::new(server.channel().await);
    let acme_keys = auth
        .list_api_keys(authorized(&server.owner_key, ListApiKeysRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .api_keys;
    let globex_keys = auth
        .list_api_keys(authorized(&other, ListApiKeysRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .api_keys;
    assert_eq!((acme_keys.len(), globex_keys.len()), (1, 1));
    assert_ne!(acme_keys[0].id, globex_keys[0].id);

    // Globex's owner cannot revoke Acme's key: it does not exist for them.
    let err = auth
        .revoke_api_key(authorized(
            &other,
            RevokeApiKeyRequest {
                api_key_id: acme_keys[0].id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let still = auth
        .who_am_i(authorized(&server.owner_key, WhoAmIRequest {}))
        .await
        .unwrap()
        .into_inner()
        .principal
        .unwrap();
    assert_eq!(still.tenant_slug, "acme");
}
