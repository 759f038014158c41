//! Recommendation: the reader's personal feed, served from Redis.
//!
//! It consumes `stories.enriched` into a story cache and per-topic, section, author and entity
//! indexes ([`store`]), and answers `GetFeed` from the indexes of what a reader follows
//! ([`feed`]). Follows are durable in the compacted `profiles` topic. Components:
//!
//! - [`config`] — the service's environment variables;
//! - [`store`] — the Redis layout, the only module that talks to Redis: story cache and indexes,
//!   readers, trending buckets, snapshots, the in-process caches in front;
//! - [`feed`] — candidates, scoring (pure, with its [`feed::Weights`]), diversity, reasons and
//!   snapshot pagination;
//! - [`interests`] — interactions into trending, read history and implicit interests;
//! - [`rebuild`] — the state rebuilt from Kafka when Redis lost it;
//! - [`lookup`] — `GetStory`'s cache miss, read from `stories.enriched`, bounded;
//! - [`api`] — `newsroom.v1.RecommendationService`, with its errors ([`api::ApiError`]);
//! - [`metrics`] — the feed latency histogram and story cache lookups;
//! - [`run`] — wiring, the consumer loop, serving and draining.

pub mod api;
pub mod config;
pub mod feed;
pub mod interests;
pub mod lookup;
pub mod metrics;
pub mod rebuild;
pub mod store;
pub mod taste;

use std::sync::Arc;

use newsroom_platform::kafka::{ConsumerSettings, Handler, HandlerError, Record, topics as t};
use newsroom_platform::server::Listeners;
use newsroom_platform::service::{Service, ServiceError};
use newsroom_platform::shutdown::Shutdown;
use newsroom_proto::v1::EnrichedStory;
use newsroom_proto::v1::recommendation_service_server::RecommendationServiceServer;

pub use config::Config;

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// Writes each `stories.enriched` record into the story cache and indexes.
pub struct IndexHandler {
    store: store::FeedStore,
}

impl Handler for IndexHandler {
    async fn handle(&self, record: &Record) -> Result<(), HandlerError> {
        // A tombstone on the compacted topic: nothing to index.
        let Some(story) = record.decode_or_tombstone::<EnrichedStory>()? else {
            return Ok(());
        };
        if story.story.as_ref().is_none_or(|s| s.id.is_empty()) {
            return Err(HandlerError::poison("EnrichedStory without a story id"));
        }
        let applied = self
            .store
            .apply(&story)
            .await
            .map_err(|e| HandlerError::retryable(e).context("redis"))?;
        tracing::debug!(story.id = %record.key_str(), ?applied, "story indexed");
        Ok(())
    }
}

/// Runs recommendation until `shutdown` is triggered, then drains.
pub async fn run(config: Config, listeners: Listeners, shutdown: Shutdown) -> Result<(), RunError> {
    let platform = &config.platform;
    let mut service = Service::start(
        "newsroom.v1.RecommendationService",
        platform,
        listeners,
        shutdown,
        &[
            t::STORIES_ENRICHED,
            t::STORIES_ENRICHED_DLQ,
            t::PROFILES,
            t::INTERACTIONS,
            t::INTERACTIONS_DLQ,
        ],
    )
    .await?;
    let metrics = metrics::Metrics::register(service.registry());
    let producer = service.producer()?;
    let redis = service.redis().await?;
    let store = store::FeedStore::new(redis, config.story_ttl, config.index_max_stories);

    service.consumer(
        ConsumerSettings::new(platform, &[t::STORIES_ENRICHED]),
        Arc::new(IndexHandler {
            store: store.clone(),
        }),
    )?;
    service.consumer(
        ConsumerSettings::new(platform, &[t::INTERACTIONS]).in_group(platform, "interactions"),
        Arc::new(interests::InteractionHandler {
            store: store.clone(),
        }),
    )?;
    let shutdown = service.shutdown().clone();
    service.shutdown().spawn(rebuild::keep_loaded(
        store.clone(),
        platform.clone(),
        shutdown,
    ));

    let api = api::RecommendationApi::new(
        store,
        producer,
        platform.clone(),
        metrics,
        config.auth.clone(),
        config.prepared_readers,
    );
    let dead_letters = service.dead_letters(config.auth.clone())?;
    service
        .serve(
            tonic::service::Routes::new(RecommendationServiceServer::new(api))
                .add_service(dead_letters),
        )
        .await?;
    Ok(())
}
