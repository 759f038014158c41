//! The at-most-once ledger: `notif:sent:<story>`, a hash device → [`LedgerEntry`], and the
//! corrections sent (`notif:corrected:<story>`, device → last version; a retraction records the
//! highest version there is).
//!
//! A device is claimed *before* it is sent (`claim.lua`, which also applies the device's daily
//! budget in `notif:budget:<local day>` and counts `targeted`, `suppressed:<reason>` and
//! `resent`), and its answer is recorded after (`complete.lua`, which also counts the answers
//! and keeps the timeline). A correction is claimed per version (`claim_corrections.lua`). The
//! scripts are beside this file; they write the entries, Rust reads them back with
//! [`LedgerEntry::parse`].

use std::sync::LazyLock;

use newsroom_platform::redis::redis::{self, Script};

use super::{AlertStore, LEDGER_TTL_SECS, RedisError, TIMELINE_BUCKET_MS};
use crate::suppression::Suppression;

static CLAIM: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("claim.lua")));
static PREVIEW: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("preview.lua")));

static COMPLETE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("complete.lua")));

/// What replaces an alert already delivered, through its collapse id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replacement {
    /// A later version, marked as a correction: once per device and version.
    Correction,
    /// The alert withdrawn: once per device, and nothing after it.
    Retraction,
}

impl Replacement {
    /// What `notif:corrected:<story>` records for a device sent this replacement.
    pub fn claimed_version(self, version: u32) -> u32 {
        match self {
            Self::Correction => version,
            Self::Retraction => u32::MAX,
        }
    }

    /// The alert's counter (`notif:alert:<story>`) of devices sent it.
    pub fn counter(self) -> &'static str {
        match self {
            Self::Correction => "corrected",
            Self::Retraction => "retracted",
        }
    }
}

static CLAIM_CORRECTIONS: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("claim_corrections.lua")));

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
    /// Suppressed now (counted): another story of the same news event reached the device.
    SameEvent,
}

/// The news event an alert belongs to (the story's near-duplicate cluster), for one alert
/// per event and device (`claim.lua`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventClaim {
    pub cluster: String,
    /// The story's IPTC urgency (1 = flash; 0, not given, counts as 5): a later story of the
    /// event alerts a device again only if more urgent than what reached it.
    pub urgency: u32,
    /// An editor's alert: it reaches devices the event already reached.
    pub escalate: bool,
}

impl EventClaim {
    fn urgency_rank(&self) -> u32 {
        if self.urgency == 0 { 5 } else { self.urgency }
    }
}

/// A device's answer, for the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Delivered,
    Failed,
    Gone,
}

impl Answer {
    /// Its code in a ledger entry and in the counts of `complete.lua`.
    fn code(self) -> &'static str {
        match self {
            Answer::Delivered => "D",
            Answer::Failed => "F",
            Answer::Gone => "G",
        }
    }

    fn of_code(code: &str) -> Option<Answer> {
        match code {
            "D" => Some(Answer::Delivered),
            "F" => Some(Answer::Failed),
            "G" => Some(Answer::Gone),
            _ => None,
        }
    }
}

/// One device's entry in the ledger, as the scripts write it (fields separated by `|`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerEntry {
    /// `p|<run>|<version>`: claimed by fan-out `run`, its send in flight.
    InFlight { run: String, version: u32 },
    /// `d|<version>|<D,F,G>|<ms>`: sent, and answered at `at_ms` (ms since the epoch).
    Answered {
        version: u32,
        answer: Answer,
        at_ms: i64,
    },
    /// `s|<reason>`: held back.
    Suppressed(Suppression),
}

impl LedgerEntry {
    /// The entry as stored. The scripts build the same bytes (`claim.lua`, `complete.lua`);
    /// Lua 5.1 prints the time as an integer below 10^14 ms, i.e. for the next 3,000 years.
    pub fn encode(&self) -> String {
        match self {
            LedgerEntry::InFlight { run, version } => format!("p|{run}|{version}"),
            LedgerEntry::Answered {
                version,
                answer,
                at_ms,
            } => format!("d|{version}|{}|{at_ms}", answer.code()),
            LedgerEntry::Suppressed(reason) => format!("s|{}", reason.as_str()),
        }
    }

