//! Administration of users, roles and custom policies, and policy changes reaching every
//! replica through Redis pub/sub.

use std::time::{Duration, Instant};

use codexcontinue::pb::v1::{
    AddPolicyRequest, CreateApiKeyRequest, GetUserRequest, GrantRoleRequest, ListRolesRequest,
    ListUsersRequest, Permission, Policy, RemovePolicyRequest, RevokeRoleRequest,
    SetUserDisabledRequest, WhoAmIRequest, admin_service_client::AdminServiceClient,
    auth_service_client::AuthServiceClient,
};
use codexcontinue_tests::{
    TestServer, WAIT_LIMIT,
    grpc::{authorized, call_empty},
};
use tonic::{Code, transport::Channel};

async fn key_with(channel: Channel, creator: &str, role: &str) -> String {
    AuthServiceClient::new(channel)
        .create_api_key(authorized(
            creator,
            CreateApiKeyRequest {
                name: role.into(),
                roles: vec![role.into()],
                expire_time: None,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .secret
}

fn analyst_may_embed() -> Policy {
    Policy {
        role: "analyst".into(),
        permission: Some(Permission {
            object: "inference".into(),
            action: "use".into(),
        }),
    }
}

/// Whether `key` may call Embed on the server behind `channel` (the call itself is not
/// built yet; only the access decision matters).
async fn may_embed(channel: Channel, key: &str) -> bool {
    let authorization = format!("Bearer {key}");
    let result = call_empty(
        channel,
        "/codexcontinue.v1.ModelService/Embed",
        &[("authorization", &authorization)],
    )
    .await;
    !matches!(result, Err(status) if status.code() == Code::PermissionDenied)
}

/// Polls until `wanted` and returns how long it took.
async fn until_embed_is(channel: &Channel, key: &str, wanted: bool) -> Duration {
    let started = Instant::now();
    while may_embed(channel.clone(), key).await != wanted {
        assert!(
            started.elapsed() < WAIT_LIMIT,
            "policy change never arrived"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

#[tokio::test]
async fn who_am_i_lists_the_permissions_custom_policies_grant() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    // A viewer who also holds the custom role `analyst` (WhoAmI itself needs a role that
    // may see its own sessions).
    let analyst = AuthServiceClient::new(channel.clone())
        .create_api_key(authorized(
            &server.owner_key,
            CreateApiKeyRequest {
                name: "analyst".into(),
                roles: vec!["viewer".into(), "analyst".into()],
                expire_time: None,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .secret;
    let permissions = |key: String| {
        let channel = channel.clone();
        async move {
            AuthServiceClient::new(channel)
                .who_am_i(authorized(&key, WhoAmIRequest {}))
                .await
                .unwrap()
                .into_inner()
                .permissions
        }
    };
    let before = permissions(analyst.clone()).await;
    assert!(
        before.iter().any(|p| p == "conversation:read")
            && !before.iter().any(|p| p == "inference:use"),
        "a viewer's permissions, and none from a role without policies: {before:?}"
    );
    AdminServiceClient::new(channel.clone())
        .add_policy(authorized(
            &server.owner_key,
            AddPolicyRequest {
                policy: Some(analyst_may_embed()),
            },
        ))
        .await
        .unwrap();
    let mut after = permissions(analyst).await;
    after.retain(|p| !before.contains(p));
    assert_eq!(
        after,
        ["inference:use"],
        "the policy adds exactly its permission"
    );
    let owner = permissions(server.owner_key.clone()).await;
    for expected in ["audit:read", "conversation:write", "retention:write"] {
        assert!(
            owner.iter().any(|p| p == expected),
            "{expected} in {owner:?}"
        );
    }
    assert!(
        !owner.iter().any(|p| p == "tenant:create"),
        "a tenant owner is no platform admin: {owner:?}"
    );
    let mut sorted = owner.clone();
    sorted.sort();
    assert_eq!(owner, sorted);
}

#[tokio::test]
async fn custom_policies_reach_every_replica() {
    let a = TestServer::start().await;
    let b = a.replica().await;
    let (to_a, to_b) = (a.channel().await, b.channel().await);
    let analyst = key_with(to_a.clone(), &a.owner_key, "analyst").await;
    assert!(
        !may_embed(to_b.clone(), &analyst).await,
        "denied by default"
    );

    let mut admin = AdminServiceClient::new(to_a.clone());
    admin
        .add_policy(authorized(
            &a.owner_key,
            AddPolicyRequest {
                policy: Some(analyst_may_embed()),
            },
        ))
        .await
        .unwrap();
    assert!(
        may_embed(to_a.clone(), &analyst).await,
        "the changing replica applies it at once"
    );
    let granted_after = until_embed_is(&to_b, &analyst, true).await;

    let roles = admin
        .list_roles(authorized(&a.owner_key, ListRolesRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .roles;
    let names: Vec<_> = roles.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["owner", "admin", "member", "viewer", "auditor", "analyst"]
    );

    admin
        .remove_policy(authorized(
            &a.owner_key,
            RemovePolicyRequest {
                policy: Some(analyst_may_embed()),
            },
        ))
        .await
        .unwrap();
    let revoked_after = until_embed_is(&to_b, &analyst, false).await;
    println!(
        "policy propagation to the other replica: grant {granted_after:?}, revoke {revoked_after:?}"
    );

    // Reserved and malformed policies are refused.
    for (role, object, action, code) in [
        ("analyst", "tenant", "create", Code::InvalidArgument),
        ("analyst", "Bad Object", "use", Code::InvalidArgument),
        ("platform-admin", "inference", "use", Code::PermissionDenied),
    ] {
        let status = admin
            .add_policy(authorized(
                &a.owner_key,
                AddPolicyRequest {
                    policy: Some(Policy {
                        role: role.into(),
                        permission: Some(Permission {
                            object: object.into(),
                            action: action.into(),
                        }),
                    }),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), code, "{role} {object}:{action}");
    }
}

#[tokio::test]
async fn roles_are_granted_within_limits_and_the_last_owner_stays() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let mut admin = AdminServiceClient::new(channel.clone());
    let owner_id = AuthServiceClient::new(channel.clone())
        .who_am_i(authorized(&server.owner_key, WhoAmIRequest {}))
        .await
        .unwrap()
        .into_inner()
        .principal
        .unwrap()
        .user_id;

    let user = admin
        .grant_role(authorized(
            &server.owner_key,
            GrantRoleRequest {
                user_id: owner_id.clone(),
                role: "auditor".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(user.roles, ["auditor", "owner"]);

    let listed = admin
        .list_users(authorized(
            &server.owner_key,
            ListUsersRequest {
                query: "OWNER@acme".into(),
                ..ListUsersRequest::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .users;
    assert_eq!(listed.len(), 1);
    let none = admin
        .list_users(authorized(
            &server.owner_key,
            ListUsersRequest {
                role: "viewer".into(),
                ..ListUsersRequest::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .users;
    assert!(none.is_empty());

    let last_owner = admin
        .revoke_role(authorized(
            &server.owner_key,
            RevokeRoleRequest {
                user_id: owner_id.clone(),
                role: "owner".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(last_owner.code(), Code::FailedPrecondition);
    let disable_last_owner = admin
        .set_user_disabled(authorized(
            &server.owner_key,
            SetUserDisabledRequest {
                user_id: owner_id.clone(),
                disabled: true,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(disable_last_owner.code(), Code::FailedPrecondition);

    // An admin cannot make anyone an owner (or themselves anything more).
    let admin_key = key_with(channel.clone(), &server.owner_key, "admin").await;
    let escalate = admin
        .grant_role(authorized(
            &admin_key,
            GrantRoleRequest {
                user_id: owner_id.clone(),
                role: "owner".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(escalate.code(), Code::PermissionDenied);

    // Another tenant cannot see this user.
    let globex = server.add_tenant("globex").await;
    let hidden = admin
        .get_user(authorized(&globex, GetUserRequest { user_id: owner_id }))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
}

#[tokio::test]
async fn a_revoked_key_stops_working_on_every_replica_despite_caching() {
    let a = TestServer::start().await;
    let b = a.replica().await;
    let (to_a, to_b) = (a.channel().await, b.channel().await);
    let key = key_with(to_a.clone(), &a.owner_key, "viewer").await;
    let mut auth_b = AuthServiceClient::new(to_b);
    // B verifies the key once and remembers it.
    let key_id = auth_b
        .who_am_i(authorized(&key, WhoAmIRequest {}))
        .await
        .unwrap()
        .into_inner()
        .principal
        .unwrap()
        .api_key_id;
    AuthServiceClient::new(to_a)
        .revoke_api_key(authorized(
            &a.owner_key,
            codexcontinue::pb::v1::RevokeApiKeyRequest { api_key_id: key_id },
        ))
        .await
        .unwrap();
    let started = Instant::now();
    while auth_b
        .who_am_i(authorized(&key, WhoAmIRequest {}))
        .await
        .is_ok()
    {
        assert!(
            started.elapsed() < WAIT_LIMIT,
            "revocation never reached replica B"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "revocation reached the other replica after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn another_tenant_cannot_change_or_delete_this_tenants_users() {
    use codexcontinue::pb::v1::{DeleteUserRequest, RevokeUserSessionsRequest};
    let server = TestServer::start().await;
    let globex = server.add_tenant("globex").await;
    let channel = server.channel().await;
    let acme_owner = AuthServiceClient::new(channel.clone())
        .who_am_i(authorized(&server.owner_key, WhoAmIRequest {}))
        .await
        .unwrap()
        .into_inner()
        .principal
        .unwrap()
        .user_id;
    let mut admin = AdminServiceClient::new(channel.clone());
    let attempts = [
        admin
            .grant_role(authorized(
                &globex,
                GrantRoleRequest {
                    user_id: acme_owner.clone(),
                    role: "viewer".into(),
                },
            ))
            .await
            .map(drop),
        admin
            .set_user_disabled(authorized(
                &globex,
                SetUserDisabledRequest {
                    user_id: acme_owner.clone(),
                    disabled: true,
                },
            ))
            .await
            .map(drop),
        admin
            .revoke_user_sessions(authorized(
                &globex,
                RevokeUserSessionsRequest {
                    user_id: acme_owner.clone(),
                },
            ))
            .await
            .map(drop),
        admin
            .delete_user(authorized(
                &globex,
                DeleteUserRequest {
                    user_id: acme_owner.clone(),
                },
            ))
            .await
            .map(drop),
    ];
    for attempt in attempts {
        assert_eq!(attempt.unwrap_err().code(), Code::NotFound);
    }
    let listed = admin
        .list_users(authorized(&globex, ListUsersRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .users;
    assert!(
        listed.iter().all(|u| u.id != acme_owner),
        "acme's user listed to globex"
    );
    // Acme's owner is untouched and still works.
    let me = AuthServiceClient::new(channel)
        .who_am_i(authorized(&server.owner_key, WhoAmIRequest {}))
        .await
        .unwrap()
        .into_inner()
        .principal
        .unwrap();
    assert_eq!(me.roles, ["owner"]);
}
