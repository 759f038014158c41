//! Chaos scenarios: the whole pipeline under load while a fault strikes, and the README's
//! promises checked afterwards, one row per scenario.
//!
//! A scenario starts the four services ([`Pipeline::start`]), registers readers who follow
//! Science and Technology with a webhook phone each (a sink in this process), submits BBC
//! technology stories (every fifth a flash, urgency 1) from two writers, strikes its [`Fault`]
//! halfway, and waits until the pipeline has caught up or [`SETTLE`] has passed. Then it counts:
//! stories acknowledged by ingest, on `stories.enriched`, in the feed store at their latest
//! version (`GetStory`), alerts expected (flashes × readers) and received (distinct story and
//! device), duplicates, records on any DLQ, and the time from the end of the fault to the
//! last of it. [`Row::violations`] names every broken promise.
//!
//! `just chaos` runs [`Scenario::all`] (`tests/src/bin/chaos.rs`) and prints the table; `just
//! test` runs [`Scenario::short`] (`tests/tests/chaos.rs`). A fault here strikes the services in
//! this process: a crash drops a service's task where it stands (no drain, no flush, no
//! commit), a SIGKILL kills the service running as its own process ([`ServiceProcess`]) and
//! starts it again on the same address, a Redis flush deletes the pipeline's keys, a Redis pause is `CLIENT PAUSE` (every
//! client of that Redis waits), poison is undecodable bytes on every topic a service consumes,
//! scaling starts and stops notification replicas (each a rebalance of its groups), a provider
//! fault makes every phone answer 503, 429 with `Retry-After`, or nothing at all for a while. Broker
//! faults strike brokers of the scenario's own: one it stops and starts, or a three-node
//! cluster ([`OwnCluster`]) whose partition leader it SIGKILLs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use newsroom_platform::kafka::topics;
use newsroom_proto::v1::ingest_service_client::IngestServiceClient;
use newsroom_proto::v1::recommendation_service_client::RecommendationServiceClient;
use newsroom_proto::v1::{GetStoryRequest, Story, SubmitStoryRequest};

use crate::phones::{Phones, ProviderFault};
use crate::process::ServiceProcess;
use crate::toxiproxy::{Proxy, Toxiproxy};
use crate::{OwnBroker, OwnCluster, Pipeline, RawTopic, Service, data_file};

/// Science and Technology: what the BBC technology articles are filed under.
const TECH: &str = "medtop:13000000";
/// Longest wait for the pipeline to catch up after the load.
pub const SETTLE: Duration = Duration::from_secs(90);

/// What strikes halfway through the load.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// No fault: the baseline row.
    Nothing,
    /// A service crashes and is started again after a second.
    Crash(Service),
    /// A service running as its own process is SIGKILLed and started again after a second.
    Kill(Service),
    /// Every key of the pipeline deleted from Redis, the services running.
    RedisFlush,
    /// Redis answers no client for this long.
    RedisPause(Duration),
    /// Undecodable records on every topic a service consumes.
    Poison,
    /// The pipeline's own broker down for this long, every consumer running (the scenario runs
    /// against a broker of its own, [`OwnBroker`]).
    BrokerDown(Duration),
    /// Notification scaled from one replica to three, then (3 s later) back to one: the
    /// three stop gracefully (a rebalance each time) and one starts.
    ScaleNotification,
    /// A network fault on a link (through Toxiproxy) for this long, then healed.
    Network(Link, NetFault, Duration),
    /// Every phone's push provider answers `ProviderFault` for this long, then recovers.
    Provider(ProviderFault, Duration),
    /// The leader of `stories.raw` partition 0 SIGKILLed in a three-broker cluster of the
    /// scenario's own ([`OwnCluster`]); it stays down for the rest of the load and the count.
    LeaderKill,
}

/// A link through Toxiproxy: every service's connections to the broker, or to Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Kafka,
    Redis,
}

/// What happens on the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetFault {
    /// Connections reset, new ones refused.
    Cut,
    /// Connections stay open, nothing passes.
    Stall,
    /// Every byte 300 ms late each way.
    Slow,
}

