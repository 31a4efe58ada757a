//! Moves keys of the layout before hash tags (`cc:<tenant>:…`, `cc:_platform:…`) to where
//! the server reads them now (`cc:{<tenant>}:…`, `cc:{_platform}:…`), so live sessions,
//! queued and delayed jobs and the rest survive an upgrade. Runs when a replica starts;
//! it finds nothing to do once every replica runs the tagged layout.

use redis::AsyncCommands;

use super::{Cache, CacheError};

impl Cache {
    /// Moves every key of the untagged layout to its tagged name, keeping its value and
    /// time to live; a key already present under the new name wins (the old one is
    /// dropped). Returns how many keys were moved.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn adopt_untagged_keys(&self) -> Result<usize, CacheError> {
        let untagged = self.backend.scan(&self.keys.untagged_pattern()).await?;
        let mut moved = 0;
        let mut conn = self.connection().await?;
        for old in &untagged {
            let Some(new) = self.keys.tagged(old) else {
                continue;
            };
            let taken = if self.backend.is_cluster() {
                // The two names are in different slots: copy, then delete.
                let dump: Option<Vec<u8>> =
                    redis::cmd("DUMP").arg(old).query_async(&mut conn).await?;
                let Some(dump) = dump else { continue };
                let ttl_ms: i64 = conn.pttl(old).await?;
                let restored: Result<(), redis::RedisError> = redis::cmd("RESTORE")
                    .arg(&new)
                    .arg(ttl_ms.max(0))
                    .arg(dump)
                    .query_async(&mut conn)
                    .await;
                let taken = match restored {
                    Ok(()) => true,
                    Err(err) if err.code() == Some("BUSYKEY") => false,
                    Err(err) => return Err(err.into()),
                };
                conn.del::<_, ()>(old).await?;
                taken
            } else {
                match conn.rename_nx::<_, _, bool>(old, &new).await {
                    Ok(true) => true,
                    Ok(false) => {
                        conn.del::<_, ()>(old).await?;
                        false
                    }
                    // Expired since the scan.
                    Err(err) if err.detail().is_some_and(|d| d.contains("no such key")) => false,
                    Err(err) => return Err(err.into()),
                }
            };
            moved += usize::from(taken);
        }
        if !untagged.is_empty() {
            tracing::info!(
                found = untagged.len(),
                moved,
                "moved Redis keys of the layout before hash tags"
            );
        }
        Ok(moved)
    }
}
