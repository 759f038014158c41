//! The at-least-once consumer: a group member with a task per assigned partition.
//!
//! - One [`Handler`] call per record, records of a partition in order, partitions in
//!   parallel: a slow record (a retry while Redis is away) holds back only its own partition,
//!   and the group's main queue is polled all the time, so the member keeps its place in the
//!   group however long a record takes. A loop whose handler runs long by nature (a fan-out)
//!   sets [`ConsumerSettings::concurrently`]: up to that many records of a partition at once,
//!   never two of one key, offsets committed only past records that are all done
//!   ([`super::inflight`]).
//! - A record's offset is stored only after its handler finished (or the record went to the
//!   dead-letter topic); stored offsets are committed in the background every second, on
//!   partition revoke and on shutdown. Handlers are idempotent on (story id, version), so a
//!   record handled again after a crash or a rebalance is harmless.
//! - [`HandlerError`](super::HandlerError) says what to do with a failure: poison goes to the DLQ at once (with the
//!   headers the handler adds); a retryable failure (Redis or a broker away) is never
//!   dead-lettered by default: the partition is paused and the record retried with capped,
//!   jittered backoff until the dependency is back, however long that takes. An outage delays
//!   records; it does not throw them away. ([`ConsumerSettings::max_attempts`] can bound it.)
//! - The consumer's [`Check`] passes once the member joined its group and fails while no broker
//!   answers; its `handling` check fails while any partition waits on a dependency, so the
//!   replica reports NOT_SERVING until its records flow again.
//!
//! How partitions become tasks: when librdkafka assigns partitions (inside the main queue's
//! poll, on its rebalance callback) the context pauses them before any fetch, and hands them to
//! the loop, which splits each partition onto its own queue, starts its task, and resumes it.
//! A revoke cancels the partitions' tasks (each finishes the record it holds) and commits.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{BackoffBuilder as _, ExponentialBuilder};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{ClientContext, TopicPartitionList};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::client::service_client;
use super::handler::Handler;
use super::health::{self, ErrorLog};
use super::partition::{PartitionRun, Stalled};
use super::producer::Producer;
use super::record::Record;
use crate::config::PlatformConfig;
use crate::metrics::{KafkaMetrics, PartitionLabels};
use crate::readiness::Check;
use crate::shutdown::Shutdown;

/// How a consumer loop runs.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// Full topic names to subscribe to.
    pub topics: Vec<String>,
    pub group_id: String,
    /// Attempts for a retryable failure before the record is dead-lettered; `None` (the
    /// default): retry until it succeeds, since a retryable failure is an outage, and an outage
    /// must not send good records to the DLQ.
    pub max_attempts: Option<u32>,
    /// First retry delay; doubles each attempt (with jitter), at most `max_backoff`.
    pub retry_backoff: Duration,
    /// Longest delay between two attempts.
    pub max_backoff: Duration,
    /// How often librdkafka reports statistics, from which the consumer-lag gauge is set.
    pub statistics_interval: Duration,
    /// Records of one partition handled at once (never two of one key; offsets committed in
    /// order, see [`super::inflight`]). 1, the default: one after the other.
    pub concurrency: usize,
}

impl ConsumerSettings {
    pub fn new(config: &PlatformConfig, topics: &[&str]) -> Self {
        ConsumerSettings {
            topics: topics.iter().map(|t| config.topic(t)).collect(),
            group_id: config.consumer_group.clone(),
            max_attempts: None,
            retry_backoff: Duration::from_millis(200),
            // Short enough that a record flows again within seconds of the dependency's return.
            max_backoff: Duration::from_secs(5),
            statistics_interval: Duration::from_secs(5),
            concurrency: 1,
        }
    }

