//! An alert's runs, counts and times in Redis.
//!
//! Each fan-out of a story is a run with a heartbeat (`notif:run:<run>`, a
//! [`RUN_LEASE_MS`](super::RUN_LEASE_MS) lease) in the story's run set
//! (`notif:alert-runs:<story>`); the story is finished when no run of it is alive
//! (`finish_run.lua`, beside this file). The counts and times are the hash
//! `notif:alert:<story>` ([`AlertFields`]); the sends per
//! [`TIMELINE_BUCKET_MS`](super::TIMELINE_BUCKET_MS) are `notif:timeline:<story>`. The ledger
//! script ([`super::ledger`]) keeps both up to date. The devices that reported what they did
//! with the alert (`AcknowledgeAlert`) are `notif:acked:<story>`, counted once each in the
//! hash's `opened` and `dismissed`.

use std::collections::HashMap;
use std::sync::LazyLock;

use newsroom_platform::redis::redis::{self, AsyncCommands as _, Script};

use super::{AlertStore, LEDGER_TTL_SECS, RUN_LEASE_MS, RedisError};

/// Ends a fan-out run; marks the story finished when no other run of it is alive.
static FINISH_RUN: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("finish_run.lua")));

/// The alert's raw counts and times (`HGETALL notif:alert:<story>`).
pub type AlertFields = HashMap<String, i64>;

/// Finished fan-outs whose pace predicts the next one's.
pub const THROUGHPUT_RUNS: usize = 20;

impl AlertStore {
    /// Starts (or joins) an alert: records its start, version and the story's acceptance.
    /// Records the start of fan-out `run` (whose heartbeat must already be set).
    pub async fn begin_alert(
        &self,
        story: &str,
        version: u32,
        run: &str,
        now_ms: i64,
        accepted_ms: Option<i64>,
    ) -> Result<(), RedisError> {
        let key = self.k(format!("alert:{story}"));
        let runs = self.k(format!("alert-runs:{story}"));
        let mut pipe = redis::pipe();
        pipe.hset_nx(&key, "started_ms", now_ms).ignore();
        pipe.hset(&key, "latest_started_ms", now_ms).ignore();
        // A fan-out is running: no longer finished.
        pipe.hdel(&key, "finished_ms").ignore();
        pipe.sadd(&runs, run).ignore();
        pipe.expire(&runs, LEDGER_TTL_SECS as i64).ignore();
        pipe.hset_nx(&key, "version", version).ignore();
        if let Some(a) = accepted_ms {
            pipe.hset_nx(&key, "accepted_ms", a).ignore();
        }
        pipe.expire(&key, LEDGER_TTL_SECS as i64).ignore();
        pipe.query_async::<()>(&mut self.conn()).await
    }

    /// Ends fan-out `run`; the story is finished (`AlertStatus.finished_at`) when no other run
    /// of it is alive (a crashed run's lease lapses, so it does not hold the story open).
    pub async fn finish_alert(
        &self,
        story: &str,
        run: &str,
        now_ms: i64,
    ) -> Result<(), RedisError> {
        let _alive: i64 = FINISH_RUN
            .key(self.k(format!("alert-runs:{story}")))
            .key(self.k(format!("alert:{story}")))
            .arg(run)
            .arg(now_ms)
            .arg(self.k("run:"))
            .invoke_async(&mut self.conn())
            .await?;
        Ok(())
    }

    /// Records a finished fan-out's pace: devices sent and the ms it took to send 90 % of them
    /// (`notif:throughput`, the last [`THROUGHPUT_RUNS`]).
    pub async fn record_throughput(&self, sent: u64, to_90_ms: u64) -> Result<(), RedisError> {
        let key = self.k("throughput");
        redis::pipe()
            .lpush(&key, format!("{sent}|{to_90_ms}"))
            .ignore()
            .ltrim(&key, 0, THROUGHPUT_RUNS as isize - 1)
            .ignore()
            .query_async(&mut self.conn())
            .await
    }

    /// The recent fan-outs' pace: (devices sent, ms to 90 % sent) of each, newest first.
    pub async fn recent_throughput(&self) -> Result<Vec<(u64, u64)>, RedisError> {
        let raw: Vec<String> = self
            .conn()
            .lrange(self.k("throughput"), 0, THROUGHPUT_RUNS as isize - 1)
            .await?;
        Ok(raw
            .iter()
            .filter_map(|r| {
                let (sent, ms) = r.split_once('|')?;
                Some((sent.parse().ok()?, ms.parse().ok()?))
            })
            .collect())
    }

    /// The alert's raw fields; empty when the story never alerted.
    pub async fn alert_fields(&self, story: &str) -> Result<AlertFields, RedisError> {
        self.conn().hgetall(self.k(format!("alert:{story}"))).await
    }

    /// Sends per [`TIMELINE_BUCKET_MS`](super::TIMELINE_BUCKET_MS) since the start: (bucket
    /// start ms, count), sorted.
    pub async fn timeline(&self, story: &str) -> Result<Vec<(i64, i64)>, RedisError> {
        let raw: HashMap<i64, i64> = self
            .conn()
            .hgetall(self.k(format!("timeline:{story}")))
            .await?;
        let mut v: Vec<(i64, i64)> = raw.into_iter().collect();
        v.sort_unstable();
        Ok(v)
    }

    /// Starts or renews the heartbeat of a fan-out run.
    pub async fn heartbeat(&self, run: &str) -> Result<(), RedisError> {
        redis::cmd("SET")
            .arg(self.k(format!("run:{run}")))
            .arg(1)
            .arg("PX")
            .arg(RUN_LEASE_MS)
            .query_async::<()>(&mut self.conn())
            .await
    }

    pub async fn end_run(&self, run: &str) -> Result<(), RedisError> {
        self.conn().del(self.k(format!("run:{run}"))).await
    }

    /// The ledger entry of `device` for `story`, if it has one.
    pub async fn ledger_entry(
        &self,
        story: &str,
        device: &str,
    ) -> Result<Option<super::LedgerEntry>, RedisError> {
        let raw: Option<String> = self
            .conn()
            .hget(self.k(format!("sent:{story}")), device)
            .await?;
        Ok(raw.as_deref().and_then(super::LedgerEntry::parse))
    }

    /// Whether `device` already reported what it did with the alert of `story`.
    pub async fn acknowledged(&self, story: &str, device: &str) -> Result<bool, RedisError> {
        self.conn()
            .sismember(self.k(format!("acked:{story}")), device)
            .await
    }

    /// Records that `device` reported `action` (`opened`, `dismissed`) for the alert of
    /// `story`, counted in the alert's fields once per device; false when it already had.
    pub async fn acknowledge(
        &self,
        story: &str,
        device: &str,
        action: &str,
    ) -> Result<bool, RedisError> {
        let acked = self.k(format!("acked:{story}"));
        let (added,): (i64,) = redis::pipe()
            .sadd(&acked, device)
            .expire(&acked, LEDGER_TTL_SECS as i64)
            .ignore()
            .query_async(&mut self.conn())
            .await?;
        if added == 1 {
            self.conn()
                .hincr::<_, _, _, ()>(self.k(format!("alert:{story}")), action, 1)
                .await?;
        }
        Ok(added == 1)
    }
}
