//! `just bench-surge`: the night of an election on one machine.
//!
//! The four services run on the real broker and Redis, each its own process (the release
//! binaries; the load, the phones and this report in this one). After a
//! quiet minute (`NORMAL_RATE` stories/s, default 20, and `QUIET_FEEDS` GetFeed/s, default 100)
//! comes the surge for `SURGE_SECONDS` (default 120): ten times the stories (`SURGE_RATE`,
//! default 200/s, BBC copy filed by three wires as near-duplicates of each other), readers
//! fetching feeds at `SURGE_FEEDS` (default 1,000/s), and half-way through a flash story to
//! `BENCH_DEVICES` (default 1,000,000) webhook devices. It prints, for the quiet phase and the
//! surge: story accepted → in a follower's first page (probe readers, one probe story a second),
//! accepted → first alert (an alert-level story every 5 s to five devices), GetFeed p99, and
//! each consumer group's worst lag and how long it took to drain once the surge ended; then the
//! flash's delivery. It fails if an acknowledged story never reached `stories.enriched` or a
//! device got the same alert twice. Never run in CI (`just test` runs the short
//! `tests/tests/pipeline.rs` checks of the same promises).

#![allow(clippy::print_stdout)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use newsroom_e2e::phones::Phones;
use newsroom_e2e::process::ServiceProcess;
use newsroom_e2e::{BBC_TOPICS, Pipeline, Service, data_file};
use newsroom_platform::kafka::topics;
use newsroom_platform::redis::redis;
use newsroom_proto::Message as _;
use newsroom_proto::v1::ingest_service_client::IngestServiceClient;
use newsroom_proto::v1::recommendation_service_client::RecommendationServiceClient;
use newsroom_proto::v1::{
    Channel as DeviceChannel, Device, EnrichedStory, FollowRequest, FollowTarget, GetFeedRequest,
    Story, SubmitStoryRequest, TargetKind,
};
use tonic::transport::Channel;

const TECH: &str = "medtop:13000000";
/// The source allowed to send alert-level urgency.
const DESK: &str = "desk";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Phase {
    Quiet,
    Surge,
}

/// Latency samples per phase.
#[derive(Default)]
struct Samples(Mutex<HashMap<Phase, Vec<Duration>>>);

impl Samples {
    fn add(&self, phase: Phase, d: Duration) {
        self.0.lock().unwrap().entry(phase).or_default().push(d);
    }
    fn pct(&self, phase: Phase, p: f64) -> Option<Duration> {
        let mut v = self.0.lock().unwrap().get(&phase).cloned()?;
        v.sort();
        v.get(((v.len() as f64 - 1.0) * p).round() as usize)
            .copied()
    }
    fn count(&self, phase: Phase) -> usize {
        self.0.lock().unwrap().get(&phase).map_or(0, Vec::len)
    }
    fn row(&self, name: &str) {
        let f = |ph, p| {
            self.pct(ph, p).map_or("-".to_owned(), |d| {
                format!("{:.0}", d.as_secs_f64() * 1000.0)
            })
        };
        println!(
            "{:<38} {:>8} / {:<8} {:>8} / {:<8} (n = {} / {})",
            name,
            f(Phase::Quiet, 0.5),
            f(Phase::Quiet, 0.99),
            f(Phase::Surge, 0.5),
            f(Phase::Surge, 0.99),
            self.count(Phase::Quiet),
            self.count(Phase::Surge)
        );
    }
}

/// What the load has done, shared by its tasks.
struct Run {
    started: Instant,
    quiet: Duration,
    surge: Duration,
    ingest: IngestServiceClient<Channel>,
    rec: RecommendationServiceClient<Channel>,
    phones: Phones,
    /// (story id, version) of every acknowledged new version.
    accepted: Mutex<Vec<(String, u32)>>,
    to_feed: Samples,
    to_alert: Samples,
    get_feed: Samples,
}

impl Run {
    fn phase(&self) -> Option<Phase> {
        let t = self.started.elapsed();
        if t < self.quiet {
            Some(Phase::Quiet)
        } else if t < self.quiet + self.surge {
            Some(Phase::Surge)
        } else {
            None
        }
    }

