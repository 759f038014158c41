//! Several records of one partition handled at once, their offsets committed in order.
//!
//! A consumer whose handler can run long (notification's fan-out: a minute or more for a
//! million devices, or while a provider is down) would hold every later record of its
//! partition behind it: a second flash waits for the first one's audience. With
//! [`super::ConsumerSettings::concurrency`] above 1, a partition task starts the next records
//! while earlier ones run, up to that many at once, and never two of the same key at once (a
//! story's versions stay in order). The offset stored for the commit is the highest one below
//! every record still running, so a crash redelivers from the oldest unfinished record: what
//! finished after it is handled again, which the handlers already make harmless (at least
//! once, idempotent per key).

use std::collections::{BTreeSet, HashMap};

/// The records of one partition that are running, and those done above the oldest running.
#[derive(Debug, Default)]
pub(super) struct InFlight {
    running: BTreeSet<i64>,
    /// Done, but above a running offset: not committable yet.
    done: BTreeSet<i64>,
    /// Running records per key.
    keys: HashMap<Vec<u8>, usize>,
}

impl InFlight {
    pub(super) fn len(&self) -> usize {
        self.running.len()
    }

    /// Whether a record with `key` is running (the next one of that key must wait).
    pub(super) fn key_busy(&self, key: Option<&[u8]>) -> bool {
        key.is_some_and(|k| self.keys.contains_key(k))
    }

    pub(super) fn start(&mut self, offset: i64, key: Option<&[u8]>) {
        self.running.insert(offset);
        if let Some(k) = key {
            *self.keys.entry(k.to_vec()).or_default() += 1;
        }
    }

    /// Marks a record done; returns the offset to store now, if the commit may move: the
    /// highest done offset below every running one.
    pub(super) fn finish(&mut self, offset: i64, key: Option<&[u8]>) -> Option<i64> {
        self.running.remove(&offset);
        if let Some(k) = key
            && let Some(n) = self.keys.get_mut(k)
        {
            *n -= 1;
            if *n == 0 {
                self.keys.remove(k);
            }
        }
        self.done.insert(offset);
        let floor = self.running.first().copied().unwrap_or(i64::MAX);
        let committable = self.done.range(..floor).next_back().copied();
        // Everything below the floor is done: forget it.
        self.done = self.done.split_off(&floor);
        committable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commit_moves_only_past_records_that_are_all_done() {
        let mut f = InFlight::default();
        for o in [10, 11, 12] {
            f.start(o, Some(format!("k{o}").as_bytes()));
        }
        // 11 and 12 finish first: 10 still runs, nothing may be committed.
        assert_eq!(f.finish(12, Some(b"k12")), None);
        assert_eq!(f.finish(11, Some(b"k11")), None);
        // 10 finishes: everything up to 12 is done.
        assert_eq!(f.finish(10, Some(b"k10")), Some(12));
        assert_eq!(f.len(), 0);
        // In order, each finish commits itself.
        f.start(13, None);
        assert_eq!(f.finish(13, None), Some(13));
    }

    #[test]
    fn a_key_is_busy_while_any_record_of_it_runs() {
        let mut f = InFlight::default();
        f.start(1, Some(b"story-a"));
        assert!(f.key_busy(Some(b"story-a")));
        assert!(!f.key_busy(Some(b"story-b")));
        assert!(!f.key_busy(None), "records without a key never wait");
        f.finish(1, Some(b"story-a"));
        assert!(!f.key_busy(Some(b"story-a")));
    }
}
