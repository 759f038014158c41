//! Recommendation's Redis state: the only module that sends Redis commands.
//!
//! Every other component asks [`FeedStore`] for what it needs in newsroom terms (a reader, the
//! newest stories of an index, a snapshot), so the key layout below lives in one place and a
//! change of layout touches one folder:
//!
//! - `rec:{rec}:story:<id>` — the latest `EnrichedStory` (protobuf), with a TTL ([`story`]);
//! - `rec:{rec}:card:<id>` — what ranking needs of a story ([`Card`]), same TTL;
//! - `rec:{rec}:vec:<id>` — its embedding, quantised, same TTL ([`related`]);
//! - `rec:{rec}:versions:<id>` — each version as it arrived (a `StoryVersion` per version
//!   number, the first write kept, with its trace id), 14 days, kills included ([`story`]);
//! - `rec:{rec}:idx:<kind>:<value>` — sorted sets of story ids scored by publication time (ms),
//!   one per topic, section, author and entity, plus `rec:{rec}:idx:latest` for everything and
//!   `rec:{rec}:idx:breaking`; each keeps the newest `NEWSROOM_INDEX_MAX_STORIES`;
//! - `rec:follows:{<user>}`, `rec:read:{<user>}`, `rec:hidden:{<user>}`,
//!   `rec:interest:{<user>}`, `rec:taste:{<user>}` — what the service knows of a reader
//!   ([`reader`]; the taste is [`crate::taste`]);
//! - `rec:trend:<scope>:<hour>` — trending buckets ([`trend`]);
//! - `rec:snap:<id>`, `rec:first:{<user>}`, `rec:snaps:{<user>}` — ranking snapshots and the
//!   reader's cached first page, and `rec:{rec}:loaded`, the marker that Redis holds the state
//!   ([`snapshot`]);
//! - `rec:{rec}:idxver`, `rec:gen:{<user>}` — a version per index and a generation per reader,
//!   what tells a prepared feed it is still current ([`changes`]).
//!
//! On a Redis Cluster the braces are hash tags. What one `MULTI` changes together — a story,
//! its card, every index it enters or leaves and their versions — and the marker that says it
//! was not lost share the `{rec}` slot, so they live on one master; a reader's keys share
//! their own slot (read in one ordered pipeline, followed in one `MULTI`), and readers spread
//! over the masters, as do trending buckets and snapshots.
//!
//! Writing a story is idempotent on (id, version): an older or equal version never replaces a
//! newer one, so redelivered records change nothing. A killed story (pubstatus canceled) is
//! removed from the cache and every index at once (one MULTI).
//!
//! In front of Redis, each replica keeps what every reader's first page reads again — story
//! cards, the stories of feed pages, trending lists — for [`LOCAL_TTL`] in process
//! ([`quick_cache`], bounded). A story this replica indexes or kills replaces its entries at
//! once; another replica's copy is at most [`LOCAL_TTL`] old (a kill can show there that long).
//!
//! Components:
//! - [`changes`] — index versions, reader generations, [`Watch`];
//! - [`target`] — [`IndexKey`], the feed index a follow target reads;
//! - [`story`] — the story cache, cards and indexes;
//! - [`reader`] — follows, read history, hidden stories, implicit interests;
//! - [`trend`] — trending buckets and the in-process trending lists;
//! - [`snapshot`] — ranking snapshots, first pages and the loaded marker.

pub mod changes;
pub mod reader;
pub mod related;
pub mod snapshot;
pub mod story;
pub mod target;
pub mod trend;

use std::sync::Arc;
use std::time::{Duration, Instant};

use newsroom_platform::redis::redis::AsyncCommands as _;
use newsroom_platform::redis::{RedisStore, VersionGuard, tag};
use newsroom_proto::v1::EnrichedStory;

pub use changes::{Current, Watch};
pub use reader::{History, InterestWeight, ReaderState};
pub use related::Related;
pub use story::{Applied, BREAKING_INDEX_MIN, Card, indexes_of, published_ms};
pub use target::{IndexKey, follows_of};
pub use trend::Trending;

/// The Redis error every store method returns.
pub use newsroom_platform::redis::redis::RedisError;

pub use newsroom_platform::time::now_ms;

/// How long this replica reuses a card, a story or a trending list it read from Redis.
pub const LOCAL_TTL: Duration = Duration::from_secs(5);
/// Entries of each in-process cache at most.
const LOCAL_CARDS: usize = 200_000;
const LOCAL_STORIES: usize = 20_000;
const LOCAL_TRENDING: usize = 4_096;

type Fresh<T> = (Instant, T);

/// An in-process cache by story id; `None` remembers that Redis had nothing.
type LocalCache<T> = quick_cache::sync::Cache<String, Fresh<Option<Arc<T>>>>;

/// The in-process caches (see the module documentation).
struct Local {
    cards: LocalCache<Card>,
    stories: LocalCache<EnrichedStory>,
    trending: quick_cache::sync::Cache<(String, usize), Fresh<Trending>>,
}

