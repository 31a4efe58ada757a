//! Envelope encryption with tenant data keys: round trip, binding to tenant and row,
//! tamper evidence, rotation, crypto-shredding.

use std::sync::Arc;

use codexcontinue::{
    crypto::{LocalMasterKey, Sealer},
    tenancy::TenantId,
};
use codexcontinue_tests::{TestDatabase, TestEnv};
use secrecy::SecretString;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

fn sealer(master_key: &str) -> Sealer {
    Sealer::new(Arc::new(
        LocalMasterKey::from_base64(&SecretString::from(master_key.to_owned())).unwrap(),
    ))
}

async fn tenant(app: &mut PgConnection, slug: &str) -> TenantId {
    let id = Uuid::now_v7();
    sqlx::query("SELECT codexcontinue_create_tenant($1, $2, $2)")
        .bind(id)
        .bind(slug)
        .execute(&mut *app)
        .await
        .unwrap();
    TenantId(id)
}

async fn scoped(app: &mut PgConnection, tenant: TenantId) -> sqlx::Transaction<'_, sqlx::Postgres> {
    let mut tx = app.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
        .bind(tenant.0.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    tx
}

#[tokio::test]
async fn sealed_values_open_only_in_their_place_and_survive_rotation_but_not_shredding() {
    let db = TestDatabase::migrated().await;
    let master = TestEnv::get().master_key;
    let sealer = sealer(&master);
    let mut app = db.app().await;
    let acme = tenant(&mut app, "acme").await;
    let globex = tenant(&mut app, "globex").await;

    let mut tx = scoped(&mut app, acme).await;
    let sealed = sealer
        .seal(&mut tx, acme, "notes", "row-1", b"patient data")
        .await
        .unwrap();
    assert!(
        !sealed.windows(12).any(|w| w == b"patient data"),
        "ciphertext only"
    );
    assert_eq!(&sealed[..4], &1i32.to_be_bytes(), "first key version");
    let opened = sealer
        .open(&mut tx, acme, "notes", "row-1", &sealed)
        .await
        .unwrap();
    assert_eq!(opened, b"patient data");
    // Bound to its row and table.
    assert!(
        sealer
            .open(&mut tx, acme, "notes", "row-2", &sealed)
            .await
            .is_err()
    );
    assert!(
        sealer
            .open(&mut tx, acme, "other", "row-1", &sealed)
            .await
            .is_err()
    );
    // Tampering is detected.
    let mut tampered = sealed.clone();
    *tampered.last_mut().unwrap() ^= 1;
    assert!(
        sealer
            .open(&mut tx, acme, "notes", "row-1", &tampered)
            .await
            .is_err()
    );
    // Another master key cannot unwrap the data key.
    let other_master = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=";
    assert!(sealer_ok(other_master));
    assert!(
        self::sealer(other_master)
            .open(&mut tx, acme, "notes", "row-1", &sealed)
            .await
            .is_err()
    );

    // Rotation: new values use version 2, old ones still open.
    assert_eq!(sealer.rotate(&mut tx, acme).await.unwrap(), 2);
    let newer = sealer
        .seal(&mut tx, acme, "notes", "row-3", b"later")
        .await
        .unwrap();
    assert_eq!(&newer[..4], &2i32.to_be_bytes());
    assert_eq!(
        sealer
            .open(&mut tx, acme, "notes", "row-1", &sealed)
            .await
            .unwrap(),
        b"patient data"
    );
    tx.commit().await.unwrap();

    // Another tenant has none of acme's keys, so the value does not open there.
    let mut tx = scoped(&mut app, globex).await;
    assert!(
        sealer
            .open(&mut tx, globex, "notes", "row-1", &sealed)
            .await
            .is_err()
    );
    tx.rollback().await.unwrap();

    // Crypto-shredding: without acme's keys nothing sealed for it opens any more.
    let mut tx = scoped(&mut app, acme).await;
    sqlx::query("DELETE FROM tenant_data_keys")
        .execute(&mut *tx)
        .await
        .unwrap();
    assert!(
        sealer
            .open(&mut tx, acme, "notes", "row-1", &sealed)
            .await
            .is_err()
    );
    assert!(
        sealer
            .open(&mut tx, acme, "notes", "row-3", &newer)
            .await
            .is_err()
    );
}

fn sealer_ok(key: &str) -> bool {
    LocalMasterKey::from_base64(&SecretString::from(key.to_owned())).is_ok()
}

