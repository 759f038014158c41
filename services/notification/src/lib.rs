//! Notification: breaking-news alerts to the right devices, never twice.
//!
//! It keeps devices (registered here, durable in the compacted `devices` topic) and audiences
//! (who follows which topic, read from the `profiles` topic) in Redis. For each story on
//! `stories.enriched` with urgency ≤ the configured maximum (2 by default) it sends one alert
//! to every device of every follower of the story's topics, at most once per (story, device).
//! Components:
//!
//! - [`config`] — the service's environment variables;
//! - [`store`] — the Redis layout, the sent ledger and alert counts;
//! - [`channel`] — delivery channels (webhook);
//! - [`fanout`] — the alert decision and the bounded, de-duplicated fan-out;
//! - [`api`] — `newsroom.v1.NotificationService`;
//! - [`run`] — wiring, the two consumer loops, serving and draining.

pub mod api;
pub mod channel;
pub mod config;
pub mod fanout;
pub mod store;

use std::collections::BTreeSet;
use std::sync::Arc;

use newsroom_platform::kafka::{
    self, ConsumerSettings, Handler, HandlerError, Producer, Record, topics as t,
};
use newsroom_platform::metrics::{KafkaMetrics, Registry};
use newsroom_platform::redis::RedisStore;
use newsroom_platform::server::{self, Listeners, Readiness};
use newsroom_platform::shutdown::Shutdown;
use newsroom_proto::Message as _;
use newsroom_proto::v1::notification_service_server::NotificationServiceServer;
use newsroom_proto::v1::{EnrichedStory, TargetKind, UserProfile};

pub use config::Config;

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("kafka: {0}")]
    Kafka(#[from] newsroom_platform::kafka::rdkafka::error::KafkaError),
    #[error("redis: {0}")]
    Redis(#[from] newsroom_platform::redis::redis::RedisError),
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
    #[error(transparent)]
    Serve(#[from] server::ServeError),
}

fn retry(e: newsroom_platform::redis::redis::RedisError) -> HandlerError {
    HandlerError::Retryable(format!("redis: {e}"))
}

/// Decides and sends alerts for `stories.enriched`.
pub struct StoryHandler {
    fanout: fanout::Fanout,
    max_urgency: u32,
}

impl Handler for StoryHandler {
    async fn handle(&self, record: &Record) -> Result<(), HandlerError> {
        let Some(payload) = record.payload.as_deref() else {
            return Ok(());
        };
        let enriched = EnrichedStory::decode(payload)
            .map_err(|e| HandlerError::Poison(format!("not a newsroom.v1.EnrichedStory: {e}")))?;
        let alert = fanout::alert_of(&enriched)
            .filter(|a| !a.story_id.is_empty())
            .ok_or_else(|| HandlerError::Poison("EnrichedStory without a story id".into()))?;
        let store = &self.fanout.store;
        let status = enriched.story.as_ref().map_or(0, |s| s.pubstatus);
        if status == newsroom_proto::v1::PubStatus::Canceled as i32 {
            // A killed story is never alerted, not even by an editor later.
            store.forget_story(&alert.story_id).await.map_err(retry)?;
            return Ok(());
        }
        store.put_story(&alert).await.map_err(retry)?;
        if !fanout::is_breaking(&enriched, self.max_urgency) {
            return Ok(());
        }
        let users = store.followers(&alert.topics).await.map_err(retry)?;
        let devices = store.devices_of(&users).await.map_err(retry)?;
        tracing::info!(story.id = %alert.story_id, users = users.len(), devices = devices.len(), "breaking story: alerting followers");
        self.fanout.send(&alert, devices).await.map_err(retry)
    }
}

/// Materialises audiences from the compacted `profiles` topic.
pub struct ProfileHandler {
    store: store::AlertStore,
}

impl Handler for ProfileHandler {
    async fn handle(&self, record: &Record) -> Result<(), HandlerError> {
        let (user, topics) = match record.payload.as_deref() {
            // A tombstone: the user is gone, and so are their follows.
            None => (record.key_str(), BTreeSet::new()),
            Some(bytes) => {
                let profile = UserProfile::decode(bytes).map_err(|e| {
                    HandlerError::Poison(format!("not a newsroom.v1.UserProfile: {e}"))
                })?;
                let topics = profile
                    .follows
                    .iter()
                    .filter(|f| f.kind == TargetKind::Topic as i32)
                    .map(|f| f.value.clone())
                    .collect();
                (profile.user_id, topics)
            }
        };
        if user.is_empty() {
            return Err(HandlerError::Poison("profile without a user id".into()));
        }
        self.store
            .set_user_topics(&user, &topics)
            .await
            .map_err(retry)
    }
}

/// Runs notification until `shutdown` is triggered, then drains.
pub async fn run(config: Config, listeners: Listeners, shutdown: Shutdown) -> Result<(), RunError> {
    let platform = &config.platform;
    let mut registry = Registry::default();
    let kafka_metrics = KafkaMetrics::register(&mut registry);

    kafka::ensure_topics(
        platform,
        &[
            t::STORIES_ENRICHED,
            t::STORIES_ENRICHED_DLQ,
            t::PROFILES,
            t::PROFILES_DLQ,
            t::DEVICES,
            t::NOTIFICATIONS_RECEIPTS,
        ],
    )
    .await?;
    let producer = Producer::new(platform, kafka_metrics.clone())?;
    let redis = RedisStore::connect(&platform.redis_url, &platform.redis_prefix).await?;
    let store = store::AlertStore::new(redis);
    let fanout = fanout::Fanout::new(
        store.clone(),
        channel::webhook::Webhook::new(config.webhook_timeout)?,
        producer.clone(),
        platform.topic(t::NOTIFICATIONS_RECEIPTS),
        platform.topic(t::DEVICES),
        config.fanout_concurrency,
    );

    // Two loops, two groups: a slow fan-out must not hold back audience updates.
    let stories = Arc::new(StoryHandler {
        fanout: fanout.clone(),
        max_urgency: config.alert_max_urgency,
    });
    let profiles = Arc::new(ProfileHandler {
        store: store.clone(),
    });
    let mut story_settings = ConsumerSettings::new(platform, &[t::STORIES_ENRICHED]);
    story_settings.group_id = format!("{}-stories", platform.consumer_group);
    let mut profile_settings = ConsumerSettings::new(platform, &[t::PROFILES]);
    profile_settings.group_id = format!("{}-profiles", platform.consumer_group);
    kafka::spawn_consumer(
        platform,
        story_settings,
        stories,
        &producer,
        &kafka_metrics,
        &shutdown,
    );
    kafka::spawn_consumer(
        platform,
        profile_settings,
        profiles,
        &producer,
        &kafka_metrics,
        &shutdown,
    );

    let ready = Readiness::default();
    ready.set(true);
    let api = api::NotificationApi::new(fanout, producer.clone(), platform.topic(t::DEVICES));
    let routes = tonic::service::Routes::new(NotificationServiceServer::new(api));
    tracing::info!(grpc = %listeners.grpc_addr(), admin = %listeners.admin_addr(), "notification serving");
    let served = server::serve(
        "newsroom.v1.NotificationService",
        routes,
        listeners,
        Arc::new(registry),
        ready,
        shutdown.clone(),
    )
    .await;
    shutdown.trigger();
    shutdown.drain(platform.drain_timeout).await;
    producer.flush(platform.drain_timeout);
    served?;
    Ok(())
}
