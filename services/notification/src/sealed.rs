//! Embargo-sealed alerts: an editor prepares the alert of a story still under embargo, and it
//! goes out as soon as the story is released — never before.
//!
//! Ingest holds an embargoed story on the compacted `stories.held` topic until the embargo
//! ends. Notification reads that topic ([`HeldHandler`], its own consumer group) into
//! `notif:held`, so `SendAlert` accepts an alert of a story it cannot have yet: the request is
//! checked now (role, audience, kill, lane from the story's urgency) and published on its
//! lane's topic with `sealed_until`; the lane's consumer parks it in `notif:sealed:<story>`.
//! When ingest releases the story (to `stories.raw`, then enrichment to `stories.enriched`),
//! the story's handler sends the parked alerts at once, beside the story's own alert, and
//! unparks each when its fan-out is done (a crash sends it again on redelivery; the ledger
//! keeps it once per device).
//!
//! Never before: notification has no story before its release, so nothing can be sent about
//! it; and a released story whose embargo is still ahead of this server's clock (a clock
//! behind ingest's) waits until it is not.
//!
//! After a Redis loss the rebuild ([`crate::state`]) replays `stories.held` and the two
//! request topics: a sealed request whose story is still held is parked again.

use newsroom_platform::kafka::{Handler, HandlerError, Record};
use newsroom_platform::time::{now_ms, timestamp_ms};
use newsroom_proto::v1::{AlertRequest, EnrichedStory, StoryEvent};

use crate::store::sealed::Held;
use crate::store::{AlertStore, RedisError};

/// Keeps `notif:held` as `stories.held` says: a story held until its embargo ends, or released
/// (a tombstone).
pub struct HeldHandler {
    pub store: AlertStore,
    pub state: crate::state::State,
}

impl Handler for HeldHandler {
    async fn handle(&self, record: &Record) -> Result<(), HandlerError> {
        self.state.ensure_loaded().await?;
        apply_held(&self.store, &record.key_str(), record.payload.as_deref())
            .await
            .map_err(HandlerError::retryable)?
            .map_err(HandlerError::poison)
    }
}

/// One `stories.held` record into `notif:held`; the inner error names poison.
pub async fn apply_held(
    store: &AlertStore,
    key: &str,
    payload: Option<&[u8]>,
) -> Result<Result<(), String>, RedisError> {
    use newsroom_proto::Message as _;
    let Some(payload) = payload else {
        if key.is_empty() {
            return Ok(Err("held tombstone without a key".into()));
        }
        return store.unhold(key).await.map(Ok);
    };
    let event = match StoryEvent::decode(payload) {
        Ok(e) => e,
        Err(e) => return Ok(Err(format!("not a StoryEvent: {e}"))),
    };
    let Some(story) = event.story.filter(|s| !s.id.is_empty()) else {
        return Ok(Err("held record without a story id".into()));
    };
    let Some(until_ms) = story.embargo_until.as_ref().and_then(timestamp_ms) else {
        return Ok(Err(format!(
            "held story {} without embargo_until",
            story.id
        )));
    };
    store
        .hold(
            &story.id,
            Held {
                until_ms,
                urgency: story.urgency,
            },
        )
        .await
        .map(Ok)
}

/// How long `enriched`'s embargo still runs by this server's clock (ms), if it does.
pub fn embargo_left_ms(enriched: &EnrichedStory) -> Option<i64> {
    let until = enriched
        .story
        .as_ref()?
        .embargo_until
        .as_ref()
        .and_then(timestamp_ms)?;
    let left = until - now_ms();
    (left > 0).then_some(left)
}

/// When a request may start counting its age: its request time, or the end of the embargo it
/// was sealed until, whichever is later.
pub fn start_of(request: &AlertRequest) -> Option<i64> {
    [
        request.requested_at.as_ref().and_then(timestamp_ms),
        request.sealed_until.as_ref().and_then(timestamp_ms),
    ]
    .into_iter()
    .flatten()
    .max()
}
