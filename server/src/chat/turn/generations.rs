//! Replies being streamed, cancellable from any replica: a generation is registered in
//! Redis (whose it is) and in this replica's table (how to stop it); `CancelGeneration` on
//! any replica checks the owner and announces `cancel:<tenant>:<id>` on a Redis channel,
//! and the replica running it stops the upstream call. The reply is stored as far as it
//! got, marked cancelled.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::watch;
use uuid::Uuid;

use crate::chat::ChatError;
use crate::{cache::Cache, caller::Principal, tenancy::TenantId};

/// Longest a generation stays registered (a crashed replica's entries expire).
const REGISTRATION_TTL: Duration = Duration::from_secs(3600);

/// The generations running here, and the way to reach the others.
#[derive(Clone)]
pub struct Generations {
    cache: Cache,
    local: Arc<Mutex<HashMap<Uuid, watch::Sender<bool>>>>,
}

/// A generation running here; ends its registration when dropped.
pub struct Running {
    generations: Generations,
    tenant: TenantId,
    id: Uuid,
    cancelled: watch::Receiver<bool>,
}

impl Running {
    /// Resolves when the generation is cancelled.
    pub async fn cancelled(&mut self) {
        let _ = self.cancelled.wait_for(|cancelled| *cancelled).await;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.generations.forget(self.id);
        let cache = self.generations.cache.clone();
        let (tenant, id) = (self.tenant, self.id);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(err) = cache.end_generation(tenant, id).await {
                    tracing::warn!(error = %err, "generation registration left to expire");
                }
            });
        }
    }
}

impl Generations {
    /// Generations announced through `cache`.
    pub fn new(cache: Cache) -> Self {
        Self {
            cache,
            local: Arc::default(),
        }
    }

    fn channel(&self) -> String {
        self.cache.keys().platform(&["generations"])
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, watch::Sender<bool>>> {
        self.local.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn forget(&self, id: Uuid) {
        self.table().remove(&id);
    }

    fn stop_here(&self, id: Uuid) -> bool {
        self.table()
            .get(&id)
            .is_some_and(|stop| stop.send(true).is_ok())
    }

    /// Registers the caller's generation `id`.
    ///
    /// # Errors
    /// [`ChatError::Cache`] when Redis fails.
    pub async fn begin(&self, principal: &Principal, id: Uuid) -> Result<Running, ChatError> {
        self.cache
            .register_generation(principal.tenant, id, principal.user, REGISTRATION_TTL)
            .await?;
        let (stop, cancelled) = watch::channel(false);
        self.table().insert(id, stop);
        Ok(Running {
            generations: self.clone(),
            tenant: principal.tenant,
            id,
            cancelled,
        })
    }

    /// Cancels the caller's generation `id` wherever it runs; `false` when it is not running
    /// (finished, unknown, or someone else's).
    ///
    /// # Errors
    /// [`ChatError::Cache`] when Redis fails.
    pub async fn cancel(&self, principal: &Principal, id: Uuid) -> Result<bool, ChatError> {
        if self.cache.generation_owner(principal.tenant, id).await? != Some(principal.user) {
            return Ok(false);
        }
        if !self.stop_here(id) {
            self.cache
                .publish(
                    &self.channel(),
                    &format!("cancel:{}:{id}", principal.tenant),
                )
                .await?;
        }
        Ok(true)
    }

    /// Stops the generations other replicas cancel, until `stop` resolves.
    pub async fn listen(self, stop: impl Future<Output = ()>) {
        Cache::keep_following("cancellations", stop, || self.follow()).await;
    }

    async fn follow(&self) -> Result<(), ChatError> {
        let mut subscription = self.cache.subscribe(&self.channel()).await?;
        while let Some(payload) = subscription.next().await {
            match payload
                .strip_prefix("cancel:")
                .and_then(|rest| rest.rsplit_once(':'))
                .and_then(|(_, id)| Uuid::try_parse(id).ok())
            {
                Some(id) => {
                    self.stop_here(id);
                }
                None => tracing::warn!(%payload, "ignoring malformed cancellation"),
            }
        }
        Ok(())
    }
}
