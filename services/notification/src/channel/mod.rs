//! Delivery channels: how an alert reaches a device.
//!
//! A channel is one file: a config struct (deserialised from `NEWSROOM_CHANNELS`, every field
//! documented with its default) and an implementation of [`Channel`]. Adding one is that file,
//! one variant of [`ChannelConfig`] and one parse test. Which channels run, and with which keys
//! and endpoints, is configuration, not code:
//!
//! ```json
//! [
//!   {"type": "webhook", "secret": {"env": "NEWSROOM_WEBHOOK_SECRET"}},
//!   {"type": "web_push", "vapid_private_key": {"file": "/secrets/vapid"}, "subject": "mailto:alerts@example.com"},
//!   {"type": "apns", "team_id": "ABCDE12345", "key_id": "KEY1234567", "private_key": {"file": "/secrets/apns.p8"}, "topic": "com.example.news"},
//!   {"type": "fcm", "project_id": "example-news", "service_account": {"file": "/secrets/fcm.json"}},
//!   {"type": "in_app"}
//! ]
//! ```
//!
//! - [`webhook`] — a signed JSON POST;
//! - [`web_push`] — RFC 8030 + RFC 8291 (`aes128gcm`) + VAPID (RFC 8292);
//! - [`apns`] — Apple Push Notification service, HTTP/2 with an ES256 provider token;
//! - [`fcm`] — Firebase Cloud Messaging HTTP v1 with an OAuth 2 service-account token;
//! - [`in_app`] — alerts streamed to open apps (`StreamAlerts`) through Redis pub/sub;
//! - [`http`] — what the HTTP channels share: retries with backoff honouring `Retry-After`.
//!
//! The registry ([`Channels`]) bounds the concurrent sends of each channel with a semaphore, so
//! a slow provider holds back only its own devices.

pub mod apns;
pub mod fcm;
pub mod http;
pub mod in_app;
pub mod web_push;
pub mod webhook;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use newsroom_platform::config::Env;
use newsroom_platform::redis::RedisStore;
use newsroom_proto::v1::{Alert, Channel as ChannelKind, Device};
use serde::Deserialize;
use tokio::sync::Semaphore;

pub use crate::decision::Lane;

/// What happened to one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The provider accepted the alert.
    Delivered,
    /// It did not, after the channel's retries.
    Failed(String),
    /// The provider says the device no longer exists (HTTP 404/410, APNs `Unregistered`, FCM
    /// `UNREGISTERED`): the device is unregistered.
    Gone(String),
}

/// One story of a daily briefing, as the webhook and Web Push payloads carry it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct BriefingEntry {
    pub story_id: String,
    pub headline: String,
    pub url: String,
    pub urgency: u32,
}

/// The briefing stories of `alert` (none for an alert).
pub fn briefing_of(alert: &Alert) -> Vec<BriefingEntry> {
    alert
        .briefing
        .iter()
        .map(|i| BriefingEntry {
            story_id: i.story_id.clone(),
            headline: i.headline.clone(),
            url: i.url.clone(),
            urgency: i.urgency,
        })
        .collect()
}

/// One alert for one device.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub device: &'a Device,
    pub alert: &'a Alert,
    /// The same for every attempt at this (story, device), across crashes and replicas, so a
    /// receiver can recognise a repeat (webhook `Idempotency-Key`, APNs `apns-id`).
    pub idempotency_key: &'a str,
}

/// A way to reach a device.
pub trait Channel: Send + Sync + 'static {
    /// Which devices this channel serves.
    fn kind(&self) -> ChannelKind;
    /// Checks a device's address and keys at registration; the error names the field.
    fn check_device(&self, device: &Device) -> Result<(), String>;
    /// Sends one alert, with the channel's retries.
    fn send<'a>(&'a self, delivery: Delivery<'a>) -> BoxFuture<'a, SendOutcome>;
}

/// One configured channel: `{"type": "<name>", ...}` in `NEWSROOM_CHANNELS`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChannelConfig {
    Webhook(webhook::WebhookConfig),
    WebPush(web_push::WebPushConfig),
    Apns(apns::ApnsConfig),
    Fcm(fcm::FcmConfig),
    InApp(in_app::InAppConfig),
}

