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
            let (requests, _) = self.judge_page(job, ids).await?;
            let verdicts = self.store.preview_claims(&alert, &requests).await?;
            for (request, verdict) in requests.iter().zip(verdicts) {
                let reason = match verdict {
                    Claim::Send | Claim::Resend => {
                        status.targeted += 1;
                        status.sent += 1;
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
        tracing::info!(
            targeted = status.targeted,
            would_send = status.sent,
            "dry run"
        );
        Ok(status)
    }
}
