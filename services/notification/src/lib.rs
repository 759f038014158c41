//! Notification: breaking-news alerts to the right readers in seconds, never twice.
//!
//! Devices (with their preferences) are registered here and kept in the compacted `devices`
//! topic; who follows what comes from the compacted `profiles` topic; both are indexed in Redis.
//! A story on `stories.enriched` that is urgent enough alerts the followers of its topics and
//! entities; an editor's `SendAlert` goes through `notifications.alerts` and alerts everyone, the
//! followers or a segment. Every device gets at most one alert per story, filtered by its
//! preferences, through the channel it registered with. Components:
//!
//! - [`config`] — the environment variables;
//! - [`secret`] — keys in configuration, never printed;
//! - [`channel`] — the `Channel` trait and the channels (webhook, Web Push, APNs, FCM, in-app);
//! - [`preferences`] — quiet hours, budgets, language, opt-out: the per-device filter;
//! - [`decision`] — which stories alert, and the alert they send;
//! - [`audience`] — who an alert is for, streamed page by page; segments;
//! - [`suppression`] — why a device was not alerted, one spelling for ledger, receipts and
//!   metrics;
//! - [`store`] — the Redis layout (a folder: devices, audiences, stories, alert runs and
//!   counts, the at-most-once ledger; each Lua script a `.lua` file beside its Rust);
//! - [`state`] — the state rebuilt from Kafka whenever Redis is found to have lost it;
//! - [`streams`] — `StreamAlerts` and its caps per reader and per replica;
//! - [`sealed`] — editors' alerts of embargoed stories, sent at the release, never before;
//! - [`briefing`] — daily briefings at each reader's local time;
//! - [`fanout`] — the bounded, crash-safe fan-out (a folder: the run, one page of the audience,
//!   the per-device send shared with corrections, corrections, the alert's status);
//! - [`receipts`] — one `DeliveryReceipt` per device and alert, published in the background;
//! - [`feedback`] — alerts opened or dismissed, fed back to the feed as interactions;
//! - [`metrics`] — typed events behind `/metrics`;
//! - [`api`] — `newsroom.v1.NotificationService`;
//! - [`run`] — wiring: five consumer loops (the breaking and the routine lane, audiences,
//!   devices, held stories), the gRPC server, the drain.

pub mod api;
pub mod audience;
pub mod briefing;
pub mod channel;
pub mod config;
pub mod decision;
pub mod fanout;
pub mod feedback;
pub mod metrics;
pub mod preferences;
pub mod receipts;
pub mod sealed;
pub mod secret;
pub mod state;
pub mod store;
pub mod streams;
pub mod suppression;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::SystemTime;

use newsroom_platform::kafka::{ConsumerSettings, Handler, HandlerError, Record, topics as t};
use newsroom_platform::server::Listeners;
use newsroom_platform::service::{Service, ServiceError};
use newsroom_platform::shutdown::Shutdown;
use newsroom_proto::v1::audience::Target;
use newsroom_proto::v1::notification_service_server::NotificationServiceServer;
use newsroom_proto::v1::{AlertRequest, Device, EnrichedStory, TargetKind, UserProfile};

pub use config::Config;

