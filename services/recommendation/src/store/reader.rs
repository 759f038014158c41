//! What the service knows of a reader: follows, read and hidden stories, implicit interests.
//!
//! [`FeedStore::reader`] reads all of it (and the reader's cached first page) in one pipeline,
//! because every first page needs all of it and round trips are what a page waits on.

use std::collections::{BTreeSet, HashMap, HashSet};

use newsroom_platform::redis::redis::{self, AsyncCommands as _};

use super::trend::TrendCount;
use super::{FeedStore, IndexKey, RedisError, follows_of};
use crate::taste::Taste;

/// How long read and hidden stories and implicit interests are remembered, in seconds.
pub const HISTORY_TTL_SECS: i64 = 30 * 24 * 3600;

/// Stories a reader's read (or hidden) set holds at most: past it, random older members make
/// room (a story read long ago may come back to the feed). A reader's state stays bounded
/// however many interactions a client sends.
pub const MAX_HISTORY: usize = 10_000;

/// Adds ARGV[1] to the set KEYS[1], first making room so it never holds more than ARGV[2].
const CAPPED_SADD: &str = "local n = redis.call('SCARD', KEYS[1]) - tonumber(ARGV[2]) + 1 \
if n > 0 then redis.call('SPOP', KEYS[1], n) end \
return redis.call('SADD', KEYS[1], ARGV[1])";

/// The stories a reader is done with: never shown to them again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum History {
    /// Read, clicked or shared.
    Read,
    /// Hidden.
    Hidden,
}

/// One implicit interest as stored: its weight when last updated, and when (`weight@ms`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InterestWeight {
    pub weight: f64,
    pub at_ms: i64,
}

impl InterestWeight {
    fn encode(&self) -> String {
        format!("{:.4}@{}", self.weight, self.at_ms)
    }

    fn decode(s: &str) -> Option<Self> {
        let (w, at) = s.split_once('@')?;
        Some(InterestWeight {
            weight: w.parse().ok()?,
            at_ms: at.parse().ok()?,
        })
    }
}

/// Implicit interests by topic code; unreadable entries are left out.
fn interests_of(raw: HashMap<String, String>) -> HashMap<String, InterestWeight> {
    raw.into_iter()
        .filter_map(|(topic, v)| Some((topic, InterestWeight::decode(&v)?)))
        .collect()
}

/// Everything a first page needs of a reader.
#[derive(Debug, Default)]
pub struct ReaderState {
    /// The snapshot of their cached first page, if still cached.
    pub first_page: Option<String>,
    /// Their generation (see [`super::changes`]) when this was read.
    pub generation: Option<String>,
    pub follows: Vec<IndexKey>,
    pub interests: HashMap<String, InterestWeight>,
    /// The centre of what they engaged with (see [`crate::taste`]), as stored (not decayed).
    pub taste: Option<Taste>,
    pub read: HashSet<String>,
    pub hidden: HashSet<String>,
}

impl FeedStore {
    /// The reader, and the snapshot of their cached first page if any, in one round trip.
    pub async fn reader(&self, user: &str) -> Result<ReaderState, RedisError> {
        type Raw = (
            Option<String>,
            Option<String>,
            Vec<String>,
            HashMap<String, String>,
            Option<Vec<u8>>,
            HashSet<String>,
            HashSet<String>,
        );
        // The generation first: a change landing after it shows at the next look.
        let (generation, first_page, follows, interests, taste, read, hidden): Raw = redis::pipe()
            .get(self.generation_key(user))
            .get(self.first_page_key(user))
            .smembers(self.follows_key(user))
            .hgetall(self.interests_key(user))
            .get(self.taste_key(user))
            .smembers(self.history_key(History::Read, user))
            .smembers(self.history_key(History::Hidden, user))
            .query_async(&mut self.redis.conn())
            .await?;
        Ok(ReaderState {
            first_page,
            generation,
            follows: follows_of(&follows),
            interests: interests_of(interests),
            taste: taste.as_deref().and_then(Taste::decode),
            read,
            hidden,
        })
    }

    /// The user's follow targets.
    pub async fn follows(&self, user: &str) -> Result<Vec<IndexKey>, RedisError> {
        let members: Vec<String> = self.redis.conn().smembers(self.follows_key(user)).await?;
        Ok(follows_of(&members))
    }

    /// Adds (or removes) a follow target; returns the user's follows afterwards.
    pub async fn set_follow(
        &self,
        user: &str,
        key: &IndexKey,
        follow: bool,
    ) -> Result<Vec<IndexKey>, RedisError> {
        let k = self.follows_key(user);
        if follow {
            let _: () = self.redis.conn().sadd(&k, key.member()).await?;
        } else {
            let _: () = self.redis.conn().srem(&k, key.member()).await?;
        }
        self.follows(user).await
    }

