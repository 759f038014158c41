//! `newsroom.v1.RecommendationService`.
//!
//! Requests are validated at the edge; every handler fails with an [`ApiError`], which becomes
//! a gRPC status in one place ([`impl From<ApiError> for Status`](ApiError)): a caller's
//! mistake is `INVALID_ARGUMENT` with a `google.rpc.BadRequest` naming the field, Redis or
//! Kafka being away is `UNAVAILABLE`. Follow changes are written to the compacted `profiles`
//! topic (the record of truth, which notification also reads) before the call answers.
//!
//! Every call is authenticated ([`newsroom_platform::auth`]): the reader-facing ones (feed,
//! follows, profile, interactions) act for the reader of the credential — a reader's token
//! only for its own reader, the `service` role for the reader it names (audited); trending and
//! stories need any valid credential.

use std::time::{Instant, SystemTime};

use newsroom_platform::auth::Auth;
use newsroom_platform::kafka::rdkafka::error::KafkaError;
use newsroom_platform::kafka::{ProduceError, Producer};
use newsroom_proto::Message as _;
use newsroom_proto::media_topics;
use newsroom_proto::v1::recommendation_service_server::RecommendationService;
use newsroom_proto::v1::{
    EnrichedStory, FollowRequest, GetFeedRequest, GetFeedResponse, GetProfileRequest,
    GetRelatedRequest, GetRelatedResponse, GetStoryRequest, GetTrendingRequest,
    GetTrendingResponse, GetWireRequest, GetWireResponse, Interaction, InteractionKind,
    InteractionRequest, RecordInteractionResponse, StoryHistory, TargetKind, UserProfile, WireItem,
};
use tonic::{Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::feed::prepared::feed_item;
use crate::feed::{self, Cursor};
use crate::interests;
use crate::lookup::{Found, StoryLookup};
use crate::metrics::{CacheLookup, Metrics};
use crate::store::{FeedStore, Index, IndexKey, RedisError};

/// Why a call failed, before it becomes a status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The caller's mistake in one field: `INVALID_ARGUMENT`.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// A cursor whose snapshot has expired: `FAILED_PRECONDITION`.
    #[error("cursor: expired; start again without a cursor")]
    Expired,
    /// `NOT_FOUND`.
    #[error("story {0} does not exist or was killed")]
    NoStory(String),
    /// Redis is away: `UNAVAILABLE`.
    #[error("feed store unavailable: {0}")]
    Store(#[from] RedisError),
    /// A record was not acknowledged: `UNAVAILABLE`.
    #[error(transparent)]
    Produce(#[from] ProduceError),
    /// The story could not be read from `stories.enriched`: `UNAVAILABLE`.
    #[error("stories.enriched: {0}")]
    Record(KafkaError),
    /// Every story lookup slot is taken (see [`crate::lookup`]): `UNAVAILABLE`.
    #[error("story lookups busy; retry shortly")]
    LookupsBusy,
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        let message = e.to_string();
        match e {
            ApiError::Invalid { field, reason } => Status::with_error_details(
                tonic::Code::InvalidArgument,
                message,
                ErrorDetails::with_bad_request_violation(field, reason),
            ),
            ApiError::Expired => Status::failed_precondition(message),
            ApiError::NoStory(_) => Status::not_found(message),
            ApiError::Store(_)
            | ApiError::Produce(_)
            | ApiError::Record(_)
            | ApiError::LookupsBusy => Status::unavailable(message),
        }
    }
}

impl From<feed::PageError> for ApiError {
    fn from(e: feed::PageError) -> Self {
        match e {
            feed::PageError::Expired => ApiError::Expired,
            feed::PageError::Redis(r) => ApiError::Store(r),
        }
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ApiError {
    ApiError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// Most items a page may ask for.
pub const MAX_LIMIT: u32 = 100;
/// Items of a page when the caller does not say.
pub const DEFAULT_LIMIT: u32 = 20;

pub struct RecommendationApi {
    store: FeedStore,
    producer: Producer,
    profiles_topic: String,
    interactions_topic: String,
    lookup: StoryLookup,
    prepared: feed::Prepared,
    metrics: Metrics,
    auth: Auth,
}

/// A reader's id: required, at most 128 bytes.
fn user_id(raw: &str) -> Result<&str, ApiError> {
    let user = raw.trim();
    if user.is_empty() {
        return Err(invalid("user_id", "required"));
    }
    if user.len() > 128 {
        return Err(invalid("user_id", "at most 128 bytes"));
    }
    Ok(user)
}

/// A page size: 0 means [`DEFAULT_LIMIT`], more than [`MAX_LIMIT`] is refused.
fn page_limit(limit: u32) -> Result<usize, ApiError> {
    match limit {
        0 => Ok(DEFAULT_LIMIT as usize),
        n if n > MAX_LIMIT => Err(invalid("limit", format!("at most {MAX_LIMIT}"))),
        n => Ok(n as usize),
    }
}

/// Whether two lists of follows hold the same targets, in any order.
fn same_follows(a: &[IndexKey], b: &[IndexKey]) -> bool {
    let set = |x: &[IndexKey]| x.iter().cloned().collect::<std::collections::BTreeSet<_>>();
    set(a) == set(b)
}

impl RecommendationApi {
    pub fn new(
        store: FeedStore,
        producer: Producer,
        platform: newsroom_platform::PlatformConfig,
        metrics: Metrics,
        auth: Auth,
        prepared_readers: usize,
    ) -> Self {
        use newsroom_platform::kafka::topics;
        RecommendationApi {
            store,
            producer,
            profiles_topic: platform.topic(topics::PROFILES),
            interactions_topic: platform.topic(topics::INTERACTIONS),
            lookup: StoryLookup::new(platform),
            prepared: feed::Prepared::new(prepared_readers),
            metrics,
            auth,
        }
    }

    /// One page of a reader's feed (`GetFeed` minus its timing).
    async fn feed_page(&self, req: GetFeedRequest) -> Result<GetFeedResponse, ApiError> {
        let user = user_id(&req.user_id)?;
        let limit = page_limit(req.limit)?;
        let cursor = match req.cursor.trim() {
            "" => None,
            c => Some(
                Cursor::decode(c)
                    .ok_or_else(|| invalid("cursor", "not a cursor returned by GetFeed"))?,
            ),
        };
        let page = feed::page(&self.store, &self.prepared, user, limit, cursor.as_ref()).await?;
        self.metrics.feed_page(page.path.as_str());
        Ok(GetFeedResponse {
            items: page.items,
            next_cursor: page.next_cursor,
        })
    }

    async fn trending(&self, req: GetTrendingRequest) -> Result<GetTrendingResponse, ApiError> {
        let limit = page_limit(req.limit)?;
        let topic = req.topic.trim();
        let (scope, reason) = if topic.is_empty() {
            ("global".to_owned(), "Trending now".to_owned())
        } else if media_topics::is_code(topic) {
            let label = media_topics::label(topic).unwrap_or(topic);
            (format!("topic:{topic}"), format!("Trending in {label}"))
        } else {
            return Err(invalid(
                "topic",
                format!("{topic:?} is not an IPTC Media Topic code"),
            ));
        };
        let hot = interests::trending(&self.store, &scope, limit).await?;
        let ids: Vec<String> = hot.iter().map(|(id, _)| id.clone()).collect();
        let stories = self.store.page_stories(&ids).await?;
        let items = hot
            .iter()
            .zip(stories)
            .filter_map(|((_, score), s)| {
                let enriched = s?;
                enriched.story.as_ref()?;
                Some(feed_item(&enriched, *score, vec![reason.clone()], None))
            })
            .collect();
        Ok(GetTrendingResponse { items })
    }

    /// The editors' wire: the newest stories of an index, before a cursor (a publication ms).
    async fn wire(&self, req: GetWireRequest) -> Result<GetWireResponse, ApiError> {
        let limit = page_limit(req.limit)?;
        let topic = req.topic.trim();
        let index = if topic.is_empty() {
            Index::Latest
        } else if media_topics::is_code(topic) {
            Index::Target(IndexKey::new(TargetKind::Topic, topic))
        } else {
            return Err(invalid(
                "topic",
                format!("{topic:?} is not an IPTC Media Topic code"),
            ));
        };
        let before = match req.cursor.trim() {
            "" => i64::MAX,
            c => c
                .parse::<i64>()
                .map_err(|_| invalid("cursor", "expected a previous answer's next_cursor"))?,
        };
        let newest = self.store.newest_before(&index, before, limit).await?;
        let ids: Vec<String> = newest.iter().map(|(id, _)| id.clone()).collect();
        let stories = self.store.page_stories(&ids).await?;
        let (developing, _) = feed::developing::of_page(&self.store, &ids).await?;
        let next_cursor = match newest.last() {
            Some((_, ms)) if newest.len() == limit => ms.to_string(),
            _ => String::new(),
        };
        let items = stories
            .into_iter()
            .zip(developing)
            .filter_map(|(s, d)| {
                let s = s?;
                Some(WireItem {
                    story: Some(EnrichedStory::clone(&s)),
                    developing: d.map(|d| d.info),
                })
            })
            .collect();
        Ok(GetWireResponse { items, next_cursor })
    }

    /// The story page's related stories (see `store::related`).
    async fn related(&self, req: GetRelatedRequest) -> Result<GetRelatedResponse, ApiError> {
        let limit = match req.limit {
            0 => 5,
            n @ 1..=20 => n as usize,
            n => return Err(invalid("limit", format!("expected 1..20, got {n}"))),
        };
        let story = self
            .story(GetStoryRequest {
                story_id: req.story_id,
            })
            .await?;
        let related = self.store.related(&story, limit).await?;
        let ids: Vec<String> = related.iter().map(|r| r.id.clone()).collect();
        let stories = self.store.page_stories(&ids).await?;
        let items = related
            .iter()
            .zip(stories)
            .filter_map(|(r, s)| {
                let s = s?;
                let reason = if r.same_event {
                    "same story"
                } else {
                    "related"
                };
                Some(feed_item(
                    &s,
                    f64::from(r.similarity),
                    vec![reason.into()],
                    None,
                ))
            })
            .collect();
        Ok(GetRelatedResponse { items })
    }

    async fn story_history(&self, req: GetStoryRequest) -> Result<StoryHistory, ApiError> {
        let id = req.story_id.trim();
        if id.is_empty() {
            return Err(invalid("story_id", "required"));
        }
        let versions = self.store.versions(id).await?;
        if versions.is_empty() {
            return Err(ApiError::NoStory(id.to_owned()));
        }
        Ok(StoryHistory {
            story_id: id.to_owned(),
            versions,
        })
    }

    async fn story(&self, req: GetStoryRequest) -> Result<EnrichedStory, ApiError> {
        let id = req.story_id.trim();
        if id.is_empty() {
            return Err(invalid("story_id", "required"));
        }
        if let Some(story) = self.store.story(id).await? {
            self.metrics.story_lookup(CacheLookup::Hit);
            return Ok(story);
        }
        self.metrics.story_lookup(CacheLookup::Miss);
        // A cache miss: ask the record of truth, the compacted stories.enriched, bounded.
        let applied = self.store.applied_version(id).await?;
        match self
            .lookup
            .find(id, applied)
            .await
            .map_err(ApiError::Record)?
        {
            Found::Story(story) => {
                // Warm the cache for the next reader.
                let _ = self.store.apply(&story).await;
                Ok(*story)
            }
            Found::Missing => Err(ApiError::NoStory(id.to_owned())),
            Found::Busy => Err(ApiError::LookupsBusy),
        }
    }

    async fn change_follow(
        &self,
        req: FollowRequest,
        follow: bool,
    ) -> Result<UserProfile, ApiError> {
        let user = user_id(&req.user_id)?;
        let target = req.target.ok_or_else(|| invalid("target", "required"))?;
        let kind = TargetKind::try_from(target.kind)
            .ok()
            .filter(|k| *k != TargetKind::Unspecified)
            .ok_or_else(|| {
                invalid(
                    "target.kind",
                    "one of TOPIC, ENTITY, SECTION, AUTHOR, CLUSTER",
                )
            })?;
        let value = target.value.trim();
        if value.is_empty() {
            return Err(invalid("target.value", "required"));
        }
        // The value names a Redis index and a member of the reader's follow set.
        if value.len() > MAX_FOLLOW_VALUE_BYTES {
            return Err(invalid(
                "target.value",
                format!(
                    "{} bytes, at most {MAX_FOLLOW_VALUE_BYTES} allowed",
                    value.len()
                ),
            ));
        }
        if kind == TargetKind::Topic && !media_topics::is_code(value) {
            return Err(invalid(
                "target.value",
                format!("{value:?} is not an IPTC Media Topic code (e.g. medtop:13000000)"),
            ));
        }
        let mut follows = self
            .store
            .set_follow(user, &IndexKey::new(kind, value), follow)
            .await?;
        // The cached first page no longer says what the reader wants.
        self.store.forget_first_page(user).await?;
        // Publish the snapshot, then look again: a concurrent Follow (here or on another
        // replica) may have changed the follows and published its snapshot before ours. The
        // last writer to find Redis unchanged after its write publishes the current state, so
        // the compacted `profiles` topic never ends on a snapshot that lost a follow.
        let profile = loop {
            let profile = UserProfile {
                user_id: user.to_owned(),
                follows: follows.iter().map(IndexKey::target).collect(),
                updated_at: Some(SystemTime::now().into()),
            };
            self.producer
                .send(&self.profiles_topic, user, &profile.encode_to_vec())
                .await?;
            let now = self.store.follows(user).await?;
            if same_follows(&now, &follows) {
                break profile;
            }
            follows = now;
        };
        Ok(profile)
    }

    async fn profile(&self, req: GetProfileRequest) -> Result<UserProfile, ApiError> {
        let user = user_id(&req.user_id)?;
        let follows = self.store.follows(user).await?;
        Ok(UserProfile {
            user_id: user.to_owned(),
            follows: follows.iter().map(IndexKey::target).collect(),
            updated_at: None,
        })
    }

    async fn interaction(&self, req: InteractionRequest) -> Result<(), ApiError> {
        let user = user_id(&req.user_id)?;
        if req.story_id.trim().is_empty() {
            return Err(invalid("story_id", "required"));
        }
        let kind = InteractionKind::try_from(req.kind)
            .ok()
            .filter(|k| *k != InteractionKind::Unspecified)
            .ok_or_else(|| invalid("kind", "one of VIEW, CLICK, READ, SHARE, HIDE, DISMISS"))?;
        // Only a story this service knows counts: made-up ids would fill a reader's history and
        // the trending buckets with nothing.
        let story_id = req.story_id.trim();
        if story_id.len() > 256 || self.store.applied_version(story_id).await?.is_none() {
            return Err(ApiError::NoStory(story_id.chars().take(256).collect()));
        }
        let interaction = Interaction {
            user_id: user.to_owned(),
            story_id: req.story_id.trim().to_owned(),
            kind: req.kind,
            dwell_ms: req.dwell_ms,
            at: Some(SystemTime::now().into()),
        };
        self.producer
            .send(&self.interactions_topic, user, &interaction.encode_to_vec())
            .await?;
        // Read and hidden stories leave the reader's feed at once; the interactions consumer
        // does the rest (trending, interests) and repeats this harmlessly.
        if let Some(history) = interests::history_of(kind) {
            self.store
                .leave_feed(user, &interaction.story_id, history)
                .await?;
        }
        Ok(())
    }
}

/// Bytes a follow target's value may hold.
pub const MAX_FOLLOW_VALUE_BYTES: usize = 200;

#[tonic::async_trait]
impl RecommendationService for RecommendationApi {
    async fn get_feed(
        &self,
        request: Request<GetFeedRequest>,
    ) -> Result<Response<GetFeedResponse>, Status> {
        let started = Instant::now();
        let req = self
            .auth
            .reader_request(request, "GetFeed", |r| &mut r.user_id)
            .await?;
        let page = self.feed_page(req).await;
        self.metrics.feed_answered(started.elapsed());
        Ok(Response::new(page?))
    }

    async fn get_trending(
        &self,
        request: Request<GetTrendingRequest>,
    ) -> Result<Response<GetTrendingResponse>, Status> {
        self.auth.authenticate(request.metadata()).await?;
        Ok(Response::new(self.trending(request.into_inner()).await?))
    }

    async fn get_story(
        &self,
        request: Request<GetStoryRequest>,
    ) -> Result<Response<EnrichedStory>, Status> {
        self.auth.authenticate(request.metadata()).await?;
        Ok(Response::new(self.story(request.into_inner()).await?))
    }

    async fn get_story_history(
        &self,
        request: Request<GetStoryRequest>,
    ) -> Result<Response<StoryHistory>, Status> {
        self.auth.authenticate(request.metadata()).await?;
        Ok(Response::new(
            self.story_history(request.into_inner()).await?,
        ))
    }

    async fn get_wire(
        &self,
        request: Request<GetWireRequest>,
    ) -> Result<Response<GetWireResponse>, Status> {
        self.auth.authenticate(request.metadata()).await?;
        Ok(Response::new(self.wire(request.into_inner()).await?))
    }

    async fn get_related(
        &self,
        request: Request<GetRelatedRequest>,
    ) -> Result<Response<GetRelatedResponse>, Status> {
        self.auth.authenticate(request.metadata()).await?;
        Ok(Response::new(self.related(request.into_inner()).await?))
    }

    async fn follow(
        &self,
        request: Request<FollowRequest>,
    ) -> Result<Response<UserProfile>, Status> {
        let req = self
            .auth
            .reader_request(request, "Follow", |r| &mut r.user_id)
            .await?;
        Ok(Response::new(self.change_follow(req, true).await?))
    }

    async fn unfollow(
        &self,
        request: Request<FollowRequest>,
    ) -> Result<Response<UserProfile>, Status> {
        let req = self
            .auth
            .reader_request(request, "Unfollow", |r| &mut r.user_id)
            .await?;
        Ok(Response::new(self.change_follow(req, false).await?))
    }

    async fn get_profile(
        &self,
        request: Request<GetProfileRequest>,
    ) -> Result<Response<UserProfile>, Status> {
        let req = self
            .auth
            .reader_request(request, "GetProfile", |r| &mut r.user_id)
            .await?;
        Ok(Response::new(self.profile(req).await?))
    }

    async fn record_interaction(
        &self,
        request: Request<InteractionRequest>,
    ) -> Result<Response<RecordInteractionResponse>, Status> {
        let req = self
            .auth
            .reader_request(request, "RecordInteraction", |r| &mut r.user_id)
            .await?;
        self.interaction(req).await?;
        Ok(Response::new(RecordInteractionResponse {}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_field_is_invalid_argument_naming_it() {
        let status = Status::from(page_limit(101).unwrap_err());
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(status.message(), "limit: at most 100");
        let violations = status.get_details_bad_request().unwrap().field_violations;
        assert_eq!(violations[0].field, "limit");
        assert_eq!(
            Status::from(user_id(" ").unwrap_err()).message(),
            "user_id: required"
        );
    }

    #[test]
    fn an_expired_cursor_is_a_failed_precondition_and_a_missing_story_not_found() {
        let expired = Status::from(ApiError::from(feed::PageError::Expired));
        assert_eq!(expired.code(), tonic::Code::FailedPrecondition);
        assert_eq!(
            expired.message(),
            "cursor: expired; start again without a cursor"
        );
        let missing = Status::from(ApiError::NoStory("s1".into()));
        assert_eq!(missing.code(), tonic::Code::NotFound);
        assert_eq!(missing.message(), "story s1 does not exist or was killed");
    }
}
