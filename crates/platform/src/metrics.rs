//! Prometheus metrics.
//!
//! Each service builds one [`prometheus_client::registry::Registry`] at start-up, registers the
//! shared families here ([`KafkaMetrics`]) and its own, then serves it on `/metrics` of the admin
//! port. Names follow Prometheus conventions (`_total` counters, `_seconds` histograms).

pub use prometheus_client;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
pub use prometheus_client::registry::Registry;

/// Label set naming a Kafka topic.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabel {
    pub topic: String,
}

/// Label set naming one partition of a topic as seen by one consumer group.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    pub topic: String,
    pub partition: String,
    pub group: String,
}

/// Metrics of the Kafka producer and consumer loop, shared by every service.
#[derive(Clone)]
pub struct KafkaMetrics {
    pub consumed: Family<TopicLabel, Counter>,
    pub produced: Family<TopicLabel, Counter>,
    pub produce_errors: Family<TopicLabel, Counter>,
    pub dead_lettered: Family<TopicLabel, Counter>,
    pub handler_seconds: Family<TopicLabel, Histogram>,
    /// Records between the group's committed offset and the partition's end, per assigned
    /// partition, from librdkafka's statistics (what KEDA scales on).
    pub consumer_lag: Family<PartitionLabels, Gauge>,
}

impl KafkaMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = KafkaMetrics {
            consumed: Family::default(),
            produced: Family::default(),
            produce_errors: Family::default(),
            dead_lettered: Family::default(),
            handler_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0005, 2.0, 16))
            }),
            consumer_lag: Family::default(),
        };
        registry.register(
            "newsroom_kafka_consumed_records",
            "Records consumed and fully handled, by topic",
            m.consumed.clone(),
        );
        registry.register(
            "newsroom_kafka_produced_records",
            "Records acknowledged by Kafka, by topic",
            m.produced.clone(),
        );
        registry.register(
            "newsroom_kafka_produce_errors",
            "Records Kafka did not acknowledge, by topic",
            m.produce_errors.clone(),
        );
        registry.register(
            "newsroom_dlq_records",
            "Records sent to a dead-letter topic, by source topic",
            m.dead_lettered.clone(),
        );
        registry.register(
            "newsroom_kafka_handler_duration_seconds",
            "Time to handle one consumed record, by topic",
            m.handler_seconds.clone(),
        );
        registry.register(
            "newsroom_kafka_consumer_lag",
            "Records not yet committed by the consumer group, by topic and partition",
            m.consumer_lag.clone(),
        );
        m
    }
}

/// Encodes the registry in the Prometheus text format.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}
