//! `newsroom replay`: send a range of stories back through enrichment.
//!
//! The operator's cases: a remote stage was down and its stories went to `stories.raw.dlq`; a
//! stage was wrong for an hour and its stories should be enriched again; a consumer downstream
//! dead-lettered stories it can now handle. The command reads a range of one of the story
//! topics — `stories.raw`, `stories.raw.dlq`, `stories.enriched`, `stories.enriched.dlq` — and
//! writes each story back to `stories.raw` (enrichment's input) under its key, as a
//! `StoryEvent` with the version and `accepted_at` it had. Enrichment enriches it with the
//! pipeline it runs now and publishes it to `stories.enriched`, where every consumer is
//! idempotent on (story, version): a replay never becomes a second alert.
//!
//! What it refuses to write back:
//! - a version older than the story's latest (ingest's identity state, compacted
//!   `stories.index`, read whole at the start and followed while the replay runs): republishing
//!   it would make an old version the latest of the compacted `stories.enriched`. Counted as
//!   `superseded`. A version ingested in the instant between that look and the write can still
//!   be overtaken; recommendation and notification keep the newer version they hold, and the
//!   compacted topic is right again with the story's next version.
//! - anything that is not a story (a tombstone, bytes that do not decode): counted as `skipped`.
//! - `stories.held` and the other topics: an embargoed story is released by ingest alone.
//!
//! A range is `[from, to)` on each partition: an offset, an RFC 3339 time (Kafka's timestamp
//! index), `beginning` or `end` (the end when the command starts, so what it writes itself is
//! never read again). A replayed record keeps the original's headers (the trace context too,
//! so the re-run shows up in the story version's trace) minus the dead-letter ones, plus
//! `newsroom.replay: cli` and `newsroom.replay.source: topic/partition/offset`.
//!
//! With `wait`, the command then follows enrichment's consumer group until it has committed
//! past every record written, and reports how many new records `stories.raw.dlq` got meanwhile
//! (the stories the current pipeline still fails). The functions here are blocking; the
//! `replay` command runs them on a blocking thread.
//!
//! - this file — the request, the report, the range and the read-and-write loop;
//! - [`records`] — which topics carry stories, a record → `StoryEvent`, the replay headers;
//! - [`latest`] — the latest version of each story (superseded versions are not written);
//! - [`delivery`] — queueing writes and settling them;
//! - [`handled`] — `--wait` on enrichment's consumer group.

mod delivery;
mod handled;
mod latest;
mod records;

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use newsroom_platform::kafka::rdkafka::consumer::{BaseConsumer, Consumer as _};
use newsroom_platform::kafka::rdkafka::error::KafkaError;
use newsroom_platform::kafka::rdkafka::message::Message as _;
use newsroom_platform::kafka::rdkafka::producer::FutureProducer;
use newsroom_platform::kafka::rdkafka::{Offset, TopicPartitionList};
use newsroom_platform::kafka::topics;
use newsroom_proto::Message as _;

use self::delivery::{send, settle};
use self::handled::wait_until_handled;
use self::latest::Latest;
use self::records::{replayable, story_event};
use crate::ops::{self, OpsError};

const TIMEOUT: Duration = Duration::from_secs(10);

/// One end of a replay range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// The oldest retained record.
    Beginning,
    /// The partition's end when the replay starts.
    End,
    /// An offset (clamped to what is retained).
    Offset(i64),
    /// The first record at or after this time (milliseconds since the epoch).
    Time(i64),
}

impl FromStr for Position {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "beginning" => Ok(Position::Beginning),
            "end" => Ok(Position::End),
            _ => {
                if let Ok(offset) = s.parse::<i64>() {
                    return if offset >= 0 {
                        Ok(Position::Offset(offset))
                    } else {
                        Err(format!("offset {offset} is negative"))
                    };
                }
                chrono::DateTime::parse_from_rfc3339(s)
                    .map(|t| Position::Time(t.timestamp_millis()))
                    .map_err(|e| {
                        format!(
                            "{s:?} is not an offset, an RFC 3339 time (2026-11-28T18:00:00Z), \
                             `beginning` or `end`: {e}"
                        )
                    })
            }
        }
    }
}

