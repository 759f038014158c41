//! Candidates: the stories a reader might get, each with the reasons they would get it.
//!
//! They come from the indexes of what the reader follows, their three strongest implicit
//! interests, the newest stories close in meaning to what they read (their [`crate::taste`]),
//! fresh breaking news, trending (globally and in followed topics), and for a reader
//! with neither follows nor history the latest stories ("Top stories"). Read and hidden stories
//! are never candidates. [`sources`] decides what to read (pure); [`gather`] reads it.

use std::collections::{HashMap, HashSet};

use newsroom_proto::media_topics;
use newsroom_proto::v1::TargetKind;

use super::score::Weights;
use crate::interests;
use crate::store::related::cosine;
use crate::store::{FeedStore, Index, IndexKey, ReaderState, RedisError, Watch};
use crate::taste;

/// Stories read from each followed index.
pub const PER_FOLLOW: usize = 150;
/// Implicit interests that bring candidates, strongest first.
pub const IMPLICIT_TOPICS: usize = 3;
/// The weight an implicit interest needs (about one read) before it brings candidates.
pub const IMPLICIT_MIN_WEIGHT: f64 = 1.0;
/// Stories read from the index of each implicit interest.
pub const PER_IMPLICIT: usize = 100;
/// Latest stories a cold-start reader gets.
pub const TOP_STORIES: usize = 200;
/// Fresh breaking stories every reader may get.
pub const BREAKING: usize = 20;
/// Globally trending stories every reader may get.
pub const TRENDING: usize = 50;
/// Trending stories of each followed topic.
pub const TRENDING_PER_TOPIC: usize = 20;

/// What ranking needs to know of a reader.
#[derive(Debug, Default)]
pub struct Reader {
    pub follows: Vec<IndexKey>,
    /// Implicit topic weights now, strongest first.
    pub implicit: Vec<(String, f64)>,
    /// The direction of their taste now, if it weighs enough (see [`crate::taste`]).
    pub taste: Option<Vec<f32>>,
    pub read: HashSet<String>,
    pub hidden: HashSet<String>,
}

impl Reader {
    /// The reader as stored, with their implicit interests decayed to `now_ms`.
    pub fn of(state: ReaderState, now_ms: i64) -> Self {
        Reader {
            follows: state.follows,
            implicit: interests::strongest_first(state.interests, now_ms),
            taste: state.taste.and_then(|t| t.decayed_to(now_ms).direction()),
            read: state.read,
            hidden: state.hidden,
        }
    }

    /// Neither follows nor history: a reader the service knows nothing of.
    fn is_cold(&self) -> bool {
        self.follows.is_empty() && self.implicit.is_empty() && self.taste.is_none()
    }
}

/// Why a story is a candidate.
#[derive(Debug, Clone, PartialEq)]
pub enum Why {
    Follow(IndexKey),
    /// An implicit interest, with its strength relative to the reader's strongest (0–1).
    Interest(String, f64),
    /// Close in meaning to what the reader read, with how close (0–1, see
    /// [`crate::taste::strength`]).
    Close(f64),
    TrendingIn(String),
    Breaking,
    Trending,
    Top,
}

impl Why {
    /// How strongly this reason ties the story to the reader (see [`Weights`]).
    pub fn interest(&self, w: &Weights) -> f64 {
        match self {
            Why::Follow(_) => w.follow,
            Why::Interest(_, strength) => w.implicit_floor + (1.0 - w.implicit_floor) * strength,
            Why::Close(strength) => w.close_floor + (w.close_top - w.close_floor) * strength,
            Why::TrendingIn(_) => w.trending_in_topic,
            Why::Breaking => w.breaking,
            Why::Trending => w.trending,
            Why::Top => w.top,
        }
    }

