//! `newsroom.v1.IngestService`: a thin adapter over the [`Submitter`].
//!
//! Each RPC authenticates the caller ([`Access`]), hands the request to the submission core and
//! turns its answer into a response. Errors cross the gRPC edge in one place,
//! [`impl From<SubmitError> for Status`](SubmitError): a caller's mistake is `INVALID_ARGUMENT`
//! with a `google.rpc.BadRequest` field violation, a refusal `PERMISSION_DENIED` or
//! `RESOURCE_EXHAUSTED`, a dependency that is down `UNAVAILABLE`.

use std::pin::Pin;
use std::sync::Arc;

use futures::StreamExt as _;
use newsroom_proto::v1::ingest_service_server::IngestService;
use newsroom_proto::v1::{
    ImportFeedRequest, ImportFeedResponse, SubmitStoryRequest, SubmitStoryResponse,
};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::access::Access;
use crate::submit::{SubmitError, Submitter};

impl From<SubmitError> for Status {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::Invalid(f) => Status::with_error_details(
                tonic::Code::InvalidArgument,
                f.to_string(),
                ErrorDetails::with_bad_request_violation(f.field, f.reason),
            ),
            SubmitError::Refused(refusal) => refusal.into(),
            unavailable @ (SubmitError::Redis(_)
            | SubmitError::Kafka(_)
            | SubmitError::Rebuild(_)
            | SubmitError::StateLost) => Status::unavailable(unavailable.to_string()),
        }
    }
}

/// The service implementation.
#[derive(Clone)]
pub struct IngestApi {
    submitter: Submitter,
    access: Access,
}

impl IngestApi {
    pub fn new(submitter: Submitter, access: Access) -> Self {
        IngestApi { submitter, access }
    }
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<SubmitStoryResponse, Status>> + Send>>;

#[tonic::async_trait]
impl IngestService for IngestApi {
    async fn submit_story(
        &self,
        request: Request<SubmitStoryRequest>,
    ) -> Result<Response<SubmitStoryResponse>, Status> {
        let principal = self.access.authenticate(request.metadata()).await?;
        Ok(Response::new(
            self.submitter
                .submit(&principal, request.into_inner())
                .await?,
        ))
    }

    type SubmitStoriesStream = ResponseStream;

    /// Bulk load: answers each story in order, with up to [`BULK_IN_FLIGHT`] stories in flight
    /// at once so that Kafka batches them. A bad story ends the stream with its error, naming
    /// its position (`stories[3].story.headline`); the stories before it stay accepted.
    async fn submit_stories(
        &self,
        request: Request<Streaming<SubmitStoryRequest>>,
    ) -> Result<Response<Self::SubmitStoriesStream>, Status> {
        let principal = Arc::new(self.access.authenticate(request.metadata()).await?);
        let submitter = self.submitter.clone();
        let answers = request
            .into_inner()
            .enumerate()
            .map(move |(index, item)| {
                let (submitter, principal) = (submitter.clone(), principal.clone());
                async move {
                    let req = item.map_err(|e| {
                        let status = newsroom_platform::server::undecodable_message(e);
                        match status.code() {
                            tonic::Code::InvalidArgument => Status::invalid_argument(format!(
                                "stories[{index}]: {}",
                                status.message()
                            )),
                            _ => status,
                        }
                    })?;
                    submitter.submit(&principal, req).await.map_err(|e| {
                        let status = Status::from(e);
                        Status::new(
                            status.code(),
                            format!("stories[{index}].{}", status.message()),
                        )
                    })
                }
            })
            .buffered(BULK_IN_FLIGHT)
            // Stop after the first error: the client sees it as the end of the stream.
            .scan(false, |failed, answer| {
                let done = *failed;
                *failed |= answer.is_err();
                futures::future::ready((!done).then_some(answer))
            });
        Ok(Response::new(Box::pin(answers)))
    }

    async fn import_feed(
        &self,
        request: Request<ImportFeedRequest>,
    ) -> Result<Response<ImportFeedResponse>, Status> {
        let principal = self.access.authenticate(request.metadata()).await?;
        let req = request.into_inner();
        let (results, errors) = self
            .submitter
            .import_document(&principal, &req.document, &req.format, &req.source)
            .await?;
        Ok(Response::new(ImportFeedResponse { results, errors }))
    }
}

/// Stories of one `SubmitStories` stream in flight at once.
pub const BULK_IN_FLIGHT: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Refusal;
    use crate::story::FieldError;

    #[test]
    fn each_failure_has_its_code_and_a_bad_field_is_named() {
        let invalid = Status::from(SubmitError::Invalid(FieldError {
            field: "story.headline".into(),
            reason: "required".into(),
        }));
        assert_eq!(invalid.code(), tonic::Code::InvalidArgument);
        assert_eq!(invalid.message(), "story.headline: required");
        let violations = invalid.get_details_bad_request().unwrap().field_violations;
        assert_eq!(violations[0].field, "story.headline");
        let refused = Status::from(SubmitError::Refused(Refusal::NotYourSource {
            key_source: "ap".into(),
            story_source: "afp".into(),
        }));
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
        let lost = Status::from(SubmitError::StateLost);
        assert_eq!(lost.code(), tonic::Code::Unavailable);
        assert_eq!(lost.message(), "identity state is being rebuilt; retry");
    }
}
