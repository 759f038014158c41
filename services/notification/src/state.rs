//! Losing Redis loses no follower and sends no alert twice: notification's state is rebuilt
//! from Kafka whenever its loss is noticed, at run time as at start.
//!
//! `notif:{ledger}:loaded` marks the state present. Every consumer's handler looks for it before it
//! touches Redis, the claim script refuses to claim a device without it, and a background task
//! ([`keep_loaded`]) looks every [`CHECK_EVERY`] (or at once, when a handler found it gone).
//! When it is gone (Redis flushed, restarted empty, replaced):
//! 1. handlers answer "retry": their partitions pause (the replica reports NOT_SERVING) and no
//!    fan-out claims a device, so nothing is sent against an empty ledger;
//! 2. this replica's delivery receipts are flushed, so every answered send is on
//!    `notifications.receipts`;
//! 3. the compacted `devices` and `profiles` topics are replayed into the device index and the
//!    audiences, and `notifications.receipts` into the ledger (answered and suppressed devices,
//!    corrections, the version each story alerted); `stories.held` into the embargoed stories,
//!    and the two request topics for the alerts sealed until a story still held is released;
//! 4. the marker is set again, unless Redis lost the state again during the rebuild (then it
//!    starts over: see the platform's `Rebuild`): the partitions resume, and an interrupted fan-out carries on
//!    with the devices the receipts do not name.
//!
//! Left open: a send in flight on *another* replica at the moment of the loss whose receipt
//! reaches Kafka after this replay may be sent again, under the same idempotency key (which
//! every provider collapses).

use std::sync::Arc;
use std::time::Duration;

use newsroom_platform::PlatformConfig;
use newsroom_platform::kafka::{self, HandlerError, topics};
use newsroom_platform::redis::{Loaded, Rebuild};
use newsroom_platform::shutdown::Shutdown;
use newsroom_proto::Message as _;
use newsroom_proto::v1::{AlertRequest, DeliveryReceipt, Device, UserProfile};
use tokio::sync::Notify;

use crate::receipts::Receipts;
use crate::store::{AlertStore, LOADED_MARKER, RedisError};

/// How often the marker is checked when nothing else noticed.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);

/// Receipts restored per Redis round trip.
const RESTORE_BATCH: usize = 1000;

/// Whether the state is present, and the bell that wakes the rebuild. Cheap to clone.
#[derive(Clone)]
pub struct State {
    store: AlertStore,
    wake: Arc<Notify>,
}

impl State {
    pub fn new(store: AlertStore) -> Self {
        State {
            store,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Ok when Redis holds the state; else a retryable error (and the rebuild is woken), so the
    /// record waits until the state is back.
    pub async fn ensure_loaded(&self) -> Result<(), HandlerError> {
        match self.store.is_loaded().await {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.wake.notify_one();
                Err(HandlerError::retry(
                    "notification state lost from Redis; being rebuilt from Kafka",
                ))
            }
            Err(e) => Err(HandlerError::retryable(e)),
        }
    }
}

/// Why a rebuild did not finish.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("kafka: {0}")]
    Kafka(#[from] kafka::rdkafka::error::KafkaError),
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
}

/// What a rebuild restored.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Restored {
    pub devices: usize,
    pub profiles: usize,
    pub receipts: usize,
    /// Editors' alerts parked again until their story's release.
    pub sealed: usize,
}

