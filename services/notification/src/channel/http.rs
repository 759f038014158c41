//! What the HTTP channels share: the retry loop.
//!
//! Retries on 429, 5xx and connection errors with exponential backoff and jitter, honouring a
//! provider's `Retry-After` (seconds or an HTTP date) up to [`RetryPolicy::max_retry_after`]:
//! beyond it the send fails rather than hold a breaking-news fan-out for minutes. A channel can
//! also ask for one retry with fresh credentials (an expired APNs or FCM token).

use std::future::Future;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::SendOutcome;

/// How a channel retries.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles each time (plus up to 25% jitter).
    pub first_backoff: Duration,
    /// Longest `Retry-After` honoured.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            first_backoff: Duration::from_millis(200),
            max_retry_after: Duration::from_secs(10),
        }
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Delivered,
    /// The device is gone for good.
    Gone(String),
    /// Worth another try (429, 5xx, connection error), after `Retry-After` when given.
    Retry(String, Option<Duration>),
    /// The credentials expired: refresh them and try again (once).
    RefreshAuth(String),
    /// Never worth another try (400, 403, 413 …).
    Fail(String),
}

/// Runs `attempt` until it delivers, fails for good or runs out of attempts. `attempt` gets
/// `true` when it should refresh its credentials first.
///
/// A loop of its own rather than a `backon` schedule: the wait before the next attempt is the
/// provider's `Retry-After` when it sends one (or none at all before a credential refresh),
/// which a precomputed backoff cannot follow.
pub async fn with_retries<F, Fut>(policy: &RetryPolicy, mut attempt: F) -> SendOutcome
where
    F: FnMut(bool) -> Fut,
    Fut: Future<Output = Attempt>,
{
    let mut backoff = policy.first_backoff;
    let mut refresh = false;
    let mut refreshed = false;
    let mut last = String::new();
    for n in 1..=policy.max_attempts {
        let wait = match attempt(refresh).await {
            Attempt::Delivered => return SendOutcome::Delivered,
            Attempt::Gone(why) => return SendOutcome::Gone(why),
            Attempt::Fail(why) => return SendOutcome::Failed(why),
            Attempt::RefreshAuth(why) if !refreshed => {
                refreshed = true;
                refresh = true;
                last = why;
                Duration::ZERO
            }
            Attempt::RefreshAuth(why) => return SendOutcome::Failed(why),
            Attempt::Retry(why, Some(after)) if after > policy.max_retry_after => {
                return SendOutcome::Failed(format!(
                    "{why}; Retry-After {}s is longer than the {}s this alert may wait",
                    after.as_secs(),
                    policy.max_retry_after.as_secs()
                ));
            }
            Attempt::Retry(why, after) => {
                refresh = false;
                last = why;
                after.unwrap_or_else(|| jitter(backoff))
            }
        };
        if n < policy.max_attempts {
            tokio::time::sleep(wait).await;
            backoff *= 2;
        }
    }
    SendOutcome::Failed(format!("{last} (after {} attempts)", policy.max_attempts))
}

/// `d` plus up to 25%, so retries from many sends do not arrive in lockstep.
fn jitter(d: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    d + d.mul_f64(f64::from(nanos % 1000) / 4000.0)
}

/// The `Retry-After` of a response: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let now = chrono::Utc::now();
    Some(
        (at.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// The usual reading of an HTTP answer: 2xx delivered, 404/410 gone, 429/5xx retry.
pub fn classify(status: reqwest::StatusCode, headers: &HeaderMap) -> Attempt {
    use reqwest::StatusCode as S;
    match status {
        s if s.is_success() => Attempt::Delivered,
        S::NOT_FOUND | S::GONE => Attempt::Gone(format!("HTTP {status}")),
        S::TOO_MANY_REQUESTS => Attempt::Retry(format!("HTTP {status}"), retry_after(headers)),
        s if s.is_server_error() => Attempt::Retry(format!("HTTP {status}"), retry_after(headers)),
        _ => Attempt::Fail(format!("HTTP {status}")),
    }
}

/// A connection or timeout error: retried. The message leaves out the URL, which for Web Push
/// is the subscription itself.
pub fn transport_error(e: reqwest::Error) -> Attempt {
    let e = e.without_url();
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    Attempt::Retry(format!("{what}: {e}"), None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn fast() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            first_backoff: Duration::from_millis(1),
            max_retry_after: Duration::from_secs(2),
        }
    }

    #[tokio::test]
    async fn a_transient_error_is_retried_until_it_delivers() {
        let calls = AtomicU32::new(0);
        let outcome = with_retries(&fast(), |_| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    Attempt::Retry("HTTP 503".into(), None)
                } else {
                    Attempt::Delivered
                }
            }
        })
        .await;
        assert_eq!(outcome, SendOutcome::Delivered);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn attempts_are_bounded_and_a_long_retry_after_fails_at_once() {
        let calls = AtomicU32::new(0);
        let outcome = with_retries(&fast(), |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Attempt::Retry("HTTP 500".into(), None) }
        })
        .await;
        assert!(matches!(outcome, SendOutcome::Failed(ref m) if m.contains("3 attempts")));
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        let calls = AtomicU32::new(0);
        let outcome = with_retries(&fast(), |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Attempt::Retry("HTTP 429".into(), Some(Duration::from_secs(600))) }
        })
        .await;
        assert!(matches!(outcome, SendOutcome::Failed(ref m) if m.contains("Retry-After 600s")));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn expired_credentials_are_refreshed_once() {
        let refreshes = AtomicU32::new(0);
        let outcome = with_retries(&fast(), |refresh| {
            if refresh {
                refreshes.fetch_add(1, Ordering::SeqCst);
            }
            async move {
                if refresh {
                    Attempt::Delivered
                } else {
                    Attempt::RefreshAuth("ExpiredProviderToken".into())
                }
            }
        })
        .await;
        assert_eq!(outcome, SendOutcome::Delivered);
        assert_eq!(refreshes.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let later = chrono::Utc::now() + chrono::Duration::seconds(30);
        h.insert(
            RETRY_AFTER,
            later
                .format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string()
                .parse()
                .unwrap(),
        );
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
    }
}
