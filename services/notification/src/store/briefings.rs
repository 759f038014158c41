//! Daily briefings in Redis (see [`crate::briefing`]): when each device's next briefing is due
//! (`notif:briefings`, a sorted set device → ms, kept by `put_device` / `remove_device`), who
//! is sending one (`notif:briefing-lease:<device>:<due ms>`), when a device was last briefed
//! (`notif:briefed:<device>`), and the recent stories of each followable index
//! (`notif:recent:{topic,entity,cluster}:<x>`, story id → accepted ms, two days).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use newsroom_platform::redis::redis::{self, AsyncCommands as _};
use newsroom_proto::v1::Device;

use super::{AlertStore, LEDGER_TTL_SECS, RedisError};
use crate::preferences::StoryFacts;

/// How long a story stays a briefing candidate.
pub const RECENT_MS: i64 = 2 * 24 * 3600 * 1000;
/// How long a due briefing is one replica's to send.
const LEASE_MS: u64 = 120_000;

impl AlertStore {
    /// Keeps `device`'s next briefing in the schedule (or takes it out when it has none).
    pub(crate) async fn schedule_briefing(
        &self,
        device: &Device,
        after: DateTime<Utc>,
    ) -> Result<(), RedisError> {
        let next = device
            .preferences
            .as_ref()
            .and_then(|p| crate::preferences::next_briefing(device, p, after));
        match next {
            Some(at) => {
                self.conn()
                    .zadd(
                        self.k("briefings"),
                        &device.device_id,
                        at.timestamp_millis(),
                    )
                    .await
            }
            None => self.unschedule_briefing(&device.device_id).await,
        }
    }

    /// Looks at `device`'s briefing again at `at_ms` (it was due in quiet hours).
    pub(crate) async fn postpone_briefing(
        &self,
        device: &str,
        at_ms: i64,
    ) -> Result<(), RedisError> {
        self.conn().zadd(self.k("briefings"), device, at_ms).await
    }

    pub(crate) async fn unschedule_briefing(&self, device: &str) -> Result<(), RedisError> {
        self.conn().zrem(self.k("briefings"), device).await
    }

    /// Briefings due at `now_ms`: (device, due ms), earliest first, at most `limit`.
    pub async fn due_briefings(
        &self,
        now_ms: i64,
        limit: isize,
    ) -> Result<Vec<(String, i64)>, RedisError> {
        self.conn()
            .zrangebyscore_limit_withscores(self.k("briefings"), "-inf", now_ms, 0, limit)
            .await
    }

    /// Takes the briefing of `device` due at `due_ms` for this replica; false when another
    /// replica has it.
    pub async fn lease_briefing(&self, device: &str, due_ms: i64) -> Result<bool, RedisError> {
        let taken: Option<String> = redis::cmd("SET")
            .arg(self.k(format!("briefing-lease:{device}:{due_ms}")))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(LEASE_MS)
            .query_async(&mut self.conn())
            .await?;
        Ok(taken.is_some())
    }

    /// When `device` was last briefed (ms), if in the last week.
    pub async fn last_briefed(&self, device: &str) -> Result<Option<i64>, RedisError> {
        self.conn().get(self.k(format!("briefed:{device}"))).await
    }

    pub async fn set_briefed(&self, device: &str, at_ms: i64) -> Result<(), RedisError> {
        self.conn()
            .set_ex(self.k(format!("briefed:{device}")), at_ms, LEDGER_TTL_SECS)
            .await
    }

    /// Remembers story `id` (accepted at `at_ms`) as recent in every index a reader can follow
    /// it by: its topics, entities and developing story.
    pub async fn remember_recent(
        &self,
        id: &str,
        facts: &StoryFacts,
        at_ms: i64,
    ) -> Result<(), RedisError> {
        let mut pipe = redis::pipe();
        let keys = facts
            .topics
            .iter()
            .map(|t| format!("topic:{t}"))
            .chain(facts.entities.iter().map(|e| format!("entity:{e}")))
            .chain(facts.cluster.iter().map(|c| format!("cluster:{c}")));
        for key in keys {
            let key = self.k(format!("recent:{key}"));
            pipe.zadd(&key, id, at_ms)
                .ignore()
                .zrembyscore(&key, "-inf", at_ms - RECENT_MS)
                .ignore()
                .pexpire(&key, RECENT_MS)
                .ignore();
        }
        pipe.query_async::<()>(&mut self.conn()).await
    }

    /// The recent stories of what `user` follows, accepted after `since_ms`: story id → (how
    /// many of the user's follows it matches, accepted ms). At most `per_follow` per follow.
    pub async fn recent_for_user(
        &self,
        user: &str,
        since_ms: i64,
        per_follow: isize,
    ) -> Result<HashMap<String, (usize, i64)>, RedisError> {
        let follows: Vec<String> = self
            .conn()
            .smembers(self.k(format!("user-follows:{user}")))
            .await?;
        let audience = self.k("audience:");
        let recent: Vec<String> = follows
            .iter()
            .filter_map(|f| f.strip_prefix(audience.as_str()))
            .map(|rest| self.k(format!("recent:{rest}")))
            .collect();
        if recent.is_empty() {
            return Ok(HashMap::new());
        }
        let mut pipe = redis::pipe();
        for key in &recent {
            pipe.zrevrangebyscore_limit_withscores(
                key,
                "+inf",
                format!("({since_ms}"),
                0,
                per_follow,
            );
        }
        let lists: Vec<Vec<(String, i64)>> = pipe.query_async(&mut self.conn()).await?;
        let mut out: HashMap<String, (usize, i64)> = HashMap::new();
        for (id, at) in lists.into_iter().flatten() {
            let entry = out.entry(id).or_insert((0, at));
            entry.0 += 1;
        }
        Ok(out)
    }

    /// Whether `device` was alerted about story `id`, or about its news event `cluster`.
    pub async fn was_alerted(
        &self,
        device: &str,
        id: &str,
        cluster: Option<&str>,
    ) -> Result<bool, RedisError> {
        let mut pipe = redis::pipe();
        pipe.hexists(self.k(format!("sent:{id}")), device);
        if let Some(c) = cluster {
            pipe.hexists(self.k(format!("event:{c}")), device);
        }
        let found: Vec<bool> = pipe.query_async(&mut self.conn()).await?;
        Ok(found.into_iter().any(|f| f))
    }
}
