//! Delivery receipts: one `DeliveryReceipt` per device and alert on `notifications.receipts`.
//!
//! A fan-out of a million devices publishes a million receipts, so they do not go through the
//! platform producer's path for records that matter one by one (a producer span and an
//! awaited acknowledgement each): they are handed to a librdkafka producer of their own
//! (idempotent, `acks=all`, batched and lz4-compressed like the platform's) that delivers in
//! the background. A full local queue makes the fan-out wait, so a slow broker slows the
//! fan-out rather than dropping receipts; a receipt Kafka finally refuses is counted and
//! logged. The queue is flushed on shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use newsroom_platform::PlatformConfig;
use newsroom_platform::kafka::named_client;
use newsroom_platform::kafka::rdkafka::ClientContext;
use newsroom_platform::kafka::rdkafka::error::{KafkaError, RDKafkaErrorCode};
use newsroom_platform::kafka::rdkafka::producer::{
    BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer,
};
use newsroom_platform::kafka::rdkafka::util::Timeout;
use newsroom_proto::Message as _;
use newsroom_proto::v1::DeliveryReceipt;

/// Counts what Kafka refused.
#[derive(Default)]
pub struct ReceiptContext {
    failed: AtomicU64,
}

impl ClientContext for ReceiptContext {}

impl ProducerContext for ReceiptContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            let n = self.failed.fetch_add(1, Ordering::Relaxed) + 1;
            // One line per thousand, not one per receipt, when the broker is away.
            if n % 1000 == 1 {
                tracing::warn!(error = %e, failed = n, "delivery receipts not published");
            }
        }
    }
}

/// The receipts publisher. Cheap to clone.
#[derive(Clone)]
pub struct Receipts {
    producer: Arc<ThreadedProducer<ReceiptContext>>,
    topic: String,
}

impl Receipts {
    pub fn new(platform: &PlatformConfig, topic: String) -> Result<Self, KafkaError> {
        // The platform's client settings (brokers, and security when there is any); a
        // `client.id` of its own, so broker logs and quotas tell receipts from the rest.
        let producer = named_client(platform, &format!("newsroom-{}-receipts", platform.service))
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "20")
            .set("compression.type", "lz4")
            .set("message.timeout.ms", "30000")
            .create_with_context(ReceiptContext::default())?;
        Ok(Receipts {
            producer: Arc::new(producer),
            topic,
        })
    }

    /// Queues a receipt, waiting while the local queue is full.
    pub async fn publish(&self, receipt: &DeliveryReceipt) {
        let payload = receipt.encode_to_vec();
        loop {
            let record = BaseRecord::to(&self.topic)
                .key(&receipt.device_id)
                .payload(&payload);
            match self.producer.send(record) {
                Ok(()) => return,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => {
                    tracing::warn!(error = %e, "delivery receipt not queued");
                    return;
                }
            }
        }
    }

    /// Receipts Kafka refused since start.
    pub fn failed(&self) -> u64 {
        self.producer.context().failed.load(Ordering::Relaxed)
    }

    /// Waits until every queued receipt was delivered (on shutdown).
    pub fn flush(&self, timeout: Duration) {
        if let Err(e) = self.producer.flush(Timeout::After(timeout)) {
            tracing::warn!(error = %e, "receipts flush incomplete");
        }
    }
}
