//! Tenant identity and the row-level-security transaction every tenant-owned query runs in.
//!
//! The tenant of a request comes only from its verified credentials. Queries on
//! tenant-owned tables run in a transaction that first sets the transaction-local
//! `app.tenant_id`; Postgres policies then hide every other tenant's rows, so a mistake in a
//! WHERE clause cannot leak across tenants. (`set_config(..., true)` instead of `SET LOCAL`,
//! because `SET` takes no bind parameters; transaction-local, so nothing leaks to the next
//! user of a pooled connection.)

use std::fmt;

use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

use crate::store::{self, Database, StoreError};

/// A tenant's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(pub Uuid);

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A tenant's URL-safe unique name: 3..63 characters of `a-z`, `0-9` and `-`, starting and
/// ending with a letter or digit. Users type it at login.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantSlug(String);

/// Why a slug was refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "tenant slug {0:?} is invalid: use 3 to 63 characters of a-z, 0-9 and '-', starting and \
     ending with a letter or digit"
)]
pub struct InvalidSlug(pub String);

impl TenantSlug {
    /// Validates `slug`.
    ///
    /// # Errors
    /// [`InvalidSlug`] when it breaks the rules above.
    pub fn parse(slug: &str) -> Result<Self, InvalidSlug> {
        let bytes = slug.as_bytes();
        let allowed = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
        let valid = (3..=63).contains(&bytes.len())
            && bytes.iter().all(allowed)
            && bytes[0] != b'-'
            && bytes[bytes.len() - 1] != b'-';
        if valid {
            Ok(Self(slug.to_owned()))
        } else {
            Err(InvalidSlug(slug.to_owned()))
        }
    }

    /// The slug text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Opens a transaction in which only `tenant`'s rows exist.
///
/// `BEGIN` and the scope go to Postgres as one simple query: one round trip instead of
/// two for every transaction the server opens. The tenant id is a UUID, written in hex
/// and dashes, so it is inlined safely.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn begin(
    db: &Database,
    tenant: TenantId,
) -> Result<Transaction<'static, Postgres>, StoreError> {
    let begin = format!(
        "BEGIN; SELECT set_config('app.tenant_id', '{}', true)",
        tenant.0.hyphenated()
    );
    Ok(db.pool().begin_with(begin).await?)
}

/// A tenant-scoped transaction begun by the first read that needs it, so a call that
/// finds what it needs in a cache never talks to Postgres.
pub struct LazyTransaction<'a> {
    db: &'a Database,
    tenant: TenantId,
    tx: Option<Transaction<'static, Postgres>>,
}

impl<'a> LazyTransaction<'a> {
    /// Nothing begun yet; reads will see only `tenant`'s rows.
    pub fn new(db: &'a Database, tenant: TenantId) -> Self {
        Self {
            db,
            tenant,
            tx: None,
        }
    }

    /// The transaction, begun now if it was not.
    ///
    /// # Errors
    /// [`StoreError::Query`] when Postgres fails.
    pub async fn get(&mut self) -> Result<&mut PgConnection, StoreError> {
        let tx = match &mut self.tx {
            Some(tx) => tx,
            empty @ None => empty.insert(begin(self.db, self.tenant).await?),
        };
        Ok(&mut **tx)
    }

    /// Commits what was begun.
    ///
    /// # Errors
    /// [`StoreError::Query`] when Postgres fails.
    pub async fn commit(self) -> Result<(), StoreError> {
        if let Some(tx) = self.tx {
            tx.commit().await?;
        }
        Ok(())
    }
}

/// Whether `tenant` is active (not suspended or deleted): background jobs of a tenant that
/// is not skip their work.
///
/// # Errors
/// [`StoreError`] when Postgres fails.
pub async fn is_active(db: &Database, tenant: TenantId) -> Result<bool, StoreError> {
    let mut tx = begin(db, tenant).await?;
    let record = store::tenants::current(&mut tx).await?;
    tx.commit().await?;
    Ok(record.is_some_and(|t| t.state == "active"))
}

/// Limits an open transaction to `tenant`'s rows from now until it ends.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn scope(conn: &mut PgConnection, tenant: TenantId) -> Result<(), StoreError> {
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
        .bind(tenant.0.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for good in ["abc", "acme-health", "a1b", &"x".repeat(63)] {
            assert!(TenantSlug::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "ab",
            "-abc",
            "abc-",
            "ABC",
            "a_b_c",
            "a b c",
            &"x".repeat(64),
        ] {
            assert!(TenantSlug::parse(bad).is_err(), "{bad}");
        }
    }
}
