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

use newsroom_platform::kafka::{
    ConsumerSettings, Handler, HandlerError, Producer, Record, dlq_headers, topics as t,
};
use newsroom_platform::redis::{RedisStore, VersionGuard};
use newsroom_platform::server::Listeners;
use newsroom_platform::service::{Service, ServiceError};
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
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error("kafka: {0}")]
    Kafka(#[from] newsroom_platform::kafka::rdkafka::error::KafkaError),
    #[error(transparent)]
    Pipeline(#[from] reload::ReloadError),
}

/// Enriches each `stories.raw` record and publishes it to `stories.enriched`.
pub struct EnrichHandler {
    pipeline: SharedPipeline,
    producer: Producer,
    enriched_topic: String,
    /// Where Redis comes from (it may answer late, or never): the version guard's store.
    reloader: Arc<Reloader>,
}

/// How long enrichment remembers the highest version it published of a story.
const VERSION_GUARD_TTL: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

impl EnrichHandler {
    /// Whether `version` of story `id` may still be published: no higher version was. Without
    /// Redis (enrichment runs without it) or when Redis fails, it may: the consumers' own guards
    /// still refuse an older version; only the compacted topic's last record could then be an
    /// older one, which readers of it (GetStory's lookup, replays) already pick around.
    async fn admit(&self, id: &str, version: u32, record: bool) -> bool {
        let Some(redis) = self.reloader.redis() else {
            return true;
        };
        let guard = VersionGuard::new(redis, "enrich:version", VERSION_GUARD_TTL);
        let answer = if record {
            guard.admit(id, version).await
        } else {
            guard
                .seen(id)
                .await
                .map(|seen| seen.is_none_or(|s| version >= s))
        };
        answer.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "version guard unavailable; publishing without it");
            true
        })
    }
}

impl Handler for EnrichHandler {
    async fn handle(&self, record: &Record) -> Result<(), HandlerError> {
        let event = record.decode::<StoryEvent>()?;
        let story = event
            .story
            .as_ref()
            .ok_or_else(|| HandlerError::poison("StoryEvent without a story"))?;
        if story.id.is_empty() {
            return Err(HandlerError::poison("story without an id"));
        }
        let (id, version) = (story.id.clone(), story.version);
        // An older version than one already published (a late or replayed record) is not
        // enriched again: `stories.enriched` is compacted, and its last record must be the
        // newest version, not the last one written.
        if !self.admit(&id, version, false).await {
            tracing::debug!(story.id = %id, version, "older version than one published; skipped");
            return Ok(());
        }
        // One pipeline for the whole story, whatever a reload does meanwhile.
        let pipeline = self.pipeline.load_full();
        match pipeline.enrich_event(event, Mode::Live).await {
            Ok(enriched) => {
                // Looked at again right before the write: a newer version may have been
                // published meanwhile (another replica, during a rebalance).
                if !self.admit(&id, version, true).await {
                    tracing::debug!(story.id = %id, version, "superseded while enriching; skipped");
                    return Ok(());
                }
                self.producer
                    .send(&self.enriched_topic, &id, &enriched.encode_to_vec())
                    .await
                    .map_err(HandlerError::retryable)?;
                tracing::debug!(story.id = %id, pipeline = %pipeline.id, "story enriched");
                Ok(())
            }
            // A `retry` stage whose dependency is down: the record waits (the partition paused
            // and retried by the consumer until it is back), it is not thrown away.
            Err(e) if e.is_outage(pipeline.on_error_of(&e.stage)) => {
                Err(HandlerError::retryable(e).context("enrichment stage dependency"))
            }
            // The pipeline already retried the stage as its spec says: the story goes to the
            // DLQ with the stage that failed and the stage's own attempts.
            Err(e) => {
                tracing::error!(story.id = %id, stage = %e.stage, error = %e.error, "story dead-lettered by its pipeline");
                Err(dead_letter(&e))
            }
        }
    }
}

/// The poison a failed pipeline run makes: the platform's DLQ headers plus the stage that
/// failed, with the stage's attempts.
fn dead_letter(error: &PipelineError) -> HandlerError {
    HandlerError::poison(error.to_string())
        .with_dlq_header(DLQ_STAGE_HEADER, error.stage.clone())
        .with_dlq_header(dlq_headers::ATTEMPTS, error.attempts.to_string())
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
    let redis = RedisStore::connect_tls(
        &platform.redis_url,
        &platform.redis_prefix,
        platform.tls.redis_ca.as_deref(),
    )
    .await;
    let cx = BuildContext {
        redis: redis.as_ref().ok().cloned(),
        words_per_minute: config.words_per_minute,
        embedding_model_dir: config.embedding_model_dir.clone(),
        base_dir: std::path::PathBuf::from("."),
        tls: platform.tls.clone(),
    };
    let reloader = Reloader::start(config.pipeline_file.clone(), cx, metrics)?;
    if let Err(e) = redis {
        tracing::warn!(error = %e, "Redis does not answer; enriching without it until it does");
        let (url, prefix, ca, reloader) = (
            platform.redis_url.clone(),
            platform.redis_prefix.clone(),
            platform.tls.redis_ca.clone(),
            reloader.clone(),
        );
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                if let Ok(redis) = RedisStore::connect_tls(&url, &prefix, ca.as_deref()).await {
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
    let mut service = Service::start(
        "newsroom.v1.EnrichmentService",
        platform,
        listeners,
        shutdown,
        &[t::STORIES_RAW, t::STORIES_ENRICHED, t::STORIES_RAW_DLQ],
    )
    .await?;
    let stage_metrics = StageMetrics::register(service.registry());
    let reloader = start_pipeline(&config, stage_metrics.clone()).await?;
    reloader.watch(service.shutdown());
    let pipeline = reloader.shared();
    let handler = Arc::new(EnrichHandler {
        pipeline: pipeline.clone(),
        producer: service.producer()?,
        enriched_topic: platform.topic(t::STORIES_ENRICHED),
        reloader: reloader.clone(),
    });
    service.consumer(ConsumerSettings::new(platform, &[t::STORIES_RAW]), handler)?;

    let routes = tonic::service::Routes::new(EnrichmentServiceServer::new(
        api::EnrichmentApi::new(pipeline, config.auth.clone(), stage_metrics),
    ))
    .add_service(service.dead_letters(config.auth.clone())?);
    service.serve(routes).await?;
    Ok(())
}
