//! Kafka: topic names and specs, the idempotent producer and the at-least-once consumer loop.
//!
//! Delivery is at-least-once everywhere (ARCHITECTURE.md):
//! - [`Producer`] is idempotent with `acks=all`; [`Producer::send`] resolves only once Kafka
//!   acknowledged the record, inside a producer span whose context travels in the record headers.
//! - [`run_consumer`] stores a record's offset only after its [`Handler`] finished (or the record
//!   went to the dead-letter topic), commits stored offsets on partition revoke and on shutdown,
//!   and continues the producer's trace. Handlers are idempotent on (story id, version), so a
//!   redelivery after a crash is harmless.
//! - A record the handler rejects as [`HandlerError::Poison`], or that still fails after bounded
//!   retries, goes to `<topic>.dlq` with the original bytes and headers naming the source topic,
//!   partition, offset and the error. The loop never stops on a poison record and never drops
//!   one silently.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry::propagation::{Extractor, Injector};
use rdkafka::ClientContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers as _, Message as _, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::config::PlatformConfig;
use crate::metrics::{KafkaMetrics, PartitionLabels, TopicLabel};
use crate::shutdown::Shutdown;

pub use rdkafka;

/// Topic base names (before the configured prefix).
pub mod topics {
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
}

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
    spec(topics::STORIES_RAW, 12, Some(7)),
    spec(topics::STORIES_ENRICHED, 12, None),
    spec(topics::STORIES_INDEX, 12, None),
    spec(topics::STORIES_HELD, 6, None),
    spec(topics::STORIES_RAW_DLQ, 1, Some(14)),
    spec(topics::STORIES_ENRICHED_DLQ, 1, Some(14)),
    spec(topics::INTERACTIONS, 12, Some(30)),
    spec(topics::INTERACTIONS_DLQ, 1, Some(14)),
    spec(topics::PROFILES, 6, None),
    spec(topics::PROFILES_DLQ, 1, Some(14)),
    spec(topics::DEVICES, 6, None),
    spec(topics::DEVICES_DLQ, 1, Some(14)),
    spec(topics::NOTIFICATIONS_RECEIPTS, 6, Some(7)),
    spec(topics::NOTIFICATIONS_ALERTS, 6, Some(7)),
    spec(topics::NOTIFICATIONS_ALERTS_DLQ, 1, Some(14)),
];

/// Header names on dead-lettered records.
pub mod dlq_headers {
    pub const TOPIC: &str = "dlq.source.topic";
    pub const PARTITION: &str = "dlq.source.partition";
    pub const OFFSET: &str = "dlq.source.offset";
    pub const ERROR: &str = "dlq.error";
    pub const ATTEMPTS: &str = "dlq.attempts";
}

/// Header names on records written again by a replay (`newsroom replay`, `newsroom-enrichment
/// replay`): consumers treat them like any other record; they are there for people and tools.
pub mod replay_headers {
    /// Who replayed: `cli` or the pipeline id of an enrichment replay.
    pub const REPLAY: &str = "newsroom.replay";
    /// Where the replayed record was read: `topic/partition/offset`.
    pub const SOURCE: &str = "newsroom.replay.source";
}

/// Creates the given topics (base names from [`TOPICS`]) when missing. Safe to call on every
/// start and from several replicas at once.
pub async fn ensure_topics(config: &PlatformConfig, names: &[&str]) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka_brokers)
        .create()?;
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

/// A record Kafka did not acknowledge.
#[derive(Debug, thiserror::Error)]
#[error("kafka did not acknowledge the write to {topic}: {source}")]
pub struct ProduceError {
    pub topic: String,
    #[source]
    pub source: KafkaError,
}

/// Where an acknowledged record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub partition: i32,
    pub offset: i64,
}

/// The idempotent producer (`enable.idempotence=true`, `acks=all`). Cheap to clone.
#[derive(Clone)]
pub struct Producer {
    inner: FutureProducer,
    metrics: KafkaMetrics,
    timeout: Duration,
}

