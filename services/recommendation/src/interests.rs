//! What readers do, turned into what the feed knows: trending, read history, implicit interests.
//!
//! `RecordInteraction` writes to the `interactions` topic; this module's [`InteractionHandler`]
//! (its own consumer group) folds each interaction into Redis:
//! - **trending**, bucketed windows: one sorted set per hour and scope (global and per topic),
//!   kept 48 hours; the trending score sums the buckets of the last [`TRENDING_HOURS`] with a
//!   half-life of [`TRENDING_HALF_LIFE_H`] hours, so yesterday's hit fades behind this hour's;
//! - **read history** (`READ`, `CLICK`, `SHARE`) and **hidden** stories (`HIDE`), which the feed
//!   never shows again (kept 30 days);
//! - **implicit interests**: per reader, a decaying weight per topic of what they engage with
//!   (half-life [`INTEREST_HALF_LIFE_DAYS`] days), stored as `weight@ms` and decayed on read.
//!
//! Interactions are keyed by user, so one reader's interactions are folded in order; applying
//! one twice (a redelivery) counts it twice, which a popularity signal tolerates.

use std::collections::HashMap;

use newsroom_platform::kafka::{Handler, HandlerError, Record};
use newsroom_platform::redis::redis::{self, AsyncCommands as _};
use newsroom_proto::v1::{Interaction, InteractionKind};

use crate::store::{FeedStore, now_ms};

/// Hours of buckets summed for trending.
pub const TRENDING_HOURS: i64 = 24;
/// Half-life of a trending bucket, in hours.
pub const TRENDING_HALF_LIFE_H: f64 = 3.0;
/// Half-life of an implicit interest, in days.
pub const INTEREST_HALF_LIFE_DAYS: f64 = 7.0;
/// How long read and hidden stories are remembered, in seconds.
const HISTORY_TTL: i64 = 30 * 24 * 3600;

/// The weight of an interaction for popularity and interest.
pub fn weight(kind: InteractionKind, dwell_ms: u32) -> f64 {
    match kind {
        InteractionKind::View => 1.0,
        InteractionKind::Click => 2.0,
        InteractionKind::Read => 3.0 + (f64::from(dwell_ms) / 60_000.0).min(2.0),
        InteractionKind::Share => 5.0,
        InteractionKind::Hide | InteractionKind::Unspecified => 0.0,
    }
}

fn hour(ms: i64) -> i64 {
    ms / 3_600_000
}

/// Decays `w`, last updated at `at_ms`, to `now_ms`.
pub fn decayed(w: f64, at_ms: i64, now_ms: i64, half_life_ms: f64) -> f64 {
    w * 0.5f64.powf(((now_ms - at_ms).max(0) as f64) / half_life_ms)
}

/// Redis keys of this module.
pub struct Keys<'a>(pub &'a FeedStore);

impl Keys<'_> {
    pub fn trend_bucket(&self, scope: &str, hour: i64) -> String {
        self.0.redis().key(format!("rec:trend:{scope}:{hour}"))
    }
    pub fn read(&self, user: &str) -> String {
        self.0.redis().key(format!("rec:read:{user}"))
    }
    pub fn hidden(&self, user: &str) -> String {
        self.0.redis().key(format!("rec:hidden:{user}"))
    }
    pub fn interests(&self, user: &str) -> String {
        self.0.redis().key(format!("rec:interest:{user}"))
    }
}

/// Folds interactions into Redis.
pub struct InteractionHandler {
    pub store: FeedStore,
}

impl Handler for InteractionHandler {
    async fn handle(&self, record: &Record) -> Result<(), HandlerError> {
        let Some(i) = record.decode_or_tombstone::<Interaction>()? else {
            return Ok(());
        };
        if i.user_id.is_empty() || i.story_id.is_empty() {
            return Err(HandlerError::poison("interaction without user or story"));
        }
        apply(&self.store, &i)
            .await
            .map_err(|e| HandlerError::retryable(e).context("redis"))
    }
}

