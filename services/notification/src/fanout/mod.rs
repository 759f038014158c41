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
//! 5. Devices whose send failed (after the channel's own retries) are claimed again and sent
//!    again in later rounds ([`FAILED_SEND_ROUNDS`]), under the same idempotency key: a
//!    provider's bad minute does not make a failed send final.
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
//!
//! Components:
//!
//! - this file — [`Fanout`], [`AlertJob`], [`FanoutError`] and the run: heartbeat, audience
//!   reader, pages in flight, devices busy elsewhere, the end of the run;
//! - `page` — one page of the audience: read, judge, claim, send by channel, with its spans;
//! - `send` — one device's send, shared by alerts and corrections (metrics, receipt, gone
//!   devices), and the writer that records answers in the ledger;
//! - `correction` — a correction replacing the alert on recently alerted devices;
//! - `dry_run` — the whole decision and audience resolution, nothing claimed or sent;
//! - `status` — an `AlertStatus` from the alert's counts and timeline.

mod correction;
mod dry_run;
mod page;
mod send;
mod status;

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt as _;
use newsroom_platform::kafka::Producer;
use newsroom_platform::shutdown::Shutdown;
use newsroom_platform::time::{ms_of, now_ms};
use newsroom_proto::v1::{Alert, AlertStatus};
use tokio::sync::mpsc;

use crate::audience::{Audience, AudienceCursor};
use crate::channel::Channels;
use crate::decision::Lane;
use crate::metrics::Metrics;
use crate::preferences::StoryFacts;
use crate::receipts::Receipts;
use crate::store::{AlertStore, EventClaim, RedisError};

pub use page::{TRACE_EVERY_PAGE, TRACED_PAGES, page_traced};
pub use status::status_of;

use page::{RunPages, page_span};

/// The waits before each later round of the sends that failed (after the channel's own
/// retries): about a minute in all, while the alert is still news.
const FAILED_SEND_ROUNDS: [Duration; 3] = [
    Duration::from_secs(2),
    Duration::from_secs(10),
    Duration::from_secs(45),
];

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
    /// The news event (near-duplicate cluster) the story belongs to: a device is alerted once
    /// per event unless this alert escalates. `None`: per story only (a canary).
    pub event: Option<EventClaim>,
    /// After this, no device is sent to (an editor's routine alert with a window).
    pub expires_at: Option<SystemTime>,
    /// Breaking or routine: how much of each channel the fan-out may take.
    pub lane: Lane,
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
    /// The configured channels.
    pub channels: Channels,
    /// Writes tombstones of devices a provider says are gone.
    pub producer: Producer,
    pub receipts: Receipts,
    /// The `devices` topic (with the platform's prefix).
    pub devices_topic: String,
    pub settings: FanoutSettings,
    /// Stops reading the audience; the fan-out then returns [`FanoutError::Interrupted`].
    pub shutdown: Shutdown,
    pub metrics: Metrics,
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Fanout {
    /// Sends `job` to its audience; see the module documentation.
    #[tracing::instrument(skip_all, fields(
        story.id = %job.alert.story_id,
        audience = %job.audience.label(),
        critical = job.alert.critical,
        notification.pages = tracing::field::Empty,
        notification.devices = tracing::field::Empty,
    ))]
    pub async fn alert(&self, job: &AlertJob) -> Result<(), FanoutError> {
        self.own_lane(job.lane).run_alert(job).await
    }

    /// This fan-out's copy, sending through its own share of each channel
    /// ([`Channels::for_run`]): it never queues more than a channel's concurrency of sends
    /// ahead of an alert that starts after it, and a routine one never more than the routine
    /// lane's part of it.
    pub(super) fn own_lane(&self, lane: Lane) -> Fanout {
        Fanout {
            channels: self.channels.for_run(lane),
            ..self.clone()
        }
    }

    async fn run_alert(&self, job: &AlertJob) -> Result<(), FanoutError> {
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
                // Before 1970 is not a time a story was accepted at.
                job.accepted_at.map(ms_of).filter(|ms| *ms >= 0),
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

        let (busy, failed_sends) = (Mutex::new(Vec::new()), Mutex::new(Vec::new()));
        let mut run_pages = RunPages {
            run: &run,
            completions: &completions,
            busy: &busy,
            failed: &failed_sends,
            retry_failed: false,
        };
        let pages_in_flight = self.pages_in_flight();
        let devices = std::sync::atomic::AtomicUsize::new(0);
        let results: Vec<Result<(), RedisError>> =
            tokio_stream::wrappers::ReceiverStream::new(pages_rx)
                .enumerate()
                .map(|(index, page)| {
                    let (run_pages, devices) = (&run_pages, &devices);
                    let span = page_span(index);
                    async move {
                        let page = page?;
                        devices.fetch_add(page.len(), std::sync::atomic::Ordering::Relaxed);
                        self.send_page(job, run_pages, page, &span).await
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
            if let Err(e) = self.send_again(job, &run_pages, &ids, &mut pages).await {
                failed = Some(e);
            }
        }

        // Devices whose send failed (the provider down, 5xx after the channel's retries): a
        // few later rounds, with the same idempotency key, so a provider's bad minute does not
        // make a failed send final. Claimed again in the ledger, so no other run sends them.
        run_pages.retry_failed = true;
        for delay in FAILED_SEND_ROUNDS {
            let ids: Vec<String> =
                std::mem::take(&mut *failed_sends.lock().unwrap_or_else(|p| p.into_inner()));
            if failed.is_some() || ids.is_empty() || self.shutdown.is_requested() {
                break;
            }
            tracing::info!(devices = ids.len(), ?delay, "retrying failed sends");
            tokio::select! {
                _ = self.shutdown.requested() => break,
                _ = tokio::time::sleep(delay) => {}
            }
            if let Err(e) = self.send_again(job, &run_pages, &ids, &mut pages).await {
                failed = Some(e);
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
        // Its pace, which predicts the next alert's time to 90 % sent (a dry run's preview).
        if let Some((sent, to_90)) = self.status(&story).await?.and_then(|s| {
            let to_90 = std::time::Duration::try_from(s.time_to_90_percent_sent?).ok()?;
            (s.sent > 0).then_some((s.sent, to_90.as_millis() as u64))
        }) {
            self.store.record_throughput(sent, to_90).await?;
        }
        tracing::info!("fan-out complete");
        Ok(())
    }

    /// Sends devices of this run again (held elsewhere, or failed), in pages. Such pages count
    /// on from the audience's (`pages`): the same span sampling bounds them.
    async fn send_again(
        &self,
        job: &AlertJob,
        run_pages: &RunPages<'_>,
        ids: &[String],
        pages: &mut usize,
    ) -> Result<(), RedisError> {
        for chunk in ids.chunks(self.settings.batch) {
            let span = page_span(*pages);
            *pages += 1;
            self.send_page(job, run_pages, chunk.to_vec(), &span)
                .await?;
        }
        Ok(())
    }

    /// Pages in flight at once: enough to keep every channel's permits busy.
    fn pages_in_flight(&self) -> usize {
        // Twice the pages the permits need, plus two: a page is done only when its slowest
        // device answered, and the next pages should already be claimed and waiting.
        let permits: usize = self.channels.total_permits();
        (permits / self.settings.batch.max(1)).clamp(1, 32) * 2 + 2
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
