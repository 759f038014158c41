//! Story identity: ids, versions, duplicates, idempotency keys and embargo release claims.
//!
//! A story id is a UUIDv5 of (source, guid), so every replica computes the same id without
//! coordination. Versions live in a Redis hash per story:
//! - `next` — the last version handed out (only ever incremented);
//! - `v`, `fp` — the latest version Kafka acknowledged, and its content fingerprint;
//! - `pv`, `pfp` — the last version handed out and the fingerprint it was handed out for.
//!
//! [`Identity::reserve`] atomically compares the fingerprint with the acknowledged one
//! (→ duplicate) or hands out `next + 1`; [`Identity::commit`] records the version once Kafka
//! acknowledged it. The same content submitted again before its version was committed (the
//! write or the commit failed, or the answer was lost, and the client retried) gets the *same*
//! version again, written again: downstream is idempotent on (id, version), so a failed commit
//! after Kafka acknowledged never turns a retry into a duplicate version. A reservation that
//! never reaches Kafka leaves at most a gap in the version sequence, never a step backwards.

use newsroom_platform::redis::RedisStore;
use newsroom_platform::redis::redis::{self, AsyncCommands as _, Script};
use newsroom_proto::Message as _;
use newsroom_proto::v1::StoryIndexEntry;

/// Namespace of story ids (UUIDv5).
const STORY_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6e657773_726f_6f6d_8000_73746f727921);

/// Present while Redis holds ingest's identity state (set after a rebuild).
/// The marker shares the `{ingest}` hash tag with the story versions: the reservation script
/// reads both, and on a Redis Cluster a master lost with the versions takes the marker with it.
const LOADED_MARKER: &str = "ingest:{ingest}:index-loaded";

/// How long an idempotency key remembers its answer.
const IDEMPOTENCY_TTL_SECS: u64 = 24 * 3600;

/// How long an embargoed version is remembered as released (its hold is tombstoned long before).
const RELEASED_TTL_SECS: u64 = 30 * 24 * 3600;

/// How long one replica may take to write a due embargoed version before another may.
pub const RELEASE_LEASE: std::time::Duration = std::time::Duration::from_secs(30);

/// Who releases a due embargoed version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Already on `stories.raw`: only the hold's tombstone may be missing.
    Done,
    /// This replica holds the lease: it writes the version.
    Leased,
    /// Another replica holds the lease: look again once it may have expired.
    Busy,
}

/// The stable id of the story `guid` from `source`.
pub fn story_id(source: &str, guid: &str) -> String {
    uuid::Uuid::new_v5(&STORY_NAMESPACE, format!("{source}\n{guid}").as_bytes()).to_string()
}

