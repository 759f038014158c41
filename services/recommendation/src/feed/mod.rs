//! Building a reader's feed.
//!
//! A first page reads the reader ([`crate::store::FeedStore::reader`]), gathers their
//! [`candidates`], ranks them ([`score`], pure) and keeps the ranking as a [`snapshot`] in Redis
//! for [`SNAPSHOT_TTL_SECS`]; cursors (`<snapshot>.<offset>`) page through that snapshot, so
//! pages stay stable while new stories arrive. The first page itself is served from this
//! replica's [`prepared`] entry while nothing it was built from changed, or from the latest
//! snapshot in Redis for [`FIRST_PAGE_TTL_SECS`]; a follow change or a hide drops both.
//! Components:
//!
//! - [`candidates`] — the reader, where candidates come from and why;
//! - [`score`] — scoring, diversity and [`Weights`], without I/O;
//! - [`snapshot`] — snapshot entries and cursors;
//! - [`developing`] — one card per developing story: its newest story, stories and sources;
//! - [`prepared`] — the first pages of readers active recently, kept in process and served
//!   after one round trip proving them current;
//! - [`page`] — one page, the async caller of the others.

pub mod candidates;
pub mod developing;
pub mod prepared;
pub mod score;
pub mod snapshot;

use std::collections::HashMap;
use std::sync::Arc;

use newsroom_proto::v1::FeedItem;

pub use candidates::Reader;
pub use prepared::{Entry, Lookup, Page, Prepared};
pub use score::{SNAPSHOT_MAX, Weights};
pub use snapshot::{Cursor, Ranked};

use crate::store::{FeedStore, RedisError, Watch, now_ms};

/// How long a ranking snapshot serves its cursors.
pub const SNAPSHOT_TTL_SECS: u64 = 15 * 60;
/// How long a reader's first page is reused.
pub const FIRST_PAGE_TTL_SECS: u64 = 2;

/// Ranks a reader's candidates into a snapshot: the Redis reads here, the ranking in
/// [`score::rank`]; with the versions of the indexes read (see [`prepared`]).
async fn rank(store: &FeedStore, reader: &Reader) -> Result<(Vec<Ranked>, Watch), RedisError> {
    let (candidates, watch) = candidates::gather(store, reader).await?;
    let ids = candidates.ids();
    let cards = store.cards(&ids).await?;
    let cards: HashMap<_, _> = ids
        .into_iter()
        .zip(cards)
        .filter_map(|(id, card)| Some((id, card?)))
        .collect();
    let ranked = score::rank(candidates, &cards, now_ms(), &Weights::DEFAULT);
    Ok((ranked, watch))
}

/// How a page was served (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// From this replica's prepared entry, after one round trip.
    Prepared,
    /// A first page ranked in the last [`FIRST_PAGE_TTL_SECS`], from its snapshot in Redis.
    Cached,
    /// Ranked afresh (a new entry prepared).
    Ranked,
    /// A further page, from its cursor's snapshot.
    Cursor,
}

impl Path {
    pub fn as_str(self) -> &'static str {
        match self {
            Path::Prepared => "prepared",
            Path::Cached => "cached",
            Path::Ranked => "ranked",
            Path::Cursor => "cursor",
        }
    }
}

/// A page as served: its items, the cursor of the next page ("" when there is none), how.
#[derive(Debug)]
pub struct FeedPage {
    pub items: Vec<FeedItem>,
    pub next_cursor: String,
    pub path: Path,
}

impl FeedPage {
    fn of(page: &Page, path: Path) -> Self {
        FeedPage {
            items: page.items(),
            next_cursor: page.next.clone(),
            path,
        }
    }
}

/// One page of a user's feed.
///
/// A first page comes from the reader's [`prepared`] entry while it is current, else from the
/// first page another request cached in Redis in the last [`FIRST_PAGE_TTL_SECS`], else from
/// a ranking afresh (which prepares an entry); a cursor pages through its snapshot.
pub async fn page(
    store: &FeedStore,
    prepared: &Prepared,
    user: &str,
    limit: usize,
    cursor: Option<&Cursor>,
) -> Result<FeedPage, PageError> {
    let Some(c) = cursor else {
        return first_page(store, prepared, user, limit).await;
    };
    let body = store.snapshot(&c.snapshot).await?;
    let body = body.ok_or(PageError::Expired)?;
    let page = from_snapshot(store, &c.snapshot, &body, c.offset, limit).await?;
    Ok(FeedPage::of(&page, Path::Cursor))
}