    /// Reads a stored entry; `None` when it is not one (never panics).
    pub fn parse(s: &str) -> Option<LedgerEntry> {
        let mut parts = s.split('|');
        let entry = match parts.next()? {
            "p" => LedgerEntry::InFlight {
                run: parts.next()?.to_owned(),
                version: parts.next()?.parse().ok()?,
            },
            "d" => LedgerEntry::Answered {
                version: parts.next()?.parse().ok()?,
                answer: Answer::of_code(parts.next()?)?,
                at_ms: parts.next()?.parse().ok()?,
            },
            "s" => LedgerEntry::Suppressed(Suppression::parse(parts.next()?)?),
            _ => return None,
        };
        // Nothing after the last field.
        parts.next().is_none().then_some(entry)
    }
}

/// The event arguments `claim.lua` and `preview.lua` share: whether there is an event, the
/// story, its urgency rank, whether the alert escalates.
fn event_args(inv: &mut redis::ScriptInvocation<'_>, story: &str, event: Option<&EventClaim>) {
    inv.arg(if event.is_some() { "1" } else { "0" })
        .arg(story)
        .arg(event.map_or(5, EventClaim::urgency_rank))
        .arg(if event.is_some_and(|e| e.escalate) {
            "1"
        } else {
            "0"
        });
}

/// Per device: id, reason (`''` = send), budget limit, local day.
fn device_args(inv: &mut redis::ScriptInvocation<'_>, requests: &[ClaimRequest]) {
    for r in requests {
        inv.arg(&r.device_id)
            .arg(r.reason.map_or("", Suppression::as_str))
            .arg(r.budget)
            .arg(&r.day);
    }
}

/// A script's answer for one device (`claim.lua`'s codes; `preview.lua` uses a subset).
fn claim_of(code: i64) -> Claim {
    match code {
        1 => Claim::Send,
        2 => Claim::Resend,
        3 => Claim::Busy,
        4 => Claim::Suppressed,
        5 => Claim::SameEvent,
        _ => Claim::Skip,
    }
}

/// The alert devices are claimed for.
#[derive(Debug, Clone, Copy)]
pub struct ClaimAlert<'a> {
    pub story: &'a str,
    pub version: u32,
    /// The fan-out claiming them.
    pub run: &'a str,
    pub critical: bool,
    /// A later round: devices whose send failed are claimed again.
    pub retry_failed: bool,
    pub event: Option<&'a EventClaim>,
}

/// One device to claim.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub device_id: String,
    /// `None` = send; else why it is held back.
    pub reason: Option<Suppression>,
    /// Alerts per day allowed (0 = no limit).
    pub budget: u32,
    /// The device's local day (`YYYY-MM-DD`).
    pub day: String,
}

impl AlertStore {
    /// Claims devices for one alert, in one atomic step (see the module doc); with
    /// `retry_failed`, devices whose send failed are claimed again.
    pub async fn claim(
        &self,
        alert: &ClaimAlert<'_>,
        requests: &[ClaimRequest],
    ) -> Result<Vec<Claim>, RedisError> {
        let ClaimAlert {
            story,
            version,
            run,
            critical,
            retry_failed,
            event,
        } = *alert;
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = CLAIM.prepare_invoke();
        inv.key(self.k(format!("sent:{story}")))
            .key(self.k(format!("alert:{story}")))
            .key(self.loaded_key())
            .key(self.event_key(event))
            .arg(run)
            .arg(self.k("run:"))
            .arg(if critical { "1" } else { "0" })
            .arg(version)
            .arg(self.k("budget:"))
            .arg(LEDGER_TTL_SECS)
            .arg(if retry_failed { "1" } else { "0" });
        event_args(&mut inv, story, event);
        device_args(&mut inv, requests);
        let codes: Vec<i64> = inv.invoke_async(&mut self.conn()).await?;
        Ok(codes.into_iter().map(claim_of).collect())
    }

