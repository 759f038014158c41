//! The fan-out: one alert to its whole audience, at most once per (story, device).
//!
//! How it runs:
//!
//! 1. A reader task walks the audience page by page ([`AudienceCursor`]) into a small channel,
//!    so memory holds a few pages, never the audience.
//! 2. Each page is read from Redis in one `MGET`, filtered per device ([`judge`]: opt-out,
//!    language, quiet hours in the device's time zone) and claimed in the ledger in one atomic
//!    script that also applies the daily budget and counts `targeted` and `suppressed`.
//! 3. Claimed devices are sent through their channel, each channel bounded by its own
//!    semaphore; several pages are in flight at once so the channels stay busy.
//! 4. Answers go to a writer task that records them in the ledger in batches (`sent`,
//!    `delivered`, `failed`, the timeline behind "time to 90% sent"), and every outcome —
//!    suppressed ones too — is published to `notifications.receipts`.
//!
//! Crashes, redeliveries and replicas. The claim comes *before* the send, so a redelivered
//! story, a second replica or an editor's alert for the same story finds the device claimed
//! and sends nothing twice. The one gap is a crash between a claim and its answer: the device's
//! entry stays "in flight" under the dead run. A fan-out heartbeats its run in Redis; when the
//! story is redelivered after the crash, entries of a run whose heartbeat expired are claimed
//! again and sent again *with the same idempotency key and collapse id* (webhook
//! `Idempotency-Key`, APNs `apns-id` and `apns-collapse-id`, FCM `collapse_key`, Web Push
//! `Topic`), so the reader still sees one alert, and no device is missed. Such repeats are
//! counted (`AlertStatus.resent`); at most the in-flight sends of the dead run (bounded by the
//! channels' concurrency) can be repeated.
//!
//! On shutdown the reader stops, the pages in flight finish and are recorded, and the fan-out
//! returns [`FanoutError::Interrupted`], so the story's offset is not committed and the next
//! owner of the partition resumes where this one stopped.
//!
//! Traces. A span per device would be a million spans for one alert on a major-event night:
//! more than the exporter's queue holds (2,048 by default), and a trace no one can read. So:
//! - the fan-out is one span, `alert`, in the story version's trace (under notification's
//!   consumer span); it ends with the pages and devices it handled;
//! - each page of the audience is a batch span, `send batch` (`messaging.batch.message_count`,
//!   devices claimed, suppressed, busy), sampled: the first [`TRACED_PAGES`] pages of every
//!   fan-out, then one in [`TRACE_EVERY_PAGE`] — enough to see where a slow fan-out spends its
//!   time, bounded whatever the audience;
//! - under a traced page, one span per channel, `send <channel>`, with its devices and how many
//!   were delivered, failed, gone: "which channel" in one look;
//! - an editor's alert (`SendAlert`) is its own trace; its fan-out span carries a **link** to
//!   the story version's trace (the `traceparent` of the record that brought the story), so
//!   each trace leads to the other without merging two causes into one tree.
//!
//! Every device still has its outcome: in the ledger (`GetAlert`), on `notifications.receipts`,
//! and in the metrics per channel and outcome.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt as _;
use newsroom_platform::kafka::Producer;
use newsroom_platform::shutdown::Shutdown;
use newsroom_proto::v1::{Alert, AlertStatus, DeliveryOutcome, DeliveryReceipt, Device};
use tokio::sync::mpsc;
use tracing::Instrument as _;

use crate::audience::{Audience, AudienceCursor};
use crate::channel::{self, Channels, Delivery, SendOutcome};
use crate::metrics::{Metrics, Sent, Suppressed};
use crate::preferences::{self, Reach, StoryFacts, Verdict};
use crate::receipts::Receipts;
use crate::store::{
    AlertFields, AlertStore, Answer, Claim, ClaimRequest, RedisError, TIMELINE_BUCKET_MS,
};

/// The suppression reason of a device whose channel is not configured on this server.
pub const CHANNEL_UNAVAILABLE: &str = "channel_unavailable";

