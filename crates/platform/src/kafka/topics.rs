//! The topics of the system: their names, how each is created, and creating them.
//!
//! [`TOPICS`] is the one list of every topic with its partitions and retention
//! (ARCHITECTURE.md); [`ensure_topics`] creates the missing ones when a service starts.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::util::Timeout;

use crate::config::PlatformConfig;

// Topic base names (before the configured prefix).
pub const STORIES_RAW: &str = "stories.raw";
pub const STORIES_ENRICHED: &str = "stories.enriched";
pub const STORIES_INDEX: &str = "stories.index";
pub const STORIES_HELD: &str = "stories.held";
pub const STORIES_RAW_DLQ: &str = "stories.raw.dlq";
pub const STORIES_ENRICHED_DLQ: &str = "stories.enriched.dlq";
pub const INTERACTIONS: &str = "interactions";
pub const INTERACTIONS_DLQ: &str = "interactions.dlq";
pub const PROFILES: &str = "profiles";
pub const PROFILES_DLQ: &str = "profiles.dlq";
pub const DEVICES: &str = "devices";
pub const DEVICES_DLQ: &str = "devices.dlq";
pub const NOTIFICATIONS_RECEIPTS: &str = "notifications.receipts";
/// Routine editor alert requests (`AlertRequest`), keyed by story id: notification's routine
/// lane, read by its own consumer group.
pub const NOTIFICATIONS_ALERTS: &str = "notifications.alerts";
pub const NOTIFICATIONS_ALERTS_DLQ: &str = "notifications.alerts.dlq";
/// Breaking and critical editor alert requests: notification's priority lane, read with
/// `stories.enriched` in the group of the flashes, never behind a routine fan-out.
pub const NOTIFICATIONS_ALERTS_BREAKING: &str = "notifications.alerts.breaking";
pub const NOTIFICATIONS_ALERTS_BREAKING_DLQ: &str = "notifications.alerts.breaking.dlq";

/// How a topic is created: partitions, retention, compaction (ARCHITECTURE.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: &'static str,
    pub partitions: i32,
    /// `None` = compacted (kept forever, latest value per key).
    pub retention_days: Option<u32>,
}

/// The one list of topics, `deploy/topics.tsv`, which also feeds the local stack, compose and
/// Strimzi (`just topics`).
const TABLE: &str = include_str!("../../../../deploy/topics.tsv");

/// Every topic of the system, from `deploy/topics.tsv`.
pub static TOPICS: LazyLock<Vec<TopicSpec>> =
    LazyLock::new(|| parse(TABLE).unwrap_or_else(|e| panic!("deploy/topics.tsv: {e}")));

/// The rows of a topic table: `name<TAB>partitions<TAB>days|compact<TAB>description`, `#`
/// comments and blank lines skipped.
fn parse(table: &'static str) -> Result<Vec<TopicSpec>, String> {
    table
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|line| {
            let mut cols = line.split('\t');
            let (Some(name), Some(partitions), Some(retention)) =
                (cols.next(), cols.next(), cols.next())
            else {
                return Err(format!("{line:?}: expected name, partitions, retention"));
            };
            let partitions = partitions
                .parse()
                .map_err(|e| format!("{name}: partitions {partitions:?}: {e}"))?;
            let retention_days = match retention {
                "compact" => None,
                days => Some(
                    days.parse()
                        .map_err(|e| format!("{name}: retention {days:?}: {e}"))?,
                ),
            };
            Ok(TopicSpec {
                name,
                partitions,
                retention_days,
            })
        })
        .collect()
}