/// What a replay does.
#[derive(Debug, Clone)]
pub struct ReplayRequest {
    pub brokers: String,
    /// The full name of the topic read (prefix included).
    pub source: String,
    /// Partitions to read; every partition when empty.
    pub partitions: Vec<i32>,
    pub from: Position,
    pub to: Position,
    /// Only this story's records.
    pub story: Option<String>,
    /// Read and count, write nothing.
    pub dry_run: bool,
    /// Enrichment's consumer group to follow until it handled what was written.
    pub wait_for_group: Option<String>,
    /// How long `wait_for_group` may take.
    pub wait_timeout: Duration,
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReplayReport {
    pub source: String,
    /// Where the stories were written (`stories.raw` of the same prefix).
    pub target: String,
    pub dry_run: bool,
    /// Records read in the range.
    pub read: u64,
    /// Stories written back to the target (or that would be, in a dry run).
    pub replayed: u64,
    /// Versions older than the story's latest: not written.
    pub superseded: u64,
    /// Tombstones, other stories (`--story`), bytes that are not a story.
    pub skipped: u64,
    /// With `wait`: replayed records enrichment has handled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handled: Option<u64>,
    /// With `wait`: records `stories.raw.dlq` got while the replay ran (the current pipeline
    /// still fails them — or live stories failed meanwhile).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_in_dlq: Option<u64>,
}

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Ops(#[from] OpsError),
    #[error(
        "{0} cannot be replayed: only stories.raw, stories.raw.dlq, stories.enriched and \
         stories.enriched.dlq carry stories enrichment may run again"
    )]
    NotReplayable(String),
    #[error("{0}")]
    BadRange(String),
}

impl From<KafkaError> for ReplayError {
    fn from(e: KafkaError) -> Self {
        ReplayError::Ops(OpsError::Kafka(e))
    }
}

/// Runs a replay; `progress` shows the records read (and then handled, with `wait`).
pub fn replay(req: &ReplayRequest, progress: &ProgressBar) -> Result<ReplayReport, ReplayError> {
    let (prefix, carries) =
        replayable(&req.source).ok_or_else(|| ReplayError::NotReplayable(req.source.clone()))?;
    let target = format!("{prefix}{}", topics::STORIES_RAW);
    let dlq = format!("{prefix}{}", topics::STORIES_RAW_DLQ);
    let consumer = ops::consumer(
        &req.brokers,
        &format!("newsroom-cli-replay-{}", std::process::id()),
    )?;

    let ranges = ranges(&consumer, req)?;
    let mut report = ReplayReport {
        source: req.source.clone(),
        target: target.clone(),
        dry_run: req.dry_run,
        ..Default::default()
    };
    let total: i64 = ranges.values().map(|(start, end)| end - start).sum();
    if total == 0 {
        return Ok(report);
    }
    let dlq_before = end_offsets(&consumer, &dlq).ok();

    progress.set_message("reading stories.index");
    let mut latest = Latest::load(&req.brokers, &format!("{prefix}{}", topics::STORIES_INDEX))?;

    let producer: FutureProducer = crate::ops::kafka_client(&req.brokers, "newsroom-cli-replay")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        .create()?;

    let mut tpl = TopicPartitionList::new();
    for (&p, &(start, _)) in &ranges {
        tpl.add_partition_offset(&req.source, p, Offset::Offset(start))?;
    }
    consumer.assign(&tpl)?;
    progress.set_length(total as u64);
    progress.set_position(0);
    progress.set_message(format!("replaying {}", req.source));

    let mut open: BTreeMap<i32, (i64, i64)> = ranges.clone();
    let mut in_flight = Vec::new();
    let mut written: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    let mut done: BTreeMap<i32, i64> = BTreeMap::new();
    let mut last_record = Instant::now();
    let mut read_and_write = || -> Result<(), ReplayError> {
        while !open.is_empty() {
            let Some(message) = consumer.poll(Duration::from_millis(500)) else {
                if last_record.elapsed() > TIMEOUT {
                    return Err(OpsError::Timeout(format!(
                        "no record from {} for {TIMEOUT:?} with {} partitions still open",
                        req.source,
                        open.len()
                    ))
                    .into());
                }
                continue;
            };
            last_record = Instant::now();
            let message = message?;
            let (partition, offset) = (message.partition(), message.offset());
            let Some(&(start, end)) = open.get(&partition) else {
                continue;
            };
            if offset >= end {
                open.remove(&partition);
                done.insert(partition, end - start);
                continue;
            }
            if offset + 1 >= end {
                open.remove(&partition);
            }
            // Progress in offsets, so the gaps of a compacted topic count as read.
            done.insert(partition, offset + 1 - start);
            progress.set_position(done.values().sum::<i64>() as u64);
            report.read += 1;
            let key = message
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned());
            if req
                .story
                .as_deref()
                .is_some_and(|s| key.as_deref() != Some(s))
            {
                report.skipped += 1;
                continue;
            }
            let Some(event) = message.payload().and_then(|p| story_event(carries, p)) else {
                report.skipped += 1;
                continue;
            };
            let story = event.story.as_ref().map(|s| (s.id.clone(), s.version));
            let (id, version) = story.unwrap_or_default();
            latest.refresh()?;
            if latest.supersedes(&id, version) {
                report.superseded += 1;
                continue;
            }
            report.replayed += 1;
            if req.dry_run {
                continue;
            }
            let source = format!("{}/{partition}/{offset}", req.source);
            let headers = records::headers(message.headers(), &source);
            let payload = event.encode_to_vec();
            in_flight.push(send(&producer, &target, &id, &payload, headers)?);
            if in_flight.len() >= 1000 {
                settle(&mut in_flight, &mut written)?;
            }
        }
        Ok(())
    };
    let outcome = read_and_write();
    // What was queued is delivered (or fails) before anything is reported, error or not.
    let settled = settle(&mut in_flight, &mut written);
    if let Err(e) = outcome.and(settled.map_err(ReplayError::from)) {
        let written: usize = written.values().map(Vec::len).sum();
        eprintln!(
            "newsroom: replay stopped after reading {} records of {}: {written} written back to {target}, {} superseded, {} skipped",
            report.read, req.source, report.superseded, report.skipped
        );
        return Err(e);
    }
    progress.set_position(total as u64);

    if let Some(group) = &req.wait_for_group
        && !req.dry_run
    {
        report.handled = Some(wait_until_handled(
            &req.brokers,
            group,
            &target,
            &written,
            req.wait_timeout,
            progress,
        )?);
        if let (Some(before), Ok(after)) = (dlq_before, end_offsets(&consumer, &dlq)) {
            let new: i64 = after
                .iter()
                .map(|(p, end)| end - before.get(p).copied().unwrap_or(0))
                .sum();
            report.new_in_dlq = Some(new.max(0) as u64);
        }
    }
    Ok(report)
}

