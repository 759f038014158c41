//! Story identity: ids, versions, duplicates and idempotency keys.
//!
//! A story id is a UUIDv5 of (source, guid), so every replica computes the same id without
//! coordination. Versions live in a Redis hash per story:
//! - `next` — the last version handed out (only ever incremented);
//! - `v`, `fp` — the latest version Kafka acknowledged, and its content fingerprint.
//!
//! [`Identity::reserve`] atomically compares the fingerprint with the acknowledged one
//! (→ duplicate) or hands out `next + 1`; [`Identity::commit`] records the version once Kafka
//! acknowledged it. A reservation that never reaches Kafka leaves a gap in the version
//! sequence, never a duplicate and never a step backwards.

use newsroom_platform::redis::RedisStore;
use newsroom_platform::redis::redis::{self, AsyncCommands as _, Script};

/// Namespace of story ids (UUIDv5).
const STORY_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6e657773_726f_6f6d_8000_73746f727921);

/// How long an idempotency key remembers its answer.
const IDEMPOTENCY_TTL_SECS: u64 = 24 * 3600;

/// The stable id of the story `guid` from `source`.
pub fn story_id(source: &str, guid: &str) -> String {
    uuid::Uuid::new_v5(&STORY_NAMESPACE, format!("{source}\n{guid}").as_bytes()).to_string()
}

/// What a reservation found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Same content as the acknowledged version `0`: write nothing.
    Duplicate(u32),
    /// Publish this new version.
    New(u32),
}

/// Ingest's identity state in Redis.
#[derive(Clone)]
pub struct Identity {
    redis: RedisStore,
    reserve: Script,
    commit: Script,
}

impl Identity {
    pub fn new(redis: RedisStore) -> Self {
        Identity {
            redis,
            reserve: Script::new(
                r"
                local h = redis.call('HMGET', KEYS[1], 'fp', 'v')
                if h[1] == ARGV[1] then return {0, tonumber(h[2])} end
                return {1, redis.call('HINCRBY', KEYS[1], 'next', 1)}
                ",
            ),
            commit: Script::new(
                r"
                local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
                if tonumber(ARGV[1]) > v then
                  redis.call('HSET', KEYS[1], 'v', ARGV[1], 'fp', ARGV[2])
                end
                return 1
                ",
            ),
        }
    }

    fn key(&self, story_id: &str) -> String {
        self.redis.key(format!("ingest:story:{story_id}"))
    }

    /// Duplicate, or the next version to publish.
    pub async fn reserve(
        &self,
        story_id: &str,
        fingerprint: &str,
    ) -> Result<Reservation, redis::RedisError> {
        let (new, version): (u8, u32) = self
            .reserve
            .key(self.key(story_id))
            .arg(fingerprint)
            .invoke_async(&mut self.redis.conn())
            .await?;
        Ok(if new == 1 {
            Reservation::New(version)
        } else {
            Reservation::Duplicate(version)
        })
    }

    /// Records that Kafka acknowledged `version` with `fingerprint`.
    pub async fn commit(
        &self,
        story_id: &str,
        version: u32,
        fingerprint: &str,
    ) -> Result<(), redis::RedisError> {
        let _: i32 = self
            .commit
            .key(self.key(story_id))
            .arg(version)
            .arg(fingerprint)
            .invoke_async(&mut self.redis.conn())
            .await?;
        Ok(())
    }

    /// The latest version Kafka acknowledged for a story.
    pub async fn acknowledged_version(
        &self,
        story_id: &str,
    ) -> Result<Option<u32>, redis::RedisError> {
        self.redis.conn().hget(self.key(story_id), "v").await
    }

    fn idempotency_key(&self, source: &str, key: &str) -> String {
        self.redis.key(format!("ingest:idem:{source}:{key}"))
    }

    /// The answer remembered for an idempotency key, if any.
    pub async fn remembered(
        &self,
        source: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, redis::RedisError> {
        self.redis
            .conn()
            .get(self.idempotency_key(source, key))
            .await
    }

    /// Remembers the answer given for an idempotency key.
    pub async fn remember(
        &self,
        source: &str,
        key: &str,
        answer: &[u8],
    ) -> Result<(), redis::RedisError> {
        self.redis
            .conn()
            .set_ex(
                self.idempotency_key(source, key),
                answer,
                IDEMPOTENCY_TTL_SECS,
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn story_id_is_stable_per_source_and_guid() {
        assert_eq!(story_id("ap", "g1"), story_id("ap", "g1"));
        assert_ne!(story_id("ap", "g1"), story_id("afp", "g1"));
        assert_ne!(story_id("ap", "g1"), story_id("ap", "g2"));
    }
}