/// The brokers (and links) a scenario runs against.
enum Brokers {
    /// The shared broker of `deploy/stack.sh up`.
    Shared,
    Own(OwnBroker),
    Cluster(OwnCluster),
    /// A broker of its own behind a proxy (which it advertises), and a proxy to the shared
    /// Redis: every service connection crosses Toxiproxy.
    Proxied {
        _broker: OwnBroker,
        kafka: Proxy,
        redis: Proxy,
    },
}

impl Brokers {
    async fn for_fault(fault: Fault) -> Self {
        match fault {
            // A broker outage needs a broker of the scenario's own, on other ports.
            Fault::BrokerDown(_) => Brokers::Own(OwnBroker::start(19392).await),
            Fault::LeaderKill => Brokers::Cluster(OwnCluster::start(19492).await),
            Fault::Network(..) => {
                let toxiproxy = Toxiproxy::connect().await;
                // The proxy first: the broker advertises it, and checks itself through it.
                let kafka = toxiproxy
                    .proxy("newsroom-chaos-kafka", 19595, "127.0.0.1:19592")
                    .await;
                let redis_port = std::env::var("REDIS_URL")
                    .ok()
                    .and_then(|u| u.rsplit(':').next().map(str::to_owned))
                    .unwrap_or_else(|| "6379".into());
                let redis = toxiproxy
                    .proxy(
                        "newsroom-chaos-redis",
                        19596,
                        &format!("127.0.0.1:{redis_port}"),
                    )
                    .await;
                let broker = OwnBroker::start_advertising(19592, Some(kafka.listen)).await;
                Brokers::Proxied {
                    _broker: broker,
                    kafka,
                    redis,
                }
            }
            _ => Brokers::Shared,
        }
    }

    /// The services' environment for these brokers (none: the shared stack).
    fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Brokers::Shared => vec![],
            Brokers::Own(b) => vec![("KAFKA_BROKERS", b.bootstrap())],
            Brokers::Cluster(c) => vec![("KAFKA_BROKERS", c.bootstrap())],
            Brokers::Proxied { kafka, redis, .. } => vec![
                ("KAFKA_BROKERS", format!("127.0.0.1:{}", kafka.listen)),
                ("REDIS_URL", format!("redis://127.0.0.1:{}", redis.listen)),
            ],
        }
    }

    async fn remove(self) {
        if let Brokers::Proxied { kafka, redis, .. } = self {
            kafka.remove().await;
            redis.remove().await;
        }
    }
}

/// Topics a service consumes, for poison, with how many consumer groups read each (each
/// dead-letters a poison record once).
const CONSUMED: [(&str, usize); 5] = [
    (topics::STORIES_RAW, 1),
    (topics::STORIES_ENRICHED, 2),
    (topics::PROFILES, 1),
    (topics::DEVICES, 1),
    (topics::NOTIFICATIONS_ALERTS, 1),
];

/// A named fault and the load it strikes.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub fault: Fault,
    pub stories: usize,
    pub readers: usize,
    /// How long each phone takes to answer: slow phones keep a fan-out running when the
    /// fault strikes.
    pub phone_delay: Duration,
    /// Every story embargoed for this long after its submission (its release falls in the
    /// fault).
    pub embargo: Option<Duration>,
    /// The fault strikes before the load, on an idle pipeline, instead of halfway through.
    pub idle: bool,
}

impl Scenario {
    fn new(name: &str, fault: Fault) -> Self {
        Scenario {
            name: name.to_owned(),
            fault,
            stories: 40,
            readers: 4,
            phone_delay: Duration::ZERO,
            embargo: None,
            idle: false,
        }
    }

    /// The same fault striking mid fan-out: `readers` phones answering in `delay` each.
    fn mid_fan_out(name: &str, fault: Fault, readers: usize, delay: Duration) -> Self {
        Scenario {
            readers,
            phone_delay: delay,
            ..Scenario::new(name, fault)
        }
    }

