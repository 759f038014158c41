//! Redis: a cache that can be lost.
//!
//! [`RedisStore`] wraps a [`ConnectionManager`] (reconnects by itself; cheap to clone, one
//! multiplexed connection) and the key prefix that keeps services, tenants and tests apart.

use redis::aio::ConnectionManager;

pub use redis;

/// A Redis connection with a key prefix.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
}

impl RedisStore {
    /// Connects to `url`; fails if Redis does not answer.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
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
}
