//! Recommendation's metrics (on `/metrics` of the admin port):
//!
//! - `newsroom_recommendation_feed_duration_seconds` — one `GetFeed` call, from request to
//!   answer (errors included: a slow failure is as slow for the reader);
//! - `newsroom_recommendation_feed_pages_total{path}` — pages served by how: `prepared` (this
//!   replica's prepared first page, one round trip), `cached` (a first page ranked in the last
//!   2 s, from Redis), `ranked` (afresh), `cursor` (a further page);
//! - `newsroom_recommendation_story_cache_lookups_total{result}` — `GetStory` answered from the
//!   Redis story cache (`hit`) or from the compacted `stories.enriched` topic (`miss`, found or
//!   not). The cache hit ratio is `hit / (hit + miss)`.

use std::time::Duration;

use newsroom_platform::metrics::Registry;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PathLabel {
    path: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LookupLabel {
    result: &'static str,
}

/// Where `GetStory` found a story.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheLookup {
    Hit,
    Miss,
}

#[derive(Clone)]
pub struct Metrics {
    feed_seconds: Histogram,
    feed_pages: Family<PathLabel, Counter>,
    story_lookups: Family<LookupLabel, Counter>,
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Metrics {
            // 0.5 ms .. ~8 s: a page is a few Redis round trips, a cold rebuild is seconds.
            feed_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 15)),
            feed_pages: Family::default(),
            story_lookups: Family::default(),
        };
        registry.register(
            "newsroom_recommendation_feed_duration_seconds",
            "GetFeed calls, request to answer",
            m.feed_seconds.clone(),
        );
        registry.register(
            "newsroom_recommendation_feed_pages",
            "GetFeed pages by how they were served: prepared, cached, ranked, cursor",
            m.feed_pages.clone(),
        );
        registry.register(
            "newsroom_recommendation_story_cache_lookups",
            "GetStory lookups by result: hit (Redis story cache) or miss (read from stories.enriched)",
            m.story_lookups.clone(),
        );
        m
    }

    pub fn feed_answered(&self, took: Duration) {
        self.feed_seconds.observe(took.as_secs_f64());
    }

    /// A page served by `path` (see [`crate::feed::Path`]).
    pub fn feed_page(&self, path: &'static str) {
        self.feed_pages.get_or_create(&PathLabel { path }).inc();
    }

    pub fn story_lookup(&self, lookup: CacheLookup) {
        let result = match lookup {
            CacheLookup::Hit => "hit",
            CacheLookup::Miss => "miss",
        };
        self.story_lookups
            .get_or_create(&LookupLabel { result })
            .inc();
    }
}
