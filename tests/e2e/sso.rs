//! SSO team login against a real OpenID Connect provider: browser flow through
//! /auth/callback and a one-time code, native flow through CompleteLogin, group → role
//! mapping, sessions, and the refusals.

use codexcontinue::pb::v1::{
    CompleteLoginRequest, ExchangeLoginCodeRequest, GetIdentityProviderRequest, GrantRoleRequest,
    IdentityProvider, ListSessionsRequest, LogoutEverywhereRequest, LogoutRequest,
    RefreshSessionRequest, RoleList, SetIdentityProviderRequest, StartLoginRequest,
    SuspendTenantRequest, WhoAmIRequest, admin_service_client::AdminServiceClient,
    auth_service_client::AuthServiceClient,
};
use codexcontinue_tests::{
    ServerOptions, TestDatabase, TestServer,
    grpc::authorized,
    oidc::{CLIENT_ID, CLIENT_SECRET, OidcProvider, browser_login},
};
use serde_json::json;
use tonic::{Code, transport::Channel};

const CONSOLE: &str = "http://console.test/app";
const NATIVE_REDIRECT: &str = "http://127.0.0.1:9/native";

pub(crate) struct Setup {
    pub(crate) server: TestServer,
    pub(crate) provider: Option<OidcProvider>,
    pub(crate) callback: String,
    pub(crate) auth: AuthServiceClient<Channel>,
    /// The binding secret of the last login started (StartLogin's `login_binding`).
    pub(crate) binding: String,
}

pub(crate) fn accounts() -> serde_json::Value {
    json!({
        "alice": {"email": "alice@acme.example", "name": "Alice", "groups": ["eng", "audit"]},
        "mallory": {"email": "mallory@evil.example", "name": "Mallory", "groups": ["eng"]},
        // Claims the bootstrap owner's address without the provider vouching for it.
        "eve": {"email": "owner@acme.example", "name": "Eve", "groups": [], "email_verified": null},
        "trudy": {"email": "trudy@acme.example", "name": "Trudy", "groups": [], "email_verified": false},
    })
}

pub(crate) async fn setup() -> Setup {
    setup_with_redis(None).await
}

async fn setup_with_redis(redis_url: Option<String>) -> Setup {
    let server = TestServer::spawn(
        TestDatabase::migrated().await,
        ServerOptions {
            env: vec![("CODEXCONTINUE_AUTH__CONSOLE_URL".into(), CONSOLE.into())],
            redis_url,
        },
    )
    .await;
    let callback = format!("{}/auth/callback", server.url());
    let provider = OidcProvider::start(&[&callback, NATIVE_REDIRECT], &accounts()).await;
    let channel = server.channel().await;
    let mut admin = AdminServiceClient::new(channel.clone());
    admin
        .set_identity_provider(authorized(
            &server.owner_key,
            SetIdentityProviderRequest {
                identity_provider: Some(IdentityProvider {
                    issuer_url: provider.issuer.clone(),
                    client_id: CLIENT_ID.into(),
                    allowed_email_domains: vec!["acme.example".into()],
                    groups_claim: "groups".into(),
                    group_roles: [
                        (
                            "eng".to_owned(),
                            RoleList {
                                roles: vec!["member".into()],
                            },
                        ),
                        (
                            "audit".to_owned(),
                            RoleList {
                                roles: vec!["auditor".into()],
                            },
                        ),
                    ]
                    .into(),
                    ..IdentityProvider::default()
                }),
                client_secret: CLIENT_SECRET.into(),
            },
        ))
        .await
        .unwrap();
    Setup {
        server,
        provider: Some(provider),
        callback,
        auth: AuthServiceClient::new(channel),
        binding: String::new(),
    }
}