/// Applies one interaction.
pub async fn apply(store: &FeedStore, i: &Interaction) -> Result<(), redis::RedisError> {
    let keys = Keys(store);
    let kind = InteractionKind::try_from(i.kind).unwrap_or(InteractionKind::Unspecified);
    let at = i.at.map_or_else(now_ms, |t| {
        t.seconds * 1000 + i64::from(t.nanos) / 1_000_000
    });
    let mut pipe = redis::pipe();
    match kind {
        InteractionKind::Hide => {
            pipe.sadd(keys.hidden(&i.user_id), &i.story_id)
                .expire(keys.hidden(&i.user_id), HISTORY_TTL);
        }
        InteractionKind::Read | InteractionKind::Click | InteractionKind::Share => {
            pipe.sadd(keys.read(&i.user_id), &i.story_id)
                .expire(keys.read(&i.user_id), HISTORY_TTL);
        }
        _ => {}
    }
    let w = weight(kind, i.dwell_ms);
    let card = store
        .cards(std::slice::from_ref(&i.story_id))
        .await?
        .pop()
        .flatten();
    if w > 0.0 {
        let h = hour(at);
        let mut scopes = vec!["global".to_owned()];
        if let Some(c) = &card {
            scopes.extend(c.topics.iter().map(|(t, _)| format!("topic:{t}")));
        }
        for scope in scopes {
            let key = keys.trend_bucket(&scope, h);
            pipe.zincr(&key, &i.story_id, w).expire(&key, 48 * 3600);
        }
    }
    pipe.query_async::<()>(&mut store.redis().conn()).await?;

    // Implicit interests: the story's topics, weighted by their scores.
    if let Some(card) = card
        && w > 0.0
    {
        let key = keys.interests(&i.user_id);
        let current: HashMap<String, String> = store.redis().conn().hgetall(&key).await?;
        let half_life = INTEREST_HALF_LIFE_DAYS * 86_400_000.0;
        let mut updates = Vec::new();
        for (topic, score) in &card.topics {
            let (old, old_at) = current
                .get(topic)
                .and_then(|v| v.split_once('@'))
                .and_then(|(w, t)| Some((w.parse::<f64>().ok()?, t.parse::<i64>().ok()?)))
                .unwrap_or((0.0, at));
            let new = decayed(old, old_at, at, half_life) + w * score;
            updates.push((topic.clone(), format!("{new:.4}@{at}")));
        }
        if !updates.is_empty() {
            let mut pipe = redis::pipe();
            pipe.hset_multiple(&key, &updates).expire(&key, HISTORY_TTL);
            pipe.query_async::<()>(&mut store.redis().conn()).await?;
        }
    }
    Ok(())
}

/// A reader's implicit topic weights now, strongest first.
pub async fn interests(
    store: &FeedStore,
    user: &str,
) -> Result<Vec<(String, f64)>, redis::RedisError> {
    let raw: HashMap<String, String> = store
        .redis()
        .conn()
        .hgetall(Keys(store).interests(user))
        .await?;
    Ok(parse_interests(raw))
}

/// Implicit topic weights from the reader's interest hash, decayed to now, strongest first.
pub fn parse_interests(raw: HashMap<String, String>) -> Vec<(String, f64)> {
    let now = now_ms();
    let half_life = INTEREST_HALF_LIFE_DAYS * 86_400_000.0;
    let mut out: Vec<(String, f64)> = raw
        .into_iter()
        .filter_map(|(topic, v)| {
            let (w, at) = v.split_once('@')?;
            Some((
                topic,
                decayed(w.parse().ok()?, at.parse().ok()?, now, half_life),
            ))
        })
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

/// Trending stories of a scope (`global` or `topic:<code>`), hottest first, with scores. The
/// same for every reader: computed from Redis at most once per [`crate::store::LOCAL_TTL`] on
/// each replica.
pub async fn trending(
    store: &FeedStore,
    scope: &str,
    limit: usize,
) -> Result<crate::store::Trending, redis::RedisError> {
    if let Some(list) = store.local_trending(scope, limit) {
        return Ok(list);
    }
    let list = std::sync::Arc::new(trending_from_redis(store, scope, limit).await?);
    store.keep_trending(scope, limit, list.clone());
    Ok(list)
}

async fn trending_from_redis(
    store: &FeedStore,
    scope: &str,
    limit: usize,
) -> Result<Vec<(String, f64)>, redis::RedisError> {
    let keys = Keys(store);
    let now_h = hour(now_ms());
    let mut pipe = redis::pipe();
    for back in 0..TRENDING_HOURS {
        pipe.zrevrange_withscores(keys.trend_bucket(scope, now_h - back), 0, 199);
    }
    let buckets: Vec<Vec<(String, f64)>> = pipe.query_async(&mut store.redis().conn()).await?;
    let mut scores: HashMap<String, f64> = HashMap::new();
    for (back, bucket) in buckets.into_iter().enumerate() {
        let factor = 0.5f64.powf(back as f64 / TRENDING_HALF_LIFE_H);
        for (id, s) in bucket {
            *scores.entry(id).or_default() += s * factor;
        }
    }
    let mut out: Vec<(String, f64)> = scores.into_iter().collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out.truncate(limit);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engagement_outweighs_a_glance_and_hide_counts_nothing() {
        assert!(weight(InteractionKind::Share, 0) > weight(InteractionKind::Read, 0));
        assert!(weight(InteractionKind::Read, 120_000) > weight(InteractionKind::Read, 0));
        assert!(weight(InteractionKind::Read, 0) > weight(InteractionKind::View, 0));
        assert_eq!(weight(InteractionKind::Hide, 0), 0.0);
    }

    #[test]
    fn weights_halve_every_half_life() {
        let w = decayed(8.0, 0, 3 * 3_600_000, 3_600_000.0);
        assert!((w - 1.0).abs() < 1e-9);
        assert_eq!(decayed(2.0, 10, 5, 1.0), 2.0, "no growth backwards in time");
    }
}
