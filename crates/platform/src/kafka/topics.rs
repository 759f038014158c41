//! The topics of the system: their names, how each is created, and creating them.
//!
//! [`TOPICS`] is the one list of every topic with its partitions and retention
//! (ARCHITECTURE.md); [`ensure_topics`] creates the missing ones when a service starts.

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
/// Editor alert requests (`AlertRequest`), keyed by story id: notification's own queue.
pub const NOTIFICATIONS_ALERTS: &str = "notifications.alerts";
pub const NOTIFICATIONS_ALERTS_DLQ: &str = "notifications.alerts.dlq";

/// How a topic is created: partitions, retention, compaction (ARCHITECTURE.md).
#[derive(Debug, Clone, Copy)]
pub struct TopicSpec {
    pub name: &'static str,
    pub partitions: i32,
    /// `None` = compacted (kept forever, latest value per key).
    pub retention_days: Option<u32>,
}

const fn spec(name: &'static str, partitions: i32, retention_days: Option<u32>) -> TopicSpec {
    TopicSpec {
        name,
        partitions,
        retention_days,
    }
}

/// Every topic of the system. `deploy/stack.sh` creates the same list for the local stack.
pub const TOPICS: &[TopicSpec] = &[
    spec(STORIES_RAW, 12, Some(7)),
    spec(STORIES_ENRICHED, 12, None),
    spec(STORIES_INDEX, 12, None),
    spec(STORIES_HELD, 6, None),
    spec(STORIES_RAW_DLQ, 1, Some(14)),
    spec(STORIES_ENRICHED_DLQ, 1, Some(14)),
    spec(INTERACTIONS, 12, Some(30)),
    spec(INTERACTIONS_DLQ, 1, Some(14)),
    spec(PROFILES, 6, None),
    spec(PROFILES_DLQ, 1, Some(14)),
    spec(DEVICES, 6, None),
    spec(DEVICES_DLQ, 1, Some(14)),
    spec(NOTIFICATIONS_RECEIPTS, 6, Some(7)),
    spec(NOTIFICATIONS_ALERTS, 6, Some(7)),
    spec(NOTIFICATIONS_ALERTS_DLQ, 1, Some(14)),
];

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