/// Creates the given topics (base names from [`TOPICS`]) when missing. Safe to call on every
/// start and from several replicas at once.
pub async fn ensure_topics(config: &PlatformConfig, names: &[&str]) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> =
        super::client::service_client(config).create()?;
    let specs: Vec<(String, TopicSpec)> = TOPICS
        .iter()
        .filter(|s| names.contains(&s.name))
        .map(|s| (config.topic(s.name), *s))
        .collect();
    let retention: Vec<Option<String>> = specs
        .iter()
        .map(|(_, s)| {
            s.retention_days
                .map(|d| (u64::from(d) * 86_400_000).to_string())
        })
        .collect();
    let new_topics: Vec<NewTopic<'_>> = specs
        .iter()
        .zip(&retention)
        .map(|((name, s), retention)| {
            let partitions = config.topic_partitions.unwrap_or(s.partitions);
            // -1: the broker's default replication factor (1 locally, 3 on a real cluster).
            let t = NewTopic::new(name, partitions, TopicReplication::Fixed(-1));
            match retention {
                Some(ms) => t.set("cleanup.policy", "delete").set("retention.ms", ms),
                None => t.set("cleanup.policy", "compact"),
            }
        })
        .collect();
    let results = admin
        .create_topics(
            &new_topics,
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(20))),
        )
        .await?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                tracing::error!(%topic, ?code, "could not create topic");
                return Err(KafkaError::AdminOp(code));
            }
        }
    }
    // A new topic reaches the brokers' metadata a moment after the controller created it. A
    // consumer that subscribes before that would only look again at the next metadata refresh
    // (minutes), so wait here until every topic has its partitions.
    let deadline = Instant::now() + Duration::from_secs(30);
    for (name, _) in &specs {
        loop {
            let known = admin
                .inner()
                .fetch_metadata(Some(name), Timeout::After(Duration::from_secs(5)))
                .ok()
                .and_then(|m| {
                    m.topics()
                        .first()
                        // Every partition present and led: a fresh topic answers
                        // NotLeaderForPartition for a moment after creation.
                        .map(|t| {
                            t.error().is_none()
                                && !t.partitions().is_empty()
                                && t.partitions()
                                    .iter()
                                    .all(|p| p.leader() >= 0 && p.error().is_none())
                        })
                })
                .unwrap_or(false);
            if known {
                break;
            }
            if Instant::now() > deadline {
                return Err(KafkaError::MetadataFetch(
                    RDKafkaErrorCode::UnknownTopicOrPartition,
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_topic_name_the_code_uses_is_in_the_table_and_the_table_parses() {
        let names: Vec<&str> = TOPICS.iter().map(|t| t.name).collect();
        for name in [
            STORIES_RAW,
            STORIES_ENRICHED,
            STORIES_INDEX,
            STORIES_HELD,
            STORIES_RAW_DLQ,
            STORIES_ENRICHED_DLQ,
            INTERACTIONS,
            INTERACTIONS_DLQ,
            PROFILES,
            PROFILES_DLQ,
            DEVICES,
            DEVICES_DLQ,
            NOTIFICATIONS_RECEIPTS,
            NOTIFICATIONS_ALERTS,
            NOTIFICATIONS_ALERTS_DLQ,
            NOTIFICATIONS_ALERTS_BREAKING,
            NOTIFICATIONS_ALERTS_BREAKING_DLQ,
        ] {
            assert!(
                names.contains(&name),
                "{name} missing from deploy/topics.tsv"
            );
        }
        assert_eq!(
            names.len(),
            17,
            "a topic in the table the code never names: {names:?}"
        );
        let raw = TOPICS.iter().find(|t| t.name == STORIES_RAW).unwrap();
        assert_eq!((raw.partitions, raw.retention_days), (12, Some(7)));
        let enriched = TOPICS.iter().find(|t| t.name == STORIES_ENRICHED).unwrap();
        assert_eq!(enriched.retention_days, None, "compacted");
    }

    #[test]
    fn a_bad_row_is_an_error_naming_the_topic() {
        let e = parse("stories.raw\ttwelve\t7\tx\n").unwrap_err();
        assert!(e.contains("stories.raw") && e.contains("twelve"), "{e}");
        assert!(parse("stories.raw\t12\n").is_err());
    }
}
