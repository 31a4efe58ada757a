//! Working memory: `cc:{tenant}:working:{conversation}` holds a conversation's state
//! (sealed, see `memory::working`) until its time to live runs out.

use std::time::Duration;

use uuid::Uuid;

use super::{Cache, CacheError};
use crate::tenancy::TenantId;

impl Cache {
    fn working_key(&self, tenant: TenantId, conversation: Uuid) -> String {
        self.keys()
            .tenant(tenant, &["working", &conversation.to_string()])
    }

    /// The stored state of `conversation` and the time it has left, if there is one.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn working_state(
        &self,
        tenant: TenantId,
        conversation: Uuid,
    ) -> Result<Option<(Vec<u8>, Duration)>, CacheError> {
        let key = self.working_key(tenant, conversation);
        let mut conn = self.fast_connection();
        let (value, left): (Option<Vec<u8>>, i64) = redis::pipe()
            .get(&key)
            .pttl(&key)
            .query_async(&mut conn)
            .await?;
        Ok(value.map(|value| {
            let left = Duration::from_millis(u64::try_from(left).unwrap_or(0));
            (value, left)
        }))
    }

    /// Stores `state` for `conversation` for `ttl`, replacing what was there.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn put_working_state(
        &self,
        tenant: TenantId,
        conversation: Uuid,
        state: &[u8],
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let key = self.working_key(tenant, conversation);
        let mut conn = self.fast_connection();
        redis::cmd("SET")
            .arg(&key)
            .arg(state)
            .arg("PX")
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// Forgets the state of `conversation`.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn drop_working_state(
        &self,
        tenant: TenantId,
        conversation: Uuid,
    ) -> Result<(), CacheError> {
        let key = self.working_key(tenant, conversation);
        let mut conn = self.fast_connection();
        redis::cmd("DEL")
            .arg(&key)
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }
}
