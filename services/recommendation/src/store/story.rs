//! The story cache, story cards and the indexes a story is written to.
//!
//! [`FeedStore::apply`] is the one writer: idempotent on (id, version), a kill removes the story
//! from the cache and every index in one MULTI. Which version is newest is decided by a
//! [`VersionGuard`](newsroom_platform::redis::VersionGuard) that a kill does not delete. Readers get cards and page stories through the
//! in-process caches (see [`super`]).

use std::sync::Arc;
use std::time::Instant;

use newsroom_platform::redis::redis::{self, AsyncCommands as _};
use newsroom_proto::Message as _;
use newsroom_proto::v1::{EnrichedStory, PubStatus, StoryVersion, TargetKind};

use super::{FeedStore, Index, IndexKey, RedisError, changes, now_ms};

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
        // Its developing story: the cluster's stories, for its card and its followers.
        if !e.cluster_id.trim().is_empty() {
            keys.push(IndexKey::new(TargetKind::Cluster, &e.cluster_id));
        }
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
    ts.and_then(|t| newsroom_platform::time::timestamp_ms(&t))
        .unwrap_or_else(now_ms)
}

/// Stories at or above this breaking score go to the breaking index.
pub const BREAKING_INDEX_MIN: f64 = 0.7;

/// What ranking needs of a story, small enough to fetch hundreds per request:
/// `ms|breaking|cluster|topic=score,topic=score|source` (cards written before the source
/// was kept have none).
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    pub ms: i64,
    pub breaking: f64,
    pub cluster: String,
    pub topics: Vec<(String, f64)>,
    /// Who filed it (a wire, the desk): a developing story counts its sources.
    pub source: String,
}

impl Card {
    pub fn of(story: &EnrichedStory) -> Self {
        let e = story.enrichment.clone().unwrap_or_default();
        Card {
            ms: published_ms(story),
            breaking: e.breaking_score,
            cluster: e.cluster_id,
            topics: e.topics.iter().map(|t| (t.code.clone(), t.score)).collect(),
            source: story
                .story
                .as_ref()
                .map(|s| s.source.clone())
                .unwrap_or_default(),
        }
    }

    pub fn encode(&self) -> String {
        let topics: Vec<String> = self
            .topics
            .iter()
            .map(|(c, s)| format!("{c}={s:.3}"))
            .collect();
        format!(
            "{}|{:.3}|{}|{}|{}",
            self.ms,
            self.breaking,
            self.cluster.replace('|', "/"),
            topics.join(","),
            self.source.replace('|', "/"),
        )
    }

