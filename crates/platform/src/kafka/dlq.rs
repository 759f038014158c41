//! The dead-letter queue: where a record that can never be handled goes, whole.
//!
//! A record the handler rejects as poison, or that still fails after bounded retries, is written
//! to `<topic>.dlq` with its original key, value and headers, plus headers naming the source
//! topic, partition, offset, the error, the attempts and whatever the handler added (enrichment
//! adds the stage that failed). The consumer then moves on: it never stops on a poison record
//! and never drops one silently.
//!
//! One exception to "whole": a record too large for the DLQ (the original was near the
//! broker's limit, and the DLQ headers push it over) would be refused for ever and stop its
//! partition. It is dead-lettered without its value, with `dlq.value.dropped` saying why and
//! how large it was; the source topic, partition and offset say where to read it while the
//! source topic retains it.

use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use tracing::Instrument as _;

use super::handler::HandlerError;
use super::producer::Producer;
use super::record::Record;
use crate::metrics::{KafkaMetrics, TopicLabel};

/// Header names on dead-lettered records.
pub mod dlq_headers {
    pub const TOPIC: &str = "dlq.source.topic";
    pub const PARTITION: &str = "dlq.source.partition";
    pub const OFFSET: &str = "dlq.source.offset";
    pub const ERROR: &str = "dlq.error";
    pub const ATTEMPTS: &str = "dlq.attempts";
    /// Set when the value was left out: why, and its size in bytes.
    pub const VALUE_DROPPED: &str = "dlq.value.dropped";
}

/// Whether the broker or client will refuse this write whatever the retries: too large.
fn refused_for_size(error: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::error::RDKafkaErrorCode as C;
    matches!(
        error.rdkafka_error_code(),
        Some(C::MessageSizeTooLarge | C::MessageBatchTooLarge | C::InvalidRecord)
    )
}

/// The dead-letter topic of `topic`.
pub fn dlq_topic(topic: &str) -> String {
    format!("{topic}.dlq")
}

/// The headers of `record` dead-lettered for `error` after `attempts` attempts: the record's
/// own, then the platform's, then the handler's (which may name the attempts themselves).
fn headers(record: &Record, error: &HandlerError, attempts: u32) -> OwnedHeaders {
    let mut headers = OwnedHeaders::new();
    for (k, v) in &record.headers {
        headers = headers.insert(Header {
            key: k,
            value: Some(v),
        });
    }
    let extra = error.dlq_headers();
    let partition = record.partition.to_string();
    let offset = record.offset.to_string();
    let attempts = attempts.to_string();
    let reason = error.to_string();
    let platform = [
        (dlq_headers::TOPIC, record.topic.as_str()),
        (dlq_headers::PARTITION, &partition),
        (dlq_headers::OFFSET, &offset),
        (dlq_headers::ERROR, &reason),
        (dlq_headers::ATTEMPTS, &attempts),
    ];
    for (k, v) in platform
        .into_iter()
        .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
        .chain(extra.iter().map(|(k, v)| (*k, v.as_str())))
    {
        headers = headers.insert(Header {
            key: k,
            value: Some(v.as_bytes()),
        });
    }
    headers
}

/// Writes `record` to its DLQ, retrying the write every second until it lands or `stop`
/// resolves. Returns false only when stopped first (the record then comes back on restart).
pub(super) async fn dead_letter(
    producer: &Producer,
    metrics: &KafkaMetrics,
    record: &Record,
    error: &HandlerError,
    attempts: u32,
    stop: impl std::future::Future<Output = ()>,
) -> bool {
    let dlq = dlq_topic(&record.topic);
    let headers = headers(record, error, attempts);
    tracing::error!(
        topic = %record.topic,
        partition = record.partition,
        offset = record.offset,
        error = %error,
        dlq = %dlq,
        "record dead-lettered"
    );
    tokio::pin!(stop);
    let mut headers = headers;
    let mut value = record.payload.as_deref();
    loop {
        match producer
            .send_with_headers(&dlq, &record.key_str(), value, headers.clone())
            .in_current_span()
            .await
        {
            Ok(_) => {
                metrics
                    .dead_lettered
                    .get_or_create(&TopicLabel {
                        topic: record.topic.clone(),
                    })
                    .inc();
                return true;
            }
            Err(e) if value.is_some() && refused_for_size(&e.source) => {
                let size = value.map_or(0, <[u8]>::len);
                tracing::error!(error = %e, size, "record too large for the DLQ: dead-lettering it without its value");
                let why = format!("{}: {size} bytes", e.source);
                headers = headers.insert(Header {
                    key: dlq_headers::VALUE_DROPPED,
                    value: Some(why.as_bytes()),
                });
                value = None;
            }
            Err(e) => {
                tracing::error!(error = %e, "dead-letter write failed, retrying");
                tokio::select! {
                    _ = &mut stop => return false,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}
