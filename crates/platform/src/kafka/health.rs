//! Kafka clients' health, from librdkafka's own reports: a client is healthy while one broker
//! answers. librdkafka says "all brokers down" through its error callback, and lists each
//! broker's state in its periodic statistics; the first clears the client's [`Check`], the
//! second sets it again once a broker is `UP`.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::readiness::Check;

/// Whether librdkafka's statistics show a broker that answers.
pub(super) fn any_broker_up(statistics: &rdkafka::Statistics) -> bool {
    statistics.brokers.values().any(|b| b.state == "UP")
}

/// Whether a client error means no broker answers any more.
pub(super) fn all_brokers_down(error: &KafkaError) -> bool {
    matches!(error, KafkaError::Global(RDKafkaErrorCode::AllBrokersDown))
}

/// Marks `check` failing on "all brokers down" (and logs every client error like librdkafka's
/// default context does).
pub(super) fn on_error(check: &Check, error: &KafkaError, reason: &str) {
    if all_brokers_down(error) {
        check.set(false);
    }
    tracing::warn!(error = %error, %reason, "kafka client error");
}
