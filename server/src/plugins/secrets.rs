//! What a plugin's row keeps sealed: its static credential, and the key that turns the
//! tenant's and users' ids into ids only this plugin sees (stable for the plugin, useless
//! for linking what two plugins saw, never a name or an email).

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    crypto::{CryptoError, PLUGIN_SECRETS, Sealer},
    random::random_bytes,
    tenancy::TenantId,
};

/// A plugin's secrets, open.
#[derive(Clone)]
pub(super) struct Secrets {
    /// Sent as `authorization: Bearer …`.
    pub(super) credential: Option<String>,
    subject_key: [u8; 32],
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("credential_set", &self.credential.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    credential: Option<String>,
    subject_key: String,
}

impl Secrets {
    /// New secrets around `credential`, with a fresh key.
    pub(super) fn new(credential: Option<String>) -> Result<Self, CryptoError> {
        Ok(Self {
            credential,
            subject_key: random_bytes()?,
        })
    }

    /// The id the plugin sees for the `kind` (`tenant`, `user`) with id `id`.
    pub(super) fn opaque_id(&self, kind: &str, id: Uuid) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.subject_key)
            .expect("HMAC takes keys of any length");
        mac.update(kind.as_bytes());
        mac.update(b":");
        mac.update(id.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// Sealed for plugin `plugin` of `tenant`.
    pub(super) async fn seal(
        &self,
        sealer: &Sealer,
        conn: &mut PgConnection,
        tenant: TenantId,
        plugin: Uuid,
    ) -> Result<Vec<u8>, CryptoError> {
        let plain = serde_json::to_vec(&Sealed {
            credential: self.credential.clone(),
            subject_key: hex::encode(self.subject_key),
        })
        .map_err(|_| CryptoError::Malformed)?;
        sealer
            .seal(
                conn,
                tenant,
                PLUGIN_SECRETS.table,
                &plugin.to_string(),
                &plain,
            )
            .await
    }

    /// Opens what [`Secrets::seal`] sealed.
    pub(super) async fn open(
        sealer: &Sealer,
        conn: &mut PgConnection,
        tenant: TenantId,
        plugin: Uuid,
        sealed: &[u8],
    ) -> Result<Self, CryptoError> {
        let plain = sealer
            .open(
                conn,
                tenant,
                PLUGIN_SECRETS.table,
                &plugin.to_string(),
                sealed,
            )
            .await?;
        let stored: Sealed = serde_json::from_slice(&plain).map_err(|_| CryptoError::Malformed)?;
        let subject_key = hex::decode(&stored.subject_key)
            .ok()
            .and_then(|key| <[u8; 32]>::try_from(key).ok())
            .ok_or(CryptoError::Malformed)?;
        Ok(Self {
            credential: stored.credential,
            subject_key,
        })
    }
}