/// Rebuilds the state from the topics (steps 2 and 3 of the module documentation).
pub async fn rebuild(
    store: &AlertStore,
    platform: &PlatformConfig,
    receipts: &Receipts,
) -> Result<Restored, RebuildError> {
    let flushing = receipts.clone();
    let _ = tokio::task::spawn_blocking(move || flushing.flush(Duration::from_secs(10))).await;

    let devices = kafka::replay(platform, &platform.topic(topics::DEVICES), |r| {
        let store = store.clone();
        async move {
            let done = match r.payload.as_deref().map(Device::decode) {
                None => store
                    .remove_device(&r.key_str(), r.offset)
                    .await
                    .map(|_| ()),
                Some(Ok(d)) if !d.device_id.is_empty() && !d.user_id.is_empty() => {
                    store.put_device(&d, r.offset).await.map(|_| ())
                }
                // Poison was dead-lettered by the devices consumer; nothing to restore.
                Some(_) => Ok(()),
            };
            if let Err(e) = done {
                tracing::warn!(error = %e, "rebuild: device not restored");
            }
        }
    })
    .await?;
    let profiles = kafka::replay(platform, &platform.topic(topics::PROFILES), |r| {
        let store = store.clone();
        async move {
            let Some(Ok(p)) = r.payload.as_deref().map(UserProfile::decode) else {
                return;
            };
            if let Err(e) = crate::apply_profile(&store, &p.user_id, Some(&p)).await {
                tracing::warn!(error = %e, "rebuild: profile not restored");
            }
        }
    })
    .await?;
    // Restored in batches as the replay goes; the first Redis failure fails the rebuild.
    let failed: Arc<std::sync::Mutex<Option<RedisError>>> = Arc::default();
    let mut batch = Vec::with_capacity(RESTORE_BATCH);
    let receipts_read = kafka::replay(
        platform,
        &platform.topic(topics::NOTIFICATIONS_RECEIPTS),
        |r| {
            if let Some(Ok(receipt)) = r.payload.as_deref().map(DeliveryReceipt::decode) {
                batch.push(receipt);
            }
            let full = (batch.len() >= RESTORE_BATCH).then(|| std::mem::take(&mut batch));
            let (store, failed) = (store.clone(), failed.clone());
            async move {
                if let Some(full) = full
                    && let Err(e) = store.restore_from_receipts(&full).await
                {
                    failed
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert(e);
                }
            }
        },
    )
    .await?;
    if let Some(e) = failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(e.into());
    }
    store.restore_from_receipts(&batch).await?;
    let sealed = restore_sealed(store, platform).await?;
    Ok(Restored {
        devices,
        profiles,
        receipts: receipts_read,
        sealed,
    })
}

/// The embargoed stories from `stories.held`, then every sealed request of the two request
/// topics whose story is still held, parked again; how many were.
async fn restore_sealed(
    store: &AlertStore,
    platform: &PlatformConfig,
) -> Result<usize, RebuildError> {
    kafka::replay(platform, &platform.topic(topics::STORIES_HELD), |r| {
        let store = store.clone();
        async move {
            match crate::sealed::apply_held(&store, &r.key_str(), r.payload.as_deref()).await {
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "rebuild: held story not restored"),
            }
        }
    })
    .await?;
    let parked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for topic in [
        topics::NOTIFICATIONS_ALERTS,
        topics::NOTIFICATIONS_ALERTS_BREAKING,
    ] {
        kafka::replay(platform, &platform.topic(topic), |r| {
            let (store, parked) = (store.clone(), parked.clone());
            async move {
                let Some(Ok(request)) = r.payload.as_deref().map(AlertRequest::decode) else {
                    return;
                };
                if request.sealed_until.is_none() {
                    return;
                }
                let parked_again = match store.held(&request.story_id).await {
                    Ok(Some(_)) => store.seal(&request).await.map(|()| true),
                    Ok(None) => Ok(false),
                    Err(e) => Err(e),
                };
                match parked_again {
                    Ok(true) => {
                        parked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "rebuild: sealed alert not restored"),
                }
            }
        })
        .await?;
    }
    Ok(parked.load(std::sync::atomic::Ordering::Relaxed))
}

/// Rebuilds the state if Redis lost it; true when it is there afterwards.
pub async fn load_if_lost(state: &State, platform: &PlatformConfig, receipts: &Receipts) -> bool {
    let loaded = Rebuild::if_lost(state.store.redis(), LOADED_MARKER, "notification", || {
        rebuild(&state.store, platform, receipts)
    })
    .await;
    match loaded {
        Loaded::Present => true,
        Loaded::Rebuilt(restored) => {
            tracing::info!(
                devices = restored.devices,
                profiles = restored.profiles,
                receipts = restored.receipts,
                sealed = restored.sealed,
                "state rebuilt from Kafka"
            );
            true
        }
        Loaded::Missing => false,
    }
}

/// Keeps the state in Redis until shutdown (see the module documentation).
pub async fn keep_loaded(
    state: State,
    platform: PlatformConfig,
    receipts: Receipts,
    shutdown: Shutdown,
) -> Result<(), std::convert::Infallible> {
    loop {
        load_if_lost(&state, &platform, &receipts).await;
        tokio::select! {
            _ = shutdown.requested() => return Ok(()),
            _ = state.wake.notified() => {}
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
    }
}
