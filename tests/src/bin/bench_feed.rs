//! `just bench-feed`: `GetFeed` under load against the real Redis, beside the same server's
//! `grpc.health.v1.Health/Check` with the same client and concurrency (the limit of gRPC on
//! this machine).
//!
//! Loads `BENCH_STORIES` stories (default 100,000: the BBC corpus repeated under new ids, each
//! with its category's IPTC topic, written through the service's own indexer) and
//! `BENCH_USERS` readers (default 100,000, each following two or three topics); a tenth of
//! them are *active* (they opened the app recently: one request each before measuring). Then
//! drives `GetFeed` with a Rust gRPC load client: active readers at a fixed 2,000 requests/s
//! (p50/p99), active readers unpaced at 64 in flight against `Health/Check` (the ratio), and
//! readers not seen recently (the full ranking path) unpaced. The whole run is repeated at a
//! tenth of the size first, so the cost per request can be compared as the data grows
//! ten-fold. Absolute figures depend on the machine; never run in CI.

#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use newsroom_e2e::bench::{Stats, drive, ms, topic_of};
use newsroom_e2e::{Pipeline, Service, data_file};
use newsroom_proto::v1::recommendation_service_client::RecommendationServiceClient;
use newsroom_proto::v1::{EnrichedStory, Enrichment, GetFeedRequest, TopicScore};
use newsroom_recommendation::feed;
use newsroom_recommendation::store::FeedStore;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

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
    let mut rows = Vec::new();
    for (stories, users) in [(stories / 10, users / 10), (stories, users)] {
        println!();
        println!(
            "== {stories} stories, {users} readers ({} active)",
            users / 10
        );
        rows.push(run(stories, users, Duration::from_secs(secs)).await?);
    }
    println!();
    println!("how cost grows (ten-fold stories and readers):");
    println!(
        "{:<22} {:>14} {:>14} {:>14} {:>12} {:>12}",
        "size", "active rps", "health rps", "ratio", "cold rps", "p99 @2000"
    );
    for r in &rows {
        println!(
            "{:<22} {:>14.0} {:>14.0} {:>14.2} {:>12.0} {:>9.2} ms",
            r.size,
            r.active_rps,
            r.health_rps,
            r.active_rps / r.health_rps,
            r.cold_rps,
            r.paced_p99_ms
        );
    }
    println!();
    println!("targets: active GetFeed ≥ 0.5 × Health/Check unpaced; p99 ≤ 10 ms at 2000 req/s");
    Ok(())
}

/// One size's figures, for the closing table.
struct Row {
    size: String,
    active_rps: f64,
    health_rps: f64,
    cold_rps: f64,
    paced_p99_ms: f64,
}

