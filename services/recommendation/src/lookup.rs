//! `GetStory`'s cache miss: the story read from `stories.enriched` itself, bounded.
//!
//! A miss is rare (a story not indexed yet, an archive story whose cache entry expired, Redis
//! being rebuilt) and costly: a partition scan, about 150 ms on a busy topic. Left unbounded,
//! any caller could make a replica scan Kafka as fast as it can ask. So:
//! - at most [`LOOKUPS_AT_ONCE`] scans run at once; a caller that cannot get one within
//!   [`WAIT_FOR_LOOKUP`] hears UNAVAILABLE (retry later), not a queue that grows;
//! - an id found missing is remembered for [`MISS_MEMORY`], so asking again is answered at once
//!   (unless a version of it was applied since: then it is looked up again);
//! - of the key's records the highest version wins, and none older than the version guard
//!   (a kill is a version: a story killed since is not brought back from an older record).

use std::sync::Arc;
use std::time::{Duration, Instant};

use newsroom_platform::PlatformConfig;
use newsroom_platform::kafka::{self, rdkafka::error::KafkaError};
use newsroom_proto::Message as _;
use newsroom_proto::v1::{EnrichedStory, PubStatus};
use tokio::sync::Semaphore;

/// Partition scans one replica runs at once.
pub const LOOKUPS_AT_ONCE: usize = 2;
/// How long a caller waits for a scan slot before hearing UNAVAILABLE.
pub const WAIT_FOR_LOOKUP: Duration = Duration::from_secs(2);
/// How long an id found missing is answered NOT_FOUND without looking again.
pub const MISS_MEMORY: Duration = Duration::from_secs(5);
/// Missing ids remembered at most.
const MISSES_KEPT: usize = 10_000;

/// What a lookup found.
#[derive(Debug)]
pub enum Found {
    Story(Box<EnrichedStory>),
    /// No live version of the story exists (never written, killed, or superseded by a kill).
    Missing,
    /// Every scan slot was taken for [`WAIT_FOR_LOOKUP`].
    Busy,
}

/// The bounded record-of-truth lookup of one replica. Cheap to clone.
#[derive(Clone)]
pub struct StoryLookup {
    platform: PlatformConfig,
    topic: String,
    slots: Arc<Semaphore>,
    /// When an id was found missing, and the version guard's value then.
    misses: Arc<quick_cache::sync::Cache<String, (Instant, Option<u32>)>>,
}

impl StoryLookup {
    pub fn new(platform: PlatformConfig) -> Self {
        StoryLookup {
            topic: platform.topic(kafka::topics::STORIES_ENRICHED),
            platform,
            slots: Arc::new(Semaphore::new(LOOKUPS_AT_ONCE)),
            misses: Arc::new(quick_cache::sync::Cache::new(MISSES_KEPT)),
        }
    }

    /// The live story `id` at its highest version, not older than `applied` (the version
    /// guard's), read from `stories.enriched`.
    pub async fn find(&self, id: &str, applied: Option<u32>) -> Result<Found, KafkaError> {
        // A miss is trusted only while nothing was applied since: a story indexed after the
        // miss and then evicted from the cache is looked up again.
        if self
            .misses
            .get(id)
            .is_some_and(|(at, then)| at.elapsed() < MISS_MEMORY && then == applied)
        {
            return Ok(Found::Missing);
        }
        let Ok(Ok(_slot)) = tokio::time::timeout(WAIT_FOR_LOOKUP, self.slots.acquire()).await
        else {
            return Ok(Found::Busy);
        };
        let values = kafka::values_for_key(&self.platform, &self.topic, id).await?;
        match newest_live(&values, applied) {
            Some(story) => Ok(Found::Story(Box::new(story))),
            None => {
                self.misses.insert(id.to_owned(), (Instant::now(), applied));
                Ok(Found::Missing)
            }
        }
    }
}

/// The highest version among `values`, if it is live and not older than `applied`.
fn newest_live(values: &[Vec<u8>], applied: Option<u32>) -> Option<EnrichedStory> {
    let version = |e: &EnrichedStory| e.story.as_ref().map_or(0, |s| s.version);
    let newest = values
        .iter()
        .filter_map(|v| EnrichedStory::decode(v.as_slice()).ok())
        .max_by_key(version)?;
    let status = newest.story.as_ref()?.pubstatus;
    let live = status != PubStatus::Canceled as i32 && status != PubStatus::Withheld as i32;
    (live && applied.is_none_or(|a| version(&newest) >= a)).then_some(newest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use newsroom_proto::v1::Story;

    fn record(version: u32, status: PubStatus) -> Vec<u8> {
        EnrichedStory {
            story: Some(Story {
                id: "s".into(),
                version,
                pubstatus: status as i32,
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec()
    }

    #[test]
    fn the_highest_version_wins_not_the_last_written() {
        let values = [record(3, PubStatus::Usable), record(2, PubStatus::Usable)];
        let found = newest_live(&values, None).expect("found");
        assert_eq!(found.story.unwrap().version, 3);
    }

    #[test]
    fn a_kill_or_a_newer_guarded_version_hides_the_story() {
        let killed = [record(1, PubStatus::Usable), record(2, PubStatus::Canceled)];
        assert!(newest_live(&killed, None).is_none());
        // The guard saw version 3 (a kill compacted away, say): version 2 is not brought back.
        let older = [record(2, PubStatus::Usable)];
        assert!(newest_live(&older, Some(3)).is_none());
        assert!(newest_live(&older, Some(2)).is_some());
        assert!(newest_live(&[], None).is_none());
    }
}
