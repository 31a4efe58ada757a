//! Sealing and opening values with a tenant's data keys.

use std::{collections::HashMap, sync::Arc};

use aes_gcm::{Aes256Gcm, KeyInit};
use sqlx::PgConnection;

use super::{
    CryptoError, KeyWrapper,
    master_key::{open_with, seal_with},
};
use crate::{random::random_bytes, store, tenancy::TenantId};

/// Seals and opens tenant data; every call runs in the caller's tenant-scoped transaction.
#[derive(Clone)]
pub struct Sealer {
    wrapper: Arc<dyn KeyWrapper>,
}

/// Associated data binding a value to where it lives.
fn value_context(tenant: TenantId, table: &str, row: &str) -> Vec<u8> {
    format!("{tenant}|{table}|{row}").into_bytes()
}

/// Associated data binding a wrapped key to its tenant and version.
fn key_context(tenant: TenantId, version: i32) -> Vec<u8> {
    format!("{tenant}|data-key|{version}").into_bytes()
}

impl Sealer {
    /// Data keys wrapped by `wrapper`.
    pub fn new(wrapper: Arc<dyn KeyWrapper>) -> Self {
        Self { wrapper }
    }

    /// Seals `plaintext` for row `row` of `table` with the tenant's newest key (making the
    /// first key when it has none).
    ///
    /// # Errors
    /// [`CryptoError`] when a key cannot be made, read or unwrapped.
    pub async fn seal(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
        table: &str,
        row: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.keyring(tenant).seal(conn, table, row, plaintext).await
    }

    /// Opens a value sealed for row `row` of `table` of `tenant`.
    ///
    /// # Errors
    /// [`CryptoError`] when the key is gone or the value does not authenticate here.
    pub async fn open(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
        table: &str,
        row: &str,
        sealed: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.keyring(tenant).open(conn, table, row, sealed).await
    }

    /// The tenant's keys, unwrapped at most once each, for sealing or opening many values
    /// in one transaction (a page of messages).
    pub fn keyring(&self, tenant: TenantId) -> Keyring<'_> {
        Keyring {
            sealer: self,
            tenant,
            keys: HashMap::new(),
            latest: None,
        }
    }

    /// Starts a new key version for the tenant; later seals use it, older values stay
    /// readable. Returns the new version.
    ///
    /// # Errors
    /// [`CryptoError`] when the key cannot be made or stored.
    pub async fn rotate(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
    ) -> Result<i32, CryptoError> {
        let next = store::data_keys::latest(&mut *conn)
            .await?
            .map_or(1, |(version, _)| version + 1);
        Ok(self.new_key(conn, tenant, next).await?.0)
    }

    async fn new_key(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
        version: i32,
    ) -> Result<(i32, Aes256Gcm), CryptoError> {
        let key: [u8; 32] = random_bytes()?;
        let wrapped = self.wrapper.wrap(&key, &key_context(tenant, version))?;
        if !store::data_keys::insert(&mut *conn, tenant, version, &wrapped).await? {
            // Another call made this version first: use theirs.
            let wrapped = store::data_keys::get(conn, version)
                .await?
                .ok_or(CryptoError::MissingKey(version))?;
            return Ok((version, self.cipher(tenant, version, &wrapped)?));
        }
        Ok((version, Aes256Gcm::new(&key.into())))
    }

    fn cipher(
        &self,
        tenant: TenantId,
        version: i32,
        wrapped: &[u8],
    ) -> Result<Aes256Gcm, CryptoError> {
        let key = self
            .wrapper
            .unwrap_key(wrapped, &key_context(tenant, version))?;
        Ok(Aes256Gcm::new(&key.into()))
    }
}

/// A tenant's data keys for the values of one transaction; see [`Sealer::keyring`].
pub struct Keyring<'s> {
    sealer: &'s Sealer,
    tenant: TenantId,
    keys: HashMap<i32, Aes256Gcm>,
    latest: Option<i32>,
}

impl Keyring<'_> {
    /// Seals `plaintext` for row `row` of `table` with the tenant's newest key (making the
    /// first key when it has none).
    ///
    /// # Errors
    /// [`CryptoError`] when a key cannot be made, read or unwrapped.
    pub async fn seal(
        &mut self,
        conn: &mut PgConnection,
        table: &str,
        row: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let version = match self.latest {
            Some(version) => version,
            None => {
                let (version, cipher) = match store::data_keys::latest(&mut *conn).await? {
                    Some((version, wrapped)) => {
                        (version, self.sealer.cipher(self.tenant, version, &wrapped)?)
                    }
                    None => self.sealer.new_key(&mut *conn, self.tenant, 1).await?,
                };
                self.keys.insert(version, cipher);
                self.latest = Some(version);
                version
            }
        };
        let cipher = self
            .keys
            .get(&version)
            .ok_or(CryptoError::MissingKey(version))?;
        let mut sealed = version.to_be_bytes().to_vec();
        sealed.extend(seal_with(
            cipher,
            plaintext,
            &value_context(self.tenant, table, row),
        )?);
        Ok(sealed)
    }

    /// Opens a value sealed for row `row` of `table`.
    ///
    /// # Errors
    /// [`CryptoError`] when the key is gone or the value does not authenticate here.
    pub async fn open(
        &mut self,
        conn: &mut PgConnection,
        table: &str,
        row: &str,
        sealed: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let (version, rest) = sealed
            .split_first_chunk::<4>()
            .ok_or(CryptoError::Malformed)?;
        let version = i32::from_be_bytes(*version);
        if !self.keys.contains_key(&version) {
            let wrapped = store::data_keys::get(&mut *conn, version)
                .await?
                .ok_or(CryptoError::MissingKey(version))?;
            let cipher = self.sealer.cipher(self.tenant, version, &wrapped)?;
            self.keys.insert(version, cipher);
        }
        let cipher = self
            .keys
            .get(&version)
            .ok_or(CryptoError::MissingKey(version))?;
        open_with(cipher, rest, &value_context(self.tenant, table, row))
    }
}
