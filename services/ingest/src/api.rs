//! `newsroom.v1.IngestService`.
//!
//! Errors cross the gRPC edge in one place, [`impl From<SubmitError> for Status`]: a caller's
//! mistake is `INVALID_ARGUMENT` with the field, a dependency that is down is `UNAVAILABLE`.

use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use futures::StreamExt as _;
use newsroom_platform::kafka::{ProduceError, Producer};
use newsroom_platform::metrics::Registry;
use newsroom_platform::metrics::prometheus_client::encoding::EncodeLabelSet;
use newsroom_platform::metrics::prometheus_client::metrics::counter::Counter;
use newsroom_platform::metrics::prometheus_client::metrics::family::Family;
use newsroom_proto::Message as _;
use newsroom_proto::v1::ingest_service_server::IngestService;
use newsroom_proto::v1::{
    ImportError, ImportFeedRequest, ImportFeedResponse, Outcome, StoryEvent, StoryIndexEntry,
    SubmitStoryRequest, SubmitStoryResponse,
};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::access::{ApiKeys, Principal, RateLimits};
use crate::config::Limits;
use crate::identity::{self, Identity, Reservation};
use crate::story::{self, FieldError};
use crate::{embargo, formats};

/// Labels of the ingest counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SubmitLabels {
    pub source: String,
    pub outcome: String,
}

/// Ingest's own metrics.
#[derive(Clone)]
pub struct IngestMetrics {
    pub stories: Family<SubmitLabels, Counter>,
}

impl IngestMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = IngestMetrics {
            stories: Family::default(),
        };
        registry.register(
            "newsroom_ingest_stories",
            "Story submissions by source and outcome (accepted, updated, held, duplicate, invalid, unavailable)",
            m.stories.clone(),
        );
        m
    }

    fn count(&self, source: &str, outcome: &str) {
        self.stories
            .get_or_create(&SubmitLabels {
                source: source.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }
}

/// Why a submission failed.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("redis unavailable: {0}")]
    Redis(#[from] newsroom_platform::redis::redis::RedisError),
    #[error(transparent)]
    Kafka(#[from] ProduceError),
    /// Not allowed (PERMISSION_DENIED) or not now (RESOURCE_EXHAUSTED): the status says which.
    #[error("{}", .0.message())]
    Refused(Status),
}

impl From<SubmitError> for Status {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::Invalid(f) => Status::with_error_details(
                tonic::Code::InvalidArgument,
                f.to_string(),
                ErrorDetails::with_bad_request_violation(f.field.clone(), f.reason.clone()),
            ),
            SubmitError::Redis(e) => Status::unavailable(format!("story state unavailable: {e}")),
            SubmitError::Kafka(e) => Status::unavailable(e.to_string()),
            SubmitError::Refused(status) => status,
        }
    }
}

/// The service implementation.
#[derive(Clone)]
pub struct IngestApi {
    producer: Producer,
    identity: Identity,
    raw_topic: String,
    index_topic: String,
    held_topic: String,
    limits: Limits,
    metrics: IngestMetrics,
    keys: ApiKeys,
    rates: Arc<RateLimits>,
    platform: newsroom_platform::PlatformConfig,
    rebuild: Arc<tokio::sync::Mutex<()>>,
}

impl IngestApi {
    pub fn new(
        producer: Producer,
        identity: Identity,
        limits: Limits,
        metrics: IngestMetrics,
        keys: ApiKeys,
        rates: RateLimits,
        platform: newsroom_platform::PlatformConfig,
    ) -> Self {
        use newsroom_platform::kafka::topics;
        IngestApi {
            producer,
            identity,
            raw_topic: platform.topic(topics::STORIES_RAW),
            index_topic: platform.topic(topics::STORIES_INDEX),
            held_topic: platform.topic(topics::STORIES_HELD),
            limits,
            metrics,
            keys,
            rates: Arc::new(rates),
            platform,
            rebuild: Arc::default(),
        }
    }