fn fresh<T: Clone>(entry: Option<Fresh<T>>, now: Instant) -> Option<T> {
    entry
        .filter(|(at, _)| now.duration_since(*at) < LOCAL_TTL)
        .map(|(_, v)| v)
}

/// One of the sorted sets of story ids by publication time.
#[derive(Debug, Clone, PartialEq)]
pub enum Index {
    /// The stories of a topic, entity, section or author.
    Target(IndexKey),
    /// Every story.
    Latest,
    /// Recent stories with a breaking score of at least [`BREAKING_INDEX_MIN`].
    Breaking,
}

/// How long the highest applied version of a story is remembered: longer than any record of
/// it can come late (a redelivery, a replay of the compacted topic rewrites it anyway).
const VERSION_GUARD_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// Recommendation's Redis state.
#[derive(Clone)]
pub struct FeedStore {
    redis: RedisStore,
    /// The highest version applied per story (`rec:version:<id>`), kills included.
    versions: VersionGuard,
    story_ttl: Duration,
    index_max: usize,
    local: Arc<Local>,
}

/// The key (unprefixed) whose presence says Redis holds recommendation's state.
pub const LOADED_MARKER: &str = "rec:{rec}:loaded";

impl FeedStore {
    /// The Redis connection (for the platform's [`newsroom_platform::redis::Rebuild`]).
    pub fn redis(&self) -> &RedisStore {
        &self.redis
    }

    pub fn new(redis: RedisStore, story_ttl: Duration, index_max: usize) -> Self {
        FeedStore {
            versions: VersionGuard::new(redis.clone(), "rec:version", VERSION_GUARD_TTL),
            redis,
            story_ttl,
            index_max,
            local: Arc::new(Local {
                cards: quick_cache::sync::Cache::new(LOCAL_CARDS),
                stories: quick_cache::sync::Cache::new(LOCAL_STORIES),
                trending: quick_cache::sync::Cache::new(LOCAL_TRENDING),
            }),
        }
    }

    // The key layout (see the module documentation), in one place.

    fn story_key(&self, id: &str) -> String {
        self.redis.key(format!("rec:{{rec}}:story:{id}"))
    }

    fn story_versions_key(&self, id: &str) -> String {
        self.redis.key(format!("rec:{{rec}}:versions:{id}"))
    }

    fn card_key(&self, id: &str) -> String {
        self.redis.key(format!("rec:{{rec}}:card:{id}"))
    }

    fn index_key(&self, index: &Index) -> String {
        match index {
            Index::Target(key) => self.redis.key(format!("rec:{{rec}}:idx:{}", key.member())),
            Index::Latest => self.redis.key("rec:{rec}:idx:latest"),
            Index::Breaking => self.redis.key("rec:{rec}:idx:breaking"),
        }
    }

    fn follows_key(&self, user: &str) -> String {
        self.redis.key(format!("rec:follows:{}", tag(user)))
    }

    fn history_key(&self, history: History, user: &str) -> String {
        match history {
            History::Read => self.redis.key(format!("rec:read:{}", tag(user))),
            History::Hidden => self.redis.key(format!("rec:hidden:{}", tag(user))),
        }
    }

    fn interests_key(&self, user: &str) -> String {
        self.redis.key(format!("rec:interest:{}", tag(user)))
    }

    fn taste_key(&self, user: &str) -> String {
        self.redis.key(format!("rec:taste:{}", tag(user)))
    }

    fn trend_key(&self, scope: &str, hour: i64) -> String {
        self.redis.key(format!("rec:trend:{scope}:{hour}"))
    }

    fn snapshot_key(&self, snapshot: &str) -> String {
        self.redis.key(format!("rec:snap:{snapshot}"))
    }

    fn snapshots_key(&self, user: &str) -> String {
        self.redis.key(format!("rec:snaps:{}", tag(user)))
    }

    fn first_page_key(&self, user: &str) -> String {
        self.redis.key(format!("rec:first:{}", tag(user)))
    }

    /// Values of `ids` from `cache` where fresh, the others in one `MGET` of `key(id)`,
    /// decoded and kept; `None` where Redis has nothing (kept too: a miss is news as well).
    async fn through_local<T>(
        &self,
        cache: &LocalCache<T>,
        ids: &[String],
        key: impl Fn(&str) -> String,
        decode: impl Fn(Vec<u8>) -> Option<T>,
    ) -> Result<Vec<Option<Arc<T>>>, RedisError> {
        let now = Instant::now();
        let mut out = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            match fresh(cache.get(id), now) {
                Some(v) => out.push(v),
                None => {
                    out.push(None);
                    missing.push(i);
                }
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let keys: Vec<String> = missing.iter().map(|&i| key(&ids[i])).collect();
        let values: Vec<Option<Vec<u8>>> = self.redis.conn().mget(keys).await?;
        for (&i, v) in missing.iter().zip(values) {
            let v = v.and_then(&decode).map(Arc::new);
            // Not over what `apply` wrote after this read began (a kill, a new version).
            if cache.get(&ids[i]).is_none_or(|(at, _)| at <= now) {
                cache.insert(ids[i].clone(), (now, v.clone()));
            }
            out[i] = v;
        }
        Ok(out)
    }
}
