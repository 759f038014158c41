//! Notification's Redis state: devices, audiences, the sent ledger, budgets and alert counts.
//!
//! Redis is a cache of what Kafka holds (devices from the compacted `devices` topic, follows
//! from `profiles`), plus the ledger that makes alerts at-most-once. Keys (after the prefix):
//!
//! - `notif:device:<id>` — `<kafka offset>|<user id>|<Device protobuf>`. Writes are conditional
//!   on the offset, so the API (which writes right after Kafka acknowledged) and the `devices`
//!   consumer (which replays the topic) can both write without an older record ever winning;
//!   `notif:device-gone:<id>` remembers a tombstone's offset for a day for the same reason;
//! - `notif:devices` — every device id; `notif:user-devices:<user>` — a user's device ids;
//! - `notif:audience:{topic,entity}:<x>` — users who follow a topic or entity (from `profiles`);
//!   `notif:user-follows:<user>` — what the user follows, to undo it;
//! - `notif:alert-{topic,entity}:<x>` — devices whose preferences choose that topic or entity;
//!   `notif:device-subs:<id>` — those keys, to undo them;
//! - `notif:story:<id>` — the story as an alert needs it (an `EnrichedStory` without body);
//! - `notif:sent:<story>` — the ledger, a hash device → state: `p|<run>|<version>` while a send
//!   is in flight, `d|<version>|<D,F,G>|<ms>` once answered, `s|<reason>` when suppressed.
//!   Claimed *before* the send (see `fanout` for what a crash in between means);
//! - `notif:run:<run>` — the heartbeat of a running fan-out (15 s lease);
//! - `notif:alert:<story>` — counts (`targeted`, `sent`, `delivered`, `failed`, `gone`,
//!   `resent`, `corrected`, `suppressed:<reason>`) and times (`started_ms`, `first_sent_ms`,
//!   `accepted_ms`); `notif:timeline:<story>` — sends per 10 ms since the start;
//! - `notif:corrected:<story>` — the last version sent as a correction, per device;
//! - `notif:budget:<local day>` — alerts per device that day.
//!
//! Everything about an alert expires after [`LEDGER_TTL_SECS`]. The scripts assume one Redis
//! (not Redis Cluster: their keys are not hash-tagged).

use std::collections::{BTreeSet, HashMap};
use std::sync::LazyLock;

use newsroom_platform::redis::RedisStore;
use newsroom_platform::redis::redis::{self, AsyncCommands as _, Script};
use newsroom_proto::Message as _;
use newsroom_proto::v1::{Device, EnrichedStory};

/// How long the ledger, the counts and the story are kept: 7 days.
pub const LEDGER_TTL_SECS: u64 = 7 * 24 * 3600;
/// The lease of a fan-out's heartbeat.
pub const RUN_LEASE_MS: u64 = 15_000;
/// Timeline resolution.
pub const TIMELINE_BUCKET_MS: i64 = 10;

pub type RedisError = redis::RedisError;

/// What the claim of one device came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Already handled (sent, suppressed, or claimed by this same run through another topic).
    Skip,
    /// Ours to send, for the first time.
    Send,
    /// Ours to send again: its first send was in flight when its sender died.
    Resend,
    /// Another live fan-out is sending it right now.
    Busy,
    /// Suppressed now (counted).
    Suppressed,
}

/// A device's answer, for the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Delivered,
    Failed,
    Gone,
}

impl Answer {
    fn code(self) -> &'static str {
        match self {
            Answer::Delivered => "D",
            Answer::Failed => "F",
            Answer::Gone => "G",
        }
    }
}

/// One device to claim.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub device_id: String,
    /// Empty = send; else the suppression reason.
    pub reason: &'static str,
    /// Alerts per day allowed (0 = no limit).
    pub budget: u32,
    /// The device's local day (`YYYY-MM-DD`).
    pub day: String,
}

