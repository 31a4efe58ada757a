//! Rate limits per caller and per tenant, shared through Redis, and what happens when
//! Redis is gone.

use codexcontinue::pb::v1::{
    CreateApiKeyRequest, WhoAmIRequest, auth_service_client::AuthServiceClient,
};
use codexcontinue_tests::{OwnedRedis, ServerOptions, TestDatabase, TestServer, grpc::authorized};
use tonic::{Code, transport::Channel};

async fn server_with(env: &[(&str, &str)], redis_url: Option<String>) -> TestServer {
    TestServer::spawn(
        TestDatabase::migrated().await,
        ServerOptions {
            redis_url,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        },
    )
    .await
}

async fn who_am_i(channel: Channel, key: &str) -> Result<(), tonic::Status> {
    AuthServiceClient::new(channel)
        .who_am_i(authorized(key, WhoAmIRequest {}))
        .await
        .map(drop)
}

async fn new_key(channel: Channel, owner: &str) -> String {
    AuthServiceClient::new(channel)
        .create_api_key(authorized(
            owner,
            CreateApiKeyRequest {
                name: "second".into(),
                roles: vec!["viewer".into()],
                expire_time: None,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .secret
}

#[tokio::test]
async fn a_caller_over_its_burst_is_told_when_to_retry() {
    let server = server_with(
        &[
            ("CODEXCONTINUE_RATE_LIMIT__PER_CALLER_BURST", "3"),
            ("CODEXCONTINUE_RATE_LIMIT__PER_CALLER_PER_SECOND", "0.01"),
        ],
        None,
    )
    .await;
    let channel = server.channel().await;
    // The owner's key creates a second key (its first call), then calls twice more.
    let other = new_key(channel.clone(), &server.owner_key).await;
    for _ in 0..2 {
        who_am_i(channel.clone(), &server.owner_key).await.unwrap();
    }
    let limited = who_am_i(channel.clone(), &server.owner_key)
        .await
        .unwrap_err();
    assert_eq!(limited.code(), Code::ResourceExhausted, "{limited:?}");
    let retry_after: u64 = limited
        .metadata()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=100).contains(&retry_after),
        "retry-after {retry_after}"
    );
    // Another caller of the same tenant has its own allowance.
    who_am_i(channel, &other).await.unwrap();
}

#[tokio::test]
async fn a_tenant_over_its_burst_is_limited_across_its_callers_only() {
    let server = server_with(
        &[
            ("CODEXCONTINUE_RATE_LIMIT__PER_TENANT_BURST", "4"),
            ("CODEXCONTINUE_RATE_LIMIT__PER_TENANT_PER_SECOND", "0.01"),
        ],
        None,
    )
    .await;
    let globex = server.add_tenant("globex").await;
    let channel = server.channel().await;
    let second = new_key(channel.clone(), &server.owner_key).await; // 1
    who_am_i(channel.clone(), &server.owner_key).await.unwrap(); // 2
    who_am_i(channel.clone(), &second).await.unwrap(); // 3
    who_am_i(channel.clone(), &server.owner_key).await.unwrap(); // 4
    let limited = who_am_i(channel.clone(), &second).await.unwrap_err();
    assert_eq!(limited.code(), Code::ResourceExhausted);
    // Other tenants are not affected.
    who_am_i(channel, &globex).await.unwrap();
}

#[tokio::test]
async fn without_redis_calls_fail_closed_unless_configured_open() {
    for (fail_open, expect_ok) in [("false", false), ("true", true)] {
        let mut redis = OwnedRedis::start().await;
        let server = server_with(
            &[("CODEXCONTINUE_RATE_LIMIT__FAIL_OPEN", fail_open)],
            Some(redis.url()),
        )
        .await;
        let channel = server.channel().await;
        who_am_i(channel.clone(), &server.owner_key).await.unwrap();
        redis.stop().await;
        let result = who_am_i(channel, &server.owner_key).await;
        if expect_ok {
            result.unwrap();
        } else {
            assert_eq!(result.unwrap_err().code(), Code::Unavailable);
        }
    }
}

#[tokio::test]
async fn platform_admins_set_a_tenants_own_limits() {
    use codexcontinue::pb::v1::{
        GetTenantRequest, RateLimits, TenantSettings, UpdateTenantRequest,
        admin_service_client::AdminServiceClient,
    };
    let server = server_with(&[], None).await;
    let platform = server.add_platform_admin().await;
    let channel = server.channel().await;
    let mut admin = AdminServiceClient::new(channel.clone());
    let acme = admin
        .get_tenant(authorized(&server.owner_key, GetTenantRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap();
    let update = |key: &str, limits: RateLimits| {
        authorized(
            key,
            UpdateTenantRequest {
                tenant_id: acme.id.clone(),
                settings: Some(TenantSettings {
                    rate_limits: Some(limits),
                    ..TenantSettings::default()
                }),
                ..UpdateTenantRequest::default()
            },
        )
    };
    let tight = RateLimits {
        per_caller_per_second: 0.01,
        per_caller_burst: 2,
        per_tenant_per_second: 1000.0,
        per_tenant_burst: 1000,
    };
    let owner_cannot = admin
        .update_tenant(update(&server.owner_key, tight))
        .await
        .unwrap_err();
    assert_eq!(owner_cannot.code(), Code::PermissionDenied);
    let invalid = admin
        .update_tenant(update(
            &platform,
            RateLimits {
                per_caller_burst: 0,
                ..tight
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument);

    let updated = admin
        .update_tenant(update(&platform, tight))
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap();
    assert_eq!(updated.settings.unwrap().rate_limits, Some(tight));
    for _ in 0..2 {
        who_am_i(channel.clone(), &server.owner_key).await.unwrap();
    }
    let limited = who_am_i(channel.clone(), &server.owner_key)
        .await
        .unwrap_err();
    assert_eq!(limited.code(), Code::ResourceExhausted);

    // All zero: back to the server's defaults.
    admin
        .update_tenant(update(&platform, RateLimits::default()))
        .await
        .unwrap();
    who_am_i(channel, &server.owner_key).await.unwrap();
}
