//! `just bench-ingest`: bulk ingest through `SubmitStories` against the real broker, beside a
//! raw rdkafka producer sending the same serialized payloads with the same acks — one record
//! per story (the baseline) and the records ingest must write per story (the story
//! event, its identity entry on `stories.index`, the previous entry's tombstone for an update).
//!
//! The corpus is the BBC sample replayed with new versions (each replay changes the body, so
//! each is a new version, not a duplicate) until `BENCH_STORIES` (default 100,000) story
//! versions; the run is repeated at a tenth of that first, to show how cost grows. Prints
//! stories/s and MB/s and the ratios. Absolute figures depend on the machine; the ratio is what
//! to compare. Never run in CI.

#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt as _;
use newsroom_e2e::{Pipeline, Service, data_file};
use newsroom_platform::kafka::client_config;
use newsroom_platform::kafka::rdkafka::producer::{FutureProducer, FutureRecord};
use newsroom_platform::kafka::rdkafka::util::Timeout;
use newsroom_proto::Message as _;
use newsroom_proto::v1::ingest_service_client::IngestServiceClient;
use newsroom_proto::v1::{Story, StoryEvent, SubmitStoryRequest};

const STREAMS: usize = 4;

fn corpus(total: usize) -> Vec<Story> {
    let articles: Vec<newsroom_cli::bbc::BbcArticle> = data_file("bbc-news.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("bbc line"))
        .collect();
    (0..total)
        .map(|i| {
            let mut s = articles[i % articles.len()].to_story();
            let round = i / articles.len();
            s.body_html.push_str(&format!("<p>Update {round}.</p>"));
            s
        })
        .collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    newsroom_platform::refuse_debug_build("bench-ingest");
    let total: usize = std::env::var("BENCH_STORIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let mut rows = Vec::new();
    for n in [total / 10, total] {
        rows.push((n, run(n).await?));
    }
    println!();
    println!("how cost grows (ten-fold stories):");
    println!(
        "{:>10} {:>12} {:>14} {:>12} {:>14} {:>14}",
        "stories", "ingest/s", "µs per story", "raw/s", "ingest/raw", "ingest/same"
    );
    for (n, r) in &rows {
        println!(
            "{:>10} {:>12.0} {:>14.1} {:>12.0} {:>14.2} {:>14.2}",
            n,
            r.ingest,
            1e6 / r.ingest,
            r.raw,
            r.ingest / r.raw,
            r.ingest / r.same_records
        );
    }
    Ok(())
}

/// One size's rates (stories/s).
struct Rates {
    ingest: f64,
    raw: f64,
    same_records: f64,
}

/// Sends every record through `producer` with up to 8192 in flight; how many were acknowledged.
async fn send_all(
    producer: &FutureProducer,
    records: &[(String, String, Option<Vec<u8>>)],
) -> usize {
    futures::stream::iter(records.iter())
        .map(|(topic, key, payload)| async move {
            let mut record = FutureRecord::<str, [u8]>::to(topic).key(key.as_str());
            if let Some(p) = payload {
                record = record.payload(p.as_slice());
            }
            producer
                .send(record, Timeout::After(Duration::from_secs(30)))
                .await
                .is_ok()
        })
        .buffer_unordered(8192)
        .filter(|ok| futures::future::ready(*ok))
        .count()
        .await
}

async fn run(total: usize) -> anyhow::Result<Rates> {
    let stories = corpus(total);
    println!(
        "bench-ingest: {total} story versions from the BBC corpus, {STREAMS} SubmitStories streams"
    );

    // Ingest, in process, on the real broker and Redis, with a fresh prefix.
    let pipeline = Pipeline::start_with(
        &[Service::Ingest],
        &[
            ("NEWSROOM_INGEST_RATE_PER_SOURCE", "1000000"),
            ("RUST_LOG", "error"),
        ],
    )
    .await;
    let channel = pipeline.channel(Service::Ingest).await;

    let started = Instant::now();
    let per_stream = total.div_ceil(STREAMS);
    let mut tasks = Vec::new();
    for chunk in stories.chunks(per_stream) {
        let mut client = IngestServiceClient::new(channel.clone());
        let requests: Vec<SubmitStoryRequest> = chunk
            .iter()
            .map(|s| SubmitStoryRequest {
                story: Some(s.clone()),
                idempotency_key: String::new(),
            })
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut answers = client
                .submit_stories(tokio_stream::iter(requests))
                .await?
                .into_inner();
            let mut n = 0usize;
            while answers.message().await?.is_some() {
                n += 1;
            }
            anyhow::Ok(n)
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        accepted += t.await??;
    }
    let ingest_secs = started.elapsed().as_secs_f64();
    assert_eq!(accepted, total, "every story answered");

    // The same serialized payloads, straight to Kafka with the same producer settings.
    let payloads: Vec<(String, Vec<u8>)> = stories
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut s = s.clone();
            s.id = format!("raw-{}", i % 2225);
            s.version = (i / 2225) as u32 + 1;
            let event = StoryEvent {
                story: Some(s),
                fingerprint: "0".repeat(64),
                accepted_at: Some(SystemTime::now().into()),
            };
            (
                event.story.as_ref().unwrap().id.clone(),
                event.encode_to_vec(),
            )
        })
        .collect();
    let bytes: usize = payloads.iter().map(|(_, p)| p.len()).sum();
    let config = pipeline.platform_config(Service::Ingest);
    let topic = pipeline.topic(newsroom_platform::kafka::topics::STORIES_RAW);
    let producer: FutureProducer = client_config(&config.kafka_brokers, "newsroom-bench")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        .set("message.timeout.ms", "10000")
        .create()?;
    let index_topic = pipeline.topic(newsroom_platform::kafka::topics::STORIES_INDEX);
    let one: Vec<(String, String, Option<Vec<u8>>)> = payloads
        .iter()
        .map(|(k, p)| (topic.clone(), k.clone(), Some(p.clone())))
        .collect();
    // What ingest writes per story: the event, its identity entry, and for an update the
    // tombstone of the previous version's entry.
    let same: Vec<(String, String, Option<Vec<u8>>)> = payloads
        .iter()
        .enumerate()
        .flat_map(|(i, (k, p))| {
            let version = (i / 2225) as u32 + 1;
            let entry = newsroom_proto::v1::StoryIndexEntry {
                story_id: k.clone(),
                version,
                fingerprint: "0".repeat(64),
            };
            let mut r = vec![(topic.clone(), k.clone(), Some(p.clone()))];
            r.push((
                index_topic.clone(),
                format!("same-{k}/{version}"),
                Some(entry.encode_to_vec()),
            ));
            if version > 1 {
                r.push((
                    index_topic.clone(),
                    format!("same-{k}/{}", version - 1),
                    None,
                ));
            }
            r
        })
        .collect();
    let started = Instant::now();
    let sent = send_all(&producer, &one).await;
    let raw_secs = started.elapsed().as_secs_f64();
    assert_eq!(sent, total, "every raw record acknowledged");
    let started = Instant::now();
    let sent = send_all(&producer, &same).await;
    let same_secs = started.elapsed().as_secs_f64();
    assert_eq!(sent, same.len(), "every record acknowledged");

    let mb = bytes as f64 / 1e6;
    let (ingest_rate, raw_rate) = (total as f64 / ingest_secs, total as f64 / raw_secs);
    println!();
    println!(
        "{:<34} {:>12} {:>10} {:>9}",
        "", "stories/s", "MB/s", "seconds"
    );
    println!(
        "{:<34} {:>12.0} {:>10.1} {:>9.1}",
        "ingest SubmitStories (acks=all)",
        ingest_rate,
        mb / ingest_secs,
        ingest_secs
    );
    println!(
        "{:<34} {:>12.0} {:>10.1} {:>9.1}",
        "raw rdkafka producer (baseline)",
        raw_rate,
        mb / raw_secs,
        raw_secs
    );
    let same_rate = total as f64 / same_secs;
    println!(
        "{:<34} {:>12.0} {:>10.1} {:>9.1}",
        "raw, ingest's records per story",
        same_rate,
        mb / same_secs,
        same_secs
    );
    println!();
    println!(
        "ratio ingest/raw: {:.2}  (target ≥ 0.8); ingest/raw with ingest's records: {:.2}",
        ingest_rate / raw_rate,
        ingest_rate / same_rate
    );
    println!(
        "payload: {:.1} MB, {:.0} bytes per story on average",
        mb,
        bytes as f64 / total as f64
    );
    pipeline.stop().await;
    Ok(Rates {
        ingest: ingest_rate,
        raw: raw_rate,
        same_records: same_rate,
    })
}
