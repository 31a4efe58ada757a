//! How the cache reaches Redis: one server (a pool, plus one shared multiplexed
//! connection) or a Redis Cluster (multiplexed cluster connections that follow the slot
//! map), behind one connection type commands run on, and subscriptions that work on both.

use std::time::Duration;

use deadpool_redis::{Config as PoolSettings, Pool, PoolConfig, Runtime, Timeouts};
use redis::{
    AsyncConnectionConfig, Cmd, Pipeline, PushInfo, PushKind, RedisFuture, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection},
    cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig},
    cluster_async::ClusterConnection,
    cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr},
};
use secrecy::ExposeSecret;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;

use super::{CacheError, keys::PLATFORM_TAG};
use crate::config::RedisConfig;

/// Keys a SCAN step asks each node for.
const SCAN_COUNT: usize = 1000;

/// The Redis this deployment uses.
pub(super) enum Backend {
    /// One Redis server.
    Single(Box<Single>),
    /// A Redis Cluster.
    Cluster(Box<Cluster>),
}

/// The connections to one Redis server.
pub(super) struct Single {
    pool: Pool,
    fast: ConnectionManager,
    client: redis::Client,
    connect_timeout: Duration,
}

/// The connections to a Redis Cluster.
pub(super) struct Cluster {
    /// Shared by every command: it multiplexes, and routes each command to the node that
    /// owns its key's slot.
    shared: ClusterConnection,
    /// Makes dedicated connections (blocking job reads).
    client: ClusterClient,
    /// Makes subscriptions: pub/sub on a cluster arrives as RESP3 push messages.
    pushes: ClusterClient,
    connect_timeout: Duration,
}

impl Backend {
    /// Connects as `config` says (lazily for a single server; the pool dials on demand).
    pub(super) async fn connect(config: &RedisConfig) -> Result<Self, CacheError> {
        let url = config.url.as_ref().ok_or(CacheError::NotConfigured)?;
        let url = url.expose_secret();
        let bad = |err: &dyn std::fmt::Display| CacheError::BadConfig(err.to_string());
        if config.cluster {
            // Each node's replies are bounded by `response_timeout`; no overall bound, which
            // would cut a worker's blocking read short.
            let builder = || {
                ClusterClientBuilder::new([url])
                    .connection_timeout(config.connect_timeout)
                    .response_timeout(config.connect_timeout)
                    .overall_response_timeout(None)
            };
            let client = builder().build().map_err(|err| bad(&err))?;
            let pushes = builder()
                .use_protocol(redis::ProtocolVersion::RESP3)
                .build()
                .map_err(|err| bad(&err))?;
            let shared = client
                .get_async_connection()
                .await
                .map_err(CacheError::Command)?;
            return Ok(Self::Cluster(Box::new(Cluster {
                shared,
                client,
                pushes,
                connect_timeout: config.connect_timeout,
            })));
        }
        let mut settings = PoolSettings::from_url(url);
        settings.pool = Some(PoolConfig {
            max_size: config.pool_size,
            timeouts: Timeouts {
                wait: Some(config.connect_timeout),
                create: Some(config.connect_timeout),
                recycle: Some(config.connect_timeout),
            },
            ..PoolConfig::default()
        });
        let pool = settings
            .create_pool(Some(Runtime::Tokio1))
            .map_err(|err| bad(&err))?;
        let client = redis::Client::open(url).map_err(|err| bad(&err))?;
        let fast = ConnectionManager::new_lazy_with_config(
            client.clone(),
            ConnectionManagerConfig::new()
                .set_connection_timeout(Some(config.connect_timeout))
                .set_response_timeout(Some(config.connect_timeout)),
        )
        .map_err(|err| bad(&err))?;
        Ok(Self::Single(Box::new(Single {
            pool,
            fast,
            client,
            connect_timeout: config.connect_timeout,
        })))
    }

