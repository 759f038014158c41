//! What a consumer runs on each record, and how it says a record failed.
//!
//! A [`Handler`] handles one record; its [`HandlerError`] says whether the record can never be
//! handled ([`Failure::Poison`]: dead-lettered at once, with the headers the handler adds) or a
//! dependency failed ([`Failure::Retryable`]: the consumer waits and retries until it is back).

use std::future::Future;

use super::record::Record;

/// Boxed error source carried by a [`HandlerError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Whether a failed record can ever succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The record can never be handled (cannot be decoded, invalid): dead-letter it at once.
    Poison,
    /// A dependency failed (Redis, Kafka): retry with backoff until it is back.
    Retryable,
}

/// Why a handler did not handle a record: the kind of failure, the reason people read (the
/// DLQ's `dlq.error` header), headers to add to the dead-lettered record, and the typed cause.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct HandlerError {
    failure: Failure,
    reason: String,
    dlq_headers: Vec<(&'static str, String)>,
    #[source]
    source: Option<BoxError>,
}

impl HandlerError {
    /// A record that can never be handled.
    pub fn poison(reason: impl Into<String>) -> Self {
        HandlerError {
            failure: Failure::Poison,
            reason: reason.into(),
            dlq_headers: Vec::new(),
            source: None,
        }
    }

    /// A dependency failed with `error`: try again later.
    pub fn retryable(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        HandlerError {
            failure: Failure::Retryable,
            reason: error.to_string(),
            dlq_headers: Vec::new(),
            source: Some(Box::new(error)),
        }
    }

    /// A dependency failed, described in words only.
    pub fn retry(reason: impl Into<String>) -> Self {
        HandlerError {
            failure: Failure::Retryable,
            reason: reason.into(),
            dlq_headers: Vec::new(),
            source: None,
        }
    }

    /// Adds `name: value` to the record's headers if it is dead-lettered (a handler's own
    /// header may also replace one of the platform's, `dlq.attempts` say).
    pub fn with_dlq_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.dlq_headers.push((name, value.into()));
        self
    }

    /// Prefixes the reason with what was being done (`redis: …`).
    pub fn context(mut self, what: &str) -> Self {
        self.reason = format!("{what}: {}", self.reason);
        self
    }

    pub fn failure(&self) -> Failure {
        self.failure
    }

    pub fn is_poison(&self) -> bool {
        self.failure == Failure::Poison
    }

    /// The same failure, its reason saying how many attempts were made.
    pub(super) fn after_attempts(mut self, attempts: u32) -> Self {
        self.reason = format!("{} (after {attempts} attempts)", self.reason);
        self
    }

    pub(super) fn dlq_headers(&self) -> &[(&'static str, String)] {
        &self.dlq_headers
    }
}

/// What a consumer does with each record. Must be idempotent: a record can come twice.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, record: &Record) -> impl Future<Output = Result<(), HandlerError>> + Send;
}
