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
    codexcontinue::tenancy::scope(&mut tx, tenant)
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
