//! The story cache and its indexes in Redis.
//!
//! - `rec:story:<id>` — the latest `EnrichedStory` (protobuf), with a TTL;
//! - `rec:idx:<kind>:<value>` — sorted sets of story ids scored by publication time (ms), one per
//!   topic, section, author and entity, plus `rec:idx:latest` for everything; each keeps the
//!   newest `NEWSROOM_INDEX_MAX_STORIES`;
//! - `rec:follows:<user>` — the set of a user's follow targets (`topic:medtop:…`).
//!
//! Writing a story is idempotent on (id, version): an older or equal version never replaces a
//! newer one, so redelivered records change nothing. A killed story (pubstatus canceled) is
//! removed from the cache and every index at once (one MULTI).
//!
//! In front of Redis, each replica keeps what every reader's first page reads again — story
//! cards, the stories of feed pages, trending lists — for [`LOCAL_TTL`] in process
//! ([`quick_cache`], bounded). A story this replica indexes or kills replaces its entries at
//! once; another replica's copy is at most [`LOCAL_TTL`] old (a kill can show there that long).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use newsroom_platform::redis::RedisStore;
use newsroom_platform::redis::redis::{self, AsyncCommands as _};
use newsroom_proto::Message as _;
use newsroom_proto::v1::{EnrichedStory, FollowTarget, PubStatus, TargetKind};

/// The feed index a follow target reads (and a story is written to).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IndexKey {
    pub kind: TargetKind,
    pub value: String,
}

impl IndexKey {
    pub fn new(kind: TargetKind, value: &str) -> Self {
        IndexKey {
            kind,
            value: normalise(kind, value),
        }
    }

    /// `topic:medtop:13000000`
    pub fn member(&self) -> String {
        format!("{}:{}", kind_name(self.kind), self.value)
    }

    pub fn parse_member(member: &str) -> Option<Self> {
        let (kind, value) = member.split_once(':')?;
        let kind = match kind {
            "topic" => TargetKind::Topic,
            "entity" => TargetKind::Entity,
            "section" => TargetKind::Section,
            "author" => TargetKind::Author,
            _ => return None,
        };
        Some(IndexKey::new(kind, value))
    }

    pub fn target(&self) -> FollowTarget {
        FollowTarget {
            kind: self.kind as i32,
            value: self.value.clone(),
        }
    }
}

fn kind_name(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::Topic => "topic",
        TargetKind::Entity => "entity",
        TargetKind::Section => "section",
        TargetKind::Author => "author",
        TargetKind::Unspecified => "unspecified",
    }
}

/// Topics are codes (kept as sent); names are matched case-insensitively.
fn normalise(kind: TargetKind, value: &str) -> String {
    match kind {
        TargetKind::Topic => value.trim().to_owned(),
        _ => value.trim().to_lowercase(),
    }
}

/// Every index a story belongs to.
pub fn indexes_of(story: &EnrichedStory) -> Vec<IndexKey> {
    let mut keys = Vec::new();
    if let Some(e) = &story.enrichment {
        keys.extend(
            e.topics
                .iter()
                .map(|t| IndexKey::new(TargetKind::Topic, &t.code)),
        );
        keys.extend(
            e.entities
                .iter()
                .map(|t| IndexKey::new(TargetKind::Entity, &t.name)),
        );
    }
    if let Some(s) = &story.story {
        if !s.section.trim().is_empty() {
            keys.push(IndexKey::new(TargetKind::Section, &s.section));
        }
        keys.extend(
            s.authors
                .iter()
                .map(|a| IndexKey::new(TargetKind::Author, a)),
        );
    }
    keys.sort();
    keys.dedup();
    keys
}

/// When a story counts as published, in ms since the epoch (its own date, else acceptance).
pub fn published_ms(story: &EnrichedStory) -> i64 {
    let ts = story
        .story
        .as_ref()
        .and_then(|s| s.published_at.or(s.updated_at))
        .or(story.accepted_at);
    match ts {
        Some(t) => t.seconds * 1000 + i64::from(t.nanos) / 1_000_000,
        None => now_ms(),
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Stories at or above this breaking score go to the breaking index.
pub const BREAKING_INDEX_MIN: f64 = 0.7;

/// What ranking needs of a story, small enough to fetch hundreds per request:
/// `ms|breaking|cluster|topic:score,topic:score`.
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    pub ms: i64,
    pub breaking: f64,
    pub cluster: String,
    pub topics: Vec<(String, f64)>,
}

impl Card {
    pub fn of(story: &EnrichedStory) -> Self {
        let e = story.enrichment.clone().unwrap_or_default();
        Card {
            ms: published_ms(story),
            breaking: e.breaking_score,
            cluster: e.cluster_id,
            topics: e.topics.iter().map(|t| (t.code.clone(), t.score)).collect(),
        }
    }

    pub fn encode(&self) -> String {
        let topics: Vec<String> = self
            .topics
            .iter()
            .map(|(c, s)| format!("{c}={s:.3}"))
            .collect();
        format!(
            "{}|{:.3}|{}|{}",
            self.ms,
            self.breaking,
            self.cluster.replace('|', "/"),
            topics.join(",")
        )
    }

    pub fn decode(s: &str) -> Option<Self> {
        let mut parts = s.splitn(4, '|');
        let ms = parts.next()?.parse().ok()?;
        let breaking = parts.next()?.parse().ok()?;
        let cluster = parts.next()?.to_owned();
        let topics = parts
            .next()?
            .split(',')
            .filter(|t| !t.is_empty())
            .filter_map(|t| {
                let (c, s) = t.rsplit_once('=')?;
                Some((c.to_owned(), s.parse().ok()?))
            })
            .collect();
        Some(Card {
            ms,
            breaking,
            cluster,
            topics,
        })
    }

    /// The story's main topic, if it has one.
    pub fn primary_topic(&self) -> Option<&str> {
        self.topics.first().map(|(c, _)| c.as_str())
    }
}

/// What applying a story did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Stored,
    Killed,
    /// An equal or newer version is already there.
    Stale,
}

