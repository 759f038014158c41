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
//! - [`api`] — `newsroom.v1.RecommendationService`, with its errors ([`api::ApiError`]);
//! - [`metrics`] — the feed latency histogram and story cache lookups;
//! - [`run`] — wiring, the consumer loop, serving and draining.

pub mod api;
pub mod config;
pub mod feed;
pub mod interests;
pub mod metrics;
pub mod rebuild;
pub mod store;

use std::sync::Arc;

use newsroom_platform::kafka::{
    self, ConsumerSettings, Handler, HandlerError, Producer, Record, topics as t,
};
use newsroom_platform::metrics::{KafkaMetrics, Registry};
use newsroom_platform::redis::RedisStore;
use newsroom_platform::server::{self, Listeners, Readiness};
use newsroom_platform::shutdown::Shutdown;
use newsroom_proto::Message as _;
use newsroom_proto::v1::EnrichedStory;
use newsroom_proto::v1::recommendation_service_server::RecommendationServiceServer;

pub use config::Config;

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("kafka: {0}")]
    Kafka(#[from] newsroom_platform::kafka::rdkafka::error::KafkaError),
    #[error("redis: {0}")]
    Redis(#[from] newsroom_platform::redis::redis::RedisError),
    #[error(transparent)]
    Serve(#[from] server::ServeError),
}

/// Writes each `stories.enriched` record into the story cache and indexes.
pub struct IndexHandler {
    store: store::FeedStore,
}

impl Handler for IndexHandler {
    async fn handle(&self, record: &Record) -> Result<(), HandlerError> {
        let Some(payload) = record.payload.as_deref() else {
            // A tombstone on the compacted topic: nothing to index.
            return Ok(());
        };
        let story = EnrichedStory::decode(payload)
            .map_err(|e| HandlerError::Poison(format!("not a newsroom.v1.EnrichedStory: {e}")))?;
        if story.story.as_ref().is_none_or(|s| s.id.is_empty()) {
            return Err(HandlerError::Poison(
                "EnrichedStory without a story id".into(),
            ));
        }
        let applied = self
            .store
            .apply(&story)
            .await
            .map_err(|e| HandlerError::Retryable(format!("redis: {e}")))?;
        tracing::debug!(story.id = %record.key_str(), ?applied, "story indexed");
        Ok(())
    }
}

/// Runs recommendation until `shutdown` is triggered, then drains.
pub async fn run(config: Config, listeners: Listeners, shutdown: Shutdown) -> Result<(), RunError> {
    let platform = &config.platform;
    let mut registry = Registry::default();
    let kafka_metrics = KafkaMetrics::register(&mut registry);
    let metrics = metrics::Metrics::register(&mut registry);

    kafka::ensure_topics(
        platform,
        &[
            t::STORIES_ENRICHED,
            t::STORIES_ENRICHED_DLQ,
            t::PROFILES,
            t::INTERACTIONS,
            t::INTERACTIONS_DLQ,
        ],
    )
    .await?;
    let producer = Producer::new(platform, kafka_metrics.clone())?;
    let redis = RedisStore::connect(&platform.redis_url, &platform.redis_prefix).await?;
    let store = store::FeedStore::new(redis, config.story_ttl, config.index_max_stories);

    let ready = Readiness::default();
    let handler = Arc::new(IndexHandler {
        store: store.clone(),
    });
    let settings = ConsumerSettings::new(platform, &[t::STORIES_ENRICHED]);
    kafka::spawn_consumer(
        platform,
        settings,
        handler,
        &producer,
        &kafka_metrics,
        &shutdown,
    );
    let mut settings = ConsumerSettings::new(platform, &[t::INTERACTIONS]);
    settings.group_id = format!("{}-interactions", platform.consumer_group);
    kafka::spawn_consumer(
        platform,
        settings,
        Arc::new(interests::InteractionHandler {
            store: store.clone(),
        }),
        &producer,
        &kafka_metrics,
        &shutdown,
    );
    shutdown.spawn(rebuild::keep_loaded(
        store.clone(),
        platform.clone(),
        shutdown.clone(),
    ));
    ready.set(true);

    let api = api::RecommendationApi::new(store, producer.clone(), platform.clone(), metrics);
    let routes = tonic::service::Routes::new(RecommendationServiceServer::new(api));
    tracing::info!(grpc = %listeners.grpc_addr(), admin = %listeners.admin_addr(), "recommendation serving");
    let served = server::serve(
        "newsroom.v1.RecommendationService",
        routes,
        listeners,
        Arc::new(registry),
        ready,
        shutdown.clone(),
    )
    .await;
    shutdown.trigger();
    shutdown.drain(platform.drain_timeout).await;
    producer.flush(platform.drain_timeout);
    served?;
    Ok(())
}
