//! Losing Redis loses nothing: the state is rebuilt from Kafka.
//!
//! A marker key (`rec:{rec}:loaded`) says Redis holds recommendation's state. A background task looks
//! for it every [`CHECK_EVERY`]; when it is gone (Redis flushed, restarted empty, replaced) the
//! task replays the compacted `stories.enriched` (story cache and indexes), the compacted
//! `profiles` (follows) and `interactions` (trending, read history, interests) into Redis, then
//! sets the marker again. Meanwhile the service keeps answering: feeds are degraded (what has
//! been replayed so far, trending and fresh stories as they arrive) but never an error.

use std::time::Duration;

use newsroom_platform::PlatformConfig;
use newsroom_platform::kafka::{self, topics};
use newsroom_platform::shutdown::Shutdown;
use newsroom_proto::Message as _;
use newsroom_proto::v1::{EnrichedStory, Interaction, TargetKind, UserProfile};

use newsroom_platform::redis::{Loaded, Rebuild};

use crate::store::{FeedStore, IndexKey, LOADED_MARKER, RedisError};

/// How often the marker is checked.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);

/// Replaces a reader's follows with those of a profile.
pub async fn set_follows(store: &FeedStore, profile: &UserProfile) -> Result<(), RedisError> {
    let follows = profile.follows.iter().filter_map(|f| {
        let kind = TargetKind::try_from(f.kind).ok()?;
        Some(IndexKey::new(kind, &f.value))
    });
    store.replace_follows(&profile.user_id, follows).await
}

/// Rebuilds everything from the topics; returns (stories, profiles, interactions) replayed.
pub async fn rebuild(
    store: &FeedStore,
    config: &PlatformConfig,
) -> Result<(usize, usize, usize), kafka::rdkafka::error::KafkaError> {
    let stories = kafka::replay(
        config,
        &config.topic(topics::STORIES_ENRICHED),
        |r| async move {
            if let Some(s) = r
                .payload
                .as_deref()
                .and_then(|p| EnrichedStory::decode(p).ok())
                && let Err(e) = store.apply(&s).await
            {
                tracing::warn!(error = %e, "rebuild: story not restored");
            }
        },
    )
    .await?;
    let profiles = kafka::replay(config, &config.topic(topics::PROFILES), |r| async move {
        if let Some(p) = r
            .payload
            .as_deref()
            .and_then(|p| UserProfile::decode(p).ok())
            && let Err(e) = set_follows(store, &p).await
        {
            tracing::warn!(error = %e, "rebuild: profile not restored");
        }
    })
    .await?;
    let interactions = kafka::replay(
        config,
        &config.topic(topics::INTERACTIONS),
        |r| async move {
            if let Some(i) = r
                .payload
                .as_deref()
                .and_then(|p| Interaction::decode(p).ok())
                && let Err(e) = crate::interests::apply(store, &i).await
            {
                tracing::warn!(error = %e, "rebuild: interaction not restored");
            }
        },
    )
    .await?;
    Ok((stories, profiles, interactions))
}

/// Keeps Redis loaded until shutdown.
pub async fn keep_loaded(store: FeedStore, config: PlatformConfig, shutdown: Shutdown) {
    loop {
        let loaded = Rebuild::if_lost(store.redis(), LOADED_MARKER, "recommendation", || {
            rebuild(&store, &config)
        })
        .await;
        if let Loaded::Rebuilt((stories, profiles, interactions)) = loaded {
            // First pages served while degraded are dropped, so readers see the whole feed
            // again at once.
            if let Err(e) = store.forget_all_first_pages().await {
                tracing::warn!(error = %e, "could not drop cached first pages");
            }
            tracing::info!(stories, profiles, interactions, "state rebuilt from Kafka");
        }
        tokio::select! {
            _ = shutdown.requested() => return,
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
    }
}
