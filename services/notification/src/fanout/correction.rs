//! Corrections: a new version of an alerted story marked as a correction replaces the alert on
//! the devices it was delivered to within the correction window, through the same collapse id.
//! The ledger says who those devices are; each is claimed per version before it is sent, so a
//! correction reaches a device at most once per version.

use std::time::SystemTime;

use futures::StreamExt as _;
use newsroom_platform::time::now_ms;

use super::{AlertJob, Fanout, FanoutError};
use crate::store::{Answer, LedgerEntry};

impl Fanout {
    /// A correction: the new version replaces the alert on devices alerted within the window,
    /// through the same collapse id. Claimed before sending, at most once per version.
    #[tracing::instrument(skip_all, fields(story.id = %job.alert.story_id, version = job.alert.version))]
    pub async fn correct(&self, job: &AlertJob) -> Result<(), FanoutError> {
        self.own_lane(job.lane).run_correction(job).await
    }

    async fn run_correction(&self, job: &AlertJob) -> Result<(), FanoutError> {
        let window = self.settings.correction_window;
        if window.is_zero() {
            return Ok(());
        }
        let mut job = job.clone();
        job.alert.correction = true;
        job.alert.sent_at = Some(SystemTime::now().into());
        // The latency a reader feels is the first alert's, not its correction's.
        job.accepted_at = None;
        let job = &job;
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
            // Delivered, of an earlier version, within the window.
            let candidates: Vec<String> = entries
                .into_iter()
                .filter(|(_, entry)| {
                    matches!(
                        LedgerEntry::parse(entry),
                        Some(LedgerEntry::Answered {
                            version,
                            answer: Answer::Delivered,
                            at_ms,
                        }) if version < alert.version && at_ms >= cutoff
                    )
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
            let sends = devices
                .into_iter()
                .flatten()
                .map(|device| self.send_to_device(job, device, None));
            let page: Vec<Answer> = futures::stream::iter(sends)
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
}
