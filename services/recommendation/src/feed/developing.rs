//! One card per developing story. The stories of a news event — the wires that filed it, the
//! desk's own copy, the updates — share a near-duplicate cluster (enrichment's `dedup`), and
//! every story is in its cluster's index (`rec:idx:cluster:<id>`). Ranking already keeps one
//! story per cluster; a page then shows, for that card, the cluster's **newest** story, with
//! how many stories and distinct sources it has (`FeedItem.developing`), so the reader sees the
//! latest headline and "3 sources" instead of the first wire's copy. Following the cluster
//! (`TARGET_KIND_CLUSTER`) brings its stories to the feed like any followed index.

use std::collections::{HashMap, HashSet};

use newsroom_proto::v1::{DevelopingStory, TargetKind};

use crate::store::{FeedStore, Index, IndexKey, RedisError, Watch};

/// Stories of a cluster read to find its newest and count its stories and sources.
pub const DEVELOPING_MAX: usize = 50;

/// The developing story a feed card stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct Developing {
    /// The cluster's newest story: the one the card shows.
    pub newest: String,
    pub info: DevelopingStory,
}

/// For each story of a page, the developing story it belongs to (`None`: no cluster known),
/// and the versions of those clusters' indexes read just before them (what a prepared page
/// watches). Two round trips for the whole page (the cards are mostly in the local cache).
pub async fn of_page(
    store: &FeedStore,
    ids: &[String],
) -> Result<(Vec<Option<Developing>>, Watch), RedisError> {
    let cards = store.cards(ids).await?;
    let clusters: Vec<Option<String>> = cards
        .iter()
        .map(|c| {
            c.as_ref()
                .map(|c| c.cluster.clone())
                .filter(|c| !c.is_empty())
        })
        .collect();
    let mut wanted: Vec<String> = clusters.iter().flatten().cloned().collect();
    wanted.sort();
    wanted.dedup();

    let reads: Vec<(Index, usize)> = wanted
        .iter()
        .map(|c| {
            (
                Index::Target(IndexKey::new(TargetKind::Cluster, c)),
                DEVELOPING_MAX,
            )
        })
        .collect();
    let fields = reads.iter().map(|(index, _)| index.field()).collect();
    let (watch, lists) = store.newest_watched(&reads, fields).await?;
    let mut members: Vec<String> = lists.iter().flatten().cloned().collect();
    members.sort();
    members.dedup();
    let sources: HashMap<String, String> = members
        .iter()
        .cloned()
        .zip(store.cards(&members).await?)
        .filter_map(|(id, card)| Some((id, card?.source.clone())))
        .collect();
    let by_cluster: HashMap<&str, Developing> = wanted
        .iter()
        .zip(&lists)
        .filter_map(|(cluster, list)| Some((cluster.as_str(), summarise(cluster, list, &sources)?)))
        .collect();
    let developing = clusters
        .iter()
        .map(|c| c.as_deref().and_then(|c| by_cluster.get(c).cloned()))
        .collect();
    Ok((developing, watch))
}

/// A cluster's stories (newest first) as one developing story: those still cached count, and
/// their distinct sources (a story without one counts as its own).
fn summarise(
    cluster: &str,
    newest_first: &[String],
    sources: &HashMap<String, String>,
) -> Option<Developing> {
    let known: Vec<&String> = newest_first
        .iter()
        .filter(|id| sources.contains_key(*id))
        .collect();
    let newest = (*known.first()?).clone();
    let distinct: HashSet<&str> = known
        .iter()
        .map(|id| match sources[*id].as_str() {
            "" => id.as_str(),
            source => source,
        })
        .collect();
    Some(Developing {
        newest,
        info: DevelopingStory {
            cluster_id: cluster.to_owned(),
            stories: known.len() as u32,
            sources: distinct.len() as u32,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_cached_story_shows_with_its_stories_and_distinct_sources() {
        let sources = HashMap::from([
            ("s3".to_owned(), "desk".to_owned()),
            ("s2".to_owned(), "reuters".to_owned()),
            ("s1".to_owned(), "ap".to_owned()),
            ("s0".to_owned(), "ap".to_owned()),
        ]);
        let list = ["gone", "s3", "s2", "s1", "s0"].map(String::from);
        let d = summarise("c1", &list, &sources).unwrap();
        assert_eq!(d.newest, "s3", "the newest story still cached");
        assert_eq!((d.info.stories, d.info.sources), (4, 3));
        assert_eq!(d.info.cluster_id, "c1");
        assert_eq!(summarise("c2", &["gone".to_owned()], &sources), None);
        let anonymous = HashMap::from([
            ("a".to_owned(), String::new()),
            ("b".to_owned(), String::new()),
        ]);
        let d = summarise("c3", &["a".to_owned(), "b".to_owned()], &anonymous).unwrap();
        assert_eq!(d.info.sources, 2, "stories without a source each count");
    }
}
