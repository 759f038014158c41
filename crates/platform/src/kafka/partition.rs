//! A partition's task: its records handled (in order, or several at once of different keys),
//! retried while a dependency is away with the partition paused, dead-lettered when poison,
//! and their offsets stored for the commit once done.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::stream_consumer::StreamPartitionQueue;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::consumer::{ConsumerDeps, ConsumerSettings, GroupContext};
use super::dlq::dead_letter;
use super::handler::Handler;
use super::inflight::InFlight;
use super::record::Record;
use crate::metrics::TopicLabel;
use crate::readiness::Check;

/// What a partition's task runs: the loop's settings and handler.
pub(super) struct PartitionRun<H> {
    pub(super) settings: ConsumerSettings,
    pub(super) handler: Arc<H>,
    pub(super) deps: ConsumerDeps,
    pub(super) stalled: Stalled,
}

/// How many partitions wait on a dependency; the `handling` check fails while any does.
#[derive(Clone)]
pub(super) struct Stalled {
    pub(super) check: Check,
    pub(super) partitions: Arc<Mutex<usize>>,
}

/// A partition waiting on a dependency: paused (librdkafka fetches nothing more for it while
/// its record is retried), counted in [`Stalled`]. Dropping it resumes and uncounts.
struct Stall<'a> {
    stalled: &'a Stalled,
    consumer: &'a StreamConsumer<GroupContext>,
    partition: TopicPartitionList,
}

impl<'a> Stall<'a> {
    fn begin(
        stalled: &'a Stalled,
        consumer: &'a StreamConsumer<GroupContext>,
        record: &Record,
    ) -> Self {
        let mut partition = TopicPartitionList::new();
        partition.add_partition(&record.topic, record.partition);
        // Fails only when the partition was just revoked; its task stops anyway.
        let _ = consumer.pause(&partition);
        let mut n = stalled.partitions.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        stalled.check.set(false);
        Stall {
            stalled,
            consumer,
            partition,
        }
    }
}

impl Drop for Stall<'_> {
    fn drop(&mut self) {
        let _ = self.consumer.resume(&self.partition);
        let mut n = self
            .stalled
            .partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        if *n == 0 {
            self.stalled.check.set(true);
        }
    }
}

impl<H: Handler> PartitionRun<H> {
    /// Handles the partition's records until its token is cancelled (revoke or shutdown):
    /// in order, or up to `settings.concurrency` at once of different keys; each offset is
    /// stored once it and every record before it are done ([`InFlight`]).
    pub(super) async fn run(
        self: Arc<Self>,
        consumer: Arc<StreamConsumer<GroupContext>>,
        queue: StreamPartitionQueue<GroupContext>,
        mut strays: mpsc::UnboundedReceiver<Record>,
        stop: CancellationToken,
    ) {
        let limit = self.settings.concurrency.max(1);
        let mut inflight = InFlight::default();
        let mut running = FuturesUnordered::new();
        // The next record, when it must wait (its key runs, or `limit` records do).
        let mut next: Option<Record> = None;
        let mut stopped = false;
        while !stopped {
            if let Some(r) = next.take() {
                if inflight.len() < limit && !inflight.key_busy(r.key.as_deref()) {
                    inflight.start(r.offset, r.key.as_deref());
                    let (me, consumer, stop) = (self.clone(), consumer.clone(), stop.clone());
                    running.push(async move {
                        let done = me.handle(&consumer, &r, &stop).await;
                        (r, done)
                    });
                } else {
                    next = Some(r);
                }
            }
            let may_take = next.is_none();
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                Some((record, done)) = running.next() => {
                    stopped = !self.finished(&consumer, &mut inflight, &record, done);
                }
                Some(r) = strays.recv(), if may_take => next = Some(r),
                m = queue.recv(), if may_take => match m {
                    Ok(m) => next = Some(Record::from_message(&m)),
                    Err(e) => {
                        consumer.context().consumer_errors.warn(&e, "partition queue");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                },
            }
        }
        // The records running finish (a handler sees the shutdown itself; a retry stops) and
        // their offsets are stored as far as every earlier one is done.
        while let Some((record, done)) = running.next().await {
            self.finished(&consumer, &mut inflight, &record, done);
        }
    }

    /// Records that `record` is finished; stores the offset the commit may move to. False
    /// when `stop` interrupted it (its offset stays: the record comes back).
    fn finished(
        &self,
        consumer: &StreamConsumer<GroupContext>,
        inflight: &mut InFlight,
        record: &Record,
        done: bool,
    ) -> bool {
        if !done {
            return false;
        }
        // After a revoke this fails, and the partition's next owner handles the record again.
        if let Some(offset) = inflight.finish(record.offset, record.key.as_deref())
            && let Err(e) = consumer.store_offset(&record.topic, record.partition, offset)
        {
            tracing::debug!(error = %e, topic = %record.topic, "store_offset failed");
        }
        true
    }

    /// Handles one record with retries and dead-lettering. Returns false only when `stop`
    /// interrupted it before the record was done.
    async fn handle(
        &self,
        consumer: &StreamConsumer<GroupContext>,
        record: &Record,
        stop: &CancellationToken,
    ) -> bool {
        let label = TopicLabel {
            topic: record.topic.clone(),
        };
        // The consumer span continues the producer's trace as its child, so one story version
        // is one trace from SubmitStory to the last push (see the README's tracing section).
        let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(record));
        let span = tracing::info_span!(
            "process",
            otel.name = %format!("process {}", record.topic),
            otel.kind = "consumer",
            messaging.system = "kafka",
            messaging.operation.type = "process",
            messaging.destination.name = %record.topic,
            messaging.destination.partition.id = record.partition,
            messaging.kafka.offset = record.offset,
            messaging.kafka.message.key = %record.key_str(),
            messaging.consumer.group.name = %self.settings.group_id,
        );
        let _ = span.set_parent(parent);

        let started = Instant::now();
        let mut attempt = 0u32;
        let mut delays = self.settings.retry_delays();
        let mut stall = None;
        let error = loop {
            attempt += 1;
            match self.handler.handle(record).instrument(span.clone()).await {
                Ok(()) => {
                    self.deps.metrics.consumed.get_or_create(&label).inc();
                    self.deps
                        .metrics
                        .handler_seconds
                        .get_or_create(&label)
                        .observe(started.elapsed().as_secs_f64());
                    return true;
                }
                Err(e) if e.is_poison() => break e,
                Err(e) => match delays.next() {
                    None => {
                        break e.after_attempts(attempt);
                    }
                    Some(delay) => {
                        stall.get_or_insert_with(|| Stall::begin(&self.stalled, consumer, record));
                        span.in_scope(|| {
                            tracing::warn!(reason = %e, attempt, "dependency failed; partition paused, retrying")
                        });
                        tokio::select! {
                            _ = stop.cancelled() => return false,
                            _ = tokio::time::sleep(delay) => {}
                        }
                    }
                },
            }
        };
        dead_letter(
            &self.deps.producer,
            &self.deps.metrics,
            record,
            &error,
            attempt,
            stop.cancelled(),
        )
        .instrument(span)
        .await
    }
}
