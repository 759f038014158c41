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
pub mod formats;
pub mod identity;
pub mod normalise;
pub mod poller;
pub mod story;
pub mod submit;

use std::sync::Arc;

use newsroom_platform::kafka::{self, Producer, topics};
use newsroom_platform::metrics::{KafkaMetrics, Registry};
use newsroom_platform::redis::RedisStore;
use newsroom_platform::server::{self, Listeners, Readiness};
use newsroom_platform::shutdown::Shutdown;
use newsroom_proto::v1::ingest_service_server::IngestServiceServer;

pub use config::Config;

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("kafka: {0}")]
    Kafka(#[from] newsroom_platform::kafka::rdkafka::error::KafkaError),
    #[error("redis: {0}")]
    Redis(#[from] newsroom_platform::redis::redis::RedisError),
    #[error("feed poller: {0}")]
    Poller(#[from] reqwest::Error),
    #[error("rebuilding identity state: {0}")]
    Rebuild(#[from] identity::RebuildError),
    #[error(transparent)]
    Serve(#[from] server::ServeError),
}

/// Runs ingest until `shutdown` is triggered, then drains.
pub async fn run(config: Config, listeners: Listeners, shutdown: Shutdown) -> Result<(), RunError> {
    let platform = &config.platform;
    let mut registry = Registry::default();
    let kafka_metrics = KafkaMetrics::register(&mut registry);
    let metrics = submit::IngestMetrics::register(&mut registry);
    let poller_metrics = poller::PollerMetrics::register(&mut registry);

    kafka::ensure_topics(
        platform,
        &[
            topics::STORIES_RAW,
            topics::STORIES_INDEX,
            topics::STORIES_HELD,
        ],
    )
    .await?;
    let producer = Producer::new(platform, kafka_metrics)?;
    let redis = RedisStore::connect(&platform.redis_url, &platform.redis_prefix).await?;
    let identity = identity::Identity::new(redis);
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
        producer.clone(),
        identity,
        config.limits.clone(),
        metrics,
        access::RateLimits::per_second(config.rate_per_source),
        platform.clone(),
    );
    let release = embargo::Embargo {
        config: platform.clone(),
        held_topic: platform.topic(topics::STORIES_HELD),
        submitter: submitter.clone(),
    };
    shutdown.spawn({
        let shutdown = shutdown.clone();
        async move {
            if let Err(e) = release.run(shutdown.clone()).await {
                tracing::error!(error = %e, "embargo release task failed; shutting down");
                shutdown.trigger();
            }
        }
    });

    let api = api::IngestApi::new(submitter.clone(), config.api_keys.clone());
    if config.api_keys.is_empty() {
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
            &shutdown,
        )?;
    }
    let routes = tonic::service::Routes::new(
        IngestServiceServer::new(api)
            .max_decoding_message_size(config.limits.max_document_bytes + 64 * 1024),
    );
    let ready = Readiness::default();
    ready.set(true);
    tracing::info!(grpc = %listeners.grpc_addr(), admin = %listeners.admin_addr(), "ingest serving");
    let served = server::serve(
        "newsroom.v1.IngestService",
        routes,
        listeners,
        Arc::new(registry),
        ready,
        shutdown.clone(),
    )
    .await;
    // In-flight calls finished with the server; make sure nothing acknowledged is left queued.
    shutdown.trigger();
    shutdown.drain(platform.drain_timeout).await;
    producer.flush(platform.drain_timeout);
    served?;
    Ok(())
}
