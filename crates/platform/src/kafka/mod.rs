//! Kafka: the system of record, one module per concern.
//!
//! Delivery is at-least-once everywhere (ARCHITECTURE.md):
//! - [`client`] — how every client (producer, consumer, admin, CLI, tests) is configured;
//! - [`topics`] — topic names, [`TOPICS`] with partitions and retention, [`ensure_topics`];
//! - [`producer`] — the idempotent producer: [`Producer::send`] resolves only once Kafka
//!   acknowledged the record, inside a producer span whose context travels in the headers;
//! - [`record`] — a consumed [`Record`] and [`Record::decode`], which turns a record that is
//!   not what it should be into poison;
//! - [`handler`] — the [`Handler`] a consumer runs, and [`HandlerError`]: poison or retryable;
//! - [`consumer`] — the group consumer: a task per assigned partition, offsets stored after the
//!   [`Handler`] finished, commits on revoke and shutdown, retries, the consumer's health;
//! - [`dlq`] — poison (and retries exhausted, where a consumer bounds them) to `<topic>.dlq` with headers saying why;
//! - [`dead_letters`] — `DeadLetterService`, which every service serves: its DLQs listed, and a
//!   dead letter replayed into its source topic;
//! - [`replay`](mod@replay) — reading a topic outside the group: [`replay`](replay::replay) a compacted
//!   topic into a cache, [`values_for_key`];
//! - `health` — a client's health from librdkafka's errors and statistics (readiness).

pub mod client;
pub mod consumer;
pub mod dead_letters;
pub mod dlq;
pub mod handler;
mod health;
mod inflight;
mod partition;
pub mod producer;
pub mod record;
pub mod replay;
pub mod topics;

pub use rdkafka;

pub use client::{client_config, named_client, reader_config, service_client};
pub use consumer::{ConsumerDeps, ConsumerLoop, ConsumerSettings, spawn_consumer};
pub use dead_letters::DeadLetters;
pub use dlq::{dlq_headers, dlq_topic};
pub use handler::{Failure, Handler, HandlerError};
pub use health::ErrorLog;
pub use producer::{Delivered, ProduceError, Producer};
pub use record::Record;
pub use replay::{follow_from_start, replay, replay_headers, values_for_key};
pub use topics::{TOPICS, TopicSpec, ensure_topics};
