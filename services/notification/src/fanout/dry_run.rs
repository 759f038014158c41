//! A dry run: an alert's whole decision and audience resolution — every page read, every
//! device judged (segment, channel, preferences), the ledger, the event's ledger and the day's
//! budget consulted — with nothing claimed, sent or recorded. The counts are those a real alert
//! would have now: `sent` is how many devices it would send to.

use std::collections::HashSet;

use newsroom_proto::v1::AlertStatus;

use super::{AlertJob, Fanout};
use crate::audience::AudienceCursor;
use crate::store::{Claim, ClaimAlert, RedisError};
use crate::suppression::Suppression;

impl Fanout {
    /// What `job` would do now; see the module documentation. A device reached through
    /// several audience sets counts once (the run remembers the ids it saw: a dry run of a
    /// million-device audience holds a million ids, which a real fan-out never does).
    #[tracing::instrument(skip_all, fields(story.id = %job.alert.story_id, audience = %job.audience.label()))]
    pub async fn dry_run(&self, job: &AlertJob) -> Result<AlertStatus, RedisError> {
        let mut status = AlertStatus {
            story_id: job.alert.story_id.clone(),
            version: job.alert.version,
            dry_run: true,
            ..Default::default()
        };
        let mut cursor = AudienceCursor::new(
            self.store.clone(),
            &job.audience,
            &job.facts,
            self.settings.batch,
        );
        let mut seen = HashSet::new();
        let alert = ClaimAlert {
            story: &job.alert.story_id,
            version: job.alert.version,
            run: "dry-run",
            critical: job.alert.critical,
            retry_failed: false,
            event: job.event.as_ref(),
        };
        while let Some(ids) = cursor.next_page().await? {
            let ids: Vec<String> = ids
                .into_iter()
                .filter(|id| seen.insert(id.clone()))
                .collect();
            let (requests, devices) = self.judge_page(job, ids).await?;
            let verdicts = self.store.preview_claims(&alert, &requests).await?;
            for ((request, verdict), device) in requests.iter().zip(verdicts).zip(&devices) {
                let reason = match verdict {
                    Claim::Send | Claim::Resend => {
                        status.targeted += 1;
                        status.sent += 1;
                        *status
                            .sent_by_channel
                            .entry(super::send::channel_name(device).to_owned())
                            .or_default() += 1;
                        continue;
                    }
                    Claim::SameEvent => Suppression::SameEvent,
                    Claim::Suppressed => request.reason.unwrap_or(Suppression::Budget),
                    // Already handled for this story: a real run would not count it again.
                    Claim::Skip | Claim::Busy => continue,
                };
                status.targeted += 1;
                *status
                    .suppressed
                    .entry(reason.as_str().to_owned())
                    .or_default() += 1;
            }
        }
        let recent = self.store.recent_throughput().await?;
        if let Some(pace) = Pace::of(&recent) {
            status.recent_sends_per_second = pace.per_second;
            status.recent_fanouts = recent.len() as u32;
            status.predicted_time_to_90_percent_sent = pace
                .to_90_percent(status.sent)
                .and_then(|d| prost_types::Duration::try_from(d).ok());
        }
        tracing::info!(
            targeted = status.targeted,
            would_send = status.sent,
            "dry run"
        );
        Ok(status)
    }
}

/// The pace of recent fan-outs: every device they sent over the sum of their times to 90 %
/// sent, so a large fan-out weighs as much as it sent and a tiny one adds its start-up cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Pace {
    pub(super) per_second: f64,
}

impl Pace {
    /// From (devices sent, ms to 90 % sent) of recent fan-outs; `None` without one.
    pub(super) fn of(runs: &[(u64, u64)]) -> Option<Pace> {
        let sent: u64 = runs.iter().map(|(n, _)| n).sum();
        // A time under one timeline bucket is measured as one bucket.
        let ms: u64 = runs
            .iter()
            .map(|(_, ms)| (*ms).max(crate::store::TIMELINE_BUCKET_MS as u64))
            .sum();
        (sent > 0 && ms > 0).then(|| Pace {
            per_second: 0.9 * sent as f64 * 1000.0 / ms as f64,
        })
    }

    /// How long sending 90 % of `devices` takes at this pace; `None` for no device.
    pub(super) fn to_90_percent(self, devices: u64) -> Option<std::time::Duration> {
        (devices > 0 && self.per_second > 0.0)
            .then(|| std::time::Duration::from_secs_f64(0.9 * devices as f64 / self.per_second))
    }
}

#[cfg(test)]
mod tests {
    use super::Pace;
    use std::time::Duration;

    #[test]
    fn the_pace_of_recent_fan_outs_predicts_the_time_to_90_percent() {
        assert_eq!(Pace::of(&[]), None);
        // 10,000 devices, 90 % of them in 2 s: 4,500 a second.
        let pace = Pace::of(&[(10_000, 2_000)]).unwrap();
        assert!((pace.per_second - 4_500.0).abs() < 1e-6);
        assert_eq!(
            pace.to_90_percent(1_000_000),
            Some(Duration::from_secs(200))
        );
        assert_eq!(pace.to_90_percent(0), None);
        // A one-device alert adds its start-up time: the pace drops a little, not to one a second.
        let with_tiny = Pace::of(&[(10_000, 2_000), (1, 10)]).unwrap();
        assert!(with_tiny.per_second < pace.per_second && with_tiny.per_second > 4_000.0);
    }
}
