//! API keys for SDK and service clients.
//!
//! A key is `cc_live_` followed by 64 hex digits (256 random bits from the OS). The prefix
//! makes keys recognisable to secret scanners and people; the first characters after it are
//! kept as a display prefix to tell keys apart. Only the SHA-256 of the whole key is stored:
//! with 256 bits of entropy a fast hash is enough, no password hashing needed.

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::random::RandomnessUnavailable;
use crate::random::random_secret;

/// Every key starts with this.
pub const KEY_PREFIX: &str = "cc_live_";

/// Hex digits after [`KEY_PREFIX`] kept as the key's display prefix.
const DISPLAY_PREFIX_HEX: usize = 8;

/// A newly made key: the secret exists only here, to be shown once.
pub struct IssuedApiKey {
    /// Id of the key record.
    pub id: Uuid,
    /// The whole key, to hand to the client once.
    pub secret: SecretString,
    /// Recognisable start of the key, e.g. `cc_live_3f9a1b2c`.
    pub prefix: String,
    /// What is stored to recognise the key later.
    pub secret_sha256: [u8; 32],
}

impl IssuedApiKey {
    /// Makes a new random key.
    ///
    /// # Errors
    /// [`RandomnessUnavailable`] when the OS cannot supply random bytes.
    pub fn generate() -> Result<Self, RandomnessUnavailable> {
        let secret = format!("{KEY_PREFIX}{}", hex::encode(random_secret()?));
        let prefix = secret[..KEY_PREFIX.len() + DISPLAY_PREFIX_HEX].to_owned();
        let secret_sha256 = digest(&secret);
        Ok(Self {
            id: Uuid::now_v7(),
            secret: SecretString::from(secret),
            prefix,
            secret_sha256,
        })
    }

    /// The secret, for the one place that shows it.
    pub fn expose(&self) -> &str {
        self.secret.expose_secret()
    }
}

/// The stored form of a presented key.
pub fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_random_and_hashed() {
        let a = IssuedApiKey::generate().unwrap();
        let b = IssuedApiKey::generate().unwrap();
        assert!(a.expose().starts_with(KEY_PREFIX));
        assert_eq!(a.expose().len(), KEY_PREFIX.len() + 64);
        assert!(a.expose().starts_with(&a.prefix));
        assert_ne!(a.expose(), b.expose());
        assert_eq!(digest(a.expose()), a.secret_sha256);
        assert_ne!(a.secret_sha256, b.secret_sha256);
    }
}
