//! `just bench-web`: the myNEWS feed page rendered by web at a fixed 200 requests/s, beside the
//! `GetFeed` call it is built from at the same rate (its baseline: what a page costs on top of
//! the feed is templates, the profile read for the chips, and HTTP).
//!
//! Loads `BENCH_STORIES` stories (default 20,000, the BBC corpus under new ids, through the
//! indexer's own write path) and `BENCH_USERS` readers (default 2,000, each following two or
//! three topics), signs each in through the development sign-in, and warms each reader's first
//! page once (a reader who opened the app recently). Then drives, open-loop for
//! `BENCH_SECONDS` (default 20) each: `GetFeed` over gRPC, then `GET /` over HTTP with the
//! reader's session. Prints p50/p99/max of both and the ratios. Absolute figures depend on the
//! machine; never run in CI.

#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use newsroom_e2e::bench::{Stats, drive, ms, topic_of};
use newsroom_e2e::{Pipeline, Service, data_file};
use newsroom_proto::v1::recommendation_service_client::RecommendationServiceClient;
use newsroom_proto::v1::{EnrichedStory, Enrichment, Entity, GetFeedRequest, TopicScore};
use newsroom_recommendation::store::FeedStore;

const RATE: f64 = 200.0;

fn line(name: &str, s: &Stats) {
    println!(
        "{name:<34} {:>8.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
        s.rate(),
        ms(s.pct(0.5)),
        ms(s.pct(0.99)),
        ms(s.pct(1.0))
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    newsroom_platform::refuse_debug_build("bench-web");
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (stories, users) = (env("BENCH_STORIES", 20_000), env("BENCH_USERS", 2_000));
    let secs = Duration::from_secs(env("BENCH_SECONDS", 20) as u64);
    let pipeline = Pipeline::start_with(
        &[Service::Recommendation],
        &[
            ("RUST_LOG", "error"),
            ("NEWSROOM_INDEX_MAX_STORIES", "100000"),
        ],
    )
    .await;
    let redis = pipeline.redis().await;
    let store = FeedStore::new(redis.clone(), Duration::from_secs(14 * 86400), 100_000);
    let articles: Vec<newsroom_cli::bbc::BbcArticle> = data_file("bbc-news.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("bbc line"))
        .collect();
    let now = std::time::SystemTime::now();
    let t = Instant::now();
    futures::stream::iter(0..stories)
        .map(|i| {
            let store = store.clone();
            let a = &articles[i % articles.len()];
            let mut story = a.to_story();
            story.id = format!("bench-{i}");
            story.version = 1;
            story.body_html.truncate(600);
            story.published_at = Some((now - Duration::from_secs((stories - i) as u64 * 5)).into());
            let enriched = EnrichedStory {
                story: Some(story),
                enrichment: Some(Enrichment {
                    topics: vec![TopicScore {
                        code: topic_of(&a.category).into(),
                        label: String::new(),
                        score: 0.9,
                    }],
                    entities: vec![Entity {
                        name: format!("Person {}", i % 500),
                        kind: 1,
                        salience: 0.5,
                        mentions: 2,
                        aliases: Vec::new(),
                    }],
                    summary: a.body.chars().take(200).collect(),
                    breaking_score: 0.4,
                    ..Default::default()
                }),
                accepted_at: None,
            };
            async move { store.apply(&enriched).await.expect("apply") }
        })
        .buffer_unordered(64)
        .count()
        .await;
    newsroom_e2e::seed_readers(&redis, users).await?;
    println!(
        "loaded {stories} stories and {users} readers in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let (web, _stop) = pipeline.start_web(&[("RUST_LOG", "error")]).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(64)
        .build()?;
    let mut cookies = Vec::with_capacity(users);
    for u in 0..users {
        let r = http
            .post(format!("http://{web}/signin/dev"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("user=user-{u}"))
            .send()
            .await?;
        let c = r.headers()["set-cookie"]
            .to_str()?
            .split(';')
            .next()
            .unwrap_or_default()
            .to_owned();
        cookies.push(c);
    }
    let cookies = Arc::new(cookies);
    // Each reader opened the app recently: their first page is prepared.
    futures::stream::iter(0..users)
        .map(|u| {
            let (http, cookies) = (http.clone(), cookies.clone());
            async move {
                let r = http
                    .get(format!("http://{web}/"))
                    .header("cookie", &cookies[u])
                    .send()
                    .await;
                assert!(r.is_ok_and(|r| r.status().is_success()), "a warm-up page");
            }
        })
        .buffer_unordered(16)
        .count()
        .await;

    let rec = RecommendationServiceClient::new(pipeline.channel(Service::Recommendation).await);
    let grpc = drive(32, secs, Some(RATE), u64::MAX, move |i| {
        let mut rec = rec.clone();
        async move {
            rec.get_feed(GetFeedRequest {
                user_id: format!("user-{}", i as usize % users),
                limit: 20,
                cursor: String::new(),
            })
            .await
            .expect("GetFeed");
        }
    })
    .await;
    let bytes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = bytes.clone();
    let page = drive(32, secs, Some(RATE), u64::MAX, move |i| {
        let (http, cookies, counted) = (http.clone(), cookies.clone(), counted.clone());
        async move {
            let r = http
                .get(format!("http://{web}/"))
                .header("cookie", &cookies[i as usize % users])
                .send()
                .await
                .expect("GET /");
            assert!(r.status().is_success(), "GET / {}", r.status());
            let body = r.bytes().await.expect("page body");
            counted.fetch_add(body.len(), std::sync::atomic::Ordering::Relaxed);
        }
    })
    .await;
    println!();
    println!(
        "at a fixed {RATE} requests/s for {} s each, {users} readers:",
        secs.as_secs()
    );
    line("GetFeed (gRPC, the baseline)", &grpc);
    line("GET / (myNEWS page, HTML)", &page);
    println!(
        "page / GetFeed: p50 ×{:.2}, p99 ×{:.2}; average page {:.1} KB",
        ms(page.pct(0.5)) / ms(grpc.pct(0.5)).max(1e-9),
        ms(page.pct(0.99)) / ms(grpc.pct(0.99)).max(1e-9),
        bytes.load(std::sync::atomic::Ordering::Relaxed) as f64
            / page.latencies.len().max(1) as f64
            / 1024.0
    );
    println!("target: page render p99 ≤ 50 ms at 200 requests/s");
    pipeline.stop().await;
    Ok(())
}