/// What a reservation found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Same content as the acknowledged version `0`: write nothing.
    Duplicate(u32),
    /// Publish this new version; `held` when an earlier version is waiting on `stories.held`.
    New { version: u32, held: bool },
    /// Redis has lost ingest's state (flushed, replaced): rebuild it before answering.
    StateLost,
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
                if redis.call('EXISTS', KEYS[2]) == 0 then return {2, 0, 0} end
                local h = redis.call('HMGET', KEYS[1], 'fp', 'v', 'held', 'pfp', 'pv')
                if h[1] == ARGV[1] then return {0, tonumber(h[2]), 0} end
                local held = 0
                if h[3] then held = 1 end
                local pv = tonumber(h[5] or '0')
                if h[4] == ARGV[1] and pv > tonumber(h[2] or '0') then
                  return {1, pv, held}
                end
                local v = redis.call('HINCRBY', KEYS[1], 'next', 1)
                redis.call('HSET', KEYS[1], 'pfp', ARGV[1], 'pv', v)
                return {1, v, held}
                ",
            ),
            commit: Script::new(
                r"
                local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
                if tonumber(ARGV[1]) > v then
                  redis.call('HSET', KEYS[1], 'v', ARGV[1], 'fp', ARGV[2])
                  if ARGV[3] == '1' then
                    redis.call('HSET', KEYS[1], 'held', ARGV[1])
                  else
                    redis.call('HDEL', KEYS[1], 'held')
                  end
                end
                return 1
                ",
            ),
        }
    }

    fn key(&self, story_id: &str) -> String {
        self.redis
            .key(format!("ingest:{{ingest}}:story:{story_id}"))
    }

    /// Duplicate, or the version to publish: the next one, or the one already handed out for
    /// this same content and never committed.
    pub async fn reserve(
        &self,
        story_id: &str,
        fingerprint: &str,
    ) -> Result<Reservation, redis::RedisError> {
        let (new, version, held): (u8, u32, u8) = self
            .reserve
            .key(self.key(story_id))
            .key(self.redis.key(LOADED_MARKER))
            .arg(fingerprint)
            .invoke_async(&mut self.redis.conn())
            .await?;
        Ok(match new {
            1 => Reservation::New {
                version,
                held: held == 1,
            },
            0 => Reservation::Duplicate(version),
            _ => Reservation::StateLost,
        })
    }

    /// Records that Kafka acknowledged `version` with `fingerprint` (`held`: on
    /// `stories.held`, waiting for its embargo).
    pub async fn commit(
        &self,
        story_id: &str,
        version: u32,
        fingerprint: &str,
        held: bool,
    ) -> Result<(), redis::RedisError> {
        let _: i32 = self
            .commit
            .key(self.key(story_id))
            .arg(version)
            .arg(fingerprint)
            .arg(if held { "1" } else { "0" })
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

    /// Leases the release of an embargoed version to this replica: [`Release::Done`] if some
    /// replica already wrote it to `stories.raw`, [`Release::Busy`] while another holds the
    /// lease, else [`Release::Leased`] (`SET NX PX`, expiring after [`RELEASE_LEASE`], so a
    /// replica that dies holding it delays the release, and never loses it).
    pub async fn lease_release(
        &self,
        story_id: &str,
        version: u32,
    ) -> Result<Release, redis::RedisError> {
        let mut conn = self.redis.conn();
        let done: bool = conn.exists(self.released_key(story_id, version)).await?;
        if done {
            return Ok(Release::Done);
        }
        let leased: Option<String> = redis::cmd("SET")
            .arg(
                self.redis
                    .key(format!("ingest:releasing:{story_id}:{version}")),
            )
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(RELEASE_LEASE.as_millis() as u64)
            .query_async(&mut conn)
            .await?;
        Ok(if leased.is_some() {
            Release::Leased
        } else {
            Release::Busy
        })
    }

    /// Records that an embargoed version is on `stories.raw` (only once Kafka acknowledged it).
    pub async fn mark_released(
        &self,
        story_id: &str,
        version: u32,
    ) -> Result<(), redis::RedisError> {
        self.redis
            .conn()
            .set_ex(self.released_key(story_id, version), 1, RELEASED_TTL_SECS)
            .await
    }

    fn released_key(&self, story_id: &str, version: u32) -> String {
        self.redis
            .key(format!("ingest:released:{story_id}:{version}"))
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

    /// What a compacted topic ends up holding of `writes` (in the order they landed): the
    /// last record of each key, tombstoned keys gone.
    fn compacted(writes: &[(String, Option<Vec<u8>>)]) -> Vec<StoryIndexEntry> {
        let mut last = std::collections::HashMap::new();
        for (k, v) in writes {
            last.insert(k.clone(), v.clone());
        }
        last.into_values()
            .flatten()
            .map(|b| StoryIndexEntry::decode(b.as_slice()).unwrap())
            .collect()
    }

    #[test]
    fn the_compacted_index_keeps_the_highest_version_whatever_order_entries_land_in() {
        let entry = |v: u32| StoryIndexEntry {
            story_id: "s".into(),
            version: v,
            fingerprint: format!("fp{v}"),
        };
        let highest = |kept: &[StoryIndexEntry]| kept.iter().map(|e| e.version).max();
        // Version 1, then two replicas whose entries land out of order: 3's before 2's.
        let raced: Vec<_> = [1, 3, 2]
            .map(entry)
            .iter()
            .flat_map(index_records)
            .collect();
        assert_eq!(highest(&compacted(&raced)), Some(3));
        // Under one key per story, as it was, compaction kept the last written: 2.
        let per_story: Vec<_> = [1, 3, 2]
            .map(entry)
            .iter()
            .map(|e| ("s".to_owned(), Some(e.encode_to_vec())))
            .collect();
        assert_eq!(highest(&compacted(&per_story)), Some(2));
        // In order, the topic holds one entry per story.
        let in_order: Vec<_> = [1, 2, 3]
            .map(entry)
            .iter()
            .flat_map(index_records)
            .collect();
        let kept = compacted(&in_order);
        assert_eq!((kept.len(), highest(&kept)), (1, Some(3)));
    }

    #[test]
    fn story_id_is_stable_per_source_and_guid() {
        assert_eq!(story_id("ap", "g1"), story_id("ap", "g1"));
        assert_ne!(story_id("ap", "g1"), story_id("afp", "g1"));
        assert_ne!(story_id("ap", "g1"), story_id("ap", "g2"));
    }
}

/// The `stories.index` records that note `version` of a story: its entry, keyed
/// `<story id>/<version>`, and (from version 2) a tombstone for `<story id>/<version - 1>`.
///
/// One key per version, because compaction keeps the *last written* record of a key, and two
/// replicas submitting the same story can land their entries out of version order (v3's, then
/// v2's): under one key per story the compacted topic would keep v2, and a rebuild after a lost
/// Redis would hand out version 3 twice. With a key per version nothing lower can replace the
/// highest entry; the tombstone keeps the topic at about one entry per story (a race leaves at
/// most a stray lower entry, which the rebuild's max ignores).
pub fn index_records(entry: &StoryIndexEntry) -> Vec<(String, Option<Vec<u8>>)> {
    let mut records = vec![(
        format!("{}/{}", entry.story_id, entry.version),
        Some(entry.encode_to_vec()),
    )];
    if entry.version > 1 {
        records.push((format!("{}/{}", entry.story_id, entry.version - 1), None));
    }
    records
}

/// Rebuilds ingest's identity state from the compacted `stories.index` topic when Redis has
/// lost it (a flush, a new Redis), so a version number never goes backwards. Reads each
/// partition from the beginning to its end as of the start, keeps the highest version per
/// story, then marks Redis as loaded. Returns how many stories were restored.
pub async fn rebuild_if_lost(
    config: &newsroom_platform::PlatformConfig,
    identity: &Identity,
    index_topic: &str,
) -> Result<usize, RebuildError> {
    let marker = identity.redis.key(LOADED_MARKER);
    let loaded: bool = identity.redis.conn().exists(&marker).await?;
    if loaded {
        return Ok(0);
    }
    // The whole compacted topic, to its end as of now: the highest version per story.
    let mut latest: std::collections::HashMap<String, (u32, String)> =
        std::collections::HashMap::new();
    newsroom_platform::kafka::replay(config, index_topic, |record| {
        if let Some(entry) = record
            .payload
            .as_deref()
            .and_then(|p| StoryIndexEntry::decode(p).ok())
        {
            let slot = latest.entry(entry.story_id).or_insert((0, String::new()));
            if entry.version > slot.0 {
                *slot = (entry.version, entry.fingerprint);
            }
        }
        std::future::ready(())
    })
    .await?;

    let restored = latest.len();
    for chunk in latest.into_iter().collect::<Vec<_>>().chunks(500) {
        let mut pipe = redis::pipe();
        for (id, (version, fp)) in chunk {
            let key = identity.key(id);
            // Never lower what a concurrent submission already raised.
            pipe.cmd("EVAL")
                .arg(
                    "local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0') \
                     if tonumber(ARGV[1]) > v then redis.call('HSET', KEYS[1], 'v', ARGV[1], 'fp', ARGV[2]) end \
                     local n = tonumber(redis.call('HGET', KEYS[1], 'next') or '0') \
                     if tonumber(ARGV[1]) > n then redis.call('HSET', KEYS[1], 'next', ARGV[1]) end return 1",
                )
                .arg(1)
                .arg(key)
                .arg(*version)
                .arg(fp)
                .ignore();
        }
        pipe.query_async::<()>(&mut identity.redis.conn()).await?;
    }
    let _: () = identity.redis.conn().set(&marker, 1).await?;
    Ok(restored)
}

/// Why the identity state could not be rebuilt.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("kafka: {0}")]
    Kafka(#[from] newsroom_platform::kafka::rdkafka::error::KafkaError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}
