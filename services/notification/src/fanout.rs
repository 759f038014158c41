//! Deciding who gets an alert, and sending it at most once per (story, device).
//!
//! The audience is streamed device by device with bounded concurrency. Before each send the
//! (story, device) pair is claimed in Redis (`SET NX`): a redelivered story, a second replica or
//! a new version of the story finds the claim and sends nothing. A crash between claim and send
//! loses that one alert rather than risk a duplicate: for a push alert a duplicate is worse.

use std::time::SystemTime;

use futures::StreamExt as _;
use newsroom_platform::kafka::Producer;
use newsroom_proto::Message as _;
use newsroom_proto::v1::{
    Alert, Channel as ChannelKind, DeliveryOutcome, DeliveryReceipt, Device, EnrichedStory,
    PubStatus,
};

use crate::channel::webhook::Webhook;
use crate::channel::{Channel as _, SendOutcome};
use crate::store::AlertStore;

/// The alert a story would send.
pub fn alert_of(enriched: &EnrichedStory) -> Option<Alert> {
    let story = enriched.story.as_ref()?;
    Some(Alert {
        story_id: story.id.clone(),
        version: story.version,
        headline: story.headline.clone(),
        url: story.url.clone(),
        urgency: story.urgency,
        topics: enriched
            .enrichment
            .as_ref()
            .map(|e| e.topics.iter().map(|t| t.code.clone()).collect())
            .unwrap_or_default(),
        sent_at: None,
    })
}

/// Whether a story alerts by itself: usable and urgent enough (urgency 0 = not given).
pub fn is_breaking(enriched: &EnrichedStory, max_urgency: u32) -> bool {
    enriched.story.as_ref().is_some_and(|s| {
        s.pubstatus != PubStatus::Canceled as i32
            && s.pubstatus != PubStatus::Withheld as i32
            && (1..=max_urgency).contains(&s.urgency)
    })
}

/// Sends alerts to devices.
#[derive(Clone)]
pub struct Fanout {
    pub store: AlertStore,
    webhook: Webhook,
    producer: Producer,
    receipts_topic: String,
    devices_topic: String,
    concurrency: usize,
}

impl Fanout {
    pub fn new(
        store: AlertStore,
        webhook: Webhook,
        producer: Producer,
        receipts_topic: String,
        devices_topic: String,
        concurrency: usize,
    ) -> Self {
        Fanout {
            store,
            webhook,
            producer,
            receipts_topic,
            devices_topic,
            concurrency,
        }
    }

    /// Sends `alert` to each of `device_ids` not already alerted for this story.
    #[tracing::instrument(skip_all, fields(story.id = %alert.story_id, devices = device_ids.len()))]
    pub async fn send(
        &self,
        alert: &Alert,
        device_ids: Vec<String>,
    ) -> Result<(), newsroom_platform::redis::redis::RedisError> {
        let mut alert = alert.clone();
        alert.sent_at = Some(SystemTime::now().into());
        let alert = &alert;
        let results: Vec<Result<(), _>> = futures::stream::iter(device_ids)
            .map(|id| async move { self.send_one(alert, &id).await })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        results.into_iter().collect()
    }

    async fn send_one(
        &self,
        alert: &Alert,
        device_id: &str,
    ) -> Result<(), newsroom_platform::redis::redis::RedisError> {
        let story = &alert.story_id;
        if !self.store.claim(story, device_id).await? {
            return Ok(());
        }
        self.store.count(story, "targeted", 1).await?;
        let Some(device) = self.store.device(device_id).await? else {
            self.store
                .count(story, "suppressed:unregistered", 1)
                .await?;
            return Ok(());
        };
        let outcome = match ChannelKind::try_from(device.channel) {
            Ok(ChannelKind::Webhook) => self.webhook.send(&device, alert).await,
            _ => {
                self.store
                    .count(story, "suppressed:unsupported_channel", 1)
                    .await?;
                return Ok(());
            }
        };
        self.store.count(story, "sent", 1).await?;
        let (field, receipt_outcome, detail) = match &outcome {
            SendOutcome::Delivered => ("delivered", DeliveryOutcome::Delivered, String::new()),
            SendOutcome::Failed(why) => ("failed", DeliveryOutcome::Failed, why.clone()),
            SendOutcome::Gone(why) => ("failed", DeliveryOutcome::Gone, why.clone()),
        };
        self.store.count(story, field, 1).await?;
        if let SendOutcome::Gone(why) = &outcome {
            tracing::info!(device.id = %device_id, %why, "device gone, unregistering");
            self.unregister(&device).await;
        }
        if !matches!(outcome, SendOutcome::Delivered) {
            tracing::warn!(device.id = %device_id, story.id = %story, %detail, "alert not delivered");
        }
        self.receipt(&device, alert, receipt_outcome, detail).await;
        Ok(())
    }

    async fn unregister(&self, device: &Device) {
        if let Err(e) = self
            .producer
            .send_tombstone(&self.devices_topic, &device.device_id)
            .await
        {
            tracing::warn!(error = %e, "could not write the device tombstone");
        }
        if let Err(e) = self.store.remove_device(&device.device_id).await {
            tracing::warn!(error = %e, "could not remove the device from redis");
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
        if let Err(e) = self
            .producer
            .send(
                &self.receipts_topic,
                &device.device_id,
                &receipt.encode_to_vec(),
            )
            .await
        {
            tracing::warn!(error = %e, "could not publish the delivery receipt");
        }
    }
}
