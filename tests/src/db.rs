//! A fresh database per test, copied from a template migrated once per migration set.

use std::hash::{DefaultHasher, Hash, Hasher};

use codexcontinue::{config::DatabaseConfig, store};
use secrecy::SecretString;
use sqlx::{Connection, PgConnection};
use url::Url;
use uuid::Uuid;

use crate::TestEnv;

/// Login role the server runs as in tests: a member of `codexcontinue_app`, nothing more.
const APP_ROLE: &str = "cc_test_app";
const APP_PASSWORD: &str = "cc_test_app";

/// A database of one test.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    /// Its name.
    pub name: String,
    /// URL for the server: the unprivileged application role.
    pub app_url: String,
    /// URL of the owner (superuser), for `migrate` and for tests that tamper with rows.
    pub owner_url: String,
}

impl TestDatabase {
    /// A new database with the current schema.
    pub async fn migrated() -> Self {
        Self::create(true).await
    }

    /// A new database without any schema (to test migrations from nothing). The
    /// application role exists, as it would on a prepared cluster.
    pub async fn empty() -> Self {
        Self::create(false).await
    }

    async fn create(from_template: bool) -> Self {
        let env = TestEnv::get();
        let mut admin = connect(&env.postgres_admin_url).await;
        let template = template_name();
        // One test at a time builds the template and copies it (a template being copied
        // must not be in use by anything else).
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(lock_key(&template))
            .execute(&mut admin)
            .await
            .expect("advisory lock");
        ensure_template(&mut admin, &env, &template).await;
        let name = format!("t_{}", Uuid::new_v4().simple());
        let create = if from_template {
            format!("CREATE DATABASE {name} TEMPLATE {template}")
        } else {
            format!("CREATE DATABASE {name}")
        };
        exec(&mut admin, &create).await;
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(lock_key(&template))
            .execute(&mut admin)
            .await
            .expect("advisory unlock");
        Self::named(&env, name)
    }

    fn named(env: &TestEnv, name: String) -> Self {
        Self {
            app_url: with_database(
                &env.postgres_admin_url,
                &name,
                Some((APP_ROLE, APP_PASSWORD)),
            ),
            owner_url: with_database(&env.postgres_admin_url, &name, None),
            name,
        }
    }

    /// A connection as the owner (bypasses row-level security).
    pub async fn owner(&self) -> PgConnection {
        connect(&self.owner_url).await
    }

    /// A connection as the application role (subject to row-level security).
    pub async fn app(&self) -> PgConnection {
        connect(&self.app_url).await
    }

    /// Drops the database (benchmarks run against a cluster `make clean-test-dbs` does not
    /// sweep); connections to it are ended first.
    ///
    /// # Panics
    /// When the cluster refuses.
    pub async fn drop_database(self) {
        let env = TestEnv::get();
        let mut admin = connect(&env.postgres_admin_url).await;
        sqlx::query(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .execute(&mut admin)
            .await
            .expect("drop database");
    }
}

/// Template name derived from the embedded migrations, so a changed migration set gets a
/// fresh template instead of a stale one.
fn template_name() -> String {
    let mut hasher = DefaultHasher::new();
    for migration in store::MIGRATOR.iter() {
        migration.version.hash(&mut hasher);
        migration.checksum.hash(&mut hasher);
    }
    format!("cc_tpl_{:016x}", hasher.finish())
}

fn lock_key(template: &str) -> i64 {
    let mut hasher = DefaultHasher::new();
    template.hash(&mut hasher);
    hasher.finish() as i64
}

async fn ensure_template(admin: &mut PgConnection, env: &TestEnv, template: &str) {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(template)
            .fetch_one(&mut *admin)
            .await
            .expect("query pg_database");
    if exists {
        return;
    }
    let building = format!("{template}_building");
    exec(admin, &format!("DROP DATABASE IF EXISTS {building}")).await;
    exec(admin, &format!("CREATE DATABASE {building}")).await;
    let config = DatabaseConfig {
        url: Some(SecretString::from(with_database(
            &env.postgres_admin_url,
            &building,
            None,
        ))),
        ..DatabaseConfig::default()
    };
    let floor = codexcontinue::config::AuditConfig::default().min_retention_days;
    store::migrate(&config, floor)
        .await
        .expect("migrate the template");
    exec(
        admin,
        &format!("ALTER DATABASE {building} RENAME TO {template}"),
    )
    .await;
    exec(
        admin,
        &format!(
            "DO $$ BEGIN
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                 CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{APP_PASSWORD}' IN ROLE codexcontinue_app;
               END IF;
             END $$"
        ),
    )
    .await;
}

/// `url` pointing at database `name`, optionally as another user.
fn with_database(url: &str, name: &str, user: Option<(&str, &str)>) -> String {
    let mut url = Url::parse(url).expect("admin URL parses");
    url.set_path(&format!("/{name}"));
    if let Some((user, password)) = user {
        url.set_username(user).expect("URL takes a user");
        url.set_password(Some(password))
            .expect("URL takes a password");
    }
    url.to_string()
}

async fn connect(url: &str) -> PgConnection {
    PgConnection::connect(url)
        .await
        .unwrap_or_else(|err| panic!("connect to test Postgres: {err}"))
}

async fn exec(conn: &mut PgConnection, sql: &str) {
    sqlx::raw_sql(sql)
        .execute(conn)
        .await
        .unwrap_or_else(|err| panic!("{sql}: {err}"));
}