/// `[start, end)` per partition of the source.
fn ranges(
    consumer: &BaseConsumer,
    req: &ReplayRequest,
) -> Result<BTreeMap<i32, (i64, i64)>, ReplayError> {
    let all = ops::partitions(consumer, &req.source, TIMEOUT)?;
    let chosen: Vec<i32> = if req.partitions.is_empty() {
        all
    } else {
        if let Some(p) = req.partitions.iter().find(|p| !all.contains(p)) {
            return Err(ReplayError::BadRange(format!(
                "{} has no partition {p} (it has {})",
                req.source,
                all.len()
            )));
        }
        req.partitions.clone()
    };
    let mut out = BTreeMap::new();
    for p in chosen {
        let (low, high) = consumer.fetch_watermarks(&req.source, p, TIMEOUT)?;
        let at = |position: Position| -> Result<i64, ReplayError> {
            Ok(match position {
                Position::Beginning => low,
                Position::End => high,
                Position::Offset(o) => o.clamp(low, high),
                Position::Time(ms) => {
                    let mut tpl = TopicPartitionList::new();
                    tpl.add_partition_offset(&req.source, p, Offset::Offset(ms))?;
                    let found = consumer.offsets_for_times(tpl, TIMEOUT)?;
                    match found.elements().first().map(|e| e.offset()) {
                        Some(Offset::Offset(o)) => o.clamp(low, high),
                        // No record at or after that time.
                        _ => high,
                    }
                }
            })
        };
        let (start, end) = (at(req.from)?, at(req.to)?);
        if end > start {
            out.insert(p, (start, end));
        }
    }
    Ok(out)
}

/// Each partition's end offset.
fn end_offsets(consumer: &BaseConsumer, topic: &str) -> Result<HashMap<i32, i64>, OpsError> {
    ops::partitions(consumer, topic, TIMEOUT)?
        .into_iter()
        .map(|p| Ok((p, consumer.fetch_watermarks(topic, p, TIMEOUT)?.1)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse_from_offsets_times_and_words() {
        assert_eq!("beginning".parse(), Ok(Position::Beginning));
        assert_eq!("end".parse(), Ok(Position::End));
        assert_eq!("42".parse(), Ok(Position::Offset(42)));
        assert_eq!(
            "2026-11-28T18:00:00Z".parse(),
            Ok(Position::Time(1_795_888_800_000))
        );
        let err = "yesterday".parse::<Position>().unwrap_err();
        assert!(err.contains("RFC 3339"), "{err}");
        assert!("-1".parse::<Position>().unwrap_err().contains("negative"));
    }
}
