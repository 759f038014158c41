//! Prepared feeds: the first page of a reader active recently, kept in this replica's memory
//! and served after one small round trip that proves it still current.
//!
//! Ranking a first page reads the reader, some 500 candidates and their cards, ranks them and
//! writes a snapshot: milliseconds of work. A reader who opens the app again a few seconds
//! later mostly gets the same page. So each ranking leaves an [`Entry`] here — the top of the
//! ranking, its snapshot (for the cursors), the rendered pages by `limit` — together with what
//! it was built from: the reader's generation and the versions of every index it read (its
//! sources, the clusters of its cards; see [`crate::store::changes`]), read *before* the data.
//! A request then costs one round trip (`GET` of the generation, one `HMGET` of the versions)
//! and a copy of the page:
//!
//! - a story written to (or removed from) any index the page was built from bumps that
//!   index's version: the next request ranks afresh, so a new story reaches a follower's first
//!   page at their next request, on every replica;
//! - a follow, unfollow, read, hide or change of implicit interest replaces the reader's
//!   generation, wherever it was recorded;
//! - a kill anywhere bumps a shared version: no page shows a killed story;
//! - what the versions do not cover (trending moves, recency ageing) is refreshed by ranking
//!   afresh once the entry is [`REFRESH`] old;
//! - readers not seen for a while fall out of the bounded cache (`capacity`, LRU-like) and
//!   take the full path at their next request.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use newsroom_proto::v1::{DevelopingStory, EnrichedStory, FeedItem};

use super::Ranked;
use crate::store::{FeedStore, RedisError, Watch};

/// How long an entry serves before its reader's next request ranks afresh (trending and
/// recency move slowly; new stories and reader changes end an entry at once).
pub const REFRESH: Duration = Duration::from_secs(30);
/// Ranked entries kept per reader: enough for a first page of the largest `limit`.
pub const HEAD: usize = crate::api::MAX_LIMIT as usize;
/// Readers prepared per replica by default (`NEWSROOM_FEED_PREPARED_READERS`).
pub const DEFAULT_READERS: usize = 10_000;

/// One card of a rendered page: the story shown (shared with the story cache) and why.
#[derive(Debug, Clone)]
pub struct Card {
    pub story: Arc<EnrichedStory>,
    pub score: f64,
    pub reasons: Vec<String>,
    pub developing: Option<DevelopingStory>,
}

impl Card {
    pub fn item(&self) -> FeedItem {
        feed_item(
            &self.story,
            self.score,
            self.reasons.clone(),
            self.developing.clone(),
        )
    }
}

/// A story as a feed card shows it (feed, trending, related): without body or embedding as
/// the story cache's page copy keeps it, with its topics, summary and [`CARD_ENTITIES`].
pub fn feed_item(
    story: &EnrichedStory,
    score: f64,
    reasons: Vec<String>,
    developing: Option<DevelopingStory>,
) -> FeedItem {
    let enrichment = story.enrichment.as_ref();
    FeedItem {
        developing,
        story: story.story.clone(),
        score,
        reasons,
        topics: enrichment.map(|e| e.topics.clone()).unwrap_or_default(),
        entities: enrichment.map(card_entities).unwrap_or_default(),
        summary: enrichment.map(|e| e.summary.clone()).unwrap_or_default(),
    }
}

/// Entities a card offers to follow: people, organisations and places, most salient first.
pub const CARD_ENTITIES: usize = 6;

fn card_entities(e: &newsroom_proto::v1::Enrichment) -> Vec<newsroom_proto::v1::Entity> {
    use newsroom_proto::v1::EntityKind;
    let mut out: Vec<_> = e
        .entities
        .iter()
        .filter(|x| {
            matches!(
                EntityKind::try_from(x.kind),
                Ok(EntityKind::Person | EntityKind::Organisation | EntityKind::Place)
            )
        })
        .cloned()
        .collect();
    out.sort_by(|a, b| b.salience.total_cmp(&a.salience));
    out.truncate(CARD_ENTITIES);
    for x in &mut out {
        x.aliases.clear();
    }
    out
}

