//! `newsroom.v1.EnrichmentService`: preview the pipeline on a story, list its stages.
//!
//! Both answer from the running pipeline (after any reload). `EnrichPreview` runs it in
//! [`Mode::Preview`]: stateful stages read (a preview sees the cluster a story would join) but
//! remember nothing, and nothing is published. Both need the editor, service or operator role
//! ([`newsroom_platform::auth`]).

use crate::metrics::StageMetrics;
use std::time::SystemTime;

use newsroom_platform::auth::{Auth, Role};
use newsroom_proto::v1::enrichment_service_server::EnrichmentService;
use newsroom_proto::v1::{
    EnrichPreviewRequest, EnrichedStory, ListStagesRequest, ListStagesResponse, StageInfo,
};
use tonic::{Request, Response, Status};

use crate::pipeline::{PipelineError, SharedPipeline};
use crate::stage::{Mode, StageError};

pub struct EnrichmentApi {
    pipeline: SharedPipeline,
    auth: Auth,
    metrics: StageMetrics,
}

/// The roles that may preview the pipeline and list its stages.
const ALLOWED: [Role; 3] = [Role::Editor, Role::Service, Role::Operator];

impl EnrichmentApi {
    pub fn new(pipeline: SharedPipeline, auth: Auth, metrics: StageMetrics) -> Self {
        EnrichmentApi {
            pipeline,
            auth,
            metrics,
        }
    }
}

impl From<PipelineError> for Status {
    fn from(e: PipelineError) -> Self {
        match e.error {
            StageError::Invalid(_) => Status::invalid_argument(e.to_string()),
            _ => Status::unavailable(e.to_string()),
        }
    }
}

#[tonic::async_trait]
impl EnrichmentService for EnrichmentApi {
    async fn enrich_preview(
        &self,
        request: Request<EnrichPreviewRequest>,
    ) -> Result<Response<EnrichedStory>, Status> {
        self.auth.require(request.metadata(), &ALLOWED).await?;
        let mut story = request
            .into_inner()
            .story
            .ok_or_else(|| Status::invalid_argument("story: required"))?;
        if story.headline.trim().is_empty() && story.body_html.trim().is_empty() {
            return Err(Status::invalid_argument(
                "story.headline: a headline or a body is required",
            ));
        }
        if story.id.is_empty() {
            story.id = "preview".into();
        }
        let pipeline = self.pipeline.load_full();
        let enrichment = pipeline
            .enrich(&story, Mode::Preview, SystemTime::now())
            .await?;
        Ok(Response::new(EnrichedStory {
            story: Some(story),
            enrichment: Some(enrichment),
            accepted_at: None,
        }))
    }

    async fn list_stages(
        &self,
        request: Request<ListStagesRequest>,
    ) -> Result<Response<ListStagesResponse>, Status> {
        self.auth.require(request.metadata(), &ALLOWED).await?;
        let pipeline = self.pipeline.load_full();
        let (reloads_applied, reloads_rejected) = self.metrics.reloads();
        Ok(Response::new(ListStagesResponse {
            stages: pipeline
                .stages
                .iter()
                .map(|s| (s, self.metrics.stats(&s.spec.name)))
                .map(|(s, stats)| StageInfo {
                    attempts_run: stats.attempts,
                    errors: stats.errors,
                    failures: stats.failures,
                    p50_us: stats.p50_us,
                    p99_us: stats.p99_us,
                    name: s.spec.name.clone(),
                    kind: s.spec.kind.clone(),
                    timeout_ms: u32::try_from(s.spec.timeout_ms).unwrap_or(u32::MAX),
                    on_error: s.spec.on_error.as_str().to_owned(),
                    after: s.after.clone(),
                    wave: s.wave as u32,
                    attempts: s.spec.attempts,
                    endpoint: s.spec.config.endpoint().unwrap_or_default().to_owned(),
                    enabled: s.stage.enabled(),
                })
                .collect(),
            pipeline_id: pipeline.id.clone(),
            source: pipeline.source.clone(),
            reloads_applied,
            reloads_rejected,
        }))
    }
}
