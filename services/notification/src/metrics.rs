//! Notification's metrics and the typed events that feed them.
//!
//! Each event emits its log line and bumps its counters in one place, so the two never
//! disagree. Families (on `/metrics` of the admin port):
//!
//! - `newsroom_notification_sends_total{channel, outcome}` — delivered, failed, gone;
//! - `newsroom_notification_suppressed_total{reason}`;
//! - `newsroom_notification_delivery_latency_seconds` — story accepted by ingest → alert
//!   answered by the provider (the latency a reader feels);
//! - `newsroom_notification_send_duration_seconds{channel}` — one provider call, retries
//!   included;
//! - `newsroom_notification_fanout_devices_total` — devices read from audiences (the
//!   audience-resolution rate).

use std::time::{Duration, SystemTime};

use newsroom_platform::metrics::Registry;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use crate::channel::SendOutcome;
use crate::suppression::Suppression;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SendLabels {
    channel: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabel {
    channel: &'static str,
}

#[derive(Clone)]
pub struct Metrics {
    sends: Family<SendLabels, Counter>,
    suppressed: Family<ReasonLabel, Counter>,
    latency: Histogram,
    send_seconds: Family<ChannelLabel, Histogram>,
    audience: Counter,
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Metrics {
            sends: Family::default(),
            suppressed: Family::default(),
            latency: Histogram::new(exponential_buckets(0.05, 2.0, 14)),
            send_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 16))
            }),
            audience: Counter::default(),
        };
        // Every reason at 0 from the start: "nothing suppressed" rather than "no data".
        for reason in Suppression::ALL {
            let _ = m.suppressed.get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            });
        }
        registry.register(
            "newsroom_notification_sends",
            "Alerts answered by a provider, by channel and outcome",
            m.sends.clone(),
        );
        registry.register(
            "newsroom_notification_suppressed",
            "Devices in an audience not alerted, by reason",
            m.suppressed.clone(),
        );
        registry.register(
            "newsroom_notification_delivery_latency_seconds",
            "Story accepted by ingest to alert answered by the provider",
            m.latency.clone(),
        );
        registry.register(
            "newsroom_notification_send_duration_seconds",
            "One send to a provider, retries included, by channel",
            m.send_seconds.clone(),
        );
        registry.register(
            "newsroom_notification_fanout_devices",
            "Devices read from alert audiences",
            m.audience.clone(),
        );
        m
    }

    /// Metrics that go nowhere (tests, benchmarks).
    pub fn unregistered() -> Self {
        Self::register(&mut Registry::default())
    }

    /// Declares the series of a configured channel at 0 (every outcome, the send duration).
    pub fn declare_channel(&self, channel: &'static str) {
        for outcome in ["delivered", "failed", "gone"] {
            let _ = self.sends.get_or_create(&SendLabels { channel, outcome });
        }
        let _ = self.send_seconds.get_or_create(&ChannelLabel { channel });
    }

    pub fn audience_read(&self, devices: usize) {
        self.audience.inc_by(devices as u64);
    }
}

/// One answered send.
pub struct Sent<'a> {
    pub channel: &'static str,
    pub story_id: &'a str,
    pub device_id: &'a str,
    pub outcome: &'a SendOutcome,
    pub took: Duration,
    pub accepted_at: Option<SystemTime>,
    pub correction: bool,
}

impl Sent<'_> {
    pub fn emit(&self, m: &Metrics) {
        let outcome = match self.outcome {
            SendOutcome::Delivered => "delivered",
            SendOutcome::Failed(_) => "failed",
            SendOutcome::Gone(_) => "gone",
        };
        m.sends
            .get_or_create(&SendLabels {
                channel: self.channel,
                outcome,
            })
            .inc();
        m.send_seconds
            .get_or_create(&ChannelLabel {
                channel: self.channel,
            })
            .observe(self.took.as_secs_f64());
        if !self.correction
            && let Some(latency) = self
                .accepted_at
                .and_then(|a| SystemTime::now().duration_since(a).ok())
        {
            m.latency.observe(latency.as_secs_f64());
        }
        match self.outcome {
            SendOutcome::Delivered => tracing::debug!(
                story.id = %self.story_id, device.id = %self.device_id, channel = self.channel,
                "alert delivered"
            ),
            SendOutcome::Failed(why) => tracing::warn!(
                story.id = %self.story_id, device.id = %self.device_id, channel = self.channel,
                %why, "alert not delivered"
            ),
            SendOutcome::Gone(why) => tracing::info!(
                story.id = %self.story_id, device.id = %self.device_id, channel = self.channel,
                %why, "device gone; unregistering it"
            ),
        }
    }
}

/// One device held back.
pub struct Suppressed<'a> {
    pub story_id: &'a str,
    pub device_id: &'a str,
    pub reason: Suppression,
}

impl Suppressed<'_> {
    pub fn emit(&self, m: &Metrics) {
        m.suppressed
            .get_or_create(&ReasonLabel {
                reason: self.reason.as_str(),
            })
            .inc();
        tracing::debug!(
            story.id = %self.story_id, device.id = %self.device_id, reason = self.reason.as_str(),
            "alert suppressed"
        );
    }
}