/// Follow targets from the members of a reader's follow set, sorted.
pub fn follows_of(members: &[String]) -> Vec<IndexKey> {
    let mut keys: Vec<IndexKey> = members
        .iter()
        .filter_map(|m| IndexKey::parse_member(m))
        .collect();
    keys.sort();
    keys
}

/// A story as feed pages show it: without its body and its embedding.
fn for_pages(mut e: EnrichedStory) -> EnrichedStory {
    if let Some(s) = e.story.as_mut() {
        s.body_html.clear();
    }
    if let Some(en) = e.enrichment.as_mut() {
        en.embedding.clear();
    }
    e
}

/// How long this replica reuses a card, a story or a trending list it read from Redis.
pub const LOCAL_TTL: Duration = Duration::from_secs(5);
/// Entries of each in-process cache at most.
const LOCAL_CARDS: usize = 200_000;
const LOCAL_STORIES: usize = 20_000;
const LOCAL_TRENDING: usize = 4_096;

type Fresh<T> = (Instant, T);
/// A trending list: (story id, score), hottest first.
pub type Trending = Arc<Vec<(String, f64)>>;

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

/// Recommendation's Redis state.
#[derive(Clone)]
pub struct FeedStore {
    redis: RedisStore,
    story_ttl: Duration,
    index_max: usize,
    local: Arc<Local>,
}

