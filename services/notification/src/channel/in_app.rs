//! The in-app channel: alerts for apps that are open, through `StreamAlerts`.
//!
//! A send publishes the `Alert` on the Redis channel of the device's user and keeps it in the
//! user's inbox (the last [`INBOX_LEN`] alerts, for a day), so an app that connects a moment
//! later can ask for what it missed (`StreamAlertsRequest.since`). Redis pub/sub reaches the
//! replica that holds the user's stream, whichever replica fans out.

use futures::FutureExt as _;
use futures::future::BoxFuture;
use newsroom_platform::redis::RedisStore;
use newsroom_platform::redis::redis;
use newsroom_proto::Message as _;
use newsroom_proto::v1::{Channel as ChannelKind, Device};
use serde::Deserialize;

use super::{Channel, Delivery, Limits, SendOutcome};

/// Alerts kept per user for apps that connect late.
pub const INBOX_LEN: isize = 50;
/// How long the inbox is kept.
pub const INBOX_TTL_SECS: i64 = 24 * 3600;

/// `{"type": "in_app"}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InAppConfig {
    #[serde(default)]
    pub limits: Limits,
}

/// The Redis pub/sub channel of a user's in-app alerts (full key, with the prefix).
pub fn channel_key(redis: &RedisStore, user: &str) -> String {
    redis.key(format!("notif:in-app:{user}"))
}

/// The list of a user's recent in-app alerts (full key).
pub fn inbox_key(redis: &RedisStore, user: &str) -> String {
    redis.key(format!("notif:inbox:{user}"))
}

pub struct InApp {
    redis: RedisStore,
}

impl InApp {
    pub fn new(redis: RedisStore) -> Self {
        InApp { redis }
    }

    async fn deliver(&self, d: Delivery<'_>) -> SendOutcome {
        let bytes = d.alert.encode_to_vec();
        let user = &d.device.user_id;
        let inbox = inbox_key(&self.redis, user);
        let mut pipe = redis::pipe();
        pipe.cmd("PUBLISH")
            .arg(channel_key(&self.redis, user))
            .arg(&bytes)
            .ignore()
            .lpush(&inbox, &bytes)
            .ignore()
            .ltrim(&inbox, 0, INBOX_LEN - 1)
            .ignore()
            .expire(&inbox, INBOX_TTL_SECS)
            .ignore();
        match pipe.query_async::<()>(&mut self.redis.conn()).await {
            Ok(()) => SendOutcome::Delivered,
            Err(e) => SendOutcome::Failed(format!("redis: {e}")),
        }
    }
}

impl Channel for InApp {
    fn kind(&self) -> ChannelKind {
        ChannelKind::InApp
    }

    fn check_device(&self, _device: &Device) -> Result<(), String> {
        // An in-app device is reached through its user's stream; it has no address.
        Ok(())
    }

    fn send<'a>(&'a self, delivery: Delivery<'a>) -> BoxFuture<'a, SendOutcome> {
        self.deliver(delivery).boxed()
    }
}
