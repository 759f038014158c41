//! An alert's status (`GetAlert`) from its counts and its timeline in Redis: the counts as
//! they are, and the times — to first send, to 90 % sent, accepted to first send — computed.

use std::collections::HashMap;

use newsroom_proto::v1::AlertStatus;

use crate::store::{AlertFields, TIMELINE_BUCKET_MS};

fn duration(ms: i64) -> Option<prost_types::Duration> {
    (ms >= 0).then(|| prost_types::Duration {
        seconds: ms / 1000,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    })
}

/// Builds an `AlertStatus` from the alert's counts and its timeline.
pub fn status_of(story: &str, fields: &AlertFields, timeline: &[(i64, i64)]) -> AlertStatus {
    let get = |f: &str| fields.get(f).copied().unwrap_or(0).max(0);
    let suppressed: HashMap<String, u64> = fields
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.strip_prefix("suppressed:")?.to_owned(),
                (*v).max(0) as u64,
            ))
        })
        .filter(|(_, v)| *v > 0)
        .collect();
    let targeted = get("targeted");
    let to_send = targeted - suppressed.values().sum::<u64>() as i64;
    let started = get("started_ms");
    let first = get("first_sent_ms");
    let accepted = get("accepted_ms");
    let mut p90 = None;
    if to_send > 0 {
        let need = (to_send * 9 + 9) / 10;
        let mut sum = 0;
        for (bucket, n) in timeline {
            sum += n;
            if sum >= need {
                p90 = duration(bucket + TIMELINE_BUCKET_MS);
                break;
            }
        }
    }
    AlertStatus {
        story_id: story.to_owned(),
        targeted: targeted as u64,
        sent: get("sent") as u64,
        delivered: get("delivered") as u64,
        failed: get("failed") as u64,
        suppressed,
        time_to_first_send: (first > 0 && started > 0)
            .then(|| duration(first - started))
            .flatten(),
        time_to_90_percent_sent: p90,
        accepted_to_first_send: (first > 0 && accepted > 0)
            .then(|| duration(first - accepted))
            .flatten(),
        started_at: timestamp(started),
        resent: get("resent") as u64,
        version: get("version") as u32,
        corrected: get("corrected") as u64,
        retracted: get("retracted") as u64,
        // A dry run's prediction only.
        predicted_time_to_90_percent_sent: None,
        recent_sends_per_second: 0.0,
        recent_fanouts: 0,
        sent_by_channel: Default::default(),
        finished_at: timestamp(get("finished_ms")),
        requested_at: None,
        latest_started_at: timestamp(get("latest_started_ms")),
        dry_run: false,
        sealed_until: None,
        opened: get("opened") as u64,
        dismissed: get("dismissed") as u64,
    }
}

/// A time in ms since the epoch as a protobuf timestamp; `None` for 0 (not set).
fn timestamp(ms: i64) -> Option<prost_types::Timestamp> {
    (ms > 0).then(|| prost_types::Timestamp {
        seconds: ms / 1000,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ninety_percent_sent_is_read_from_the_timeline_of_the_devices_to_alert() {
        let fields: AlertFields = [
            ("targeted", 12),
            ("suppressed:quiet_hours", 2),
            ("sent", 10),
            ("delivered", 9),
            ("failed", 1),
            ("started_ms", 1_000_000),
            ("first_sent_ms", 1_000_040),
            ("accepted_ms", 999_500),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        // 10 to send: 90% = 9, reached in the bucket starting at 300 ms.
        let timeline = [(40, 3), (100, 4), (300, 2), (900, 1)];
        let s = status_of("s", &fields, &timeline);
        assert_eq!((s.targeted, s.sent, s.delivered, s.failed), (12, 10, 9, 1));
        assert_eq!(
            s.finished_at, None,
            "a fan-out without finished_ms is running"
        );
        assert_eq!(s.suppressed["quiet_hours"], 2);
        assert_eq!(s.time_to_first_send.unwrap().nanos, 40_000_000);
        assert_eq!(s.accepted_to_first_send.unwrap().nanos, 540_000_000);
        assert_eq!(s.time_to_90_percent_sent.unwrap().nanos, 310_000_000);
        // Not yet 90%: no figure.
        let s = status_of("s", &fields, &timeline[..2]);
        assert!(s.time_to_90_percent_sent.is_none());
    }
}
