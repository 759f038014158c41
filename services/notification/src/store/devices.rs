//! Devices in Redis: `notif:device:<id>` (offset-versioned), the device sets, and each
//! device's preference subscriptions (`notif:alert-{topic,entity}:<x>`, undone through
//! `notif:device-subs:<id>`).
//!
//! A device is written and removed by a script (`put_device.lua`, `remove_device.lua`, beside
//! this file) that applies a Kafka record only when no later
//! one was applied: the API and the `devices` consumer both write, in either order.

use std::sync::LazyLock;

use newsroom_platform::redis::redis::{self, AsyncCommands as _, Script};
use newsroom_proto::Message as _;
use newsroom_proto::v1::Device;

use super::{AlertStore, RedisError};

static PUT_DEVICE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("put_device.lua")));

static REMOVE_DEVICE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("remove_device.lua")));

/// A stored device: `<offset>|<user>|<protobuf>`, the protobuf after the second '|'.
fn decode_device(raw: &[u8]) -> Option<Device> {
    let first = raw.iter().position(|b| *b == b'|')?;
    let second = first + 1 + raw[first + 1..].iter().position(|b| *b == b'|')?;
    Device::decode(&raw[second + 1..]).ok()
}

impl AlertStore {
    /// The keys of the preference subscriptions of a device.
    fn subscription_keys(&self, device: &Device) -> Vec<String> {
        let Some(p) = &device.preferences else {
            return Vec::new();
        };
        p.topics
            .iter()
            .map(|t| self.k(format!("alert-topic:{t}")))
            .chain(
                p.entities
                    .iter()
                    .map(|e| self.k(format!("alert-entity:{}", e.to_lowercase()))),
            )
            .collect()
    }

    /// Stores a device as of Kafka `offset`; false when a later record is already applied.
    pub async fn put_device(&self, device: &Device, offset: i64) -> Result<bool, RedisError> {
        let id = &device.device_id;
        let mut inv = PUT_DEVICE.prepare_invoke();
        inv.key(self.k(format!("device:{id}")))
            .key(self.k(format!("device-gone:{id}")))
            .key(self.k("devices"))
            .key(self.k(format!("device-subs:{id}")))
            .arg(offset)
            .arg(id)
            .arg(&device.user_id)
            .arg(device.encode_to_vec())
            .arg(self.k("user-devices:"));
        for s in self.subscription_keys(device) {
            inv.arg(s);
        }
        let applied: i64 = inv.invoke_async(&mut self.conn()).await?;
        if applied == 1 {
            self.schedule_briefing(device, chrono::Utc::now()).await?;
        }
        Ok(applied == 1)
    }

    /// Removes a device as of the tombstone at Kafka `offset`; true when it was there.
    pub async fn remove_device(&self, id: &str, offset: i64) -> Result<bool, RedisError> {
        let removed: i64 = REMOVE_DEVICE
            .key(self.k(format!("device:{id}")))
            .key(self.k(format!("device-gone:{id}")))
            .key(self.k("devices"))
            .key(self.k(format!("device-subs:{id}")))
            .arg(offset)
            .arg(id)
            .arg(self.k("user-devices:"))
            .invoke_async(&mut self.conn())
            .await?;
        if removed == 1 {
            self.unschedule_briefing(id).await?;
        }
        Ok(removed == 1)
    }

    pub async fn device(&self, id: &str) -> Result<Option<Device>, RedisError> {
        let raw: Option<Vec<u8>> = self.conn().get(self.k(format!("device:{id}"))).await?;
        Ok(raw.as_deref().and_then(decode_device))
    }

    /// Several devices in one round trip, in order (`None` for those not registered).
    pub async fn devices(&self, ids: &[String]) -> Result<Vec<Option<Device>>, RedisError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids
            .iter()
            .map(|id| self.k(format!("device:{id}")))
            .collect();
        let raw: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
            .arg(keys)
            .query_async(&mut self.conn())
            .await?;
        Ok(raw
            .into_iter()
            .map(|r| r.as_deref().and_then(decode_device))
            .collect())
    }

    pub async fn user_devices(&self, user: &str) -> Result<Vec<String>, RedisError> {
        self.conn()
            .smembers(self.k(format!("user-devices:{user}")))
            .await
    }

    /// Device ids of several users, in one round trip.
    pub async fn devices_of_users(&self, users: &[String]) -> Result<Vec<String>, RedisError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for u in users {
            pipe.smembers(self.k(format!("user-devices:{u}")));
        }
        let sets: Vec<Vec<String>> = pipe.query_async(&mut self.conn()).await?;
        Ok(sets.into_iter().flatten().collect())
    }
}
