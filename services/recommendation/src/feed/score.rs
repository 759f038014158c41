//! Scoring: candidates, their cards and the time → the ranked feed, with reasons. Pure (no I/O),
//! so the ranking a reader sees can be tested and tuned in isolation; [`Weights`] holds every
//! number it uses.
//!
//! `score = interest·interest_weight + recency·recency_weight + importance·importance_weight +
//! popularity·popularity_weight`, where interest is the strongest reason's (1 for a follow, less
//! for an implicit interest, trending or breaking alone), recency `exp(−age / recency_hours)`,
//! importance enrichment's breaking score and popularity the trending score relative to the
//! hottest candidate.
//!
//! Diversity: a near-duplicate cluster (the same event from several wires) shows once, its best
//! story; each further story of the same main topic is discounted by `topic_repeat` per story
//! before it, so a page is not a wall of one topic.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::candidates::{Candidates, Why};
use super::snapshot::Ranked;
use crate::store::Card;

/// Stories ranked per snapshot at most.
pub const SNAPSHOT_MAX: usize = 500;

/// Every number scoring uses. [`Weights::DEFAULT`] is what the service runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    /// Share of interest (the strongest reason) in the score. Default 0.45.
    pub interest: f64,
    /// Share of recency. Default 0.30.
    pub recency: f64,
    /// Share of importance (the breaking score). Default 0.15.
    pub importance: f64,
    /// Share of popularity (trending score over the hottest candidate's). Default 0.10.
    pub popularity: f64,
    /// Recency is `exp(−age / recency_hours)`: it halves about every 17 hours. Default 24.
    pub recency_hours: f64,
    /// Factor per earlier story of the same main topic. Default 0.85 (15 % off each).
    pub topic_repeat: f64,
    /// Interest of a followed topic, entity, section or author. Default 1.0.
    pub follow: f64,
    /// Interest of the weakest implicit interest; the strongest gets 1.0. Default 0.5.
    pub implicit_floor: f64,
    /// Interest of a story just close enough to the reader's taste. Default 0.4.
    pub close_floor: f64,
    /// Interest of a story as close to the reader's taste as can be; below a follow. Default 0.9.
    pub close_top: f64,
    /// Interest of a story trending in a followed topic. Default 0.5.
    pub trending_in_topic: f64,
    /// Interest of fresh breaking news. Default 0.4.
    pub breaking: f64,
    /// Interest of a globally trending story. Default 0.3.
    pub trending: f64,
    /// Interest of a latest story shown to a reader the service knows nothing of. Default 0.2.
    pub top: f64,
}

impl Weights {
    pub const DEFAULT: Weights = Weights {
        interest: 0.45,
        recency: 0.30,
        importance: 0.15,
        popularity: 0.10,
        recency_hours: 24.0,
        topic_repeat: 0.85,
        follow: 1.0,
        implicit_floor: 0.5,
        close_floor: 0.4,
        close_top: 0.9,
        trending_in_topic: 0.5,
        breaking: 0.4,
        trending: 0.3,
        top: 0.2,
    };
}

impl Default for Weights {
    fn default() -> Self {
        Weights::DEFAULT
    }
}

/// Ranks candidates: scored, best first, one per cluster, topic repeats discounted, at most
/// [`SNAPSHOT_MAX`]. A candidate without a card (expired, killed) is not shown.
pub fn rank(
    candidates: Candidates<'_>,
    cards: &HashMap<String, Arc<Card>>,
    now_ms: i64,
    w: &Weights,
) -> Vec<Ranked> {
    let Candidates {
        whys, popularity, ..
    } = candidates;
    let hottest = popularity.values().copied().fold(1.0, f64::max);
    let mut scored: Vec<(Ranked, &Arc<Card>)> = whys
        .into_iter()
        .filter_map(|(id, mut reasons)| {
            let card = cards.get(&id)?;
            reasons.sort_by(|a, b| b.interest(w).total_cmp(&a.interest(w)));
            let interest = reasons.first().map_or(0.0, |r| r.interest(w));
            let age_h = ((now_ms - card.ms).max(0) as f64) / 3_600_000.0;
            let recency = (-age_h / w.recency_hours).exp();
            let popular = popularity.get(&id).copied().unwrap_or(0.0) / hottest;
            let score = w.interest * interest
                + w.recency * recency
                + w.importance * card.breaking
                + w.popularity * popular;
            let mut texts: Vec<String> = reasons.iter().map(Why::text).collect();
            texts.dedup();
            Some((
                Ranked {
                    id,
                    score,
                    reasons: texts,
                },
                card,
            ))
        })
        .collect();
    scored.sort_by(|a, b| {
        b.0.score
            .total_cmp(&a.0.score)
            .then_with(|| b.1.ms.cmp(&a.1.ms))
    });

    // Diversity: one story per cluster, and a discount per repeat of a main topic.
    let mut clusters = HashSet::new();
    let mut per_topic: HashMap<&str, i32> = HashMap::new();
    let mut out: Vec<Ranked> = Vec::new();
    for (mut r, card) in scored {
        if !card.cluster.is_empty() && !clusters.insert(card.cluster.as_str()) {
            continue;
        }
        if let Some(t) = card.primary_topic() {
            let n = per_topic.entry(t).or_default();
            r.score *= w.topic_repeat.powi(*n);
            *n += 1;
        }
        out.push(r);
    }
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| b.id.cmp(&a.id)));
    out.truncate(SNAPSHOT_MAX);
    out
}

