//! Building a reader's feed.
//!
//! **Candidates** come from what the reader follows (each followed topic, entity, section or
//! author index), their implicit interests (the topics they engage with, decaying), what is
//! trending (globally and in their topics) and fresh breaking news; a reader with neither
//! follows nor history gets trending and top stories (cold start). Stories the reader read or
//! hid are never candidates.
//!
//! **Scoring**: `0.45 · interest + 0.30 · recency + 0.15 · importance + 0.10 · popularity`, where
//! interest is 1 for a follow, up to 1 for an implicit interest, less for trending or breaking
//! alone; recency halves about every 17 hours; importance is enrichment's breaking score;
//! popularity is the trending score relative to the hottest candidate.
//!
//! **Diversity**: a near-duplicate cluster (the same event from several wires) shows once, and
//! each further story of the same main topic is discounted by 15 %, so a page is not a wall of
//! one topic.
//!
//! **Pagination**: the first page ranks everything once and keeps the ranking as a snapshot in
//! Redis for [`SNAPSHOT_TTL_SECS`]; cursors (`<snapshot>.<offset>`) page through that snapshot,
//! so pages stay stable while new stories arrive. The first page itself is served from the
//! latest snapshot for [`FIRST_PAGE_TTL_SECS`]; a follow change or a hide drops it.

use std::collections::{HashMap, HashSet};

use newsroom_platform::redis::redis::{self, AsyncCommands as _};
use newsroom_proto::media_topics;
use newsroom_proto::v1::{FeedItem, TargetKind};

use crate::interests;
use crate::store::{Card, FeedStore, IndexKey, now_ms};

/// How long a ranking snapshot serves its cursors.
pub const SNAPSHOT_TTL_SECS: u64 = 15 * 60;
/// How long a reader's first page is reused.
pub const FIRST_PAGE_TTL_SECS: u64 = 2;
/// Stories ranked per snapshot at most.
pub const SNAPSHOT_MAX: usize = 500;

/// A position in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub snapshot: String,
    pub offset: usize,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.snapshot, self.offset)
    }

    pub fn decode(s: &str) -> Option<Self> {
        let (snapshot, offset) = s.split_once('.')?;
        let valid = !snapshot.is_empty() && snapshot.chars().all(|c| c.is_ascii_hexdigit());
        let offset = offset.parse().ok()?;
        valid.then(|| Cursor {
            snapshot: snapshot.to_owned(),
            offset,
        })
    }
}

/// Why a story is a candidate, strongest first.
#[derive(Debug, Clone, PartialEq)]
enum Why {
    Follow(IndexKey),
    Interest(String, f64),
    TrendingIn(String),
    Breaking,
    Trending,
    Top,
}

impl Why {
    fn interest(&self) -> f64 {
        match self {
            Why::Follow(_) => 1.0,
            Why::Interest(_, strength) => 0.5 + 0.5 * strength,
            Why::TrendingIn(_) => 0.5,
            Why::Breaking => 0.4,
            Why::Trending => 0.3,
            Why::Top => 0.2,
        }
    }