use crate::audience::Audience;
use crate::decision::{Lane, Rules};
use crate::fanout::{AlertJob, Fanout, FanoutError};

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error("kafka: {0}")]
    Kafka(#[from] newsroom_platform::kafka::rdkafka::error::KafkaError),
    #[error("redis: {0}")]
    Redis(#[from] newsroom_platform::redis::redis::RedisError),
    #[error("channels: {0}")]
    Channels(String),
}

fn retry(e: newsroom_platform::redis::redis::RedisError) -> HandlerError {
    HandlerError::retryable(e)
}

impl From<FanoutError> for HandlerError {
    fn from(e: FanoutError) -> Self {
        // Either way the record must come back: an interrupted fan-out resumes on redelivery.
        HandlerError::retryable(e)
    }
}

/// Decides and sends alerts: stories from `stories.enriched`, editor requests from
/// `notifications.alerts` and `notifications.alerts.breaking`. One per lane: the breaking
/// lane's reads the stories and the breaking requests, the routine lane's the routine requests.
pub struct AlertHandler {
    fanout: Fanout,
    state: state::State,
    /// The editors' request topics (with the platform's prefix); any other is stories.
    request_topics: [String; 2],
    rules: Rules,
}

impl AlertHandler {
    /// Followers, or the canary user alone for a canary story.
    fn story_audience(&self, enriched: &EnrichedStory) -> Audience {
        if enriched.story.as_ref().is_some_and(|s| s.canary) {
            Audience::Canary(self.rules.canary_user.clone())
        } else {
            Audience::Followers
        }
    }

    async fn story(&self, record: &Record) -> Result<(), HandlerError> {
        let Some(enriched) = record.decode_or_tombstone::<EnrichedStory>()? else {
            return Ok(());
        };
        let alert = decision::alert_of(&enriched)
            .ok_or_else(|| HandlerError::poison("EnrichedStory without a story id"))?;
        // Never before the release: a story whose embargo is still ahead of this clock (one
        // behind ingest's) waits, unseen, until it is not.
        if let Some(left) = sealed::embargo_left_ms(&enriched) {
            return Err(HandlerError::retry(format!(
                "story {} is under embargo for another {left} ms",
                alert.story_id
            )));
        }
        let store = &self.fanout.store;
        // Never back to an older version (a replayed, reordered or late record), whether the
        // newer one was an update or a kill: the guard outlives the cached story.
        if !store
            .admit_version(&alert.story_id, alert.version)
            .await
            .map_err(retry)?
        {
            tracing::debug!(story.id = %alert.story_id, version = alert.version, "older version ignored");
            return Ok(());
        }
        if decision::is_killed(&enriched) {
            // A killed story is never alerted, not even by an editor later; the alert it sent
            // is withdrawn from the phones it reached.
            self.retract(&enriched).await?;
            return store.kill_story(&alert.story_id).await.map_err(retry);
        }
        let traceparent = newsroom_platform::telemetry::current_traceparent();
        store
            .put_story(&enriched, traceparent.as_deref())
            .await
            .map_err(retry)?;
        let job = AlertJob {
            facts: decision::facts_of(&enriched),
            audience: self.story_audience(&enriched),
            accepted_at: decision::accepted_at(&enriched),
            event: decision::event_of(&enriched, false),
            expires_at: None,
            alert,
            // The fan-out runs in the story's own trace.
            story_trace: None,
            // A story alerts by itself only when it is breaking.
            lane: Lane::Breaking,
        };
        // A briefing candidate for the readers who follow it (a canary is nobody's news).
        if !matches!(job.audience, Audience::Canary(_)) {
            let accepted = job.accepted_at.map_or_else(
                newsroom_platform::time::now_ms,
                newsroom_platform::time::ms_of,
            );
            store
                .remember_recent(&job.alert.story_id, &job.facts, accepted)
                .await
                .map_err(retry)?;
        }
        let breaking = self.rules.is_breaking(&enriched)
            && decision::is_fresh(&enriched, self.rules.max_age, SystemTime::now());
        // The story's own alert, and the editors' alerts sealed until its release, at once.
        let (own, sealed) = tokio::join!(
            self.own_alert(&enriched, job, breaking),
            self.sealed_alerts(&enriched)
        );
        own.and(sealed)
    }

    /// The alert a story sends by itself: when breaking, once; a correction replaces it.
    async fn own_alert(
        &self,
        enriched: &EnrichedStory,
        job: AlertJob,
        breaking: bool,
    ) -> Result<(), HandlerError> {
        let store = &self.fanout.store;
        let alerted = store
            .alert_fields(&job.alert.story_id)
            .await
            .map_err(retry)?
            .get("version")
            .copied();
        match alerted {
            // Never alerted: alert if breaking.
            None if breaking => {
                tracing::info!(story.id = %job.alert.story_id, "breaking story: alerting followers");
                self.fanout.alert(&job).await?;
            }
            None => {}
            // This very version alerted: a redelivery, maybe after a crash mid fan-out. Run it
            // again; the ledger lets through only the devices not yet answered.
            Some(v) if v == i64::from(job.alert.version) && breaking => {
                self.fanout.alert(&job).await?;
            }
            // A later version never alerts again; a correction replaces the alert.
            Some(v) if i64::from(job.alert.version) > v && decision::is_correction(enriched) => {
                self.fanout.correct(&job).await?;
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// Withdraws the alert a story sent (if it sent one) from the devices it reached, through
    /// the same collapse id, under the headline it went out with. In the breaking lane: a
    /// retraction never waits behind a routine fan-out.
    async fn retract(&self, enriched: &EnrichedStory) -> Result<(), HandlerError> {
        let store = &self.fanout.store;
        let Some(id) = enriched.story.as_ref().map(|s| s.id.clone()) else {
            return Ok(());
        };
        if !store
            .alert_fields(&id)
            .await
            .map_err(retry)?
            .contains_key("version")
        {
            return Ok(());
        }
        // The version that alerted, while it is cached; else the one at hand.
        let alerted = store.story(&id).await.map_err(retry)?;
        let request = AlertRequest {
            story_id: id.clone(),
            retract: true,
            ..Default::default()
        };
        let mut job = editor_job(alerted.as_ref().unwrap_or(enriched), &request, &self.rules)
            .map_err(HandlerError::poison)?;
        job.lane = Lane::Breaking;
        tracing::info!(story.id = %id, "withdrawing the story's alert");
        self.fanout.retract(&job).await?;
        Ok(())
    }

    async fn editor_alert(&self, record: &Record) -> Result<(), HandlerError> {
        let Some(request) = record.decode_or_tombstone::<AlertRequest>()? else {
            return Ok(());
        };
        let store = &self.fanout.store;
        if request.retract {
            return match store.story(&request.story_id).await.map_err(retry)? {
                Some(enriched) => self.retract(&enriched).await,
                // Killed (and so already withdrawn) or forgotten: nothing left to withdraw.
                None => Ok(()),
            };
        }
        // Never alerted late: a request nobody could start in time (the service down, or a
        // new consumer group reading the topic from its start) is dropped, as an old story
        // would not alert by itself. A sealed one counts from the end of its embargo.
        if let Some(age_ms) = sealed::start_of(&request)
            .map(|at| newsroom_platform::time::now_ms() - at)
            .filter(|age| *age > self.rules.max_age.as_millis() as i64)
        {
            tracing::warn!(story.id = %request.story_id, age_s = age_ms / 1000, "editor alert requested too long ago dropped: never alerted late");
            return Ok(());
        }
        if store.is_killed(&request.story_id).await.map_err(retry)? {
            tracing::info!(story.id = %request.story_id, "editor alert for a killed story dropped");
            return Ok(());
        }
        let enriched = match store.story(&request.story_id).await.map_err(retry)? {
            Some(enriched) => enriched,
            None if request.sealed_until.is_some() => {
                // Sealed until the story's release: parked, sent by the story's handler. The
                // story may have arrived meanwhile: then it is sent here (once per device).
                store.seal(&request).await.map_err(retry)?;
                match store.story(&request.story_id).await.map_err(retry)? {
                    None => {
                        tracing::info!(story.id = %request.story_id, by = %request.requested_by, "editor alert sealed until the story's release");
                        return Ok(());
                    }
                    Some(enriched) => {
                        self.sealed_alerts(&enriched).await?;
                        return Ok(());
                    }
                }
            }
            None => {
                return Err(HandlerError::poison(format!(
                    "story {} is unknown",
                    request.story_id
                )));
            }
        };
        let mut job = editor_job(&enriched, &request, &self.rules).map_err(HandlerError::poison)?;
        // The editor's request is its own trace; its fan-out links to the story's.
        job.story_trace = store.story_trace(&request.story_id).await.map_err(retry)?;
        tracing::info!(story.id = %job.alert.story_id, audience = %job.audience.label(), critical = job.alert.critical, lane = job.lane.label(), by = %request.requested_by, "editor alert");
        self.fanout.alert(&job).await?;
        Ok(())
    }
}

impl AlertHandler {
    /// Sends the editors' alerts that were sealed until `enriched`'s release, each unparked
    /// once its fan-out is done.
    async fn sealed_alerts(&self, enriched: &EnrichedStory) -> Result<(), HandlerError> {
        let store = &self.fanout.store;
        let Some(id) = enriched.story.as_ref().map(|s| s.id.as_str()) else {
            return Ok(());
        };
        for (key, request) in store.sealed(id).await.map_err(retry)? {
            match editor_job(enriched, &request, &self.rules) {
                Ok(job) => {
                    tracing::info!(story.id = %id, audience = %job.audience.label(), critical = job.alert.critical, lane = job.lane.label(), by = %request.requested_by, "sealed editor alert: the story is released");
                    self.fanout.alert(&job).await?;
                }
                // A segment removed from the configuration since: nothing to send it to.
                Err(e) => tracing::warn!(story.id = %id, error = %e, "sealed editor alert dropped"),
            }
            store.unseal(id, &key).await.map_err(retry)?;
        }
        Ok(())
    }
}

impl Handler for AlertHandler {
    async fn handle(&self, record: &Record) -> Result<(), HandlerError> {
        // Nothing is decided against a ledger or audiences Redis has lost.
        self.state.ensure_loaded().await?;
        if self.request_topics.contains(&record.topic) {
            self.editor_alert(record).await
        } else {
            self.story(record).await
        }
    }
}

/// Materialises audiences from the compacted `profiles` topic.
pub struct ProfileHandler {
    store: store::AlertStore,
    state: state::State,
}

impl Handler for ProfileHandler {
    async fn handle(&self, record: &Record) -> Result<(), HandlerError> {
        self.state.ensure_loaded().await?;
        // A tombstone: the user is gone, and so are their follows.
        let profile = record.decode_or_tombstone::<UserProfile>()?;
        let user = profile
            .as_ref()
            .map_or_else(|| record.key_str(), |p| p.user_id.clone());
        if user.is_empty() {
            return Err(HandlerError::poison("profile without a user id"));
        }
        apply_profile(&self.store, &user, profile.as_ref())
            .await
            .map_err(retry)
    }
}

/// The alert an editor's request makes of `enriched` (without the story's trace): its
/// audience (a canary reaches no reader, whatever was asked), critical or not, and an
/// escalation of the story's news event (it reaches devices the event already reached, and
/// is recorded as reaching them), and its lane. Shared by the consumer and `SendAlert`'s dry
/// run.
pub(crate) fn editor_job(
    enriched: &EnrichedStory,
    request: &AlertRequest,
    rules: &Rules,
) -> Result<AlertJob, String> {
    let mut alert = decision::alert_of(enriched).ok_or("cached story without an id")?;
    alert.critical = request.critical;
    let audience = match request.audience.clone().and_then(|a| a.target) {
        _ if enriched.story.as_ref().is_some_and(|s| s.canary) => {
            Audience::Canary(rules.canary_user.clone())
        }
        Some(Target::Everyone(true)) => Audience::Everyone,
        Some(Target::Segment(name)) => {
            let segment = rules
                .segments
                .get(&name)
                .cloned()
                .ok_or_else(|| format!("segment {name} is not configured"))?;
            Audience::Segment(name, segment)
        }
        _ => Audience::Followers,
    };
    Ok(AlertJob {
        facts: decision::facts_of(enriched),
        accepted_at: decision::accepted_at(enriched),
        audience,
        event: decision::event_of(enriched, true),
        expires_at: request
            .expires_at
            .and_then(|t| SystemTime::try_from(t).ok()),
        lane: rules.editor_lane(enriched, request.critical),
        alert,
        story_trace: None,
    })
}

/// Sets a user's audiences to what their profile follows (`None`: none, the user is gone).
pub(crate) async fn apply_profile(
    store: &store::AlertStore,
    user: &str,
    profile: Option<&UserProfile>,
) -> Result<(), store::RedisError> {
    let of = |kind: TargetKind| -> BTreeSet<String> {
        profile
            .iter()
            .flat_map(|p| &p.follows)
            .filter(|f| f.kind == kind as i32)
            .map(|f| f.value.clone())
            .collect()
    };
    store
        .set_follows(
            user,
            &of(TargetKind::Topic),
            &of(TargetKind::Entity),
            &of(TargetKind::Cluster),
        )
        .await
}

/// Rebuilds the device index from the compacted `devices` topic (after a lost Redis, or for
/// devices another replica registered).
pub struct DeviceHandler {
    store: store::AlertStore,
    state: state::State,
}

impl Handler for DeviceHandler {
    async fn handle(&self, record: &Record) -> Result<(), HandlerError> {
        self.state.ensure_loaded().await?;
        match record.decode_or_tombstone::<Device>()? {
            None => {
                let id = record.key_str();
                if id.is_empty() {
                    return Err(HandlerError::poison("device tombstone without a key"));
                }
                self.store
                    .remove_device(&id, record.offset)
                    .await
                    .map(|_| ())
                    .map_err(retry)
            }
            Some(device) => {
                if device.device_id.is_empty() || device.user_id.is_empty() {
                    return Err(HandlerError::poison("device without an id or a user"));
                }
                self.store
                    .put_device(&device, record.offset)
                    .await
                    .map(|_| ())
                    .map_err(retry)
            }
        }
    }
}

/// Runs notification until `shutdown` is triggered, then drains.
pub async fn run(config: Config, listeners: Listeners, shutdown: Shutdown) -> Result<(), RunError> {
    run_with_channels(config, listeners, shutdown, |_| {}).await
}

/// [`run`], letting the caller adjust the channels after they were built from the config
/// (benchmarks plug in a counting sink).
pub async fn run_with_channels(
    config: Config,
    listeners: Listeners,
    shutdown: Shutdown,
    adjust: impl FnOnce(&mut channel::Channels),
) -> Result<(), RunError> {
    let platform = &config.platform;
    let mut service = Service::start(
        "newsroom.v1.NotificationService",
        platform,
        listeners,
        shutdown,
        &[
            t::STORIES_ENRICHED,
            t::STORIES_ENRICHED_DLQ,
            t::PROFILES,
            t::PROFILES_DLQ,
            t::DEVICES,
            t::DEVICES_DLQ,
            t::NOTIFICATIONS_RECEIPTS,
            t::NOTIFICATIONS_ALERTS,
            t::NOTIFICATIONS_ALERTS_DLQ,
            t::NOTIFICATIONS_ALERTS_BREAKING,
            t::NOTIFICATIONS_ALERTS_BREAKING_DLQ,
            t::STORIES_HELD,
            t::INTERACTIONS,
        ],
    )
    .await?;
    let metrics = metrics::Metrics::register(service.registry());
    let producer = service.producer()?;
    let redis = service.state_redis().await?;
    let store = store::AlertStore::new(redis.clone());
    let receipts = receipts::Receipts::new(platform, platform.topic(t::NOTIFICATIONS_RECEIPTS))?;
    service.on_stop({
        let receipts = receipts.clone();
        move |left| receipts.flush(left)
    });
    let mut channels = channel::Channels::build(
        &config.channels,
        &channel::ChannelContext {
            default_concurrency: config.fanout_concurrency,
            default_timeout: config.webhook_timeout,
            redis: redis.clone(),
            allow_private: config.webhook_allow_private,
        },
    )
    .map_err(RunError::Channels)?;
    adjust(&mut channels);
    for name in channels.names() {
        metrics.declare_channel(name);
    }
    for c in &config.channels {
        if let channel::ChannelConfig::Webhook(w) = c
            && !w.is_signed()
        {
            tracing::warn!(
                "webhook alerts are unsigned: set a secret in NEWSROOM_CHANNELS or {}",
                config::NEWSROOM_WEBHOOK_SECRET
            );
        }
    }
    config.auth.log_start();
    tracing::info!(channels = ?channels.names(), "channels ready");
    let fanout = Fanout {
        store: store.clone(),
        channels,
        producer: producer.clone(),
        receipts: receipts.clone(),
        devices_topic: platform.topic(t::DEVICES),
        settings: fanout::FanoutSettings {
            batch: config.fanout_batch,
            correction_window: config.correction_window,
        },
        shutdown: service.shutdown().clone(),
        metrics,
    };

    // The state in Redis, rebuilt from Kafka whenever it is found gone (see [`state`]); at
    // start before any consumer runs, so none begins by waiting for it.
    let state = state::State::new(store.clone());
    state::load_if_lost(&state, platform, &receipts).await;
    service.task(
        "notification state",
        state::keep_loaded(
            state.clone(),
            platform.clone(),
            receipts.clone(),
            service.shutdown().clone(),
        ),
    );

    // Five loops, five groups: a long fan-out must not hold back device or audience updates,
    // and a routine one must not hold back a flash (the two lanes, see [`decision::Lane`]).
    let rules = config.rules();
    let request_topics = [
        platform.topic(t::NOTIFICATIONS_ALERTS),
        platform.topic(t::NOTIFICATIONS_ALERTS_BREAKING),
    ];
    for (lane, topics) in [
        (
            Lane::Breaking,
            &[t::STORIES_ENRICHED, t::NOTIFICATIONS_ALERTS_BREAKING][..],
        ),
        (Lane::Routine, &[t::NOTIFICATIONS_ALERTS][..]),
    ] {
        service.consumer(
            ConsumerSettings::new(platform, topics)
                // The breaking lane keeps the group's old name: its offsets on
                // stories.enriched survive an upgrade.
                .in_group(
                    platform,
                    match lane {
                        Lane::Breaking => "stories",
                        Lane::Routine => "alerts",
                    },
                )
                // A fan-out runs a minute for a million devices (or while a provider is
                // down): the next alerts of its partition do not wait for it.
                .concurrently(config.alerts_per_partition),
            Arc::new(AlertHandler {
                fanout: fanout.clone(),
                state: state.clone(),
                request_topics: request_topics.clone(),
                rules: rules.clone(),
            }),
        )?;
    }
    service.consumer(
        ConsumerSettings::new(platform, &[t::PROFILES]).in_group(platform, "profiles"),
        Arc::new(ProfileHandler {
            store: store.clone(),
            state: state.clone(),
        }),
    )?;
    service.consumer(
        ConsumerSettings::new(platform, &[t::DEVICES]).in_group(platform, "devices"),
        Arc::new(DeviceHandler {
            store: store.clone(),
            state: state.clone(),
        }),
    )?;
    service.task(
        "briefings",
        briefing::run(fanout.clone(), state.clone(), service.shutdown().clone()),
    );
    service.consumer(
        ConsumerSettings::new(platform, &[t::STORIES_HELD]).in_group(platform, "held"),
        Arc::new(sealed::HeldHandler {
            store: store.clone(),
            state,
        }),
    )?;

    let api = api::NotificationApi {
        fanout,
        producer: producer.clone(),
        devices_topic: platform.topic(t::DEVICES),
        routine_topic: request_topics[0].clone(),
        breaking_topic: request_topics[1].clone(),
        auth: config.auth.clone(),
        rules,
        feedback: feedback::Feedback {
            store: store.clone(),
            producer,
            interactions_topic: platform.topic(t::INTERACTIONS),
        },
        webhook_allow_private: config.webhook_allow_private,
        shutdown: service.shutdown().clone(),
        streams: streams::StreamSlots::new(config.streams_per_reader, config.streams_max),
    };
    let dead_letters = service.dead_letters(config.auth.clone())?;
    service
        .serve(
            tonic::service::Routes::new(NotificationServiceServer::new(api))
                .add_service(dead_letters),
        )
        .await?;
    Ok(())
}