    /// The event ledger of `event` (a key no alert writes when there is none: the scripts
    /// declare their keys).
    fn event_key(&self, event: Option<&EventClaim>) -> String {
        self.k(format!(
            "event:{}",
            event.map_or("-", |e| e.cluster.as_str())
        ))
    }

    /// What [`AlertStore::claim`] would decide for `requests` now, writing nothing (a dry
    /// run): [`Claim::Skip`] already handled, [`Claim::Send`], [`Claim::Suppressed`] or
    /// [`Claim::SameEvent`].
    pub async fn preview_claims(
        &self,
        alert: &ClaimAlert<'_>,
        requests: &[ClaimRequest],
    ) -> Result<Vec<Claim>, RedisError> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = PREVIEW.prepare_invoke();
        inv.key(self.k(format!("sent:{}", alert.story)))
            .key(self.event_key(alert.event));
        event_args(&mut inv, alert.story, alert.event);
        inv.arg(self.k("budget:"));
        device_args(&mut inv, requests);
        let codes: Vec<i64> = inv.invoke_async(&mut self.conn()).await?;
        Ok(codes.into_iter().map(claim_of).collect())
    }

    /// For each of `devices`, the story whose alert reached it for the news event `cluster`.
    pub async fn event_alerts(
        &self,
        cluster: &str,
        devices: &[String],
    ) -> Result<std::collections::HashMap<String, String>, RedisError> {
        let values: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(self.k(format!("event:{cluster}")))
            .arg(devices)
            .query_async(&mut self.conn())
            .await?;
        Ok(devices
            .iter()
            .zip(values)
            .filter_map(|(d, v)| {
                let story = v?.rsplit_once('|')?.0.to_owned();
                Some((d.clone(), story))
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

    /// Ledger entries of an alert, page by page (for corrections and recovery): device ids
    /// and their raw entries (read them with [`LedgerEntry::parse`]).
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

    /// Claims devices for a correction to `version`, or for a retraction: true for those not
    /// yet sent it. A retraction claims the highest version there is, so no correction follows.
    pub async fn claim_replacements(
        &self,
        story: &str,
        kind: Replacement,
        version: u32,
        devices: &[String],
    ) -> Result<Vec<bool>, RedisError> {
        if devices.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = CLAIM_CORRECTIONS.prepare_invoke();
        inv.key(self.k(format!("corrected:{story}")))
            .key(self.k(format!("alert:{story}")))
            .arg(kind.claimed_version(version))
            .arg(LEDGER_TTL_SECS)
            .arg(kind.counter());
        for d in devices {
            inv.arg(d);
        }
        let codes: Vec<i64> = inv.invoke_async(&mut self.conn()).await?;
        Ok(codes.into_iter().map(|c| c == 1).collect())
    }
}

impl AlertStore {
    /// Puts back what receipts say was sent (after Redis lost the ledger): an answered entry
    /// per device and story, the last correction version per device, the story's alerted
    /// version, without overwriting anything written since.
    pub async fn restore_from_receipts(
        &self,
        receipts: &[newsroom_proto::v1::DeliveryReceipt],
    ) -> Result<(), RedisError> {
        use newsroom_proto::v1::DeliveryOutcome;
        let mut pipe = redis::pipe();
        let mut writes = 0;
        for r in receipts {
            let ms =
                r.at.as_ref()
                    .and_then(newsroom_platform::time::timestamp_ms)
                    .unwrap_or(0);
            let answer = match DeliveryOutcome::try_from(r.outcome) {
                Ok(DeliveryOutcome::Delivered) => Some(Answer::Delivered),
                Ok(DeliveryOutcome::Failed) => Some(Answer::Failed),
                Ok(DeliveryOutcome::Gone) => Some(Answer::Gone),
                _ => None,
            };
            // A detail may explain its reason after a colon ("same_event: alerted by …").
            let reason = r.detail.split(':').next().unwrap_or_default();
            let entry = match (answer, Suppression::parse(reason)) {
                (Some(answer), _) => LedgerEntry::Answered {
                    version: r.version,
                    answer,
                    at_ms: ms,
                },
                (None, Some(reason)) => LedgerEntry::Suppressed(reason),
                (None, None) => continue,
            };
            writes += 1;
            if r.correction || r.retraction {
                let kind = if r.retraction {
                    Replacement::Retraction
                } else {
                    Replacement::Correction
                };
                let key = self.k(format!("corrected:{}", r.story_id));
                pipe.hset(&key, &r.device_id, kind.claimed_version(r.version))
                    .ignore()
                    .expire(&key, LEDGER_TTL_SECS as i64)
                    .ignore();
                continue;
            }
            let (ledger, alert) = (
                self.k(format!("sent:{}", r.story_id)),
                self.k(format!("alert:{}", r.story_id)),
            );
            // The event the alert reached the device for, in the receipts' order (a device's
            // receipts share its partition), so the last one is the most urgent alert.
            if answer.is_some() && !r.event_id.is_empty() {
                let event = self.k(format!("event:{}", r.event_id));
                let urgency = if r.urgency == 0 { 5 } else { r.urgency };
                pipe.hset(&event, &r.device_id, format!("{}|{urgency}", r.story_id))
                    .ignore()
                    .expire(&event, LEDGER_TTL_SECS as i64)
                    .ignore();
            }
            // A retried send's delivery replaces its failure; nothing else overwrites.
            if answer == Some(Answer::Delivered) {
                pipe.hset(&ledger, &r.device_id, entry.encode()).ignore();
            } else {
                pipe.hset_nx(&ledger, &r.device_id, entry.encode()).ignore();
            }
            pipe.expire(&ledger, LEDGER_TTL_SECS as i64)
                .ignore()
                .hset_nx(&alert, "version", r.version)
                .ignore()
                .expire(&alert, LEDGER_TTL_SECS as i64)
                .ignore();
        }
        if writes == 0 {
            return Ok(());
        }
        pipe.query_async::<()>(&mut self.conn()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_back_byte_for_byte_as_the_scripts_write_them() {
        let stored = [
            (
                "p|5f1c0e2a9b7d4e3f8a6b1c2d3e4f5a6b|3",
                LedgerEntry::InFlight {
                    run: "5f1c0e2a9b7d4e3f8a6b1c2d3e4f5a6b".into(),
                    version: 3,
                },
            ),
            (
                "d|3|D|1764331200123",
                LedgerEntry::Answered {
                    version: 3,
                    answer: Answer::Delivered,
                    at_ms: 1_764_331_200_123,
                },
            ),
            (
                "d|1|F|1764331200000",
                LedgerEntry::Answered {
                    version: 1,
                    answer: Answer::Failed,
                    at_ms: 1_764_331_200_000,
                },
            ),
            (
                "d|2|G|7",
                LedgerEntry::Answered {
                    version: 2,
                    answer: Answer::Gone,
                    at_ms: 7,
                },
            ),
            (
                "s|quiet_hours",
                LedgerEntry::Suppressed(Suppression::QuietHours),
            ),
            ("s|budget", LedgerEntry::Suppressed(Suppression::Budget)),
        ];
        for (raw, entry) in stored {
            assert_eq!(LedgerEntry::parse(raw).as_ref(), Some(&entry), "{raw}");
            assert_eq!(entry.encode(), raw);
        }
        for reason in Suppression::ALL {
            let entry = LedgerEntry::Suppressed(reason);
            assert_eq!(LedgerEntry::parse(&entry.encode()), Some(entry));
        }
    }

    #[test]
    fn malformed_entries_are_none_not_a_panic() {
        for raw in [
            "",
            "|",
            "d",
            "d|",
            "d|3|D",
            "d|3|D|",
            "d|x|D|1",
            "d|-1|D|1",
            "d|3|X|1",
            "d|3|D|1.5",
            "d|3|D|1|extra",
            "p|run",
            "p|run|v2",
            "p|run|2|extra",
            "s|",
            "s|asleep",
            "s|budget|1",
            "x|1|D|1",
            "D|1|d|1",
            "d|99999999999|D|1",
        ] {
            assert_eq!(LedgerEntry::parse(raw), None, "{raw:?}");
        }
    }
}
