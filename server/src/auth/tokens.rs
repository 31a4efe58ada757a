//! Opaque bearer tokens that name their tenant: `<prefix><tenant>_<secret>`.
//!
//! Session tokens, login states and login codes carry their tenant's id in the clear (it is
//! not a secret) so that their records can live under the tenant's Redis keys and be found
//! before the caller is known. The secret part is 256 random bits; only its owner has it,
//! and only a SHA-256 of the whole token is stored.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    random::{RandomnessUnavailable, random_secret},
    tenancy::TenantId,
};

/// A token just made.
pub struct TenantToken {
    /// The whole token, for its owner only.
    pub token: String,
    /// What is stored to recognise it.
    pub sha256: [u8; 32],
}

/// Makes a token `<prefix><tenant>_<64 hex>`.
///
/// # Errors
/// [`RandomnessUnavailable`] when the OS has no random bytes.
pub fn issue(prefix: &str, tenant: TenantId) -> Result<TenantToken, RandomnessUnavailable> {
    let token = format!(
        "{prefix}{}_{}",
        tenant.0.simple(),
        hex::encode(random_secret()?)
    );
    let sha256 = Sha256::digest(token.as_bytes()).into();
    Ok(TenantToken { token, sha256 })
}

/// The tenant and hash of a presented token with `prefix`, if it has that shape.
pub fn parse(prefix: &str, token: &str) -> Option<(TenantId, [u8; 32])> {
    let rest = token.strip_prefix(prefix)?;
    let (tenant, secret) = rest.split_once('_')?;
    let valid_secret = secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit());
    if tenant.len() != 32 || !valid_secret {
        return None;
    }
    let tenant = Uuid::try_parse(tenant).ok()?;
    Some((TenantId(tenant), Sha256::digest(token.as_bytes()).into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let tenant = TenantId(Uuid::now_v7());
        let issued = issue("cc_sess_", tenant).unwrap();
        assert_eq!(
            parse("cc_sess_", &issued.token),
            Some((tenant, issued.sha256))
        );
        assert_eq!(parse("cc_code_", &issued.token), None);
        assert_eq!(parse("cc_sess_", "cc_sess_nope_abc"), None);
        let truncated = &issued.token[..issued.token.len() - 1];
        assert_eq!(parse("cc_sess_", truncated), None);
    }
}
