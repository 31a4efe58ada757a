//! Moves keys of the layout before hash tags (`cc:<tenant>:…`, `cc:_platform:…`) to where
//! the server reads them now (`cc:{<tenant>}:…`, `cc:{_platform}:…`), so live sessions,
//! queued and delayed jobs and the rest survive an upgrade. Runs when a replica starts;
//! it finds nothing to do once every replica runs the tagged layout.
//!
//! A key is renamed (one Redis) or copied with its time to live and then deleted (a
//! cluster, where the two names are in different slots). When the tagged name exists
//! already, queues are merged, never dropped: a sorted set's members are added where
//! missing, and a stream's entries that no worker has finished (undelivered or pending)
//! are appended. Anything else under both names keeps the tagged one: those keys expire
//! on their own (sessions, limits, caches).

use std::collections::HashMap;

use redis::{AsyncCommands, Value};

use super::{Cache, CacheError, Connection};

/// The consumer group whose finished entries need not move (the job queue's).
const GROUP: &str = "workers";
/// Most pending entries of a stream read when merging it.
const MAX_PENDING: usize = 100_000;

impl Cache {
    /// Moves every key of the untagged layout to its tagged name; returns how many keys
    /// were moved or merged. Failures are logged, not returned: the keys stay where they
    /// are for the next start, and serving goes on.
    pub async fn adopt_untagged_keys(&self) -> usize {
        match self.adopt().await {
            Ok(moved) => moved,
            Err(err) => {
                tracing::error!(error = %err, "cannot move Redis keys of the layout before hash tags; a later start tries again");
                0
            }
        }
    }

    async fn adopt(&self) -> Result<usize, CacheError> {
        let untagged = self.backend.scan(&self.keys.untagged_pattern()).await?;
        let mut moved = 0;
        let mut conn = self.connection().await?;
        for old in &untagged {
            let Some(new) = self.keys.tagged(old) else {
                continue;
            };
            let taken = if self.backend.is_cluster() {
                copy_then_delete(&mut conn, old, &new).await?
            } else {
                match conn.rename_nx::<_, _, bool>(old, &new).await {
                    Ok(renamed) => renamed,
                    // Expired since the scan.
                    Err(err) if err.detail().is_some_and(|d| d.contains("no such key")) => {
                        continue;
                    }
                    Err(err) => return Err(err.into()),
                }
            };
            if !taken {
                merge(&mut conn, old, &new).await?;
            }
            moved += 1;
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

/// Copies `old` to `new` with its remaining time to live and deletes `old`; `false` (and
/// nothing done) when `new` exists already.
async fn copy_then_delete(conn: &mut Connection, old: &str, new: &str) -> Result<bool, CacheError> {
    // One transaction, so the expiry read belongs to the value dumped.
    let (dump, ttl_ms): (Option<Vec<u8>>, i64) = redis::pipe()
        .atomic()
        .cmd("DUMP")
        .arg(old)
        .cmd("PTTL")
        .arg(old)
        .query_async(conn)
        .await?;
    let Some(dump) = dump else {
        return Ok(true);
    };
    if ttl_ms == -2 {
        return Ok(true);
    }
    let restored: Result<(), redis::RedisError> = redis::cmd("RESTORE")
        .arg(new)
        .arg(ttl_ms.max(0))
        .arg(dump)
        .query_async(conn)
        .await;
    match restored {
        Ok(()) => {
            conn.del::<_, ()>(old).await?;
            Ok(true)
        }
        Err(err) if err.code() == Some("BUSYKEY") => Ok(false),
        Err(err) => Err(err.into()),
    }
}

/// Merges `old` into the existing `new` (see the module's doc), then deletes `old`.
async fn merge(conn: &mut Connection, old: &str, new: &str) -> Result<(), CacheError> {
    let kind: String = redis::cmd("TYPE").arg(old).query_async(conn).await?;
    match kind.as_str() {
        "zset" => {
            let members: Vec<(Vec<u8>, f64)> = conn.zrange_withscores(old, 0, -1).await?;
            for chunk in members.chunks(500) {
                let mut add = redis::cmd("ZADD");
                add.arg(new).arg("NX");
                for (member, score) in chunk {
                    add.arg(*score).arg(member);
                }
                add.query_async::<()>(conn).await?;
            }
        }
        "stream" => {
            for (_, fields) in unfinished_entries(conn, old).await? {
                let mut add = redis::cmd("XADD");
                add.arg(new).arg("*");
                for (field, value) in fields {
                    add.arg(field).arg(value);
                }
                add.query_async::<()>(conn).await?;
            }
        }
        _ => {}
    }
    conn.del::<_, ()>(old).await?;
    Ok(())
}

/// A stream entry: its id and fields.
type Entry = (String, Vec<(Vec<u8>, Vec<u8>)>);

/// The entries of stream `key` that no worker finished: all of them without the workers'
/// group, else those delivered to nobody yet or delivered and not acknowledged.
async fn unfinished_entries(conn: &mut Connection, key: &str) -> Result<Vec<Entry>, CacheError> {
    let groups: Vec<HashMap<String, Value>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(key)
        .query_async(conn)
        .await?;
    let text = |value: Option<&Value>| match value {
        Some(Value::BulkString(bytes)) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Some(Value::SimpleString(text)) => Some(text.clone()),
        _ => None,
    };
    let last_delivered = groups
        .iter()
        .find(|group| text(group.get("name")).as_deref() == Some(GROUP))
        .and_then(|group| text(group.get("last-delivered-id")));
    let Some(last_delivered) = last_delivered else {
        return Ok(redis::cmd("XRANGE")
            .arg(key)
            .arg("-")
            .arg("+")
            .query_async(conn)
            .await?);
    };
    let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(key)
        .arg(GROUP)
        .arg("-")
        .arg("+")
        .arg(MAX_PENDING)
        .query_async(conn)
        .await?;
    let mut entries = Vec::new();
    for (id, ..) in pending {
        let found: Vec<Entry> = redis::cmd("XRANGE")
            .arg(key)
            .arg(&id)
            .arg(&id)
            .query_async(conn)
            .await?;
        entries.extend(found);
    }
    let undelivered: Vec<Entry> = redis::cmd("XRANGE")
        .arg(key)
        .arg(format!("({last_delivered}"))
        .arg("+")
        .query_async(conn)
        .await?;
    entries.extend(undelivered);
    Ok(entries)
}
