//! `StreamAlerts`: a reader's in-app alerts as a server stream (Redis pub/sub after a replay of
//! the inbox since `since`), and the caps on how many are open — per reader
//! (`NEWSROOM_STREAMS_PER_READER`, default 5: a few tabs and devices) and per replica
//! (`NEWSROOM_STREAMS_MAX`, default 10000). Each open stream holds a Redis connection and a
//! task; past a cap the call is `RESOURCE_EXHAUSTED` before either is taken.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::StreamExt as _;
use newsroom_platform::redis::{RedisStore, redis};
use newsroom_platform::shutdown::Shutdown;
use newsroom_proto::Message as _;
use newsroom_proto::v1::Alert;
use tonic::Status;

use crate::api::ApiError;
use crate::channel::in_app;

/// Open streams a reader may have at once.
pub const NEWSROOM_STREAMS_PER_READER: &str = "NEWSROOM_STREAMS_PER_READER";
/// Open streams one replica serves at once.
pub const NEWSROOM_STREAMS_MAX: &str = "NEWSROOM_STREAMS_MAX";

/// The open streams, counted.
#[derive(Clone)]
pub struct StreamSlots {
    inner: Arc<Inner>,
}

struct Inner {
    per_reader: usize,
    max: usize,
    open: Mutex<(usize, HashMap<String, usize>)>,
}

/// One open stream; dropping it (the stream's end) frees its place.
pub struct Slot {
    inner: Arc<Inner>,
    reader: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.inner.open.lock().unwrap_or_else(|p| p.into_inner());
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.reader) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.reader);
            }
        }
    }
}

impl StreamSlots {
    pub fn new(per_reader: usize, max: usize) -> Self {
        StreamSlots {
            inner: Arc::new(Inner {
                per_reader: per_reader.max(1),
                max: max.max(1),
                open: Mutex::new((0, HashMap::new())),
            }),
        }
    }

    /// A place for one more stream of `reader`, or `RESOURCE_EXHAUSTED` saying which cap.
    pub fn take(&self, reader: &str) -> Result<Slot, Status> {
        let mut open = self.inner.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.0 >= self.inner.max {
            return Err(Status::resource_exhausted(format!(
                "this replica serves {} in-app streams already ({NEWSROOM_STREAMS_MAX}); retry on another",
                self.inner.max
            )));
        }
        let mine = open.1.get(reader).copied().unwrap_or(0);
        if mine >= self.inner.per_reader {
            return Err(Status::resource_exhausted(format!(
                "user_id: {mine} in-app streams open already, at most {} per reader \
                 ({NEWSROOM_STREAMS_PER_READER}); close one first",
                self.inner.per_reader
            )));
        }
        open.0 += 1;
        *open.1.entry(reader.to_owned()).or_default() += 1;
        Ok(Slot {
            inner: self.inner.clone(),
            reader: reader.to_owned(),
        })
    }
}

/// Opens `user`'s stream: subscribes, replays the inbox since `since`, then forwards what
/// pub/sub delivers (each alert once) until the client leaves or the server stops. `slot` is
/// held for the stream's life.
pub async fn open(
    redis: RedisStore,
    shutdown: Shutdown,
    user: &str,
    since: Option<prost_types::Timestamp>,
    slot: Slot,
) -> Result<tokio::sync::mpsc::Receiver<Result<Alert, Status>>, ApiError> {
    // Subscribe before reading the inbox, so nothing falls between the two.
    let mut pubsub = redis.pubsub().await?;
    pubsub.subscribe(in_app::channel_key(&redis, user)).await?;
    let mut replay = Vec::new();
    if let Some(since) = since {
        let raw: Vec<Vec<u8>> = redis::cmd("LRANGE")
            .arg(in_app::inbox_key(&redis, user))
            .arg(0)
            .arg(in_app::INBOX_LEN - 1)
            .query_async(&mut redis.conn())
            .await?;
        let since = (since.seconds, since.nanos);
        replay = raw
            .iter()
            .filter_map(|b| Alert::decode(b.as_slice()).ok())
            .filter(|a| a.sent_at.is_some_and(|t| (t.seconds, t.nanos) > since))
            .collect();
        replay.reverse(); // oldest first
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Alert, Status>>(64);
    tokio::spawn(async move {
        let _slot = slot;
        let key = |a: &Alert| (a.story_id.clone(), a.version, a.correction, a.retracted);
        let mut seen: HashSet<(String, u32, bool, bool)> = HashSet::new();
        for alert in replay {
            seen.insert(key(&alert));
            if tx.send(Ok(alert)).await.is_err() {
                return;
            }
        }
        let mut messages = pubsub.into_on_message();
        loop {
            let msg = tokio::select! {
                // A stream never outlives the server: shutdown ends it.
                _ = shutdown.requested() => break,
                _ = tx.closed() => break,
                m = messages.next() => m,
            };
            let Some(msg) = msg else { break };
            let Ok(alert) = Alert::decode(msg.get_payload_bytes()) else {
                continue;
            };
            if seen.remove(&key(&alert)) {
                continue;
            }
            if tx.send(Ok(alert)).await.is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_capped_per_reader_and_per_replica_and_freed_on_close() {
        let slots = StreamSlots::new(2, 3);
        let a1 = slots.take("alice").unwrap();
        let _a2 = slots.take("alice").unwrap();
        let e = slots.take("alice").err().unwrap();
        assert_eq!(e.code(), tonic::Code::ResourceExhausted);
        assert!(e.message().starts_with("user_id"), "{}", e.message());
        let _b1 = slots.take("bob").unwrap();
        let e = slots.take("carol").err().unwrap();
        assert!(
            e.message().contains(NEWSROOM_STREAMS_MAX),
            "{}",
            e.message()
        );
        drop(a1);
        assert!(
            slots.take("carol").is_ok(),
            "a closed stream frees its place"
        );
    }
}