async fn first_page(
    store: &FeedStore,
    prepared: &Prepared,
    user: &str,
    limit: usize,
) -> Result<FeedPage, PageError> {
    let stale = match prepared.lookup(store, user, limit).await? {
        Lookup::Current(_, Some(page)) => return Ok(FeedPage::of(&page, Path::Prepared)),
        Lookup::Current(entry, None) => {
            let head = entry.head.iter().take(limit).cloned().collect();
            let page = render(store, &entry.snapshot, 0, head, entry.total).await?;
            let page = entry.keep_page(limit, page);
            return Ok(FeedPage::of(&page, Path::Prepared));
        }
        Lookup::Stale => true,
        Lookup::Absent => false,
    };
    let mut state = store.reader(user).await?;
    let cached = state.first_page.take();
    // A page this replica found stale is not served again from Redis's copy of it.
    if let (Some(snap), false) = (cached, stale)
        && let Some(body) = store.snapshot(&snap).await?
    {
        let page = from_snapshot(store, &snap, &body, 0, limit).await?;
        return Ok(FeedPage::of(&page, Path::Cached));
    }
    let generation = state.generation.clone();
    let reader = Reader::of(state, now_ms());
    let (ranked, watch) = rank(store, &reader).await?;
    let snap = snapshot::new_id();
    let body: Vec<String> = ranked.iter().map(Ranked::encode).collect();
    store
        .save_first_page(
            user,
            &snap,
            &body.join("\n"),
            SNAPSHOT_TTL_SECS,
            FIRST_PAGE_TTL_SECS,
        )
        .await?;
    let total = ranked.len();
    let head: Vec<Ranked> = ranked.iter().take(limit).cloned().collect();
    let page = render(store, &snap, 0, head, total).await?;
    let entry = Entry::new(generation, watch, snap, ranked, total);
    let page = entry.keep_page(limit, page);
    prepared.keep(user, Arc::new(entry));
    Ok(FeedPage::of(&page, Path::Ranked))
}

/// A page of a snapshot body (`limit` entries from `offset`).
async fn from_snapshot(
    store: &FeedStore,
    snapshot: &str,
    body: &str,
    offset: usize,
    limit: usize,
) -> Result<Page, RedisError> {
    let entries: Vec<Ranked> = body
        .lines()
        .skip(offset)
        .take(limit)
        .filter_map(Ranked::decode)
        .collect();
    render(store, snapshot, offset, entries, body.lines().count()).await
}

/// Renders ranked `entries` at `offset` of a snapshot of `total`: each card shows its
/// developing story's newest story; a story killed since the ranking is left out.
async fn render(
    store: &FeedStore,
    snapshot: &str,
    offset: usize,
    entries: Vec<Ranked>,
    total: usize,
) -> Result<Page, RedisError> {
    let ids: Vec<String> = entries.iter().map(|r| r.id.clone()).collect();
    let (developing, watch) = developing::of_page(store, &ids).await?;
    let shown: Vec<String> = ids
        .iter()
        .zip(&developing)
        .map(|(id, d)| d.as_ref().map_or_else(|| id.clone(), |d| d.newest.clone()))
        .collect();
    let stories = store.page_stories(&shown).await?;
    let cards = entries
        .into_iter()
        .zip(stories)
        .zip(developing)
        .filter_map(|((r, s), d)| {
            Some(prepared::Card {
                story: s?,
                score: r.score,
                reasons: r.reasons,
                developing: d.map(|d| d.info),
            })
        })
        .collect();
    let consumed = offset + ids.len();
    let next = if consumed < total {
        Cursor {
            snapshot: snapshot.to_owned(),
            offset: consumed,
        }
        .encode()
    } else {
        String::new()
    };
    Ok(Page { cards, next, watch })
}

/// Why a page could not be served.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
    #[error("cursor: expired; start again without a cursor")]
    Expired,
}