impl FeedStore {
    pub fn new(redis: RedisStore, story_ttl: Duration, index_max: usize) -> Self {
        FeedStore {
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

    /// A trending list this replica computed less than [`LOCAL_TTL`] ago.
    pub fn local_trending(&self, scope: &str, limit: usize) -> Option<Trending> {
        fresh(
            self.local.trending.get(&(scope.to_owned(), limit)),
            Instant::now(),
        )
    }

    /// Keeps a trending list for [`LOCAL_TTL`].
    pub fn keep_trending(&self, scope: &str, limit: usize, list: Trending) {
        self.local
            .trending
            .insert((scope.to_owned(), limit), (Instant::now(), list));
    }

    fn story_key(&self, id: &str) -> String {
        self.redis.key(format!("rec:story:{id}"))
    }

    pub fn index_key(&self, key: &IndexKey) -> String {
        self.redis.key(format!("rec:idx:{}", key.member()))
    }

    pub fn latest_key(&self) -> String {
        self.redis.key("rec:idx:latest")
    }

    /// Recent stories with a high breaking score, newest first.
    pub fn breaking_key(&self) -> String {
        self.redis.key("rec:idx:breaking")
    }

    fn card_key(&self, id: &str) -> String {
        self.redis.key(format!("rec:card:{id}"))
    }

    /// The cache lifetime of a story published at `ms`: the configured TTL less its age, at
    /// least an hour — fresh news stays longest, archive copy passes through.
    pub fn ttl_for(&self, ms: i64) -> u64 {
        let age = ((now_ms() - ms).max(0) / 1000) as u64;
        self.story_ttl.as_secs().saturating_sub(age).max(3600)
    }

    /// The cards of stories, in order; `None` where not cached.
    pub async fn cards(&self, ids: &[String]) -> Result<Vec<Option<Arc<Card>>>, redis::RedisError> {
        self.through_local(
            &self.local.cards,
            ids,
            |id| self.card_key(id),
            |b| Card::decode(std::str::from_utf8(&b).ok()?),
        )
        .await
    }

    /// Values of `ids` from `cache` where fresh, the others in one `MGET` of `key(id)`,
    /// decoded and kept; `None` where Redis has nothing (kept too: a miss is news as well).
    async fn through_local<T>(
        &self,
        cache: &LocalCache<T>,
        ids: &[String],
        key: impl Fn(&str) -> String,
        decode: impl Fn(Vec<u8>) -> Option<T>,
    ) -> Result<Vec<Option<Arc<T>>>, redis::RedisError> {
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

    /// The underlying store (for the other components of this service).
    pub fn redis(&self) -> &RedisStore {
        &self.redis
    }

    pub fn follows_key(&self, user: &str) -> String {
        self.redis.key(format!("rec:follows:{user}"))
    }

    /// The cached story, if any.
    pub async fn story(&self, id: &str) -> Result<Option<EnrichedStory>, redis::RedisError> {
        let bytes: Option<Vec<u8>> = self.redis.conn().get(self.story_key(id)).await?;
        Ok(bytes.and_then(|b| EnrichedStory::decode(b.as_slice()).ok()))
    }

    /// Stories as a feed page shows them (no body, no embedding), in order; `None` where not
    /// cached (expired, killed).
    pub async fn page_stories(
        &self,
        ids: &[String],
    ) -> Result<Vec<Option<Arc<EnrichedStory>>>, redis::RedisError> {
        self.through_local(
            &self.local.stories,
            ids,
            |id| self.story_key(id),
            |b| EnrichedStory::decode(b.as_slice()).ok().map(for_pages),
        )
        .await
    }

    /// Writes (or kills) a story and its index entries; idempotent on (id, version).
    pub async fn apply(&self, story: &EnrichedStory) -> Result<Applied, redis::RedisError> {
        let Some(s) = &story.story else {
            return Ok(Applied::Stale);
        };
        let previous = self.story(&s.id).await?;
        if let Some(prev) = &previous
            && prev.story.as_ref().map_or(0, |p| p.version) > s.version
        {
            return Ok(Applied::Stale);
        }
        let old_indexes = previous.as_ref().map(indexes_of).unwrap_or_default();
        let new_indexes = indexes_of(story);
        let mut pipe = redis::pipe();
        pipe.atomic();
        if s.pubstatus == PubStatus::Canceled as i32 || s.pubstatus == PubStatus::Withheld as i32 {
            // Gone from the cache and from every index, old and new, in one transaction.
            for k in old_indexes.iter().chain(&new_indexes) {
                pipe.zrem(self.index_key(k), &s.id);
            }
            pipe.zrem(self.latest_key(), &s.id);
            pipe.zrem(self.breaking_key(), &s.id);
            pipe.del(self.story_key(&s.id));
            pipe.del(self.card_key(&s.id));
            pipe.query_async::<()>(&mut self.redis.conn()).await?;
            let now = Instant::now();
            self.local.cards.insert(s.id.clone(), (now, None));
            self.local.stories.insert(s.id.clone(), (now, None));
            return Ok(Applied::Killed);
        }
        let ms = published_ms(story);
        let ttl = self.ttl_for(ms);
        pipe.set_ex(self.story_key(&s.id), story.encode_to_vec(), ttl);
        pipe.set_ex(self.card_key(&s.id), Card::of(story).encode(), ttl);
        let breaking = story.enrichment.as_ref().map_or(0.0, |e| e.breaking_score);
        if breaking >= BREAKING_INDEX_MIN {
            pipe.zadd(self.breaking_key(), &s.id, ms);
            pipe.zremrangebyrank(self.breaking_key(), 0, -201);
        } else {
            pipe.zrem(self.breaking_key(), &s.id);
        }
        for k in old_indexes.iter().filter(|k| !new_indexes.contains(k)) {
            pipe.zrem(self.index_key(k), &s.id);
        }
        for k in new_indexes
            .iter()
            .map(|k| self.index_key(k))
            .chain([self.latest_key()])
        {
            pipe.zadd(&k, &s.id, ms);
            // Bounded by count, not by age: an archive story published years ago is still shown
            // to its followers while cached. Ids whose cache entry expired are skipped on read.
            pipe.zremrangebyrank(&k, 0, -(self.index_max as isize) - 1);
        }
        pipe.query_async::<()>(&mut self.redis.conn()).await?;
        let now = Instant::now();
        self.local
            .cards
            .insert(s.id.clone(), (now, Some(Arc::new(Card::of(story)))));
        self.local.stories.insert(
            s.id.clone(),
            (now, Some(Arc::new(for_pages(story.clone())))),
        );
        Ok(Applied::Stored)
    }

    /// Story ids of one index with score ≤ `max_ms`, newest first, at most `count`.
    pub async fn index_page(
        &self,
        key: &str,
        max_ms: i64,
        count: usize,
    ) -> Result<Vec<(String, i64)>, redis::RedisError> {
        let page: Vec<(String, f64)> = self
            .redis
            .conn()
            .zrevrangebyscore_limit_withscores(key, max_ms, "-inf", 0, count as isize)
            .await?;
        Ok(page.into_iter().map(|(id, ms)| (id, ms as i64)).collect())
    }

    /// The user's follow targets.
    pub async fn follows(&self, user: &str) -> Result<Vec<IndexKey>, redis::RedisError> {
        let members: Vec<String> = self.redis.conn().smembers(self.follows_key(user)).await?;
        Ok(follows_of(&members))
    }

    /// Adds (or removes) a follow target; returns the user's follows afterwards.
    pub async fn set_follow(
        &self,
        user: &str,
        key: &IndexKey,
        follow: bool,
    ) -> Result<Vec<IndexKey>, redis::RedisError> {
        let k = self.follows_key(user);
        if follow {
            let _: () = self.redis.conn().sadd(&k, key.member()).await?;
        } else {
            let _: () = self.redis.conn().srem(&k, key.member()).await?;
        }
        self.follows(user).await
    }
}