    /// Sends PING: to the server, or on a cluster to the primary of the platform's slot
    /// (the job queue's), so that one shard's outage does not fail every replica's
    /// readiness.
    pub(super) async fn ping(&self) -> Result<(), CacheError> {
        match self {
            Self::Single(single) => {
                let mut conn = single.pool.get().await?;
                redis::cmd("PING").query_async::<String>(&mut conn).await?;
            }
            Self::Cluster(cluster) => {
                cluster
                    .shared
                    .clone()
                    .route_command(
                        redis::cmd("PING"),
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(
                            Route::with_key(PLATFORM_TAG, SlotAddr::Master),
                        )),
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// A connection for commands off the per-call path.
    pub(super) async fn connection(&self) -> Result<Connection, CacheError> {
        Ok(match self {
            Self::Single(single) => Connection::Pooled(single.pool.get().await?),
            Self::Cluster(cluster) => Connection::Cluster(cluster.shared.clone()),
        })
    }

    /// The shared connection for commands on every call's path.
    pub(super) fn fast_connection(&self) -> Connection {
        match self {
            Self::Single(single) => Connection::Shared(single.fast.clone()),
            Self::Cluster(cluster) => Connection::Cluster(cluster.shared.clone()),
        }
    }

    /// A connection of its own whose replies may take up to `response_timeout` (blocking
    /// reads must hold up nobody else's commands).
    pub(super) async fn dedicated_connection(
        &self,
        response_timeout: Duration,
    ) -> Result<Connection, CacheError> {
        Ok(match self {
            Self::Single(single) => Connection::Dedicated(
                single
                    .client
                    .get_multiplexed_async_connection_with_config(
                        &AsyncConnectionConfig::new()
                            .set_connection_timeout(Some(single.connect_timeout))
                            .set_response_timeout(Some(response_timeout)),
                    )
                    .await?,
            ),
            Self::Cluster(cluster) => Connection::Cluster(
                cluster
                    .client
                    .get_async_connection_with_config(
                        ClusterConfig::new()
                            .set_connection_timeout(cluster.connect_timeout)
                            .set_response_timeout(response_timeout),
                    )
                    .await?,
            ),
        })
    }

    /// A subscription to `channel`. On a cluster a message published on any node reaches
    /// every node, so one subscription hears them all.
    pub(super) async fn subscribe(&self, channel: &str) -> Result<Subscription, CacheError> {
        match self {
            Self::Single(single) => {
                let mut pubsub = single.client.get_async_pubsub().await?;
                pubsub.subscribe(channel).await?;
                Ok(Subscription(Listening::Single(Box::pin(
                    pubsub.into_on_message(),
                ))))
            }
            Self::Cluster(cluster) => {
                let (sender, receiver) = mpsc::unbounded_channel();
                let mut connection = cluster
                    .pushes
                    .get_async_connection_with_config(ClusterConfig::new().set_push_sender(sender))
                    .await?;
                connection.subscribe(channel).await?;
                Ok(Subscription(Listening::Cluster {
                    _connection: connection,
                    pushes: receiver,
                    confirmed: false,
                }))
            }
        }
    }

    /// Every key matching `pattern`, from every primary (one server: that server).
    pub(super) async fn scan(&self, pattern: &str) -> Result<Vec<String>, CacheError> {
        match self {
            Self::Single(single) => {
                let mut conn = single.pool.get().await?;
                scan_node(&mut conn, pattern).await
            }
            Self::Cluster(cluster) => {
                let mut keys = Vec::new();
                for slot in shard_slots(&mut cluster.shared.clone()).await? {
                    let mut node = OnPrimary::owning(cluster.shared.clone(), slot);
                    keys.extend(scan_node(&mut node, pattern).await?);
                }
                Ok(keys)
            }
        }
    }

    /// Whether this is a Redis Cluster.
    pub(super) fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }
}

/// One slot of each primary, from `CLUSTER SLOTS`: routing by slot reaches every primary
/// through the client's own slot map, whatever addresses the nodes announce.
async fn shard_slots(conn: &mut ClusterConnection) -> Result<Vec<u16>, CacheError> {
    let ranges: Vec<Value> = redis::cmd("CLUSTER").arg("SLOTS").query_async(conn).await?;
    Ok(first_slot_per_primary(&ranges))
}

/// From `CLUSTER SLOTS` ranges (`[start, end, [host, port, id, …], replicas…]`), the first
/// slot of each primary (a primary may own several ranges).
fn first_slot_per_primary(ranges: &[Value]) -> Vec<u16> {
    let mut seen = std::collections::HashSet::new();
    let mut slots = Vec::new();
    for range in ranges {
        let Value::Array(fields) = range else {
            continue;
        };
        let (Some(Value::Int(start)), Some(Value::Array(primary))) =
            (fields.first(), fields.get(2))
        else {
            continue;
        };
        let id = match primary.get(2) {
            Some(Value::BulkString(id)) => String::from_utf8_lossy(id).into_owned(),
            _ => format!("{primary:?}"),
        };
        if let Ok(slot) = u16::try_from(*start)
            && seen.insert(id)
        {
            slots.push(slot);
        }
    }
    slots
}

/// The keys of the node `conn` talks to that match `pattern`, by SCAN.
async fn scan_node(
    conn: &mut (impl ConnectionLike + Send),
    pattern: &str,
) -> Result<Vec<String>, CacheError> {
    let mut keys = Vec::new();
    let mut cursor = 0_u64;
    loop {
        let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .query_async(conn)
            .await?;
        keys.extend(found);
        if next == 0 {
            return Ok(keys);
        }
        cursor = next;
    }
}

/// A cluster connection whose commands all go to one primary.
struct OnPrimary {
    conn: ClusterConnection,
    node: RoutingInfo,
}

impl OnPrimary {
    fn owning(conn: ClusterConnection, slot: u16) -> Self {
        Self {
            conn,
            node: RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::new(
                slot,
                SlotAddr::Master,
            ))),
        }
    }
}

