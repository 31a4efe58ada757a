//! The ways into a tenant through SSO an attacker would try first: an admin pointing the
//! tenant at a provider of their own, a subject of one issuer claimed at another,
//! `platform-admin` carried into a session, logins of suspended tenants, login CSRF, and
//! an empty domain list admitting everyone.

use codexcontinue::pb::v1::{
    CompleteLoginRequest, ExchangeLoginCodeRequest, GetUserRequest, IdentityProvider,
    ListUsersRequest, Principal, SetIdentityProviderRequest, StartLoginRequest, WhoAmIRequest,
    admin_service_client::AdminServiceClient,
};
use codexcontinue_tests::{
    grpc::{authorized, bad_field, key_with_roles},
    oidc::CLIENT_ID,
};
use tonic::Code;

use crate::sso::{browser_flow, log_in, native_login, open_callback, setup};

/// Who `token` signs in as.
async fn principal_of(setup: &mut crate::sso::Setup, token: &str) -> Principal {
    setup
        .auth
        .who_am_i(authorized(token, WhoAmIRequest {}))
        .await
        .unwrap()
        .into_inner()
        .principal
        .unwrap()
}

fn provider(issuer: &str, client_id: &str) -> IdentityProvider {
    IdentityProvider {
        issuer_url: issuer.into(),
        client_id: client_id.into(),
        allowed_email_domains: vec!["acme.example".into()],
        ..IdentityProvider::default()
    }
}

