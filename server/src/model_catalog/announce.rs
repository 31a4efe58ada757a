//! Model changes every replica follows. The replica that serves LoadModel, UnloadModel or
//! DeleteModel applies the change itself and announces it on a Redis channel; the others
//! apply it to their copy: platform models are loaded or unloaded the same way; tenant
//! models they fetched are dropped, so the next request fetches them as they are now
//! (their serving state is kept in Postgres). After a lost subscription a replica drops
//! every tenant model it fetched, so a missed announcement cannot leave it stale.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Catalog;
use crate::{
    cache::{Cache, CacheError},
    config::DeviceChoice,
    tenancy::TenantId,
};

/// What happened to a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub(super) enum Action {
    /// Loaded, on this device when one was asked for.
    Load {
        /// The device asked for.
        device: Option<DeviceChoice>,
    },
    /// Unloaded.
    Unload,
    /// Deleted (tenant models).
    Delete,
}

/// An announcement: which replica, whose model, what.
#[derive(Debug, Serialize, Deserialize)]
struct Change {
    replica: Uuid,
    owner: Option<Uuid>,
    model: String,
    #[serde(flatten)]
    action: Action,
}

impl Catalog {
    fn channel(&self) -> String {
        self.cache.keys().platform(&["model-changes"])
    }

    /// Tells the other replicas that `owner`'s model `model` changed. A failure is logged:
    /// the change is made here, and replicas that miss it catch up when they resubscribe.
    pub(super) async fn announce(&self, owner: Option<TenantId>, model: &str, action: Action) {
        let change = Change {
            replica: self.replica,
            owner: owner.map(|t| t.0),
            model: model.to_owned(),
            action,
        };
        let Ok(message) = serde_json::to_string(&change) else {
            return;
        };
        if let Err(err) = self.cache.publish(&self.channel(), &message).await {
            tracing::error!(error = %err, model, "cannot announce a model change to the other replicas");
        }
    }

    /// Follows other replicas' announcements until `stop` resolves.
    pub async fn listen(self: std::sync::Arc<Self>, stop: impl Future<Output = ()>) {
        Cache::keep_following("model changes", stop, || self.follow()).await;
    }

    async fn follow(&self) -> Result<(), CacheError> {
        let mut subscription = self.cache.subscribe(&self.channel()).await?;
        self.registry.forget_tenant_models();
        while let Some(payload) = subscription.next().await {
            let change = serde_json::from_str::<Change>(&payload).ok();
            match change {
                Some(change) if change.replica == self.replica => {}
                Some(change) => self.apply(change).await,
                None => tracing::warn!("ignoring a malformed model change announcement"),
            }
        }
        Ok(())
    }

    async fn apply(&self, change: Change) {
        let owner = change.owner.map(TenantId);
        match (owner, change.action) {
            (None, Action::Load { device }) => {
                let registry = self.registry.clone();
                let model = change.model.clone();
                let loaded =
                    tokio::task::spawn_blocking(move || registry.load_model(None, &model, device))
                        .await;
                if let Err(err) = loaded {
                    tracing::error!(error = %err, model = %change.model, "announced load failed");
                }
            }
            (_, Action::Unload) => {
                self.registry.unload_model(owner, &change.model);
            }
            (Some(tenant), Action::Load { .. } | Action::Delete) => {
                if let Some(folder) = self.registry.forget(tenant, &change.model)
                    && change.action == Action::Delete
                    && let Err(err) = super::files::remove_folder(&folder).await
                {
                    tracing::warn!(error = %err, "cannot remove a deleted model's files");
                }
            }
            (None, Action::Delete) => {
                tracing::warn!(model = %change.model, "ignoring the deletion of a platform model");
            }
        }
    }
}
