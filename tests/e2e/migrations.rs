//! Migrations from an empty database, and the row-level security they set up, checked as
//! the unprivileged application role.

use codexcontinue_tests::{TestDatabase, server::command};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

/// Runs `codexcontinue migrate` (which needs no Redis) on `db`.
async fn migrate(db: &TestDatabase) -> (bool, String) {
    let output = command()
        .arg("migrate")
        .env("DATABASE_URL", &db.app_url)
        .env("CODEXCONTINUE_DATABASE__MIGRATION_URL", &db.owner_url)
        .output()
        .await
        .expect("run migrate");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn migrate_from_empty_then_again_is_a_no_op() {
    let db = TestDatabase::empty().await;
    let (ok, stderr) = migrate(&db).await;
    assert!(ok, "{stderr}");
    assert!(stderr.contains("applied migrations [1"), "{stderr}");
    let (ok, stderr) = migrate(&db).await;
    assert!(ok, "{stderr}");
    assert!(stderr.contains("up to date"), "{stderr}");

    let mut owner = db.owner().await;
    let vector: Option<String> =
        sqlx::query_scalar("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            .fetch_optional(&mut owner)
            .await
            .unwrap();
    assert!(vector.is_some(), "pgvector installed");
}

#[tokio::test]
async fn every_tenant_owned_table_has_forced_row_level_security() {
    let db = TestDatabase::migrated().await;
    let mut owner = db.owner().await;
    let tables: Vec<(String, bool, bool, bool)> = sqlx::query_as(
        "SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity,
                EXISTS (SELECT 1 FROM pg_policies p
                        WHERE p.schemaname = 'public' AND p.tablename = c.relname
                          AND p.policyname = 'tenant_isolation')
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind = 'r'
           AND (c.relname = 'tenants' OR EXISTS (
                SELECT 1 FROM pg_attribute a
                WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped))",
    )
    .fetch_all(&mut owner)
    .await
    .unwrap();
    assert!(tables.len() >= 4, "{tables:?}");
    for (table, enabled, forced, policy) in tables {
        assert!(
            enabled && forced && policy,
            "{table}: RLS enabled={enabled} forced={forced} tenant_isolation policy={policy}"
        );
    }
}

/// Creates a tenant through the platform function, as the application role.
async fn create_tenant(app: &mut PgConnection, slug: &str) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query("SELECT codexcontinue_create_tenant($1, $2, $3)")
        .bind(id)
        .bind(slug)
        .bind(slug)
        .execute(&mut *app)
        .await
        .unwrap();
    id
}

/// Inserts a user of `tenant` (the transaction's scope decides whether that is allowed).
async fn insert_user(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    tenant: Uuid,
    email: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO users (tenant_id, id, email) VALUES ($1, $2, $3)")
        .bind(tenant)
        .bind(Uuid::now_v7())
        .bind(email)
        .execute(&mut **tx)
        .await
        .map(drop)
}

async fn scoped(app: &mut PgConnection, tenant: Uuid) -> sqlx::Transaction<'_, sqlx::Postgres> {
    let mut tx = app.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
        .bind(tenant.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    tx
}

#[tokio::test]
async fn application_role_sees_only_the_scoped_tenant() {
    let db = TestDatabase::migrated().await;
    let mut app = db.app().await;
    let a = create_tenant(&mut app, "tenant-a").await;
    let b = create_tenant(&mut app, "tenant-b").await;

    // Writing another tenant's row from A's scope is refused by the policy.
    let mut tx = scoped(&mut app, a).await;
    let cross = insert_user(&mut tx, b, "x@b.example").await.unwrap_err();
    assert!(cross.to_string().contains("row-level security"), "{cross}");
    tx.rollback().await.unwrap();

    let mut tx = scoped(&mut app, a).await;
    insert_user(&mut tx, a, "a@a.example").await.unwrap();
    let visible: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM tenants")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(visible, vec![a]);
    tx.commit().await.unwrap();

    let mut tx = scoped(&mut app, b).await;
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(users, 0, "tenant B sees none of A's users");
    tx.rollback().await.unwrap();

    // Outside any scope nothing tenant-owned is visible, even with no WHERE clause.
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&mut app)
        .await
        .unwrap();
    assert_eq!(users, 0);
    let tenants: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants")
        .fetch_one(&mut app)
        .await
        .unwrap();
    assert_eq!(tenants, 0);

    // The owner does see both: the rows are there.
    let mut owner = db.owner().await;
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&mut owner)
        .await
        .unwrap();
    assert_eq!(users, 1);
}

