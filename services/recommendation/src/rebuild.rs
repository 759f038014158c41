//! Losing Redis loses nothing: the state is rebuilt from Kafka.
//!
//! A marker key (`rec:loaded`) says Redis holds recommendation's state. A background task looks
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

use crate::store::{FeedStore, IndexKey, RedisError};

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
        match store.is_loaded().await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!("recommendation state missing from Redis: rebuilding from Kafka");
                match store.begin_rebuild().await {
                    Ok(guard) => match rebuild(&store, &config).await {
                        Ok((stories, profiles, interactions)) => match guard.finish().await {
                            Ok(true) => {
                                // First pages served while degraded are dropped, so readers see
                                // the whole feed again at once.
                                if let Err(e) = store.forget_all_first_pages().await {
                                    tracing::warn!(error = %e, "could not drop cached first pages");
                                }
                                tracing::info!(
                                    stories,
                                    profiles,
                                    interactions,
                                    "state rebuilt from Kafka"
                                );
                            }
                            Ok(false) => tracing::warn!(
                                "Redis lost the state again during the rebuild; rebuilding again"
                            ),
                            Err(e) => tracing::warn!(error = %e, "could not mark the state loaded"),
                        },
                        Err(e) => tracing::error!(error = %e, "rebuild failed; retrying"),
                    },
                    Err(e) => tracing::warn!(error = %e, "redis unavailable"),
                }
            }
            // Redis itself is away: nothing to do until it is back.
            Err(e) => tracing::warn!(error = %e, "redis unavailable"),
        }
        tokio::select! {
            _ = shutdown.requested() => return,
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
    }
}
