//! What tells a prepared feed ([`crate::feed::prepared`]) that it is still current, in one
//! round trip:
//!
//! - `rec:idxver` — a hash with one counter per index (field = the index's
//!   [`Index::field`]), bumped in the same transaction as every write to that index, plus
//!   [`KILLS`] (bumped by every kill: a killed story may sit on any page, trending included)
//!   and [`EPOCH`] (a random token set when the hash is created: Redis lost and rebuilt reads
//!   as a change even where counters climbed back to the same numbers);
//! - `rec:gen:<user>` — a random token replaced whenever what the reader follows, read, hid
//!   or is interested in changes (kept [`GENERATION_TTL_SECS`]).
//!
//! A [`Watch`] is the values of some fields as read *before* the data they guard, so a write
//! that lands in between shows as a change at the next look.

use newsroom_platform::redis::redis::{self, Pipeline};

use super::{FeedStore, Index, RedisError};

/// The field of `rec:idx:latest`.
pub const LATEST: &str = "latest";
/// The field of `rec:idx:breaking`.
pub const BREAKING: &str = "breaking";
/// The field bumped by every kill.
pub const KILLS: &str = "kills";
/// The field holding the hash's random epoch.
pub const EPOCH: &str = "epoch";
/// How long a reader's generation token lives after their last change (a prepared feed lives
/// far less; a reader without a token simply has none to compare).
pub const GENERATION_TTL_SECS: u64 = 24 * 3600;

impl Index {
    /// The index's field in `rec:idxver`.
    pub fn field(&self) -> String {
        match self {
            Index::Target(key) => key.member(),
            Index::Latest => LATEST.to_owned(),
            Index::Breaking => BREAKING.to_owned(),
        }
    }
}

/// A random token (16 hex digits, random per process and time): generations, the epoch, and
/// snapshot ids.
pub fn token() -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:016x}", h.finish())
}

/// Index versions as read at one moment: `fields[i]` had `seen[i]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Watch {
    pub fields: Vec<String>,
    pub seen: Vec<Option<String>>,
}

impl Watch {
    /// The fields every watch carries, whatever it guards.
    pub fn base_fields() -> Vec<String> {
        vec![EPOCH.to_owned(), KILLS.to_owned()]
    }

    /// This watch followed by `other`.
    pub fn joined(&self, other: &Watch) -> Watch {
        Watch {
            fields: self.fields.iter().chain(&other.fields).cloned().collect(),
            seen: self.seen.iter().chain(&other.seen).cloned().collect(),
        }
    }
}

/// What [`FeedStore::current`] read: the reader's generation and the watched versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    pub generation: Option<String>,
    pub seen: Vec<Option<String>>,
}

impl FeedStore {
    fn versions_key(&self) -> String {
        self.redis.key("rec:{rec}:idxver")
    }

    pub(super) fn generation_key(&self, user: &str) -> String {
        self.redis
            .key(format!("rec:gen:{}", newsroom_platform::redis::tag(user)))
    }

    /// Adds to `pipe` the bump of each index in `fields` (and the epoch if the hash is new).
    pub(super) fn bump_indexes<'a>(
        &self,
        pipe: &mut Pipeline,
        fields: impl IntoIterator<Item = &'a str>,
    ) {
        let key = self.versions_key();
        pipe.hset_nx(&key, EPOCH, token()).ignore();
        for field in fields {
            pipe.hincr(&key, field, 1).ignore();
        }
    }

    /// Adds to `pipe` a new generation for `user`: any prepared feed of theirs is stale.
    pub(super) fn new_generation(&self, pipe: &mut Pipeline, user: &str) {
        pipe.set_ex(self.generation_key(user), token(), GENERATION_TTL_SECS)
            .ignore();
    }

    /// Adds to `pipe` the read of `fields`' versions (one reply: a list).
    pub(super) fn read_versions(&self, pipe: &mut Pipeline, fields: &[String]) {
        pipe.cmd("HMGET").arg(self.versions_key()).arg(fields);
    }

    /// The reader's generation and the versions of `fields`, in one round trip.
    pub async fn current(&self, user: &str, fields: &[String]) -> Result<Current, RedisError> {
        let mut pipe = redis::pipe();
        pipe.get(self.generation_key(user));
        self.read_versions(&mut pipe, fields);
        let (generation, seen): (Option<String>, Vec<Option<String>>) =
            pipe.query_async(&mut self.redis.conn()).await?;
        Ok(Current { generation, seen })
    }

    /// The newest story ids of several indexes, newest first, `count` of each, and, read just
    /// before them in the same round trip, the versions of `fields`.
    pub async fn newest_watched(
        &self,
        reads: &[(Index, usize)],
        fields: Vec<String>,
    ) -> Result<(Watch, Vec<Vec<String>>), RedisError> {
        // Redis refuses an empty pipeline and an HMGET without fields.
        if fields.is_empty() && reads.is_empty() {
            return Ok((Watch::default(), Vec::new()));
        }
        let mut pipe = redis::pipe();
        if !fields.is_empty() {
            self.read_versions(&mut pipe, &fields);
        }
        for (index, count) in reads {
            pipe.zrevrange(self.index_key(index), 0, *count as isize - 1);
        }
        let mut replies: Vec<redis::Value> = pipe.query_async(&mut self.redis.conn()).await?;
        let lists = replies.split_off(usize::from(!fields.is_empty()));
        let seen: Vec<Option<String>> = match replies.pop() {
            Some(v) => redis::from_redis_value(v)?,
            None => Vec::new(),
        };
        let lists = lists
            .into_iter()
            .map(redis::from_redis_value)
            .collect::<Result<Vec<Vec<String>>, _>>()?;
        Ok((Watch { fields, seen }, lists))
    }

    /// The newest story ids of several indexes, newest first, `count` of each, in one round
    /// trip.
    pub async fn newest(&self, reads: &[(Index, usize)]) -> Result<Vec<Vec<String>>, RedisError> {
        Ok(self.newest_watched(reads, Vec::new()).await?.1)
    }
}
