//! PostgreSQL: the pool, the start-up safety checks, migrations, and the repositories.
//! All SQL of the server lives below this module.
//!
//! Tenant data is read and written in tenant-scoped transactions ([`TenantTx`]), so
//! row-level security applies to every query; the pool is private to this module.

pub mod api_keys;
pub mod audit;
pub mod conversations;
pub mod data_keys;
pub mod identity_providers;
pub mod leases;
pub mod memories;
pub mod model_routes;
pub mod plugins;
pub mod profiles;
pub mod providers;
pub mod role_policies;
pub mod sealed;
pub mod sessions;
pub mod tenant_models;
pub mod tenants;
mod transactions;
pub mod usage;
pub mod users;

pub use transactions::{LazyTenantTx, PlatformTx, TenantTx};

use std::{str::FromStr, time::Duration};

use secrecy::{ExposeSecret, SecretString};
use sqlx::{
    Connection, PgConnection, PgPool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use crate::config::{DatabaseConfig, mask_url};

/// How long a pooled connection may sit idle before it is pinged on its way out.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// The migrations in `migrations/`, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Why a database operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL does not parse as a Postgres connection string.
    #[error("{setting} is not a valid Postgres URL ({source})")]
    BadUrl {
        /// Which setting held it.
        setting: &'static str,
        /// The parse error.
        source: sqlx::Error,
    },
    /// The server could not connect.
    #[error(
        "cannot connect to Postgres at {url}: {reason}; start it (`make services`) or fix {setting}"
    )]
    Unreachable {
        /// The URL tried, password masked.
        url: String,
        /// Which setting held it.
        setting: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The server's role could bypass row-level security.
    #[error(
        "database role {role:?} {problem}; connect as a role without SUPERUSER and BYPASSRLS \
         that does not own the tables (see README, \"Database roles\"), so that row-level \
         security isolates tenants"
    )]
    PrivilegedRole {
        /// The role connected as.
        role: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The schema is older (or newer) than this binary.
    #[error(
        "database schema is at version {applied}, this server needs {expected}: run \
         `codexcontinue migrate` (or `codexcontinue serve --migrate`)"
    )]
    SchemaMismatch {
        /// Newest migration applied to the database (0: none).
        applied: i64,
        /// Newest migration this binary carries.
        expected: i64,
    },
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    /// Postgres answered something the schema rules out.
    #[error("database returned an inconsistent result: {0}")]
    Inconsistent(&'static str),
}

/// The server's connection pool, checked to be safe to serve with.
#[derive(Clone, Debug)]
pub struct Database {
    pool: PgPool,
}

impl Database {
    /// Connects with `config.url` and verifies that the role cannot bypass row-level
    /// security and that the schema is exactly as new as this binary.
    ///
    /// # Errors
    /// [`StoreError`] saying which of these failed and how to fix it.
    pub async fn connect(config: &DatabaseConfig) -> Result<Self, StoreError> {
        let url = config.url.as_ref().ok_or_else(|| StoreError::Unreachable {
            url: String::new(),
            setting: "database.url (DATABASE_URL)",
            reason: "no URL configured".to_owned(),
        })?;
        let pool = open_pool(url, "database.url (DATABASE_URL)", config).await?;
        let database = Self { pool };
        database.check_role().await?;
        database.check_schema().await?;
        Ok(database)
    }