/// Ends a fan-out run; marks the story finished when no other run of it is alive.
static FINISH_RUN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
-- KEYS: runs of the story, alert hash. ARGV: run, now ms, run key prefix.
redis.call('SREM', KEYS[1], ARGV[1])
local alive = 0
for _, r in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[3] .. r) == 1 then
    alive = alive + 1
  else
    redis.call('SREM', KEYS[1], r)
  end
end
if alive == 0 then
  redis.call('HSET', KEYS[2], 'finished_ms', ARGV[2])
end
return alive
",
    )
});

static PUT_DEVICE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
-- KEYS: device, gone, devices, subs. ARGV: offset, id, user, value, user-devices prefix, new subs...
local off = tonumber(ARGV[1])
local cur = redis.call('GET', KEYS[1])
if cur then
  local o, u = string.match(cur, '^(%-?%d+)|([^|]*)|')
  if tonumber(o) > off then return 0 end
  if u ~= ARGV[3] then redis.call('SREM', ARGV[5] .. u, ARGV[2]) end
else
  local g = redis.call('GET', KEYS[2])
  if g and tonumber(g) > off then return 0 end
end
for _, s in ipairs(redis.call('SMEMBERS', KEYS[4])) do redis.call('SREM', s, ARGV[2]) end
redis.call('DEL', KEYS[4])
for i = 6, #ARGV do
  redis.call('SADD', ARGV[i], ARGV[2])
  redis.call('SADD', KEYS[4], ARGV[i])
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[3] .. '|' .. ARGV[4])
redis.call('SADD', KEYS[3], ARGV[2])
redis.call('SADD', ARGV[5] .. ARGV[3], ARGV[2])
redis.call('DEL', KEYS[2])
return 1
",
    )
});

static REMOVE_DEVICE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
-- KEYS: device, gone, devices, subs. ARGV: offset, id, user-devices prefix
local off = tonumber(ARGV[1])
local cur = redis.call('GET', KEYS[1])
local removed = 0
if cur then
  local o, u = string.match(cur, '^(%-?%d+)|([^|]*)|')
  if tonumber(o) > off then return 0 end
  redis.call('SREM', ARGV[3] .. u, ARGV[2])
  redis.call('DEL', KEYS[1])
  removed = 1
end
for _, s in ipairs(redis.call('SMEMBERS', KEYS[4])) do redis.call('SREM', s, ARGV[2]) end
redis.call('DEL', KEYS[4])
redis.call('SREM', KEYS[3], ARGV[2])
local g = redis.call('GET', KEYS[2])
if (not g) or tonumber(g) < off then redis.call('SET', KEYS[2], ARGV[1], 'EX', 86400) end
return removed
",
    )
});

static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
-- KEYS: ledger, alert. ARGV: run, run-key prefix, critical, version, budget prefix, ttl,
-- then per device: id, reason ('' = send), budget limit, local day.
local run, critical = ARGV[1], ARGV[3] == '1'
local mine = 'p|' .. run .. '|' .. ARGV[4]
local out = {}
for i = 7, #ARGV, 4 do
  local dev, reason, limit, day = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
  local cur = redis.call('HGET', KEYS[1], dev)
  local code = 0
  if not cur then
    redis.call('HINCRBY', KEYS[2], 'targeted', 1)
    if reason == '' and limit > 0 then
      local used = tonumber(redis.call('HGET', ARGV[5] .. day, dev) or '0')
      if used >= limit then reason = 'budget' end
    end
    if reason ~= '' then
      redis.call('HSET', KEYS[1], dev, 's|' .. reason)
      redis.call('HINCRBY', KEYS[2], 'suppressed:' .. reason, 1)
      code = 4
    else
      redis.call('HSET', KEYS[1], dev, mine)
      code = 1
    end
  elseif string.sub(cur, 1, 2) == 'p|' then
    local owner = string.match(cur, '^p|([^|]*)|')
    if owner ~= run then
      if redis.call('EXISTS', ARGV[2] .. owner) == 1 then
        code = 3
      else
        redis.call('HSET', KEYS[1], dev, mine)
        redis.call('HINCRBY', KEYS[2], 'resent', 1)
        code = 2
      end
    end
  elseif critical and reason == '' and (cur == 's|quiet_hours' or cur == 's|budget') then
    -- A critical alert reaches the devices an earlier alert of this story held back.
    redis.call('HINCRBY', KEYS[2], 'suppressed:' .. string.sub(cur, 3), -1)
    redis.call('HSET', KEYS[1], dev, mine)
    code = 1
  end
  if code == 1 and limit > 0 then
    redis.call('HINCRBY', ARGV[5] .. day, dev, 1)
    redis.call('EXPIRE', ARGV[5] .. day, 259200)
  end
  out[#out + 1] = code
end
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('EXPIRE', KEYS[2], ARGV[6])
return out
",
    )
});

static COMPLETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
-- KEYS: ledger, alert, timeline. ARGV: run, version, bucket ms, ttl, then per device: id, D/F/G, ms.
local prefix = 'p|' .. ARGV[1] .. '|'
local started = tonumber(redis.call('HGET', KEYS[2], 'started_ms') or '0')
local first = tonumber(redis.call('HGET', KEYS[2], 'first_sent_ms') or '0')
local bucket = tonumber(ARGV[3])
local n = {D = 0, F = 0, G = 0}
local sent = 0
for i = 5, #ARGV, 3 do
  local dev, o, ms = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local cur = redis.call('HGET', KEYS[1], dev)
  if cur and string.sub(cur, 1, #prefix) == prefix then
    redis.call('HSET', KEYS[1], dev, 'd|' .. ARGV[2] .. '|' .. o .. '|' .. ms)
    n[o] = n[o] + 1
    sent = sent + 1
    if first == 0 or ms < first then first = ms end
    local b = math.max(0, math.floor((ms - started) / bucket) * bucket)
    redis.call('HINCRBY', KEYS[3], b, 1)
  end
end
if sent > 0 then
  redis.call('HINCRBY', KEYS[2], 'sent', sent)
  redis.call('HINCRBY', KEYS[2], 'delivered', n.D)
  redis.call('HINCRBY', KEYS[2], 'failed', n.F + n.G)
  redis.call('HINCRBY', KEYS[2], 'gone', n.G)
  redis.call('HSET', KEYS[2], 'first_sent_ms', first)
  redis.call('EXPIRE', KEYS[3], ARGV[4])
end
return sent
",
    )
});

static CLAIM_CORRECTIONS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
-- KEYS: corrected, alert. ARGV: version, ttl, devices...
local v = tonumber(ARGV[1])
local out = {}
for i = 3, #ARGV do
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if cur < v then
    redis.call('HSET', KEYS[1], ARGV[i], v)
    redis.call('HINCRBY', KEYS[2], 'corrected', 1)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return out
",
    )
});

/// The alert's raw counts and times (`HGETALL notif:alert:<story>`).
pub type AlertFields = HashMap<String, i64>;

#[derive(Clone)]
pub struct AlertStore {
    redis: RedisStore,
}

impl AlertStore {
    pub fn new(redis: RedisStore) -> Self {
        AlertStore { redis }
    }

    pub fn redis(&self) -> &RedisStore {
        &self.redis
    }

    /// The full key of `notif:<key>`.
    pub fn k(&self, key: impl std::fmt::Display) -> String {
        self.redis.key(format!("notif:{key}"))
    }

