//! Replay: re-run the current pipeline over the history, for example after adding a stage.
//!
//! `newsroom-enrichment replay` reads `stories.enriched` — compacted, so it holds the latest
//! version of every story ever published, beyond `stories.raw`'s 7-day retention — from the
//! beginning up to the end it had when the replay started, enriches each story again with the
//! pipeline the service would run now, and publishes the result to `stories.enriched` under
//! the same key, with a `newsroom.replay` header.
//!
//! No duplicate alert follows: each story keeps its version and its `accepted_at`, and
//! notification alerts only on stories accepted within `NEWSROOM_ALERT_MAX_AGE_S` and only once
//! per story and device (its Redis ledger); recommendation stores by (story, version). Stateful
//! stages run in [`Mode::Replay`]: duplicate signatures and velocity are recorded on event
//! time, so a replay rebuilds them as live saw them (and after a Redis loss, restores them).
//!
//! A story updated by the live pipeline while the replay runs is published again by the replay
//! with the version the replay read, an older one: consumers ignore a version older than the
//! one they hold. Run replays when ingest is quiet, or accept that.

use std::collections::HashMap;
use std::time::Duration;

use newsroom_platform::kafka::rdkafka::consumer::{BaseConsumer, Consumer as _};
use newsroom_platform::kafka::rdkafka::message::{Header, Message as _, OwnedHeaders};
use newsroom_platform::kafka::rdkafka::{Offset, TopicPartitionList};
use newsroom_platform::kafka::{Producer, topics as t};
use newsroom_platform::metrics::{KafkaMetrics, Registry};
use newsroom_proto::Message as _;
use newsroom_proto::v1::{EnrichedStory, StoryEvent};

use crate::metrics::StageMetrics;
use crate::stage::Mode;
use crate::{Config, RunError};

/// Header on records written by a replay.
pub const REPLAY_HEADER: &str = newsroom_platform::kafka::replay_headers::REPLAY;

/// What a replay did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    /// Stories enriched again and published.
    pub republished: u64,
    /// Records that were not an `EnrichedStory` with a story (tombstones, garbage).
    pub skipped: u64,
    /// Stories the current pipeline would dead-letter (left as they were).
    pub failed: u64,
}

/// Options of a replay.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// Enrich but publish nothing (what would change).
    pub dry_run: bool,
}

/// Replays `stories.enriched` through the current pipeline.
pub async fn replay(config: &Config, options: &ReplayOptions) -> Result<ReplayReport, RunError> {
    let platform = &config.platform;
    let reloader = crate::start_pipeline(config, StageMetrics::default()).await?;
    let pipeline = reloader.shared().load_full();
    let topic = platform.topic(t::STORIES_ENRICHED);
    let producer = Producer::new(platform, KafkaMetrics::register(&mut Registry::default()))?;
    tracing::info!(%topic, pipeline = %pipeline.id, dry_run = options.dry_run, "replay started");

    // Read up to the end as it is now: what the replay writes itself comes after that.
    let consumer: BaseConsumer = newsroom_platform::kafka::reader_config(
        platform,
        &format!("{}-replay", platform.consumer_group),
    )
    .create()?;
    let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
    let mut ends: HashMap<i32, i64> = HashMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in metadata.topics().iter().flat_map(|t| t.partitions()) {
        let (low, high) = consumer.fetch_watermarks(&topic, p.id(), Duration::from_secs(10))?;
        if high > low {
            ends.insert(p.id(), high);
            tpl.add_partition_offset(&topic, p.id(), Offset::Beginning)?;
        }
    }
    let mut report = ReplayReport::default();
    if ends.is_empty() {
        return Ok(report);
    }
    consumer.assign(&tpl)?;
    while !ends.is_empty() {
        let Some(message) = consumer.poll(Duration::from_secs(10)) else {
            tracing::warn!(remaining = ?ends, "no record within 10 s; stopping the replay here");
            break;
        };
        let message = message?;
        let (partition, offset) = (message.partition(), message.offset());
        if ends.get(&partition).is_none_or(|end| offset >= *end) {
            ends.remove(&partition);
            continue;
        }
        if offset + 1 >= ends[&partition] {
            ends.remove(&partition);
        }
        let key = message
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default();
        let Some(old) = message
            .payload()
            .and_then(|p| EnrichedStory::decode(p).ok())
            .filter(|e| e.story.as_ref().is_some_and(|s| !s.id.is_empty()))
        else {
            report.skipped += 1;
            continue;
        };
        let event = StoryEvent {
            story: old.story,
            fingerprint: String::new(),
            accepted_at: old.accepted_at,
        };
        match pipeline.enrich_event(event, Mode::Replay).await {
            Ok(enriched) => {
                if !options.dry_run {
                    let headers = OwnedHeaders::new().insert(Header {
                        key: REPLAY_HEADER,
                        value: Some(pipeline.id.as_bytes()),
                    });
                    producer
                        .send_with_headers(&topic, &key, Some(&enriched.encode_to_vec()), headers)
                        .await
                        .map_err(|e| RunError::Kafka(e.source))?;
                }
                report.republished += 1;
            }
            Err(e) => {
                tracing::warn!(story.id = %key, error = %e, "replay: the current pipeline fails this story; left as it was");
                report.failed += 1;
            }
        }
    }
    producer.flush(platform.drain_timeout);
    tracing::info!(?report, "replay finished");
    Ok(report)
}
