//! `just bench-feed`: `GetFeed` under load against the real Redis, beside a raw Redis baseline.
//!
//! Loads `BENCH_STORIES` stories (default 100,000: the BBC corpus repeated under new ids, each
//! with its category's IPTC topic, written through the service's own indexer) and
//! `BENCH_USERS` readers (default 100,000, each following two or three topics). Then drives
//! `GetFeed` for random readers with a Rust gRPC load client: a fixed rate of 2,000 requests/s,
//! and closed-loop saturation at rising concurrency. Beside each figure, a raw Redis client
//! does the same number of sequential round trips per request (`PING`s), and the ratio is
//! printed. Absolute figures depend on the machine; never run in CI.

#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use newsroom_e2e::{Pipeline, Service, data_file};
use newsroom_platform::redis::redis;
use newsroom_proto::v1::recommendation_service_client::RecommendationServiceClient;
use newsroom_proto::v1::{EnrichedStory, Enrichment, GetFeedRequest, TopicScore};
use newsroom_recommendation::store::{FeedStore, IndexKey};

/// Redis round trips of one first-page `GetFeed` on a first-page miss (counted in feed.rs):
/// the reader (one pipeline), the candidate indexes (one pipeline), the snapshot write, plus
/// the cards, the trending lists (global and per followed topic) and the page's stories when
/// the replica's 5 s in-process copies do not have them — 3 to 9; the baseline does 6.
const ROUND_TRIPS: usize = 6;

fn topic_of(category: &str) -> &'static str {
    match category {
        "business" => "medtop:04000000",
        "entertainment" => "medtop:01000000",
        "politics" => "medtop:11000000",
        "sport" => "medtop:15000000",
        _ => "medtop:13000000",
    }
}