/// Pages of every fan-out that get a `send batch` span of their own (the first ones).
pub const TRACED_PAGES: usize = 8;
/// After [`TRACED_PAGES`], one page in this many gets a span.
pub const TRACE_EVERY_PAGE: usize = 100;

/// Whether the page at `index` (from 0) of a fan-out gets a span.
pub fn page_traced(index: usize) -> bool {
    index < TRACED_PAGES || index.is_multiple_of(TRACE_EVERY_PAGE)
}

/// The `send batch` span of a page, or a disabled span for a page not traced.
fn page_span(index: usize) -> tracing::Span {
    if !page_traced(index) {
        return tracing::Span::none();
    }
    tracing::info_span!(
        "send batch",
        notification.page = index,
        messaging.batch.message_count = tracing::field::Empty,
        notification.claimed = tracing::field::Empty,
        notification.suppressed = tracing::field::Empty,
        notification.busy = tracing::field::Empty,
    )
}

/// One alert to send.
#[derive(Debug, Clone)]
pub struct AlertJob {
    pub alert: Alert,
    pub facts: StoryFacts,
    pub audience: Audience,
    /// When ingest accepted the story (the start of the latency a reader feels).
    pub accepted_at: Option<SystemTime>,
    /// The `traceparent` of the story version, when the alert runs in another trace (an
    /// editor's): the fan-out span links to it.
    pub story_trace: Option<String>,
}

/// Why a fan-out did not finish.
#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    #[error("alert store: {0}")]
    Redis(#[from] RedisError),
    #[error("interrupted by shutdown; the rest of the audience is alerted on redelivery")]
    Interrupted,
}

/// How the fan-out runs.
#[derive(Debug, Clone, Copy)]
pub struct FanoutSettings {
    /// Devices per page.
    pub batch: usize,
    /// Corrections replace alerts sent less than this long ago.
    pub correction_window: Duration,
}

/// Sends alerts. Cheap to clone.
#[derive(Clone)]
pub struct Fanout {
    pub store: AlertStore,
    pub channels: Channels,
    producer: Producer,
    receipts: Receipts,
    devices_topic: String,
    settings: FanoutSettings,
    shutdown: Shutdown,
    metrics: Metrics,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn ms_of(t: SystemTime) -> Option<i64> {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_millis() as i64)
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

type Completions = mpsc::Sender<(String, Answer, i64)>;

impl Fanout {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: AlertStore,
        channels: Channels,
        producer: Producer,
        receipts: Receipts,
        devices_topic: String,
        settings: FanoutSettings,
        shutdown: Shutdown,
        metrics: Metrics,
    ) -> Self {
        Fanout {
            store,
            channels,
            producer,
            receipts,
            devices_topic,
            settings,
            shutdown,
            metrics,
        }
    }