    /// Every scenario of `just chaos`.
    pub fn all() -> Vec<Scenario> {
        let mut all = vec![Scenario::new("baseline", Fault::Nothing)];
        for s in Service::ALL {
            all.push(Scenario::new(
                &format!("crash {}", s.name()),
                Fault::Crash(s),
            ));
            all.push(Scenario::new(
                &format!("SIGKILL {}", s.name()),
                Fault::Kill(s),
            ));
        }
        all.extend([
            Scenario::new("redis flush mid-load", Fault::RedisFlush),
            Scenario {
                idle: true,
                ..Scenario::new("redis flush idle", Fault::RedisFlush)
            },
            Scenario::new(
                "redis paused 10 s",
                Fault::RedisPause(Duration::from_secs(10)),
            ),
            Scenario::new("poison on every topic", Fault::Poison),
            Scenario::new("broker down 5 s", Fault::BrokerDown(Duration::from_secs(5))),
            Scenario::new(
                "broker down 60 s",
                Fault::BrokerDown(Duration::from_secs(60)),
            ),
            Scenario::new("raw leader SIGKILLed (3 nodes)", Fault::LeaderKill),
            // Every story embargoed 5 s; the broker goes down halfway for 15 s, so releases
            // fall due while it is away.
            Scenario {
                embargo: Some(Duration::from_secs(5)),
                ..Scenario::new(
                    "broker down across embargoes",
                    Fault::BrokerDown(Duration::from_secs(15)),
                )
            },
        ]);
        let slow = Duration::from_millis(100);
        all.extend([
            Scenario::mid_fan_out(
                "crash notif mid fan-out",
                Fault::Crash(Service::Notification),
                300,
                slow,
            ),
            Scenario::mid_fan_out("redis flush mid fan-out", Fault::RedisFlush, 300, slow),
            Scenario::mid_fan_out(
                "notif 1→3→1 mid fan-out",
                Fault::ScaleNotification,
                300,
                slow,
            ),
            // One flash to 100,000 phones, notification scaled while it rings them.
            Scenario {
                stories: 5,
                ..Scenario::mid_fan_out(
                    "notif 1→3→1, 100k devices",
                    Fault::ScaleNotification,
                    100_000,
                    Duration::ZERO,
                )
            },
            Scenario::mid_fan_out(
                "redis pause mid fan-out",
                Fault::RedisPause(Duration::from_secs(10)),
                300,
                slow,
            ),
            Scenario::mid_fan_out(
                "redis paused 60 s mid fan-out",
                Fault::RedisPause(Duration::from_secs(60)),
                300,
                slow,
            ),
        ]);
        let ten = Duration::from_secs(10);
        for (name, link, fault) in [
            ("kafka link cut 10 s", Link::Kafka, NetFault::Cut),
            ("kafka link stalled 10 s", Link::Kafka, NetFault::Stall),
            ("kafka link +300 ms 10 s", Link::Kafka, NetFault::Slow),
            ("redis link cut 10 s", Link::Redis, NetFault::Cut),
            ("redis link stalled 10 s", Link::Redis, NetFault::Stall),
            ("redis link +300 ms 10 s", Link::Redis, NetFault::Slow),
        ] {
            all.push(Scenario::new(name, Fault::Network(link, fault, ten)));
        }
        all.extend([
            Scenario::new(
                "provider 503 for 10 s",
                Fault::Provider(ProviderFault::Unavailable, ten),
            ),
            Scenario::new(
                "provider 429 Retry-After",
                Fault::Provider(ProviderFault::TooManyRequests, ten),
            ),
            Scenario::new(
                "provider stalls 10 s",
                Fault::Provider(ProviderFault::Stall, ten),
            ),
        ]);
        all
    }

    /// The short set `just test` runs (a few minutes on 2 cores).
    pub fn short() -> Vec<Scenario> {
        vec![
            Scenario::new("SIGKILL notification", Fault::Kill(Service::Notification)),
            Scenario::new("redis flush mid-load", Fault::RedisFlush),
            Scenario::new("poison on every topic", Fault::Poison),
            Scenario::new("raw leader SIGKILLed (3 nodes)", Fault::LeaderKill),
            Scenario::new(
                "redis link stalled 10 s",
                Fault::Network(Link::Redis, NetFault::Stall, Duration::from_secs(10)),
            ),
        ]
    }
}