impl Producer {
    pub fn new(config: &PlatformConfig, metrics: KafkaMetrics) -> Result<Self, KafkaError> {
        let inner: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &config.kafka_brokers)
            .set("client.id", format!("newsroom-{}", config.service))
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // Batching: a few ms of linger lets bursts share requests; lz4 is cheap on CPU.
            .set("linger.ms", "5")
            .set("compression.type", "lz4")
            // Fail a write after the delivery timeout (5 s by default) instead of hanging a
            // caller while the broker is away; retries inside it are librdkafka's.
            .set(
                "message.timeout.ms",
                config.delivery_timeout.as_millis().to_string(),
            )
            .create()?;
        Ok(Producer {
            inner,
            metrics,
            timeout: config.delivery_timeout,
        })
    }

    /// Writes one record and waits for Kafka's acknowledgement.
    pub async fn send(
        &self,
        topic: &str,
        key: &str,
        payload: &[u8],
    ) -> Result<Delivered, ProduceError> {
        self.send_with_headers(topic, key, Some(payload), OwnedHeaders::new())
            .await
    }

    /// Writes a tombstone (null value) for `key` on a compacted topic.
    pub async fn send_tombstone(&self, topic: &str, key: &str) -> Result<Delivered, ProduceError> {
        self.send_with_headers(topic, key, None, OwnedHeaders::new())
            .await
    }

    /// Writes one record with extra headers; the trace context is added to them.
    pub async fn send_with_headers(
        &self,
        topic: &str,
        key: &str,
        payload: Option<&[u8]>,
        headers: OwnedHeaders,
    ) -> Result<Delivered, ProduceError> {
        let span = tracing::info_span!(
            "send",
            otel.name = %format!("send {topic}"),
            otel.kind = "producer",
            messaging.system = "kafka",
            messaging.operation.type = "send",
            messaging.destination.name = %topic,
            messaging.kafka.message.key = %key,
            messaging.destination.partition.id = tracing::field::Empty,
            messaging.kafka.offset = tracing::field::Empty,
        );
        let mut headers = HeaderInjector(headers);
        let cx = span.context();
        opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut headers));
        let mut record = FutureRecord::to(topic).key(key).headers(headers.0);
        if let Some(p) = payload {
            record = record.payload(p);
        }
        let label = TopicLabel {
            topic: topic.to_owned(),
        };
        let result = self
            .inner
            // Waiting for queue space counts against the same budget.
            .send(record, Timeout::After(self.timeout))
            .instrument(span.clone())
            .await;
        match result {
            Ok(d) => {
                self.metrics.produced.get_or_create(&label).inc();
                // The topic's error series exists from its first write, at 0: a dashboard
                // shows "no errors" rather than "no data", and rate() sees the first one.
                let _ = self.metrics.produce_errors.get_or_create(&label);
                span.record("messaging.destination.partition.id", d.partition);
                span.record("messaging.kafka.offset", d.offset);
                Ok(Delivered {
                    partition: d.partition,
                    offset: d.offset,
                })
            }
            Err((e, _)) => {
                self.metrics.produce_errors.get_or_create(&label).inc();
                Err(ProduceError {
                    topic: topic.to_owned(),
                    source: e,
                })
            }
        }
    }

    /// Waits until every queued record was delivered (on shutdown).
    pub fn flush(&self, timeout: Duration) {
        use rdkafka::producer::Producer as _;
        if let Err(e) = self.inner.flush(Timeout::After(timeout)) {
            tracing::warn!(error = %e, "producer flush incomplete");
        }
    }
}

struct HeaderInjector(OwnedHeaders);

impl Injector for HeaderInjector {
    fn set(&mut self, key: &str, value: String) {
        let headers = std::mem::take(&mut self.0);
        self.0 = headers.insert(Header {
            key,
            value: Some(value.as_bytes()),
        });
    }
}

/// A consumed record, detached from the consumer.
#[derive(Debug, Clone)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    /// `None` for a tombstone.
    pub payload: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Record {
    /// The key as UTF-8 (lossy), empty when absent.
    pub fn key_str(&self) -> String {
        self.key
            .as_deref()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }
}

impl Extractor for Record {
    fn get(&self, key: &str) -> Option<&str> {
        self.header(key).and_then(|v| std::str::from_utf8(v).ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.headers.iter().map(|(k, _)| k.as_str()).collect()
    }
}

/// Why a handler did not handle a record.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The record can never be handled (cannot be decoded, invalid): dead-letter it at once.
    #[error("{0}")]
    Poison(String),
    /// A dependency failed (Redis, Kafka): retry with backoff, dead-letter after the limit.
    #[error("{0}")]
    Retryable(String),
}

