//! What readers do with their alerts, fed back (`AcknowledgeAlert`): an alert opened marks the
//! story read in the reader's feed, a dismissed one is a mild "not interested" in its topics —
//! each an `Interaction` on the `interactions` topic, which recommendation folds in like any
//! other — and the alert's counts say how many devices opened or dismissed it (`GetAlert`).
//!
//! The reader is the device's user, never a field of the call. A device can report only an
//! alert the ledger shows it was sent, and only its first report counts: a retry, or a second
//! report, changes nothing.

use newsroom_platform::kafka::Producer;
use newsroom_proto::Message as _;
use newsroom_proto::v1::{AcknowledgeAlertRequest, AlertAction, Interaction, InteractionKind};
use tonic::Status;

use crate::api::ApiError;
use crate::store::{AlertStore, Answer, LedgerEntry};

/// Feeds alert actions back to the feed. Cheap to clone.
#[derive(Clone)]
pub struct Feedback {
    pub store: AlertStore,
    pub producer: Producer,
    /// The `interactions` topic (with the platform's prefix).
    pub interactions_topic: String,
}

impl Feedback {
    /// Records what a device did with an alert; false when it had already reported.
    /// `may_act_for` says whether the caller may act for the device's owner.
    pub async fn acknowledge(
        &self,
        req: &AcknowledgeAlertRequest,
        may_act_for: impl FnOnce(&str) -> Result<(), tonic::Status>,
    ) -> Result<bool, ApiError> {
        let (device_id, story) = (req.device_id.trim(), req.story_id.trim());
        if device_id.is_empty() {
            return Err(crate::api::invalid("device_id: required"));
        }
        if story.is_empty() {
            return Err(crate::api::invalid("story_id: required"));
        }
        let (kind, action) = match AlertAction::try_from(req.action) {
            Ok(AlertAction::Opened) => (InteractionKind::Read, "opened"),
            Ok(AlertAction::Dismissed) => (InteractionKind::Dismiss, "dismissed"),
            _ => {
                return Err(crate::api::invalid(
                    "action: ALERT_ACTION_OPENED or ALERT_ACTION_DISMISSED",
                ));
            }
        };
        let device = self.store.device(device_id).await?.ok_or_else(|| {
            ApiError::Status(Status::not_found(format!(
                "device {device_id} is not registered"
            )))
        })?;
        may_act_for(&device.user_id).map_err(ApiError::Status)?;
        let delivered = matches!(
            self.store.ledger_entry(story, device_id).await?,
            Some(LedgerEntry::Answered {
                answer: Answer::Delivered,
                ..
            })
        );
        if !delivered {
            return Err(ApiError::Status(Status::failed_precondition(format!(
                "device {device_id} was not sent an alert about story {story}"
            ))));
        }
        if self.store.acknowledged(story, device_id).await? {
            return Ok(false);
        }
        // The feed first: a report whose interaction did not reach Kafka is not counted, so
        // the app's retry passes it on.
        let interaction = Interaction {
            user_id: device.user_id.clone(),
            story_id: story.to_owned(),
            kind: kind as i32,
            dwell_ms: 0,
            at: Some(std::time::SystemTime::now().into()),
        };
        self.producer
            .send(
                &self.interactions_topic,
                &device.user_id,
                &interaction.encode_to_vec(),
            )
            .await?;
        let first = self.store.acknowledge(story, device_id, action).await?;
        tracing::info!(story.id = %story, device.id = %device_id, action, first, "alert acknowledged");
        Ok(first)
    }
}
