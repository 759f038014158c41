//! Redis: a cache that can be lost.
//!
//! [`RedisStore`] wraps a [`Conn`] (one Redis or Valkey server, or a Redis Cluster; reconnects
//! by itself; cheap to clone) and the key prefix that keeps services, tenants and tests apart;
//! [`VersionGuard`] keeps the highest version of each story a consumer applied; [`Rebuild`]
//! marks state replayed from Kafka present only if Redis was not lost again meanwhile.
//!
//! **Cluster.** `REDIS_URL` names a cluster when it lists several nodes, comma-separated
//! (`redis://10.0.0.1:6379,redis://10.0.0.2:6379`: any of them; the client learns the rest).
//! Keys that a script or a `MULTI` touches together share a hash tag ([`tag`]), so they live
//! in one slot; everything else spreads over the masters. Plain pipelines may span slots
//! ([`Conn`] splits them), and [`RedisStore::delete_matching`] and
//! [`RedisStore::eviction_policy`] ask every master.

use std::future::Future;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};

mod conn;

pub use conn::Conn;
pub use redis;

/// Whether `url` (a `REDIS_URL`) names a Redis Cluster: a comma-separated list of its nodes.
pub fn is_cluster(url: &str) -> bool {
    url.contains(',')
}

/// `id` as a hash tag: keys that hold `{id}` hash to the same cluster slot, whatever else
/// they hold, so one script or `MULTI` may touch them together. Braces in `id` are
/// percent-encoded (a tag ends at the first `}`), `%` too, so two ids never share a key.
pub fn tag(id: &str) -> String {
    let id = id
        .replace('%', "%25")
        .replace('{', "%7B")
        .replace('}', "%7D");
    format!("{{{id}}}")
}

/// A client for `url`: a `rediss://` URL is TLS (rustls), verified against `ca` (PEM) when
/// given, else the system's CAs.
pub fn client(url: &str, ca: Option<&[u8]>) -> redis::RedisResult<redis::Client> {
    if url.starts_with("rediss://") {
        crate::tls::install_crypto_provider();
    }
    match ca {
        Some(ca) if url.starts_with("rediss://") => redis::Client::build_with_tls(
            url,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(ca.to_vec()),
            },
        ),
        _ => redis::Client::open(url),
    }
}

const TIMEOUT: Duration = Duration::from_secs(5);

/// A Redis connection with a key prefix.
#[derive(Clone)]
pub struct RedisStore {
    conn: Conn,
    prefix: String,
    /// For pub/sub: the (first) node. A cluster forwards a `PUBLISH` on any node to all.
    node: redis::Client,
}

