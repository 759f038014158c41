//! Enrichment: turns `stories.raw` into `stories.enriched` through a pipeline of stages.
//!
//! A pipeline file lists stages in order (language, entities, IPTC topics, keywords, summary,
//! counts, breaking score, near-duplicate clusters, embeddings, and remote stages over gRPC),
//! each with params, a timeout and what to do when it fails. Stages that do not depend on each
//! other run concurrently; the file reloads on SIGHUP and on change, swapped atomically. The
//! consumer is at-least-once (platform): the same version enriched twice yields the same
//! record, which downstream services treat idempotently. Components:
//!
//! - [`config`] — the service's environment variables;
//! - [`text`] — plain text, paragraphs, sentences and words out of HTML;
//! - [`corpus`] — the BBC set, stopwords and word statistics that several stages share;
//! - [`hash`] — FNV-1a, the stable hash of the held-out split and of duplicate signatures;
//! - [`stage`] — the `Stage` trait, what a stage sees and returns, how findings merge;
//! - [`spec`] — the pipeline file: parsing and validation;
//! - [`stages`] — the stage types a pipeline file names, registered in one table; each
//!   built-in stage is one file or folder with its algorithm and its data (the topic model and
//!   lexicon in `stages/topics/`, the entity rules and word lists in `stages/entities/`);
//! - [`pipeline`] — building a pipeline (waves of concurrent stages) and running a story;
//! - [`reload`] — hot reload on SIGHUP and file change, atomic swap;
//! - [`metrics`] — stage latency and failures, reloads;
//! - [`api`] — `newsroom.v1.EnrichmentService` (`EnrichPreview`, `ListStages`);
//! - [`remote`] — the example remote stage (`newsroom-example-stage`);
//! - [`replay`] — re-running the current pipeline over history;
//! - [`run`] — wiring, the consumer loop, serving and draining.

pub mod api;
pub mod config;
pub mod corpus;
pub mod hash;
pub mod metrics;
pub mod pipeline;
pub mod reload;
pub mod remote;
pub mod replay;
pub mod spec;
pub mod stage;
pub mod stages;
pub mod text;

use std::sync::Arc;

use newsroom_platform::kafka::rdkafka::message::{Header, OwnedHeaders};
use newsroom_platform::kafka::{
    self, ConsumerSettings, Handler, HandlerError, Producer, Record, dlq_headers, topics as t,
};
use newsroom_platform::metrics::{KafkaMetrics, Registry, TopicLabel};
use newsroom_platform::redis::RedisStore;
use newsroom_platform::server::{self, Listeners, Readiness};
use newsroom_platform::shutdown::Shutdown;
use newsroom_proto::Message as _;
use newsroom_proto::v1::StoryEvent;
use newsroom_proto::v1::enrichment_service_server::EnrichmentServiceServer;

pub use config::Config;
pub use pipeline::Pipeline;

use crate::metrics::StageMetrics;
use crate::pipeline::{PipelineError, SharedPipeline};
use crate::reload::Reloader;
use crate::stage::Mode;
use crate::stages::BuildContext;