/// What every channel config has under `"limits"`: how many sends at once, how long one may
/// take, how often it is tried.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Concurrent sends on this channel. Default: `NEWSROOM_FANOUT_CONCURRENCY` (64).
    pub concurrency: Option<usize>,
    /// Timeout of one request, in milliseconds. Default: `NEWSROOM_WEBHOOK_TIMEOUT_MS` (5000).
    pub timeout_ms: Option<u64>,
    /// Attempts per alert and device (429, 5xx and connection errors are retried). Default 3.
    pub max_attempts: Option<u32>,
}

/// What channels are built with at run time.
#[derive(Clone)]
pub struct ChannelContext {
    pub default_concurrency: usize,
    pub default_timeout: Duration,
    pub redis: RedisStore,
    /// Webhooks may point at private and loopback addresses (`NEWSROOM_WEBHOOK_ALLOW_PRIVATE`;
    /// by default only when the service itself listens on loopback: the demo and the tests).
    pub allow_private: bool,
}

impl ChannelContext {
    fn timeout(&self, limits: &Limits) -> Duration {
        limits
            .timeout_ms
            .map_or(self.default_timeout, |ms| Duration::from_millis(ms.max(1)))
    }

    fn retry(&self, limits: &Limits) -> http::RetryPolicy {
        http::RetryPolicy {
            max_attempts: limits.max_attempts.unwrap_or(3).max(1),
            ..http::RetryPolicy::default()
        }
    }
}

impl ChannelConfig {
    pub fn kind(&self) -> ChannelKind {
        match self {
            ChannelConfig::Webhook(_) => ChannelKind::Webhook,
            ChannelConfig::WebPush(_) => ChannelKind::WebPush,
            ChannelConfig::Apns(_) => ChannelKind::Apns,
            ChannelConfig::Fcm(_) => ChannelKind::Fcm,
            ChannelConfig::InApp(_) => ChannelKind::InApp,
        }
    }

    /// The `type` name, as written in the configuration.
    pub fn name(&self) -> &'static str {
        name_of(self.kind())
    }

    fn limits(&self) -> &Limits {
        match self {
            ChannelConfig::Webhook(c) => &c.limits,
            ChannelConfig::WebPush(c) => &c.limits,
            ChannelConfig::Apns(c) => &c.limits,
            ChannelConfig::Fcm(c) => &c.limits,
            ChannelConfig::InApp(c) => &c.limits,
        }
    }

    /// Reads the channel's secrets and checks its keys, at start-up (a bad key is a
    /// configuration error, exit 64, not a failed alert at 3 a.m.).
    pub fn resolve(&mut self, env: &Env<'_>) -> Result<(), String> {
        match self {
            ChannelConfig::Webhook(c) => c.resolve(env),
            ChannelConfig::WebPush(c) => c.resolve(env),
            ChannelConfig::Apns(c) => c.resolve(env),
            ChannelConfig::Fcm(c) => c.resolve(env),
            ChannelConfig::InApp(_) => Ok(()),
        }
    }

    fn build(&self, ctx: &ChannelContext) -> Result<Arc<dyn Channel>, String> {
        let limits = self.limits();
        let (timeout, retry) = (ctx.timeout(limits), ctx.retry(limits));
        Ok(match self {
            ChannelConfig::Webhook(c) => {
                Arc::new(webhook::Webhook::new(c, timeout, retry, ctx.allow_private)?)
            }
            ChannelConfig::WebPush(c) => Arc::new(web_push::WebPush::new(c, timeout, retry)?),
            ChannelConfig::Apns(c) => Arc::new(apns::Apns::new(c, timeout, retry)?),
            ChannelConfig::Fcm(c) => Arc::new(fcm::Fcm::new(c, timeout, retry)?),
            ChannelConfig::InApp(_) => Arc::new(in_app::InApp::new(ctx.redis.clone())),
        })
    }
}

/// The configuration name of a channel kind.
pub fn name_of(kind: ChannelKind) -> &'static str {
    match kind {
        ChannelKind::Webhook => "webhook",
        ChannelKind::WebPush => "web_push",
        ChannelKind::Apns => "apns",
        ChannelKind::Fcm => "fcm",
        ChannelKind::InApp => "in_app",
        ChannelKind::Unspecified => "unspecified",
    }
}

