//! Loading, unloading and deleting models on every replica: the change is made here
//! (and, for a tenant's own model, recorded with its audit event in Postgres), then
//! announced to the other replicas.

use serde_json::json;

use super::{Catalog, CatalogError, announce::Action, files};
use crate::{
    audit::{self, NewEvent},
    auth::roles::PLATFORM_ADMIN,
    caller::Principal,
    config::DeviceChoice,
    inference::{ModelInfo, Scope},
    store::{self},
};

impl Catalog {
    /// Loads the model `reference` names on every replica (on `device` here).
    ///
    /// # Errors
    /// [`CatalogError::NotFound`]; [`CatalogError::Forbidden`] when a tenant admin names a
    /// platform model; store errors.
    pub async fn load(
        &self,
        principal: &Principal,
        reference: &str,
        device: Option<DeviceChoice>,
    ) -> Result<ModelInfo, CatalogError> {
        let model = self.operated(principal, reference, "load").await?;
        if model.owner.is_some() {
            self.set_serving(principal, &model.id, true).await?;
        }
        let registry = self.registry.clone();
        let (owner, id) = (model.owner, model.id.clone());
        let loaded = tokio::task::spawn_blocking(move || registry.load_model(owner, &id, device))
            .await
            .map_err(|err| CatalogError::Io(err.to_string()))?
            .ok_or(CatalogError::NotFound)?;
        self.announce(model.owner, &model.id, Action::Load { device })
            .await;
        Ok(loaded)
    }

    /// Unloads the model `reference` names on every replica.
    ///
    /// # Errors
    /// As [`Catalog::load`].
    pub async fn unload(
        &self,
        principal: &Principal,
        reference: &str,
    ) -> Result<ModelInfo, CatalogError> {
        let model = self.operated(principal, reference, "unload").await?;
        if model.owner.is_some() {
            self.set_serving(principal, &model.id, false).await?;
        }
        let unloaded = self
            .registry
            .unload_model(model.owner, &model.id)
            .ok_or(CatalogError::NotFound)?;
        self.announce(model.owner, &model.id, Action::Unload).await;
        Ok(unloaded)
    }

    /// Deletes the tenant's model `reference` names: its rows, its files on every
    /// replica; audited.
    ///
    /// # Errors
    /// [`CatalogError::NotFound`]; [`CatalogError::PlatformModel`] for a platform model.
    pub async fn delete(&self, principal: &Principal, reference: &str) -> Result<(), CatalogError> {
        let tenant = principal.tenant;
        let model = self
            .registry
            .get(Scope::Tenant(tenant), reference)
            .await?
            .ok_or(CatalogError::NotFound)?;
        if model.owner.is_none() {
            return Err(platform_model(&model.id));
        }
        let mut tx = self.db.begin_tenant(tenant).await?;
        let row = stored(&mut tx, &model.id).await?;
        store::tenant_models::delete(&mut tx, row.id).await?;
        let details = json!({ "sha256": model.manifest.sha256 });
        let event = NewEvent::by(principal, "model.delete", "model", &model.id, details);
        audit::append(&mut tx, tenant, &event).await?;
        tx.commit().await?;
        if let Some(folder) = self.registry.forget(tenant, &model.id) {
            files::remove_folder(&folder).await?;
        }
        self.announce(Some(tenant), &model.id, Action::Delete).await;
        tracing::info!(%tenant, model = %model.id, "tenant model deleted");
        Ok(())
    }

    /// The model `reference` names for `principal`, if they may `action` it: platform
    /// models need platform admins, a tenant's own its admins (the RPC's permission).
    async fn operated(
        &self,
        principal: &Principal,
        reference: &str,
        action: &str,
    ) -> Result<ModelInfo, CatalogError> {
        let model = self
            .registry
            .get(Scope::Tenant(principal.tenant), reference)
            .await?
            .ok_or(CatalogError::NotFound)?;
        if model.owner.is_none() && !principal.has_role(PLATFORM_ADMIN) {
            return Err(CatalogError::Forbidden(format!(
                "{} is a platform model, shared by every tenant: to {action} it needs                  platform-admin",
                model.id
            )));
        }
        Ok(model)
    }

    /// Records whether the tenant's model serves, with its audit event.
    async fn set_serving(
        &self,
        principal: &Principal,
        id: &str,
        serving: bool,
    ) -> Result<(), CatalogError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let row = stored(&mut tx, id).await?;
        store::tenant_models::set_serving(&mut tx, row.id, serving).await?;
        let action = if serving {
            "model.load"
        } else {
            "model.unload"
        };
        let event = NewEvent::by(principal, action, "model", id, json!({}));
        audit::append(&mut tx, principal.tenant, &event).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The scoped tenant's stored model `id` (`name@version`).
async fn stored(
    conn: &mut sqlx::PgConnection,
    id: &str,
) -> Result<store::tenant_models::TenantModelRow, CatalogError> {
    let (name, version) = id.split_once('@').ok_or(CatalogError::NotFound)?;
    store::tenant_models::find(conn, name, Some(version))
        .await?
        .ok_or(CatalogError::NotFound)
}

fn platform_model(id: &str) -> CatalogError {
    CatalogError::PlatformModel(format!(
        "{id} is a platform model: operators remove it from inference.models_dir"
    ))
}
