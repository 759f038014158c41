//! Building a reader's feed from the indexes of what they follow.
//!
//! Candidates come from each followed index (newest first); a story reached through several
//! follows appears once, with every reason. Pagination uses a cursor holding the position of the
//! last item returned — (publication ms, story id) — so a page is stable while new stories
//! arrive: new stories sort before the cursor and never shift later pages. A user who follows
//! nothing gets the latest stories (cold start).

use std::collections::HashMap;

use newsroom_proto::media_topics;
use newsroom_proto::v1::{FeedItem, TargetKind};

use crate::store::{FeedStore, IndexKey, now_ms};

/// A position in a feed: publication time (ms) and story id of the last item shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub ms: i64,
    pub id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.ms, self.id)
    }

    pub fn decode(s: &str) -> Option<Self> {
        let (ms, id) = s.split_once('.')?;
        let ms = ms.parse().ok()?;
        (!id.is_empty()).then(|| Cursor {
            ms,
            id: id.to_owned(),
        })
    }

    /// True when (ms, id) comes after this cursor in feed order (older, or same ms and lower id).
    fn is_before(&self, ms: i64, id: &str) -> bool {
        ms < self.ms || (ms == self.ms && id < self.id.as_str())
    }
}

/// Why a story is in the feed, in words a reader understands.
fn reason(key: &IndexKey) -> String {
    match key.kind {
        TargetKind::Topic => {
            let label = media_topics::label(&key.value).unwrap_or(&key.value);
            format!("You follow {}", capitalise(label))
        }
        TargetKind::Entity => format!("You follow {}", key.value),
        TargetKind::Section => format!("You follow the {} section", key.value),
        TargetKind::Author => format!("You follow {}", key.value),
        TargetKind::Unspecified => "Latest news".to_owned(),
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// One page of a user's feed and the cursor of the next page ("" when there is none).
pub async fn page(
    store: &FeedStore,
    user: &str,
    limit: usize,
    cursor: Option<&Cursor>,
) -> Result<(Vec<FeedItem>, String), newsroom_platform::redis::redis::RedisError> {
    let follows = store.follows(user).await?;
    let sources: Vec<(String, String)> = if follows.is_empty() {
        vec![(store.latest_key(), "Latest news".to_owned())]
    } else {
        follows
            .iter()
            .map(|k| (store.index_key(k), reason(k)))
            .collect()
    };
    let max_ms = cursor.map_or(i64::MAX, |c| c.ms);
    // Entries tied on the cursor's ms come back again; fetch enough to step past them.
    let fetch = limit + 64;
    let mut candidates: HashMap<String, (i64, Vec<String>)> = HashMap::new();
    for (key, why) in &sources {
        for (id, ms) in store.index_page(key, max_ms, fetch).await? {
            if cursor.is_some_and(|c| !c.is_before(ms, &id)) {
                continue;
            }
            let entry = candidates.entry(id).or_insert((ms, Vec::new()));
            entry.1.push(why.clone());
        }
    }
    let mut ranked: Vec<(String, i64, Vec<String>)> = candidates
        .into_iter()
        .map(|(id, (ms, reasons))| (id, ms, reasons))
        .collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));

    let now = now_ms();
    let mut items = Vec::with_capacity(limit);
    let mut last = None;
    // Stories that expired or were killed between index and cache are skipped, not shown.
    for chunk in ranked.chunks(limit.max(1)) {
        let ids: Vec<String> = chunk.iter().map(|c| c.0.clone()).collect();
        let stories = store.stories(&ids).await?;
        for ((id, ms, reasons), story) in chunk.iter().zip(stories) {
            let Some(enriched) = story else { continue };
            let mut s = enriched.story.unwrap_or_default();
            s.body_html.clear();
            let age_hours = ((now - ms).max(0) as f64) / 3_600_000.0;
            items.push(FeedItem {
                story: Some(s),
                // Recency decay: 1.0 now, 0.5 after six hours.
                score: 1.0 / (1.0 + age_hours / 6.0),
                reasons: reasons.clone(),
                topics: enriched.enrichment.map(|e| e.topics).unwrap_or_default(),
            });
            last = Some(Cursor {
                ms: *ms,
                id: id.clone(),
            });
            if items.len() == limit {
                break;
            }
        }
        if items.len() == limit {
            break;
        }
    }
    let next = match (&last, items.len() == limit) {
        (Some(c), true) => c.encode(),
        _ => String::new(),
    };
    Ok((items, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_orders() {
        let c = Cursor {
            ms: 1000,
            id: "b".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c.clone()));
        assert!(c.is_before(999, "z"));
        assert!(c.is_before(1000, "a"));
        assert!(!c.is_before(1000, "b"));
        assert!(!c.is_before(1001, "a"));
        assert_eq!(Cursor::decode("garbage"), None);
    }

    #[test]
    fn reasons_use_topic_labels() {
        let k = IndexKey::new(TargetKind::Topic, "medtop:13000000");
        assert_eq!(reason(&k), "You follow Science and technology");
    }
}