    /// Submits a story; its id and when it was acknowledged.
    async fn submit(&self, story: Story) -> Option<(String, Instant)> {
        let answer = self
            .ingest
            .clone()
            .submit_story(SubmitStoryRequest {
                story: Some(story),
                idempotency_key: String::new(),
            })
            .await;
        match answer {
            Ok(a) => {
                let a = a.into_inner();
                self.accepted
                    .lock()
                    .unwrap()
                    .push((a.story_id.clone(), a.version));
                Some((a.story_id, Instant::now()))
            }
            Err(e) => {
                eprintln!("SubmitStory: {e}");
                None
            }
        }
    }

    async fn feed(&self, user: &str) -> Vec<String> {
        let started = Instant::now();
        let page = self
            .rec
            .clone()
            .get_feed(GetFeedRequest {
                user_id: user.into(),
                limit: 20,
                cursor: String::new(),
            })
            .await;
        if let Some(phase) = self.phase() {
            self.get_feed.add(phase, started.elapsed());
        }
        page.map(|p| {
            p.into_inner()
                .items
                .into_iter()
                .filter_map(|i| i.story.map(|s| s.id))
                .collect()
        })
        .unwrap_or_default()
    }
}

/// Paces `tick` at `rate(phase)` per second until the surge ends.
async fn paced<F, Fut>(run: Arc<Run>, rate: impl Fn(Phase) -> usize + Send, tick: F)
where
    F: Fn(Arc<Run>, u64) -> Fut + Send,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut n = 0u64;
    let mut next = Instant::now();
    while let Some(phase) = run.phase() {
        let r = rate(phase).max(1);
        next += Duration::from_secs_f64(1.0 / r as f64);
        tokio::time::sleep_until(next.into()).await;
        tokio::spawn(tick(run.clone(), n));
        n += 1;
    }
}

/// The worst lag seen per consumer group and phase, and when each group was last behind.
#[derive(Default)]
struct Lags {
    worst: HashMap<(String, Phase), i64>,
    behind_at: HashMap<String, Instant>,
}

