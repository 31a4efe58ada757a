//! Tenant identity: the id every tenant-owned row carries and the slug users type at login.
//! The ground floor: it imports nothing of the crate. The tenant of a request comes only
//! from its verified credentials; `store::TenantTx` is where it scopes queries.

use std::fmt;

use uuid::Uuid;

/// A tenant's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(pub Uuid);

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Whether `name` may name something a tenant defines (a role, a provider, a model alias, a
/// profile, a plugin): 1 to 63 lowercase letters, digits, `_` or `-`, starting with a letter.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && name.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
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
