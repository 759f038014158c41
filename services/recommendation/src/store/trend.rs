//! Trending buckets: one sorted set per hour and scope (`global`, `topic:<code>`), and the
//! trending lists this replica computed from them, kept in process for [`LOCAL_TTL`](super::LOCAL_TTL).
//!
//! How buckets add up to a trending score is [`crate::interests`]' business; this module only
//! writes and reads them.

use std::sync::Arc;
use std::time::Instant;

use newsroom_platform::redis::redis;

use super::{FeedStore, RedisError, fresh};

/// How long an hour's bucket is kept, in seconds (twice the longest window read).
const TREND_BUCKET_TTL_SECS: i64 = 48 * 3600;
/// Stories read from each bucket at most.
const TREND_BUCKET_READ: isize = 200;

/// A trending list: (story id, score), hottest first.
pub type Trending = Arc<Vec<(String, f64)>>;

/// What one interaction adds to trending: `weight` in the bucket of `hour` of each scope.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendCount {
    pub hour: i64,
    pub weight: f64,
    pub scopes: Vec<String>,
}

impl FeedStore {
    /// Adds `trend`'s commands for `story_id` to a pipeline (see `record_interaction`).
    pub(super) fn count_trend(&self, pipe: &mut redis::Pipeline, story_id: &str, t: &TrendCount) {
        for scope in &t.scopes {
            let key = self.trend_key(scope, t.hour);
            pipe.zincr(&key, story_id, t.weight)
                .expire(&key, TREND_BUCKET_TTL_SECS);
        }
    }

    /// The buckets of `scope` for `hours` hours back from `now_hour` (this hour first), each
    /// hottest first, in one round trip.
    pub async fn trend_buckets(
        &self,
        scope: &str,
        now_hour: i64,
        hours: i64,
    ) -> Result<Vec<Vec<(String, f64)>>, RedisError> {
        let mut pipe = redis::pipe();
        for back in 0..hours {
            pipe.zrevrange_withscores(
                self.trend_key(scope, now_hour - back),
                0,
                TREND_BUCKET_READ - 1,
            );
        }
        pipe.query_async(&mut self.redis.conn()).await
    }

    /// A trending list this replica computed less than [`LOCAL_TTL`](super::LOCAL_TTL) ago.
    pub fn local_trending(&self, scope: &str, limit: usize) -> Option<Trending> {
        fresh(
            self.local.trending.get(&(scope.to_owned(), limit)),
            Instant::now(),
        )
    }

    /// Keeps a trending list for [`LOCAL_TTL`](super::LOCAL_TTL).
    pub fn keep_trending(&self, scope: &str, limit: usize, list: Trending) {
        self.local
            .trending
            .insert((scope.to_owned(), limit), (Instant::now(), list));
    }
}
