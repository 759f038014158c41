//! Enrichment: turns `stories.raw` into `stories.enriched`.
//!
//! For every story version it detects the language, counts words and reading time, assigns
//! IPTC Media Topics and a breaking score, and publishes an `EnrichedStory` keyed by story id.
//! The consumer is at-least-once (platform): the same version enriched twice yields the same
//! record, which downstream services treat idempotently. Components:
//!
//! - [`config`] — the service's environment variables;
//! - [`text`] — plain text and words out of HTML;
//! - [`topics`] — the first IPTC Media Topic classifier;
//! - [`pipeline`] — the enrichment of one story;
//! - [`api`] — `newsroom.v1.EnrichmentService` (`EnrichPreview`, `ListStages`);
//! - [`run`] — wiring, the consumer loop, serving and draining.

pub mod api;
pub mod config;
pub mod pipeline;
pub mod text;
pub mod topics;

use std::sync::Arc;

use newsroom_platform::kafka::{
    self, ConsumerSettings, Handler, HandlerError, Producer, Record, topics as t,
};
use newsroom_platform::metrics::{KafkaMetrics, Registry};
use newsroom_platform::server::{self, Listeners, Readiness};
use newsroom_platform::shutdown::Shutdown;
use newsroom_proto::Message as _;
use newsroom_proto::v1::StoryEvent;
use newsroom_proto::v1::enrichment_service_server::EnrichmentServiceServer;

pub use config::Config;
pub use pipeline::Pipeline;

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("kafka: {0}")]
    Kafka(#[from] newsroom_platform::kafka::rdkafka::error::KafkaError),
    #[error(transparent)]
    Serve(#[from] server::ServeError),
}

/// Enriches each `stories.raw` record and publishes it to `stories.enriched`.
pub struct EnrichHandler {
    pipeline: Pipeline,
    producer: Producer,
    enriched_topic: String,
}

impl Handler for EnrichHandler {
    async fn handle(&self, record: &Record) -> Result<(), HandlerError> {
        let payload = record
            .payload
            .as_deref()
            .ok_or_else(|| HandlerError::Poison("empty record (no value)".into()))?;
        let event = StoryEvent::decode(payload)
            .map_err(|e| HandlerError::Poison(format!("not a newsroom.v1.StoryEvent: {e}")))?;
        let story = event
            .story
            .as_ref()
            .ok_or_else(|| HandlerError::Poison("StoryEvent without a story".into()))?;
        if story.id.is_empty() {
            return Err(HandlerError::Poison("story without an id".into()));
        }
        let enriched = self.pipeline.enrich_event(event.clone());
        let id = &story.id;
        self.producer
            .send(&self.enriched_topic, id, &enriched.encode_to_vec())
            .await
            .map_err(|e| HandlerError::Retryable(e.to_string()))?;
        tracing::debug!(story.id = %id, "story enriched");
        Ok(())
    }
}

/// Runs enrichment until `shutdown` is triggered, then drains.
pub async fn run(config: Config, listeners: Listeners, shutdown: Shutdown) -> Result<(), RunError> {
    let platform = &config.platform;
    let mut registry = Registry::default();
    let kafka_metrics = KafkaMetrics::register(&mut registry);

    kafka::ensure_topics(
        platform,
        &[t::STORIES_RAW, t::STORIES_ENRICHED, t::STORIES_RAW_DLQ],
    )
    .await?;
    let producer = Producer::new(platform, kafka_metrics.clone())?;
    let pipeline = Pipeline::new(config.words_per_minute);
    let handler = Arc::new(EnrichHandler {
        pipeline: pipeline.clone(),
        producer: producer.clone(),
        enriched_topic: platform.topic(t::STORIES_ENRICHED),
    });

    let ready = Readiness::default();
    let settings = ConsumerSettings::new(platform, &[t::STORIES_RAW]);
    kafka::spawn_consumer(
        platform,
        settings,
        handler,
        &producer,
        &kafka_metrics,
        &shutdown,
    );
    ready.set(true);

    let routes = tonic::service::Routes::new(EnrichmentServiceServer::new(
        api::EnrichmentApi::new(pipeline),
    ));
    tracing::info!(grpc = %listeners.grpc_addr(), admin = %listeners.admin_addr(), "enrichment serving");
    let served = server::serve(
        "newsroom.v1.EnrichmentService",
        routes,
        listeners,
        Arc::new(registry),
        ready,
        shutdown.clone(),
    )
    .await;
    // The server stops when shutdown is triggered; the consumer finishes its record and commits.
    shutdown.trigger();
    shutdown.drain(platform.drain_timeout).await;
    producer.flush(platform.drain_timeout);
    served?;
    Ok(())
}
