//! One device's send, the same for an alert and a correction: the channel's call under the
//! right idempotency key, the metrics, the answer for the ledger, the receipt, and the
//! tombstone of a device the provider says is gone. Also the writer that records answers in
//! the ledger in batches, off the send path.

use std::time::{Duration, Instant, SystemTime};

use backon::{BackoffBuilder as _, ExponentialBuilder};
use newsroom_platform::time::now_ms;
use newsroom_proto::v1::{Alert, DeliveryOutcome, DeliveryReceipt, Device};
use tokio::sync::mpsc;

use super::{AlertJob, Fanout};
use crate::channel::{self, Delivery, SendOutcome};
use crate::metrics::Sent;
use crate::store::Answer;

/// Answers on their way to the ledger: device, answer, when (ms since the epoch).
pub(super) type Completions = mpsc::Sender<(String, Answer, i64)>;

/// Attempts to record a batch of answers, the first included.
const RECORD_ATTEMPTS: usize = 5;
/// Wait before the second attempt; doubles each time, plus jitter.
const RECORD_FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// The channel's name of a device, for metrics and spans.
pub(super) fn channel_name(device: &Device) -> &'static str {
    newsroom_proto::v1::Channel::try_from(device.channel).map_or("unspecified", channel::name_of)
}

/// The idempotency key of a send. An alert's is `<story>:<device>`, the same when a crashed
/// run's send is repeated, so the receiver collapses the two; a correction's names its version,
/// `<story>:<device>:v<version>`, since it is a new message that must get through; a
/// retraction's is `<story>:<device>:retracted`.
fn idempotency_key(alert: &Alert, device: &Device) -> String {
    if alert.retracted {
        format!("{}:{}:retracted", alert.story_id, device.device_id)
    } else if alert.correction {
        format!("{}:{}:v{}", alert.story_id, device.device_id, alert.version)
    } else {
        format!("{}:{}", alert.story_id, device.device_id)
    }
}

impl Fanout {
    /// Sends `job.alert` to one claimed device and returns its answer, after reporting it to
    /// `completions` (an alert's ledger; a correction has none), unregistering the device if it
    /// is gone and publishing the receipt.
    pub(super) async fn send_to_device(
        &self,
        job: &AlertJob,
        device: Device,
        completions: Option<&Completions>,
    ) -> Answer {
        let alert = &job.alert;
        let key = idempotency_key(alert, &device);
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
            correction: alert.correction,
        }
        .emit(&self.metrics);
        let answer = match &outcome {
            SendOutcome::Delivered => Answer::Delivered,
            SendOutcome::Failed(_) => Answer::Failed,
            SendOutcome::Gone(_) => Answer::Gone,
        };
        if let Some(completions) = completions {
            // If the writer is gone the run is ending anyway; the entry stays in flight.
            let _ = completions
                .send((device.device_id.clone(), answer, now_ms()))
                .await;
        }
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

    /// Publishes a device's receipt for `alert`.
    pub(super) async fn receipt(
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
            version: alert.version,
            correction: alert.correction && !alert.retracted,
            retraction: alert.retracted,
            event_id: alert.event_id.clone(),
            urgency: alert.urgency,
        };
        self.receipts.publish(&receipt).await;
    }

    /// Records answers in batches, off the send path.
    pub(super) fn completion_writer(
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
                let mut delays = ExponentialBuilder::default()
                    .with_min_delay(RECORD_FIRST_BACKOFF)
                    .with_jitter()
                    .with_max_times(RECORD_ATTEMPTS - 1)
                    .build();
                while let Err(e) = store.complete(&story, version, &run, &batch).await {
                    let Some(delay) = delays.next() else {
                        // These devices stay "in flight": a redelivery resends them with
                        // the same idempotency key.
                        tracing::error!(error = %e, devices = batch.len(), "could not record answers");
                        break;
                    };
                    tokio::time::sleep(delay).await;
                }
            }
        });
        (tx, task)
    }
}
