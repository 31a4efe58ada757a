//! The tenant's OpenID Connect provider settings, as owners manage them.
//!
//! Whoever sets the provider decides who may sign in as whom, so only owners may change it
//! (the permission table keeps `identity_provider:write` for owners). A change of issuer
//! or client id also drops the stored client secret (unless a new one comes with the
//! change) and unlinks every user's subject: subjects of one issuer or client mean nothing
//! at another, and users link again by their verified email at their next login.

use serde_json::json;

use super::directory::{DirectoryError, check_assignable};
use crate::{
    audit::{self, NewEvent},
    caller::Principal,
    crypto::{CryptoError, IDP_CLIENT_SECRET, Sealer},
    egress::{Egress, EgressError},
    store::{self, Database, StoreError, identity_providers::IdentityProviderRecord},
};

/// Why a provider change was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum IdentityProviderError {
    /// A group maps to a role the caller may not hand out.
    #[error(transparent)]
    Role(#[from] DirectoryError),
    /// The secret could not be sealed.
    #[error("sealing the client secret: {0}")]
    Crypto(#[from] CryptoError),
    /// The issuer is an address tenants may not reach.
    #[error(transparent)]
    Issuer(#[from] EgressError),
    /// Postgres failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads and changes the caller's tenant's identity provider.
#[derive(Clone)]
pub struct IdentityProviders {
    db: Database,
    sealer: Sealer,
    egress: Egress,
}

impl IdentityProviders {
    /// Settings in `db`, client secrets sealed by `sealer`, issuers only where `egress`
    /// allows.
    pub fn new(db: Database, sealer: Sealer, egress: Egress) -> Self {
        Self { db, sealer, egress }
    }

    /// The tenant's provider, if it has one (never with its secret).
    ///
    /// # Errors
    /// [`IdentityProviderError::Store`] when Postgres fails.
    pub async fn get(
        &self,
        principal: &Principal,
    ) -> Result<Option<IdentityProviderRecord>, IdentityProviderError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let provider = store::identity_providers::get(&mut tx).await?;
        tx.commit().await?;
        Ok(provider)
    }

    /// Creates or replaces the provider with `settings` (whose sealed secret is ignored);
    /// a non-empty `client_secret` replaces the stored one. Audited in the same transaction.
    ///
    /// # Errors
    /// [`IdentityProviderError`] for a group role the caller may not give, or a failure.
    pub async fn set(
        &self,
        principal: &Principal,
        mut settings: IdentityProviderRecord,
        client_secret: &str,
    ) -> Result<IdentityProviderRecord, IdentityProviderError> {
        for role in settings.group_roles.0.values().flatten() {
            check_assignable(principal, role)?;
        }
        self.egress.check_url(&settings.issuer_url).await?;
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let current = store::identity_providers::get(&mut tx).await?;
        let rebound = current.as_ref().is_some_and(|current| {
            current.issuer_url != settings.issuer_url || current.client_id != settings.client_id
        });
        settings.client_secret_sealed = if !client_secret.is_empty() {
            self.sealer
                .seal(
                    &mut tx,
                    principal.tenant,
                    IDP_CLIENT_SECRET.table,
                    &principal.tenant.to_string(),
                    client_secret.as_bytes(),
                )
                .await?
        } else if rebound {
            Vec::new()
        } else {
            current
                .map(|current| current.client_secret_sealed)
                .unwrap_or_default()
        };
        let unlinked = if rebound {
            store::users::unlink_external_identities(&mut tx).await?
        } else {
            0
        };
        let saved = store::identity_providers::upsert(&mut tx, &settings).await?;
        let details = json!({
            "issuer": saved.issuer_url,
            "client_id_or_issuer_changed": rebound,
            "client_secret_changed": !client_secret.is_empty(),
            "client_secret_dropped": rebound && client_secret.is_empty(),
            "subjects_unlinked": unlinked,
        });
        let event = NewEvent::by(
            principal,
            "identity_provider.set",
            "identity_provider",
            principal.tenant,
            details,
        );
        audit::append(&mut tx, principal.tenant, &event).await?;
        tx.commit().await?;
        Ok(saved)
    }
}
