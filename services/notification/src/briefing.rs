//! Daily briefings: at the local time a reader chose (`Preferences.briefing_time`, in each
//! device's own time zone), one message with the top stories of their follows since the last
//! briefing — in their language, none the device was already alerted about (the story or its
//! news event), one per developing story — through the device's channel (the webhook and Web
//! Push payloads carry the stories; `Alert.briefing`). A briefing due inside quiet hours waits
//! until they end; one with nothing new is not sent.
//!
//! Every story is remembered in the indexes a reader can follow it by
//! (`notif:recent:{topic,entity,cluster}:<x>`, two days); each device's next briefing is in
//! the `notif:briefings` schedule, kept by `put_device`. Every replica looks for due briefings
//! every [`TICK`]; a lease per device and due time makes one replica send each. After an
//! outage the next briefing is the next one due from now: a missed morning is not sent at
//! noon, and three missed days are not three briefings.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use newsroom_platform::shutdown::Shutdown;
use newsroom_platform::time::now_ms;
use newsroom_proto::v1::{Alert, BriefingItem, Device, Preferences};

use crate::channel::{Delivery, SendOutcome};
use crate::fanout::Fanout;
use crate::store::{AlertStore, RedisError};
use crate::{decision, preferences};

/// Stories in a briefing.
pub const BRIEFING_STORIES: usize = 5;
/// How often due briefings are looked for.
pub const TICK: Duration = Duration::from_secs(1);
/// Candidates read per followed index, and in all.
const PER_FOLLOW: isize = 20;
const CANDIDATES: usize = 60;
/// A briefing due in quiet hours looks again this much later.
const QUIET_RETRY_MS: i64 = 5 * 60 * 1000;
/// The look-back of a device's first briefing.
const FIRST_LOOK_BACK_MS: i64 = 24 * 3600 * 1000;

/// Sends due briefings until shutdown.
pub async fn run(
    fanout: Fanout,
    state: crate::state::State,
    shutdown: Shutdown,
) -> Result<(), std::convert::Infallible> {
    loop {
        tokio::select! {
            _ = shutdown.requested() => return Ok(()),
            _ = tokio::time::sleep(TICK) => {}
        }
        // Nothing is decided against a ledger Redis has lost.
        if state.ensure_loaded().await.is_err() {
            continue;
        }
        if let Err(e) = send_due(&fanout, Utc::now()).await {
            tracing::warn!(error = %e, "briefings: redis unavailable; trying again");
        }
    }
}

/// Sends the briefings due at `now`.
pub async fn send_due(fanout: &Fanout, now: DateTime<Utc>) -> Result<(), RedisError> {
    let store = &fanout.store;
    for (device_id, due_ms) in store.due_briefings(now.timestamp_millis(), 200).await? {
        if !store.lease_briefing(&device_id, due_ms).await? {
            continue;
        }
        let Some(device) = store.device(&device_id).await? else {
            store.unschedule_briefing(&device_id).await?;
            continue;
        };
        let Some(prefs) = device
            .preferences
            .clone()
            .filter(|p| !p.briefing_time.is_empty())
        else {
            store.unschedule_briefing(&device_id).await?;
            continue;
        };
        if preferences::in_quiet_hours(&device, &prefs, now) {
            store
                .postpone_briefing(&device_id, now.timestamp_millis() + QUIET_RETRY_MS)
                .await?;
            continue;
        }
        let since = match store.last_briefed(&device_id).await? {
            Some(at) => at,
            None => due_ms - FIRST_LOOK_BACK_MS,
        };
        let items = pick(store, &device, &prefs, since).await?;
        if items.is_empty() {
            tracing::debug!(device.id = %device_id, "briefing: nothing new");
        } else {
            let day = preferences::local_day(&device, now);
            let outcome = send(fanout, &device, &day, items).await;
            tracing::info!(device.id = %device_id, day, ?outcome, "briefing sent");
        }
        store.set_briefed(&device_id, now_ms()).await?;
        // The next one after now: missed days are not made up.
        store
            .schedule_briefing(
                &device,
                now.max(DateTime::from_timestamp_millis(due_ms).unwrap_or(now)),
            )
            .await?;
    }
    Ok(())
}

/// The top stories for `device` accepted after `since_ms`: urgent first, then those matching
/// more of the reader's follows, then the newest; one per developing story.
pub async fn pick(
    store: &AlertStore,
    device: &Device,
    prefs: &Preferences,
    since_ms: i64,
) -> Result<Vec<BriefingItem>, RedisError> {
    let recent = store
        .recent_for_user(&device.user_id, since_ms, PER_FOLLOW)
        .await?;
    let mut candidates: Vec<(String, usize, i64)> = recent
        .into_iter()
        .map(|(id, (matches, at))| (id, matches, at))
        .collect();
    candidates.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    candidates.truncate(CANDIDATES);
    let mut clusters = HashSet::new();
    let mut picked = Vec::new();
    for (id, matches, at) in candidates {
        // Killed or expired stories are gone from the cache.
        let Some(enriched) = store.story(&id).await? else {
            continue;
        };
        let facts = decision::facts_of(&enriched);
        if !decision::is_usable(&enriched)
            || !preferences::reads_language_of(device, prefs, &facts)
            || store
                .was_alerted(&device.device_id, &id, facts.cluster.as_deref())
                .await?
        {
            continue;
        }
        if let Some(c) = &facts.cluster
            && !clusters.insert(c.clone())
        {
            continue;
        }
        let Some(story) = enriched.story else {
            continue;
        };
        let urgency = if story.urgency == 0 { 9 } else { story.urgency };
        picked.push((
            (urgency, std::cmp::Reverse(matches), std::cmp::Reverse(at)),
            BriefingItem {
                story_id: story.id,
                headline: story.headline,
                url: story.url,
                urgency: story.urgency,
            },
        ));
    }
    picked.sort_by_key(|(rank, _)| *rank);
    Ok(picked
        .into_iter()
        .take(BRIEFING_STORIES)
        .map(|(_, item)| item)
        .collect())
}

/// Sends one briefing through the device's channel, under one idempotency key per device and
/// local day.
async fn send(
    fanout: &Fanout,
    device: &Device,
    day: &str,
    items: Vec<BriefingItem>,
) -> Option<SendOutcome> {
    let id = format!("briefing:{day}");
    let alert = Alert {
        story_id: id.clone(),
        headline: match items.len() {
            1 => "Your briefing: 1 story".to_owned(),
            n => format!("Your briefing: {n} stories"),
        },
        url: items.first().map(|i| i.url.clone()).unwrap_or_default(),
        collapse_id: id.clone(),
        sent_at: Some(std::time::SystemTime::now().into()),
        briefing: items,
        ..Default::default()
    };
    let key = format!("{id}:{}", device.device_id);
    fanout
        .channels
        .send(Delivery {
            device,
            alert: &alert,
            idempotency_key: &key,
        })
        .await
}
