//! When a user last forgot memories: `cc:{tenant}:forgotten:{user}:{conversation}` for a
//! conversation's, `cc:{tenant}:forgotten:{user}:all` for all of them (Unix milliseconds).
//! Background jobs still queued for earlier turns (indexing, fact extraction, summaries)
//! read it and write nothing from what was said before. Jobs live in Redis too, so the
//! marks last as long as a job may still be waiting or retried there.

use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Cache, CacheError};
use crate::tenancy::TenantId;

/// How long a mark is kept: longer than any job stays queued or is retried.
const KEPT: Duration = Duration::from_secs(7 * 24 * 3600);
/// The key part that stands for every conversation.
const EVERY_CONVERSATION: &str = "all";

impl Cache {
    fn forgotten_key(&self, tenant: TenantId, user: Uuid, conversation: Option<Uuid>) -> String {
        let scope = conversation.map_or_else(|| EVERY_CONVERSATION.to_owned(), |c| c.to_string());
        self.keys()
            .tenant(tenant, &["forgotten", &user.to_string(), &scope])
    }

    /// Records that `user` forgot the memories of `conversation` (`None`: all of them) now.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn mark_forgotten(
        &self,
        tenant: TenantId,
        user: Uuid,
        conversation: Option<Uuid>,
    ) -> Result<(), CacheError> {
        let now = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        let mut conn = self.fast_connection();
        redis::cmd("SET")
            .arg(self.forgotten_key(tenant, user, conversation))
            .arg(i64::try_from(now).unwrap_or(i64::MAX))
            .arg("EX")
            .arg(KEPT.as_secs())
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// When `user` last forgot the memories of `conversation`, by forgetting it or
    /// everything, if they did.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn forgotten_at(
        &self,
        tenant: TenantId,
        user: Uuid,
        conversation: Uuid,
    ) -> Result<Option<OffsetDateTime>, CacheError> {
        let mut conn = self.fast_connection();
        let marks: Vec<Option<i64>> = redis::cmd("MGET")
            .arg(self.forgotten_key(tenant, user, Some(conversation)))
            .arg(self.forgotten_key(tenant, user, None))
            .query_async(&mut conn)
            .await?;
        Ok(marks.into_iter().flatten().max().and_then(|ms| {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
        }))
    }
}
