//! Operator commands that read Kafka directly: `tail` (a topic's records decoded to JSON) and
//! `lag` (a consumer group's lag per partition).
//!
//! Records are decoded with the contract's own descriptor set (the one gRPC reflection
//! serves) through `prost-reflect`, so the JSON is the canonical proto3 JSON mapping and a new
//! field shows up without touching this file. Both commands are blocking (librdkafka's base
//! consumer); the commands run them on a blocking thread.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use newsroom_platform::kafka::client_config;
use newsroom_platform::kafka::rdkafka::config::ClientConfig;
use newsroom_platform::kafka::rdkafka::consumer::{BaseConsumer, Consumer as _};
use newsroom_platform::kafka::rdkafka::error::KafkaError;
use newsroom_platform::kafka::rdkafka::message::{Headers as _, Message as _};
use newsroom_platform::kafka::rdkafka::{Offset, TopicPartitionList};
use newsroom_platform::kafka::{dlq_headers, topics};
use prost_reflect::{DescriptorPool, DynamicMessage};

/// Why an operator command failed; each has its own exit code (`crate::Error::exit_code`).
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("topic {0} does not exist")]
    UnknownTopic(String),
    #[error("{0}")]
    Timeout(String),
}

/// The protobuf message a topic carries, by its base name (any prefix before it is ignored).
pub fn message_for_topic(topic: &str) -> Option<&'static str> {
    let table = [
        (topics::STORIES_RAW, "newsroom.v1.StoryEvent"),
        (topics::STORIES_HELD, "newsroom.v1.StoryEvent"),
        (topics::STORIES_ENRICHED, "newsroom.v1.EnrichedStory"),
        (topics::STORIES_INDEX, "newsroom.v1.StoryIndexEntry"),
        (topics::INTERACTIONS, "newsroom.v1.Interaction"),
        (topics::PROFILES, "newsroom.v1.UserProfile"),
        (topics::DEVICES, "newsroom.v1.Device"),
        (
            topics::NOTIFICATIONS_RECEIPTS,
            "newsroom.v1.DeliveryReceipt",
        ),
        (topics::NOTIFICATIONS_ALERTS, "newsroom.v1.AlertRequest"),
    ];
    // A dead-lettered record keeps its source topic's bytes.
    let topic = topic.strip_suffix(".dlq").unwrap_or(topic);
    table
        .iter()
        .find(|(base, _)| topic == *base || topic.ends_with(&format!(".{base}")))
        .map(|(_, message)| *message)
}

/// The contract's descriptors.
pub fn descriptors() -> DescriptorPool {
    DescriptorPool::decode(newsroom_proto::FILE_DESCRIPTOR_SET)
        .expect("the descriptor set built with the contract decodes")
}

/// Decodes one record value as `message` into proto3 JSON.
pub fn decode_json(
    pool: &DescriptorPool,
    message: &str,
    bytes: &[u8],
) -> Result<serde_json::Value, String> {
    let desc = pool
        .get_message_by_name(message)
        .ok_or_else(|| format!("{message} is not in the contract"))?;
    let msg = DynamicMessage::decode(desc, bytes).map_err(|e| format!("not a {message}: {e}"))?;
    serde_json::to_value(&msg).map_err(|e| e.to_string())
}

/// One consumed record as JSON: where it is, its key and headers, its decoded value (`null`
/// for a tombstone); bytes that do not decode are shown as `error` and `value_hex`.
pub fn record_json(
    pool: &DescriptorPool,
    topic: &str,
    partition: i32,
    offset: i64,
    key: Option<&[u8]>,
    headers: &[(String, Vec<u8>)],
    payload: Option<&[u8]>,
) -> serde_json::Value {
    let headers: BTreeMap<&str, String> = headers
        .iter()
        // The trace context is noise here; the trace id is worth keeping.
        .map(|(k, v)| (k.as_str(), String::from_utf8_lossy(v).into_owned()))
        .collect();
    let mut out = serde_json::json!({
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key": key.map(|k| String::from_utf8_lossy(k).into_owned()),
        "headers": headers,
        "value": null,
    });
    // A dead-lettered record is decoded as what its source topic carries.
    let source = headers.get(dlq_headers::TOPIC).map(String::as_str);
    let message = message_for_topic(source.unwrap_or(topic));
    if let Some(bytes) = payload {
        match message.map(|m| decode_json(pool, m, bytes)) {
            Some(Ok(v)) => out["value"] = v,
            Some(Err(e)) => {
                out["error"] = e.into();
                out["value_hex"] = hex(bytes).into();
            }
            None => out["value_hex"] = hex(bytes).into(),
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A Kafka client of the CLI: `brokers`, with the security of the `KAFKA_SECURITY_PROTOCOL` …
/// variables (SASL_SSL, SCRAM; see `newsroom_platform::tls`). A bad value ends the command
/// with exit code 64 naming the variable.
pub(crate) fn kafka_client(brokers: &str, client_id: &str) -> ClientConfig {
    let mut c = client_config(brokers, client_id);
    match newsroom_platform::tls::KafkaSecurity::from_env(&newsroom_platform::config::Env::process())
    {
        Ok(security) => security.apply(&mut c),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(64);
        }
    }
    c
}

pub(crate) fn consumer(brokers: &str, group: &str) -> Result<BaseConsumer, KafkaError> {
    kafka_client(brokers, "newsroom-cli")
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .create()
}

pub(crate) fn partitions(
    consumer: &BaseConsumer,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<i32>, OpsError> {
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let t = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .filter(|t| t.error().is_none() && !t.partitions().is_empty())
        .ok_or_else(|| OpsError::UnknownTopic(topic.to_owned()))?;
    Ok(t.partitions().iter().map(|p| p.id()).collect())
}

/// Where `tail` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum From {
    Beginning,
    End,
}

/// Reads a topic's records (every partition) and hands each to `emit` as JSON, until `count`
/// records were read, or `timeout` passed (an error only when `count` was asked for).
pub fn tail(
    brokers: &str,
    topic: &str,
    from: From,
    count: Option<usize>,
    timeout: Option<Duration>,
    mut emit: impl FnMut(serde_json::Value),
) -> Result<usize, OpsError> {
    let pool = descriptors();
    // A group of its own that never commits: tailing moves no one's offsets.
    let consumer = consumer(
        brokers,
        &format!("newsroom-cli-tail-{}", std::process::id()),
    )?;
    let mut tpl = TopicPartitionList::new();
    let offset = match from {
        From::Beginning => Offset::Beginning,
        From::End => Offset::End,
    };
    for p in partitions(&consumer, topic, Duration::from_secs(10))? {
        tpl.add_partition_offset(topic, p, offset)?;
    }
    consumer.assign(&tpl)?;
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut seen = 0;
    while count.is_none_or(|c| seen < c) {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return match count {
                Some(c) => Err(OpsError::Timeout(format!(
                    "{seen} of {c} records from {topic} within {:?}",
                    timeout.unwrap_or_default()
                ))),
                None => Ok(seen),
            };
        }
        let Some(m) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m?;
        let headers: Vec<(String, Vec<u8>)> = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        emit(record_json(
            &pool,
            m.topic(),
            m.partition(),
            m.offset(),
            m.key(),
            &headers,
            m.payload(),
        ));
        seen += 1;
    }
    Ok(seen)
}

/// A consumer group's position on one partition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionLag {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    /// The group's committed offset; `None` when it never committed on this partition.
    pub committed: Option<i64>,
    /// The partition's end (high watermark).
    pub end: i64,
    /// Records the group still has to handle: end − committed, or every retained record when
    /// it never committed.
    pub lag: i64,
}

