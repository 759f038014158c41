//! Notification's Redis state: [`AlertStore`], the key layout, and the state marker.
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
//!   `notif:story-trace:<id>` — the `traceparent` it came with; `notif:killed:<id>`;
//! - `notif:version:<id>` — the highest version of the story handled, a kill included: the
//!   version guard, which a kill does not delete (the platform's `VersionGuard`);
//! - `notif:sent:<story>` — the ledger, a hash device → [`LedgerEntry`]: `p|<run>|<version>`
//!   while a send is in flight, `d|<version>|<D,F,G>|<ms>` once answered, `s|<reason>` when
//!   suppressed. Claimed *before* the send (see `fanout` for what a crash in between means);
//! - `notif:run:<run>` — the heartbeat of a running fan-out (15 s lease);
//!   `notif:alert-runs:<story>` — the story's runs;
//! - `notif:alert:<story>` — counts (`targeted`, `sent`, `delivered`, `failed`, `gone`,
//!   `resent`, `corrected`, `retracted`, `suppressed:<reason>`) and times (`started_ms`, `first_sent_ms`,
//!   `accepted_ms`); `notif:timeline:<story>` — sends per 10 ms since the start;
//! - `notif:corrected:<story>` — the last version sent as a correction, per device (a
//!   retraction: `u32::MAX`, so nothing follows it);
//! - `notif:budget:<local day>` — alerts per device that day (kept by the claim script);
//! - `notif:briefings` — each device's next daily briefing (ms); `notif:briefed:<device>`,
//!   `notif:briefing-lease:<device>:<due>`, `notif:recent:{topic,entity,cluster}:<x>` (the
//!   last two days' stories of each followable index): see [`briefings`];
//! - `notif:held` — embargoed stories ingest holds (story → `<embargo end ms>|<urgency>`);
//!   `notif:sealed:<story>` — editors' alerts parked until the story's release;
//! - `notif:{ledger}:loaded` — present while Redis holds the state; when it is gone the state is rebuilt
//!   from Kafka before anything is claimed (see [`crate::state`]).
//!
//! Everything about an alert expires after [`LEDGER_TTL_SECS`]. On a Redis Cluster, the keys a
//! script (a `.lua` file each, beside the Rust that runs it) or a `MULTI` touches together
//! carry one hash tag, chosen by [`AlertStore::k`] from the family ([`slot_group`]):
//! `notif:{ledger}:sent:<story>`, `notif:{devices}:device:<id>`,
//! `notif:{audiences}:audience:topic:<x>`. Components:
//!
//! - [`devices`] — devices and their preference subscriptions, offset-versioned;
//! - [`audiences`] — who follows what, and paging through a set;
//! - [`stories`] — the story an alert needs, its trace, killed stories;
//! - [`alerts`] — an alert's runs (heartbeats), counts and timeline;
//! - [`ledger`] — the at-most-once ledger: claims (with the daily budget), answers,
//!   corrections;
//! - [`sealed`] — embargoed stories and the alerts sealed until their release;
//! - [`briefings`] — the briefing schedule and the recent stories briefings pick from.

pub mod alerts;
pub mod audiences;
pub mod briefings;
pub mod devices;
pub mod ledger;
pub mod sealed;
pub mod stories;

use newsroom_platform::redis::redis::{self, AsyncCommands as _};
use newsroom_platform::redis::{RedisStore, VersionGuard};

pub use alerts::AlertFields;
pub use ledger::{Answer, Claim, ClaimAlert, ClaimRequest, EventClaim, LedgerEntry, Replacement};

/// How long the ledger, the counts and the story are kept: 7 days.
pub const LEDGER_TTL_SECS: u64 = 7 * 24 * 3600;
/// The key (unprefixed) whose presence says Redis holds notification's state.
pub const LOADED_MARKER: &str = "notif:{ledger}:loaded";
/// The lease of a fan-out's heartbeat.
pub const RUN_LEASE_MS: u64 = 15_000;
/// Timeline resolution.
pub const TIMELINE_BUCKET_MS: i64 = 10;

pub type RedisError = redis::RedisError;

/// The cluster slot a key family shares with the others its scripts and `MULTI`s touch at
/// once (by the key's first segment), `None` for a family that spreads over the masters:
///
/// - `ledger`: the claim, preview, completion, correction and run scripts read and write a
///   story's ledger, counts and timeline with the event ledger, the day's budgets, the runs'
///   heartbeats and the state marker in one step (what makes an alert at-most-once);
/// - `devices`: registering or removing a device updates the registry, the user's devices and
///   the topic and entity indexes it chose in one script;
/// - `audiences`: a reader's follows and the audiences they enter or leave change in one
///   `MULTI`.
///
/// Each group is one master's worth of capacity; everything else (stories, in-app inboxes,
/// briefings, recent indexes) spreads.
pub fn slot_group(key: &str) -> Option<&'static str> {
    match key.split(':').next()? {
        "sent" | "alert" | "timeline" | "corrected" | "event" | "budget" | "run" | "alert-runs"
        | "loaded" => Some("ledger"),
        "device" | "device-gone" | "devices" | "device-subs" | "user-devices" | "alert-topic"
        | "alert-entity" => Some("devices"),
        "user-follows" | "audience" => Some("audiences"),
        _ => None,
    }
}

/// Notification's Redis state. Cheap to clone.
#[derive(Clone)]
pub struct AlertStore {
    redis: RedisStore,
    /// The highest version of each story handled (`notif:version:<id>`), kills included.
    versions: VersionGuard,
}

impl AlertStore {
    pub fn new(redis: RedisStore) -> Self {
        AlertStore {
            versions: VersionGuard::new(
                redis.clone(),
                "notif:version",
                std::time::Duration::from_secs(LEDGER_TTL_SECS),
            ),
            redis,
        }
    }

    /// Whether `version` of story `id` may be handled: no higher version (a kill included) was.
    pub async fn admit_version(&self, id: &str, version: u32) -> Result<bool, RedisError> {
        self.versions.admit(id, version).await
    }

    pub fn redis(&self) -> &RedisStore {
        &self.redis
    }

    /// The full key of `notif:<key>`, with the hash tag of its family's [`slot_group`]
    /// (`notif:{ledger}:sent:<story>`) when it has one.
    pub fn k(&self, key: impl std::fmt::Display) -> String {
        let key = key.to_string();
        match slot_group(&key) {
            Some(group) => self.redis.key(format!("notif:{{{group}}}:{key}")),
            None => self.redis.key(format!("notif:{key}")),
        }
    }

    fn conn(&self) -> newsroom_platform::redis::Conn {
        self.redis.conn()
    }

    /// `notif:{ledger}:loaded`: present while Redis holds notification's state (see [`crate::state`]).
    pub(crate) fn loaded_key(&self) -> String {
        self.redis.key(LOADED_MARKER)
    }

    /// Whether Redis holds notification's state (devices, audiences, ledger).
    pub async fn is_loaded(&self) -> Result<bool, RedisError> {
        self.conn().exists(self.loaded_key()).await
    }
}
