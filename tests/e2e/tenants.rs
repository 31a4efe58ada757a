//! Tenant lifecycle on the platform operator's path: create, list, get, update, suspend
//! (credentials stop at once), resume and delete.

use codexcontinue::pb::v1::{
    CreateTenantRequest, DeleteTenantRequest, GetTenantRequest, ListTenantsRequest, PhiPolicy,
    ResumeTenantRequest, SuspendTenantRequest, TenantSettings, TenantState, UpdateTenantRequest,
    WhoAmIRequest, admin_service_client::AdminServiceClient,
    auth_service_client::AuthServiceClient,
};
use codexcontinue_tests::{TestServer, grpc::authorized};
use tonic::Code;
use tonic_types::StatusExt;

#[tokio::test]
async fn platform_admins_run_the_tenant_lifecycle() {
    let server = TestServer::start().await;
    let platform = server.add_platform_admin().await;
    let channel = server.channel().await;
    let mut admin = AdminServiceClient::new(channel.clone());
    let mut auth = AuthServiceClient::new(channel);

    let created = admin
        .create_tenant(authorized(
            &platform,
            CreateTenantRequest {
                slug: "initech".into(),
                display_name: "Initech".into(),
                settings: Some(TenantSettings {
                    phi_policy: PhiPolicy::Refuse.into(),
                    rate_limits: None,
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap();
    assert_eq!(created.state(), TenantState::Active);
    assert_eq!(created.settings.unwrap().phi_policy(), PhiPolicy::Refuse);

    let duplicate = admin
        .create_tenant(authorized(
            &platform,
            CreateTenantRequest {
                slug: "initech".into(),
                ..CreateTenantRequest::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), Code::AlreadyExists);
    let bad = admin
        .create_tenant(authorized(
            &platform,
            CreateTenantRequest {
                slug: "Not A Slug".into(),
                ..CreateTenantRequest::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(
        bad.get_error_details()
            .bad_request()
            .unwrap()
            .field_violations[0]
            .field,
        "slug"
    );
    let owner_cannot = admin
        .create_tenant(authorized(
            &server.owner_key,
            CreateTenantRequest {
                slug: "sneaky".into(),
                ..CreateTenantRequest::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(owner_cannot.code(), Code::PermissionDenied);

    // Listing pages through every tenant.
    let mut slugs = Vec::new();
    let mut token = String::new();
    loop {
        let page = admin
            .list_tenants(authorized(
                &platform,
                ListTenantsRequest {
                    page_size: 2,
                    page_token: token,
                    ..ListTenantsRequest::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        slugs.extend(page.tenants.into_iter().map(|t| t.slug));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    slugs.sort();
    assert_eq!(slugs, ["acme", "initech", "platform"]);

    // A tenant owner sees and renames only their own tenant.
    let own = admin
        .get_tenant(authorized(&server.owner_key, GetTenantRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap();
    assert_eq!(own.slug, "acme");
    let other = admin
        .get_tenant(authorized(
            &server.owner_key,
            GetTenantRequest {
                tenant_id: created.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::NotFound);
    let renamed = admin
        .update_tenant(authorized(
            &server.owner_key,
            UpdateTenantRequest {
                display_name: "ACME Health".into(),
                ..UpdateTenantRequest::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap();
    assert_eq!(renamed.display_name, "ACME Health");

    // Suspension stops the tenant's credentials at once; resuming restores them.
    admin
        .suspend_tenant(authorized(
            &platform,
            SuspendTenantRequest {
                tenant_id: own.id.clone(),
                reason: "unpaid".into(),
            },
        ))
        .await
        .unwrap();
    let refused = auth
        .who_am_i(authorized(&server.owner_key, WhoAmIRequest {}))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert!(refused.message().contains("suspended"));
    admin
        .resume_tenant(authorized(
            &platform,
            ResumeTenantRequest {
                tenant_id: own.id.clone(),
            },
        ))
        .await
        .unwrap();
    auth.who_am_i(authorized(&server.owner_key, WhoAmIRequest {}))
        .await
        .unwrap();

    // Deletion needs the slug as confirmation and is final.
    let unconfirmed = admin
        .delete_tenant(authorized(
            &platform,
            DeleteTenantRequest {
                tenant_id: created.id.clone(),
                confirm_slug: "acme".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(unconfirmed.code(), Code::InvalidArgument);
    let deleted = admin
        .delete_tenant(authorized(
            &platform,
            DeleteTenantRequest {
                tenant_id: created.id.clone(),
                confirm_slug: "initech".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap();
    assert_eq!(deleted.state(), TenantState::Deleted);
    let revive = admin
        .resume_tenant(authorized(
            &platform,
            ResumeTenantRequest {
                tenant_id: created.id,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(revive.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn a_deleted_tenants_data_is_destroyed_and_others_kept() {
    use codexcontinue_tests::{ServerOptions, TestDatabase, WAIT_LIMIT};
    let server = TestServer::spawn(
        TestDatabase::migrated().await,
        ServerOptions {
            env: vec![(
                "CODEXCONTINUE_AUTH__TENANT_DELETION_INTERVAL".into(),
                "50ms".into(),
            )],
            ..ServerOptions::default()
        },
    )
    .await;
    let platform = server.add_platform_admin().await;
    let globex_key = server.add_tenant("globex").await;
    let channel = server.channel().await;
    let globex = AuthServiceClient::new(channel.clone())
        .who_am_i(authorized(&globex_key, WhoAmIRequest {}))
        .await
        .unwrap()
        .into_inner()
        .principal
        .unwrap();
    let globex_id = uuid::Uuid::parse_str(&globex.tenant_id).unwrap();
    // More rows than one transaction deletes.
    let many = codexcontinue::tenant_deletion::ROWS_PER_TRANSACTION * 2 + 17;
    sqlx::query(
        "INSERT INTO usage_events
             (tenant_id, id, user_id, model, prompt_tokens, completion_tokens, cost_micros,
              latency_ms)
         SELECT $1, gen_random_uuid(), gen_random_uuid(), 'm', 1, 1, 0, 1
         FROM generate_series(1, $2)",
    )
    .bind(globex_id)
    .bind(many)
    .execute(&mut server.db.owner().await)
    .await
    .unwrap();
    // Redis keys of both tenants (on a cluster, each tenant's in its own slot).
    let mut redis = server.redis().await;
    for part in ["window", "working", "forgotten"] {
        let _: () = ::redis::AsyncCommands::set(
            &mut redis,
            server.tenant_key(globex_id, &[part, "x"]),
            "v",
        )
        .await
        .unwrap();
    }
    let acme_id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM tenants WHERE slug = 'acme'")
        .fetch_one(&mut server.db.owner().await)
        .await
        .unwrap();
    let acme_window = server.tenant_key(acme_id, &["window", "x"]);
    let _: () = ::redis::AsyncCommands::set(&mut redis, &acme_window, "v")
        .await
        .unwrap();
    AdminServiceClient::new(channel)
        .delete_tenant(authorized(
            &platform,
            DeleteTenantRequest {
                tenant_id: globex.tenant_id.clone(),
                confirm_slug: "globex".into(),
            },
        ))
        .await
        .unwrap();

    let mut owner = server.db.owner().await;
    let started = std::time::Instant::now();
    loop {
        let done: bool =
            sqlx::query_scalar("SELECT data_deleted_at IS NOT NULL FROM tenants WHERE id = $1")
                .bind(globex_id)
                .fetch_one(&mut owner)
                .await
                .unwrap();
        if done {
            break;
        }
        assert!(started.elapsed() < WAIT_LIMIT, "deletion job never ran");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_attribute a ON a.attrelid = c.oid
         WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attname = 'tenant_id'",
    )
    .fetch_all(&mut owner)
    .await
    .unwrap();
    let retained = codexcontinue::tenant_deletion::RETAINED_TABLES;
    for table in tables.iter().filter(|t| !retained.contains(&t.as_str())) {
        let (globex_rows, others): (i64, i64) = sqlx::query_as(&format!(
            "SELECT count(*) FILTER (WHERE tenant_id = $1), count(*) FILTER (WHERE tenant_id <> $1) FROM {table}"
        ))
        .bind(globex_id)
        .fetch_one(&mut owner)
        .await
        .unwrap();
        assert_eq!(
            globex_rows, 0,
            "{table} still holds the deleted tenant's rows"
        );
        if table == "users" || table == "api_keys" {
            assert!(others > 0, "{table}: other tenants' rows must stay");
        }
    }
    let globex_keys: Vec<String> = ::redis::AsyncCommands::keys(
        &mut redis,
        format!("{}*", server.tenant_key(globex_id, &[])),
    )
    .await
    .unwrap();
    assert!(globex_keys.is_empty(), "Redis keeps {globex_keys:?}");
    let acme_kept: bool = ::redis::AsyncCommands::exists(&mut redis, &acme_window)
        .await
        .unwrap();
    assert!(acme_kept, "another tenant's Redis keys must stay");
    // The tenant row stays as the record of the deletion.
    let state: String = sqlx::query_scalar("SELECT state FROM tenants WHERE id = $1")
        .bind(globex_id)
        .fetch_one(&mut owner)
        .await
        .unwrap();
    assert_eq!(state, "deleted");
    let counted: serde_json::Value = sqlx::query_scalar(
        "SELECT details FROM audit_events WHERE tenant_id = $1 AND action = 'tenant.data_destroyed'",
    )
    .bind(globex_id)
    .fetch_one(&mut owner)
    .await
    .unwrap();
    assert_eq!(
        counted["rows"]["usage_events"], many,
        "every batch counted: {counted}"
    );
}
