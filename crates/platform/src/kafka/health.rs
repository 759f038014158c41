//! Kafka clients' health, from librdkafka's own reports: a client is healthy while one broker
//! answers. librdkafka says "all brokers down" through its error callback, and lists each
//! broker's state in its periodic statistics; the first clears the client's [`Check`], the
//! second sets it again once a broker is `UP`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// Marks `check` failing on "all brokers down", and logs the error through `log`.
pub(super) fn on_error(check: &Check, log: &ErrorLog, error: &KafkaError, reason: &str) {
    if all_brokers_down(error) {
        check.set(false);
    }
    log.warn(error, reason);
}

/// One line per [`ErrorLog::WINDOW`] for an error that repeats: while a broker is down, a
/// client reports a failure on every reconnect and a consumer on every poll (5 a second per
/// partition), and an on-call reading the log wants the first one and a count, not thousands.
#[derive(Debug)]
pub struct ErrorLog {
    what: &'static str,
    /// When the window began and how many errors it has kept quiet.
    window: Mutex<Option<(Instant, u64)>>,
}

impl ErrorLog {
    pub const WINDOW: Duration = Duration::from_secs(10);

    /// A log for the errors of `what` ("kafka client error", "stories.held consumer error").
    pub const fn new(what: &'static str) -> Self {
        ErrorLog {
            what,
            window: Mutex::new(None),
        }
    }

    /// Logs `error` at warn level if no error was logged in the last [`Self::WINDOW`], with
    /// how many were kept quiet since; counts it otherwise. Returns whether it logged.
    pub fn warn(&self, error: &dyn std::fmt::Display, reason: &str) -> bool {
        let quiet = {
            let mut window = self.window.lock().unwrap_or_else(|p| p.into_inner());
            match &mut *window {
                Some((since, quiet)) if since.elapsed() < Self::WINDOW => {
                    *quiet += 1;
                    return false;
                }
                w => w.replace((Instant::now(), 0)).map_or(0, |(_, q)| q),
            }
        };
        tracing::warn!(%error, %reason, repeated = quiet, "{}", self.what);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_error_is_logged_once_per_window_with_its_count() {
        let log = ErrorLog::new("test error");
        assert!(log.warn(&"broker down", ""), "the first is logged");
        for _ in 0..50 {
            assert!(
                !log.warn(&"broker down", ""),
                "repeats in the window are counted"
            );
        }
        // The window over: the next is logged (with 50 kept quiet).
        *log.window.lock().unwrap() = Some((
            Instant::now() - ErrorLog::WINDOW - Duration::from_millis(1),
            50,
        ));
        assert!(log.warn(&"broker down", ""));
        assert_eq!(log.window.lock().unwrap().map(|(_, q)| q), Some(0));
    }
}
