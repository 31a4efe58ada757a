//! `codexcontinue bootstrap`: first tenant, owner and API key; idempotent.

use codexcontinue_tests::{TestDatabase, TestEnv, server::command};

async fn bootstrap(db: &TestDatabase, tenant: &str, email: &str) -> (Option<i32>, String, String) {
    let env = TestEnv::get();
    let output = command()
        .args(["bootstrap", "--tenant", tenant, "--admin-email", email])
        .env("DATABASE_URL", &db.app_url)
        .env("REDIS_URL", &env.redis_url)
        .output()
        .await
        .expect("run bootstrap");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn bootstrap_creates_tenant_owner_and_hashed_key_once() {
    let db = TestDatabase::migrated().await;
    let (code, stdout, stderr) = bootstrap(&db, "acme-health", "admin@acme.example").await;
    assert_eq!(code, Some(0), "{stderr}");
    let key = stdout.trim();
    assert!(
        key.starts_with("cc_live_") && key.len() == 8 + 64,
        "{stdout}"
    );
    assert!(stderr.contains("created tenant acme-health"), "{stderr}");

    let mut owner = db.owner().await;
    let (email, role): (String, String) = sqlx::query_as(
        "SELECT u.email, r.role FROM users u
         JOIN role_assignments r ON r.tenant_id = u.tenant_id AND r.user_id = u.id
         JOIN tenants t ON t.id = u.tenant_id WHERE t.slug = 'acme-health'",
    )
    .fetch_one(&mut owner)
    .await
    .unwrap();
    assert_eq!(
        (email.as_str(), role.as_str()),
        ("admin@acme.example", "owner")
    );

    // Only the hash is stored; the key itself appears nowhere in the table.
    let (hash, prefix, roles): (Vec<u8>, String, Vec<String>) =
        sqlx::query_as("SELECT secret_sha256, prefix, roles FROM api_keys")
            .fetch_one(&mut owner)
            .await
            .unwrap();
    assert_eq!(hash, codexcontinue::auth::api_key::digest(key).to_vec());
    assert!(key.starts_with(&prefix) && prefix.len() < key.len());
    assert_eq!(roles, vec!["owner".to_owned()]);
    let dump: String = sqlx::query_scalar("SELECT row_to_json(k)::text FROM api_keys k")
        .fetch_one(&mut owner)
        .await
        .unwrap();
    assert!(!dump.contains(&key[8..]), "secret stored in clear: {dump}");

    let (code, stdout, stderr) = bootstrap(&db, "acme-health", "other@acme.example").await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.trim().is_empty(), "no second credential: {stdout}");
    assert!(stderr.contains("already exists"), "{stderr}");
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys")
        .fetch_one(&mut owner)
        .await
        .unwrap();
    assert_eq!(keys, 1);
}

#[tokio::test]
async fn bootstrap_rejects_bad_input_without_writing() {
    let db = TestDatabase::migrated().await;
    let (code, _, stderr) = bootstrap(&db, "Bad Slug", "admin@acme.example").await;
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("tenant slug \"Bad Slug\" is invalid"),
        "{stderr}"
    );
    let (code, _, stderr) = bootstrap(&db, "good-slug", "not-an-email").await;
    assert_eq!(code, Some(1));
    assert!(stderr.contains("is not an email address"), "{stderr}");
    let mut owner = db.owner().await;
    let tenants: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants")
        .fetch_one(&mut owner)
        .await
        .unwrap();
    assert_eq!(tenants, 0);
}
