//! The idempotent producer (`enable.idempotence=true`, `acks=all`).
//!
//! [`Producer::send`] resolves only once Kafka acknowledged the record, inside a producer span
//! whose context travels in the record headers, so the consumer on the other side continues the
//! same trace.

use std::time::Duration;

use opentelemetry::propagation::Injector;
use rdkafka::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::client::service_client;
use super::health::{self, ErrorLog};
use crate::config::PlatformConfig;
use crate::metrics::{KafkaMetrics, TopicLabel};
use crate::readiness::Check;

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
    inner: FutureProducer<ProducerHealth>,
    metrics: KafkaMetrics,
    timeout: Duration,
    health: Check,
}

impl Producer {
    pub fn new(config: &PlatformConfig, metrics: KafkaMetrics) -> Result<Self, KafkaError> {
        // Healthy from the start: a service creates its producer after `ensure_topics` reached
        // the brokers. It fails when librdkafka says all brokers are down, and passes again
        // with the next statistics that show one up.
        let health = Check::new("kafka producer");
        health.set(true);
        let inner: FutureProducer<ProducerHealth> = service_client(config)
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
            // Statistics every 5 s tell whether a broker answers again (readiness).
            .set("statistics.interval.ms", "5000")
            .create_with_context(ProducerHealth(
                health.clone(),
                ErrorLog::new("kafka producer error"),
            ))?;
        Ok(Producer {
            inner,
            metrics,
            timeout: config.delivery_timeout,
            health,
        })
    }

    /// Whether a broker answers this producer (readiness registers it).
    pub fn health(&self) -> Check {
        self.health.clone()
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

/// The producer's context: its health from librdkafka's errors and statistics.
struct ProducerHealth(Check, ErrorLog);

impl ClientContext for ProducerHealth {
    fn stats(&self, statistics: rdkafka::Statistics) {
        if health::any_broker_up(&statistics) {
            self.0.set(true);
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        health::on_error(&self.0, &self.1, &error, reason);
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