impl ConnectionLike for OnPrimary {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(self.conn.route_command(cmd.clone(), self.node.clone()))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        _pipeline: &'a Pipeline,
        _offset: usize,
        _count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async {
            Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "pipelines are not routed to one primary",
            )))
        })
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }
}

/// A connection commands run on, whichever kind of Redis this is.
pub enum Connection {
    /// From the single server's pool.
    Pooled(deadpool_redis::Connection),
    /// The single server's shared connection.
    Shared(ConnectionManager),
    /// A single-server connection of its own.
    Dedicated(MultiplexedConnection),
    /// A cluster connection.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Pooled(conn) => conn.req_packed_command(cmd),
            Self::Shared(conn) => conn.req_packed_command(cmd),
            Self::Dedicated(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Pooled(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Shared(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Dedicated(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Pooled(conn) => conn.get_db(),
            Self::Shared(conn) => conn.get_db(),
            Self::Dedicated(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}

/// Messages published on one channel.
pub struct Subscription(Listening);

enum Listening {
    /// On a single server.
    Single(std::pin::Pin<Box<redis::aio::PubSubStream>>),
    /// On a cluster.
    Cluster {
        /// Kept open for as long as the subscription is followed.
        _connection: ClusterConnection,
        pushes: mpsc::UnboundedReceiver<PushInfo>,
        /// Whether Redis confirmed the subscription.
        confirmed: bool,
    },
}

impl Subscription {
    /// The next message's payload; `None` once the subscription is lost, after which
    /// messages may have been missed: subscribe again and assume anything changed.
    pub async fn next(&mut self) -> Option<String> {
        match &mut self.0 {
            Listening::Single(messages) => messages
                .next()
                .await
                .map(|message| String::from_utf8_lossy(message.get_payload_bytes()).into_owned()),
            Listening::Cluster {
                pushes, confirmed, ..
            } => loop {
                let push = pushes.recv().await?;
                match push.kind {
                    PushKind::Message => {
                        if let Some(Value::BulkString(payload)) = push.data.get(1) {
                            return Some(String::from_utf8_lossy(payload).into_owned());
                        }
                    }
                    PushKind::Subscribe if !*confirmed => *confirmed = true,
                    // The client subscribed again after the subscribed node's connection
                    // dropped: messages may have been lost in between.
                    PushKind::Subscribe => return None,
                    // Other nodes' connections coming and going say nothing about this
                    // subscription.
                    _ => {}
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_slot_per_primary_is_taken_from_cluster_slots() {
        let node = |port: i64, id: &str| {
            Value::Array(vec![
                Value::BulkString(b"127.0.0.1".to_vec()),
                Value::Int(port),
                Value::BulkString(id.as_bytes().to_vec()),
            ])
        };
        let range = |start: i64, end: i64, primary: Value| {
            Value::Array(vec![Value::Int(start), Value::Int(end), primary])
        };
        let ranges = [
            range(0, 5460, node(30001, "a")),
            range(5461, 10922, node(30002, "b")),
            range(10923, 12000, node(30003, "c")),
            range(12001, 16383, node(30001, "a")),
        ];
        assert_eq!(first_slot_per_primary(&ranges), vec![0, 5461, 10923]);
    }
}
