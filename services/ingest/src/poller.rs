//! Feed sources: the configured feeds ([`crate::feeds`]), polled politely and safely.
//!
//! Each source (URL, poll interval, source name, format hint, how long it may stay quiet) gets
//! a task that fetches the feed with a conditional GET (`If-None-Match` / `If-Modified-Since`
//! from the last answer), imports the items through the [`Submitter`] (as `ImportFeed` does),
//! and on an error backs off exponentially up to ten intervals. When a source brings no new story for
//! longer than `quiet_after_secs`, it logs a warning once and the gauge
//! `newsroom_feed_quiet_seconds{source}` shows for how long.
//!
//! Server-side request forgery guard: the HTTP client resolves names through [`GuardedResolver`]
//! and refuses loopback, private, link-local, shared, unspecified, multicast and documentation
//! addresses (and literal IPs of those kinds, also on redirects) unless
//! `NEWSROOM_FEEDS_ALLOW_PRIVATE=true` (tests, intranet feeds).

use std::collections::HashMap;
use std::sync::atomic::AtomicI64;
use std::time::{Duration, Instant};

use newsroom_platform::metrics::Registry;
use newsroom_platform::shutdown::Shutdown;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use newsroom_platform::outbound::{self, check_url};

use crate::access::Principal;
use crate::feeds::FeedSource;
use crate::submit::Submitter;

/// The HTTP client of the poller, with the guard on names, literal IPs and redirects.
pub fn client(allow_private: bool) -> Result<reqwest::Client, reqwest::Error> {
    outbound::guarded(reqwest::Client::builder(), allow_private)
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 {
                attempt.error("too many redirects")
            } else if let Err(e) = check_url(attempt.url(), allow_private) {
                attempt.error(e)
            } else {
                attempt.follow()
            }
        }))
        .timeout(Duration::from_secs(30))
        .user_agent(concat!(
            "newsroom-ingest/",
            env!("CARGO_PKG_VERSION"),
            " (feed poller)"
        ))
        .build()
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    pub source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PollLabels {
    pub source: String,
    /// new, not_modified, error
    pub result: String,
}

/// The poller's metrics.
#[derive(Clone)]
pub struct PollerMetrics {
    pub polls: Family<PollLabels, Counter>,
    pub quiet_seconds: Family<SourceLabel, Gauge<i64, AtomicI64>>,
}

impl PollerMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = PollerMetrics {
            polls: Family::default(),
            quiet_seconds: Family::default(),
        };
        registry.register(
            "newsroom_feed_polls",
            "Feed polls by source and result (new, not_modified, error)",
            m.polls.clone(),
        );
        registry.register(
            "newsroom_feed_quiet_seconds",
            "Seconds since a feed source last brought a new story",
            m.quiet_seconds.clone(),
        );
        m
    }
}

/// Polls every configured source until shutdown.
pub fn spawn_all(
    sources: Vec<FeedSource>,
    allow_private: bool,
    submitter: Submitter,
    metrics: PollerMetrics,
    shutdown: &Shutdown,
) -> Result<(), reqwest::Error> {
    let client = client(allow_private)?;
    for source in sources {
        let (client, submitter, metrics, stop) = (
            client.clone(),
            submitter.clone(),
            metrics.clone(),
            shutdown.clone(),
        );
        shutdown.spawn(async move {
            poll_forever(source, client, allow_private, submitter, metrics, stop).await
        });
    }
    Ok(())
}