    /// Validates, versions and publishes one story; the heart of every submission path.
    #[tracing::instrument(skip_all, fields(story.source, story.id, story.version))]
    pub async fn submit(
        &self,
        principal: &Principal,
        req: SubmitStoryRequest,
    ) -> Result<SubmitStoryResponse, SubmitError> {
        let source_hint = req
            .story
            .as_ref()
            .map(|s| s.source.trim().to_owned())
            .unwrap_or_default();
        let valid = match story::validate(req.story, &self.limits) {
            Ok(v) => v,
            Err(e) => {
                self.metrics.count(&source_hint, "invalid");
                return Err(e.into());
            }
        };
        let mut story = valid.story;
        let span = tracing::Span::current();
        span.record("story.source", story.source.as_str());
        principal
            .may_submit(&story.source)
            .map_err(SubmitError::Refused)?;
        if let Err(status) = self.rates.check(&story.source) {
            self.metrics.count(&story.source, "rate_limited");
            return Err(SubmitError::Refused(status));
        }

        let idem = req.idempotency_key.trim();
        if !idem.is_empty()
            && let Some(bytes) = self.identity.remembered(&story.source, idem).await?
            && let Ok(answer) = SubmitStoryResponse::decode(bytes.as_slice())
        {
            return Ok(answer);
        }

        let id = identity::story_id(&story.source, &valid.guid);
        span.record("story.id", id.as_str());
        let fingerprint = story::fingerprint(&story);
        let mut reservation = self.identity.reserve(&id, &fingerprint).await?;
        if reservation == Reservation::StateLost {
            // Redis lost our state while running: rebuild it once (other calls wait on the
            // lock), then reserve again.
            let _one_at_a_time = self.rebuild.lock().await;
            let restored =
                identity::rebuild_if_lost(&self.platform, &self.identity, &self.index_topic)
                    .await
                    .map_err(|e| {
                        SubmitError::Refused(Status::unavailable(format!(
                            "rebuilding identity state: {e}"
                        )))
                    })?;
            if restored > 0 {
                tracing::warn!(
                    stories = restored,
                    "redis lost ingest's state; rebuilt from stories.index"
                );
            }
            reservation = self.identity.reserve(&id, &fingerprint).await?;
        }
        let answer = match reservation {
            Reservation::StateLost => {
                return Err(SubmitError::Refused(Status::unavailable(
                    "identity state is being rebuilt; retry",
                )));
            }
            Reservation::Duplicate(version) => {
                self.metrics.count(&story.source, "duplicate");
                SubmitStoryResponse {
                    story_id: id,
                    version,
                    outcome: Outcome::Duplicate as i32,
                }
            }
            Reservation::New {
                version,
                held: earlier_held,
            } => {
                span.record("story.version", version);
                story.id = id.clone();
                story.version = version;
                if story.guid.is_empty() {
                    story.guid = valid.guid;
                }
                let source = story.source.clone();
                let event = StoryEvent {
                    story: Some(story),
                    fingerprint: fingerprint.clone(),
                    accepted_at: Some(SystemTime::now().into()),
                };
                // An embargoed version waits on `stories.held`; anything else goes straight on.
                let held = embargo::embargo_ms(&event).is_some();
                let topic = if held {
                    &self.held_topic
                } else {
                    &self.raw_topic
                };
                let entry = StoryIndexEntry {
                    story_id: id.clone(),
                    version,
                    fingerprint: fingerprint.clone(),
                };
                let (event, entry) = (event.encode_to_vec(), entry.encode_to_vec());
                // The story and its identity entry are written together; the answer waits for
                // both acknowledgements.
                let written = futures::future::try_join3(
                    self.producer.send(topic, &id, &event),
                    self.producer.send(&self.index_topic, &id, &entry),
                    async {
                        if earlier_held && !held {
                            // This version supersedes a held one (an update or a kill during
                            // the embargo): tombstone it, the release task drops it.
                            self.producer.send_tombstone(&self.held_topic, &id).await?;
                        }
                        Ok(())
                    },
                )
                .await;
                if let Err(e) = written {
                    self.metrics.count(&source, "unavailable");
                    return Err(e.into());
                }
                self.identity
                    .commit(&id, version, &fingerprint, held)
                    .await?;
                let outcome = if version == 1 {
                    Outcome::Accepted
                } else {
                    Outcome::Updated
                };
                self.metrics.count(
                    &source,
                    match (held, version) {
                        (true, _) => "held",
                        (false, 1) => "accepted",
                        (false, _) => "updated",
                    },
                );
                tracing::debug!(story.id = %id, version, "story accepted");
                SubmitStoryResponse {
                    story_id: id,
                    version,
                    outcome: outcome as i32,
                }
            }
        };
        if !idem.is_empty() {
            self.identity
                .remember(&source_hint, idem, &answer.encode_to_vec())
                .await?;
        }
        Ok(answer)
    }
}

