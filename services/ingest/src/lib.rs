//! Ingest: the front door of the pipeline.
//!
//! `SubmitStory` validates a story at the edge ([`story`]), gives it a stable id derived from
//! (source, guid) and a version that only moves forward ([`identity`]), writes it to
//! `stories.raw` and answers only after Kafka acknowledged the write. An identical resubmission
//! answers `DUPLICATE` and writes nothing. Every way in — gRPC, polled feeds, embargo
//! releases — goes through one [`submit::Submitter`]. Components:
//!
//! - [`config`] — the service's environment variables;
//! - [`feeds`] — the feeds file: which sources to poll;
//! - [`access`] — API keys bound to sources, per-source rate limits;
//! - [`formats`] — RSS, Atom, JSON Feed, NINJS and NewsML-G2 documents → stories;
//! - [`normalise`] — sanitised HTML, canonical URLs, BCP 47 tags, collapsed whitespace;
//! - [`story`] — validation, the content fingerprint and the embargo time;
//! - [`identity`] — story ids, versions, idempotency keys and release claims in Redis;
//! - [`submit`] — the submission core: validation → access → identity → produce;
//! - [`poller`] — configured feed sources polled with conditional GET, behind an SSRF guard;
//! - [`embargo`] — holding embargoed stories and releasing them exactly once;
//! - [`api`] — `newsroom.v1.IngestService`, a thin adapter over [`submit`];
//! - [`run`] — wiring, serving and draining.
//!
//! Dependencies point one way: `api`, `poller` and `embargo` call `submit`, which calls
//! `story`, `identity`, `access` and `formats`; `config` reads `feeds` and `access` only.

pub mod access;
pub mod api;
pub mod config;
pub mod embargo;
pub mod feeds;
/// The document formats live in their own crate (`crates/formats`), fuzzed by `just fuzz`.
pub use newsroom_formats as formats;
pub mod identity;
pub mod normalise;
pub mod poller;
pub mod story;
pub mod submit;

use newsroom_platform::kafka::topics;
use newsroom_platform::server::Listeners;
use newsroom_platform::service::{Service, ServiceError};
use newsroom_platform::shutdown::Shutdown;
use newsroom_proto::v1::ingest_service_server::IngestServiceServer;

pub use config::Config;

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error("embargo: {0}")]
    Embargo(#[from] newsroom_platform::kafka::rdkafka::error::KafkaError),
    #[error("feed poller: {0}")]
    Poller(#[from] reqwest::Error),
    #[error("rebuilding identity state: {0}")]
    Rebuild(#[from] identity::RebuildError),
}

/// Runs ingest until `shutdown` is triggered, then drains.
pub async fn run(config: Config, listeners: Listeners, shutdown: Shutdown) -> Result<(), RunError> {
    let platform = &config.platform;
    let mut service = Service::start(
        "newsroom.v1.IngestService",
        platform,
        listeners,
        shutdown,
        &[
            topics::STORIES_RAW,
            topics::STORIES_INDEX,
            topics::STORIES_HELD,
        ],
    )
    .await?;
    let mut metrics = submit::IngestMetrics::register(service.registry());
    // Keys bound to named sources name every source there is: only those are metric labels
    // (with the polled feeds'); otherwise the first sources seen, capped.
    if let Some(mut sources) = config.access.keys.sources() {
        sources.extend(config.feeds.iter().map(|f| f.source.clone()));
        metrics = metrics.with_configured_sources(sources);
    }
    let poller_metrics = poller::PollerMetrics::register(service.registry());
    let producer = service.producer()?;
    let identity = identity::Identity::new(service.state_redis().await?);
    let restored =
        identity::rebuild_if_lost(platform, &identity, &platform.topic(topics::STORIES_INDEX))
            .await?;
    if restored > 0 {
        tracing::info!(
            stories = restored,
            "identity state rebuilt from stories.index"
        );
    }

    let submitter = submit::Submitter::new(
        producer,
        identity,
        config.limits.clone(),
        metrics,
        access::RateLimits::per_second(config.rate_per_source),
        config.alert_sources.clone(),
        platform.clone(),
    );
    let release = embargo::Embargo {
        config: platform.clone(),
        held_topic: platform.topic(topics::STORIES_HELD),
        submitter: submitter.clone(),
    };
    service.task("embargo release", release.run(service.shutdown().clone()));

    let api = api::IngestApi::new(submitter.clone(), config.access.clone());
    config.access.auth.log_start();
    if config.access.keys.is_empty() {
        tracing::warn!(
            "no API keys configured ({}): ingest accepts submissions from anyone",
            access::NEWSROOM_INGEST_API_KEYS
        );
    }
    if !config.feeds.is_empty() {
        tracing::info!(feeds = config.feeds.len(), "polling feed sources");
        poller::spawn_all(
            config.feeds.clone(),
            config.feeds_allow_private,
            submitter,
            poller_metrics,
            service.shutdown(),
        )?;
    }
    let routes = tonic::service::Routes::new(
        IngestServiceServer::new(api)
            .max_decoding_message_size(config.limits.max_document_bytes + 64 * 1024),
    )
    .add_service(service.dead_letters(config.access.auth.clone())?);
    service.serve(routes).await?;
    Ok(())
}
