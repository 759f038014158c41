//! `newsroom.v1.DeadLetterService`, served by every service beside its own API: the dead
//! letters of the topics it consumes (`<topic>.dlq`, see [`super::dlq`]) listed newest first,
//! and one written back to its source topic for the consumer to handle again, after the cause
//! is fixed (a stage repaired, a configuration corrected, a bug deployed away).
//!
//! A replayed record is the original — key, value and headers, without the `dlq.*` ones — plus
//! the replay headers (`newsroom.replay` = `dlq`, `newsroom.replay.source` =
//! `<dlq>/<partition>/<offset>`). Only a DLQ of a topic this service consumes can be read or
//! replayed, and only into that topic. Editors (the console) and operators may call it.
//!
//! Reads never join a group or commit: a short-lived reader assigned to the partitions it
//! needs, at most [`READS_AT_ONCE`] at a time per service.

use std::sync::Arc;
use std::time::Duration;

use newsroom_proto::v1::dead_letter_service_server::{DeadLetterService, DeadLetterServiceServer};
use newsroom_proto::v1::{
    DeadLetter, DeadLetterQueue, ListDeadLettersRequest, ListDeadLettersResponse,
    ReplayDeadLetterRequest, ReplayDeadLetterResponse,
};
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, Headers as _, Message as _, OwnedHeaders};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use tonic::{Request, Response, Status};

use super::client::reader_config;
use super::dlq::{dlq_headers, dlq_topic};
use super::producer::Producer;
use super::replay::{partition_ids, replay_headers, retry_briefly};
use crate::auth::{Auth, Role};
use crate::config::PlatformConfig;

/// Dead-letter reads running at once per service; more wait.
pub const READS_AT_ONCE: usize = 2;
/// Dead letters per DLQ when the request gives no limit, and the most it may ask for.
const DEFAULT_LIMIT: u32 = 20;
const MAX_LIMIT: u32 = 200;
/// How long a read waits for the records it knows are there.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The service's dead letters: what [`crate::service::Service::dead_letters`] serves.
#[derive(Clone)]
pub struct DeadLetters {
    config: PlatformConfig,
    producer: Producer,
    auth: Auth,
    /// The topics the service consumes (full names); their DLQs are the ones served.
    sources: Arc<Vec<String>>,
    reads: Arc<tokio::sync::Semaphore>,
}

impl DeadLetters {
    pub fn new(
        config: PlatformConfig,
        producer: Producer,
        auth: Auth,
        sources: Vec<String>,
    ) -> Self {
        DeadLetters {
            config,
            producer,
            auth,
            sources: Arc::new(sources),
            reads: Arc::new(tokio::sync::Semaphore::new(READS_AT_ONCE)),
        }
    }

    pub fn into_server(self) -> DeadLetterServiceServer<Self> {
        DeadLetterServiceServer::new(self)
    }

    fn queues(&self) -> Vec<String> {
        self.sources.iter().map(|s| dlq_topic(s)).collect()
    }

    /// The source topic of a DLQ of this service, or INVALID_ARGUMENT naming the field.
    fn source_of(&self, dlq: &str) -> Result<&str, Status> {
        self.sources
            .iter()
            .find(|s| dlq_topic(s) == dlq)
            .map(String::as_str)
            .ok_or_else(|| {
                Status::invalid_argument(format!(
                    "topic: {dlq:?} is not a dead-letter queue of this service (it has {})",
                    self.queues().join(", ")
                ))
            })
    }

    fn reader(&self) -> Result<StreamConsumer, Status> {
        reader_config(&self.config, &format!("{}-dlq", self.config.consumer_group))
            .create()
            .map_err(unavailable)
    }

    /// The newest `limit` dead letters of each partition of `dlq`, and how many it holds.
    async fn newest(&self, dlq: &str, limit: i64) -> Result<(Vec<DeadLetter>, i64), Status> {
        let consumer = self.reader()?;
        let mut tpl = TopicPartitionList::new();
        let mut ends = Vec::new();
        let mut depth = 0;
        for p in partition_ids(&consumer, dlq).await.map_err(unavailable)? {
            let (low, high) = retry_briefly(|| {
                consumer.fetch_watermarks(dlq, p, Timeout::After(Duration::from_secs(5)))
            })
            .await
            .map_err(unavailable)?;
            depth += high - low;
            if high > low {
                let from = low.max(high - limit);
                tpl.add_partition_offset(dlq, p, Offset::Offset(from))
                    .map_err(unavailable)?;
                ends.push((p, high));
            }
        }
        let mut letters = Vec::new();
        if ends.is_empty() {
            return Ok((letters, depth));
        }
        consumer.assign(&tpl).map_err(unavailable)?;
        while !ends.is_empty() {
            let m = tokio::time::timeout(READ_TIMEOUT, consumer.recv())
                .await
                .map_err(|_| {
                    Status::unavailable(format!("{dlq}: no record within the read timeout"))
                })?
                .map_err(unavailable)?;
            let (p, o) = (m.partition(), m.offset());
            if let Some(i) = ends.iter().position(|(q, _)| *q == p) {
                letters.push(letter_of(&m));
                if o + 1 >= ends[i].1 {
                    ends.swap_remove(i);
                }
            }
        }
        Ok((letters, depth))
    }
}

fn unavailable(e: KafkaError) -> Status {
    Status::unavailable(format!("kafka: {e}"))
}

fn header<'a>(m: &'a BorrowedMessage<'_>, name: &str) -> Option<&'a str> {
    let headers = m.headers()?;
    headers
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| std::str::from_utf8(h.value?).ok())
}

