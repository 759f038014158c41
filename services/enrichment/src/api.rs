//! `newsroom.v1.EnrichmentService`: preview the pipeline on a story, list its stages.

use newsroom_proto::v1::enrichment_service_server::EnrichmentService;
use newsroom_proto::v1::{
    EnrichPreviewRequest, EnrichedStory, ListStagesRequest, ListStagesResponse, StageInfo,
};
use tonic::{Request, Response, Status};

use crate::pipeline::{Pipeline, STAGES};

pub struct EnrichmentApi {
    pipeline: Pipeline,
}

impl EnrichmentApi {
    pub fn new(pipeline: Pipeline) -> Self {
        EnrichmentApi { pipeline }
    }
}

#[tonic::async_trait]
impl EnrichmentService for EnrichmentApi {
    async fn enrich_preview(
        &self,
        request: Request<EnrichPreviewRequest>,
    ) -> Result<Response<EnrichedStory>, Status> {
        let story = request
            .into_inner()
            .story
            .ok_or_else(|| Status::invalid_argument("story: required"))?;
        if story.headline.trim().is_empty() && story.body_html.trim().is_empty() {
            return Err(Status::invalid_argument(
                "story.headline: a headline or a body is required",
            ));
        }
        let enrichment = self.pipeline.enrich(&story);
        Ok(Response::new(EnrichedStory {
            story: Some(story),
            enrichment: Some(enrichment),
            accepted_at: None,
        }))
    }

    async fn list_stages(
        &self,
        _request: Request<ListStagesRequest>,
    ) -> Result<Response<ListStagesResponse>, Status> {
        Ok(Response::new(ListStagesResponse {
            stages: STAGES
                .iter()
                .map(|name| StageInfo {
                    name: (*name).to_owned(),
                    kind: "builtin".to_owned(),
                    timeout_ms: 0,
                    on_error: "dead-letter".to_owned(),
                })
                .collect(),
        }))
    }
}