    /// Handles up to `n` records of a partition at once, of different keys: for a handler
    /// that runs long (a fan-out), so that it does not hold the records behind it.
    pub fn concurrently(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// The same, in the group `<service's group>-<suffix>` (a service with several loops).
    pub fn in_group(mut self, config: &PlatformConfig, suffix: &str) -> Self {
        self.group_id = format!("{}-{suffix}", config.consumer_group);
        self
    }

    /// The delays between attempts: `max_attempts - 1` of them, or without end.
    pub(super) fn retry_delays(&self) -> impl Iterator<Item = Duration> + use<> {
        let builder = ExponentialBuilder::default()
            .with_min_delay(self.retry_backoff)
            .with_max_delay(self.max_backoff)
            .with_jitter();
        match self.max_attempts {
            Some(n) => builder.with_max_times(n.saturating_sub(1) as usize),
            None => builder.without_max_times(),
        }
        .build()
    }
}

/// What every consumer loop of a service shares.
#[derive(Clone)]
pub struct ConsumerDeps {
    pub platform: PlatformConfig,
    /// Writes dead-lettered records.
    pub producer: Producer,
    pub metrics: KafkaMetrics,
    pub shutdown: Shutdown,
}

type PartitionKey = (String, i32);

/// Partitions the group assigned, handed from the rebalance callback to the loop.
type Assigned = Vec<PartitionKey>;

/// The consumer's context: pauses newly assigned partitions and hands them to the loop, stops
/// revoked partitions' tasks and commits, turns librdkafka's statistics into the consumer-lag
/// gauge and its errors into the consumer's health.
pub(super) struct GroupContext {
    group: String,
    metrics: KafkaMetrics,
    health: Check,
    joined: AtomicBool,
    assigned: mpsc::UnboundedSender<Assigned>,
    /// The cancellation of each running partition task.
    running: Mutex<HashMap<PartitionKey, CancellationToken>>,
    /// librdkafka's client errors, and the consumer's own (main and partition queues).
    client_errors: ErrorLog,
    pub(super) consumer_errors: ErrorLog,
}

impl GroupContext {
    fn labels(&self, topic: &str, partition: i32) -> PartitionLabels {
        PartitionLabels {
            topic: topic.to_owned(),
            partition: partition.to_string(),
            group: self.group.clone(),
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<PartitionKey, CancellationToken>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl ClientContext for GroupContext {
    /// Called every `statistics.interval.ms`, from the loop's poll of the main queue.
    /// `consumer_lag` is the partition's end (high watermark) minus the group's committed
    /// offset; -1 when unknown (not assigned here, or nothing committed yet), and then the
    /// series is dropped rather than left stale.
    fn stats(&self, statistics: rdkafka::Statistics) {
        if self.joined.load(Ordering::Acquire) && health::any_broker_up(&statistics) {
            self.health.set(true);
        }
        for (name, topic) in &statistics.topics {
            for (id, p) in &topic.partitions {
                // -1 is librdkafka's internal "unassigned" partition.
                if *id < 0 {
                    continue;
                }
                let labels = self.labels(name, *id);
                if p.consumer_lag >= 0 {
                    self.metrics
                        .consumer_lag
                        .get_or_create(&labels)
                        .set(p.consumer_lag);
                } else {
                    self.metrics.consumer_lag.remove(&labels);
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        health::on_error(&self.health, &self.client_errors, &error, reason);
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance
            && tpl.count() > 0
        {
            // Stop the revoked partitions' tasks before their next record: the next owner
            // starts after the last offset stored here.
            {
                let mut running = self.running();
                for e in tpl.elements() {
                    if let Some(token) = running.remove(&(e.topic().to_owned(), e.partition())) {
                        token.cancel();
                    }
                }
            }
            if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
                // "No offset stored" is normal when nothing was handled since the last commit.
                if !matches!(e, KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) {
                    tracing::warn!(error = %e, "commit on revoke failed");
                }
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                // Paused here, before the first fetch, so that no record of these partitions
                // reaches the main queue: the loop resumes each once it has its own queue.
                if tpl.count() > 0
                    && let Err(e) = consumer.pause(tpl)
                {
                    tracing::warn!(error = %e, "pausing newly assigned partitions failed");
                }
                let partitions = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_owned(), e.partition()))
                    .collect();
                let _ = self.assigned.send(partitions);
                self.joined.store(true, Ordering::Release);
                self.health.set(true);
            }
            Rebalance::Revoke(tpl) => {
                // A partition another replica now owns is that replica's to report.
                for e in tpl.elements() {
                    self.metrics
                        .consumer_lag
                        .remove(&self.labels(e.topic(), e.partition()));
                }
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance failed"),
        }
    }
}

/// One consumer loop: its settings, handler and the service's shared parts.
pub struct ConsumerLoop<H> {
    pub settings: ConsumerSettings,
    pub handler: Arc<H>,
    pub deps: ConsumerDeps,
    /// Passes once the member joined its group; fails while no broker answers.
    pub health: Check,
    /// Fails while any partition's record waits for a dependency to come back.
    pub handling: Check,
}

impl<H: Handler> ConsumerLoop<H> {
    /// Runs until shutdown; then every partition task finishes its record, and the stored
    /// offsets are committed so that a restart resumes exactly after them.
    pub async fn run(self) -> Result<(), KafkaError> {
        let ConsumerLoop {
            settings,
            handler,
            deps,
            health,
            handling,
        } = self;
        handling.set(true);
        let (assigned_tx, mut assigned) = mpsc::unbounded_channel();
        let consumer: Arc<StreamConsumer<GroupContext>> = Arc::new(
            service_client(&deps.platform)
                .set("group.id", &settings.group_id)
                // Offsets are stored by us after handling, and committed by the client in the
                // background (every 1 s), on revoke and on shutdown.
                .set("enable.auto.commit", "true")
                .set("auto.commit.interval.ms", "1000")
                .set("enable.auto.offset.store", "false")
                .set("auto.offset.reset", "earliest")
                .set("session.timeout.ms", "30000")
                // Partitions added while running (a major event) are picked up within 10 s.
                .set("topic.metadata.refresh.interval.ms", "10000")
                .set(
                    "statistics.interval.ms",
                    settings.statistics_interval.as_millis().to_string(),
                )
                .create_with_context(GroupContext {
                    group: settings.group_id.clone(),
                    metrics: deps.metrics.clone(),
                    health,
                    joined: AtomicBool::new(false),
                    assigned: assigned_tx,
                    running: Mutex::new(HashMap::new()),
                    client_errors: ErrorLog::new("kafka client error"),
                    consumer_errors: ErrorLog::new("consumer error"),
                })?,
        );
        let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        tracing::info!(topics = ?settings.topics, group = %settings.group_id, "consumer started");

        let partition = Arc::new(PartitionRun {
            settings: settings.clone(),
            handler,
            deps: deps.clone(),
            stalled: Stalled {
                check: handling,
                partitions: Arc::new(Mutex::new(0)),
            },
        });
        let mut tasks = JoinSet::new();
        // Records that reached the main queue before their partition had its own (should not
        // happen: partitions are paused until split), handed to the partition's task.
        let mut strays: HashMap<PartitionKey, mpsc::UnboundedSender<Record>> = HashMap::new();
        loop {
            tokio::select! {
                // Shutdown first: once asked to stop we start nothing new.
                biased;
                _ = deps.shutdown.requested() => break,
                Some(partitions) = assigned.recv() => {
                    let mut resume = TopicPartitionList::new();
                    for (topic, id) in partitions {
                        let Some(queue) = consumer.split_partition_queue(&topic, id) else {
                            tracing::error!(%topic, partition = id, "no queue for an assigned partition");
                            continue;
                        };
                        let token = deps.shutdown.child_token();
                        let (stray_tx, stray_rx) = mpsc::unbounded_channel();
                        strays.insert((topic.clone(), id), stray_tx);
                        consumer
                            .context()
                            .running()
                            .insert((topic.clone(), id), token.clone());
                        tasks.spawn(partition.clone().run(
                            consumer.clone(),
                            queue,
                            stray_rx,
                            token,
                        ));
                        resume.add_partition(&topic, id);
                    }
                    if let Err(e) = consumer.resume(&resume) {
                        tracing::error!(error = %e, "resuming assigned partitions failed");
                    }
                }
                // The main queue: rebalances, statistics and errors are served by this poll.
                m = consumer.recv() => match m {
                    Ok(m) => {
                        let record = Record::from_message(&m);
                        drop(m);
                        let key = (record.topic.clone(), record.partition);
                        tracing::warn!(topic = %key.0, partition = key.1, "record on the main queue, handed to its partition");
                        // Not ours (any more) when absent: the owner reads it from the
                        // committed offset.
                        if let Some(tx) = strays.get(&key) {
                            let _ = tx.send(record);
                        }
                    }
                    Err(e) => {
                        consumer.context().consumer_errors.warn(&e, "main queue");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                },
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Err(e) = done && e.is_panic() {
                        tracing::error!(error = %e, "a partition task panicked");
                    }
                    strays.retain(|_, tx| !tx.is_closed());
                }
            }
        }

        // Every partition task finishes the record it holds (the shutdown cancelled them all).
        while tasks.join_next().await.is_some() {}
        match consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => {
                tracing::info!(group = %settings.group_id, "consumer stopped, offsets committed")
            }
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => tracing::warn!(error = %e, "final commit failed"),
        }
        consumer.unsubscribe();
        Ok(())
    }

    /// Runs the loop as a drained worker of the shutdown. If the loop fails (the consumer cannot
    /// be created or subscribed), the whole service shuts down rather than run half-deaf.
    pub fn spawn(self) {
        let shutdown = self.deps.shutdown.clone();
        let group = self.settings.group_id.clone();
        shutdown.clone().spawn(async move {
            if let Err(e) = self.run().await {
                tracing::error!(error = %e, %group, "consumer failed; shutting down");
                shutdown.trigger();
            }
        });
    }
}

/// Runs a consumer loop as a drained worker of `deps.shutdown` (see [`ConsumerLoop::spawn`]),
/// with a health check that is not registered anywhere.
pub fn spawn_consumer<H: Handler>(
    deps: &ConsumerDeps,
    settings: ConsumerSettings,
    handler: Arc<H>,
) {
    ConsumerLoop {
        health: Check::new(format!("kafka consumer {}", settings.group_id)),
        handling: Check::new(format!("kafka consumer {} handling", settings.group_id)),
        settings,
        handler,
        deps: deps.clone(),
    }
    .spawn();
}