impl RedisStore {
    /// Connects to `url` (one server, or a cluster's nodes comma-separated); fails if Redis
    /// does not answer.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, redis::RedisError> {
        Self::connect_tls(url, prefix, None).await
    }

    /// [`RedisStore::connect`], a `rediss://` URL verified against `ca` (PEM) when given.
    pub async fn connect_tls(
        url: &str,
        prefix: &str,
        ca: Option<&[u8]>,
    ) -> Result<Self, redis::RedisError> {
        let nodes: Vec<&str> = url
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect();
        let first = nodes.first().copied().unwrap_or(url);
        let node = client(first, ca)?;
        let conn = if is_cluster(url) {
            let mut builder = redis::cluster::ClusterClient::builder(nodes.clone())
                .connection_timeout(TIMEOUT)
                .response_timeout(TIMEOUT);
            if let Some(ca) = ca.filter(|_| first.starts_with("rediss://")) {
                builder = builder.certs(redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(ca.to_vec()),
                });
            }
            Conn::Cluster(builder.build()?.get_async_connection().await?)
        } else {
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(TIMEOUT))
                .set_response_timeout(Some(TIMEOUT));
            Conn::Single(ConnectionManager::new_with_config(node.clone(), config).await?)
        };
        Ok(RedisStore {
            conn,
            prefix: prefix.to_owned(),
            node,
        })
    }

    /// A handle on the connection (clone it per task).
    pub fn conn(&self) -> Conn {
        self.conn.clone()
    }

    /// Whether this is a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.conn, Conn::Cluster(_))
    }

    /// A pub/sub connection (its own; one per subscriber). On a cluster, any node hears
    /// every `PUBLISH`.
    pub async fn pubsub(&self) -> Result<redis::aio::PubSub, redis::RedisError> {
        self.node.get_async_pubsub().await
    }

    /// The full key for `key` (`story:abc` → `newsroom:story:abc`).
    pub fn key(&self, key: impl std::fmt::Display) -> String {
        format!("{}{key}", self.prefix)
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Where keys live: the one server (`None`), or each master of the cluster.
    async fn masters(&self) -> redis::RedisResult<Vec<Option<(String, u16)>>> {
        let Conn::Cluster(mut c) = self.conn.clone() else {
            return Ok(vec![None]);
        };
        let listing: String = redis::FromRedisValue::from_redis_value(
            c.route_command(
                redis::cmd("CLUSTER").arg("NODES").clone(),
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
            )
            .await?,
        )?;
        Ok(masters(&listing).into_iter().map(Some).collect())
    }

    /// `cmd` on `node` (from [`RedisStore::masters`]).
    async fn on(
        &self,
        node: &Option<(String, u16)>,
        cmd: &redis::Cmd,
    ) -> redis::RedisResult<redis::Value> {
        match (self.conn.clone(), node) {
            (Conn::Cluster(mut c), Some((host, port))) => {
                let at = SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port: *port,
                };
                c.route_command(cmd.clone(), RoutingInfo::SingleNode(at))
                    .await
            }
            (mut conn, _) => redis::aio::ConnectionLike::req_packed_command(&mut conn, cmd).await,
        }
    }

    /// Deletes every key matching `pattern` (a `SCAN` glob, the prefix included) on every
    /// master; returns how many it deleted. For clean-ups and rebuilds, not hot paths.
    pub async fn delete_matching(&self, pattern: &str) -> redis::RedisResult<usize> {
        let mut deleted = 0;
        for node in self.masters().await? {
            let mut cursor = 0u64;
            loop {
                let mut scan = redis::cmd("SCAN");
                scan.arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(1000);
                let (next, keys): (u64, Vec<String>) =
                    redis::FromRedisValue::from_redis_value(self.on(&node, &scan).await?)?;
                if !keys.is_empty() {
                    deleted += keys.len();
                    // A cluster connection splits a many-key UNLINK by slot itself.
                    let _: () = redis::cmd("UNLINK")
                        .arg(&keys)
                        .query_async(&mut self.conn())
                        .await?;
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(deleted)
    }

    /// Redis's `maxmemory-policy`, when it tells (a managed Redis may refuse `CONFIG`). On a
    /// cluster, the first master's that would evict state, else the first's.
    pub async fn eviction_policy(&self) -> Option<String> {
        let get = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .clone();
        let mut policies = Vec::new();
        for node in self.masters().await.ok()? {
            let answer = self.on(&node, &get).await.ok()?;
            let pair: Vec<String> = redis::FromRedisValue::from_redis_value(answer).ok()?;
            policies.extend(pair.get(1).cloned());
        }
        policies
            .iter()
            .find(|p| !keeps_state(p))
            .or(policies.first())
            .cloned()
    }
}

/// The masters in a `CLUSTER NODES` listing (`<id> <host:port@bus> <flags> …`), as they
/// are addressed, failed ones left out.
fn masters(listing: &str) -> Vec<(String, u16)> {
    listing
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let address = fields.nth(1)?;
            let flags = fields.next()?;
            if !flags.split(',').any(|f| f == "master") || flags.contains("fail") {
                return None;
            }
            let address = address.split(['@', ',']).next()?;
            let (host, port) = address.rsplit_once(':')?;
            Some((host.to_owned(), port.parse().ok()?))
        })
        .collect()
}