#[tokio::test]
async fn only_owners_change_the_provider_and_see_subjects() {
    let mut setup = setup().await;
    let channel = setup.server.channel().await;
    let admin_key = key_with_roles(channel.clone(), &setup.server.owner_key, &["admin"]).await;
    let mut admin = AdminServiceClient::new(channel);
    let issuer = setup.provider.as_ref().unwrap().issuer.clone();

    // An admin cannot point the tenant at a provider of their own choosing.
    let refused = admin
        .set_identity_provider(authorized(
            &admin_key,
            SetIdentityProviderRequest {
                identity_provider: Some(provider("https://evil.example", CLIENT_ID)),
                client_secret: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    // Subjects at the provider are for owners' eyes only.
    let token = log_in(&mut setup, "alice").await;
    let alice = principal_of(&mut setup, &token).await.user_id;
    let subject_seen_by = |key: String| {
        let mut admin = admin.clone();
        let alice = alice.clone();
        async move {
            let listed = admin
                .list_users(authorized(&key, ListUsersRequest::default()))
                .await
                .unwrap()
                .into_inner()
                .users;
            let one = admin
                .get_user(authorized(
                    &key,
                    GetUserRequest {
                        user_id: alice.clone(),
                    },
                ))
                .await
                .unwrap()
                .into_inner()
                .user
                .unwrap();
            let listed = listed.into_iter().find(|u| u.id == alice).unwrap();
            (listed.external_subject, one.external_subject)
        }
    };
    assert_eq!(
        subject_seen_by(setup.server.owner_key.clone()).await,
        ("alice".to_owned(), "alice".to_owned())
    );
    assert_eq!(
        subject_seen_by(admin_key.clone()).await,
        (String::new(), String::new())
    );

    // A new client id drops the stored secret and every user's link to the provider.
    let saved = admin
        .set_identity_provider(authorized(
            &setup.server.owner_key,
            SetIdentityProviderRequest {
                identity_provider: Some(provider(&issuer, "another-client")),
                client_secret: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .identity_provider
        .unwrap();
    assert!(!saved.client_secret_set, "the old client's secret is gone");
    let linked: i64 =
        sqlx::query_scalar("SELECT count(*) FROM users WHERE external_subject IS NOT NULL")
            .fetch_one(&mut setup.server.db.owner().await)
            .await
            .unwrap();
    assert_eq!(linked, 0, "subjects unlinked");
}

#[tokio::test]
async fn a_subject_is_bound_to_its_issuer() {
    let mut setup = setup().await;
    // A user linked to the same subject at another issuer.
    let victim = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO users (tenant_id, id, email, display_name, external_issuer, external_subject)
         SELECT id, $1, 'victim@acme.example', 'Victim', 'https://other-idp.example', 'alice'
         FROM tenants WHERE slug = 'acme'",
    )
    .bind(victim)
    .execute(&mut setup.server.db.owner().await)
    .await
    .unwrap();
    let token = log_in(&mut setup, "alice").await;
    let me = principal_of(&mut setup, &token).await;
    assert_ne!(
        me.user_id,
        victim.to_string(),
        "signed in as another issuer's user"
    );
    assert_eq!(me.email, "alice@acme.example");
}

#[tokio::test]
async fn platform_admin_never_reaches_an_sso_session() {
    let mut setup = setup().await;
    log_in(&mut setup, "alice").await;
    sqlx::query(
        "INSERT INTO role_assignments (tenant_id, user_id, role)
         SELECT tenant_id, id, 'platform-admin' FROM users WHERE email = 'alice@acme.example'",
    )
    .execute(&mut setup.server.db.owner().await)
    .await
    .unwrap();
    let token = log_in(&mut setup, "alice").await;
    let roles = principal_of(&mut setup, &token).await.roles;
    assert!(!roles.iter().any(|r| r == "platform-admin"), "{roles:?}");
    assert!(roles.iter().any(|r| r == "member"), "{roles:?}");
}

async fn set_tenant_state(setup: &crate::sso::Setup, state: &str) {
    sqlx::query("UPDATE tenants SET state = $1 WHERE slug = 'acme'")
        .bind(state)
        .execute(&mut setup.server.db.owner().await)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_suspended_tenant_cannot_log_in_or_keep_a_session() {
    let mut setup = setup().await;
    // A session made before the suspension, whose revocation was missed (a login racing
    // the suspension).
    let token = log_in(&mut setup, "alice").await;
    // A login under way when the tenant is suspended.
    let callback = browser_flow(&mut setup, "alice").await;
    set_tenant_state(&setup, "suspended").await;

    let refused = setup
        .auth
        .who_am_i(authorized(&token, WhoAmIRequest {}))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    let response = open_callback(&callback).await;
    assert_eq!(response.status(), 401);
    assert!(response.text().await.unwrap().contains("not active"));
    let start = setup
        .auth
        .start_login(StartLoginRequest {
            tenant: "acme".into(),
            redirect_uri: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(start.code(), Code::PermissionDenied, "{start:?}");

    // Deleted (before its purge ran) is no better.
    set_tenant_state(&setup, "deleted").await;
    let start = setup
        .auth
        .start_login(StartLoginRequest {
            tenant: "acme".into(),
            redirect_uri: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(start.code(), Code::PermissionDenied, "{start:?}");
}

#[tokio::test]
async fn a_login_is_finished_only_by_the_client_that_started_it() {
    let mut setup = setup().await;
    // Native flow: the attacker starts a login and signs in as themselves at the provider,
    // then hands the redirect to a victim's client, which lacks the binding secret (or
    // holds one of another login). A refused attempt uses the login up.
    for binding in [String::new(), format!("cc_bind_{}", "0".repeat(64))] {
        let own = native_login(&mut setup, "alice").await;
        let request = CompleteLoginRequest {
            login_binding: binding,
            ..own.clone()
        };
        let refused = setup
            .auth
            .complete_login(request.clone())
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
        assert!(refused.message().contains("login_binding"), "{refused:?}");
        let again = setup.auth.complete_login(own).await.unwrap_err();
        assert_eq!(again.code(), Code::Unauthenticated, "{again:?}");
    }

    // Browser flow: the one-time code from the callback is worthless without the binding.
    let callback = browser_flow(&mut setup, "alice").await;
    let location = open_callback(&callback).await.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let code = location.split("#code=").nth(1).unwrap().to_owned();
    let refused = setup
        .auth
        .exchange_login_code(ExchangeLoginCodeRequest {
            code: code.clone(),
            login_binding: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
}

#[tokio::test]
async fn admitting_every_domain_is_an_explicit_choice() {
    let setup = setup().await;
    let issuer = setup.provider.as_ref().unwrap().issuer.clone();
    let mut admin = AdminServiceClient::new(setup.server.channel().await);
    for domains in [vec![], vec!["not a domain".to_owned()]] {
        let refused = admin
            .set_identity_provider(authorized(
                &setup.server.owner_key,
                SetIdentityProviderRequest {
                    identity_provider: Some(IdentityProvider {
                        allowed_email_domains: domains,
                        ..provider(&issuer, CLIENT_ID)
                    }),
                    client_secret: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert_eq!(
            bad_field(&refused),
            "identity_provider.allowed_email_domains"
        );
    }
    admin
        .set_identity_provider(authorized(
            &setup.server.owner_key,
            SetIdentityProviderRequest {
                identity_provider: Some(IdentityProvider {
                    allowed_email_domains: vec!["*".into()],
                    ..provider(&issuer, CLIENT_ID)
                }),
                client_secret: String::new(),
            },
        ))
        .await
        .unwrap();
}