fn letter_of(m: &BorrowedMessage<'_>) -> DeadLetter {
    let num = |name: &str| header(m, name).and_then(|v| v.parse::<i64>().ok());
    DeadLetter {
        topic: m.topic().to_owned(),
        partition: m.partition(),
        offset: m.offset(),
        key: m
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default(),
        source_topic: header(m, dlq_headers::TOPIC).unwrap_or_default().to_owned(),
        source_partition: num(dlq_headers::PARTITION).unwrap_or(-1) as i32,
        source_offset: num(dlq_headers::OFFSET).unwrap_or(-1),
        error: header(m, dlq_headers::ERROR).unwrap_or_default().to_owned(),
        attempts: num(dlq_headers::ATTEMPTS).unwrap_or(0) as u32,
        dead_lettered_at: m.timestamp().to_millis().map(|ms| prost_types::Timestamp {
            seconds: ms.div_euclid(1000),
            nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
        }),
        value_bytes: m.payload().map_or(0, |p| p.len() as u64),
        value_dropped: header(m, dlq_headers::VALUE_DROPPED).is_some(),
    }
}

#[tonic::async_trait]
impl DeadLetterService for DeadLetters {
    async fn list_dead_letters(
        &self,
        request: Request<ListDeadLettersRequest>,
    ) -> Result<Response<ListDeadLettersResponse>, Status> {
        self.auth
            .require(request.metadata(), &[Role::Editor, Role::Operator])
            .await?;
        let req = request.into_inner();
        let limit = match req.limit {
            0 => DEFAULT_LIMIT,
            n if n <= MAX_LIMIT => n,
            n => {
                return Err(Status::invalid_argument(format!(
                    "limit: at most {MAX_LIMIT} (got {n})"
                )));
            }
        };
        let topics = if req.topic.is_empty() {
            self.queues()
        } else {
            self.source_of(&req.topic)?;
            vec![req.topic]
        };
        let _permit = self
            .reads
            .acquire()
            .await
            .map_err(|_| Status::unavailable("stopping"))?;
        let mut response = ListDeadLettersResponse::default();
        for dlq in topics {
            let (mut letters, depth) = self.newest(&dlq, i64::from(limit)).await?;
            // Newest first: by time, then offset.
            letters.sort_by_key(|l| {
                std::cmp::Reverse((l.dead_lettered_at.map(|t| (t.seconds, t.nanos)), l.offset))
            });
            letters.truncate(limit as usize);
            response.dead_letters.extend(letters);
            response.queues.push(DeadLetterQueue { topic: dlq, depth });
        }
        Ok(Response::new(response))
    }

    async fn replay_dead_letter(
        &self,
        request: Request<ReplayDeadLetterRequest>,
    ) -> Result<Response<ReplayDeadLetterResponse>, Status> {
        let caller = self
            .auth
            .require(request.metadata(), &[Role::Editor, Role::Operator])
            .await?;
        let req = request.into_inner();
        let source = self.source_of(&req.topic)?.to_owned();
        if req.partition < 0 || req.offset < 0 {
            return Err(Status::invalid_argument(
                "partition, offset: a record's position (not negative)",
            ));
        }
        let _permit = self
            .reads
            .acquire()
            .await
            .map_err(|_| Status::unavailable("stopping"))?;
        let consumer = self.reader()?;
        let (low, high) = retry_briefly(|| {
            consumer.fetch_watermarks(
                &req.topic,
                req.partition,
                Timeout::After(Duration::from_secs(5)),
            )
        })
        .await
        .map_err(|e| Status::invalid_argument(format!("partition: {e}")))?;
        if req.offset < low || req.offset >= high {
            return Err(Status::not_found(format!(
                "{}/{}/{}: no such record (the partition holds offsets {low} to {})",
                req.topic,
                req.partition,
                req.offset,
                high - 1
            )));
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&req.topic, req.partition, Offset::Offset(req.offset))
            .map_err(unavailable)?;
        consumer.assign(&tpl).map_err(unavailable)?;
        let m = loop {
            let m = tokio::time::timeout(READ_TIMEOUT, consumer.recv())
                .await
                .map_err(|_| {
                    Status::unavailable("the record did not arrive within the read timeout")
                })?
                .map_err(unavailable)?;
            if m.offset() >= req.offset {
                break m;
            }
        };
        if m.offset() != req.offset {
            return Err(Status::not_found(format!(
                "{}/{}/{}: compacted or deleted",
                req.topic, req.partition, req.offset
            )));
        }
        if let Some(why) = header(&m, dlq_headers::VALUE_DROPPED) {
            return Err(Status::failed_precondition(format!(
                "the record was dead-lettered without its value ({why}); read it at its source position"
            )));
        }
        let origin = format!("{}/{}/{}", req.topic, req.partition, req.offset);
        let mut headers = OwnedHeaders::new();
        if let Some(hs) = m.headers() {
            for h in hs.iter().filter(|h| {
                !h.key.starts_with("dlq.") && !h.key.starts_with(replay_headers::REPLAY)
            }) {
                headers = headers.insert(Header {
                    key: h.key,
                    value: h.value,
                });
            }
        }
        headers = headers
            .insert(Header {
                key: replay_headers::REPLAY,
                value: Some("dlq"),
            })
            .insert(Header {
                key: replay_headers::SOURCE,
                value: Some(origin.as_str()),
            });
        let key = m
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default();
        let at = self
            .producer
            .send_with_headers(&source, &key, m.payload(), headers)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        tracing::info!(target: "newsroom::audit", dlq = %origin, to = %source, by = %caller.label(), "dead letter replayed");
        Ok(Response::new(ReplayDeadLetterResponse {
            topic: source,
            partition: at.partition,
            offset: at.offset,
        }))
    }
}