async fn run(stories: usize, users: usize, dur: Duration) -> anyhow::Result<Row> {
    // The service's defaults, but BENCH_PREPARED_READERS (0: without prepared first pages, the
    // path before them).
    let prepared_readers = std::env::var("BENCH_PREPARED_READERS").ok();
    let mut env = vec![
        ("RUST_LOG", "error"),
        ("NEWSROOM_INDEX_MAX_STORIES", "100000"),
    ];
    if let Some(n) = &prepared_readers {
        env.push(("NEWSROOM_FEED_PREPARED_READERS", n.as_str()));
    }
    let pipeline = Pipeline::start_with(&[Service::Recommendation], &env).await;
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
    let t = Instant::now();
    newsroom_e2e::seed_readers(&redis_store, users).await?;
    println!(
        "loaded {users} readers in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // The ranking alone, in process, without gRPC: where the time goes. Readers past the
    // active tenth, so the service's own entries are not touched.
    let prepared = feed::Prepared::new(0);
    let t = Instant::now();
    for u in 0..200 {
        feed::page(
            &store,
            &prepared,
            &format!("user-{}", users - 1 - u),
            20,
            None,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    println!(
        "in-process first page ranked afresh, one at a time: {:.2} ms each",
        ms(t.elapsed()) / 200.0
    );

    // BENCH_CONNECTIONS HTTP/2 connections (default 1, as ghz), requests spread over them.
    let connections = std::env::var("BENCH_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1usize)
        .max(1);
    let mut channels = Vec::new();
    for _ in 0..connections {
        channels.push(pipeline.channel(Service::Recommendation).await);
    }
    let channels = Arc::new(channels);
    let channel_for = {
        let channels = channels.clone();
        move |i: u64| channels[i as usize % channels.len()].clone()
    };
    let active = (users / 10).max(1) as u64;
    let get_feed = move |channel: tonic::transport::Channel, user: String| async move {
        RecommendationServiceClient::new(channel)
            .get_feed(GetFeedRequest {
                user_id: user,
                limit: 20,
                cursor: String::new(),
            })
            .await
            .expect("GetFeed");
    };
    // Active readers opened the app recently: one request each, unmeasured.
    let t = Instant::now();
    futures::stream::iter(0..active)
        .map(|u| get_feed(channel_for(u), format!("user-{u}")))
        .buffer_unordered(16)
        .count()
        .await;
    println!(
        "{active} active readers' first requests (ranked afresh): {:.0} req/s",
        active as f64 / t.elapsed().as_secs_f64()
    );
    let sample = RecommendationServiceClient::new(channel_for(0))
        .get_feed(GetFeedRequest {
            user_id: "user-0".into(),
            limit: 20,
            cursor: String::new(),
        })
        .await?
        .into_inner();
    println!(
        "a first page of 20 is {} bytes on the wire (Health/Check's answer: 2)",
        newsroom_proto::Message::encoded_len(&sample)
    );
    // A spread of readers (a multiplicative hash of the request number) among `n` from `from`.
    let spread = |from: u64, n: u64| {
        let channel_for = channel_for.clone();
        move |i: u64| {
            let user = format!("user-{}", from + i.wrapping_mul(2_654_435_761) % n);
            get_feed(channel_for(i), user)
        }
    };
    let health = {
        let channel_for = channel_for.clone();
        move |i: u64| {
            let mut client = HealthClient::new(channel_for(i));
            async move {
                client
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                    .expect("Health/Check");
            }
        }
    };

    println!();
    println!(
        "{:<40} {:>10} {:>9} {:>9}",
        "load", "req/s", "p50 ms", "p99 ms"
    );
    let row = |name: &str, f: &Stats| {
        println!(
            "{:<40} {:>10.0} {:>9.2} {:>9.2}",
            name,
            f.rate(),
            ms(f.pct(0.5)),
            ms(f.pct(0.99)),
        );
    };
    let paced = drive(64, dur, Some(2000.0), u64::MAX, spread(0, active)).await;
    row("GetFeed, active readers, 2000 req/s", &paced);
    // GetFeed and Health/Check in alternating quarters, so that the machine's noise (other
    // tenants, a Redis fork) falls on both alike.
    let (mut active_rps, mut health_rps) = (Stats::default(), Stats::default());
    for _ in 0..4 {
        active_rps.add(drive(64, dur / 4, None, u64::MAX, spread(0, active)).await);
        health_rps.add(drive(64, dur / 4, None, u64::MAX, health.clone()).await);
    }
    row("GetFeed, active readers, 64 in flight", &active_rps);
    row("Health/Check, 64 in flight", &health_rps);
    // Readers not seen: each request ranks afresh (a reader coming back after a while); each
    // reader once at most, so none is served from an entry of this run.
    let cold_n = (users as u64 - active).max(1);
    let cold = drive(64, dur, None, cold_n, spread(active, cold_n)).await;
    row("GetFeed, readers not seen, 64 in flight", &cold);
    println!(
        "ratio GetFeed (active) / Health/Check: {:.2}",
        active_rps.rate() / health_rps.rate()
    );
    pipeline.stop().await;
    Ok(Row {
        size: format!("{stories}/{users}"),
        active_rps: active_rps.rate(),
        health_rps: health_rps.rate(),
        cold_rps: cold.rate(),
        paced_p99_ms: ms(paced.pct(0.99)),
    })
}
