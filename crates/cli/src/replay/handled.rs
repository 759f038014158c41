//! `--wait`: following enrichment's consumer group until it has committed past every record a
//! replay wrote.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use newsroom_platform::kafka::rdkafka::consumer::Consumer as _;
use newsroom_platform::kafka::rdkafka::{Offset, TopicPartitionList};

use super::TIMEOUT;
use crate::ops::{self, OpsError};

/// Follows `group`'s committed offsets on `topic` until every written record is behind them.
pub(super) fn wait_until_handled(
    brokers: &str,
    group: &str,
    topic: &str,
    written: &BTreeMap<i32, Vec<i64>>,
    timeout: Duration,
    progress: &ProgressBar,
) -> Result<u64, OpsError> {
    let total: usize = written.values().map(Vec::len).sum();
    progress.set_length(total as u64);
    progress.set_position(0);
    progress.set_message(format!("enriched by {group}"));
    // Asking for committed offsets under the group's id does not join the group.
    let group_consumer = ops::consumer(brokers, group)?;
    let deadline = Instant::now() + timeout;
    loop {
        let mut tpl = TopicPartitionList::new();
        for &p in written.keys() {
            tpl.add_partition(topic, p);
        }
        let committed = group_consumer.committed_offsets(tpl, TIMEOUT)?;
        let handled: usize = committed
            .elements()
            .iter()
            .map(|e| match e.offset() {
                Offset::Offset(c) => written
                    .get(&e.partition())
                    .map_or(0, |offsets| offsets.partition_point(|o| *o < c)),
                _ => 0,
            })
            .sum();
        progress.set_position(handled as u64);
        if handled >= total {
            return Ok(handled as u64);
        }
        if Instant::now() >= deadline {
            return Err(OpsError::Timeout(format!(
                "{group} handled {handled} of the {total} replayed records within {timeout:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
