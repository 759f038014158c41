//! The latest version of every story, from ingest's compacted `stories.index`: a replay
//! writes back no version older than the story's latest.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use newsroom_platform::kafka::rdkafka::consumer::{BaseConsumer, Consumer as _};
use newsroom_platform::kafka::rdkafka::error::KafkaError;
use newsroom_platform::kafka::rdkafka::message::Message as _;
use newsroom_platform::kafka::rdkafka::{Offset, TopicPartitionList};
use newsroom_proto::Message as _;
use newsroom_proto::v1::StoryIndexEntry;

use super::TIMEOUT;
use crate::ops::{self, OpsError};

/// The latest version of every story, from ingest's compacted `stories.index`: read whole at
/// the start, then followed while the replay runs ([`Latest::refresh`] before each write), so a
/// version ingested meanwhile is known before an older one would be written after it.
pub(super) struct Latest {
    /// `None` when the topic does not exist: then no version can be told superseded.
    consumer: Option<BaseConsumer>,
    versions: HashMap<String, u32>,
}

impl Latest {
    pub(super) fn load(brokers: &str, index: &str) -> Result<Self, OpsError> {
        let consumer = ops::consumer(
            brokers,
            &format!("newsroom-cli-replay-index-{}", std::process::id()),
        )?;
        let partitions = match ops::partitions(&consumer, index, TIMEOUT) {
            Ok(p) => p,
            Err(OpsError::UnknownTopic(_)) => {
                eprintln!("newsroom: {index} does not exist: superseded versions cannot be told");
                return Ok(Latest {
                    consumer: None,
                    versions: HashMap::new(),
                });
            }
            Err(e) => return Err(e),
        };
        let mut ends = HashMap::new();
        let mut tpl = TopicPartitionList::new();
        for p in partitions {
            let (low, high) = consumer.fetch_watermarks(index, p, TIMEOUT)?;
            if high > low {
                ends.insert(p, high);
            }
            tpl.add_partition_offset(index, p, Offset::Beginning)?;
        }
        consumer.assign(&tpl)?;
        let mut latest = Latest {
            consumer: None,
            versions: HashMap::new(),
        };
        let mut last_record = Instant::now();
        while !ends.is_empty() {
            let Some(message) = consumer.poll(Duration::from_millis(500)) else {
                if last_record.elapsed() > TIMEOUT {
                    return Err(OpsError::Timeout(format!(
                        "{index} stopped answering while it was read"
                    )));
                }
                continue;
            };
            last_record = Instant::now();
            let message = message?;
            let (p, offset) = (message.partition(), message.offset());
            if ends.get(&p).is_none_or(|end| offset + 1 >= *end) {
                ends.remove(&p);
            }
            latest.note(message.payload());
        }
        latest.consumer = Some(consumer);
        Ok(latest)
    }

    fn note(&mut self, payload: Option<&[u8]>) {
        if let Some(entry) = payload.and_then(|b| StoryIndexEntry::decode(b).ok()) {
            let v = self.versions.entry(entry.story_id).or_insert(0);
            *v = entry.version.max(*v);
        }
    }

    /// Takes in what ingest wrote to `stories.index` since the last look (without waiting).
    pub(super) fn refresh(&mut self) -> Result<(), KafkaError> {
        let Some(consumer) = self.consumer.take() else {
            return Ok(());
        };
        let mut result = Ok(());
        while let Some(message) = consumer.poll(Duration::ZERO) {
            match message {
                Ok(m) => self.note(m.payload()),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.consumer = Some(consumer);
        result
    }

    /// Whether a newer version of the story than `version` is known.
    pub(super) fn supersedes(&self, id: &str, version: u32) -> bool {
        self.versions
            .get(id)
            .is_some_and(|&newest| version < newest)
    }
}