/// Header naming the stage that failed, on a story dead-lettered by the pipeline.
pub const DLQ_STAGE_HEADER: &str = "dlq.stage";

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("kafka: {0}")]
    Kafka(#[from] newsroom_platform::kafka::rdkafka::error::KafkaError),
    #[error(transparent)]
    Pipeline(#[from] reload::ReloadError),
    #[error(transparent)]
    Serve(#[from] server::ServeError),
}

/// Enriches each `stories.raw` record and publishes it to `stories.enriched`.
pub struct EnrichHandler {
    pipeline: SharedPipeline,
    producer: Producer,
    kafka_metrics: KafkaMetrics,
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
        let id = story.id.clone();
        // One pipeline for the whole story, whatever a reload does meanwhile.
        let pipeline = self.pipeline.load_full();
        match pipeline.enrich_event(event, Mode::Live).await {
            Ok(enriched) => {
                self.producer
                    .send(&self.enriched_topic, &id, &enriched.encode_to_vec())
                    .await
                    .map_err(|e| HandlerError::Retryable(e.to_string()))?;
                tracing::debug!(story.id = %id, pipeline = %pipeline.id, "story enriched");
                Ok(())
            }
            Err(e) => self.dead_letter(record, &id, &e).await,
        }
    }
}

impl EnrichHandler {
    /// Writes the original record to `<topic>.dlq` with the platform's headers plus the stage
    /// that failed; the record then counts as handled and the consumer moves on.
    async fn dead_letter(
        &self,
        record: &Record,
        id: &str,
        error: &PipelineError,
    ) -> Result<(), HandlerError> {
        let dlq = format!("{}.dlq", record.topic);
        let mut headers = OwnedHeaders::new();
        for (k, v) in &record.headers {
            headers = headers.insert(Header {
                key: k,
                value: Some(v),
            });
        }
        let (partition, offset, attempts) = (
            record.partition.to_string(),
            record.offset.to_string(),
            error.attempts.to_string(),
        );
        let message = error.to_string();
        for (k, v) in [
            (dlq_headers::TOPIC, record.topic.as_str()),
            (dlq_headers::PARTITION, &partition),
            (dlq_headers::OFFSET, &offset),
            (dlq_headers::ERROR, &message),
            (dlq_headers::ATTEMPTS, &attempts),
            (DLQ_STAGE_HEADER, &error.stage),
        ] {
            headers = headers.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        tracing::error!(story.id = %id, stage = %error.stage, error = %error.error, %dlq, "story dead-lettered by its pipeline");
        self.producer
            .send_with_headers(&dlq, &record.key_str(), record.payload.as_deref(), headers)
            .await
            // The DLQ write failed: let the consumer retry the record.
            .map_err(|e| HandlerError::Retryable(format!("dead-letter write: {e}")))?;
        self.kafka_metrics
            .dead_lettered
            .get_or_create(&TopicLabel {
                topic: record.topic.clone(),
            })
            .inc();
        Ok(())
    }
}

/// Connects what stages need and builds the first pipeline.
///
/// Redis is a cache the service can lose: when it does not answer at start-up the pipeline
/// runs without it (every story its own cluster, velocity one source, embeddings not reused),
/// a background task keeps trying, and the pipeline is rebuilt with Redis once it answers.
pub async fn start_pipeline(
    config: &Config,
    metrics: StageMetrics,
) -> Result<Arc<Reloader>, RunError> {
    let platform = &config.platform;
    let redis = RedisStore::connect(&platform.redis_url, &platform.redis_prefix).await;
    let cx = BuildContext {
        redis: redis.as_ref().ok().cloned(),
        words_per_minute: config.words_per_minute,
        embedding_model_dir: config.embedding_model_dir.clone(),
        base_dir: std::path::PathBuf::from("."),
    };
    let reloader = Reloader::start(config.pipeline_file.clone(), cx, metrics)?;
    if let Err(e) = redis {
        tracing::warn!(error = %e, "Redis does not answer; enriching without it until it does");
        let (url, prefix, reloader) = (
            platform.redis_url.clone(),
            platform.redis_prefix.clone(),
            reloader.clone(),
        );
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                if let Ok(redis) = RedisStore::connect(&url, &prefix).await {
                    reloader.set_redis(redis);
                    break;
                }
            }
        });
    }
    Ok(reloader)
}

/// Runs enrichment until `shutdown` is triggered, then drains.
pub async fn run(config: Config, listeners: Listeners, shutdown: Shutdown) -> Result<(), RunError> {
    let platform = &config.platform;
    let mut registry = Registry::default();
    let kafka_metrics = KafkaMetrics::register(&mut registry);
    let stage_metrics = StageMetrics::register(&mut registry);

    kafka::ensure_topics(
        platform,
        &[t::STORIES_RAW, t::STORIES_ENRICHED, t::STORIES_RAW_DLQ],
    )
    .await?;
    let reloader = start_pipeline(&config, stage_metrics).await?;
    reloader.watch(&shutdown);
    let pipeline = reloader.shared();
    let producer = Producer::new(platform, kafka_metrics.clone())?;
    let handler = Arc::new(EnrichHandler {
        pipeline: pipeline.clone(),
        producer: producer.clone(),
        kafka_metrics: kafka_metrics.clone(),
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