    /// The pool, for the repositories; everything above `store` opens a transaction
    /// instead (see [`TenantTx`]).
    fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Round-trips a trivial query: the readiness probe.
    ///
    /// # Errors
    /// [`StoreError::Query`] when Postgres does not answer.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection, waiting for those in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn check_role(&self) -> Result<(), StoreError> {
        let (role, superuser, bypass_rls, owns_tables): (String, bool, bool, bool) =
            sqlx::query_as(
                "SELECT current_user::text, r.rolsuper, r.rolbypassrls,
                        EXISTS (SELECT 1 FROM pg_tables t
                                WHERE t.schemaname = 'public' AND t.tablename = 'tenants'
                                  AND pg_has_role(current_user, t.tableowner, 'MEMBER'))
                 FROM pg_roles r WHERE r.rolname = current_user",
            )
            .fetch_one(&self.pool)
            .await?;
        let problem = if superuser {
            Some("is a superuser")
        } else if bypass_rls {
            Some("has BYPASSRLS")
        } else if owns_tables {
            Some("owns the tables (or is a member of their owner)")
        } else {
            None
        };
        match problem {
            Some(problem) => Err(StoreError::PrivilegedRole { role, problem }),
            None => Ok(()),
        }
    }

    async fn check_schema(&self) -> Result<(), StoreError> {
        let expected = latest_migration();
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await
                .or_else(|err| match &err {
                    // No migrations table yet, or no right to read it: not migrated.
                    sqlx::Error::Database(db)
                        if matches!(db.code().as_deref(), Some("42P01" | "42501")) =>
                    {
                        Ok(None)
                    }
                    _ => Err(err),
                })?;
        let applied = applied.unwrap_or(0);
        if applied != expected {
            return Err(StoreError::SchemaMismatch { applied, expected });
        }
        Ok(())
    }
}

/// Newest migration version embedded in this binary.
pub fn latest_migration() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Applies pending migrations with `config.migration_url` (falling back to `url`).
/// Returns the versions applied now.
///
/// # Errors
/// [`StoreError`] when the database is unreachable or a migration fails.
pub async fn migrate(
    config: &DatabaseConfig,
    retention_floor_days: i32,
) -> Result<Vec<i64>, StoreError> {
    let url = config
        .migration_url()
        .ok_or_else(|| StoreError::Unreachable {
            url: String::new(),
            setting: "database.migration_url",
            reason: "no URL configured".to_owned(),
        })?;
    let pool = open_pool(
        url,
        "database.migration_url (CODEXCONTINUE_DATABASE__MIGRATION_URL) or DATABASE_URL",
        config,
    )
    .await?;
    let before: Vec<i64> = applied_versions(&pool).await.unwrap_or_default();
    MIGRATOR.run(&pool).await?;
    // The floor lives where only the schema owner (who migrates) can write it.
    sqlx::query("UPDATE audit_retention_floor SET days = $1")
        .bind(retention_floor_days)
        .execute(&pool)
        .await?;
    let after = applied_versions(&pool).await?;
    pool.close().await;
    Ok(after.into_iter().filter(|v| !before.contains(v)).collect())
}

async fn applied_versions(pool: &PgPool) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
        .fetch_all(pool)
        .await
}

async fn open_pool(
    url: &SecretString,
    setting: &'static str,
    config: &DatabaseConfig,
) -> Result<PgPool, StoreError> {
    let options = PgConnectOptions::from_str(url.expose_secret())
        .map_err(|source| StoreError::BadUrl { setting, source })?
        .application_name("codexcontinue");
    let unreachable = |reason: String| StoreError::Unreachable {
        url: mask_url(url.expose_secret()),
        setting,
        reason,
    };
    // One direct connection first: the pool retries failed connects until its timeout and
    // then reports only that, while this reports the actual cause at once.
    match tokio::time::timeout(config.connect_timeout, PgConnection::connect_with(&options)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
        }
        Ok(Err(err)) => return Err(unreachable(describe_connect_error(&err))),
        Err(_) => {
            return Err(unreachable(format!(
                "no answer within {:?}",
                config.connect_timeout
            )));
        }
    }
    PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(config.connect_timeout)
        .idle_timeout(Some(Duration::from_secs(600)))
        // A connection in steady use is handed out as it is: pinging it first would add a
        // round trip to every transaction. One that sat idle (Postgres may have restarted
        // meanwhile) is pinged, and replaced if it does not answer.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_AFTER_IDLE {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .connect_with(options)
        .await
        .map_err(|err| unreachable(describe_connect_error(&err)))
}

/// A connect error on one line, without the nesting sqlx adds.
fn describe_connect_error(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Database(db) => db.message().to_owned(),
        sqlx::Error::PoolTimedOut => "timed out".to_owned(),
        other => other.to_string().replace('\n', " "),
    }
}
