//! Building a reader's feed.
//!
//! A first page reads the reader ([`crate::store::FeedStore::reader`]), gathers their
//! [`candidates`], ranks them ([`score`], pure) and keeps the ranking as a [`snapshot`] in Redis
//! for [`SNAPSHOT_TTL_SECS`]; cursors (`<snapshot>.<offset>`) page through that snapshot, so
//! pages stay stable while new stories arrive. The first page itself is served from the latest
//! snapshot for [`FIRST_PAGE_TTL_SECS`]; a follow change or a hide drops it. Components:
//!
//! - [`candidates`] — the reader, where candidates come from and why;
//! - [`score`] — scoring, diversity and [`Weights`], without I/O;
//! - [`snapshot`] — snapshot entries and cursors;
//! - [`developing`] — one card per developing story: its newest story, stories and sources;
//! - [`page`] — one page, the async caller of the three.

pub mod candidates;
pub mod developing;
pub mod score;
pub mod snapshot;

use std::collections::HashMap;

use newsroom_proto::v1::FeedItem;

pub use candidates::Reader;
pub use score::{SNAPSHOT_MAX, Weights};
pub use snapshot::{Cursor, Ranked};

use crate::store::{FeedStore, RedisError, now_ms};

/// How long a ranking snapshot serves its cursors.
pub const SNAPSHOT_TTL_SECS: u64 = 15 * 60;
/// How long a reader's first page is reused.
pub const FIRST_PAGE_TTL_SECS: u64 = 2;

/// Ranks a reader's candidates into a snapshot: the Redis reads here, the ranking in
/// [`score::rank`].
async fn rank(store: &FeedStore, reader: &Reader) -> Result<Vec<Ranked>, RedisError> {
    let candidates = candidates::gather(store, reader).await?;
    let ids = candidates.ids();
    let cards = store.cards(&ids).await?;
    let cards: HashMap<_, _> = ids
        .into_iter()
        .zip(cards)
        .filter_map(|(id, card)| Some((id, card?)))
        .collect();
    Ok(score::rank(candidates, &cards, now_ms(), &Weights::DEFAULT))
}

/// One page of a user's feed and the cursor of the next page ("" when there is none).
pub async fn page(
    store: &FeedStore,
    user: &str,
    limit: usize,
    cursor: Option<&Cursor>,
) -> Result<(Vec<FeedItem>, String), PageError> {
    let (snapshot, offset, ranked) = match cursor {
        Some(c) => {
            let body = store.snapshot(&c.snapshot).await?;
            let body = body.ok_or(PageError::Expired)?;
            (c.snapshot.clone(), c.offset, body)
        }
        None => {
            let mut state = store.reader(user).await?;
            let cached = state.first_page.take();
            let cached_body = match &cached {
                Some(snap) => store.snapshot(snap).await?,
                None => None,
            };
            match (cached, cached_body) {
                (Some(snap), Some(body)) => (snap, 0, body),
                _ => {
                    let reader = Reader::of(state, now_ms());
                    let ranked = rank(store, &reader).await?;
                    let snap = snapshot::new_id();
                    let body: Vec<String> = ranked.iter().map(Ranked::encode).collect();
                    let body = body.join("\n");
                    store
                        .save_first_page(user, &snap, &body, SNAPSHOT_TTL_SECS, FIRST_PAGE_TTL_SECS)
                        .await?;
                    (snap, 0, body)
                }
            }
        }
    };
    let entries: Vec<Ranked> = ranked
        .lines()
        .skip(offset)
        .take(limit)
        .filter_map(Ranked::decode)
        .collect();
    let ids: Vec<String> = entries.iter().map(|r| r.id.clone()).collect();
    // Each card shows its developing story's newest story.
    let developing = developing::of_page(store, &ids).await?;
    let shown: Vec<String> = ids
        .iter()
        .zip(&developing)
        .map(|(id, d)| d.as_ref().map_or_else(|| id.clone(), |d| d.newest.clone()))
        .collect();
    let stories = store.page_stories(&shown).await?;
    let items: Vec<FeedItem> = entries
        .into_iter()
        .zip(stories)
        .zip(developing)
        // A story killed since the snapshot was taken is not shown.
        .filter_map(|((r, s), d)| {
            let enriched = s?;
            Some(FeedItem {
                developing: d.map(|d| d.info),
                story: enriched.story.clone(),
                score: r.score,
                reasons: r.reasons,
                topics: enriched
                    .enrichment
                    .as_ref()
                    .map(|e| e.topics.clone())
                    .unwrap_or_default(),
            })
        })
        .collect();
    let consumed = offset + ids.len();
    let total = ranked.lines().count();
    let next = if consumed < total {
        Cursor {
            snapshot,
            offset: consumed,
        }
        .encode()
    } else {
        String::new()
    };
    Ok((items, next))
}

/// Why a page could not be served.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
    #[error("cursor: expired; start again without a cursor")]
    Expired,
}