#[tokio::test]
async fn rotating_a_data_key_seals_stored_secrets_again_with_the_new_version() {
    use codexcontinue::pb::v1::{
        IdentityProvider, SetIdentityProviderRequest, admin_service_client::AdminServiceClient,
    };
    use codexcontinue_tests::{TestServer, grpc::authorized, server::command};

    let server = TestServer::start().await;
    let env = TestEnv::get();
    AdminServiceClient::new(server.channel().await)
        .set_identity_provider(authorized(
            &server.owner_key,
            SetIdentityProviderRequest {
                identity_provider: Some(IdentityProvider {
                    // Resolvable here and allowed for the suite's stand-ins; never fetched.
                    issuer_url: "http://127.0.0.1:9".into(),
                    client_id: "codexcontinue".into(),
                    allowed_email_domains: vec!["*".into()],
                    ..IdentityProvider::default()
                }),
                client_secret: "client-secret-1".into(),
            },
        ))
        .await
        .unwrap();
    let stored = || async {
        let mut owner = server.db.owner().await;
        sqlx::query_as::<_, (Uuid, Vec<u8>)>(
            "SELECT tenant_id, client_secret_sealed FROM identity_providers",
        )
        .fetch_one(&mut owner)
        .await
        .unwrap()
    };
    let (tenant, before) = stored().await;
    assert_eq!(&before[..4], &1i32.to_be_bytes());

    let rotate = || async {
        let output = command()
            .args(["crypto", "rotate", "--tenant", "acme"])
            .env("DATABASE_URL", &server.db.app_url)
            .env("CODEXCONTINUE_CRYPTO__MASTER_KEY", &env.master_key)
            .output()
            .await
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        );
        assert!(output.status.success(), "{stdout} {stderr}");
        (stdout, stderr)
    };
    let (stdout, _) = rotate().await;
    assert!(
        stdout.contains("data key version 2, 1 value(s) sealed again"),
        "{stdout}"
    );

    let (_, after) = stored().await;
    assert_eq!(
        &after[..4],
        &2i32.to_be_bytes(),
        "sealed with the new version"
    );
    let tenant = TenantId(tenant);
    let mut app = server.db.app().await;
    let mut tx = scoped(&mut app, tenant).await;
    let opened = sealer(&env.master_key)
        .open(
            &mut tx,
            tenant,
            "identity_providers",
            &tenant.to_string(),
            &after,
        )
        .await
        .unwrap();
    assert_eq!(opened, b"client-secret-1");
    drop(tx);
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_events WHERE actor_id = 'crypto-rotate' ORDER BY seq",
    )
    .fetch_all(&mut server.db.owner().await)
    .await
    .unwrap();
    assert_eq!(actions, ["data_key.rotate", "data.reseal"]);

    // A rotation interrupted after its new key (version 3) was made: the next run finishes
    // that re-seal instead of minting version 4, and says how far it got.
    let mut tx = scoped(&mut app, tenant).await;
    assert_eq!(
        sealer(&env.master_key)
            .rotate(&mut tx, tenant)
            .await
            .unwrap(),
        3
    );
    tx.commit().await.unwrap();
    let (stdout, stderr) = rotate().await;
    assert!(
        stdout.contains("data key version 3, 1 value(s) sealed again"),
        "{stdout}"
    );
    assert!(
        stderr.contains("identity_providers: 1 value(s) sealed again"),
        "{stderr}"
    );
    let (stdout, _) = rotate().await;
    assert!(
        stdout.contains("data key version 4, 1 value(s) sealed again"),
        "nothing pending: a new version ({stdout})"
    );
}

#[tokio::test]
async fn rotation_seals_every_message_again_page_by_page() {
    use codexcontinue::crypto;
    use codexcontinue_tests::{
        bench::stores, sealed::conversation_with_messages, server::bootstrap,
    };

    const MESSAGES: usize = 450;
    let env = TestEnv::get();
    let db = TestDatabase::migrated().await;
    bootstrap(&db, "acme", "owner@acme.example").await;
    let (database, _) = stores(&db).await;
    let sealer = sealer(&env.master_key);
    let (tenant, user): (Uuid, Uuid) = sqlx::query_as("SELECT tenant_id, id FROM users LIMIT 1")
        .fetch_one(&mut db.owner().await)
        .await
        .unwrap();
    let tenant = TenantId(tenant);
    let ids = conversation_with_messages(&database, &sealer, (tenant, user), MESSAGES, 100).await;
    assert_eq!(ids.len(), MESSAGES);

    let mut reports = Vec::new();
    let rotation = crypto::rotate_data_key(&database, &sealer, tenant, "test", |table, done| {
        reports.push((table.to_owned(), done));
    })
    .await
    .unwrap();
    assert_eq!(rotation.version, 2);
    assert_eq!(rotation.resealed as usize, MESSAGES + 1);
    let pages: Vec<u64> = reports
        .iter()
        .filter(|(table, _)| table == "messages")
        .map(|(_, done)| *done)
        .collect();
    assert_eq!(pages, [200, 400, 450]);
    let mut tx = database.begin_tenant(tenant).await.unwrap();
    let stored: Vec<(Uuid, Vec<u8>)> =
        sqlx::query_as("SELECT id, content_sealed FROM messages ORDER BY id")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    assert!(stored.iter().all(|(_, v)| v[..4] == 2i32.to_be_bytes()));
    let last = stored.last().unwrap();
    let opened = sealer
        .open(&mut tx, tenant, "messages", &last.0.to_string(), &last.1)
        .await
        .unwrap();
    assert_eq!(opened, format!("message {}", MESSAGES - 1).into_bytes());
}
