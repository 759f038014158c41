//! One page of an alert's audience: its devices read in one `MGET`, judged one by one
//! (segment, channel configured, preferences), claimed in the ledger in one script, then sent
//! grouped by channel; and the sampling that gives some pages a `send batch` span.

use std::sync::Mutex;
use std::time::SystemTime;

use newsroom_proto::v1::DeliveryOutcome;
use tracing::Instrument as _;

use super::send::{Completions, channel_name};
use super::{AlertJob, Fanout};
use crate::audience::Audience;
use crate::metrics::Suppressed;
use crate::preferences::{self, Reach, Verdict};
use crate::store::{Answer, Claim, ClaimAlert, ClaimRequest, RedisError};
use crate::suppression::Suppression;

/// Pages of every fan-out that get a `send batch` span of their own (the first ones).
pub const TRACED_PAGES: usize = 8;
/// After [`TRACED_PAGES`], one page in this many gets a span.
pub const TRACE_EVERY_PAGE: usize = 100;

/// Whether the page at `index` (from 0) of a fan-out gets a span.
pub fn page_traced(index: usize) -> bool {
    index < TRACED_PAGES || index.is_multiple_of(TRACE_EVERY_PAGE)
}

/// The `send batch` span of a page, or a disabled span for a page not traced.
pub(super) fn page_span(index: usize) -> tracing::Span {
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

/// What every page of one fan-out run shares.
pub(super) struct RunPages<'a> {
    pub run: &'a str,
    pub completions: &'a Completions,
    /// Devices another live run holds in flight, to try again once it answered or died.
    pub busy: &'a Mutex<Vec<String>>,
    /// Devices whose send failed (after the channel's own retries), for a later round.
    pub failed: &'a Mutex<Vec<String>>,
    /// This is such a later round: failed devices may be claimed again.
    pub retry_failed: bool,
}

impl Fanout {
    /// Reads a page of the audience and judges each device (segment, channel configured,
    /// preferences): what to claim, with the devices themselves. Devices no longer
    /// registered, outside the segment or outside the audience are left out.
    pub(super) async fn judge_page(
        &self,
        job: &AlertJob,
        ids: Vec<String>,
    ) -> Result<(Vec<ClaimRequest>, Vec<newsroom_proto::v1::Device>), RedisError> {
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
            let expired = job.expires_at.is_some_and(|t| SystemTime::now() > t);
            let (reason, budget) = if self.channels.get(device.channel).is_none() {
                (Some(Suppression::ChannelUnavailable), 0)
            } else if expired {
                (Some(Suppression::Expired), 0)
            } else {
                match preferences::judge(&device, &job.facts, reach, job.alert.critical, now) {
                    Verdict::Outside => continue,
                    Verdict::Suppress(reason) => (Some(reason), 0),
                    Verdict::Send { budget } => (None, budget),
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
        Ok((requests, kept))
    }

    /// Reads, filters, claims and sends one page of the audience; `page` is its batch span
    /// (disabled when the page is not traced).
    pub(super) async fn send_page(
        &self,
        job: &AlertJob,
        pages: &RunPages<'_>,
        ids: Vec<String>,
        page: &tracing::Span,
    ) -> Result<(), RedisError> {
        let RunPages {
            run,
            completions,
            busy,
            failed,
            retry_failed,
        } = *pages;
        page.record("messaging.batch.message_count", ids.len());
        async {
            self.metrics.audience_read(ids.len());
            let (requests, kept) = self.judge_page(job, ids).await?;
            let claims = self
                .store
                .claim(
                    &ClaimAlert {
                        story: &job.alert.story_id,
                        version: job.alert.version,
                        run,
                        critical: job.alert.critical,
                        retry_failed,
                        event: job.event.as_ref(),
                    },
                    &requests,
                )
                .await?;
            // Which alert of the event covered the devices suppressed as the same event.
            let same_event: Vec<String> = requests
                .iter()
                .zip(&claims)
                .filter(|(_, c)| **c == Claim::SameEvent)
                .map(|(r, _)| r.device_id.clone())
                .collect();
            let covered_by = match &job.event {
                Some(e) if !same_event.is_empty() => {
                    self.store.event_alerts(&e.cluster, &same_event).await?
                }
                _ => Default::default(),
            };
            // Sends grouped by channel (a span each under a traced page), receipts of the suppressed.
            let mut sends: std::collections::BTreeMap<&'static str, Vec<_>> = Default::default();
            let mut work = Vec::new();
            let (mut claimed, mut suppressed, mut held) = (0usize, 0usize, 0usize);
            for ((request, device), claim) in requests.iter().zip(kept).zip(claims) {
                match claim {
                    Claim::Send | Claim::Resend => {
                        claimed += 1;
                        let channel = channel_name(&device);
                        sends.entry(channel).or_default().push(async move {
                            let id = device.device_id.clone();
                            let answer = self.send_to_device(job, device, Some(completions)).await;
                            if answer == Answer::Failed {
                                failed.lock().unwrap_or_else(|p| p.into_inner()).push(id);
                            }
                            answer
                        });
                    }
                    Claim::Suppressed | Claim::SameEvent => {
                        suppressed += 1;
                        // Suppressed without a reason of ours: the script found the day's
                        // budget spent, or the event already reached the device.
                        let reason = match claim {
                            Claim::SameEvent => Suppression::SameEvent,
                            _ => request.reason.unwrap_or(Suppression::Budget),
                        };
                        let detail = match (&job.event, reason) {
                            (Some(e), Suppression::SameEvent) => format!(
                                "same_event: alerted by story {} (cluster {})",
                                covered_by
                                    .get(&request.device_id)
                                    .map_or("?", String::as_str),
                                e.cluster
                            ),
                            _ => reason.as_str().to_owned(),
                        };
                        Suppressed {
                            story_id: &job.alert.story_id,
                            device_id: &device.device_id,
                            reason,
                        }
                        .emit(&self.metrics);
                        work.push(async move {
                            self.receipt(&device, &job.alert, DeliveryOutcome::Suppressed, detail)
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
}
