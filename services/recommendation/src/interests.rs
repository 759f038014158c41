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
//!   (half-life [`INTEREST_HALF_LIFE_DAYS`] days), stored as `weight@ms` and decayed on read;
//!   an alert dismissed on the reader's phone (`DISMISS`, from notification) takes a third of a
//!   read away from its topics: a mild "not interested", which neither hides the story nor
//!   counts for trending;
//! - the reader's **taste**, the centre of what they engaged with in embedding space
//!   ([`crate::taste`]).
//!
//! Interactions are keyed by user, so one reader's interactions are folded in order; applying
//! one twice (a redelivery) counts it twice, which a popularity signal tolerates.

use std::collections::HashMap;

use newsroom_platform::kafka::{Handler, HandlerError, Record};
use newsroom_proto::v1::{Interaction, InteractionKind};

use crate::store::related::dequantise;
use crate::store::trend::TrendCount;
use crate::store::{FeedStore, History, InterestWeight, RedisError, Trending, now_ms};
use crate::taste::Taste;

/// Hours of buckets summed for trending.
pub const TRENDING_HOURS: i64 = 24;
/// Half-life of a trending bucket, in hours.
pub const TRENDING_HALF_LIFE_H: f64 = 3.0;
/// Half-life of an implicit interest, in days.
pub const INTEREST_HALF_LIFE_DAYS: f64 = 7.0;
const INTEREST_HALF_LIFE_MS: f64 = INTEREST_HALF_LIFE_DAYS * 86_400_000.0;

/// The weight of an interaction for popularity and interest.
pub fn weight(kind: InteractionKind, dwell_ms: u32) -> f64 {
    match kind {
        InteractionKind::View => 1.0,
        InteractionKind::Click => 2.0,
        InteractionKind::Read => 3.0 + (f64::from(dwell_ms) / 60_000.0).min(2.0),
        InteractionKind::Share => 5.0,
        // A dismissed alert: a third of a read, against the story's topics.
        InteractionKind::Dismiss => -1.0,
        InteractionKind::Hide | InteractionKind::Unspecified => 0.0,
    }
}

/// The history an interaction puts its story in: read (`READ`, `CLICK`, `SHARE`) or hidden
/// (`HIDE`); a `VIEW` leaves it in the feed.
pub fn history_of(kind: InteractionKind) -> Option<History> {
    match kind {
        InteractionKind::Hide => Some(History::Hidden),
        InteractionKind::Read | InteractionKind::Click | InteractionKind::Share => {
            Some(History::Read)
        }
        InteractionKind::View | InteractionKind::Dismiss | InteractionKind::Unspecified => None,
    }
}

fn hour(ms: i64) -> i64 {
    ms / 3_600_000
}