struct Stats {
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Stats {
    fn pct(&self, p: f64) -> Duration {
        let mut l = self.latencies.clone();
        l.sort();
        l.get(((l.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or_default()
    }
    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs `op` from `concurrency` workers for `duration`; with `rate`, paced open-loop.
async fn drive<F, Fut>(concurrency: usize, duration: Duration, rate: Option<f64>, op: F) -> Stats
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let op = op.clone();
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = w as u64;
            let interval = rate.map(|r| Duration::from_secs_f64(concurrency as f64 / r));
            let mut next = Instant::now();
            while started.elapsed() < duration {
                if let Some(iv) = interval {
                    tokio::time::sleep_until(next.into()).await;
                    next += iv;
                }
                let t = Instant::now();
                op(i).await;
                lat.push(t.elapsed());
                i += concurrency as u64;
            }
            lat
        }));
    }
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.await.unwrap());
    }
    Stats {
        latencies,
        elapsed: started.elapsed(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    newsroom_platform::refuse_debug_build("bench-feed");
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (stories, users) = (env("BENCH_STORIES", 100_000), env("BENCH_USERS", 100_000));
    let secs = env("BENCH_SECONDS", 10) as u64;
    let pipeline = Pipeline::start_with(
        &[Service::Recommendation],
        &[
            ("RUST_LOG", "error"),
            ("NEWSROOM_INDEX_MAX_STORIES", "100000"),
        ],
    )
    .await;
    let redis_store = pipeline.redis().await;
    let store = FeedStore::new(
        redis_store.clone(),
        Duration::from_secs(14 * 86400),
        100_000,
    );

    // Stories, through the indexer's own write path.
    let articles: Vec<newsroom_cli::bbc::BbcArticle> = data_file("bbc-news.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("bbc line"))
        .collect();
    let t = Instant::now();
    let now = std::time::SystemTime::now();
    futures::stream::iter(0..stories)
        .map(|i| {
            let store = store.clone();
            let a = &articles[i % articles.len()];
            let mut story = a.to_story();
            story.id = format!("bench-{i}");
            story.version = 1;
            story.body_html.truncate(600);
            story.published_at = Some((now - Duration::from_secs((stories - i) as u64 * 5)).into());
            let code = topic_of(&a.category);
            let enriched = EnrichedStory {
                story: Some(story),
                enrichment: Some(Enrichment {
                    topics: vec![TopicScore {
                        code: code.into(),
                        label: String::new(),
                        score: 0.9,
                    }],
                    breaking_score: if i % 97 == 0 { 0.9 } else { 0.4 },
                    ..Default::default()
                }),
                accepted_at: None,
            };
            async move { store.apply(&enriched).await.expect("apply") }
        })
        .buffer_unordered(64)
        .count()
        .await;
    println!(
        "loaded {stories} stories in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // Readers, each following two or three topics.
    let codes = [
        "medtop:04000000",
        "medtop:01000000",
        "medtop:11000000",
        "medtop:15000000",
        "medtop:13000000",
    ];
    let t = Instant::now();
    let mut conn = redis_store.conn();
    for chunk in (0..users).collect::<Vec<_>>().chunks(1000) {
        let mut pipe = redis::pipe();
        for u in chunk {
            let follows: Vec<String> = (0..2 + u % 2)
                .map(|k| {
                    IndexKey::new(
                        newsroom_proto::v1::TargetKind::Topic,
                        codes[(u + k * 2) % 5],
                    )
                    .member()
                })
                .collect();
            pipe.sadd(redis_store.key(format!("rec:follows:user-{u}")), follows)
                .ignore();
        }
        pipe.query_async::<()>(&mut conn).await?;
    }
    println!(
        "loaded {users} readers in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // The ranking alone, in process, without gRPC: where the time goes.
    let t = Instant::now();
    for u in 0..200 {
        newsroom_recommendation::feed::page(&store, &format!("user-{u}"), 20, None)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    println!(
        "in-process first page, one at a time: {:.2} ms each",
        ms(t.elapsed()) / 200.0
    );

    let channel = pipeline.channel(Service::Recommendation).await;
    let feed = {
        let channel = channel.clone();
        move |i: u64| {
            let mut client = RecommendationServiceClient::new(channel.clone());
            // A spread of readers (a multiplicative hash of the request number).
            let user = format!("user-{}", (i.wrapping_mul(2_654_435_761)) % users as u64);
            async move {
                client
                    .get_feed(GetFeedRequest {
                        user_id: user,
                        limit: 20,
                        cursor: String::new(),
                    })
                    .await
                    .expect("GetFeed");
            }
        }
    };
    let raw = {
        let conn = redis_store.conn();
        move |_i: u64| {
            let mut conn = conn.clone();
            async move {
                for _ in 0..ROUND_TRIPS {
                    let _: String = redis::cmd("PING")
                        .query_async(&mut conn)
                        .await
                        .expect("PING");
                }
            }
        }
    };

    println!();
    println!(
        "GetFeed (limit 20) vs a raw Redis client doing {ROUND_TRIPS} sequential round trips per request"
    );
    println!(
        "{:<28} {:>10} {:>9} {:>9}   {:>10} {:>9} {:>9}   {:>6}",
        "load", "feed rps", "p50 ms", "p99 ms", "redis rps", "p50 ms", "p99 ms", "ratio"
    );
    let row = |name: &str, f: &Stats, r: &Stats| {
        println!(
            "{:<28} {:>10.0} {:>9.2} {:>9.2}   {:>10.0} {:>9.2} {:>9.2}   {:>6.2}",
            name,
            f.rate(),
            ms(f.pct(0.5)),
            ms(f.pct(0.99)),
            r.rate(),
            ms(r.pct(0.5)),
            ms(r.pct(0.99)),
            f.rate() / r.rate()
        );
    };
    let dur = Duration::from_secs(secs);
    let f = drive(64, dur, Some(2000.0), feed.clone()).await;
    let r = drive(64, dur, Some(2000.0), raw.clone()).await;
    row("fixed 2000 req/s", &f, &r);
    for c in [8, 32, 128] {
        let f = drive(c, dur, None, feed.clone()).await;
        let r = drive(c, dur, None, raw.clone()).await;
        row(&format!("saturation, {c} in flight"), &f, &r);
    }
    println!();
    println!("targets: p99 ≤ 10 ms at 2000 req/s; ≥ 5000 req/s at saturation");
    pipeline.stop().await;
    Ok(())
}
