//! Redis: a cache that can be lost.
//!
//! [`RedisStore`] wraps a [`ConnectionManager`] (reconnects by itself; cheap to clone, one
//! multiplexed connection) and the key prefix that keeps services, tenants and tests apart;
//! [`VersionGuard`] keeps the highest version of each story a consumer applied; [`Rebuild`]
//! marks state replayed from Kafka present only if Redis was not lost again meanwhile.

use std::future::Future;

use redis::aio::ConnectionManager;

pub use redis;

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

/// A Redis connection with a key prefix.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
}

impl RedisStore {
    /// Connects to `url`; fails if Redis does not answer.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, redis::RedisError> {
        Self::connect_tls(url, prefix, None).await
    }

    /// [`RedisStore::connect`], a `rediss://` URL verified against `ca` (PEM) when given.
    pub async fn connect_tls(
        url: &str,
        prefix: &str,
        ca: Option<&[u8]>,
    ) -> Result<Self, redis::RedisError> {
        let client = client(url, ca)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(std::time::Duration::from_secs(5)))
            .set_response_timeout(Some(std::time::Duration::from_secs(5)));
        let conn = ConnectionManager::new_with_config(client, config).await?;
        Ok(RedisStore {
            conn,
            prefix: prefix.to_owned(),
        })
    }

    /// A handle on the connection (clone it per task).
    pub fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// The full key for `key` (`story:abc` → `newsroom:story:abc`).
    pub fn key(&self, key: impl std::fmt::Display) -> String {
        format!("{}{key}", self.prefix)
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Redis's `maxmemory-policy`, when it tells (a managed Redis may refuse `CONFIG`).
    pub async fn eviction_policy(&self) -> Option<String> {
        let answer: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .query_async(&mut self.conn())
            .await
            .ok()?;
        answer.get(1).cloned()
    }
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
        let sentinel = store.key(format!(
            "{marker}:rebuilding:{}",
            uuid::Uuid::new_v4().simple()
        ));
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
    use super::keeps_state;

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
