//! Replies being generated, known to every replica: `cc:{tenant}:generation:{id}` holds
//! the user it belongs to while it runs, so a cancellation can be checked and announced
//! from any replica.

use std::time::Duration;

use redis::AsyncCommands;
use uuid::Uuid;

use super::{Cache, CacheError};
use crate::tenancy::TenantId;

impl Cache {
    /// Notes that `user`'s generation `id` runs (for at most `ttl`).
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn register_generation(
        &self,
        tenant: TenantId,
        id: Uuid,
        user: Uuid,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let key = self.keys().tenant(tenant, &["generation", &id.to_string()]);
        let mut conn = self.fast_connection();
        conn.set_ex::<_, _, ()>(key, user.to_string(), ttl.as_secs().max(1))
            .await?;
        Ok(())
    }

    /// The user whose generation `id` runs, if it does.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn generation_owner(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Option<Uuid>, CacheError> {
        let key = self.keys().tenant(tenant, &["generation", &id.to_string()]);
        let mut conn = self.fast_connection();
        let owner: Option<String> = conn.get(key).await?;
        Ok(owner.and_then(|o| Uuid::try_parse(&o).ok()))
    }

    /// Notes that generation `id` ended.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn end_generation(&self, tenant: TenantId, id: Uuid) -> Result<(), CacheError> {
        let key = self.keys().tenant(tenant, &["generation", &id.to_string()]);
        let mut conn = self.fast_connection();
        conn.del::<_, ()>(key).await?;
        Ok(())
    }
}