    /// Sends `job` to its audience; see the module documentation.
    #[tracing::instrument(skip_all, fields(
        story.id = %job.alert.story_id,
        audience = %job.audience.label(),
        critical = job.alert.critical,
        notification.pages = tracing::field::Empty,
        notification.devices = tracing::field::Empty,
    ))]
    pub async fn alert(&self, job: &AlertJob) -> Result<(), FanoutError> {
        if let Some(traceparent) = &job.story_trace {
            newsroom_platform::telemetry::link_current_to(traceparent);
        }
        let story = job.alert.story_id.clone();
        let run = uuid::Uuid::new_v4().simple().to_string();
        let mut job = job.clone();
        job.alert.sent_at = Some(SystemTime::now().into());
        let job = &job;
        // The heartbeat first: a run in the story's run set without one counts as dead.
        self.store.heartbeat(&run).await?;
        self.store
            .begin_alert(
                &story,
                job.alert.version,
                &run,
                now_ms(),
                job.accepted_at.and_then(ms_of),
            )
            .await?;
        let _heartbeat = AbortOnDrop(tokio::spawn({
            let (store, run) = (self.store.clone(), run.clone());
            async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(crate::store::RUN_LEASE_MS / 3)).await;
                    if let Err(e) = store.heartbeat(&run).await {
                        tracing::warn!(error = %e, "fan-out heartbeat failed");
                    }
                }
            }
        }));
        let (completions, writer) = self.completion_writer(&story, job.alert.version, &run);

        // The audience reader: pages into a small channel, stopping at shutdown.
        let (pages_tx, pages_rx) = mpsc::channel::<Result<Vec<String>, RedisError>>(2);
        let reader = AbortOnDrop(tokio::spawn({
            let mut cursor = AudienceCursor::new(
                self.store.clone(),
                &job.audience,
                &job.facts,
                self.settings.batch,
            );
            let shutdown = self.shutdown.clone();
            async move {
                loop {
                    let page = tokio::select! {
                        // Shutdown first: no new page once asked to stop.
                        biased;
                        _ = shutdown.requested() => break,
                        page = cursor.next_page() => page,
                    };
                    let stop = !matches!(page, Ok(Some(_)));
                    let item = match page {
                        Ok(Some(ids)) => Ok(ids),
                        Ok(None) => break,
                        Err(e) => Err(e),
                    };
                    if pages_tx.send(item).await.is_err() || stop {
                        break;
                    }
                }
            }
        }));

        let busy = Mutex::new(Vec::new());
        let pages_in_flight = self.pages_in_flight();
        let devices = std::sync::atomic::AtomicUsize::new(0);
        let results: Vec<Result<(), RedisError>> =
            tokio_stream::wrappers::ReceiverStream::new(pages_rx)
                .enumerate()
                .map(|(index, page)| {
                    let (completions, busy, run, devices) = (&completions, &busy, &run, &devices);
                    let span = page_span(index);
                    async move {
                        let page = page?;
                        devices.fetch_add(page.len(), std::sync::atomic::Ordering::Relaxed);
                        self.send_page(job, run, page, completions, busy, &span)
                            .await
                    }
                })
                .buffer_unordered(pages_in_flight)
                .collect()
                .await;
        let mut pages = results.len();
        let span = tracing::Span::current();
        span.record("notification.pages", pages);
        span.record(
            "notification.devices",
            devices.load(std::sync::atomic::Ordering::Relaxed),
        );
        drop(reader);
        let mut failed = results.into_iter().find_map(Result::err);

        // Devices another fan-out held in flight: wait for that run to answer them, or for
        // its lease to lapse (it crashed) and then send them ourselves.
        let started = Instant::now();
        while failed.is_none() && !self.shutdown.is_requested() {
            let ids: Vec<String> =
                std::mem::take(&mut *busy.lock().unwrap_or_else(|p| p.into_inner()));
            if ids.is_empty() {
                break;
            }
            if started.elapsed() > Duration::from_millis(crate::store::RUN_LEASE_MS * 4) {
                tracing::warn!(
                    devices = ids.len(),
                    "devices still in flight elsewhere; leaving them to their run"
                );
                break;
            }
            tokio::select! {
                _ = self.shutdown.requested() => break,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            for chunk in ids.chunks(self.settings.batch) {
                // Retried pages count on from the audience's: the same sampling bounds them.
                let span = page_span(pages);
                pages += 1;
                if let Err(e) = self
                    .send_page(job, &run, chunk.to_vec(), &completions, &busy, &span)
                    .await
                {
                    failed = Some(e);
                    break;
                }
            }
        }

        // Every answer recorded before the run ends.
        drop(completions);
        let _ = writer.await;
        if let Err(e) = self.store.end_run(&run).await {
            tracing::warn!(error = %e, "could not end the fan-out run");
        }
        if let Some(e) = failed {
            return Err(e.into());
        }
        if self.shutdown.is_requested() {
            return Err(FanoutError::Interrupted);
        }
        // Still alive (heartbeat) here: end_run comes after.
        self.store.finish_alert(&story, &run, now_ms()).await?;
        tracing::info!("fan-out complete");
        Ok(())
    }

    /// Pages in flight at once: enough to keep every channel's permits busy.
    fn pages_in_flight(&self) -> usize {
        // Twice the pages the permits need, plus two: a page is done only when its slowest
        // device answered, and the next pages should already be claimed and waiting.
        let permits: usize = self.channels.total_permits();
        (permits / self.settings.batch.max(1)).clamp(1, 32) * 2 + 2
    }

    /// Records answers in batches, off the send path.
    fn completion_writer(
        &self,
        story: &str,
        version: u32,
        run: &str,
    ) -> (Completions, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<(String, Answer, i64)>(8192);
        let (store, story, run) = (self.store.clone(), story.to_owned(), run.to_owned());
        let task = tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < 1024 {
                    match rx.try_recv() {
                        Ok(x) => batch.push(x),
                        Err(_) => break,
                    }
                }
                let mut backoff = Duration::from_millis(50);
                for attempt in 1..=5 {
                    match store.complete(&story, version, &run, &batch).await {
                        Ok(_) => break,
                        Err(e) if attempt == 5 => {
                            // These devices stay "in flight": a redelivery resends them with
                            // the same idempotency key.
                            tracing::error!(error = %e, devices = batch.len(), "could not record answers");
                        }
                        Err(_) => {
                            tokio::time::sleep(backoff).await;
                            backoff *= 2;
                        }
                    }
                }
            }
        });
        (tx, task)
    }

    /// Reads, filters, claims and sends one page of the audience; `page` is its batch span
    /// (disabled when the page is not traced).
    async fn send_page(
        &self,
        job: &AlertJob,
        run: &str,
        ids: Vec<String>,
        completions: &Completions,
        busy: &Mutex<Vec<String>>,
        page: &tracing::Span,
    ) -> Result<(), RedisError> {
        page.record("messaging.batch.message_count", ids.len());
        async {
            self.metrics.audience_read(ids.len());
            let devices = self.store.devices(&ids).await?;
            let now = chrono::Utc::now();
            let reach = match job.audience {
                Audience::Followers => Reach::Followers,
                _ => Reach::Chosen,
            };
            let mut requests = Vec::with_capacity(ids.len());
            let mut kept = Vec::with_capacity(ids.len());
            for (id, device) in ids.into_iter().zip(devices) {
                // Unregistered since the audience was indexed: not part of it any more.
                let Some(device) = device else { continue };
                if let Audience::Segment(_, segment) = &job.audience
                    && !segment.contains(&device)
                {
                    continue;
                }
                let (reason, budget) = if self.channels.get(device.channel).is_none() {
                    (CHANNEL_UNAVAILABLE, 0)
                } else {
                    match preferences::judge(&device, &job.facts, reach, job.alert.critical, now) {
                        Verdict::Outside => continue,
                        Verdict::Suppress(reason) => (reason, 0),
                        Verdict::Send { budget } => ("", budget),
                    }
                };
                requests.push(ClaimRequest {
                    device_id: id,
                    reason,
                    budget,
                    day: preferences::local_day(&device, now),
                });
                kept.push(device);
            }
            let claims = self
                .store
                .claim(
                    &job.alert.story_id,
                    job.alert.version,
                    run,
                    job.alert.critical,
                    &requests,
                )
                .await?;
            // Sends grouped by channel (a span each under a traced page), receipts of the suppressed.
            let mut sends: std::collections::BTreeMap<&'static str, Vec<_>> = Default::default();
            let mut work = Vec::new();
            let (mut claimed, mut suppressed, mut held) = (0usize, 0usize, 0usize);
            for ((request, device), claim) in requests.iter().zip(kept).zip(claims) {
                match claim {
                    Claim::Send | Claim::Resend => {
                        claimed += 1;
                        sends
                            .entry(channel_name(&device))
                            .or_default()
                            .push(self.send_one(job, device, completions));
                    }
                    Claim::Suppressed => {
                        suppressed += 1;
                        let reason = if request.reason.is_empty() {
                            preferences::BUDGET
                        } else {
                            request.reason
                        };
                        Suppressed {
                            story_id: &job.alert.story_id,
                            device_id: &device.device_id,
                            reason,
                        }
                        .emit(&self.metrics);
                        work.push(async move {
                            self.receipt(
                                &device,
                                &job.alert,
                                DeliveryOutcome::Suppressed,
                                reason.to_owned(),
                            )
                            .await;
                        });
                    }
                    Claim::Busy => {
                        held += 1;
                        busy.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(request.device_id.clone());
                    }
                    Claim::Skip => {}
                }
            }
            page.record("notification.claimed", claimed);
            page.record("notification.suppressed", suppressed);
            page.record("notification.busy", held);
            let channels = sends.into_iter().map(|(channel, devices)| {
                let span = if page.is_disabled() {
                    tracing::Span::none()
                } else {
                    tracing::info_span!(
                        parent: page,
                        "send channel",
                        otel.name = %format!("send {channel}"),
                        notification.channel = channel,
                        messaging.batch.message_count = devices.len(),
                        notification.delivered = tracing::field::Empty,
                        notification.failed = tracing::field::Empty,
                        notification.gone = tracing::field::Empty,
                    )
                };
                let recorded = span.clone();
                async move {
                    let answers = futures::future::join_all(devices).await;
                    let count = |a: Answer| answers.iter().filter(|x| **x == a).count();
                    recorded.record("notification.delivered", count(Answer::Delivered));
                    recorded.record("notification.failed", count(Answer::Failed));
                    recorded.record("notification.gone", count(Answer::Gone));
                }
                .instrument(span)
            });
            futures::future::join(
                futures::future::join_all(channels),
                futures::future::join_all(work),
            )
            .await;
            Ok(())
        }
        .instrument(page.clone())
        .await
    }

    /// Sends to one claimed device and reports its answer.
    async fn send_one(&self, job: &AlertJob, device: Device, completions: &Completions) -> Answer {
        let alert = &job.alert;
        let key = format!("{}:{}", alert.story_id, device.device_id);
        let started = Instant::now();
        let outcome = self
            .channels
            .send(Delivery {
                device: &device,
                alert,
                idempotency_key: &key,
            })
            .await
            .unwrap_or_else(|| SendOutcome::Failed("channel not configured".into()));
        Sent {
            channel: channel_name(&device),
            story_id: &alert.story_id,
            device_id: &device.device_id,
            outcome: &outcome,
            took: started.elapsed(),
            accepted_at: job.accepted_at,
            correction: false,
        }
        .emit(&self.metrics);
        let answer = match &outcome {
            SendOutcome::Delivered => Answer::Delivered,
            SendOutcome::Failed(_) => Answer::Failed,
            SendOutcome::Gone(_) => Answer::Gone,
        };
        // If the writer is gone the run is ending anyway; the entry stays in flight.
        let _ = completions
            .send((device.device_id.clone(), answer, now_ms()))
            .await;
        self.after_send(&device, alert, outcome).await;
        answer
    }

    /// Unregisters gone devices and publishes the receipt.
    async fn after_send(&self, device: &Device, alert: &Alert, outcome: SendOutcome) {
        let (receipt, detail) = match outcome {
            SendOutcome::Delivered => (DeliveryOutcome::Delivered, String::new()),
            SendOutcome::Failed(why) => (DeliveryOutcome::Failed, why),
            SendOutcome::Gone(why) => {
                self.unregister(device).await;
                (DeliveryOutcome::Gone, why)
            }
        };
        self.receipt(device, alert, receipt, detail).await;
    }

    /// A correction: the new version replaces the alert on devices alerted within the window,
    /// through the same collapse id. Claimed before sending, at most once per version.
    #[tracing::instrument(skip_all, fields(story.id = %job.alert.story_id, version = job.alert.version))]
    pub async fn correct(&self, job: &AlertJob) -> Result<(), FanoutError> {
        let window = self.settings.correction_window;
        if window.is_zero() {
            return Ok(());
        }
        let mut job = job.clone();
        job.alert.correction = true;
        job.alert.sent_at = Some(SystemTime::now().into());
        let alert = &job.alert;
        let cutoff = now_ms() - window.as_millis() as i64;
        let mut cursor = 0;
        let mut corrected = 0usize;
        loop {
            if self.shutdown.is_requested() {
                return Err(FanoutError::Interrupted);
            }
            let (next, entries) = self
                .store
                .scan_ledger(&alert.story_id, cursor, self.settings.batch)
                .await?;
            let candidates: Vec<String> = entries
                .into_iter()
                .filter(|(_, state)| {
                    let mut parts = state.split('|');
                    let (Some("d"), Some(v), Some("D"), Some(ms)) =
                        (parts.next(), parts.next(), parts.next(), parts.next())
                    else {
                        return false;
                    };
                    v.parse::<u32>().is_ok_and(|v| v < alert.version)
                        && ms.parse::<i64>().is_ok_and(|ms| ms >= cutoff)
                })
                .map(|(device, _)| device)
                .collect();
            let claimed = self
                .store
                .claim_corrections(&alert.story_id, alert.version, &candidates)
                .await?;
            let ids: Vec<String> = candidates
                .into_iter()
                .zip(claimed)
                .filter_map(|(d, ok)| ok.then_some(d))
                .collect();
            let devices = self.store.devices(&ids).await?;
            let sends = devices.into_iter().flatten().map(|device| async move {
                let key = format!("{}:{}:v{}", alert.story_id, device.device_id, alert.version);
                let started = Instant::now();
                let outcome = self
                    .channels
                    .send(Delivery {
                        device: &device,
                        alert,
                        idempotency_key: &key,
                    })
                    .await
                    .unwrap_or_else(|| SendOutcome::Failed("channel not configured".into()));
                Sent {
                    channel: channel_name(&device),
                    story_id: &alert.story_id,
                    device_id: &device.device_id,
                    outcome: &outcome,
                    took: started.elapsed(),
                    accepted_at: None,
                    correction: true,
                }
                .emit(&self.metrics);
                self.after_send(&device, alert, outcome).await;
            });
            let page: Vec<()> = futures::stream::iter(sends)
                .buffer_unordered(self.pages_in_flight() * self.settings.batch)
                .collect()
                .await;
            corrected += page.len();
            if next == 0 {
                break;
            }
            cursor = next;
        }
        tracing::info!(devices = corrected, "correction sent");
        Ok(())
    }

    /// Unregisters a device a provider says is gone: a tombstone on `devices` (the record of
    /// truth), then Redis.
    pub async fn unregister(&self, device: &Device) {
        match self
            .producer
            .send_tombstone(&self.devices_topic, &device.device_id)
            .await
        {
            Ok(at) => {
                if let Err(e) = self.store.remove_device(&device.device_id, at.offset).await {
                    tracing::warn!(error = %e, "could not remove the device from redis");
                }
            }
            // Without the tombstone the device stays; its next alert finds it gone again.
            Err(e) => tracing::warn!(error = %e, "could not write the device tombstone"),
        }
    }

    async fn receipt(
        &self,
        device: &Device,
        alert: &Alert,
        outcome: DeliveryOutcome,
        detail: String,
    ) {
        let receipt = DeliveryReceipt {
            story_id: alert.story_id.clone(),
            device_id: device.device_id.clone(),
            channel: device.channel,
            outcome: outcome as i32,
            detail,
            at: Some(SystemTime::now().into()),
        };
        self.receipts.publish(&receipt).await;
    }

    /// The alert's status, `None` when the story never alerted.
    pub async fn status(&self, story: &str) -> Result<Option<AlertStatus>, RedisError> {
        let fields = self.store.alert_fields(story).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        let timeline = self.store.timeline(story).await?;
        Ok(Some(status_of(story, &fields, &timeline)))
    }
}

