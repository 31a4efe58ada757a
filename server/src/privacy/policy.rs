//! A tenant's choice of what happens to prompts containing protected information, in the
//! form the database stores it (`tenants.phi_policy`).

use std::{fmt, str::FromStr};

use sqlx::PgConnection;
use thiserror::Error;

use crate::store::{self, StoreError};

/// What to do with a prompt in which protected information was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhiPolicy {
    /// Send it as is (the finding is still reported, for the audit trail).
    Allow,
    /// Replace each value by a placeholder, and put the values back in the answer.
    Redact,
    /// Refuse the prompt.
    Refuse,
}

impl PhiPolicy {
    /// The stored form: `allow`, `redact` or `refuse`.
    pub fn as_str(self) -> &'static str {
        match self {
            PhiPolicy::Allow => "allow",
            PhiPolicy::Redact => "redact",
            PhiPolicy::Refuse => "refuse",
        }
    }
}

impl fmt::Display for PhiPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored policy that is none of `allow`, `redact`, `refuse`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown PHI policy {0:?} (expected allow, redact or refuse)")]
pub struct UnknownPhiPolicy(pub String);

impl FromStr for PhiPolicy {
    type Err = UnknownPhiPolicy;

    /// Parses the stored form exactly (no case folding, no whitespace): the database
    /// constrains the column to these strings, so anything else is corruption, not input
    /// to be forgiving about.
    ///
    /// # Errors
    /// [`UnknownPhiPolicy`] for any other string.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "allow" => Ok(PhiPolicy::Allow),
            "redact" => Ok(PhiPolicy::Redact),
            "refuse" => Ok(PhiPolicy::Refuse),
            other => Err(UnknownPhiPolicy(other.to_owned())),
        }
    }
}

/// The PHI policy of the tenant `conn`'s transaction is scoped to. The column's CHECK
/// admits only the three names; anything else is treated as the strictest policy.
///
/// # Errors
/// [`StoreError`] when Postgres fails.
pub async fn tenant_policy(conn: &mut PgConnection) -> Result<PhiPolicy, StoreError> {
    Ok(store::tenants::current(conn)
        .await?
        .and_then(|tenant| tenant.phi_policy.parse().ok())
        .unwrap_or(PhiPolicy::Refuse))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_stored_strings_and_round_trips() {
        for policy in [PhiPolicy::Allow, PhiPolicy::Redact, PhiPolicy::Refuse] {
            assert_eq!(policy.as_str().parse::<PhiPolicy>(), Ok(policy));
            assert_eq!(policy.to_string(), policy.as_str());
        }
    }

    #[test]
    fn rejects_anything_else() {
        for bad in ["", "Allow", "REDACT", " refuse", "deny", "block"] {
            let err = bad.parse::<PhiPolicy>().unwrap_err();
            assert_eq!(err, UnknownPhiPolicy(bad.to_owned()));
            assert!(err.to_string().contains("expected allow, redact or refuse"));
        }
    }
}
