//! The escalations an admin (or a leaked key) would try: granting custom roles what they
//! do not hold or what only owners hold, acting on owners, leaving the tenant without an
//! active owner, flooding policies, and minting keys that outlive their parent.

use std::time::{Duration, SystemTime};

use codexcontinue::pb::v1::{
    AddPolicyRequest, CreateApiKeyRequest, DeleteUserRequest, GrantRoleRequest, Permission, Policy,
    RevokeApiKeyRequest, RevokeRoleRequest, SetUserDisabledRequest, WhoAmIRequest,
    admin_service_client::AdminServiceClient, auth_service_client::AuthServiceClient,
};
use codexcontinue_tests::{TestServer, grpc::authorized, grpc::key_with_roles};
use tonic::{Code, transport::Channel};

fn policy(role: &str, object: &str, action: &str) -> AddPolicyRequest {
    AddPolicyRequest {
        policy: Some(Policy {
            role: role.into(),
            permission: Some(Permission {
                object: object.into(),
                action: action.into(),
            }),
        }),
    }
}

async fn user_id(channel: Channel, key: &str) -> String {
    AuthServiceClient::new(channel)
        .who_am_i(authorized(key, WhoAmIRequest {}))
        .await
        .unwrap()
        .into_inner()
        .principal
        .unwrap()
        .user_id
}

#[tokio::test]
async fn custom_roles_get_only_what_the_granter_holds_and_never_owner_powers() {
    let server = TestServer::with_env(vec![(
        "CODEXCONTINUE_AUTH__MAX_CUSTOM_POLICIES".into(),
        "3".into(),
    )])
    .await;
    let channel = server.channel().await;
    let admin_key = key_with_roles(channel.clone(), &server.owner_key, &["admin"]).await;
    let mut admin = AdminServiceClient::new(channel.clone());

    // Nobody grants what they do not hold: a delegate may manage roles but not read
    // conversations.
    admin
        .add_policy(authorized(
            &server.owner_key,
            policy("delegate", "role", "write"),
        ))
        .await
        .unwrap();
    let delegate = key_with_roles(channel.clone(), &server.owner_key, &["delegate"]).await;
    for (object, action) in [("conversation", "read"), ("role", "*"), ("*", "write")] {
        let refused = admin
            .add_policy(authorized(&delegate, policy("helper", object, action)))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{object}:{action}");
    }
    admin
        .add_policy(authorized(&delegate, policy("helper", "role", "write")))
        .await
        .unwrap();

    // What only owners hold goes to no other role, whoever grants it.
    for (key, object, action) in [
        (&admin_key, "retention", "write"),
        (&server.owner_key, "retention", "write"),
        (&server.owner_key, "identity_provider", "write"),
        (&server.owner_key, "identity_provider", "*"),
        (&server.owner_key, "*", "write"),
    ] {
        let refused = admin
            .add_policy(authorized(key, policy("helper", object, action)))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{object}:{action}");
    }
    let unknown = admin
        .add_policy(authorized(&admin_key, policy("helper", "nothing", "read")))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument);

    // Up to the tenant's cap of three; adding one that exists is no change and passes.
    admin
        .add_policy(authorized(&admin_key, policy("helper", "audit", "read")))
        .await
        .unwrap();
    admin
        .add_policy(authorized(&admin_key, policy("helper", "audit", "read")))
        .await
        .unwrap();
    let full = admin
        .add_policy(authorized(&admin_key, policy("helper", "model", "read")))
        .await
        .unwrap_err();
    assert_eq!(full.code(), Code::ResourceExhausted, "{full:?}");
    // The repeated grant changed nothing: one recorded change, not two.
    let recorded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events
         WHERE action = 'policy.add' AND details->>'object' = 'audit'",
    )
    .fetch_one(&mut server.db.owner().await)
    .await
    .unwrap();
    assert_eq!(recorded, 1);
}