/// Which topics `consumer_lag` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topics {
    /// Every topic named; a missing one is an error.
    Named,
    /// Of the topics named, those that exist and where the group committed at least once: the
    /// topics it consumes, when the caller did not say.
    Consumed,
}

/// The group's lag on every partition of `topics` (full names).
pub fn consumer_lag(
    brokers: &str,
    group: &str,
    topics: &[String],
    which: Topics,
) -> Result<Vec<PartitionLag>, OpsError> {
    let timeout = Duration::from_secs(10);
    // Asking for committed offsets under the group's id does not join the group.
    let consumer = consumer(brokers, group)?;
    let mut out = Vec::new();
    for topic in topics {
        let mut tpl = TopicPartitionList::new();
        let ids = match partitions(&consumer, topic, timeout) {
            Err(OpsError::UnknownTopic(_)) if which == Topics::Consumed => continue,
            other => other?,
        };
        for p in ids {
            tpl.add_partition(topic, p);
        }
        let committed = consumer.committed_offsets(tpl, timeout)?;
        if which == Topics::Consumed
            && !committed
                .elements()
                .iter()
                .any(|e| matches!(e.offset(), Offset::Offset(_)))
        {
            continue;
        }
        for e in committed.elements() {
            let (low, end) = consumer.fetch_watermarks(topic, e.partition(), timeout)?;
            let committed = match e.offset() {
                Offset::Offset(n) => Some(n),
                _ => None,
            };
            out.push(PartitionLag {
                group: group.to_owned(),
                topic: topic.clone(),
                partition: e.partition(),
                committed,
                end,
                lag: (end - committed.unwrap_or(low)).max(0),
            });
        }
    }
    out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use newsroom_proto::Message as _;

    #[test]
    fn topics_map_to_their_messages_whatever_the_prefix() {
        assert_eq!(
            message_for_topic("stories.raw"),
            Some("newsroom.v1.StoryEvent")
        );
        assert_eq!(
            message_for_topic("tenant-a.stories.enriched"),
            Some("newsroom.v1.EnrichedStory")
        );
        assert_eq!(
            message_for_topic("t1.stories.raw.dlq"),
            Some("newsroom.v1.StoryEvent")
        );
        assert_eq!(message_for_topic("unknown"), None);
        // Every message named is in the contract.
        let pool = descriptors();
        for t in newsroom_platform::kafka::TOPICS.iter() {
            if let Some(m) = message_for_topic(t.name) {
                assert!(pool.get_message_by_name(m).is_some(), "{m}");
            }
        }
    }

    #[test]
    fn a_record_decodes_to_proto3_json_and_garbage_says_so() {
        let pool = descriptors();
        let profile = newsroom_proto::v1::UserProfile {
            user_id: "alice".into(),
            ..Default::default()
        };
        let v = record_json(
            &pool,
            "p.profiles",
            2,
            7,
            Some(b"alice"),
            &[],
            Some(&profile.encode_to_vec()),
        );
        assert_eq!(v["value"]["userId"], "alice");
        assert_eq!(
            (v["partition"].as_i64(), v["offset"].as_i64()),
            (Some(2), Some(7))
        );
        let bad = record_json(&pool, "p.profiles", 0, 0, None, &[], Some(b"\xff\xfe"));
        assert!(
            bad["error"].as_str().unwrap().contains("UserProfile"),
            "{bad}"
        );
        assert_eq!(bad["value_hex"], "fffe");
        let tombstone = record_json(&pool, "p.devices", 0, 0, Some(b"d1"), &[], None);
        assert!(tombstone["value"].is_null());
    }
}