/// What one scenario came to.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub name: String,
    pub acked: usize,
    pub enriched: usize,
    pub in_feed: usize,
    pub alerts_expected: usize,
    pub alerts_received: usize,
    pub duplicates: usize,
    pub dlq: usize,
    /// DLQ records the poison should make (one per record and consumer group reading it);
    /// nothing else belongs in a DLQ.
    pub poison: usize,
    pub recovered: Option<Duration>,
}

impl Row {
    /// The promises this row breaks, in words.
    pub fn violations(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.enriched < self.acked {
            v.push(format!(
                "{} acknowledged stories lost",
                self.acked - self.enriched
            ));
        }
        if self.in_feed < self.acked {
            v.push(format!(
                "{} stories not in the feed at their latest version",
                self.acked - self.in_feed
            ));
        }
        if self.alerts_received < self.alerts_expected {
            v.push(format!(
                "{} followers not alerted",
                self.alerts_expected - self.alerts_received
            ));
        }
        if self.duplicates > 0 {
            v.push(format!("{} duplicate alerts", self.duplicates));
        }
        if self.dlq != self.poison {
            v.push(format!(
                "{} DLQ records for {} poison records",
                self.dlq, self.poison
            ));
        }
        v
    }
}

/// The table `just chaos` prints.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<30} {:>6} {:>9} {:>8} {:>8} {:>9} {:>5} {:>4} {:>9}  verdict",
        "scenario",
        "acked",
        "enriched",
        "in feed",
        "alerts",
        "received",
        "dups",
        "dlq",
        "recovered"
    );
    for r in rows {
        let recovered = r
            .recovered
            .map_or("never".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()));
        let verdict = match r.violations() {
            v if v.is_empty() => "held".to_owned(),
            v => v.join("; "),
        };
        let _ = writeln!(
            out,
            "{:<30} {:>6} {:>9} {:>8} {:>8} {:>9} {:>5} {:>4} {:>9}  {verdict}",
            r.name,
            r.acked,
            r.enriched,
            r.in_feed,
            r.alerts_expected,
            r.alerts_received,
            r.duplicates,
            r.dlq,
            recovered
        );
    }
    out
}

/// The n-th BBC technology article as a story; a flash when `flash`.
fn story(articles: &[Story], n: usize, flash: bool) -> Story {
    let mut s = articles[n % articles.len()].clone();
    s.source = "wire".into();
    s.guid = format!("chaos-{n}");
    s.urgency = if flash { 1 } else { 5 };
    s
}

fn tech_articles() -> Vec<Story> {
    data_file("bbc-news.jsonl")
        .lines()
        .filter_map(|l| serde_json::from_str::<newsroom_cli::bbc::BbcArticle>(l).ok())
        .filter(|a| a.category == "tech")
        .map(|a| a.to_story())
        .collect()
}