    fn text(&self) -> String {
        let label = |code: &str| capitalise(media_topics::label(code).unwrap_or(code));
        match self {
            Why::Follow(k) => match k.kind {
                TargetKind::Topic => format!("You follow {}", label(&k.value)),
                TargetKind::Section => format!("You follow the {} section", k.value),
                _ => format!("You follow {}", k.value),
            },
            Why::Interest(code, _) => format!("Because you read about {}", label(code)),
            Why::TrendingIn(code) => format!("Trending in {}", label(code)),
            Why::Breaking => "Breaking news".to_owned(),
            Why::Trending => "Trending now".to_owned(),
            Why::Top => "Top stories".to_owned(),
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// One ranked entry of a snapshot.
#[derive(Debug, Clone, PartialEq)]
struct Ranked {
    id: String,
    score: f64,
    reasons: Vec<String>,
}

impl Ranked {
    fn encode(&self) -> String {
        format!(
            "{}\t{:.5}\t{}",
            self.id,
            self.score,
            self.reasons.join("\u{1f}")
        )
    }

    fn decode(line: &str) -> Option<Self> {
        let mut p = line.splitn(3, '\t');
        Some(Ranked {
            id: p.next()?.to_owned(),
            score: p.next()?.parse().ok()?,
            reasons: p
                .next()
                .unwrap_or_default()
                .split('\u{1f}')
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }
}

fn snapshot_key(store: &FeedStore, snapshot: &str) -> String {
    store.redis().key(format!("rec:snap:{snapshot}"))
}

/// The key of a reader's cached first page (dropped when their follows change).
pub fn first_page_key(store: &FeedStore, user: &str) -> String {
    store.redis().key(format!("rec:first:{user}"))
}

/// What ranking needs to know of a reader.
struct Reader {
    follows: Vec<IndexKey>,
    implicit: Vec<(String, f64)>,
    read: HashSet<String>,
    hidden: HashSet<String>,
}

/// The reader, and the snapshot of their cached first page if any, in one round trip.
async fn reader(
    store: &FeedStore,
    user: &str,
) -> Result<(Option<String>, Reader), redis::RedisError> {
    let keys = interests::Keys(store);
    type Raw = (
        Option<String>,
        Vec<String>,
        HashMap<String, String>,
        HashSet<String>,
        HashSet<String>,
    );
    let (first, follows, implicit, read, hidden): Raw = redis::pipe()
        .get(first_page_key(store, user))
        .smembers(store.follows_key(user))
        .hgetall(keys.interests(user))
        .smembers(keys.read(user))
        .smembers(keys.hidden(user))
        .query_async(&mut store.redis().conn())
        .await?;
    Ok((
        first,
        Reader {
            follows: crate::store::follows_of(&follows),
            implicit: interests::parse_interests(implicit),
            read,
            hidden,
        },
    ))
}

/// Ranks a reader's candidates into a snapshot.
async fn rank(store: &FeedStore, reader: Reader) -> Result<Vec<Ranked>, redis::RedisError> {
    let Reader {
        follows,
        implicit,
        read,
        hidden,
    } = reader;
    let strongest = implicit.first().map_or(1.0, |(_, w)| w.max(1.0));

    let mut whys: HashMap<String, Vec<Why>> = HashMap::new();
    let mut add = |id: String, why: Why| {
        if !read.contains(&id) && !hidden.contains(&id) {
            whys.entry(id).or_default().push(why);
        }
    };
    // Indexes to read, with the reason they give.
    let mut sources: Vec<(String, usize, Why)> = follows
        .iter()
        .map(|k| (store.index_key(k), 150, Why::Follow(k.clone())))
        .collect();
    for (topic, w) in implicit.iter().take(3).filter(|(_, w)| *w >= 1.0) {
        let key = IndexKey::new(TargetKind::Topic, topic);
        if !follows.contains(&key) {
            sources.push((
                store.index_key(&key),
                100,
                Why::Interest(topic.clone(), w / strongest),
            ));
        }
    }
    let cold = follows.is_empty() && implicit.is_empty();
    if cold {
        sources.push((store.latest_key(), 200, Why::Top));
    }
    sources.push((store.breaking_key(), 20, Why::Breaking));
    let mut pipe = redis::pipe();
    for (key, count, _) in &sources {
        pipe.zrevrange(key, 0, *count as isize - 1);
    }
    let lists: Vec<Vec<String>> = pipe.query_async(&mut store.redis().conn()).await?;
    for ((_, _, why), ids) in sources.iter().zip(lists) {
        for id in ids {
            add(id, why.clone());
        }
    }
    let mut popularity: HashMap<String, f64> = HashMap::new();
    for (id, s) in interests::trending(store, "global", 50).await?.iter() {
        popularity.insert(id.clone(), *s);
        add(id.clone(), Why::Trending);
    }
    for k in follows.iter().filter(|k| k.kind == TargetKind::Topic) {
        let scope = format!("topic:{}", k.value);
        for (id, s) in interests::trending(store, &scope, 20).await?.iter() {
            popularity.entry(id.clone()).or_insert(*s);
            add(id.clone(), Why::TrendingIn(k.value.clone()));
        }
    }

    let ids: Vec<String> = whys.keys().cloned().collect();
    let cards = store.cards(&ids).await?;
    let hottest = popularity.values().copied().fold(1.0, f64::max);
    let now = now_ms();
    let mut scored: Vec<(Ranked, std::sync::Arc<Card>)> = ids
        .into_iter()
        .zip(cards)
        .filter_map(|(id, card)| {
            // Not cached any more (expired, killed): not shown.
            let card = card?;
            let mut reasons = whys.remove(&id).unwrap_or_default();
            reasons.sort_by(|a, b| b.interest().total_cmp(&a.interest()));
            let interest = reasons.first().map_or(0.0, Why::interest);
            let age_h = ((now - card.ms).max(0) as f64) / 3_600_000.0;
            let recency = (-age_h / 24.0).exp();
            let popular = popularity.get(&id).copied().unwrap_or(0.0) / hottest;
            let score = 0.45 * interest + 0.30 * recency + 0.15 * card.breaking + 0.10 * popular;
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
    let mut per_topic: HashMap<String, i32> = HashMap::new();
    let mut out: Vec<Ranked> = Vec::new();
    for (mut r, card) in scored {
        if !card.cluster.is_empty() && !clusters.insert(card.cluster.clone()) {
            continue;
        }
        if let Some(t) = card.primary_topic() {
            let n = per_topic.entry(t.to_owned()).or_default();
            r.score *= 0.85f64.powi(*n);
            *n += 1;
        }
        out.push(r);
    }
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| b.id.cmp(&a.id)));
    out.truncate(SNAPSHOT_MAX);
    Ok(out)
}

/// One page of a user's feed and the cursor of the next page ("" when there is none).
/// `Err(None)` means the cursor's snapshot has expired.
pub async fn page(
    store: &FeedStore,
    user: &str,
    limit: usize,
    cursor: Option<&Cursor>,
) -> Result<(Vec<FeedItem>, String), PageError> {
    let mut conn = store.redis().conn();
    let (snapshot, offset, ranked) = match cursor {
        Some(c) => {
            let body: Option<String> = conn.get(snapshot_key(store, &c.snapshot)).await?;
            let body = body.ok_or(PageError::Expired)?;
            (c.snapshot.clone(), c.offset, body)
        }
        None => {
            let first = first_page_key(store, user);
            let (cached, reader) = reader(store, user).await?;
            let cached_body = match &cached {
                Some(snap) => {
                    conn.get::<_, Option<String>>(snapshot_key(store, snap))
                        .await?
                }
                None => None,
            };
            match (cached, cached_body) {
                (Some(snap), Some(body)) => (snap, 0, body),
                _ => {
                    let ranked = rank(store, reader).await?;
                    let snap = format!("{:016x}", rand_u64());
                    let body: Vec<String> = ranked.iter().map(Ranked::encode).collect();
                    let body = body.join("\n");
                    redis::pipe()
                        .set_ex(snapshot_key(store, &snap), &body, SNAPSHOT_TTL_SECS)
                        .set_ex(&first, &snap, FIRST_PAGE_TTL_SECS)
                        .query_async::<()>(&mut conn)
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
    let stories = store.page_stories(&ids).await?;
    let items: Vec<FeedItem> = entries
        .into_iter()
        .zip(stories)
        // A story killed since the snapshot was taken is not shown.
        .filter_map(|(r, s)| {
            let enriched = s?;
            Some(FeedItem {
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
    Redis(#[from] redis::RedisError),
    #[error("cursor: expired; start again without a cursor")]
    Expired,
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let c = Cursor {
            snapshot: "00ff".into(),
            offset: 20,
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("garbage"), None);
        assert_eq!(Cursor::decode("zz.3"), None);
    }

    #[test]
    fn ranked_entries_round_trip() {
        let r = Ranked {
            id: "s1".into(),
            score: 0.5,
            reasons: vec!["You follow Sport".into(), "Trending now".into()],
        };
        assert_eq!(Ranked::decode(&r.encode()), Some(r));
    }

    #[test]
    fn reasons_read_like_a_newsroom() {
        let follow = Why::Follow(IndexKey::new(TargetKind::Topic, "medtop:13000000"));
        assert_eq!(follow.text(), "You follow Science and technology");
        assert_eq!(
            Why::TrendingIn("medtop:11000000".into()).text(),
            "Trending in Politics"
        );
        assert!(follow.interest() > Why::Trending.interest());
    }
}