    /// The reason as the reader sees it.
    pub fn text(&self) -> String {
        let label = |code: &str| capitalise(media_topics::label(code).unwrap_or(code));
        match self {
            Why::Follow(k) => match k.kind {
                TargetKind::Topic => format!("You follow {}", label(&k.value)),
                TargetKind::Section => format!("You follow the {} section", k.value),
                TargetKind::Cluster => "You follow this developing story".to_owned(),
                _ => format!("You follow {}", k.value),
            },
            Why::Interest(code, _) => format!("Because you read about {}", label(code)),
            Why::Close(_) => "Close to what you read".to_owned(),
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

/// The candidates of one reader: reasons per story, and trending scores where known.
#[derive(Debug)]
pub struct Candidates<'r> {
    reader: &'r Reader,
    pub(super) whys: HashMap<String, Vec<Why>>,
    pub(super) popularity: HashMap<String, f64>,
}

impl<'r> Candidates<'r> {
    pub fn new(reader: &'r Reader) -> Self {
        Candidates {
            reader,
            whys: HashMap::new(),
            popularity: HashMap::new(),
        }
    }

    /// Whether a story may still be shown to the reader (neither read nor hidden).
    pub fn open(&self, id: &str) -> bool {
        !self.reader.read.contains(id) && !self.reader.hidden.contains(id)
    }

    /// Adds a reason for a story, unless the reader read or hid it.
    pub fn add(&mut self, id: String, why: Why) {
        if self.open(&id) {
            self.whys.entry(id).or_default().push(why);
        }
    }

    /// Records a story's trending score; `replace`: over one recorded before.
    pub fn popular(&mut self, id: &str, score: f64, replace: bool) {
        if replace {
            self.popularity.insert(id.to_owned(), score);
        } else {
            self.popularity.entry(id.to_owned()).or_insert(score);
        }
    }

    /// The candidate stories, in no particular order.
    pub fn ids(&self) -> Vec<String> {
        self.whys.keys().cloned().collect()
    }
}

/// The indexes to read for a reader, each with how many stories and the reason it gives.
pub fn sources(reader: &Reader) -> Vec<(Index, usize, Why)> {
    let strongest = reader.implicit.first().map_or(1.0, |(_, w)| w.max(1.0));
    let mut sources: Vec<(Index, usize, Why)> = reader
        .follows
        .iter()
        .map(|k| (Index::Target(k.clone()), PER_FOLLOW, Why::Follow(k.clone())))
        .collect();
    for (topic, w) in reader
        .implicit
        .iter()
        .take(IMPLICIT_TOPICS)
        .filter(|(_, w)| *w >= IMPLICIT_MIN_WEIGHT)
    {
        let key = IndexKey::new(TargetKind::Topic, topic);
        if !reader.follows.contains(&key) {
            sources.push((
                Index::Target(key),
                PER_IMPLICIT,
                Why::Interest(topic.clone(), w / strongest),
            ));
        }
    }
    if reader.taste.is_some() {
        // Which of these are close enough is decided by their vectors (see [`gather`]).
        sources.push((Index::Latest, taste::POOL, Why::Close(0.0)));
    }
    if reader.is_cold() {
        sources.push((Index::Latest, TOP_STORIES, Why::Top));
    }
    sources.push((Index::Breaking, BREAKING, Why::Breaking));
    sources
}

/// Reads a reader's candidates: the [`sources`] in one round trip (with the versions of their
/// indexes read just before them: what a prepared feed watches), then trending.
pub async fn gather<'r>(
    store: &FeedStore,
    reader: &'r Reader,
) -> Result<(Candidates<'r>, Watch), RedisError> {
    let sources = sources(reader);
    let reads: Vec<(Index, usize)> = sources
        .iter()
        .map(|(index, count, _)| (index.clone(), *count))
        .collect();
    let mut fields = Watch::base_fields();
    fields.extend(reads.iter().map(|(index, _)| index.field()));
    let (watch, lists) = store.newest_watched(&reads, fields).await?;
    let mut candidates = Candidates::new(reader);
    for ((_, _, why), ids) in sources.iter().zip(lists) {
        if let (Why::Close(_), Some(taste)) = (why, &reader.taste) {
            let ids: Vec<String> = ids.into_iter().filter(|id| candidates.open(id)).collect();
            let vectors = store.vectors(&ids).await?;
            for (id, v) in ids.into_iter().zip(vectors) {
                if let Some(s) = v.and_then(|v| taste::strength(cosine(taste, &v))) {
                    candidates.add(id, Why::Close(s));
                }
            }
            continue;
        }
        for id in ids {
            candidates.add(id, why.clone());
        }
    }
    for (id, s) in interests::trending(store, "global", TRENDING).await?.iter() {
        candidates.popular(id, *s, true);
        candidates.add(id.clone(), Why::Trending);
    }
    for k in reader
        .follows
        .iter()
        .filter(|k| k.kind == TargetKind::Topic)
    {
        let scope = format!("topic:{}", k.value);
        for (id, s) in interests::trending(store, &scope, TRENDING_PER_TOPIC)
            .await?
            .iter()
        {
            candidates.popular(id, *s, false);
            candidates.add(id.clone(), Why::TrendingIn(k.value.clone()));
        }
    }
    Ok((candidates, watch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_like_a_newsroom() {
        let w = Weights::DEFAULT;
        let follow = Why::Follow(IndexKey::new(TargetKind::Topic, "medtop:13000000"));
        assert_eq!(follow.text(), "You follow Science and technology");
        assert_eq!(
            Why::TrendingIn("medtop:11000000".into()).text(),
            "Trending in Politics"
        );
        assert!(follow.interest(&w) > Why::Trending.interest(&w));
    }

    #[test]
    fn read_and_hidden_stories_are_never_candidates() {
        let reader = Reader {
            read: HashSet::from(["read".to_owned()]),
            hidden: HashSet::from(["hidden".to_owned()]),
            ..Reader::default()
        };
        let mut c = Candidates::new(&reader);
        for id in ["read", "hidden", "fresh"] {
            c.add(id.to_owned(), Why::Trending);
        }
        assert_eq!(c.ids(), vec!["fresh".to_owned()]);
    }

    #[test]
    fn a_reader_with_a_taste_reads_the_newest_stories_for_closeness_and_is_not_cold() {
        let reader = Reader {
            taste: Some(vec![1.0, 0.0]),
            ..Reader::default()
        };
        let s = sources(&reader);
        assert!(s.iter().any(|(i, n, why)| *i == Index::Latest
            && *n == taste::POOL
            && matches!(why, Why::Close(_))));
        assert!(
            !s.iter().any(|(_, _, why)| *why == Why::Top),
            "not a cold reader"
        );
        let w = Weights::DEFAULT;
        assert!(
            Why::Close(1.0).interest(&w)
                < Why::Follow(IndexKey::new(TargetKind::Topic, "x")).interest(&w)
        );
        assert!(Why::Close(0.0).interest(&w) > Why::Trending.interest(&w));
        assert_eq!(Why::Close(0.3).text(), "Close to what you read");
    }

    #[test]
    fn a_cold_reader_gets_top_stories_and_a_follower_does_not() {
        let cold = Reader::default();
        assert!(sources(&cold).iter().any(|(i, _, _)| *i == Index::Latest));
        let follower = Reader {
            follows: vec![IndexKey::new(TargetKind::Topic, "medtop:15000000")],
            ..Reader::default()
        };
        let s = sources(&follower);
        assert!(!s.iter().any(|(i, _, _)| *i == Index::Latest));
        assert!(matches!(s[0].2, Why::Follow(_)));
        assert_eq!(s.last().map(|(i, _, _)| i), Some(&Index::Breaking));
    }
}