/// Whether a `maxmemory-policy` keeps every key until it expires: only `noeviction`.
/// `allkeys-*` evicts anything; `volatile-*` evicts keys that have a TTL, and the state the
/// services keep has TTLs too (the at-most-once ledger, version guards, idempotency answers).
pub fn keeps_state(policy: &str) -> bool {
    policy == "noeviction"
}

/// Admits `ARGV[1]` if it is not below the version in `KEYS[1]`, and records it (`ARGV[2]`: TTL
/// in seconds). Returns 1 when admitted.
const ADMIT: &str = r"
local seen = tonumber(redis.call('GET', KEYS[1]) or '0')
local version = tonumber(ARGV[1])
if version < seen then return 0 end
redis.call('SET', KEYS[1], version, 'EX', ARGV[2])
return 1
";

static ADMIT_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(ADMIT));

/// The highest version of each story a consumer has applied, kept apart from the cached story
/// itself: a kill deletes the story from a cache but is a version too, so an older version that
/// arrives after it (a redelivery, a replay, a late partition) is still refused.
///
/// [`VersionGuard::admit`] is atomic (one script), so two replicas cannot both admit versions
/// out of order. An equal version is admitted again: a redelivered record must be re-applied
/// when its first application was interrupted, and appliers are idempotent on (id, version).
#[derive(Clone)]
pub struct VersionGuard {
    store: RedisStore,
    namespace: &'static str,
    ttl: std::time::Duration,
}

impl VersionGuard {
    /// Guards kept under `<prefix><namespace>:<id>` for `ttl` after each admission (longer than
    /// any redelivery or replay can come late).
    pub fn new(store: RedisStore, namespace: &'static str, ttl: std::time::Duration) -> Self {
        VersionGuard {
            store,
            namespace,
            ttl,
        }
    }

    /// Whether `version` of `id` may be applied (no higher version was); records it if so.
    pub async fn admit(&self, id: &str, version: u32) -> Result<bool, redis::RedisError> {
        let admitted: i32 = ADMIT_SCRIPT
            .key(self.store.key(format!("{}:{id}", self.namespace)))
            .arg(version)
            .arg(self.ttl.as_secs().max(1))
            .invoke_async(&mut self.store.conn())
            .await?;
        Ok(admitted == 1)
    }

    /// The highest version admitted for `id`, if remembered.
    pub async fn seen(&self, id: &str) -> Result<Option<u32>, redis::RedisError> {
        use redis::AsyncCommands as _;
        self.store
            .conn()
            .get(self.store.key(format!("{}:{id}", self.namespace)))
            .await
    }
}

/// Sets `KEYS[2]` (the state marker) and deletes `KEYS[1]` (the rebuild's sentinel) if the
/// sentinel still exists; returns 1 if it did.
const FINISH_REBUILD: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SET', KEYS[2], 1)
redis.call('DEL', KEYS[1])
return 1
";

static FINISH_REBUILD_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(FINISH_REBUILD));

/// A rebuild of state Redis lost (replayed from Kafka), marked done only if Redis was not lost
/// *again* while it ran: a flush in the middle of a replay deletes what was restored so far,
/// and a marker set afterwards would say the state is there when it is not.
pub struct Rebuild {
    store: RedisStore,
    sentinel: String,
    marker: String,
}

/// What [`Rebuild::if_lost`] found and did.
#[derive(Debug)]
pub enum Loaded<T> {
    /// The state was there.
    Present,
    /// It was gone; this call rebuilt it (what the rebuild returned) and marked it present.
    Rebuilt(T),
    /// Not there, and not rebuilt this time (Redis away, the rebuild failed, or Redis lost the
    /// state again during it): look again later.
    Missing,
}