/// What a consumer does with each record. Must be idempotent: a record can come twice.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, record: &Record) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// How a consumer loop runs.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// Full topic names to subscribe to.
    pub topics: Vec<String>,
    pub group_id: String,
    /// Attempts for a retryable failure before the record is dead-lettered.
    pub max_attempts: u32,
    /// First retry delay; doubles each attempt.
    pub retry_backoff: Duration,
    /// How often librdkafka reports statistics, from which the consumer-lag gauge is set.
    pub statistics_interval: Duration,
}

impl ConsumerSettings {
    pub fn new(config: &PlatformConfig, topics: &[&str]) -> Self {
        ConsumerSettings {
            topics: topics.iter().map(|t| config.topic(t)).collect(),
            group_id: config.consumer_group.clone(),
            max_attempts: 5,
            retry_backoff: Duration::from_millis(200),
            statistics_interval: Duration::from_secs(5),
        }
    }
}

/// The consumer's context: commits stored offsets when partitions are taken away, so the next
/// owner starts exactly after the last handled record; and turns librdkafka's statistics into
/// the consumer-lag gauge.
struct GroupContext {
    group: String,
    metrics: KafkaMetrics,
}

impl GroupContext {
    fn labels(&self, topic: &str, partition: i32) -> PartitionLabels {
        PartitionLabels {
            topic: topic.to_owned(),
            partition: partition.to_string(),
            group: self.group.clone(),
        }
    }
}

impl ClientContext for GroupContext {
    /// Called every `statistics.interval.ms`, from the loop's own `recv` (librdkafka serves
    /// its events on the consumer queue): a loop stuck inside one record keeps its last value,
    /// which `newsroom_kafka_handler_duration_seconds` then shows. `consumer_lag` is the
    /// partition's end (high watermark) minus the group's committed offset; -1 when unknown
    /// (not assigned here, or nothing committed yet), and then the series is dropped rather
    /// than left stale.
    fn stats(&self, statistics: rdkafka::Statistics) {
        for (name, topic) in &statistics.topics {
            for (id, p) in &topic.partitions {
                // -1 is librdkafka's internal "unassigned" partition.
                if *id < 0 {
                    continue;
                }
                let labels = self.labels(name, *id);
                if p.consumer_lag >= 0 {
                    self.metrics
                        .consumer_lag
                        .get_or_create(&labels)
                        .set(p.consumer_lag);
                } else {
                    self.metrics.consumer_lag.remove(&labels);
                }
            }
        }
    }
}

impl ConsumerContext for GroupContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        // A partition another replica now owns is that replica's to report.
        if let Rebalance::Revoke(tpl) = rebalance {
            for e in tpl.elements() {
                self.metrics
                    .consumer_lag
                    .remove(&self.labels(e.topic(), e.partition()));
            }
        }
    }

    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance
            && tpl.count() > 0
            && let Err(e) = consumer.commit_consumer_state(CommitMode::Sync)
        {
            // "No offset stored" is normal when nothing was handled since the last commit.
            if !matches!(e, KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) {
                tracing::warn!(error = %e, "commit on revoke failed");
            }
        }
    }
}