impl IngestApi {
    /// Imports a document (any supported format) for `source`: one answer per item that
    /// became a story version, one error per item that could not. A document that cannot be
    /// read at all is `INVALID_ARGUMENT`; a dependency down is `UNAVAILABLE` (what was written
    /// before stays written).
    pub async fn import_document(
        &self,
        principal: &Principal,
        document: &[u8],
        format: &str,
        source: &str,
    ) -> Result<(Vec<SubmitStoryResponse>, Vec<ImportError>), Status> {
        let source = source.trim();
        if source.is_empty() {
            return Err(invalid(
                "source",
                "required (the feed or wire the document comes from)",
            ));
        }
        principal.may_submit(source)?;
        if document.len() > self.limits.max_document_bytes {
            return Err(invalid(
                "document",
                &format!(
                    "{} bytes, at most {} allowed",
                    document.len(),
                    self.limits.max_document_bytes
                ),
            ));
        }
        let items = formats::parse(document, format, source)
            .map_err(|e| Status::from(SubmitError::Invalid(FieldError::from(e))))?;
        let (mut results, mut errors) = (Vec::new(), Vec::new());
        for (index, item) in items.into_iter().enumerate() {
            let error = |guid: String, field: &str, reason: String| ImportError {
                index: index as u32,
                guid,
                field: format!("items[{index}].{field}"),
                reason,
            };
            match item {
                Err(e) => errors.push(error(e.guid, &e.field, e.reason)),
                Ok(story) => {
                    let guid = story.guid.clone();
                    let request = SubmitStoryRequest {
                        story: Some(story),
                        idempotency_key: String::new(),
                    };
                    match self.submit(principal, request).await {
                        Ok(answer) => results.push(answer),
                        Err(SubmitError::Invalid(f)) => {
                            errors.push(error(guid, &f.field, f.reason))
                        }
                        Err(other) => return Err(other.into()),
                    }
                }
            }
        }
        Ok((results, errors))
    }
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<SubmitStoryResponse, Status>> + Send>>;

#[tonic::async_trait]
impl IngestService for IngestApi {
    async fn submit_story(
        &self,
        request: Request<SubmitStoryRequest>,
    ) -> Result<Response<SubmitStoryResponse>, Status> {
        let principal = self.keys.authenticate(request.metadata())?;
        Ok(Response::new(
            self.submit(&principal, request.into_inner()).await?,
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
        let principal = Arc::new(self.keys.authenticate(request.metadata())?);
        let api = self.clone();
        let answers = request
            .into_inner()
            .enumerate()
            .map(move |(index, item)| {
                let (api, principal) = (api.clone(), principal.clone());
                async move {
                    let req = item?;
                    api.submit(&principal, req).await.map_err(|e| {
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
        let principal = self.keys.authenticate(request.metadata())?;
        let req = request.into_inner();
        let (results, errors) = self
            .import_document(&principal, &req.document, &req.format, &req.source)
            .await?;
        Ok(Response::new(ImportFeedResponse { results, errors }))
    }
}

/// Stories of one `SubmitStories` stream in flight at once.
pub const BULK_IN_FLIGHT: usize = 256;

fn invalid(field: &str, reason: &str) -> Status {
    Status::from(SubmitError::Invalid(FieldError {
        field: field.to_owned(),
        reason: reason.to_owned(),
    }))
}