#[tokio::test]
async fn only_owners_act_on_owners_and_an_active_owner_always_remains() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let mut admin = AdminServiceClient::new(channel.clone());
    let owner = user_id(channel.clone(), &server.owner_key).await;
    // The owner's own key, limited to the admin role, acts as an admin.
    let admin_key = key_with_roles(channel.clone(), &server.owner_key, &["admin"]).await;

    let disable = admin
        .set_user_disabled(authorized(
            &admin_key,
            SetUserDisabledRequest {
                user_id: owner.clone(),
                disabled: true,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(disable.code(), Code::PermissionDenied, "{disable:?}");
    let delete = admin
        .delete_user(authorized(
            &admin_key,
            DeleteUserRequest {
                user_id: owner.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(delete.code(), Code::PermissionDenied, "{delete:?}");
    let revoke = admin
        .revoke_role(authorized(
            &admin_key,
            RevokeRoleRequest {
                user_id: owner.clone(),
                role: "member".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(revoke.code(), Code::PermissionDenied, "{revoke:?}");

    // A second owner, disabled: the first is still the last *active* owner.
    let other = sqlx::query_scalar::<_, uuid::Uuid>(
        "INSERT INTO users (tenant_id, id, email, display_name, disabled)
         SELECT id, gen_random_uuid(), 'second@acme.example', 'Second', true
         FROM tenants WHERE slug = 'acme' RETURNING id",
    )
    .fetch_one(&mut server.db.owner().await)
    .await
    .unwrap();
    admin
        .grant_role(authorized(
            &server.owner_key,
            GrantRoleRequest {
                user_id: other.to_string(),
                role: "owner".into(),
            },
        ))
        .await
        .unwrap();
    let last = admin
        .revoke_role(authorized(
            &server.owner_key,
            RevokeRoleRequest {
                user_id: owner.clone(),
                role: "owner".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(last.code(), Code::FailedPrecondition, "{last:?}");

    // Two active owners disabling each other at once: one of them stays.
    admin
        .set_user_disabled(authorized(
            &server.owner_key,
            SetUserDisabledRequest {
                user_id: other.to_string(),
                disabled: false,
            },
        ))
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO api_keys (tenant_id, id, owner_user_id, name, prefix, secret_sha256, roles)
         SELECT tenant_id, gen_random_uuid(), id, 'second', 'cc_live_x',
                sha256(convert_to('cc_live_second-owner-key', 'UTF8')), '{owner}'
         FROM users WHERE id = $1",
    )
    .bind(other)
    .execute(&mut server.db.owner().await)
    .await
    .unwrap();
    let other_key = "cc_live_second-owner-key";
    let mut a = admin.clone();
    let mut b = admin.clone();
    let (first, second) = tokio::join!(
        a.set_user_disabled(authorized(
            &server.owner_key,
            SetUserDisabledRequest {
                user_id: other.to_string(),
                disabled: true,
            },
        )),
        b.set_user_disabled(authorized(
            other_key,
            SetUserDisabledRequest {
                user_id: owner.clone(),
                disabled: true,
            },
        )),
    );
    assert_eq!(
        [first.is_ok(), second.is_ok()]
            .iter()
            .filter(|ok| **ok)
            .count(),
        1,
        "{first:?} {second:?}"
    );
    let active: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM role_assignments r JOIN users u ON u.id = r.user_id
         WHERE r.role = 'owner' AND NOT u.disabled",
    )
    .fetch_one(&mut server.db.owner().await)
    .await
    .unwrap();
    assert_eq!(active, 1);
}

#[tokio::test]
async fn a_key_made_with_a_key_ends_with_it_and_keys_per_user_are_capped() {
    let server = TestServer::with_env(vec![(
        "CODEXCONTINUE_AUTH__MAX_KEYS_PER_USER".into(),
        "3".into(),
    )])
    .await;
    let channel = server.channel().await;
    let mut auth = AuthServiceClient::new(channel.clone());
    let in_an_hour = SystemTime::now() + Duration::from_secs(3600);
    let parent = auth
        .create_api_key(authorized(
            &server.owner_key,
            CreateApiKeyRequest {
                name: "short-lived".into(),
                roles: vec!["member".into()],
                expire_time: Some(in_an_hour.into()),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let child = auth
        .create_api_key(authorized(
            &parent.secret,
            CreateApiKeyRequest {
                name: "forever?".into(),
                roles: vec!["member".into()],
                expire_time: None,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        child.api_key.as_ref().unwrap().expire_time,
        parent.api_key.as_ref().unwrap().expire_time,
        "capped at the parent's expiry"
    );
    auth.who_am_i(authorized(&child.secret, WhoAmIRequest {}))
        .await
        .unwrap();
    auth.revoke_api_key(authorized(
        &server.owner_key,
        RevokeApiKeyRequest {
            api_key_id: parent.api_key.unwrap().id,
        },
    ))
    .await
    .unwrap();
    let revoked = auth
        .who_am_i(authorized(&child.secret, WhoAmIRequest {}))
        .await
        .unwrap_err();
    assert_eq!(
        revoked.code(),
        Code::Unauthenticated,
        "revoked with its parent"
    );

    // The owner holds the bootstrap key; two more working keys reach the cap of three.
    for _ in 0..2 {
        key_with_roles(channel.clone(), &server.owner_key, &["viewer"]).await;
    }
    let capped = auth
        .create_api_key(authorized(
            &server.owner_key,
            CreateApiKeyRequest {
                name: "one too many".into(),
                roles: vec!["viewer".into()],
                expire_time: None,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(capped.code(), Code::ResourceExhausted, "{capped:?}");
}