/// Every consumer group of this pipeline and its total lag.
fn lags(brokers: &str, prefix: &str, topics: &[String]) -> Vec<(String, i64)> {
    use newsroom_platform::kafka::rdkafka::consumer::{BaseConsumer, Consumer as _};
    let consumer: BaseConsumer =
        match newsroom_platform::kafka::client_config(brokers, "surge-lag").create() {
            Ok(c) => c,
            Err(_) => return Vec::new(),
        };
    let Ok(groups) = consumer.fetch_group_list(None, Duration::from_secs(5)) else {
        return Vec::new();
    };
    groups
        .groups()
        .iter()
        .map(|g| g.name().to_owned())
        .filter(|g| g.starts_with(prefix))
        .filter_map(|g| {
            let l = newsroom_cli::ops::consumer_lag(
                brokers,
                &g,
                topics,
                newsroom_cli::ops::Topics::Consumed,
            )
            .ok()?;
            Some((g, l.iter().map(|p| p.lag).sum()))
        })
        .collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    newsroom_platform::refuse_debug_build("bench-surge");
    let quiet = Duration::from_secs(env("QUIET_SECONDS", 60) as u64);
    let surge = Duration::from_secs(env("SURGE_SECONDS", 120) as u64);
    let (normal_rate, surge_rate) = (env("NORMAL_RATE", 20), env("SURGE_RATE", 200));
    let (quiet_feeds, surge_feeds) = (env("QUIET_FEEDS", 100), env("SURGE_FEEDS", 1000));
    let devices = env("BENCH_DEVICES", 1_000_000);
    let readers = env("BENCH_READERS", 10_000);
    println!(
        "bench-surge: quiet {}s ({normal_rate} stories/s, {quiet_feeds} feeds/s), surge {}s \
         ({surge_rate} stories/s, {surge_feeds} feeds/s, a flash to {devices} devices)",
        quiet.as_secs(),
        surge.as_secs()
    );

    let phones = Phones::lean();
    let phone_addr = phones.serve(Duration::ZERO).await;
    let channels = serde_json::json!([
        {"type": "webhook", "secret": "surge-secret", "limits": {"concurrency": 512}},
    ]);
    // Each service its own process (the release binaries), as a deployment runs them: the
    // operating system shares the cores between them, not one runtime between everything.
    let pipeline = Pipeline::start_with(
        &[],
        &[
            ("RUST_LOG", "error"),
            ("NEWSROOM_INGEST_RATE_PER_SOURCE", "100000"),
            ("NEWSROOM_INGEST_ALERT_SOURCES", DESK),
            ("NEWSROOM_CHANNELS", &channels.to_string()),
            ("NEWSROOM_FANOUT_BATCH", "512"),
        ],
    )
    .await;
    let mut processes = Vec::new();
    for service in [
        Service::Ingest,
        Service::Enrichment,
        Service::Recommendation,
        Service::Notification,
    ] {
        processes.push(ServiceProcess::spawn(&pipeline, service).await);
    }
    let grpc = |s: Service| {
        processes
            .iter()
            .find(|p| p.service == s)
            .map(|p| p.grpc)
            .expect("started")
    };
    let redis_store = pipeline.redis().await;
    let alerts = newsroom_notification::store::AlertStore::new(redis_store.clone());
    let webhook = |id: &str, user: &str| Device {
        device_id: id.to_owned(),
        user_id: user.to_owned(),
        channel: DeviceChannel::Webhook as i32,
        address: format!("http://{phone_addr}/{id}"),
        timezone: "UTC".into(),
        language: "en".into(),
        ..Default::default()
    };

    // The flash's audience: `devices` devices following technology (as the index consumers
    // leave them), and five latency devices following every BBC topic.
    let t = Instant::now();
    let tech_audience = alerts.k(format!("audience:topic:{TECH}"));
    futures::stream::iter((0..devices).step_by(1000))
        .map(|start| {
            let (alerts, key) = (alerts.clone(), tech_audience.clone());
            let webhook = &webhook;
            async move {
                let end = (start + 1000).min(devices);
                let mut users = Vec::with_capacity(1000);
                for i in start..end {
                    alerts
                        .put_device(&webhook(&format!("d{i}"), &format!("u{i}")), 0)
                        .await?;
                    users.push(format!("u{i}"));
                }
                redis::cmd("SADD")
                    .arg(&key)
                    .arg(users)
                    .query_async::<()>(&mut alerts.redis().conn())
                    .await
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let mut conn = redis_store.conn();
    for i in 0..5 {
        let user = format!("latency-{i}");
        alerts
            .put_device(&webhook(&format!("latency-{i}"), &user), 0)
            .await?;
        for topic in BBC_TOPICS {
            redis::cmd("SADD")
                .arg(alerts.k(format!("audience:topic:{topic}")))
                .arg(&user)
                .query_async::<()>(&mut conn)
                .await?;
        }
    }
    // Feed readers, each following two or three topics.
    newsroom_e2e::seed_readers(&redis_store, readers).await?;
    println!(
        "seeded {devices} devices and {readers} readers in {:.0} s",
        t.elapsed().as_secs_f64()
    );

    let articles: Arc<Vec<newsroom_cli::bbc::BbcArticle>> = Arc::new(
        data_file("bbc-news.jsonl")
            .lines()
            .map(|l| serde_json::from_str(l).expect("bbc line"))
            .collect(),
    );
    let rec_channel = pipeline.channel_at(grpc(Service::Recommendation)).await;
    let run = Arc::new(Run {
        started: Instant::now(),
        quiet,
        surge,
        ingest: IngestServiceClient::new(pipeline.channel_at(grpc(Service::Ingest)).await),
        rec: RecommendationServiceClient::new(rec_channel),
        phones: phones.clone(),
        accepted: Mutex::new(Vec::new()),
        to_feed: Samples::default(),
        to_alert: Samples::default(),
        get_feed: Samples::default(),
    });

    // The wires: each BBC article filed by three sources, a near-duplicate each.
    let wires = tokio::spawn(paced(
        run.clone(),
        move |p| match p {
            Phase::Quiet => normal_rate,
            Phase::Surge => surge_rate,
        },
        {
            let articles = articles.clone();
            move |run: Arc<Run>, n: u64| {
                let a = &articles[(n / 3) as usize % articles.len()];
                let mut s = a.to_story();
                let wire = ["wire-a", "wire-b", "wire-c"][(n % 3) as usize];
                s.source = wire.into();
                s.guid = format!("surge-{}", n / 3);
                s.headline = format!("{} ({wire})", s.headline);
                s.body_html.push_str(&format!("<p>Filed by {wire}.</p>"));
                async move {
                    run.submit(s).await;
                }
            }
        },
    ));
    // Readers fetching their feeds.
    let feeds = tokio::spawn(paced(
        run.clone(),
        move |p| match p {
            Phase::Quiet => quiet_feeds,
            Phase::Surge => surge_feeds,
        },
        move |run: Arc<Run>, n: u64| async move {
            let user = format!("user-{}", n.wrapping_mul(2_654_435_761) % readers as u64);
            run.feed(&user).await;
        },
    ));
    // One probe a second: a story in a section only its probe reader follows, watched until it
    // is on that reader's first page.
    let probes = tokio::spawn(paced(run.clone(), |_| 1, {
        let articles = articles.clone();
        move |run: Arc<Run>, n: u64| {
            let mut s = articles[(n as usize * 7) % articles.len()].to_story();
            s.source = "probe".into();
            s.guid = format!("probe-{n}");
            s.section = format!("surge-probe-{n}");
            s.headline = format!("{} (probe {n})", s.headline);
            async move {
                let reader = format!("probe-reader-{n}");
                let followed = run
                    .rec
                    .clone()
                    .follow(FollowRequest {
                        user_id: reader.clone(),
                        target: Some(FollowTarget {
                            kind: TargetKind::Section as i32,
                            value: s.section.clone(),
                        }),
                    })
                    .await;
                if followed.is_err() {
                    return;
                }
                let Some(phase) = run.phase() else { return };
                let Some((id, at)) = run.submit(s).await else {
                    return;
                };
                while at.elapsed() < Duration::from_secs(120) {
                    if run.feed(&reader).await.contains(&id) {
                        run.to_feed.add(phase, at.elapsed());
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
            }
        }
    }));
    // An alert every 5 s: a news event of its own, from the desk, to the latency devices.
    let alert_probes = tokio::spawn(paced(run.clone(), |_| 1, {
        let articles = articles.clone();
        move |run: Arc<Run>, n: u64| {
            let mut s = articles[(n as usize * 13 + 5) % articles.len()].to_story();
            s.source = DESK.into();
            s.guid = format!("alert-{n}");
            s.urgency = 2;
            async move {
                if !n.is_multiple_of(5) {
                    return;
                }
                let Some(phase) = run.phase() else { return };
                let Some((id, at)) = run.submit(s).await else {
                    return;
                };
                while at.elapsed() < Duration::from_secs(120) {
                    if let Some(first) = run.phones.first_at(&id) {
                        run.to_alert.add(phase, first.saturating_duration_since(at));
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }));
    // The flash, half-way through the surge.
    let flash = tokio::spawn({
        let (run, articles) = (run.clone(), articles.clone());
        async move {
            tokio::time::sleep(run.quiet + run.surge / 2).await;
            let a = articles
                .iter()
                .find(|a| a.category == "tech")
                .expect("a tech article");
            let mut s = a.to_story();
            s.source = DESK.into();
            s.guid = "flash".into();
            s.urgency = 1;
            run.submit(s).await
        }
    });

    // Consumer lag every 2 s, until the surge is over and every group has caught up.
    let brokers = pipeline
        .platform_config(Service::Ingest)
        .kafka_brokers
        .clone();
    let all_topics: Vec<String> = newsroom_platform::kafka::TOPICS
        .iter()
        .map(|t| pipeline.topic(t.name))
        .collect();
    let group_prefix = pipeline.consumer_group_prefix();
    let mut lag = Lags::default();
    let surge_end = run.started + quiet + surge;
    loop {
        let (b, p, t) = (brokers.clone(), group_prefix.clone(), all_topics.clone());
        let now = tokio::task::spawn_blocking(move || lags(&b, &p, &t)).await?;
        let phase = run.phase();
        for (group, l) in &now {
            if let Some(phase) = phase {
                let w = lag.worst.entry((group.clone(), phase)).or_default();
                *w = (*w).max(*l);
            }
            if *l > 0 {
                lag.behind_at.insert(group.clone(), Instant::now());
            }
        }
        let caught_up = now.iter().all(|(_, l)| *l == 0);
        if Instant::now() > surge_end && caught_up
            || Instant::now() > surge_end + Duration::from_secs(600)
        {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    for task in [wires, feeds, probes, alert_probes] {
        let _ = task.await;
    }
    let flash = flash.await?;

    println!();
    println!("{:<38} {:>19} {:>19}", "ms, p50 / p99", "quiet", "surge");
    run.to_feed.row("story accepted → follower's first page");
    run.to_alert.row("story accepted → first alert");
    run.get_feed.row("GetFeed");
    println!();
    println!(
        "{:<44} {:>12} {:>12} {:>18}",
        "consumer group", "worst, quiet", "worst, surge", "drained after surge"
    );
    let mut groups: Vec<&String> = lag.behind_at.keys().collect();
    groups.extend(lag.worst.keys().map(|(g, _)| g));
    groups.sort();
    groups.dedup();
    for g in groups {
        let w = |p| lag.worst.get(&(g.clone(), p)).copied().unwrap_or(0);
        let drained = lag
            .behind_at
            .get(g)
            .map_or("never behind".to_owned(), |at| {
                format!(
                    "{:.0} s",
                    at.saturating_duration_since(surge_end).as_secs_f64()
                )
            });
        println!(
            "{:<44} {:>12} {:>12} {:>18}",
            g.trim_start_matches(&group_prefix),
            w(Phase::Quiet),
            w(Phase::Surge),
            drained
        );
    }

    // The flash's delivery.
    if let Some((flash_id, at)) = flash {
        let mut times: Vec<Instant> = phones
            .hits_at()
            .into_iter()
            .filter(|(s, _, _)| *s == flash_id)
            .map(|(_, _, t)| t)
            .collect();
        times.sort();
        let pct = |p: f64| {
            times
                .get(((times.len() as f64 * p).ceil() as usize).saturating_sub(1))
                .map_or("-".to_owned(), |t| {
                    format!("{:.1} s", t.saturating_duration_since(at).as_secs_f64())
                })
        };
        println!();
        println!(
            "flash: {} of {} devices reached; first alert {}, 90 % sent {}, all {}",
            times.len(),
            devices + 5,
            pct(0.0),
            pct(0.9),
            pct(1.0)
        );
    }

    // Nothing lost, nothing twice.
    let accepted = run.accepted.lock().unwrap().clone();
    let enriched: HashSet<(String, u32)> = pipeline
        .records(topics::STORIES_ENRICHED)
        .await
        .into_iter()
        .filter_map(|(_, v)| EnrichedStory::decode(v?.as_slice()).ok()?.story)
        .map(|s| (s.id, s.version))
        .collect();
    let lost: Vec<&(String, u32)> = accepted.iter().filter(|a| !enriched.contains(a)).collect();
    let mut seen = HashSet::new();
    let twice = phones
        .hits()
        .into_iter()
        .filter(|hit| !seen.insert(hit.clone()))
        .count();
    println!();
    println!(
        "{} story versions acknowledged, {} missing from stories.enriched; {} alerts sent twice",
        accepted.len(),
        lost.len(),
        twice
    );
    for mut p in processes {
        p.kill().await;
    }
    pipeline.stop().await;
    anyhow::ensure!(lost.is_empty(), "acknowledged stories lost: {lost:?}");
    anyhow::ensure!(twice == 0, "{twice} alerts reached a device twice");
    Ok(())
}