#[tokio::test]
async fn application_role_cannot_change_the_schema_or_delete_tenants() {
    let db = TestDatabase::migrated().await;
    let mut app = db.app().await;
    for sql in [
        "CREATE TABLE sneaky (id int)",
        "ALTER TABLE users DISABLE ROW LEVEL SECURITY",
        "DROP POLICY tenant_isolation ON users",
        "DELETE FROM tenants",
        "SET app.tenant_id = ''; SELECT set_config('row_security', 'off', false)",
    ] {
        let result = sqlx::raw_sql(sql).execute(&mut app).await;
        if sql.contains("row_security") {
            // Turning row security off is allowed to be set, but then queries on RLS tables
            // must fail rather than bypass the policies.
            if result.is_ok() {
                let err = sqlx::query("SELECT count(*) FROM users")
                    .execute(&mut app)
                    .await
                    .unwrap_err();
                assert!(err.to_string().contains("row-level security"), "{err}");
            }
            continue;
        }
        let err = result.expect_err(sql);
        assert!(
            err.to_string().contains("permission denied")
                || err.to_string().contains("must be owner"),
            "{sql}: {err}"
        );
    }
}

/// A query with no tenant filter at all (the worst WHERE-clause bug) stays inside the
/// scoped tenant, and the check really depends on RLS: with RLS disabled the same query
/// leaks, so this test would catch RLS being switched off.
#[tokio::test]
async fn a_query_missing_its_tenant_filter_leaks_only_without_rls() {
    let db = TestDatabase::migrated().await;
    let mut app = db.app().await;
    let a = create_tenant(&mut app, "tenant-a").await;
    let b = create_tenant(&mut app, "tenant-b").await;
    for (tenant, email) in [(a, "a@a.example"), (b, "b@b.example")] {
        let mut tx = scoped(&mut app, tenant).await;
        insert_user(&mut tx, tenant, email).await.unwrap();
        tx.commit().await.unwrap();
    }
    let buggy_query = "SELECT email FROM users"; // forgot `WHERE tenant_id = $1`

    let mut tx = scoped(&mut app, a).await;
    let seen: Vec<String> = sqlx::query_scalar(buggy_query)
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(seen, ["a@a.example"]);
    tx.rollback().await.unwrap();

    let mut owner = db.owner().await;
    sqlx::raw_sql("ALTER TABLE users DISABLE ROW LEVEL SECURITY")
        .execute(&mut owner)
        .await
        .unwrap();
    let mut tx = scoped(&mut app, a).await;
    let leaked: Vec<String> = sqlx::query_scalar(buggy_query)
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(
        leaked.len(),
        2,
        "without RLS the unfiltered query sees every tenant"
    );
}

#[tokio::test]
async fn the_deletion_job_knows_every_tenant_owned_table() {
    let db = TestDatabase::migrated().await;
    let mut owner = db.owner().await;
    let mut tables: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_attribute a ON a.attrelid = c.oid
         WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attname = 'tenant_id'
           AND NOT a.attisdropped",
    )
    .fetch_all(&mut owner)
    .await
    .unwrap();
    tables.sort();
    let mut known: Vec<&str> = codexcontinue::tenant_deletion::TENANT_TABLES
        .iter()
        .chain(codexcontinue::tenant_deletion::RETAINED_TABLES)
        .copied()
        .collect();
    known.sort_unstable();
    assert_eq!(
        tables, known,
        "add new tenant-owned tables to tenant_deletion::TENANT_TABLES (or RETAINED_TABLES)"
    );
}