/// Runs the browser flow as `login`; returns the callback URL the provider redirected to
/// (the login's binding secret is left in `setup.binding`).
pub(crate) async fn browser_flow(setup: &mut Setup, login: &str) -> String {
    let start = setup
        .auth
        .start_login(StartLoginRequest {
            tenant: "acme".into(),
            redirect_uri: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(start.authorization_url.contains("code_challenge="), "PKCE");
    assert!(start.authorization_url.contains("nonce="), "nonce");
    assert!(
        start.login_binding.starts_with("cc_bind_"),
        "binding secret"
    );
    setup.binding = start.login_binding;
    browser_login(&start.authorization_url, login, &setup.callback).await
}

/// The whole browser login as `login`, through the console's code: a session token.
pub(crate) async fn log_in(setup: &mut Setup, login: &str) -> String {
    let callback = browser_flow(setup, login).await;
    let location = open_callback(&callback).await.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let code = location.split("#code=").nth(1).unwrap().to_owned();
    setup
        .auth
        .exchange_login_code(ExchangeLoginCodeRequest {
            code,
            login_binding: setup.binding.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap()
        .token
}

/// A native login as `login` up to the provider's redirect: the CompleteLogin request
/// it makes possible, with the login's own binding secret.
pub(crate) async fn native_login(setup: &mut Setup, login: &str) -> CompleteLoginRequest {
    let start = setup
        .auth
        .start_login(StartLoginRequest {
            tenant: "acme".into(),
            redirect_uri: NATIVE_REDIRECT.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let redirect = browser_login(&start.authorization_url, login, NATIVE_REDIRECT).await;
    let redirect = url::Url::parse(&redirect).unwrap();
    let param = |name: &str| {
        redirect
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    CompleteLoginRequest {
        state: param("state"),
        code: param("code"),
        login_binding: start.login_binding,
    }
}

pub(crate) async fn open_callback(url: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn browser_login_maps_groups_to_roles_and_issues_a_session() {
    let mut setup = setup().await;
    let mut admin = AdminServiceClient::new(setup.server.channel().await);
    let stored = admin
        .get_identity_provider(authorized(
            &setup.server.owner_key,
            GetIdentityProviderRequest {},
        ))
        .await
        .unwrap()
        .into_inner()
        .identity_provider
        .unwrap();
    assert!(stored.client_secret_set);
    assert!(
        !format!("{stored:?}").contains(CLIENT_SECRET),
        "secret never returned"
    );

    let callback = browser_flow(&mut setup, "alice").await;
    let response = open_callback(&callback).await;
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let code = location
        .strip_prefix(&format!("{CONSOLE}#code="))
        .unwrap_or_else(|| panic!("redirect to the console with a code: {location}"))
        .to_owned();
    assert!(!location.contains("cc_sess_"), "no session token in a URL");

    let exchanged = setup
        .auth
        .exchange_login_code(ExchangeLoginCodeRequest {
            code: code.clone(),
            login_binding: setup.binding.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let token = exchanged.session.unwrap().token;
    let me = setup
        .auth
        .who_am_i(authorized(&token, WhoAmIRequest {}))
        .await
        .unwrap()
        .into_inner()
        .principal
        .unwrap();
    assert_eq!(
        (me.email.as_str(), me.tenant_slug.as_str()),
        ("alice@acme.example", "acme")
    );
    assert_eq!(me.roles, ["auditor", "member"]);

    // A role granted by an admin reaches the live session at once.
    admin
        .grant_role(authorized(
            &setup.server.owner_key,
            GrantRoleRequest {
                user_id: me.user_id.clone(),
                role: "viewer".into(),
            },
        ))
        .await
        .unwrap();
    let roles = setup
        .auth
        .who_am_i(authorized(&token, WhoAmIRequest {}))
        .await
        .unwrap()
        .into_inner()
        .principal
        .unwrap()
        .roles;
    assert_eq!(roles, ["auditor", "member", "viewer"]);

    // The code is single-use, and so is the login state.
    let reused = setup
        .auth
        .exchange_login_code(ExchangeLoginCodeRequest {
            code,
            login_binding: setup.binding.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Code::Unauthenticated);
    assert_eq!(
        open_callback(&callback).await.status(),
        401,
        "replayed callback refused"
    );

    // The session: listed, refreshed, ended.
    let sessions = setup
        .auth
        .list_sessions(authorized(&token, ListSessionsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .sessions;
    assert_eq!(sessions.len(), 1);
    assert!(sessions[0].current);
    setup
        .auth
        .refresh_session(authorized(&token, RefreshSessionRequest {}))
        .await
        .unwrap();
    setup
        .auth
        .logout(authorized(&token, LogoutRequest {}))
        .await
        .unwrap();
    let after = setup
        .auth
        .who_am_i(authorized(&token, WhoAmIRequest {}))
        .await
        .unwrap_err();
    assert_eq!(after.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn native_login_completes_once_and_logout_everywhere_ends_all_sessions() {
    let mut setup = setup().await;
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let request = native_login(&mut setup, "alice").await;
        let done = setup
            .auth
            .complete_login(request.clone())
            .await
            .unwrap()
            .into_inner();
        tokens.push(done.session.unwrap().token);
        let replay = setup.auth.complete_login(request).await.unwrap_err();
        assert_eq!(replay.code(), Code::Unauthenticated, "{replay:?}");
    }
    let ended = setup
        .auth
        .logout_everywhere(authorized(&tokens[0], LogoutEverywhereRequest {}))
        .await
        .unwrap()
        .into_inner()
        .revoked;
    assert_eq!(ended, 2);
    for token in &tokens {
        let refused = setup
            .auth
            .who_am_i(authorized(token, WhoAmIRequest {}))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated);
    }
}

#[tokio::test]
async fn suspending_the_tenant_ends_its_sessions_at_once() {
    let mut setup = setup().await;
    let platform = setup.server.add_platform_admin().await;
    let token = log_in(&mut setup, "alice").await;
    let me = setup
        .auth
        .who_am_i(authorized(&token, WhoAmIRequest {}))
        .await
        .unwrap()
        .into_inner()
        .principal
        .unwrap();
    AdminServiceClient::new(setup.server.channel().await)
        .suspend_tenant(authorized(
            &platform,
            SuspendTenantRequest {
                tenant_id: me.tenant_id,
                reason: "test".into(),
            },
        ))
        .await
        .unwrap();
    let refused = setup
        .auth
        .who_am_i(authorized(&token, WhoAmIRequest {}))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn logins_are_refused_for_bad_tenant_state_provider_and_email() {
    let mut setup = setup().await;
    let unknown = setup
        .auth
        .start_login(StartLoginRequest {
            tenant: "no-such-tenant".into(),
            redirect_uri: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    setup.server.add_tenant("globex").await;
    let no_provider = setup
        .auth
        .start_login(StartLoginRequest {
            tenant: "globex".into(),
            redirect_uri: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(no_provider.code(), Code::FailedPrecondition);

    let forged = setup
        .auth
        .complete_login(CompleteLoginRequest {
            state: format!("cc_state_{}_{}", uuid::Uuid::nil().simple(), "0".repeat(64)),
            code: "whatever".into(),
            login_binding: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(forged.code(), Code::Unauthenticated);

    // Mallory authenticates at the provider, but her domain is not allowed in the tenant.
    let callback = browser_flow(&mut setup, "mallory").await;
    let response = open_callback(&callback).await;
    assert_eq!(response.status(), 401);
    assert!(response.text().await.unwrap().contains("not allowed"));
    let logs = setup.server.logs();
    assert!(logs.contains("login refused"), "security log line");

    // Addresses the provider does not vouch for: refused, and never linked to the owner.
    for login in ["eve", "trudy"] {
        let callback = browser_flow(&mut setup, login).await;
        let response = open_callback(&callback).await;
        assert_eq!(response.status(), 401, "{login}");
        assert!(
            response.text().await.unwrap().contains("not verified"),
            "{login}"
        );
    }
    let mut owner = setup.server.db.owner().await;
    let linked: Option<String> =
        sqlx::query_scalar("SELECT external_subject FROM users WHERE email = 'owner@acme.example'")
            .fetch_one(&mut owner)
            .await
            .unwrap();
    assert_eq!(linked, None, "the owner's account stays unlinked");
    // Failures after a valid state are in the tenant's trail; the forged state's is not.
    let failures: Vec<(uuid::Uuid, serde_json::Value)> = sqlx::query_as(
        "SELECT tenant_id, details FROM audit_events WHERE action = 'login.failure' ORDER BY seq",
    )
    .fetch_all(&mut owner)
    .await
    .unwrap();
    let reasons: Vec<&str> = failures
        .iter()
        .map(|(_, d)| d["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            "email_not_allowed",
            "email_not_verified",
            "email_not_verified"
        ]
    );
    assert!(failures.iter().all(|(tenant, _)| !tenant.is_nil()));
}

#[tokio::test]
async fn admins_cannot_hand_out_roles_above_their_own() {
    use codexcontinue::pb::v1::CreateApiKeyRequest;

    let setup = setup().await;
    let channel = setup.server.channel().await;
    let mut auth = AuthServiceClient::new(channel.clone());
    let admin_key = auth
        .create_api_key(authorized(
            &setup.server.owner_key,
            CreateApiKeyRequest {
                name: "admin".into(),
                roles: vec!["admin".into()],
                expire_time: None,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .secret;
    // An admin may not mint an owner key.
    let owner_key = auth
        .create_api_key(authorized(
            &admin_key,
            CreateApiKeyRequest {
                name: "escalate".into(),
                roles: vec!["owner".into()],
                expire_time: None,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(owner_key.code(), Code::PermissionDenied, "{owner_key:?}");
    // Nor map an identity provider group to owner; nobody maps one to platform-admin.
    let mut admin = AdminServiceClient::new(channel);
    for (key, role) in [
        (&admin_key, "owner"),
        (&admin_key, "admin"),
        (&setup.server.owner_key, "platform-admin"),
    ] {
        let refused = admin
            .set_identity_provider(authorized(
                key,
                SetIdentityProviderRequest {
                    identity_provider: Some(IdentityProvider {
                        issuer_url: "https://idp.acme.example".into(),
                        client_id: CLIENT_ID.into(),
                        allowed_email_domains: vec!["acme.example".into()],
                        group_roles: [(
                            "anyone".to_owned(),
                            RoleList {
                                roles: vec![role.into()],
                            },
                        )]
                        .into(),
                        ..IdentityProvider::default()
                    }),
                    client_secret: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(
            refused.code(),
            Code::PermissionDenied,
            "{role}: {refused:?}"
        );
    }
}

#[tokio::test]
async fn a_provider_that_rotates_its_signing_key_is_followed() {
    let mut setup = setup().await;
    let callback = browser_flow(&mut setup, "alice").await;
    assert_eq!(open_callback(&callback).await.status(), 303);

    // The provider restarts at the same issuer with a new signing key; the server still
    // holds the old key set from discovery and must fetch the new one.
    let old = setup.provider.take().unwrap();
    let port = old.port();
    old.stop().await;
    let redirects = [setup.callback.as_str(), NATIVE_REDIRECT];
    setup.provider =
        Some(OidcProvider::start_at(&redirects, &accounts(), port, "test-key-2", &[]).await);
    let callback = browser_flow(&mut setup, "alice").await;
    let response = open_callback(&callback).await;
    assert_eq!(response.status(), 303, "{:?}", response.text().await);
}

#[tokio::test]
async fn an_expired_id_token_is_refused() {
    let mut setup = setup().await;
    // A provider whose clock is ten minutes behind issues one-minute ID tokens that have
    // expired by the time the server sees them.
    let old = setup.provider.take().unwrap();
    let port = old.port();
    old.stop().await;
    let redirects = [setup.callback.as_str(), NATIVE_REDIRECT];
    let skewed = [
        ("OIDC_CLOCK_OFFSET_SECONDS", "-600"),
        ("OIDC_ID_TOKEN_TTL", "60"),
    ];
    setup.provider =
        Some(OidcProvider::start_at(&redirects, &accounts(), port, "test-key-1", &skewed).await);
    let callback = browser_flow(&mut setup, "alice").await;
    let response = open_callback(&callback).await;
    assert_eq!(response.status(), 401);
    let body = response.text().await.unwrap();
    assert!(body.contains("invalid ID token: Expired"), "{body}");
}

#[tokio::test]
async fn sessions_fail_closed_while_redis_is_down() {
    let mut redis = codexcontinue_tests::OwnedRedis::start().await;
    let mut setup = setup_with_redis(Some(redis.url())).await;
    let token = log_in(&mut setup, "alice").await;
    setup
        .auth
        .who_am_i(authorized(&token, WhoAmIRequest {}))
        .await
        .unwrap();
    redis.stop().await;
    let refused = setup
        .auth
        .who_am_i(authorized(&token, WhoAmIRequest {}))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
}