fn channel_name(device: &Device) -> &'static str {
    newsroom_proto::v1::Channel::try_from(device.channel).map_or("unspecified", channel::name_of)
}

fn duration(ms: i64) -> Option<prost_types::Duration> {
    (ms >= 0).then(|| prost_types::Duration {
        seconds: ms / 1000,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    })
}

/// Builds an `AlertStatus` from the alert's counts and its timeline.
pub fn status_of(story: &str, fields: &AlertFields, timeline: &[(i64, i64)]) -> AlertStatus {
    let get = |f: &str| fields.get(f).copied().unwrap_or(0).max(0);
    let suppressed: std::collections::HashMap<String, u64> = fields
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.strip_prefix("suppressed:")?.to_owned(),
                (*v).max(0) as u64,
            ))
        })
        .filter(|(_, v)| *v > 0)
        .collect();
    let targeted = get("targeted");
    let to_send = targeted - suppressed.values().sum::<u64>() as i64;
    let started = get("started_ms");
    let first = get("first_sent_ms");
    let accepted = get("accepted_ms");
    let mut p90 = None;
    if to_send > 0 {
        let need = (to_send * 9 + 9) / 10;
        let mut sum = 0;
        for (bucket, n) in timeline {
            sum += n;
            if sum >= need {
                p90 = duration(bucket + TIMELINE_BUCKET_MS);
                break;
            }
        }
    }
    AlertStatus {
        story_id: story.to_owned(),
        targeted: targeted as u64,
        sent: get("sent") as u64,
        delivered: get("delivered") as u64,
        failed: get("failed") as u64,
        suppressed,
        time_to_first_send: (first > 0 && started > 0)
            .then(|| duration(first - started))
            .flatten(),
        time_to_90_percent_sent: p90,
        accepted_to_first_send: (first > 0 && accepted > 0)
            .then(|| duration(first - accepted))
            .flatten(),
        started_at: timestamp(started),
        resent: get("resent") as u64,
        version: get("version") as u32,
        corrected: get("corrected") as u64,
        finished_at: timestamp(get("finished_ms")),
        requested_at: None,
        latest_started_at: timestamp(get("latest_started_ms")),
    }
}