/// The channels configured on this server, each with its concurrency bound.
///
/// The bound is shared by every fan-out on the server, and its waiters are served in order.
/// A fan-out sends through its own [`Channels::for_run`] copy, which lets at most a channel's
/// concurrency of its sends in flight or waiting at once: a million-device fan-out never
/// queues more than that ahead of an alert that starts after it, so an editor's flash waits
/// for about one provider answer, not for the pages already queued.
///
/// And the routine lane ([`Lane::Routine`]: digests, an editor's alert of a routine story)
/// never holds the whole bound: all routine fan-outs together hold or wait for at most
/// [`routine_share`] of it, so the rest is always free for a flash, which then waits for no
/// provider answer at all.
#[derive(Clone, Default)]
pub struct Channels {
    by_kind: HashMap<i32, ChannelSlot>,
    permits: usize,
}

#[derive(Clone)]
struct ChannelSlot {
    channel: Arc<dyn Channel>,
    /// The server's bound.
    shared: Arc<Semaphore>,
    /// One fan-out's share of it (`None` outside a run).
    run: Option<Arc<Semaphore>>,
    /// What every routine fan-out on the server shares ([`routine_share`] permits).
    routine: Arc<Semaphore>,
    /// Whether this copy's sends go through `routine` (a routine run's copy).
    gated: bool,
    concurrency: usize,
}

/// How much of a channel's bound the routine lane may hold or wait for: all but a quarter
/// (at least one send) kept for breaking alerts; a bound of one cannot be split.
pub fn routine_share(concurrency: usize) -> usize {
    (concurrency - (concurrency / 4).max(1)).max(1)
}

impl Channels {
    /// Builds every configured channel.
    pub fn build(configs: &[ChannelConfig], ctx: &ChannelContext) -> Result<Self, String> {
        let mut channels = Channels::default();
        for config in configs {
            let channel = config
                .build(ctx)
                .map_err(|e| format!("channel {}: {e}", config.name()))?;
            let permits = config
                .limits()
                .concurrency
                .unwrap_or(ctx.default_concurrency)
                .max(1);
            channels.insert(channel, permits);
        }
        Ok(channels)
    }

    /// Adds a channel (tests and benchmarks plug their own in).
    pub fn insert(&mut self, channel: Arc<dyn Channel>, concurrency: usize) {
        let concurrency = concurrency.max(1);
        if let Some(old) = self.by_kind.insert(
            channel.kind() as i32,
            ChannelSlot {
                channel,
                shared: Arc::new(Semaphore::new(concurrency)),
                run: None,
                routine: Arc::new(Semaphore::new(routine_share(concurrency))),
                gated: false,
                concurrency,
            },
        ) {
            self.permits -= old.concurrency;
        }
        self.permits += concurrency;
    }

    /// The channels as one fan-out in `lane` uses them: the server's bounds, and a share of
    /// each that is this run's alone (see [`Channels`]).
    pub fn for_run(&self, lane: Lane) -> Channels {
        let mut run = self.clone();
        for slot in run.by_kind.values_mut() {
            slot.run = Some(Arc::new(Semaphore::new(slot.concurrency)));
            slot.gated = lane == Lane::Routine;
        }
        run
    }

    /// Concurrent sends across every channel.
    pub fn total_permits(&self) -> usize {
        self.permits
    }

    /// The channel serving `kind`, if configured.
    pub fn get(&self, kind: i32) -> Option<&Arc<dyn Channel>> {
        self.by_kind.get(&kind).map(|s| &s.channel)
    }

