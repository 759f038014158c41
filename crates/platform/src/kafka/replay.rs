//! Reading a topic outside the group: a whole replay, and the latest value of one key.
//!
//! [`replay`] rebuilds a Redis cache from a compacted topic (every partition from its beginning
//! to its end as of the call); [`values_for_key`] reads one key's values, the record of truth
//! behind a cache miss. Neither joins a group nor commits anything.

use std::future::Future;
use std::time::Duration;

use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message as _;
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

use super::client::reader_config;
use super::record::Record;
use crate::config::PlatformConfig;

/// Header names on records written again by a replay (`newsroom replay`, `newsroom-enrichment
/// replay`): consumers treat them like any other record; they are there for people and tools.
pub mod replay_headers {
    /// Who replayed: `cli` or the pipeline id of an enrichment replay.
    pub const REPLAY: &str = "newsroom.replay";
    /// Where the replayed record was read: `topic/partition/offset`.
    pub const SOURCE: &str = "newsroom.replay.source";
}

/// Reads every record now in `topic` (each partition from its beginning to its end as of the
/// call) and hands it to `apply`, in partition order. Used to rebuild a Redis cache from a
/// compacted topic; the consumer commits nothing. Returns how many records it read.
pub async fn replay<F, Fut>(
    config: &PlatformConfig,
    topic: &str,
    mut apply: F,
) -> Result<usize, KafkaError>
where
    F: FnMut(Record) -> Fut,
    Fut: Future<Output = ()>,
{
    let consumer: StreamConsumer =
        reader_config(config, &format!("{}-replay", config.consumer_group)).create()?;
    let partitions = partition_ids(&consumer, topic).await?;
    let mut ends = std::collections::HashMap::new();
    let mut tpl = TopicPartitionList::new();
    for id in partitions {
        let (low, high) = retry_briefly(|| {
            consumer.fetch_watermarks(topic, id, Timeout::After(Duration::from_secs(10)))
        })
        .await?;
        if high > low {
            ends.insert(id, high);
            tpl.add_partition_offset(topic, id, Offset::Beginning)?;
        }
    }
    if ends.is_empty() {
        return Ok(0);
    }
    consumer.assign(&tpl)?;
    let mut n = 0;
    while !ends.is_empty() {
        let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .map_err(|_| KafkaError::MessageConsumption(RDKafkaErrorCode::RequestTimedOut))??;
        if m.offset() + 1 >= ends.get(&m.partition()).copied().unwrap_or(0) {
            ends.remove(&m.partition());
        }
        let record = Record::from_message(&m);
        drop(m);
        apply(record).await;
        n += 1;
    }
    Ok(n)
}

/// A consumer that reads every partition of `topic` from its beginning and then follows it,
/// outside any group: nothing is committed and no group is left behind in Kafka, so every call
/// reads the whole topic again (ingest's embargo task rebuilds what it holds this way).
pub async fn follow_from_start(
    config: &PlatformConfig,
    topic: &str,
) -> Result<StreamConsumer, KafkaError> {
    let consumer: StreamConsumer =
        reader_config(config, &format!("{}-reader", config.consumer_group)).create()?;
    let partitions = partition_ids(&consumer, topic).await?;
    let mut tpl = TopicPartitionList::new();
    for id in partitions {
        tpl.add_partition_offset(topic, id, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    Ok(consumer)
}

/// The ids of `topic`'s partitions (metadata retried while leaders are elected).
pub(super) async fn partition_ids(
    consumer: &StreamConsumer,
    topic: &str,
) -> Result<Vec<i32>, KafkaError> {
    // Partition ids only: librdkafka's metadata cannot be held across an await.
    retry_briefly(|| {
        consumer
            .fetch_metadata(Some(topic), Timeout::After(Duration::from_secs(10)))
            .map(|m| {
                m.topics()
                    .first()
                    .map(|t| t.partitions().iter().map(|p| p.id()).collect())
                    .unwrap_or_default()
            })
    })
    .await
}

/// Retries a metadata call for up to ten seconds: a broker that just (re)started answers
/// NotLeaderForPartition until its partitions have leaders.
pub(super) async fn retry_briefly<T>(
    mut call: impl FnMut() -> Result<T, KafkaError>,
) -> Result<T, KafkaError> {
    use backon::{ConstantBuilder, Retryable as _};
    (|| std::future::ready(call()))
        .retry(
            ConstantBuilder::default()
                .with_delay(Duration::from_millis(200))
                .with_max_times(50),
        )
        .await
}

/// Every value still in `topic` for `key`, oldest first (a tombstone clears what came before):
/// the record of truth behind a cache miss, from which the caller picks the version it trusts
/// (compaction keeps the last record written, which need not be the highest version).
///
/// Reads the key's partition as librdkafka's default partitioner places it today (CRC32 of the
/// key modulo the partition count); if nothing is there, the other partitions too, since a key
/// written before partitions were added sits where that day's count put it. Slow (a partition
/// scan): callers bound how many run at once.
pub async fn values_for_key(
    config: &PlatformConfig,
    topic: &str,
    key: &str,
) -> Result<Vec<Vec<u8>>, KafkaError> {
    let consumer: StreamConsumer =
        reader_config(config, &format!("{}-lookup", config.consumer_group)).create()?;
    // A topic created a moment ago (or a broker just restarted) answers NotLeaderForPartition
    // until its partitions have leaders: retried briefly rather than failing the lookup.
    let partitions = partition_ids(&consumer, topic).await?;
    if partitions.is_empty() {
        return Ok(Vec::new());
    }
    let hashed = (crc32fast::hash(key.as_bytes()) % partitions.len() as u32) as i32;
    let mut values = scan_partition(&consumer, topic, hashed, key).await?;
    if values.is_empty() {
        for &p in partitions.iter().filter(|&&p| p != hashed) {
            values = scan_partition(&consumer, topic, p, key).await?;
            if !values.is_empty() {
                break;
            }
        }
    }
    Ok(values)
}

/// The values for `key` in one partition, from its beginning to its end as of the call.
async fn scan_partition(
    consumer: &StreamConsumer,
    topic: &str,
    partition: i32,
    key: &str,
) -> Result<Vec<Vec<u8>>, KafkaError> {
    let (low, high) = retry_briefly(|| {
        consumer.fetch_watermarks(topic, partition, Timeout::After(Duration::from_secs(10)))
    })
    .await?;
    let mut values = Vec::new();
    if high <= low {
        return Ok(values);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Beginning)?;
    consumer.assign(&tpl)?;
    loop {
        let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .map_err(|_| KafkaError::MessageConsumption(RDKafkaErrorCode::RequestTimedOut))??;
        if m.partition() == partition && m.key() == Some(key.as_bytes()) {
            match m.payload() {
                Some(v) => values.push(v.to_vec()),
                None => values.clear(),
            }
        }
        if m.partition() == partition && m.offset() + 1 >= high {
            return Ok(values);
        }
    }
}
