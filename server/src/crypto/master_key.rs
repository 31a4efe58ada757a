//! The master key that wraps tenants' data keys.

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use super::CryptoError;
use crate::random::random_bytes;

/// Wraps and unwraps data keys. The local implementation holds the master key in memory;
/// a KMS-backed one would call out instead.
pub trait KeyWrapper: Send + Sync {
    /// Encrypts `key` bound to `context`.
    ///
    /// # Errors
    /// [`CryptoError`] when no nonce can be made.
    fn wrap(&self, key: &[u8; 32], context: &[u8]) -> Result<Vec<u8>, CryptoError>;

    /// Decrypts a key wrapped with the same `context`.
    ///
    /// # Errors
    /// [`CryptoError::Unauthentic`] for another master key, context or altered bytes.
    fn unwrap_key(&self, wrapped: &[u8], context: &[u8]) -> Result<[u8; 32], CryptoError>;
}

/// A master key given in the configuration (`crypto.master_key`, 32 bytes, base64).
pub struct LocalMasterKey {
    cipher: Aes256Gcm,
}

impl LocalMasterKey {
    /// Parses the configured key.
    ///
    /// # Errors
    /// [`CryptoError::MasterKey`] when it is not 32 bytes of base64.
    pub fn from_base64(encoded: &SecretString) -> Result<Self, CryptoError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.expose_secret().trim())
            .map_err(|_| CryptoError::MasterKey("is not base64"))?;
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| {
            CryptoError::MasterKey("must be 32 bytes (base64 of `head -c 32 /dev/urandom`)")
        })?;
        Ok(Self { cipher })
    }
}

/// `nonce || ciphertext` of `plaintext` under `cipher` with `aad`.
pub(super) fn seal_with(
    cipher: &Aes256Gcm,
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let nonce_bytes: [u8; 12] = random_bytes()?;
    let ciphertext = cipher
        .encrypt(
            Nonce::from_slice(&nonce_bytes),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| CryptoError::Malformed)?;
    let mut out = Vec::with_capacity(12 + ciphertext.len());
    out.extend_from_slice(&nonce_bytes);
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// Opens what [`seal_with`] made.
pub(super) fn open_with(
    cipher: &Aes256Gcm,
    sealed: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    if sealed.len() < 12 + 16 {
        return Err(CryptoError::Malformed);
    }
    let (nonce, ciphertext) = sealed.split_at(12);
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| CryptoError::Unauthentic)
}

impl KeyWrapper for LocalMasterKey {
    fn wrap(&self, key: &[u8; 32], context: &[u8]) -> Result<Vec<u8>, CryptoError> {
        seal_with(&self.cipher, key, context)
    }

    fn unwrap_key(&self, wrapped: &[u8], context: &[u8]) -> Result<[u8; 32], CryptoError> {
        open_with(&self.cipher, wrapped, context)?
            .try_into()
            .map_err(|_| CryptoError::Malformed)
    }
}