/// Decays `w`, last updated at `at_ms`, to `now_ms`.
pub fn decayed(w: f64, at_ms: i64, now_ms: i64, half_life_ms: f64) -> f64 {
    w * 0.5f64.powf(((now_ms - at_ms).max(0) as f64) / half_life_ms)
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
pub async fn apply(store: &FeedStore, i: &Interaction) -> Result<(), RedisError> {
    let kind = InteractionKind::try_from(i.kind).unwrap_or(InteractionKind::Unspecified);
    let at =
        i.at.and_then(|t| newsroom_platform::time::timestamp_ms(&t))
            .unwrap_or_else(now_ms);
    let w = weight(kind, i.dwell_ms);
    let card = store.card(&i.story_id).await?;
    let trend = (w > 0.0).then(|| {
        let mut scopes = vec!["global".to_owned()];
        if let Some(c) = &card {
            scopes.extend(c.topics.iter().map(|(t, _)| format!("topic:{t}")));
        }
        TrendCount {
            hour: hour(at),
            weight: w,
            scopes,
        }
    });
    store
        .record_interaction(&i.user_id, &i.story_id, history_of(kind), trend.as_ref())
        .await?;

    // Implicit interests: the story's topics, weighted by their scores (a dismissed alert
    // takes a little away); and the reader's taste moves towards what they engaged with.
    if let Some(card) = card
        && w != 0.0
    {
        let vector = if w > 0.0 {
            store
                .vectors(std::slice::from_ref(&i.story_id))
                .await?
                .pop()
                .flatten()
        } else {
            None
        };
        let (current, taste) = store.interests(&i.user_id).await?;
        let updates = engaged(&current, &card.topics, w, at);
        let taste = vector.map(|v| Taste::engaged(taste, &dequantise(&v), w, at));
        store
            .set_interests(&i.user_id, &updates, taste.as_ref())
            .await?;
    }
    Ok(())
}

/// A reader's interests after engaging at `at_ms` with weight `w` with a story of `topics`
/// (code, score): each topic's weight decayed to `at_ms`, plus `w · score`.
fn engaged(
    current: &HashMap<String, InterestWeight>,
    topics: &[(String, f64)],
    w: f64,
    at_ms: i64,
) -> Vec<(String, InterestWeight)> {
    topics
        .iter()
        .map(|(topic, score)| {
            let old = current
                .get(topic)
                .copied()
                .unwrap_or(InterestWeight { weight: 0.0, at_ms });
            let weight = decayed(old.weight, old.at_ms, at_ms, INTEREST_HALF_LIFE_MS) + w * score;
            (topic.clone(), InterestWeight { weight, at_ms })
        })
        .collect()
}

/// Implicit topic weights decayed to `now_ms`, strongest first.
pub fn strongest_first(raw: HashMap<String, InterestWeight>, now_ms: i64) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = raw
        .into_iter()
        .map(|(topic, w)| {
            let now = decayed(w.weight, w.at_ms, now_ms, INTEREST_HALF_LIFE_MS);
            (topic, now)
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
) -> Result<Trending, RedisError> {
    if let Some(list) = store.local_trending(scope, limit) {
        return Ok(list);
    }
    let buckets = store
        .trend_buckets(scope, hour(now_ms()), TRENDING_HOURS)
        .await?;
    let list = std::sync::Arc::new(hottest(buckets, limit));
    store.keep_trending(scope, limit, list.clone());
    Ok(list)
}

/// Sums hourly buckets (this hour first), each hour back halving every
/// [`TRENDING_HALF_LIFE_H`]; the `limit` hottest, ties by id.
fn hottest(buckets: Vec<Vec<(String, f64)>>, limit: usize) -> Vec<(String, f64)> {
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
    out
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

    #[test]
    fn this_hours_hit_outranks_a_bigger_one_from_yesterday() {
        let mut buckets = vec![Vec::new(); TRENDING_HOURS as usize];
        buckets[0].push(("now".to_owned(), 10.0));
        buckets[20].push(("yesterday".to_owned(), 50.0));
        let hot = hottest(buckets, 10);
        assert_eq!(hot[0].0, "now");
        assert_eq!(hot.len(), 2);
        assert_eq!(hottest(vec![vec![("a".into(), 1.0)]], 0), vec![]);
    }

    #[test]
    fn engagement_adds_to_a_decayed_interest_per_topic() {
        let week = (INTEREST_HALF_LIFE_DAYS * 86_400_000.0) as i64;
        let current = HashMap::from([(
            "sport".to_owned(),
            InterestWeight {
                weight: 4.0,
                at_ms: 0,
            },
        )]);
        let topics = [("sport".to_owned(), 1.0), ("politics".to_owned(), 0.5)];
        let after = engaged(&current, &topics, 2.0, week);
        assert_eq!(after[0].1.weight, 4.0);
        assert_eq!(after[1].1.weight, 1.0);
        assert!(after.iter().all(|(_, w)| w.at_ms == week));
    }

    #[test]
    fn a_dismissed_alert_takes_a_third_of_a_read_away_and_neither_hides_nor_reads() {
        let dismiss = weight(InteractionKind::Dismiss, 0);
        assert!(dismiss < 0.0 && dismiss.abs() * 3.0 <= weight(InteractionKind::Read, 0));
        assert_eq!(history_of(InteractionKind::Dismiss), None);
        let current = HashMap::from([(
            "sport".to_owned(),
            InterestWeight {
                weight: 3.0,
                at_ms: 0,
            },
        )]);
        let after = engaged(&current, &[("sport".to_owned(), 1.0)], dismiss, 0);
        assert_eq!(after[0].1.weight, 2.0, "a read's interest, a third lower");
    }
}