/// One rendered page and what it watches: the clusters of its cards (as rendered), and once
/// kept in an [`Entry`], the entry's indexes before them (so a request reads one list).
#[derive(Debug)]
pub struct Page {
    pub cards: Vec<Card>,
    pub next: String,
    pub watch: Watch,
}

impl Page {
    pub fn items(&self) -> Vec<FeedItem> {
        self.cards.iter().map(Card::item).collect()
    }
}

/// A reader's prepared first page: the top of a ranking and what it was built from.
#[derive(Debug)]
pub struct Entry {
    built: Instant,
    generation: Option<String>,
    watch: Watch,
    pub snapshot: String,
    pub head: Vec<Ranked>,
    pub total: usize,
    pages: Mutex<Vec<(usize, Arc<Page>)>>,
}

impl Entry {
    /// An entry for a ranking of `total` stories saved as `snapshot`, built from the reader's
    /// `generation` and the indexes in `watch`.
    pub fn new(
        generation: Option<String>,
        watch: Watch,
        snapshot: String,
        mut head: Vec<Ranked>,
        total: usize,
    ) -> Self {
        head.truncate(HEAD);
        Entry {
            built: Instant::now(),
            generation,
            watch,
            snapshot,
            head,
            total,
            pages: Mutex::new(Vec::new()),
        }
    }

    fn page(&self, limit: usize) -> Option<Arc<Page>> {
        let pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        pages
            .iter()
            .find(|(l, _)| *l == limit)
            .map(|(_, p)| p.clone())
    }

    /// Keeps a page rendered from this entry (its watch becomes the entry's and the page's);
    /// returns it as kept.
    pub fn keep_page(&self, limit: usize, page: Page) -> Arc<Page> {
        let page = Arc::new(Page {
            watch: self.watch.joined(&page.watch),
            ..page
        });
        let mut pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        pages.retain(|(l, _)| *l != limit);
        pages.push((limit, page.clone()));
        page
    }
}

/// What [`Prepared::lookup`] found for a reader.
pub enum Lookup {
    /// A current entry, with its page of that limit if rendered already.
    Current(Arc<Entry>, Option<Arc<Page>>),
    /// An entry that no longer holds: rank afresh (do not reuse a cached first page).
    Stale,
    /// None here.
    Absent,
}

/// This replica's prepared feeds (see the module documentation).
pub struct Prepared {
    readers: quick_cache::sync::Cache<String, Arc<Entry>>,
    enabled: bool,
}

impl Prepared {
    /// At most `capacity` readers (0: none, every request takes the full path).
    pub fn new(capacity: usize) -> Self {
        Prepared {
            readers: quick_cache::sync::Cache::new(capacity.max(1)),
            enabled: capacity > 0,
        }
    }

    /// The reader's entry if it is still current: one round trip.
    pub async fn lookup(
        &self,
        store: &FeedStore,
        user: &str,
        limit: usize,
    ) -> Result<Lookup, RedisError> {
        let Some(entry) = self.readers.get(user) else {
            return Ok(Lookup::Absent);
        };
        if entry.built.elapsed() >= REFRESH {
            self.readers.remove(user);
            return Ok(Lookup::Stale);
        }
        let page = entry.page(limit);
        let watch = page.as_ref().map_or(&entry.watch, |p| &p.watch);
        let now = store.current(user, &watch.fields).await?;
        if now.generation != entry.generation || now.seen != watch.seen {
            self.readers.remove(user);
            return Ok(Lookup::Stale);
        }
        Ok(Lookup::Current(entry, page))
    }

    /// Keeps `entry` as the reader's prepared feed.
    pub fn keep(&self, user: &str, entry: Arc<Entry>) {
        if self.enabled {
            self.readers.insert(user.to_owned(), entry);
        }
    }
}
