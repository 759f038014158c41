//! `newsroom.v1.RecommendationService`.
//!
//! Requests are validated at the edge (`INVALID_ARGUMENT` naming the field); Redis or Kafka
//! being away is `UNAVAILABLE`. Follow changes are written to the compacted `profiles` topic
//! (the record of truth, which notification also reads) before the call answers.

use std::time::{Instant, SystemTime};

use newsroom_platform::kafka::Producer;
use newsroom_proto::Message as _;
use newsroom_proto::media_topics;
use newsroom_proto::v1::recommendation_service_server::RecommendationService;
use newsroom_proto::v1::{
    EnrichedStory, FollowRequest, GetFeedRequest, GetFeedResponse, GetProfileRequest,
    GetStoryRequest, GetTrendingRequest, GetTrendingResponse, Interaction, InteractionKind,
    InteractionRequest, RecordInteractionResponse, TargetKind, UserProfile,
};
use tonic::{Request, Response, Status};

use crate::feed::{self, Cursor};
use crate::interests;
use crate::metrics::{CacheLookup, Metrics};
use crate::store::{FeedStore, IndexKey};
use newsroom_platform::redis::redis::{self, AsyncCommands as _};

/// Most items a page may ask for.
pub const MAX_LIMIT: u32 = 100;
/// Items of a page when the caller does not say.
pub const DEFAULT_LIMIT: u32 = 20;

pub struct RecommendationApi {
    store: FeedStore,
    producer: Producer,
    platform: newsroom_platform::PlatformConfig,
    profiles_topic: String,
    interactions_topic: String,
    enriched_topic: String,
    metrics: Metrics,
}

impl RecommendationApi {
    pub fn new(
        store: FeedStore,
        producer: Producer,
        platform: newsroom_platform::PlatformConfig,
        metrics: Metrics,
    ) -> Self {
        use newsroom_platform::kafka::topics;
        RecommendationApi {
            store,
            producer,
            profiles_topic: platform.topic(topics::PROFILES),
            interactions_topic: platform.topic(topics::INTERACTIONS),
            enriched_topic: platform.topic(topics::STORIES_ENRICHED),
            platform,
            metrics,
        }
    }

    /// One page of a reader's feed (`GetFeed` minus its timing).
    async fn feed_page(&self, req: GetFeedRequest) -> Result<GetFeedResponse, Status> {
        let user = user_id(&req.user_id)?;
        let limit = match req.limit {
            0 => DEFAULT_LIMIT,
            n if n > MAX_LIMIT => {
                return Err(Status::invalid_argument(format!(
                    "limit: at most {MAX_LIMIT}"
                )));
            }
            n => n,
        } as usize;
        let cursor = match req.cursor.trim() {
            "" => None,
            c => Some(Cursor::decode(c).ok_or_else(|| {
                Status::invalid_argument("cursor: not a cursor returned by GetFeed")
            })?),
        };
        let (items, next_cursor) = feed::page(&self.store, user, limit, cursor.as_ref())
            .await
            .map_err(|e| match e {
                feed::PageError::Expired => Status::failed_precondition(e.to_string()),
                feed::PageError::Redis(r) => unavailable(r),
            })?;
        Ok(GetFeedResponse { items, next_cursor })
    }

    async fn change_follow(&self, req: FollowRequest, follow: bool) -> Result<UserProfile, Status> {
        let user = user_id(&req.user_id)?;
        let target = req
            .target
            .ok_or_else(|| Status::invalid_argument("target: required"))?;
        let kind = TargetKind::try_from(target.kind)
            .ok()
            .filter(|k| *k != TargetKind::Unspecified)
            .ok_or_else(|| {
                Status::invalid_argument("target.kind: one of TOPIC, ENTITY, SECTION, AUTHOR")
            })?;
        let value = target.value.trim();
        if value.is_empty() {
            return Err(Status::invalid_argument("target.value: required"));
        }
        if kind == TargetKind::Topic && !media_topics::is_code(value) {
            return Err(Status::invalid_argument(format!(
                "target.value: {value:?} is not an IPTC Media Topic code (e.g. medtop:13000000)"
            )));
        }
        let follows = self
            .store
            .set_follow(user, &IndexKey::new(kind, value), follow)
            .await
            .map_err(unavailable)?;
        let profile = UserProfile {
            user_id: user.to_owned(),
            follows: follows.iter().map(IndexKey::target).collect(),
            updated_at: Some(SystemTime::now().into()),
        };
        // The cached first page no longer says what the reader wants.
        let _: () = self
            .store
            .redis()
            .conn()
            .del(feed::first_page_key(&self.store, user))
            .await
            .map_err(unavailable)?;
        self.producer
            .send(&self.profiles_topic, user, &profile.encode_to_vec())
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(profile)
    }
}

fn user_id(raw: &str) -> Result<&str, Status> {
    let user = raw.trim();
    if user.is_empty() {
        return Err(Status::invalid_argument("user_id: required"));
    }
    if user.len() > 128 {
        return Err(Status::invalid_argument("user_id: at most 128 bytes"));
    }
    Ok(user)
}

fn unavailable(e: newsroom_platform::redis::redis::RedisError) -> Status {
    Status::unavailable(format!("feed store unavailable: {e}"))
}

#[tonic::async_trait]
impl RecommendationService for RecommendationApi {
    async fn get_feed(
        &self,
        request: Request<GetFeedRequest>,
    ) -> Result<Response<GetFeedResponse>, Status> {
        let started = Instant::now();
        let page = self.feed_page(request.into_inner()).await;
        self.metrics.feed_answered(started.elapsed());
        page.map(Response::new)
    }