    pub fn decode(s: &str) -> Option<Self> {
        let mut parts = s.splitn(5, '|');
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
        let source = parts.next().unwrap_or_default().to_owned();
        Some(Card {
            ms,
            breaking,
            cluster,
            topics,
            source,
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

/// Breaking stories kept in [`Index::Breaking`].
const BREAKING_INDEX_MAX: isize = 200;

impl FeedStore {
    /// The cache lifetime of a story published at `ms`: the configured TTL less its age, at
    /// least an hour — fresh news stays longest, archive copy passes through.
    pub fn ttl_for(&self, ms: i64) -> u64 {
        let age = ((now_ms() - ms).max(0) / 1000) as u64;
        self.story_ttl.as_secs().saturating_sub(age).max(3600)
    }

    /// The cards of stories, in order; `None` where not cached.
    pub async fn cards(&self, ids: &[String]) -> Result<Vec<Option<Arc<Card>>>, RedisError> {
        self.through_local(
            &self.local.cards,
            ids,
            |id| self.card_key(id),
            |b| Card::decode(std::str::from_utf8(&b).ok()?),
        )
        .await
    }

    /// The card of one story, if cached.
    pub async fn card(&self, id: &str) -> Result<Option<Arc<Card>>, RedisError> {
        Ok(self
            .cards(std::slice::from_ref(&id.to_owned()))
            .await?
            .pop()
            .flatten())
    }

    /// The highest version of a story applied here (a kill included), if remembered.
    pub async fn applied_version(&self, id: &str) -> Result<Option<u32>, RedisError> {
        self.versions.seen(id).await
    }

    /// The cached story, if any.
    pub async fn story(&self, id: &str) -> Result<Option<EnrichedStory>, RedisError> {
        let bytes: Option<Vec<u8>> = self.redis.conn().get(self.story_key(id)).await?;
        Ok(bytes.and_then(|b| EnrichedStory::decode(b.as_slice()).ok()))
    }

    /// Stories as a feed page shows them (no body, no embedding), in order; `None` where not
    /// cached (expired, killed).
    pub async fn page_stories(
        &self,
        ids: &[String],
    ) -> Result<Vec<Option<Arc<EnrichedStory>>>, RedisError> {
        self.through_local(
            &self.local.stories,
            ids,
            |id| self.story_key(id),
            |b| EnrichedStory::decode(b.as_slice()).ok().map(for_pages),
        )
        .await
    }

    /// A story's versions as they arrived, newest first (at most [`VERSIONS_SHOWN`]).
    pub async fn versions(&self, id: &str) -> Result<Vec<StoryVersion>, RedisError> {
        let raw: Vec<Vec<u8>> = self.redis.conn().hvals(self.story_versions_key(id)).await?;
        let mut versions: Vec<StoryVersion> = raw
            .iter()
            .filter_map(|b| StoryVersion::decode(b.as_slice()).ok())
            .collect();
        versions.sort_unstable_by_key(|v| std::cmp::Reverse(v.version));
        versions.truncate(VERSIONS_SHOWN);
        Ok(versions)
    }

    /// Writes (or kills) a story and its index entries; idempotent on (id, version).
    pub async fn apply(&self, story: &EnrichedStory) -> Result<Applied, RedisError> {
        let Some(s) = &story.story else {
            return Ok(Applied::Stale);
        };
        // The guard outlives the cached story (a kill deletes that): an older version arriving
        // after a kill is refused, not shown again.
        if !self.versions.admit(&s.id, s.version).await? {
            return Ok(Applied::Stale);
        }
        let previous = self.story(&s.id).await?;
        if let Some(prev) = &previous
            && prev.story.as_ref().map_or(0, |p| p.version) > s.version
        {
            return Ok(Applied::Stale);
        }
        let old_indexes = previous.as_ref().map(indexes_of).unwrap_or_default();
        // A canary is cached for GetStory but in no index: no reader's feed shows it.
        let new_indexes = if s.canary {
            Default::default()
        } else {
            indexes_of(story)
        };
        let target = |k: &IndexKey| self.index_key(&Index::Target(k.clone()));
        let (latest, breaking_index) = (
            self.index_key(&Index::Latest),
            self.index_key(&Index::Breaking),
        );
        let mut pipe = redis::pipe();
        pipe.atomic();
        // The version as it arrived, first write kept (a rebuild replays it in its own trace).
        let versions = self.story_versions_key(&s.id);
        pipe.hset_nx(&versions, s.version, version_of(story).encode_to_vec())
            .ignore()
            .expire(&versions, VERSIONS_TTL_SECS)
            .ignore();
        if s.pubstatus == PubStatus::Canceled as i32 || s.pubstatus == PubStatus::Withheld as i32 {
            // Gone from the cache and from every index, old and new, in one transaction.
            for k in old_indexes.iter().chain(&new_indexes) {
                pipe.zrem(target(k), &s.id);
            }
            pipe.zrem(&latest, &s.id);
            pipe.zrem(&breaking_index, &s.id);
            pipe.del(self.story_key(&s.id));
            pipe.del(self.card_key(&s.id));
            pipe.del(self.vector_key(&s.id));
            let fields: Vec<String> = old_indexes
                .iter()
                .chain(&new_indexes)
                .map(|k| k.member())
                .collect();
            self.bump_indexes(
                &mut pipe,
                fields.iter().map(String::as_str).chain([
                    changes::LATEST,
                    changes::BREAKING,
                    changes::KILLS,
                ]),
            );
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
        match story.enrichment.as_ref().map(|e| &e.embedding) {
            Some(v) if !v.is_empty() && !s.canary => {
                pipe.set_ex(self.vector_key(&s.id), super::related::quantise(v), ttl);
            }
            _ => {
                pipe.del(self.vector_key(&s.id));
            }
        }
        let breaking = story.enrichment.as_ref().map_or(0.0, |e| e.breaking_score);
        if breaking >= BREAKING_INDEX_MIN && !s.canary {
            pipe.zadd(&breaking_index, &s.id, ms);
            pipe.zremrangebyrank(&breaking_index, 0, -BREAKING_INDEX_MAX - 1);
        } else {
            pipe.zrem(&breaking_index, &s.id);
        }
        for k in old_indexes.iter().filter(|k| !new_indexes.contains(k)) {
            pipe.zrem(target(k), &s.id);
        }
        if s.canary {
            pipe.zrem(&latest, &s.id);
        }
        for k in new_indexes
            .iter()
            .map(target)
            .chain((!s.canary).then_some(latest))
        {
            pipe.zadd(&k, &s.id, ms);
            // Bounded by count, not by age: an archive story published years ago is still shown
            // to its followers while cached. Ids whose cache entry expired are skipped on read.
            pipe.zremrangebyrank(&k, 0, -(self.index_max as isize) - 1);
        }
        // Every index this write touched, so that a prepared feed reading one sees the change.
        let was_breaking = previous
            .as_ref()
            .and_then(|p| p.enrichment.as_ref())
            .is_some_and(|e| e.breaking_score >= BREAKING_INDEX_MIN);
        let fields: Vec<String> = old_indexes
            .iter()
            .filter(|k| !new_indexes.contains(k))
            .chain(&new_indexes)
            .map(|k| k.member())
            .collect();
        let breaking_touched = (breaking >= BREAKING_INDEX_MIN && !s.canary) || was_breaking;
        self.bump_indexes(
            &mut pipe,
            fields
                .iter()
                .map(String::as_str)
                .chain(Some(changes::LATEST))
                .chain(breaking_touched.then_some(changes::BREAKING)),
        );
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
}

/// How long a story's versions are remembered.
const VERSIONS_TTL_SECS: i64 = 14 * 24 * 3600;
/// The newest versions `GetStoryHistory` shows.
pub const VERSIONS_SHOWN: usize = 20;

/// What the history keeps of a version: no body, no enrichment but its stage runs, and the id
/// of the trace it is being handled in (the story's, from ingest on).
fn version_of(enriched: &EnrichedStory) -> StoryVersion {
    let s = enriched.story.clone().unwrap_or_default();
    let e = enriched.enrichment.clone().unwrap_or_default();
    let trace_id = newsroom_platform::telemetry::current_traceparent()
        .and_then(|tp| tp.split('-').nth(1).map(str::to_owned))
        .unwrap_or_default();
    StoryVersion {
        version: s.version,
        headline: s.headline,
        signal: s.signal,
        pubstatus: s.pubstatus,
        accepted_at: enriched.accepted_at,
        pipeline_id: e.pipeline_id,
        trace_id,
        stage_runs: e.stage_runs,
    }
}