    /// Names of the configured channels, for messages.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self
            .by_kind
            .keys()
            .filter_map(|k| ChannelKind::try_from(*k).ok())
            .map(name_of)
            .collect();
        names.sort_unstable();
        names
    }

    /// Sends through the device's channel, waiting for one of its permits first. `None` when
    /// the channel is not configured here.
    pub async fn send(&self, delivery: Delivery<'_>) -> Option<SendOutcome> {
        let slot = self.by_kind.get(&delivery.device.channel)?;
        // The run's share first, so its waiters queue here rather than on the shared bound.
        // The semaphores are never closed, so acquiring cannot fail.
        let _run = match &slot.run {
            Some(run) => Some(run.acquire().await.ok()?),
            None => None,
        };
        // A routine send then queues behind the other routine sends, never on the whole bound.
        let _routine = if slot.gated {
            Some(slot.routine.acquire().await.ok()?)
        } else {
            None
        };
        let _permit = slot.shared.acquire().await.ok()?;
        Some(slot.channel.send(delivery).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_channel_parses_from_its_type_name() {
        let configs: Vec<ChannelConfig> = serde_json::from_str(
            r#"[
              {"type": "webhook", "secret": "s", "limits": {"concurrency": 8}},
              {"type": "web_push", "vapid_private_key": "k", "subject": "mailto:a@example.com"},
              {"type": "apns", "team_id": "T", "key_id": "K", "private_key": "p", "topic": "com.example"},
              {"type": "fcm", "project_id": "p", "service_account": {"file": "/x.json"}},
              {"type": "in_app"}
            ]"#,
        )
        .unwrap();
        let kinds: Vec<_> = configs.iter().map(ChannelConfig::name).collect();
        assert_eq!(kinds, ["webhook", "web_push", "apns", "fcm", "in_app"]);
        assert_eq!(configs[0].limits().concurrency, Some(8));
    }

    /// A webhook stand-in whose sends last until `release` is notified.
    struct Held {
        release: Arc<tokio::sync::Notify>,
        started: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Channel for Held {
        fn kind(&self) -> ChannelKind {
            ChannelKind::Webhook
        }
        fn check_device(&self, _: &Device) -> Result<(), String> {
            Ok(())
        }
        fn send<'a>(&'a self, _: Delivery<'a>) -> BoxFuture<'a, SendOutcome> {
            Box::pin(async move {
                self.started
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                self.release.notified().await;
                SendOutcome::Delivered
            })
        }
    }

    #[tokio::test]
    async fn routine_fan_outs_never_hold_the_share_kept_for_breaking_alerts() {
        assert_eq!(
            [1, 2, 4, 8, 64].map(routine_share),
            [1, 1, 3, 6, 48],
            "a quarter (at least one) kept back, except from a bound of one"
        );
        let held = Arc::new(Held {
            release: Arc::new(tokio::sync::Notify::new()),
            started: Arc::default(),
        });
        let mut channels = Channels::default();
        channels.insert(held.clone(), 8);
        // Two routine fan-outs with 8 sends each waiting: only the routine share goes out.
        let routine: Vec<_> = (0..2)
            .map(|_| channels.for_run(Lane::Routine))
            .flat_map(|run| (0..8).map(move |_| run.clone()))
            .map(|run| tokio::spawn(async move { run.send(delivery_of()).await }))
            .collect();
        fn delivery_of() -> Delivery<'static> {
            static DEVICE: std::sync::LazyLock<Device> = std::sync::LazyLock::new(|| Device {
                channel: ChannelKind::Webhook as i32,
                ..Default::default()
            });
            static ALERT: std::sync::LazyLock<Alert> = std::sync::LazyLock::new(Alert::default);
            Delivery {
                device: &DEVICE,
                alert: &ALERT,
                idempotency_key: "k",
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = || held.started.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(started(), 6, "the routine lane holds its share, no more");
        // A breaking fan-out's sends start at once, beside the waiting routine ones.
        let flash = channels.for_run(Lane::Breaking);
        let _flash = tokio::spawn(async move { flash.send(delivery_of()).await });
        let breaking = channels.for_run(Lane::Breaking);
        let _second = tokio::spawn(async move { breaking.send(delivery_of()).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(started(), 8, "both breaking sends went out without waiting");
        held.release.notify_waiters();
        for r in routine {
            r.abort();
        }
    }

    #[test]
    fn an_unknown_type_or_field_is_refused() {
        let err = serde_json::from_str::<ChannelConfig>(r#"{"type": "pigeon"}"#).unwrap_err();
        assert!(err.to_string().contains("pigeon"), "{err}");
        let err = serde_json::from_str::<ChannelConfig>(r#"{"type": "webhook", "secrte": "x"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("secrte"), "{err}");
    }
}