impl Rebuild {
    /// Looks for `marker`; if it is gone, runs `rebuild` (the replay from Kafka) and sets the
    /// marker unless Redis lost the state again meanwhile. Logs each outcome, naming `what`.
    pub async fn if_lost<T, E, F>(
        store: &RedisStore,
        marker: &str,
        what: &str,
        rebuild: impl FnOnce() -> F,
    ) -> Loaded<T>
    where
        E: std::fmt::Display,
        F: Future<Output = Result<T, E>>,
    {
        use redis::AsyncCommands as _;
        match store.conn().exists::<_, bool>(store.key(marker)).await {
            Ok(true) => return Loaded::Present,
            Ok(false) => {}
            // Redis itself is away: nothing to rebuild until it is back.
            Err(e) => {
                tracing::debug!(error = %e, "redis unavailable");
                return Loaded::Missing;
            }
        }
        tracing::warn!("{what} state missing from Redis: rebuilding from Kafka");
        let guard = match Rebuild::begin(store, marker).await {
            Ok(guard) => guard,
            Err(e) => {
                tracing::warn!(error = %e, "redis unavailable");
                return Loaded::Missing;
            }
        };
        let rebuilt = match rebuild().await {
            Ok(rebuilt) => rebuilt,
            Err(e) => {
                tracing::error!(error = %e, "rebuild of the {what} state failed; retrying");
                return Loaded::Missing;
            }
        };
        match guard.finish().await {
            Ok(true) => Loaded::Rebuilt(rebuilt),
            Ok(false) => {
                tracing::warn!(
                    "Redis lost the {what} state again during the rebuild; rebuilding again"
                );
                Loaded::Missing
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not mark the {what} state loaded");
                Loaded::Missing
            }
        }
    }

    /// Starts a rebuild of the state whose presence `marker` (a key, unprefixed) says.
    pub async fn begin(store: &RedisStore, marker: &str) -> Result<Self, redis::RedisError> {
        use redis::AsyncCommands as _;
        // The sentinel must share the marker's cluster slot (one script reads both): a marker
        // with a hash tag lends it; one without hashes whole, so its full name is the tag.
        let id = uuid::Uuid::new_v4().simple();
        let full = store.key(marker);
        let sentinel = if full.contains('{') {
            format!("{full}:rebuilding:{id}")
        } else {
            store.key(format!("{{{full}}}:rebuilding:{id}"))
        };
        // Expires on its own if this process dies mid-rebuild.
        let _: () = store.conn().set_ex(&sentinel, 1, 3600).await?;
        Ok(Rebuild {
            marker: store.key(marker),
            store: store.clone(),
            sentinel,
        })
    }

    /// Sets the marker; false (and no marker) when Redis lost the sentinel meanwhile, so the
    /// caller rebuilds again.
    pub async fn finish(self) -> Result<bool, redis::RedisError> {
        let done: i32 = FINISH_REBUILD_SCRIPT
            .key(&self.sentinel)
            .key(&self.marker)
            .invoke_async(&mut self.store.conn())
            .await?;
        Ok(done == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::{keeps_state, masters, tag};

    #[test]
    fn tags_keep_ids_apart_and_braces_out() {
        assert_eq!(tag("alice"), "{alice}");
        assert_eq!(tag("a{b}"), "{a%7Bb%7D}");
        assert_ne!(tag("a{b"), tag("a%7Bb"));
        let slot = |k: &str| redis::cluster_routing::Slot::for_key(k);
        assert_eq!(slot("p:rec:follows:{alice}"), slot("p:rec:gen:{alice}"));
    }

    #[test]
    fn cluster_nodes_listing_gives_live_masters() {
        let listing = "\
a 127.0.0.1:7003@17003 master - 0 1 3 connected 10923-16383
b 127.0.0.1:7002@17002 myself,master - 0 1 2 connected 5461-10922
c 127.0.0.1:7004@17004 slave b 0 1 2 connected
d 127.0.0.1:7001@17001 master,fail - 0 1 1 connected 0-5460";
        assert_eq!(
            masters(listing),
            vec![
                ("127.0.0.1".to_owned(), 7003),
                ("127.0.0.1".to_owned(), 7002)
            ]
        );
    }

    #[test]
    fn only_noeviction_keeps_state() {
        assert!(keeps_state("noeviction"));
        for policy in [
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
        ] {
            assert!(!keeps_state(policy), "{policy}");
        }
    }
}
