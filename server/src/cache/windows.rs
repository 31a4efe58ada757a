//! Recent windows of conversations: `cc:{tenant}:window:{conversation}` holds the last
//! messages as sealed rows (see `chat::conversation::window`), expiring after an idle while.

use std::time::Duration;

use redis::AsyncCommands;
use uuid::Uuid;

use super::{Cache, CacheError};
use crate::tenancy::TenantId;

impl Cache {
    /// The cached window of `conversation`, if there is one.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn window(
        &self,
        tenant: TenantId,
        conversation: Uuid,
    ) -> Result<Option<String>, CacheError> {
        let key = self
            .keys()
            .tenant(tenant, &["window", &conversation.to_string()]);
        let mut conn = self.fast_connection();
        Ok(conn.get(key).await?)
    }

    /// Caches `window` of `conversation` for `ttl`.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn put_window(
        &self,
        tenant: TenantId,
        conversation: Uuid,
        window: &str,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let key = self
            .keys()
            .tenant(tenant, &["window", &conversation.to_string()]);
        let mut conn = self.fast_connection();
        conn.set_ex::<_, _, ()>(key, window, ttl.as_secs().max(1))
            .await?;
        Ok(())
    }

    /// Forgets the cached window of `conversation`.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn drop_window(
        &self,
        tenant: TenantId,
        conversation: Uuid,
    ) -> Result<(), CacheError> {
        let key = self
            .keys()
            .tenant(tenant, &["window", &conversation.to_string()]);
        let mut conn = self.fast_connection();
        conn.del::<_, ()>(key).await?;
        Ok(())
    }
}