/// Runs an at-least-once consumer until `shutdown`; then commits and returns.
///
/// `on_ready` is called once the subscription is in place.
pub async fn run_consumer<H: Handler>(
    config: &PlatformConfig,
    settings: ConsumerSettings,
    handler: Arc<H>,
    producer: Producer,
    metrics: KafkaMetrics,
    shutdown: Shutdown,
) -> Result<(), KafkaError> {
    let consumer: StreamConsumer<GroupContext> = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka_brokers)
        .set("group.id", &settings.group_id)
        .set("client.id", format!("newsroom-{}", config.service))
        // Offsets are stored by us after handling, and committed by the client in the
        // background (every 1 s), on revoke and on shutdown.
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "30000")
        // Partitions added while running (a major event) are picked up within 10 s.
        .set("topic.metadata.refresh.interval.ms", "10000")
        .set(
            "statistics.interval.ms",
            settings.statistics_interval.as_millis().to_string(),
        )
        .create_with_context(GroupContext {
            group: settings.group_id.clone(),
            metrics: metrics.clone(),
        })?;
    let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    tracing::info!(topics = ?settings.topics, group = %settings.group_id, "consumer started");

    loop {
        let message = tokio::select! {
            // Shutdown first: once asked to stop we take no new record.
            biased;
            _ = shutdown.requested() => break,
            m = consumer.recv() => m,
        };
        let record = match message {
            Ok(m) => Record {
                topic: m.topic().to_owned(),
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                payload: m.payload().map(<[u8]>::to_vec),
                headers: m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            Err(e) => {
                tracing::warn!(error = %e, "consumer error");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };

        let handled = handle_one(
            &record, &settings, &*handler, &producer, &metrics, &shutdown,
        )
        .await;
        if handled {
            // Only now is the record done: store its offset for the next commit.
            if let Err(e) = consumer.store_offset(&record.topic, record.partition, record.offset) {
                tracing::warn!(error = %e, topic = %record.topic, "store_offset failed");
            }
        } else {
            // Shutdown interrupted a retry: leave the offset, the record comes back on restart.
            break;
        }
    }

    // Commit what was handled so a restart resumes exactly after it.
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => tracing::info!(group = %settings.group_id, "consumer stopped, offsets committed"),
        Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(e) => tracing::warn!(error = %e, "final commit failed"),
    }
    consumer.unsubscribe();
    Ok(())
}

/// Runs [`run_consumer`] as a drained worker of `shutdown`. If the loop fails (the consumer
/// cannot be created or subscribed), the whole service shuts down rather than run half-deaf.
pub fn spawn_consumer<H: Handler>(
    platform: &PlatformConfig,
    settings: ConsumerSettings,
    handler: Arc<H>,
    producer: &Producer,
    metrics: &KafkaMetrics,
    shutdown: &Shutdown,
) {
    let (platform, producer, metrics, shutdown) = (
        platform.clone(),
        producer.clone(),
        metrics.clone(),
        shutdown.clone(),
    );
    shutdown.clone().spawn(async move {
        let group = settings.group_id.clone();
        if let Err(e) = run_consumer(
            &platform,
            settings,
            handler,
            producer,
            metrics,
            shutdown.clone(),
        )
        .await
        {
            tracing::error!(error = %e, %group, "consumer failed; shutting down");
            shutdown.trigger();
        }
    });
}

