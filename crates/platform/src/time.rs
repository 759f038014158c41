//! Time as the services store it: milliseconds since the Unix epoch (Redis scores, ledger
//! entries, Kafka timestamps), converted from and to protobuf `Timestamp`s through prost-types'
//! own conversions rather than by hand.

use std::time::{SystemTime, UNIX_EPOCH};

use prost_types::Timestamp;

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    ms_of(SystemTime::now())
}

/// Milliseconds since the epoch of `t` (negative before 1970).
pub fn ms_of(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// Milliseconds since the epoch of a protobuf timestamp; `None` when it is not a valid one.
pub fn timestamp_ms(ts: &Timestamp) -> Option<i64> {
    SystemTime::try_from(*ts).ok().map(ms_of)
}

/// The protobuf timestamp of `ms` milliseconds since the epoch.
pub fn timestamp_of_ms(ms: i64) -> Timestamp {
    let t = if ms >= 0 {
        UNIX_EPOCH + std::time::Duration::from_millis(ms.unsigned_abs())
    } else {
        UNIX_EPOCH - std::time::Duration::from_millis(ms.unsigned_abs())
    };
    t.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_round_trip_through_timestamps_on_both_sides_of_1970() {
        for ms in [0, 1, 1_700_000_000_123, -1_500] {
            let ts = timestamp_of_ms(ms);
            assert_eq!(timestamp_ms(&ts), Some(ms), "{ts:?}");
        }
        assert_eq!(
            timestamp_of_ms(1_700_000_000_123),
            Timestamp {
                seconds: 1_700_000_000,
                nanos: 123_000_000
            }
        );
        let invalid = Timestamp {
            seconds: 0,
            nanos: -5,
        };
        assert!(timestamp_ms(&invalid).is_some_and(|ms| ms <= 0));
        assert!((now_ms() - ms_of(SystemTime::now())).abs() < 1000);
    }
}