    async fn get_trending(
        &self,
        request: Request<GetTrendingRequest>,
    ) -> Result<Response<GetTrendingResponse>, Status> {
        let req = request.into_inner();
        let limit = match req.limit {
            0 => DEFAULT_LIMIT,
            n if n > MAX_LIMIT => {
                return Err(Status::invalid_argument(format!(
                    "limit: at most {MAX_LIMIT}"
                )));
            }
            n => n,
        } as usize;
        let topic = req.topic.trim();
        let (scope, reason) = if topic.is_empty() {
            ("global".to_owned(), "Trending now".to_owned())
        } else if media_topics::is_code(topic) {
            let label = media_topics::label(topic).unwrap_or(topic);
            (format!("topic:{topic}"), format!("Trending in {label}"))
        } else {
            return Err(Status::invalid_argument(format!(
                "topic: {topic:?} is not an IPTC Media Topic code"
            )));
        };
        let hot = interests::trending(&self.store, &scope, limit)
            .await
            .map_err(unavailable)?;
        let ids: Vec<String> = hot.iter().map(|(id, _)| id.clone()).collect();
        let stories = self.store.page_stories(&ids).await.map_err(unavailable)?;
        let items = hot
            .iter()
            .zip(stories)
            .filter_map(|((_, score), s)| {
                let enriched = s?;
                Some(newsroom_proto::v1::FeedItem {
                    story: Some(enriched.story.clone()?),
                    score: *score,
                    reasons: vec![reason.clone()],
                    topics: enriched
                        .enrichment
                        .as_ref()
                        .map(|e| e.topics.clone())
                        .unwrap_or_default(),
                })
            })
            .collect();
        Ok(Response::new(GetTrendingResponse { items }))
    }

    async fn get_story(
        &self,
        request: Request<GetStoryRequest>,
    ) -> Result<Response<EnrichedStory>, Status> {
        let id = request.into_inner().story_id;
        if id.trim().is_empty() {
            return Err(Status::invalid_argument("story_id: required"));
        }
        let id = id.trim();
        if let Some(story) = self.store.story(id).await.map_err(unavailable)? {
            self.metrics.story_lookup(CacheLookup::Hit);
            return Ok(Response::new(story));
        }
        self.metrics.story_lookup(CacheLookup::Miss);
        // A cache miss: ask the record of truth, the compacted stories.enriched.
        let found =
            newsroom_platform::kafka::latest_for_key(&self.platform, &self.enriched_topic, id)
                .await
                .map_err(|e| Status::unavailable(format!("stories.enriched: {e}")))?
                .and_then(|bytes| EnrichedStory::decode(bytes.as_slice()).ok())
                .filter(|s| {
                    s.story.as_ref().is_some_and(|s| {
                        s.pubstatus != newsroom_proto::v1::PubStatus::Canceled as i32
                            && s.pubstatus != newsroom_proto::v1::PubStatus::Withheld as i32
                    })
                });
        match found {
            Some(story) => {
                // Warm the cache for the next reader.
                let _ = self.store.apply(&story).await;
                Ok(Response::new(story))
            }
            None => Err(Status::not_found(format!(
                "story {id} does not exist or was killed"
            ))),
        }
    }

    async fn follow(
        &self,
        request: Request<FollowRequest>,
    ) -> Result<Response<UserProfile>, Status> {
        Ok(Response::new(
            self.change_follow(request.into_inner(), true).await?,
        ))
    }

    async fn unfollow(
        &self,
        request: Request<FollowRequest>,
    ) -> Result<Response<UserProfile>, Status> {
        Ok(Response::new(
            self.change_follow(request.into_inner(), false).await?,
        ))
    }

    async fn get_profile(
        &self,
        request: Request<GetProfileRequest>,
    ) -> Result<Response<UserProfile>, Status> {
        let req = request.into_inner();
        let user = user_id(&req.user_id)?;
        let follows = self.store.follows(user).await.map_err(unavailable)?;
        Ok(Response::new(UserProfile {
            user_id: user.to_owned(),
            follows: follows.iter().map(IndexKey::target).collect(),
            updated_at: None,
        }))
    }

    async fn record_interaction(
        &self,
        request: Request<InteractionRequest>,
    ) -> Result<Response<RecordInteractionResponse>, Status> {
        let req = request.into_inner();
        let user = user_id(&req.user_id)?;
        if req.story_id.trim().is_empty() {
            return Err(Status::invalid_argument("story_id: required"));
        }
        if !matches!(InteractionKind::try_from(req.kind), Ok(k) if k != InteractionKind::Unspecified)
        {
            return Err(Status::invalid_argument(
                "kind: one of VIEW, CLICK, READ, SHARE, HIDE",
            ));
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
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        // Read and hidden stories leave the reader's feed at once; the interactions consumer
        // does the rest (trending, interests) and repeats this harmlessly.
        let kind = InteractionKind::try_from(req.kind).unwrap_or(InteractionKind::Unspecified);
        if matches!(
            kind,
            InteractionKind::Hide
                | InteractionKind::Read
                | InteractionKind::Click
                | InteractionKind::Share
        ) {
            let keys = interests::Keys(&self.store);
            let set = if kind == InteractionKind::Hide {
                keys.hidden(user)
            } else {
                keys.read(user)
            };
            redis::pipe()
                .sadd(&set, &interaction.story_id)
                .del(feed::first_page_key(&self.store, user))
                .query_async::<()>(&mut self.store.redis().conn())
                .await
                .map_err(unavailable)?;
        }
        Ok(Response::new(RecordInteractionResponse {}))
    }
}