/// Runs one scenario and counts what came of it.
pub async fn run(scenario: &Scenario) -> Row {
    let brokers = Brokers::for_fault(scenario.fault).await;
    let env = brokers.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // A service to SIGKILL runs as its own process; the others in this one.
    let killed = match scenario.fault {
        Fault::Kill(s) => Some(s),
        _ => None,
    };
    let in_process: Vec<Service> = Service::ALL
        .into_iter()
        .filter(|s| Some(*s) != killed)
        .collect();
    let mut pipeline = Pipeline::start_with(&in_process, &env).await;
    let mut process = match killed {
        Some(s) => Some(ServiceProcess::spawn(&pipeline, s).await),
        None => None,
    };
    let addr = |p: &Pipeline, process: &Option<ServiceProcess>, s: Service| match process {
        Some(sp) if sp.service == s => sp.grpc,
        _ => p.grpc_addr(s),
    };
    let phones = Phones::default();
    let phone = phones.serve(scenario.phone_delay).await;
    if scenario.readers > MASS_READERS {
        mass_readers(&pipeline, scenario.readers, phone).await;
    } else {
        for r in 0..scenario.readers {
            pipeline
                .reader_with_phone_at(
                    addr(&pipeline, &process, Service::Recommendation),
                    addr(&pipeline, &process, Service::Notification),
                    &format!("reader-{r}"),
                    &format!("phone-{r}"),
                    TECH,
                    &format!("http://{phone}/phone-{r}"),
                )
                .await;
        }
    }
    let articles = tech_articles();
    let acked: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let flashes: Arc<Mutex<HashSet<String>>> = Arc::default();
    let half = Arc::new(tokio::sync::Notify::new());

    let mut poison = 0;
    if scenario.idle {
        poison = strike_any(
            &mut pipeline,
            &brokers,
            &phones,
            &mut process,
            scenario.fault,
        )
        .await;
    }
    // Two writers, each half of the stories, retrying what ingest refuses (UNAVAILABLE).
    let ingest = addr(&pipeline, &process, Service::Ingest);
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (articles, acked, flashes, half) = (
                articles.clone(),
                acked.clone(),
                flashes.clone(),
                half.clone(),
            );
            let (total, embargo) = (scenario.stories, scenario.embargo);
            tokio::spawn(async move {
                let mut client = IngestServiceClient::new(crate::channel_to(ingest).await);
                for n in (w..total).step_by(2) {
                    let flash = n % 5 == 0;
                    let mut s = story(&articles, n, flash);
                    s.embargo_until = embargo.map(|d| (std::time::SystemTime::now() + d).into());
                    // Up to 2 minutes of refusals (a broker down for 60 s, then leaders).
                    for _ in 0..240 {
                        let answer = client
                            .submit_story(SubmitStoryRequest {
                                story: Some(s.clone()),
                                idempotency_key: format!("chaos-{n}"),
                            })
                            .await;
                        if let Ok(a) = answer {
                            let a = a.into_inner();
                            if flash {
                                flashes.lock().unwrap().insert(a.story_id.clone());
                            }
                            acked.lock().unwrap().insert(a.story_id, a.version);
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    if n == total / 2 {
                        half.notify_one();
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        })
        .collect();

    if !scenario.idle {
        half.notified().await;
        poison = strike_any(
            &mut pipeline,
            &brokers,
            &phones,
            &mut process,
            scenario.fault,
        )
        .await;
    }
    let fault_over = Instant::now();
    for w in writers {
        let _ = w.await;
    }

    // Caught up when every acknowledged story is in the feed store at its version and every
    // follower has every flash.
    let rec = RecommendationServiceClient::new(
        crate::channel_to(addr(&pipeline, &process, Service::Recommendation)).await,
    );
    let acked = acked.lock().unwrap().clone();
    let flashes = flashes.lock().unwrap().clone();
    let expected = flashes.len() * scenario.readers;
    let mut in_feed = 0;
    let mut recovered = None;
    // A mass fan-out takes its time: a millisecond per thousand devices more.
    let settle = SETTLE + Duration::from_millis(scenario.readers as u64);
    while fault_over.elapsed() < settle {
        in_feed = in_feed_store(&rec, &acked).await;
        let received = distinct_alerts(&phones.hits(), &flashes);
        if in_feed == acked.len() && received >= expected {
            recovered = Some(fault_over.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Late duplicates have a moment to show themselves.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let enriched: HashSet<String> = pipeline
        .records(topics::STORIES_ENRICHED)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let hits = phones.hits();
    let flash_hits: Vec<_> = hits.iter().filter(|(s, _)| flashes.contains(s)).collect();
    let received = distinct_alerts(&hits, &flashes);
    let mut dlq = 0;
    for (t, _) in CONSUMED {
        dlq += pipeline.records(&format!("{t}.dlq")).await.len();
    }
    let row = Row {
        name: scenario.name.clone(),
        acked: acked.len(),
        enriched: acked.keys().filter(|id| enriched.contains(*id)).count(),
        in_feed,
        alerts_expected: expected,
        alerts_received: received,
        duplicates: flash_hits.len() - received,
        dlq,
        poison,
        recovered,
    };
    drop(process);
    pipeline.stop().await;
    brokers.remove().await;
    row
}

/// Above this many readers, they are written straight to the `profiles` and `devices` topics
/// (as recommendation and notification would have written them), not registered one by one.
const MASS_READERS: usize = 1_000;

/// `n` readers who follow Science and Technology, each with a webhook phone at `phone`,
/// written to the compacted topics the services build their state from; returns once
/// notification has them all in the audience.
async fn mass_readers(pipeline: &Pipeline, n: usize, phone: SocketAddr) {
    use futures::StreamExt as _;
    use newsroom_platform::redis::redis::AsyncCommands as _;
    use newsroom_proto::Message as _;
    use newsroom_proto::v1::{Channel, Device, FollowTarget, TargetKind, UserProfile};
    let raw = RawTopic::of(pipeline).await;
    let (profiles, devices) = (
        pipeline.topic(topics::PROFILES),
        pipeline.topic(topics::DEVICES),
    );
    let records = (0..n).flat_map(|r| {
        let user = format!("reader-{r}");
        let profile = UserProfile {
            user_id: user.clone(),
            follows: vec![FollowTarget {
                kind: TargetKind::Topic as i32,
                value: TECH.into(),
            }],
            updated_at: None,
        };
        let device = Device {
            device_id: format!("phone-{r}"),
            user_id: user.clone(),
            channel: Channel::Webhook as i32,
            address: format!("http://{phone}/phone-{r}"),
            ..Default::default()
        };
        [
            (profiles.clone(), user, profile.encode_to_vec()),
            (
                devices.clone(),
                format!("phone-{r}"),
                device.encode_to_vec(),
            ),
        ]
    });
    let failed = futures::stream::iter(records)
        .map(|(topic, key, value)| {
            let producer = &raw.producer;
            async move { producer.send(&topic, &key, &value).await.is_err() }
        })
        .buffer_unordered(2_000)
        .filter(|failed| std::future::ready(*failed))
        .count()
        .await;
    assert_eq!(failed, 0, "every reader written");
    let redis = pipeline.redis().await;
    let audience = redis.key(format!("notif:{{audiences}}:audience:topic:{TECH}"));
    let devices = redis.key("notif:{devices}:devices");
    crate::eventually(
        Duration::from_secs(300),
        &format!("{n} readers and phones known to notification"),
        || {
            let (mut conn, audience, devices) = (redis.conn(), audience.clone(), devices.clone());
            async move {
                let readers: usize = conn.scard(&audience).await.ok()?;
                let phones: usize = conn.scard(&devices).await.ok()?;
                (readers >= n && phones >= n).then_some(())
            }
        },
    )
    .await;
}

/// Distinct (flash, device) pairs among the phones' hits.
fn distinct_alerts(hits: &[(String, String)], flashes: &HashSet<String>) -> usize {
    hits.iter()
        .filter(|(s, _)| flashes.contains(s))
        .collect::<HashSet<_>>()
        .len()
}

/// Acknowledged stories the feed store answers at their acknowledged version (or later).
async fn in_feed_store(
    rec: &RecommendationServiceClient<tonic::transport::Channel>,
    acked: &HashMap<String, u32>,
) -> usize {
    let mut n = 0;
    for (id, version) in acked {
        let found = rec
            .clone()
            .get_story(GetStoryRequest {
                story_id: id.clone(),
            })
            .await;
        if let Ok(s) = found
            && s.into_inner().story.is_some_and(|s| s.version >= *version)
        {
            n += 1;
        }
    }
    n
}

/// Strikes `fault`, on the service's own process for a SIGKILL; returns how many DLQ records
/// its poison should make.
async fn strike_any(
    pipeline: &mut Pipeline,
    brokers: &Brokers,
    phones: &Phones,
    process: &mut Option<ServiceProcess>,
    fault: Fault,
) -> usize {
    match (fault, process.as_mut()) {
        (Fault::Kill(_), Some(p)) => {
            p.kill().await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            p.restart().await;
            0
        }
        _ => strike(pipeline, brokers, phones, fault).await,
    }
}

/// Strikes `fault`; returns how many DLQ records its poison should make.
async fn strike(
    pipeline: &mut Pipeline,
    brokers: &Brokers,
    phones: &Phones,
    fault: Fault,
) -> usize {
    use newsroom_platform::redis::redis;
    match fault {
        Fault::Nothing => 0,
        Fault::Kill(_) => unreachable!("a SIGKILL strikes the service's process"),
        Fault::Crash(service) => {
            pipeline.crash_service(service).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            pipeline.start_replica(service).await;
            0
        }
        Fault::BrokerDown(d) => {
            let Brokers::Own(broker) = brokers else {
                panic!("a broker of the scenario's own")
            };
            tokio::task::block_in_place(|| broker.stack("kafka-down"));
            tokio::time::sleep(d).await;
            tokio::task::block_in_place(|| broker.stack("kafka-up"));
            0
        }
        Fault::Network(link, fault, d) => {
            let Brokers::Proxied { kafka, redis, .. } = brokers else {
                panic!("links through Toxiproxy")
            };
            let proxy = match link {
                Link::Kafka => kafka,
                Link::Redis => redis,
            };
            match fault {
                NetFault::Cut => proxy.cut().await,
                NetFault::Stall => proxy.stall().await,
                NetFault::Slow => proxy.slow(Duration::from_millis(300)).await,
            }
            tokio::time::sleep(d).await;
            proxy.heal().await;
            0
        }
        Fault::Provider(answer, d) => {
            phones.fail(answer, d);
            tokio::time::sleep(d).await;
            0
        }
        Fault::LeaderKill => {
            let Brokers::Cluster(cluster) = brokers else {
                panic!("a cluster of the scenario's own")
            };
            let leader = cluster.leader_of(&pipeline.topic(topics::STORIES_RAW), 0);
            eprintln!("chaos: SIGKILL of node {leader}, the stories.raw/0 leader");
            cluster.kill(leader);
            0
        }
        Fault::ScaleNotification => {
            pipeline.start_replica(Service::Notification).await;
            pipeline.start_replica(Service::Notification).await;
            tokio::time::sleep(Duration::from_secs(3)).await;
            pipeline.stop_service(Service::Notification).await;
            pipeline.start_replica(Service::Notification).await;
            0
        }
        Fault::RedisFlush => {
            pipeline
                .flush_redis()
                .await
                .expect("flush the pipeline's Redis keys");
            0
        }
        Fault::RedisPause(d) => {
            let store = pipeline.redis().await;
            let _: Result<(), _> = redis::cmd("CLIENT")
                .arg("PAUSE")
                .arg(d.as_millis() as u64)
                .arg("ALL")
                .query_async(&mut store.conn())
                .await;
            tokio::time::sleep(d).await;
            0
        }
        Fault::Poison => {
            let raw = RawTopic::of(pipeline).await;
            let mut written = 0;
            // Three kinds of bytes no decoder takes: an invalid tag, a length past the end, and
            // 999,800 of them (oversized: it fits the 1 MB producer limit, its DLQ copy with the
            // dlq.* headers does not, so it is dead-lettered without its value).
            let oversized = vec![0xffu8; 999_800];
            let poison: [&[u8]; 3] = [
                b"\xff\xfe not protobuf",
                &[0x0a, 0xff, 0xff, 0xff, 0x0f],
                &oversized,
            ];
            for (t, groups) in CONSUMED {
                let topic = pipeline.topic(t);
                for (n, bytes) in poison.iter().enumerate() {
                    let key = format!("poison-{n}");
                    if raw.producer.send(&topic, &key, bytes).await.is_ok() {
                        written += groups;
                    }
                }
            }
            written
        }
    }
}

/// Rows per scenario name, for a caller that wants to look one up.
pub fn by_name(rows: &[Row]) -> BTreeMap<&str, &Row> {
    rows.iter().map(|r| (r.name.as_str(), r)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_names_each_broken_promise_and_a_clean_one_none() {
        let clean = Row {
            name: "clean".into(),
            acked: 40,
            enriched: 40,
            in_feed: 40,
            alerts_expected: 32,
            alerts_received: 32,
            dlq: 12,
            poison: 12,
            ..Row::default()
        };
        assert!(clean.violations().is_empty());
        let broken = Row {
            enriched: 38,
            in_feed: 39,
            alerts_received: 30,
            duplicates: 3,
            dlq: 13,
            ..clean.clone()
        };
        let v = broken.violations().join("; ");
        for words in [
            "2 acknowledged stories lost",
            "1 stories not in the feed",
            "2 followers not alerted",
            "3 duplicate alerts",
            "13 DLQ records for 12 poison",
        ] {
            assert!(v.contains(words), "{v}");
        }
        assert!(table(&[broken]).contains("duplicate alerts"));
    }
}
