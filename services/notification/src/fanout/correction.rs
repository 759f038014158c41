//! Corrections and retractions: a new version of an alerted story marked as a correction
//! replaces the alert on the devices it was delivered to within the correction window, through
//! the same collapse id; a retraction (the story killed, or an editor recalling the alert)
//! withdraws it the same way. The ledger says who those devices are; each is claimed before it
//! is sent, so a device gets a correction at most once per version and a retraction at most
//! once, after which no correction reaches it.

use std::time::SystemTime;

use futures::StreamExt as _;
use newsroom_platform::time::now_ms;

use super::{AlertJob, Fanout, FanoutError};
use crate::store::{Answer, LedgerEntry, Replacement};

impl Fanout {
    /// A correction: the new version replaces the alert on devices alerted within the window,
    /// through the same collapse id. Claimed before sending, at most once per version.
    #[tracing::instrument(skip_all, fields(story.id = %job.alert.story_id, version = job.alert.version))]
    pub async fn correct(&self, job: &AlertJob) -> Result<(), FanoutError> {
        self.own_lane(job.lane)
            .run_replacement(job, Replacement::Correction)
            .await
    }

    /// A retraction: the alert is withdrawn from the devices alerted within the window, through
    /// the same collapse id, its headline "Withdrawn: …". Claimed before sending, at most once.
    #[tracing::instrument(skip_all, fields(story.id = %job.alert.story_id, version = job.alert.version))]
    pub async fn retract(&self, job: &AlertJob) -> Result<(), FanoutError> {
        self.own_lane(job.lane)
            .run_replacement(job, Replacement::Retraction)
            .await
    }

    async fn run_replacement(&self, job: &AlertJob, kind: Replacement) -> Result<(), FanoutError> {
        let window = self.settings.correction_window;
        if window.is_zero() {
            return Ok(());
        }
        let mut job = job.clone();
        job.alert.correction = true;
        if kind == Replacement::Retraction {
            job.alert.retracted = true;
            job.alert.critical = false;
            job.alert.headline = format!("Withdrawn: {}", job.alert.headline);
        }
        job.alert.sent_at = Some(SystemTime::now().into());
        // The latency a reader feels is the first alert's, not its correction's.
        job.accepted_at = None;
        let job = &job;
        let alert = &job.alert;
        let cutoff = now_ms() - window.as_millis() as i64;
        let mut cursor = 0;
        let mut replaced = 0usize;
        loop {
            if self.shutdown.is_requested() {
                return Err(FanoutError::Interrupted);
            }
            let (next, entries) = self
                .store
                .scan_ledger(&alert.story_id, cursor, self.settings.batch)
                .await?;
            // Delivered within the window; for a correction, of an earlier version.
            let candidates: Vec<String> = entries
                .into_iter()
                .filter(|(_, entry)| {
                    matches!(
                        LedgerEntry::parse(entry),
                        Some(LedgerEntry::Answered {
                            version,
                            answer: Answer::Delivered,
                            at_ms,
                        }) if (kind == Replacement::Retraction || version < alert.version)
                            && at_ms >= cutoff
                    )
                })
                .map(|(device, _)| device)
                .collect();
            let claimed = self
                .store
                .claim_replacements(&alert.story_id, kind, alert.version, &candidates)
                .await?;
            let ids: Vec<String> = candidates
                .into_iter()
                .zip(claimed)
                .filter_map(|(d, ok)| ok.then_some(d))
                .collect();
            let devices = self.store.devices(&ids).await?;
            let sends = devices
                .into_iter()
                .flatten()
                .map(|device| self.send_to_device(job, device, None));
            let page: Vec<Answer> = futures::stream::iter(sends)
                .buffer_unordered(self.pages_in_flight() * self.settings.batch)
                .collect()
                .await;
            replaced += page.len();
            if next == 0 {
                break;
            }
            cursor = next;
        }
        match kind {
            Replacement::Correction => tracing::info!(devices = replaced, "correction sent"),
            Replacement::Retraction => tracing::info!(devices = replaced, "retraction sent"),
        }
        Ok(())
    }
}