    fn conn(&self) -> redis::aio::ConnectionManager {
        self.redis.conn()
    }

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
        Ok(removed == 1)
    }

    fn decode_device(raw: &[u8]) -> Option<Device> {
        // `<offset>|<user>|<protobuf>`: the protobuf starts after the second '|'.
        let first = raw.iter().position(|b| *b == b'|')?;
        let second = first + 1 + raw[first + 1..].iter().position(|b| *b == b'|')?;
        Device::decode(&raw[second + 1..]).ok()
    }

    pub async fn device(&self, id: &str) -> Result<Option<Device>, RedisError> {
        let raw: Option<Vec<u8>> = self.conn().get(self.k(format!("device:{id}"))).await?;
        Ok(raw.as_deref().and_then(Self::decode_device))
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
            .map(|r| r.as_deref().and_then(Self::decode_device))
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

    /// One page of a set: the next cursor (0 = done) and members.
    pub async fn scan_set(
        &self,
        full_key: &str,
        cursor: u64,
        count: usize,
    ) -> Result<(u64, Vec<String>), RedisError> {
        redis::cmd("SSCAN")
            .arg(full_key)
            .arg(cursor)
            .arg("COUNT")
            .arg(count)
            .query_async(&mut self.conn())
            .await
    }

    /// Replaces what a user follows (topics, and entities lower-cased) in the audience index.
    pub async fn set_follows(
        &self,
        user: &str,
        topics: &BTreeSet<String>,
        entities: &BTreeSet<String>,
    ) -> Result<(), RedisError> {
        let key = self.k(format!("user-follows:{user}"));
        let want: BTreeSet<String> = topics
            .iter()
            .map(|t| self.k(format!("audience:topic:{t}")))
            .chain(
                entities
                    .iter()
                    .map(|e| self.k(format!("audience:entity:{}", e.to_lowercase()))),
            )
            .collect();
        let old: BTreeSet<String> = self.conn().smembers(&key).await?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        for gone in old.difference(&want) {
            pipe.srem(gone, user).ignore();
        }
        for added in want.difference(&old) {
            pipe.sadd(added, user).ignore();
        }
        pipe.del(&key).ignore();
        if !want.is_empty() {
            pipe.sadd(&key, want.iter().collect::<Vec<_>>()).ignore();
        }
        pipe.query_async::<()>(&mut self.conn()).await
    }

    /// Keeps what an alert needs of a story (body and embedding dropped), and the
    /// `traceparent` of the record it came in, so that an editor's alert about it later links
    /// its fan-out to the story version's trace. The caller keeps versions from going back
    /// (see `AlertHandler::story`).
    pub async fn put_story(
        &self,
        story: &EnrichedStory,
        traceparent: Option<&str>,
    ) -> Result<(), RedisError> {
        let mut s = story.clone();
        if let Some(st) = s.story.as_mut() {
            st.body_html.clear();
        }
        if let Some(e) = s.enrichment.as_mut() {
            e.embedding.clear();
        }
        let id = s.story.as_ref().map(|s| s.id.clone()).unwrap_or_default();
        let mut pipe = redis::pipe();
        pipe.set_ex(
            self.k(format!("story:{id}")),
            s.encode_to_vec(),
            LEDGER_TTL_SECS,
        )
        .ignore();
        let trace = self.k(format!("story-trace:{id}"));
        match traceparent {
            Some(tp) => pipe.set_ex(trace, tp, LEDGER_TTL_SECS).ignore(),
            None => pipe.del(trace).ignore(),
        };
        pipe.query_async::<()>(&mut self.conn()).await
    }

    /// The `traceparent` of the record that brought the story's latest version.
    pub async fn story_trace(&self, id: &str) -> Result<Option<String>, RedisError> {
        self.conn().get(self.k(format!("story-trace:{id}"))).await
    }

    pub async fn story(&self, id: &str) -> Result<Option<EnrichedStory>, RedisError> {
        let raw: Option<Vec<u8>> = self.conn().get(self.k(format!("story:{id}"))).await?;
        Ok(raw.and_then(|b| EnrichedStory::decode(b.as_slice()).ok()))
    }

    /// A killed story: forgotten, and never alerted again.
    pub async fn kill_story(&self, id: &str) -> Result<(), RedisError> {
        let mut pipe = redis::pipe();
        pipe.del(self.k(format!("story:{id}")))
            .ignore()
            .set_ex(self.k(format!("killed:{id}")), 1, LEDGER_TTL_SECS)
            .ignore();
        pipe.query_async::<()>(&mut self.conn()).await
    }

    pub async fn is_killed(&self, id: &str) -> Result<bool, RedisError> {
        self.conn().exists(self.k(format!("killed:{id}"))).await
    }

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

    /// The alert's raw fields; empty when the story never alerted.
    pub async fn alert_fields(&self, story: &str) -> Result<AlertFields, RedisError> {
        self.conn().hgetall(self.k(format!("alert:{story}"))).await
    }

    /// Sends per [`TIMELINE_BUCKET_MS`] since the start: (bucket start ms, count), sorted.
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

    /// Claims devices for one alert, in one atomic step (see the module doc for the ledger).
    pub async fn claim(
        &self,
        story: &str,
        version: u32,
        run: &str,
        critical: bool,
        requests: &[ClaimRequest],
    ) -> Result<Vec<Claim>, RedisError> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = CLAIM.prepare_invoke();
        inv.key(self.k(format!("sent:{story}")))
            .key(self.k(format!("alert:{story}")))
            .arg(run)
            .arg(self.k("run:"))
            .arg(if critical { "1" } else { "0" })
            .arg(version)
            .arg(self.k("budget:"))
            .arg(LEDGER_TTL_SECS);
        for r in requests {
            inv.arg(&r.device_id)
                .arg(r.reason)
                .arg(r.budget)
                .arg(&r.day);
        }
        let codes: Vec<i64> = inv.invoke_async(&mut self.conn()).await?;
        Ok(codes
            .into_iter()
            .map(|c| match c {
                1 => Claim::Send,
                2 => Claim::Resend,
                3 => Claim::Busy,
                4 => Claim::Suppressed,
                _ => Claim::Skip,
            })
            .collect())
    }

    /// Records the answers of sends claimed by `run`; returns how many were recorded.
    pub async fn complete(
        &self,
        story: &str,
        version: u32,
        run: &str,
        answers: &[(String, Answer, i64)],
    ) -> Result<i64, RedisError> {
        if answers.is_empty() {
            return Ok(0);
        }
        let mut inv = COMPLETE.prepare_invoke();
        inv.key(self.k(format!("sent:{story}")))
            .key(self.k(format!("alert:{story}")))
            .key(self.k(format!("timeline:{story}")))
            .arg(run)
            .arg(version)
            .arg(TIMELINE_BUCKET_MS)
            .arg(LEDGER_TTL_SECS);
        for (id, answer, ms) in answers {
            inv.arg(id).arg(answer.code()).arg(ms);
        }
        inv.invoke_async(&mut self.conn()).await
    }

    /// Ledger entries of an alert, page by page (for corrections and recovery).
    pub async fn scan_ledger(
        &self,
        story: &str,
        cursor: u64,
        count: usize,
    ) -> Result<(u64, Vec<(String, String)>), RedisError> {
        redis::cmd("HSCAN")
            .arg(self.k(format!("sent:{story}")))
            .arg(cursor)
            .arg("COUNT")
            .arg(count)
            .query_async(&mut self.conn())
            .await
    }

    /// Claims devices for a correction to `version`: true for those not yet sent it.
    pub async fn claim_corrections(
        &self,
        story: &str,
        version: u32,
        devices: &[String],
    ) -> Result<Vec<bool>, RedisError> {
        if devices.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = CLAIM_CORRECTIONS.prepare_invoke();
        inv.key(self.k(format!("corrected:{story}")))
            .key(self.k(format!("alert:{story}")))
            .arg(version)
            .arg(LEDGER_TTL_SECS);
        for d in devices {
            inv.arg(d);
        }
        let codes: Vec<i64> = inv.invoke_async(&mut self.conn()).await?;
        Ok(codes.into_iter().map(|c| c == 1).collect())
    }

    /// The epoch of the Redis index: set once when Redis has none (new, or lost). The
    /// `devices` and `profiles` consumers use it in their group ids, so a lost Redis makes
    /// them replay their compacted topics from the start.
    pub async fn index_epoch(&self, candidate: &str) -> Result<String, RedisError> {
        let key = self.k("index-epoch");
        let _: bool = self.conn().set_nx(&key, candidate).await?;
        self.conn().get(&key).await
    }
}