/// A time in ms since the epoch as a protobuf timestamp; `None` for 0 (not set).
fn timestamp(ms: i64) -> Option<prost_types::Timestamp> {
    (ms > 0).then(|| prost_types::Timestamp {
        seconds: ms / 1000,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_million_device_fan_out_traces_a_bounded_number_of_pages() {
        // 1,000,000 devices in pages of 256.
        let pages = 1_000_000usize.div_ceil(256);
        let traced = (0..pages).filter(|i| page_traced(*i)).count();
        assert!((0..TRACED_PAGES).all(page_traced), "the first pages");
        assert_eq!(traced, TRACED_PAGES + (pages - 1) / TRACE_EVERY_PAGE);
        // With the fan-out span and a span per channel of a traced page, well within the
        // exporter's queue of 2,048 spans.
        assert!(traced * 5 < 2_048, "{traced} pages traced");
    }

    #[test]
    fn ninety_percent_sent_is_read_from_the_timeline_of_the_devices_to_alert() {
        let fields: AlertFields = [
            ("targeted", 12),
            ("suppressed:quiet_hours", 2),
            ("sent", 10),
            ("delivered", 9),
            ("failed", 1),
            ("started_ms", 1_000_000),
            ("first_sent_ms", 1_000_040),
            ("accepted_ms", 999_500),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        // 10 to send: 90% = 9, reached in the bucket starting at 300 ms.
        let timeline = [(40, 3), (100, 4), (300, 2), (900, 1)];
        let s = status_of("s", &fields, &timeline);
        assert_eq!((s.targeted, s.sent, s.delivered, s.failed), (12, 10, 9, 1));
        assert_eq!(
            s.finished_at, None,
            "a fan-out without finished_ms is running"
        );
        assert_eq!(s.suppressed["quiet_hours"], 2);
        assert_eq!(s.time_to_first_send.unwrap().nanos, 40_000_000);
        assert_eq!(s.accepted_to_first_send.unwrap().nanos, 540_000_000);
        assert_eq!(s.time_to_90_percent_sent.unwrap().nanos, 310_000_000);
        // Not yet 90%: no figure.
        let s = status_of("s", &fields, &timeline[..2]);
        assert!(s.time_to_90_percent_sent.is_none());
    }
}
