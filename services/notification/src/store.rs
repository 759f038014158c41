//! Notification's Redis state: devices, audiences, the sent ledger and alert counts.
//!
//! - `notif:device:<id>` — the `Device` (protobuf); `notif:devices` — every device id;
//! - `notif:user-devices:<user>` — a user's device ids;
//! - `notif:user-topics:<user>` and `notif:audience:topic:<code>` — who follows which topic,
//!   materialised from the `profiles` topic;
//! - `notif:story:<id>` — what an alert needs of a story (the `Alert`), for editor alerts;
//! - `notif:sent:<story>:<device>` — set (NX) *before* a send: the guarantee that a device gets
//!   at most one alert per story, across redeliveries, restarts and replicas;
//! - `notif:alert:<story>` — the alert's counts (targeted, sent, delivered, failed,
//!   suppressed:<reason>).

use std::collections::{BTreeSet, HashMap};

use newsroom_platform::redis::RedisStore;
use newsroom_platform::redis::redis::{self, AsyncCommands as _};
use newsroom_proto::Message as _;
use newsroom_proto::v1::{Alert, AlertStatus, Device};

/// How long the sent ledger and alert counts are kept: 7 days.
const LEDGER_TTL_SECS: u64 = 7 * 24 * 3600;

#[derive(Clone)]
pub struct AlertStore {
    redis: RedisStore,
}

impl AlertStore {
    pub fn new(redis: RedisStore) -> Self {
        AlertStore { redis }
    }

    fn k(&self, key: impl std::fmt::Display) -> String {
        self.redis.key(format!("notif:{key}"))
    }

    pub async fn put_device(&self, device: &Device) -> Result<(), redis::RedisError> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .set(
                self.k(format!("device:{}", device.device_id)),
                device.encode_to_vec(),
            )
            .sadd(self.k("devices"), &device.device_id)
            .sadd(
                self.k(format!("user-devices:{}", device.user_id)),
                &device.device_id,
            );
        pipe.query_async::<()>(&mut self.redis.conn()).await
    }

    pub async fn device(&self, id: &str) -> Result<Option<Device>, redis::RedisError> {
        let bytes: Option<Vec<u8>> = self
            .redis
            .conn()
            .get(self.k(format!("device:{id}")))
            .await?;
        Ok(bytes.and_then(|b| Device::decode(b.as_slice()).ok()))
    }

    pub async fn remove_device(&self, id: &str) -> Result<Option<Device>, redis::RedisError> {
        let Some(device) = self.device(id).await? else {
            return Ok(None);
        };
        let mut pipe = redis::pipe();
        pipe.atomic()
            .del(self.k(format!("device:{id}")))
            .srem(self.k("devices"), id)
            .srem(self.k(format!("user-devices:{}", device.user_id)), id);
        pipe.query_async::<()>(&mut self.redis.conn()).await?;
        Ok(Some(device))
    }

    /// Replaces the topics a user follows in the audience index.
    pub async fn set_user_topics(
        &self,
        user: &str,
        topics: &BTreeSet<String>,
    ) -> Result<(), redis::RedisError> {
        let key = self.k(format!("user-topics:{user}"));
        let old: BTreeSet<String> = self.redis.conn().smembers(&key).await?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        for gone in old.difference(topics) {
            pipe.srem(self.k(format!("audience:topic:{gone}")), user);
        }
        for added in topics.difference(&old) {
            pipe.sadd(self.k(format!("audience:topic:{added}")), user);
        }
        pipe.del(&key);
        if !topics.is_empty() {
            pipe.sadd(&key, topics.iter().collect::<Vec<_>>());
        }
        pipe.query_async::<()>(&mut self.redis.conn()).await
    }

    /// Users following any of `topics`, de-duplicated.
    pub async fn followers(&self, topics: &[String]) -> Result<Vec<String>, redis::RedisError> {
        if topics.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = topics
            .iter()
            .map(|t| self.k(format!("audience:topic:{t}")))
            .collect();
        self.redis.conn().sunion(keys).await
    }

    /// Device ids of the given users, de-duplicated.
    pub async fn devices_of(&self, users: &[String]) -> Result<Vec<String>, redis::RedisError> {
        let mut ids = BTreeSet::new();
        // In chunks, so an audience of millions is never one giant command.
        for chunk in users.chunks(500) {
            let keys: Vec<String> = chunk
                .iter()
                .map(|u| self.k(format!("user-devices:{u}")))
                .collect();
            let part: Vec<String> = self.redis.conn().sunion(keys).await?;
            ids.extend(part);
        }
        Ok(ids.into_iter().collect())
    }

    pub async fn all_devices(&self) -> Result<Vec<String>, redis::RedisError> {
        self.redis.conn().smembers(self.k("devices")).await
    }

    pub async fn put_story(&self, alert: &Alert) -> Result<(), redis::RedisError> {
        self.redis
            .conn()
            .set_ex(
                self.k(format!("story:{}", alert.story_id)),
                alert.encode_to_vec(),
                LEDGER_TTL_SECS,
            )
            .await
    }

    pub async fn story(&self, id: &str) -> Result<Option<Alert>, redis::RedisError> {
        let bytes: Option<Vec<u8>> = self.redis.conn().get(self.k(format!("story:{id}"))).await?;
        Ok(bytes.and_then(|b| Alert::decode(b.as_slice()).ok()))
    }

    pub async fn forget_story(&self, id: &str) -> Result<(), redis::RedisError> {
        let mut pipe = redis::pipe();
        pipe.del(self.k(format!("story:{id}"))).set_ex(
            self.k(format!("killed:{id}")),
            1,
            LEDGER_TTL_SECS,
        );
        pipe.query_async::<()>(&mut self.redis.conn()).await
    }

    pub async fn is_killed(&self, id: &str) -> Result<bool, redis::RedisError> {
        self.redis
            .conn()
            .exists(self.k(format!("killed:{id}")))
            .await
    }

    /// Marks (story, device) as sent; true only for the first caller, ever.
    pub async fn claim(&self, story: &str, device: &str) -> Result<bool, redis::RedisError> {
        let set: Option<String> = redis::cmd("SET")
            .arg(self.k(format!("sent:{story}:{device}")))
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(LEDGER_TTL_SECS)
            .query_async(&mut self.redis.conn())
            .await?;
        Ok(set.is_some())
    }

    /// Adds to one of an alert's counters.
    pub async fn count(&self, story: &str, field: &str, n: u64) -> Result<(), redis::RedisError> {
        let key = self.k(format!("alert:{story}"));
        let mut pipe = redis::pipe();
        pipe.hincr(&key, field, n)
            .expire(&key, LEDGER_TTL_SECS as i64);
        pipe.query_async::<()>(&mut self.redis.conn()).await
    }

    /// The alert's counts, `None` when the story never alerted.
    pub async fn status(&self, story: &str) -> Result<Option<AlertStatus>, redis::RedisError> {
        let fields: HashMap<String, u64> = self
            .redis
            .conn()
            .hgetall(self.k(format!("alert:{story}")))
            .await?;
        if fields.is_empty() {
            return Ok(None);
        }
        let get = |f: &str| fields.get(f).copied().unwrap_or(0);
        Ok(Some(AlertStatus {
            story_id: story.to_owned(),
            targeted: get("targeted"),
            sent: get("sent"),
            delivered: get("delivered"),
            failed: get("failed"),
            suppressed: fields
                .iter()
                .filter_map(|(k, v)| Some((k.strip_prefix("suppressed:")?.to_owned(), *v)))
                .collect(),
        }))
    }
}
