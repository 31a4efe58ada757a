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
    cluster_routing::{RoutingInfo, SingleNodeRoutingInfo},
};
use secrecy::ExposeSecret;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;

use super::CacheError;
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
}

impl Backend {
    /// Connects as `config` says (lazily for a single server; the pool dials on demand).
    pub(super) async fn connect(config: &RedisConfig) -> Result<Self, CacheError> {
        let url = config.url.as_ref().ok_or(CacheError::NotConfigured)?;
        let url = url.expose_secret();
        let bad = |err: &dyn std::fmt::Display| CacheError::BadConfig(err.to_string());
        if config.cluster {
            let builder = || {
                ClusterClientBuilder::new([url])
                    .connection_timeout(config.connect_timeout)
                    .response_timeout(config.connect_timeout)
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
        Ok(Self::Single(Box::new(Single { pool, fast, client })))
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
        let connect = Duration::from_secs(5);
        Ok(match self {
            Self::Single(single) => Connection::Dedicated(
                single
                    .client
                    .get_multiplexed_async_connection_with_config(
                        &AsyncConnectionConfig::new()
                            .set_connection_timeout(Some(connect))
                            .set_response_timeout(Some(response_timeout)),
                    )
                    .await?,
            ),
            Self::Cluster(cluster) => Connection::Cluster(
                cluster
                    .client
                    .get_async_connection_with_config(
                        ClusterConfig::new()
                            .set_connection_timeout(connect)
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
                let mut keys = Vec::new();
                let mut iter =
                    redis::AsyncCommands::scan_match::<_, String>(&mut conn, pattern).await?;
                while let Some(key) = iter.next_item().await {
                    keys.push(key?);
                }
                Ok(keys)
            }
            Self::Cluster(cluster) => {
                let mut conn = cluster.shared.clone();
                let mut keys = Vec::new();
                for (host, port) in primaries(&mut conn).await? {
                    let node = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                        host: host.clone(),
                        port,
                    });
                    let mut cursor = 0_u64;
                    loop {
                        let reply = conn
                            .route_command(
                                redis::cmd("SCAN")
                                    .arg(cursor)
                                    .arg("MATCH")
                                    .arg(pattern)
                                    .arg("COUNT")
                                    .arg(SCAN_COUNT)
                                    .clone(),
                                node.clone(),
                            )
                            .await?;
                        let (next, found): (u64, Vec<String>) =
                            redis::from_redis_value(reply).map_err(redis::RedisError::from)?;
                        keys.extend(found);
                        if next == 0 {
                            break;
                        }
                        cursor = next;
                    }
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

/// `(host, port)` of every primary that is up, from `CLUSTER NODES`.
async fn primaries(conn: &mut ClusterConnection) -> Result<Vec<(String, u16)>, CacheError> {
    let nodes: String = redis::cmd("CLUSTER").arg("NODES").query_async(conn).await?;
    Ok(parse_primaries(&nodes))
}

/// The primaries in a `CLUSTER NODES` reply: lines of `id host:port@bus[,hostname] flags …`.
fn parse_primaries(nodes: &str) -> Vec<(String, u16)> {
    nodes
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let address = fields.nth(1)?;
            let flags = fields.next()?;
            let flags: Vec<&str> = flags.split(',').collect();
            if !flags.contains(&"master") || flags.iter().any(|f| f.starts_with("fail")) {
                return None;
            }
            let (host, port) = address.split('@').next()?.rsplit_once(':')?;
            Some((host.to_owned(), port.parse().ok()?))
        })
        .collect()
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
                    // A disconnection, or the client subscribing again after one: messages
                    // may have been lost in between.
                    _ => return None,
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primaries_are_read_from_cluster_nodes() {
        let nodes = "\
07c3 127.0.0.1:30004@31004,host-a slave e7d1 0 1426238317239 4 connected
67ed 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
292f 127.0.0.1:30003@31003 master,fail - 0 1426238318243 3 connected 10923-16383
e7d1 10.0.0.9:30001@31001 myself,master - 0 0 1 connected 0-5460
";
        assert_eq!(
            parse_primaries(nodes),
            vec![
                ("127.0.0.1".to_owned(), 30002),
                ("10.0.0.9".to_owned(), 30001)
            ]
        );
    }
}