    /// Replaces a reader's follows (a profile replayed from Kafka), atomically.
    pub async fn replace_follows(
        &self,
        user: &str,
        follows: impl IntoIterator<Item = IndexKey>,
    ) -> Result<(), RedisError> {
        let members: BTreeSet<String> = follows.into_iter().map(|k| k.member()).collect();
        let key = self.follows_key(user);
        let mut pipe = redis::pipe();
        pipe.atomic().del(&key);
        if !members.is_empty() {
            pipe.sadd(&key, members.into_iter().collect::<Vec<_>>());
        }
        self.new_generation(&mut pipe, user);
        pipe.query_async::<()>(&mut self.redis.conn()).await
    }

    /// Takes a story out of the reader's feed at once (they read or hid it) and drops their
    /// cached first page, which may show it.
    pub async fn leave_feed(
        &self,
        user: &str,
        story_id: &str,
        history: History,
    ) -> Result<(), RedisError> {
        let mut pipe = redis::pipe();
        pipe.cmd("EVAL")
            .arg(CAPPED_SADD)
            .arg(1)
            .arg(self.history_key(history, user))
            .arg(story_id)
            .arg(MAX_HISTORY)
            .ignore();
        self.forget_first_page_in(&mut pipe, user);
        pipe.query_async::<()>(&mut self.redis.conn()).await
    }

    /// Folds one interaction in, in one round trip: the story joins the reader's `history` (kept
    /// [`HISTORY_TTL_SECS`]) and leaves their cached first page — whoever recorded it (this
    /// replica's API, another's, notification for an alert opened on a phone) — and counts in
    /// the trending buckets of `trend`.
    pub async fn record_interaction(
        &self,
        user: &str,
        story_id: &str,
        history: Option<History>,
        trend: Option<&TrendCount>,
    ) -> Result<(), RedisError> {
        let mut pipe = redis::pipe();
        if let Some(history) = history {
            let key = self.history_key(history, user);
            pipe.cmd("EVAL")
                .arg(CAPPED_SADD)
                .arg(1)
                .arg(&key)
                .arg(story_id)
                .arg(MAX_HISTORY)
                .ignore()
                .expire(&key, HISTORY_TTL_SECS)
                .ignore();
            self.forget_first_page_in(&mut pipe, user);
        }
        if let Some(trend) = trend {
            self.count_trend(&mut pipe, story_id, trend);
        }
        pipe.query_async::<()>(&mut self.redis.conn()).await
    }

    /// A reader's implicit interests and taste as stored (not decayed), in one round trip.
    pub async fn interests(
        &self,
        user: &str,
    ) -> Result<(HashMap<String, InterestWeight>, Option<Taste>), RedisError> {
        let (raw, taste): (HashMap<String, String>, Option<Vec<u8>>) = redis::pipe()
            .hgetall(self.interests_key(user))
            .get(self.taste_key(user))
            .query_async(&mut self.redis.conn())
            .await?;
        Ok((interests_of(raw), taste.as_deref().and_then(Taste::decode)))
    }

    /// Writes some of a reader's implicit interests and their new taste; both live
    /// [`HISTORY_TTL_SECS`] more, and the reader's feed is due a new ranking.
    pub async fn set_interests(
        &self,
        user: &str,
        updates: &[(String, InterestWeight)],
        taste: Option<&Taste>,
    ) -> Result<(), RedisError> {
        if updates.is_empty() && taste.is_none() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        if !updates.is_empty() {
            let key = self.interests_key(user);
            let fields: Vec<(&str, String)> = updates
                .iter()
                .map(|(topic, w)| (topic.as_str(), w.encode()))
                .collect();
            pipe.hset_multiple(&key, &fields)
                .ignore()
                .expire(&key, HISTORY_TTL_SECS)
                .ignore();
        }
        if let Some(t) = taste {
            pipe.set_ex(self.taste_key(user), t.encode(), HISTORY_TTL_SECS as u64)
                .ignore();
        }
        self.new_generation(&mut pipe, user);
        pipe.query_async::<()>(&mut self.redis.conn()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interest_weights_round_trip_and_garbage_is_left_out() {
        let w = InterestWeight {
            weight: 1.25,
            at_ms: 1_700_000_000_000,
        };
        assert_eq!(w.encode(), "1.2500@1700000000000");
        assert_eq!(InterestWeight::decode(&w.encode()), Some(w));
        let raw = HashMap::from([
            ("medtop:15000000".to_owned(), w.encode()),
            ("medtop:04000000".to_owned(), "nonsense".to_owned()),
        ]);
        assert_eq!(interests_of(raw).len(), 1);
    }
}