async fn poll_forever(
    feed: FeedSource,
    client: reqwest::Client,
    allow_private: bool,
    submitter: Submitter,
    metrics: PollerMetrics,
    shutdown: Shutdown,
) {
    let interval = Duration::from_secs(feed.interval_secs);
    let label = SourceLabel {
        source: feed.source.clone(),
    };
    // The source's series from the start, at 0.
    for result in ["new", "not_modified", "error"] {
        let _ = metrics.polls.get_or_create(&PollLabels {
            source: feed.source.clone(),
            result: result.to_owned(),
        });
    }
    let _ = metrics.quiet_seconds.get_or_create(&label);
    let mut validators: HashMap<&'static str, String> = HashMap::new();
    let mut last_new = Instant::now();
    let mut warned_quiet = false;
    let mut failures = 0u32;
    loop {
        let result = poll_once(&feed, &client, allow_private, &submitter, &mut validators).await;
        let outcome = match &result {
            Ok(0) => "not_modified",
            Ok(_) => "new",
            Err(_) => "error",
        };
        metrics
            .polls
            .get_or_create(&PollLabels {
                source: feed.source.clone(),
                result: outcome.to_owned(),
            })
            .inc();
        let wait = match result {
            Ok(new) => {
                failures = 0;
                if new > 0 {
                    last_new = Instant::now();
                    warned_quiet = false;
                    tracing::info!(source = %feed.source, new, "feed polled");
                }
                interval
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(source = %feed.source, url = %feed.url, error = %e, failures, "feed poll failed");
                interval * 2u32.saturating_pow(failures.min(10)).min(10)
            }
        };
        let quiet = last_new.elapsed();
        metrics
            .quiet_seconds
            .get_or_create(&label)
            .set(quiet.as_secs() as i64);
        if quiet.as_secs() >= feed.quiet_after_secs && !warned_quiet {
            warned_quiet = true;
            tracing::warn!(source = %feed.source, quiet_secs = quiet.as_secs(), "feed source has gone quiet");
        }
        tokio::select! {
            _ = shutdown.requested() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// One conditional GET and import; returns how many new story versions it brought.
async fn poll_once(
    feed: &FeedSource,
    client: &reqwest::Client,
    allow_private: bool,
    submitter: &Submitter,
    validators: &mut HashMap<&'static str, String>,
) -> Result<usize, String> {
    let url = url::Url::parse(&feed.url).map_err(|e| e.to_string())?;
    check_url(&url, allow_private)?;
    let mut request = client.get(url);
    if let Some(etag) = validators.get("etag") {
        request = request.header(reqwest::header::IF_NONE_MATCH, etag);
    }
    if let Some(modified) = validators.get("last-modified") {
        request = request.header(reqwest::header::IF_MODIFIED_SINCE, modified);
    }
    let response = request.send().await.map_err(|e| {
        // reqwest wraps the resolver's refusal; show the whole chain.
        let mut msg = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            source = s.source();
        }
        msg
    })?;
    if response.status() == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(0);
    }
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()));
    }
    for (name, header) in [
        ("etag", reqwest::header::ETAG),
        ("last-modified", reqwest::header::LAST_MODIFIED),
    ] {
        match response.headers().get(header).and_then(|v| v.to_str().ok()) {
            Some(v) => validators.insert(name, v.to_owned()),
            None => validators.remove(name),
        };
    }
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    let (answers, errors) = submitter
        .import_document(&Principal::AnySource, &body, &feed.format, &feed.source)
        .await
        .map_err(|e| e.to_string())?;
    for e in &errors {
        tracing::warn!(source = %feed.source, item = e.index, guid = %e.guid, field = %e.field, reason = %e.reason, "feed item refused");
    }
    Ok(answers
        .iter()
        .filter(|a| a.outcome() != newsroom_proto::v1::Outcome::Duplicate)
        .count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_internal_urls_are_refused_unless_allowed() {
        let metadata = url::Url::parse("http://169.254.169.254/latest/meta-data").unwrap();
        assert!(check_url(&metadata, false).is_err());
        assert!(check_url(&metadata, true).is_ok());
        assert!(check_url(&url::Url::parse("https://example.com/feed").unwrap(), false).is_ok());
    }

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused() {
        let client = client(false).unwrap();
        let err = client
            .get("http://localhost:9/feed")
            .send()
            .await
            .unwrap_err();
        let mut chain = err.to_string();
        let mut s = std::error::Error::source(&err);
        while let Some(e) = s {
            chain.push_str(&e.to_string());
            s = e.source();
        }
        assert!(chain.contains("internal addresses"), "{chain}");
    }
}