#[cfg(test)]
mod tests {
    use newsroom_proto::v1::TargetKind;

    use super::*;
    use crate::feed::candidates::Reader;
    use crate::store::IndexKey;

    const NOW: i64 = 1_700_000_000_000;
    const HOUR: i64 = 3_600_000;
    const SPORT: &str = "medtop:15000000";
    const POLITICS: &str = "medtop:11000000";

    fn card(age_h: i64, topic: &str, cluster: &str) -> Arc<Card> {
        Arc::new(Card {
            ms: NOW - age_h * HOUR,
            breaking: 0.0,
            cluster: cluster.to_owned(),
            topics: vec![(topic.to_owned(), 0.9)],
            source: String::new(),
        })
    }

    fn follow(topic: &str) -> Why {
        Why::Follow(IndexKey::new(TargetKind::Topic, topic))
    }

    fn ids(ranked: &[Ranked]) -> Vec<&str> {
        ranked.iter().map(|r| r.id.as_str()).collect()
    }

    #[test]
    fn a_followed_story_outranks_a_merely_trending_one_and_says_why() {
        let reader = Reader::default();
        let mut c = Candidates::new(&reader);
        c.add("followed".into(), follow(SPORT));
        c.add("followed".into(), Why::Trending);
        c.add("trending".into(), Why::Trending);
        c.popular("trending", 10.0, true);
        let cards = HashMap::from([
            ("followed".to_owned(), card(2, SPORT, "")),
            ("trending".to_owned(), card(2, POLITICS, "")),
        ]);
        let ranked = rank(c, &cards, NOW, &Weights::DEFAULT);
        assert_eq!(ids(&ranked), ["followed", "trending"]);
        assert_eq!(ranked[0].reasons, ["You follow Sport", "Trending now"]);
        assert_eq!(ranked[1].reasons, ["Trending now"]);
    }

    #[test]
    fn fresh_news_outranks_old_news_of_the_same_interest() {
        let reader = Reader::default();
        let mut c = Candidates::new(&reader);
        c.add("old".into(), follow(SPORT));
        c.add("new".into(), follow(POLITICS));
        let cards = HashMap::from([
            ("old".to_owned(), card(48, SPORT, "")),
            ("new".to_owned(), card(1, POLITICS, "")),
        ]);
        assert_eq!(
            ids(&rank(c, &cards, NOW, &Weights::DEFAULT)),
            ["new", "old"]
        );
    }

    #[test]
    fn one_story_per_cluster_and_topic_repeats_are_discounted() {
        let reader = Reader::default();
        let mut c = Candidates::new(&reader);
        for id in ["wire-a", "wire-b", "sport-2", "politics"] {
            c.add(id.into(), follow(SPORT));
        }
        let cards = HashMap::from([
            // The same event from two wires: the fresher one shows.
            ("wire-a".to_owned(), card(1, SPORT, "event")),
            ("wire-b".to_owned(), card(3, SPORT, "event")),
            ("sport-2".to_owned(), card(2, SPORT, "")),
            ("politics".to_owned(), card(4, POLITICS, "")),
        ]);
        let ranked = rank(c, &cards, NOW, &Weights::DEFAULT);
        // wire-b is left out; the second sport story, fresher than the politics one, is
        // discounted below it.
        assert_eq!(ids(&ranked), ["wire-a", "politics", "sport-2"]);
    }

    #[test]
    fn a_story_close_to_what_the_reader_read_outranks_one_merely_trending() {
        let reader = Reader::default();
        let mut c = Candidates::new(&reader);
        c.add("close".into(), Why::Close(0.8));
        c.add("trending".into(), Why::Trending);
        c.popular("trending", 10.0, true);
        let cards = HashMap::from([
            ("close".to_owned(), card(3, SPORT, "")),
            ("trending".to_owned(), card(3, POLITICS, "")),
        ]);
        let ranked = rank(c, &cards, NOW, &Weights::DEFAULT);
        assert_eq!(ids(&ranked), ["close", "trending"]);
        assert_eq!(ranked[0].reasons, ["Close to what you read"]);
    }

    #[test]
    fn candidates_without_a_card_are_not_shown() {
        let reader = Reader::default();
        let mut c = Candidates::new(&reader);
        c.add("killed".into(), follow(SPORT));
        assert!(rank(c, &HashMap::new(), NOW, &Weights::DEFAULT).is_empty());
    }
}