/// Handles one record with retries and dead-lettering. Returns false only when shutdown
/// interrupted it before the record was done.
async fn handle_one<H: Handler>(
    record: &Record,
    settings: &ConsumerSettings,
    handler: &H,
    producer: &Producer,
    metrics: &KafkaMetrics,
    shutdown: &Shutdown,
) -> bool {
    let label = TopicLabel {
        topic: record.topic.clone(),
    };
    // The consumer span continues the producer's trace as its child, so one story version is
    // one trace from SubmitStory to the last push (see the README's tracing section).
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(record));
    let span = tracing::info_span!(
        "process",
        otel.name = %format!("process {}", record.topic),
        otel.kind = "consumer",
        messaging.system = "kafka",
        messaging.operation.type = "process",
        messaging.destination.name = %record.topic,
        messaging.destination.partition.id = record.partition,
        messaging.kafka.offset = record.offset,
        messaging.kafka.message.key = %record.key_str(),
        messaging.consumer.group.name = %settings.group_id,
    );
    let _ = span.set_parent(parent);

    let started = Instant::now();
    let mut attempt = 0u32;
    let mut backoff = settings.retry_backoff;
    let error = loop {
        attempt += 1;
        match handler.handle(record).instrument(span.clone()).await {
            Ok(()) => {
                metrics.consumed.get_or_create(&label).inc();
                metrics
                    .handler_seconds
                    .get_or_create(&label)
                    .observe(started.elapsed().as_secs_f64());
                return true;
            }
            Err(HandlerError::Poison(reason)) => break reason,
            Err(HandlerError::Retryable(reason)) if attempt >= settings.max_attempts => {
                break format!("{reason} (after {attempt} attempts)");
            }
            Err(HandlerError::Retryable(reason)) => {
                span.in_scope(|| tracing::warn!(%reason, attempt, "handler failed, retrying"));
                tokio::select! {
                    _ = shutdown.requested() => return false,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    };

    // Dead-letter: keep retrying the DLQ write itself until it lands or we shut down.
    let dlq = format!("{}.dlq", record.topic);
    let mut headers = OwnedHeaders::new();
    for (k, v) in &record.headers {
        headers = headers.insert(Header {
            key: k,
            value: Some(v),
        });
    }
    let partition = record.partition.to_string();
    let offset = record.offset.to_string();
    let attempts = attempt.to_string();
    for (k, v) in [
        (dlq_headers::TOPIC, record.topic.as_str()),
        (dlq_headers::PARTITION, &partition),
        (dlq_headers::OFFSET, &offset),
        (dlq_headers::ERROR, &error),
        (dlq_headers::ATTEMPTS, &attempts),
    ] {
        headers = headers.insert(Header {
            key: k,
            value: Some(v.as_bytes()),
        });
    }
    span.in_scope(|| {
        tracing::error!(
            topic = %record.topic,
            partition = record.partition,
            offset = record.offset,
            %error,
            dlq = %dlq,
            "record dead-lettered"
        );
    });
    loop {
        match producer
            .send_with_headers(
                &dlq,
                &record.key_str(),
                record.payload.as_deref(),
                headers.clone(),
            )
            .instrument(span.clone())
            .await
        {
            Ok(_) => {
                metrics.dead_lettered.get_or_create(&label).inc();
                return true;
            }
            Err(e) => {
                tracing::error!(error = %e, "dead-letter write failed, retrying");
                tokio::select! {
                    _ = shutdown.requested() => return false,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
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
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka_brokers)
        .set("group.id", format!("{}-replay", config.consumer_group))
        .set("enable.auto.commit", "false")
        .create()?;
    // Partition ids only: librdkafka's metadata cannot be held across an await.
    let partitions: Vec<i32> = retry_briefly(|| {
        consumer
            .fetch_metadata(Some(topic), Timeout::After(Duration::from_secs(10)))
            .map(|m| {
                m.topics()
                    .first()
                    .map(|t| t.partitions().iter().map(|p| p.id()).collect())
                    .unwrap_or_default()
            })
    })
    .await?;
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
        let record = Record {
            topic: m.topic().to_owned(),
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            payload: m.payload().map(<[u8]>::to_vec),
            headers: Vec::new(),
        };
        drop(m);
        apply(record).await;
        n += 1;
    }
    Ok(n)
}

/// Retries a metadata call for up to ten seconds: a broker that just (re)started answers
/// NotLeaderForPartition until its partitions have leaders.
async fn retry_briefly<T>(
    mut call: impl FnMut() -> Result<T, KafkaError>,
) -> Result<T, KafkaError> {
    let mut attempt = 0;
    loop {
        match call() {
            Ok(v) => return Ok(v),
            Err(_) if attempt < 50 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The latest value for `key` in a compacted topic, found by reading the key's partition
/// (librdkafka's default partitioner: CRC32 of the key modulo the partition count). The record
/// of truth behind a cache miss: slow, and only for misses.
pub async fn latest_for_key(
    config: &PlatformConfig,
    topic: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, KafkaError> {
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka_brokers)
        .set("group.id", format!("{}-lookup", config.consumer_group))
        .set("enable.auto.commit", "false")
        .create()?;
    // A topic created a moment ago (or a broker just restarted) answers NotLeaderForPartition
    // until its partitions have leaders: retried briefly rather than failing the lookup.
    let partitions = retry_briefly(|| {
        consumer
            .fetch_metadata(Some(topic), Timeout::After(Duration::from_secs(10)))
            .map(|m| m.topics().first().map_or(0, |t| t.partitions().len()) as u32)
    })
    .await?;
    if partitions == 0 {
        return Ok(None);
    }
    let partition = (crc32fast::hash(key.as_bytes()) % partitions) as i32;
    let (low, high) = retry_briefly(|| {
        consumer.fetch_watermarks(topic, partition, Timeout::After(Duration::from_secs(10)))
    })
    .await?;
    if high <= low {
        return Ok(None);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Beginning)?;
    consumer.assign(&tpl)?;
    let mut latest = None;
    loop {
        let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .map_err(|_| KafkaError::MessageConsumption(RDKafkaErrorCode::RequestTimedOut))??;
        if m.key() == Some(key.as_bytes()) {
            latest = m.payload().map(<[u8]>::to_vec);
        }
        if m.offset() + 1 >= high {
            return Ok(latest);
        }
    }
}
