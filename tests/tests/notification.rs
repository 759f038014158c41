//! Notification end to end, against the real broker and Redis and local provider endpoints:
//! signed webhooks, preferences (quiet hours, budgets, language, opt-out) and the critical
//! override, one alert per device across a crash mid fan-out, Web Push that the test decrypts
//! with the subscription's private key, APNs and FCM over HTTP/2 with the headers and bodies
//! the providers require, collapse on correction, gone devices removed, in-app streams, and
//! who may call what.
//!
//! Stories and follows arrive as the other services would publish them: `EnrichedStory`
//! records on `stories.enriched`, `UserProfile` records on `profiles`.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, Version};
use hmac::{Hmac, Mac as _};
use newsroom_e2e::{Pipeline, Service, eventually};
use newsroom_platform::config::Env;
use newsroom_platform::kafka::{Producer, topics};
use newsroom_platform::metrics::{KafkaMetrics, Registry};
use newsroom_platform::redis::redis::AsyncCommands as _;
use newsroom_platform::server::Listeners;
use newsroom_platform::shutdown::Shutdown;
use newsroom_proto::Message as _;
use newsroom_proto::v1::notification_service_client::NotificationServiceClient;
use newsroom_proto::v1::{
    Audience, Channel as DeviceChannel, Device, EnrichedStory, Enrichment, FollowTarget,
    GetAlertRequest, Preferences, RegisterDeviceRequest, SendAlertRequest, Story, TargetKind,
    TopicScore, UpdatePreferencesRequest, UserProfile, audience,
};
use sha2::Sha256;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

const TECH: &str = "medtop:13000000";
const SCIENCE: &str = "medtop:13000001";
const POLITICS: &str = "medtop:11000000";
const WEBHOOK_SECRET: &str = "test-webhook-secret";

// ---------------------------------------------------------------------------------------------
// A local endpoint that records what it receives (HTTP/1.1 and HTTP/2 cleartext).

#[derive(Debug, Clone)]
struct Hit {
    method: Method,
    path: String,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
}

impl Hit {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }
}

type Responder = Arc<dyn Fn(&Hit) -> (StatusCode, HeaderMap, String) + Send + Sync>;

#[derive(Clone)]
struct Endpoint {
    addr: SocketAddr,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Endpoint {
    /// Answers 200 "{}" to everything, after `delay`.
    async fn ok(delay: Duration) -> Self {
        Self::serve(
            delay,
            Arc::new(|_| (StatusCode::OK, HeaderMap::new(), "{}".into())),
        )
        .await
    }

    async fn serve(delay: Duration, respond: Responder) -> Self {
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let recorded = hits.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, version: Version, headers: HeaderMap, body: Bytes| {
                let (recorded, respond) = (recorded.clone(), respond.clone());
                async move {
                    let hit = Hit {
                        method,
                        path: uri.path().to_owned(),
                        version,
                        headers,
                        body,
                    };
                    recorded.lock().unwrap().push(hit.clone());
                    tokio::time::sleep(delay).await;
                    respond(&hit)
                }
            },
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Endpoint { addr, hits }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.hits.lock().unwrap().len()
    }
}

// ---------------------------------------------------------------------------------------------
// Notification, in this process, with extra environment.

struct Notification {
    shutdown: Shutdown,
    task: JoinHandle<()>,
    grpc: SocketAddr,
}

impl Notification {
    async fn start(pipeline: &Pipeline, extra: &[(&str, String)]) -> Self {
        let mut env = pipeline.env(Service::Notification);
        for (k, v) in extra {
            env.insert((*k).to_owned(), v.clone());
        }
        let config =
            newsroom_notification::Config::from_env(&Env::from_fn(|k| env.get(k).cloned()))
                .expect("notification config");
        let listeners = Listeners::ephemeral().await.unwrap();
        let (grpc, admin) = (listeners.grpc_addr(), listeners.admin_addr());
        let shutdown = Shutdown::new();
        let s = shutdown.clone();
        let task = tokio::spawn(async move {
            newsroom_notification::run(config, listeners, s)
                .await
                .expect("notification runs")
        });
        wait_ready(admin).await;
        Notification {
            shutdown,
            task,
            grpc,
        }
    }

    async fn client(&self) -> NotificationServiceClient<Channel> {
        client(self.grpc).await
    }

    async fn stop(self) {
        self.shutdown.trigger();
        let _ = tokio::time::timeout(Duration::from_secs(20), self.task).await;
    }
}

async fn client(addr: SocketAddr) -> NotificationServiceClient<Channel> {
    NotificationServiceClient::new(
        Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .expect("connect to notification"),
    )
}

async fn wait_ready(admin: SocketAddr) {
    eventually(
        Duration::from_secs(60),
        "notification ready",
        || async move {
            let r = reqwest::get(format!("http://{admin}/readyz")).await.ok()?;
            r.status().is_success().then_some(())
        },
    )
    .await;
}

/// Publishes records as the other services do.
struct Newsroom {
    producer: Producer,
    pipeline_topics: HashMap<&'static str, String>,
}

impl Newsroom {
    fn new(pipeline: &Pipeline) -> Self {
        let config = pipeline.platform_config(Service::Notification);
        let producer = Producer::new(&config, KafkaMetrics::register(&mut Registry::default()))
            .expect("producer");
        let pipeline_topics = [topics::STORIES_ENRICHED, topics::PROFILES, topics::DEVICES]
            .into_iter()
            .map(|t| (t, pipeline.topic(t)))
            .collect();
        Newsroom {
            producer,
            pipeline_topics,
        }
    }

    async fn publish_story(&self, story: &EnrichedStory) {
        let id = &story.story.as_ref().unwrap().id;
        self.producer
            .send(
                &self.pipeline_topics[topics::STORIES_ENRICHED],
                id,
                &story.encode_to_vec(),
            )
            .await
            .expect("publish story");
    }

    async fn follow(&self, user: &str, topics_followed: &[&str]) {
        let profile = UserProfile {
            user_id: user.into(),
            follows: topics_followed
                .iter()
                .map(|t| FollowTarget {
                    kind: TargetKind::Topic as i32,
                    value: (*t).into(),
                })
                .collect(),
            updated_at: None,
        };
        self.producer
            .send(
                &self.pipeline_topics[topics::PROFILES],
                user,
                &profile.encode_to_vec(),
            )
            .await
            .expect("publish profile");
    }

    async fn publish_device(&self, device: &Device) {
        self.producer
            .send(
                &self.pipeline_topics[topics::DEVICES],
                &device.device_id,
                &device.encode_to_vec(),
            )
            .await
            .expect("publish device");
    }
}

fn story(
    id: &str,
    version: u32,
    urgency: u32,
    topic_codes: &[&str],
    headline: &str,
) -> EnrichedStory {
    EnrichedStory {
        story: Some(Story {
            id: id.into(),
            version,
            source: "wire".into(),
            guid: id.into(),
            headline: headline.into(),
            url: format!("https://news.example.com/{id}"),
            language: "en".into(),
            urgency,
            ..Default::default()
        }),
        enrichment: Some(Enrichment {
            language: "en".into(),
            topics: topic_codes
                .iter()
                .map(|c| TopicScore {
                    code: (*c).into(),
                    label: String::new(),
                    score: 0.9,
                })
                .collect(),
            ..Default::default()
        }),
        accepted_at: Some(SystemTime::now().into()),
    }
}

fn webhook(id: &str, user: &str, url: &str) -> Device {
    Device {
        device_id: id.into(),
        user_id: user.into(),
        channel: DeviceChannel::Webhook as i32,
        address: url.into(),
        ..Default::default()
    }
}

async fn register(notif: &mut NotificationServiceClient<Channel>, device: Device) -> Device {
    notif
        .register_device(RegisterDeviceRequest {
            device: Some(device),
        })
        .await
        .expect("RegisterDevice")
        .into_inner()
}

async fn alert_status(
    notif: &mut NotificationServiceClient<Channel>,
    story_id: &str,
) -> Option<newsroom_proto::v1::AlertStatus> {
    notif
        .get_alert(GetAlertRequest {
            story_id: story_id.into(),
        })
        .await
        .ok()
        .map(|r| r.into_inner())
}

/// Waits until the alert's answered sends reach `sent`.
async fn wait_sent(
    notif: &NotificationServiceClient<Channel>,
    story_id: &str,
    sent: u64,
    within: Duration,
) -> newsroom_proto::v1::AlertStatus {
    eventually(within, &format!("{sent} sends of {story_id}"), || {
        let mut notif = notif.clone();
        async move {
            let s = alert_status(&mut notif, story_id).await?;
            (s.sent >= sent).then_some(s)
        }
    })
    .await
}

/// The receipts on `notifications.receipts`, read from the start until `n` arrived.
async fn receipts(pipeline: &Pipeline, n: usize) -> Vec<newsroom_proto::v1::DeliveryReceipt> {
    use newsroom_platform::kafka::rdkafka::Message as _;
    use newsroom_platform::kafka::rdkafka::config::ClientConfig;
    use newsroom_platform::kafka::rdkafka::consumer::{Consumer as _, StreamConsumer};
    let consumer: StreamConsumer = ClientConfig::new()
        .set(
            "bootstrap.servers",
            pipeline
                .platform_config(Service::Notification)
                .kafka_brokers,
        )
        .set("group.id", format!("t{}-receipts-reader", pipeline.id))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer
        .subscribe(&[&pipeline.topic(topics::NOTIFICATIONS_RECEIPTS)])
        .unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.len() < n && Instant::now() < deadline {
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await
            && let Some(p) = m.payload()
        {
            out.push(newsroom_proto::v1::DeliveryReceipt::decode(p).expect("a DeliveryReceipt"));
        }
    }
    out
}

fn verify_signature(hit: &Hit) {
    let header = hit.header("x-newsroom-signature");
    let (t, v1) = header
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
        .unwrap_or_else(|| panic!("signature header {header:?}"));
    let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&hit.body);
    mac.verify_slice(&hex::decode(v1).unwrap())
        .expect("the HMAC-SHA256 signature verifies with the shared secret");
    let age = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .abs_diff(t.parse().unwrap());
    assert!(age < 60, "signature timestamp is current");
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flash_alerts_each_following_device_once_with_a_signed_webhook() {
    let pipeline = Pipeline::start_only(&[]).await;
    let service = Notification::start(
        &pipeline,
        &[("NEWSROOM_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned())],
    )
    .await;
    let mut notif = service.client().await;
    let newsroom = Newsroom::new(&pipeline);
    let phone = Endpoint::ok(Duration::ZERO).await;

    // ann follows both topics of the story (reached twice), bob one, carol another topic.
    newsroom.follow("ann", &[TECH, SCIENCE]).await;
    newsroom.follow("bob", &[SCIENCE]).await;
    newsroom.follow("carol", &[POLITICS]).await;
    for (id, user) in [
        ("ann-phone", "ann"),
        ("ann-tablet", "ann"),
        ("bob-phone", "bob"),
        ("carol-phone", "carol"),
    ] {
        register(&mut notif, webhook(id, user, &phone.url(&format!("/{id}")))).await;
    }
    pipeline.wait_in_audience(SCIENCE, "bob").await;
    pipeline.wait_in_audience(POLITICS, "carol").await;

    let flash = story("flash-1", 1, 1, &[TECH, SCIENCE], "Probe lands on Europa");
    newsroom.publish_story(&flash).await;
    let status = wait_sent(&notif, "flash-1", 3, Duration::from_secs(30)).await;

    // Redelivered, a new version, an urgency-3 story: nothing more.
    newsroom.publish_story(&flash).await;
    newsroom
        .publish_story(&story(
            "flash-1",
            2,
            1,
            &[TECH, SCIENCE],
            "Probe lands on Europa, sends pictures",
        ))
        .await;
    newsroom
        .publish_story(&story("routine-1", 1, 3, &[TECH], "Quarterly results"))
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let hits = phone.hits();
    let mut per_device: BTreeMap<String, usize> = BTreeMap::new();
    for hit in &hits {
        *per_device
            .entry(hit.path.trim_start_matches('/').to_owned())
            .or_default() += 1;
        verify_signature(hit);
        // A plain JSON POST over HTTP/1.1: any receiver can take it.
        assert_eq!(
            (&hit.method, hit.version),
            (&Method::POST, Version::HTTP_11)
        );
        let body = hit.json();
        assert_eq!(body["story_id"], "flash-1");
        assert_eq!(body["headline"], "Probe lands on Europa");
        assert_eq!(
            hit.header("idempotency-key"),
            format!("flash-1:{}", hit.path.trim_start_matches('/'))
        );
        assert_eq!(hit.header("content-type"), "application/json");
    }
    assert_eq!(
        per_device,
        BTreeMap::from([
            ("ann-phone".to_owned(), 1),
            ("ann-tablet".to_owned(), 1),
            ("bob-phone".to_owned(), 1)
        ]),
        "one alert per following device, none for carol"
    );

    let status = alert_status(&mut notif, "flash-1").await.unwrap_or(status);
    assert_eq!(
        (
            status.targeted,
            status.sent,
            status.delivered,
            status.failed,
            status.resent
        ),
        (3, 3, 3, 0, 0)
    );
    assert!(status.suppressed.is_empty(), "{:?}", status.suppressed);
    let first = status.time_to_first_send.expect("time to first send");
    let p90 = status.time_to_90_percent_sent.expect("time to 90% sent");
    assert!(first.seconds < 5 && p90.seconds < 5, "{first:?} {p90:?}");
    assert!(status.accepted_to_first_send.is_some());
    assert_eq!(
        notif
            .get_alert(GetAlertRequest {
                story_id: "routine-1".into()
            })
            .await
            .expect_err("an urgency-3 story does not alert")
            .code(),
        tonic::Code::NotFound
    );
    service.stop().await;
}

/// A quiet-hours window around now, in UTC.
fn quiet_now() -> (String, String) {
    let now = chrono::Utc::now();
    let start = now - chrono::Duration::hours(1);
    let end = now + chrono::Duration::hours(1);
    (
        start.format("%H:%M").to_string(),
        end.format("%H:%M").to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn preferences_filter_devices_and_a_critical_alert_overrides_quiet_hours_and_budgets() {
    let pipeline = Pipeline::start_only(&[]).await;
    let service = Notification::start(&pipeline, &[]).await;
    let mut notif = service.client().await;
    let newsroom = Newsroom::new(&pipeline);
    let phone = Endpoint::ok(Duration::ZERO).await;

    let users = ["quiet", "budget", "german", "off", "plain"];
    for user in users {
        newsroom.follow(user, &[TECH]).await;
        // The device's time zone is where quiet hours are read: this one is "now" in UTC.
        let mut d = webhook(
            &format!("{user}-phone"),
            user,
            &phone.url(&format!("/{user}")),
        );
        d.timezone = "UTC".into();
        register(&mut notif, d).await;
    }
    let (start, end) = quiet_now();
    let update = |user: &str, p: Preferences, mask: &[&str]| UpdatePreferencesRequest {
        user_id: user.into(),
        preferences: Some(p),
        device_id: String::new(),
        update_mask: (!mask.is_empty()).then(|| prost_types::FieldMask {
            paths: mask.iter().map(|m| (*m).to_owned()).collect(),
        }),
    };
    let set = |p: Preferences| Preferences {
        breaking_alerts: true,
        ..p
    };
    let mut prefs = vec![
        update(
            "quiet",
            set(Preferences {
                quiet_start: start,
                quiet_end: end,
                ..Default::default()
            }),
            &[],
        ),
        update(
            "budget",
            Preferences {
                max_alerts_per_day: 1,
                ..Default::default()
            },
            &["max_alerts_per_day"],
        ),
        update(
            "german",
            set(Preferences {
                language: "de".into(),
                ..Default::default()
            }),
            &[],
        ),
        update("off", Preferences::default(), &["breaking_alerts"]),
    ];
    for req in prefs.drain(..) {
        let answer = notif
            .update_preferences(req.clone())
            .await
            .expect("UpdatePreferences")
            .into_inner();
        if req.user_id == "budget" {
            // The mask changed the budget only: alerts stay on.
            assert!(answer.breaking_alerts);
            assert_eq!(answer.max_alerts_per_day, 1);
        }
    }
    let bad = notif
        .update_preferences(update(
            "plain",
            set(Preferences {
                quiet_start: "25:00".into(),
                quiet_end: "07:00".into(),
                ..Default::default()
            }),
            &[],
        ))
        .await
        .expect_err("an impossible time is refused");
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(
        bad.message().contains("preferences.quiet_start"),
        "{}",
        bad.message()
    );
    for user in users {
        pipeline.wait_in_audience(TECH, user).await;
    }

    let to_paths = |from: usize| -> Vec<String> {
        let mut v: Vec<String> = phone.hits()[from..]
            .iter()
            .map(|h| h.path.trim_start_matches('/').to_owned())
            .collect();
        v.sort();
        v
    };

    // First flash: quiet hours, language and the opt-out hold three devices back.
    newsroom
        .publish_story(&story("s1", 1, 1, &[TECH], "First flash"))
        .await;
    let s1 = wait_sent(&notif, "s1", 2, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(to_paths(0), ["budget", "plain"]);
    let s1 = alert_status(&mut notif, "s1").await.unwrap_or(s1);
    assert_eq!((s1.targeted, s1.sent), (5, 2));
    assert_eq!(
        s1.suppressed,
        HashMap::from([
            ("quiet_hours".to_owned(), 1),
            ("language".to_owned(), 1),
            ("opted_out".to_owned(), 1)
        ])
    );

    // Second flash: the budget of one a day is spent.
    let seen = phone.count();
    newsroom
        .publish_story(&story("s2", 1, 1, &[TECH], "Second flash"))
        .await;
    let s2 = wait_sent(&notif, "s2", 1, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(to_paths(seen), ["plain"]);
    let s2 = alert_status(&mut notif, "s2").await.unwrap_or(s2);
    assert_eq!(s2.suppressed.get("budget"), Some(&1));

    // The editor sends the second story as critical: quiet hours and the budget give way,
    // the reader's language and opt-out do not, and "plain" is not alerted twice.
    let seen = phone.count();
    notif
        .send_alert(SendAlertRequest {
            story_id: "s2".into(),
            audience: Some(Audience {
                target: Some(audience::Target::Everyone(true)),
            }),
            critical: true,
            dry_run: false,
            expires_after: None,
        })
        .await
        .expect("SendAlert");
    wait_sent(&notif, "s2", 3, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(to_paths(seen), ["budget", "quiet"]);
    let s2 = alert_status(&mut notif, "s2").await.unwrap();
    assert_eq!((s2.targeted, s2.sent, s2.delivered), (5, 3, 3));
    assert_eq!(s2.suppressed.get("budget"), None);
    assert_eq!(s2.suppressed.get("quiet_hours"), None);
    assert_eq!(s2.suppressed.get("language"), Some(&1));
    assert_eq!(s2.suppressed.get("opted_out"), Some(&1));

    // Every outcome is on notifications.receipts: 5 for s1, 5 for s2, 2 for the critical alert.
    let all = receipts(&pipeline, 12).await;
    assert_eq!(all.len(), 12);
    let mut s1: Vec<(String, i32, String)> = all
        .iter()
        .filter(|r| r.story_id == "s1")
        .map(|r| (r.device_id.clone(), r.outcome, r.detail.clone()))
        .collect();
    s1.sort();
    use newsroom_proto::v1::DeliveryOutcome as O;
    let row = |d: &str, o: O, why: &str| (format!("{d}-phone"), o as i32, why.to_owned());
    assert_eq!(
        s1,
        [
            row("budget", O::Delivered, ""),
            row("german", O::Suppressed, "language"),
            row("off", O::Suppressed, "opted_out"),
            row("plain", O::Delivered, ""),
            row("quiet", O::Suppressed, "quiet_hours"),
        ]
    );
    service.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Crash and restart mid fan-out, with the real binary.

fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

struct Process {
    child: tokio::process::Child,
    grpc: SocketAddr,
}

async fn spawn_notification(pipeline: &Pipeline, extra: &[(&str, String)]) -> Process {
    let grpc = free_addr();
    let admin = free_addr();
    let child = tokio::process::Command::new(newsroom_e2e::binary("newsroom-notification"))
        .envs(pipeline.env(Service::Notification))
        .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
        .env("NEWSROOM_GRPC_ADDR", &grpc)
        .env("NEWSROOM_ADMIN_ADDR", &admin)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start newsroom-notification");
    wait_ready(admin.parse().unwrap()).await;
    Process {
        child,
        grpc: grpc.parse().unwrap(),
    }
}

/// Requests per device, and the distinct alert ids each device saw.
fn per_device(hits: &[Hit]) -> BTreeMap<String, (usize, std::collections::BTreeSet<String>)> {
    let mut m: BTreeMap<String, (usize, std::collections::BTreeSet<String>)> = BTreeMap::new();
    for h in hits {
        let e = m
            .entry(h.path.trim_start_matches('/').to_owned())
            .or_default();
        e.0 += 1;
        e.1.insert(h.header("idempotency-key").to_owned());
    }
    m
}

async fn crash_mid_fan_out(graceful: bool) {
    const DEVICES: usize = 400;
    const CONCURRENCY: usize = 8;
    let pipeline = Pipeline::start_only(&[]).await;
    // A slow phone: 40 ms per alert, 8 at a time: the fan-out takes about 2 s.
    let phone = Endpoint::ok(Duration::from_millis(40)).await;
    let env = [
        ("NEWSROOM_FANOUT_CONCURRENCY", CONCURRENCY.to_string()),
        ("NEWSROOM_FANOUT_BATCH", "16".to_owned()),
    ];
    let mut first = spawn_notification(&pipeline, &env).await;
    let newsroom = Newsroom::new(&pipeline);
    newsroom.follow("everyone", &[TECH]).await;
    // The devices arrive on the `devices` topic, as another replica would have written them.
    for i in 0..DEVICES {
        let id = format!("d{i:04}");
        newsroom
            .publish_device(&webhook(&id, "everyone", &phone.url(&format!("/{id}"))))
            .await;
    }
    let redis = pipeline.redis().await;
    let devices_key = redis.key("notif:{devices}:user-devices:everyone");
    eventually(Duration::from_secs(120), "every device indexed", || {
        let (mut conn, key) = (redis.conn(), devices_key.clone());
        async move {
            let n: usize = conn.scard(&key).await.ok()?;
            (n == DEVICES).then_some(())
        }
    })
    .await;
    pipeline.wait_in_audience(TECH, "everyone").await;

    newsroom
        .publish_story(&story("big", 1, 1, &[TECH], "Big flash"))
        .await;
    eventually(Duration::from_secs(30), "the fan-out under way", || {
        let n = phone.count();
        async move { (n >= DEVICES / 4).then_some(()) }
    })
    .await;
    let at_stop = phone.count();
    if graceful {
        let pid = first.child.id().unwrap().to_string();
        let kill = tokio::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap();
        assert!(kill.success());
        let status = tokio::time::timeout(Duration::from_secs(20), first.child.wait())
            .await
            .expect("exits within 20 s of SIGTERM")
            .unwrap();
        assert!(status.success(), "graceful exit, got {status}");
    } else {
        first.child.kill().await.expect("SIGKILL");
    }
    let stopped_at = phone.count();
    assert!(
        stopped_at < DEVICES,
        "stopped mid fan-out ({stopped_at} of {DEVICES})"
    );
    eprintln!("stopped after {at_stop}..{stopped_at} of {DEVICES} alerts");

    let second = spawn_notification(&pipeline, &env).await;
    let notif = client(second.grpc).await;
    let status = wait_sent(&notif, "big", DEVICES as u64, Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let seen = per_device(&phone.hits());
    assert_eq!(seen.len(), DEVICES, "no device missed");
    for (device, (_, ids)) in &seen {
        assert_eq!(
            ids.iter().collect::<Vec<_>>(),
            [&format!("big:{device}")],
            "one alert (one idempotency key) per device"
        );
    }
    let repeated: Vec<_> = seen
        .iter()
        .filter(|(_, (n, _))| *n > 1)
        .map(|(d, _)| d.clone())
        .collect();
    assert_eq!(
        (status.targeted, status.sent),
        (DEVICES as u64, DEVICES as u64)
    );
    if graceful {
        // A drained fan-out answered everything it claimed: nothing is sent twice.
        assert!(repeated.is_empty(), "repeated after SIGTERM: {repeated:?}");
        assert_eq!(status.resent, 0);
    } else {
        // Only sends in flight at the kill can reach a device twice, with the same key; the
        // devices claimed but not yet sent (at most the pages in flight) are sent again too.
        assert!(repeated.len() <= CONCURRENCY, "{repeated:?}");
        assert!(
            repeated.len() <= status.resent as usize,
            "{repeated:?} vs {status:?}"
        );
        assert!(status.resent as usize <= 4 * 16, "{status:?}");
        assert!(repeated.iter().all(|d| seen[d].0 == 2), "{repeated:?}");
    }
    eprintln!(
        "resent after the restart: {} ({repeated:?} reached twice)",
        status.resent
    );
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sigkill_mid_fan_out_misses_no_device_and_repeats_only_in_flight_sends_under_one_key() {
    crash_mid_fan_out(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sigterm_mid_fan_out_resumes_on_restart_without_sending_anything_twice() {
    crash_mid_fan_out(true).await;
}
// Test-only keys, generated for these tests with `openssl` (never used anywhere else).
const APNS_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgg3ODbOK9F5Z7detq
67579vtshu55n8KWbdwFAVu4lgihRANCAARgCvRpOTxuMo7kQ6T5j6D24PRMFAul
T/CI1ck3ziH/piNdGDZAWTVziDkxGk0/FD8OXKraW7fdwBJwvFgYVdwE
-----END PRIVATE KEY-----";
const APNS_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEYAr0aTk8bjKO5EOk+Y+g9uD0TBQL
pU/wiNXJN84h/6YjXRg2QFk1c4g5MRpNPxQ/Dlyq2lu33cAScLxYGFXcBA==
-----END PUBLIC KEY-----";
const VAPID_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgCic3dHpTID5Tt2Fe
MFLNO8HxI8p5sg71Y+/R74EHYeahRANCAAQHSX7jl1PSE64CjsjntvUfLuXAuLlG
HwNAdUlwOZA9f5C0SH4xwXHfx4BjSJDOLTjb+1Nux7hh8cJIJV7pQvYY
-----END PRIVATE KEY-----";
const VAPID_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEB0l+45dT0hOuAo7I57b1Hy7lwLi5
Rh8DQHVJcDmQPX+QtEh+McFx38eAY0iQzi042/tTbse4YfHCSCVe6UL2GA==
-----END PUBLIC KEY-----";
const FCM_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDAFXlEN2fRdyrn
WRDAkhgDRfJVxJXvyfA8NEJbDYtkvRvY2Q+oge/GmPYruCBfSKQVk2L1onDimW1o
kf0irv5+ADbKnN6JZxBtzrBlFsVlH9Wsqixa/obF9qxM8ymDTFFvnQo8q2AQ0ILu
cqbAgOwZBFNCTTAgRDD5px/QBfhE4D54gM1gsRDySXEEWkpRpNo0t7cU/9gUWglF
E+TS3IroSY3Vy6Wrl/8SDSavAvdWNmue/BpXD2O3yv932v5WO6JK35tAu3gyQrEP
JdPXSKouDH63bQpRZswqrDba5p6vRV/zMPKbtxBfXlWoQX9uoOFUOwF5Zz3zzaPL
w9OH/DH7AgMBAAECggEAW2q85Jzz4Yp0Flfas7O0Dva+r1gYvd8fYR/EBt6q3T5t
XuZrX9i7W4rX+hWu/notcYFMQzhUvluj6PU2AshDIYeLjCFdfgpZlNEePXY5avfc
M0loQ8RIMzZDaXn+41iyl0qnoRk05ru93KsfNpYFB6D52R+wTGL35hFGgDQfJPO7
AxfLI3FLW+oXqiWZYuq+bnfhKe48PdKFMgeTN4fblo6EruT9QYBfqi4j5T8zYiti
Y8NVzj9wK2FcVSS3u+xziH+ySQBNr5sCT0Ou96nCWdkxGC3kaphvVhx0fmCRSqsp
8TvfQ46uBZfSL3N01RSew5jHx8n4A5lIINcKo8GNkQKBgQDrc93W3eu7ypnN4/A/
/KB9HkjxSq3qYul8b7YAQZ81CtVCdB6a7yTftK62d1obfi/Hvr80gOmZIYdP7+fR
hyKFBimpCXn1K2Tk9NfYjtd9/9P0GhzMzCGYvZXUlg1ANkv3kR3/VoUbq2T10EPx
fk8u4OigieTruuBX7CR+6PaZkQKBgQDQ2Lo0fSDub1KZWGNYxbLQWpLwPeFRhJZA
cMjAAW7iRg0o2DWGfJjvBoRzi+oJ34/8cGpShW+YUy/z6bGyEipLEkwvN6hINz+u
oH29Zx/a+0rMv58WCsCO16DVV1xj3fxi3lB8qqNFDKJa1sQvVltTbdKDVlgwXpTD
UGPCf5OsywKBgBeRYYNAc3g4r2yMhF/jSa08etCsSPxNKlHqXK1p5CXLD823Edkw
VuCNlW9uQva9isrTrQ/0V22cjY7S1MGEZVArbcAd0rdXwKGqYHCs26UhFnY4pulZ
BYPkdjrxSiJDTRdaz0XfwzMh1NlGH4bsvcBTgvWO1/tAmXQzjvOlHgoBAoGBAIIV
jJ4nFn0NoCBd2ruvoLqAwCeeE5uH/2KyHYjjG6MbSRUY3vYe4892esfR7Xwq4W+2
wbMW5DS4FBVUiddF00whYIzEmTAqIaNu2gNAman3flbcQIYlOl1+1/Iq0SRvX8Zh
fTa5vqrCvNniDh8CJi5oKIigHpw6PWUOzKSYfG5TAoGBANZiqoBwRCw53hL7MVZ1
dp4UEFDAuL5yckW9xE8mYfkBzD0PXf/3N6DackkU5Cx3hI2G6jBU4uqyCnN+kmE4
uhFiDZeze2k6G29yyGi90b1vcjjdJUITQ+KvKZtc3SNKQpCNcxtRbjNXucjmSaGe
GpXDMR60UXvbaVq28N6WUlUa
-----END PRIVATE KEY-----";
const FCM_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAwBV5RDdn0Xcq51kQwJIY
A0XyVcSV78nwPDRCWw2LZL0b2NkPqIHvxpj2K7ggX0ikFZNi9aJw4pltaJH9Iq7+
fgA2ypzeiWcQbc6wZRbFZR/VrKosWv6GxfasTPMpg0xRb50KPKtgENCC7nKmwIDs
GQRTQk0wIEQw+acf0AX4ROA+eIDNYLEQ8klxBFpKUaTaNLe3FP/YFFoJRRPk0tyK
6EmN1culq5f/Eg0mrwL3VjZrnvwaVw9jt8r/d9r+VjuiSt+bQLt4MkKxDyXT10iq
Lgx+t20KUWbMKqw22uaer0Vf8zDym7cQX15VqEF/bqDhVDsBeWc9882jy8PTh/wx
+wIDAQAB
-----END PUBLIC KEY-----";

// ---------------------------------------------------------------------------------------------
// Web Push, APNs and FCM against local endpoints that check what the real providers require.

const APNS_TEAM: &str = "TEAMID1234";
const APNS_KEY_ID: &str = "KEYID56789";
const APNS_TOPIC: &str = "com.example.news";
const FCM_PROJECT: &str = "newsroom-test";
const FCM_EMAIL: &str = "alerts@newsroom-test.iam.gserviceaccount.com";
const FCM_ACCESS: &str = "fcm-access-token-1";
const VAPID_SUBJECT: &str = "mailto:alerts@newsroom.test";

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn b64url_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .unwrap()
}

/// The uncompressed P-256 point of a public key PEM (the last 65 bytes of its SPKI).
fn ec_point(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    der[der.len() - 65..].to_vec()
}

fn jwt_claims(
    token: &str,
    key: &jsonwebtoken::DecodingKey,
    alg: jsonwebtoken::Algorithm,
) -> (jsonwebtoken::Header, serde_json::Value) {
    let mut v = jsonwebtoken::Validation::new(alg);
    v.validate_exp = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<serde_json::Value>(token, key, &v)
        .unwrap_or_else(|e| panic!("the JWT verifies with the provider's public key: {e}"));
    (data.header, data.claims)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A browser's push subscription: its keys, as the test (the "browser") keeps them.
struct Subscription {
    components: ece::EcKeyComponents,
    auth: [u8; 16],
    p256dh: String,
}

fn subscription() -> Subscription {
    let (pair, auth) = ece::generate_keypair_and_auth_secret().unwrap();
    Subscription {
        components: pair.raw_components().unwrap(),
        auth,
        p256dh: b64url(&pair.pub_as_raw().unwrap()),
    }
}

fn json_response(status: StatusCode, body: serde_json::Value) -> (StatusCode, HeaderMap, String) {
    let mut h = HeaderMap::new();
    h.insert("content-type", "application/json".parse().unwrap());
    (status, h, body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn web_push_apns_and_fcm_get_what_the_providers_require_collapse_corrections_and_drop_gone_devices()
 {
    let pipeline = Pipeline::start_only(&[]).await;

    // Web Push: 201 for live subscriptions, 410 for an expired one.
    let push = Endpoint::serve(
        Duration::ZERO,
        Arc::new(|hit: &Hit| {
            if hit.path.ends_with("/gone") {
                (StatusCode::GONE, HeaderMap::new(), String::new())
            } else {
                (StatusCode::CREATED, HeaderMap::new(), String::new())
            }
        }),
    )
    .await;
    // APNs: 200, or 410 Unregistered for one token.
    let apns_gone = "b".repeat(64);
    let apns = Endpoint::serve(Duration::ZERO, {
        let gone = apns_gone.clone();
        Arc::new(move |hit: &Hit| {
            if hit.path.ends_with(&gone) {
                json_response(
                    StatusCode::GONE,
                    serde_json::json!({"reason": "Unregistered", "timestamp": 1}),
                )
            } else {
                (StatusCode::OK, HeaderMap::new(), String::new())
            }
        })
    })
    .await;
    // FCM: the OAuth token endpoint and messages:send; one token unregistered, one throttled
    // once with Retry-After.
    let throttled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let fcm = Endpoint::serve(Duration::ZERO, {
        let throttled = throttled.clone();
        Arc::new(move |hit: &Hit| {
            if hit.path == "/token" {
                return json_response(StatusCode::OK, serde_json::json!({"access_token": FCM_ACCESS, "expires_in": 3600, "token_type": "Bearer"}));
            }
            match hit.json()["message"]["token"].as_str() {
                Some("fcm-gone") => json_response(StatusCode::NOT_FOUND, serde_json::json!({"error": {"code": 404, "status": "NOT_FOUND", "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"}]}})),
                Some("fcm-busy") if throttled.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 => {
                    let (s, mut h, b) = json_response(StatusCode::TOO_MANY_REQUESTS, serde_json::json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "QUOTA_EXCEEDED"}]}}));
                    h.insert("retry-after", "1".parse().unwrap());
                    (s, h, b)
                }
                _ => json_response(StatusCode::OK, serde_json::json!({"name": format!("projects/{FCM_PROJECT}/messages/1")})),
            }
        })
    })
    .await;

    let account = serde_json::json!({
        "type": "service_account", "project_id": FCM_PROJECT, "private_key_id": "fcm-key-1",
        "private_key": FCM_KEY, "client_email": FCM_EMAIL, "token_uri": fcm.url("/token"),
    });
    let channels = serde_json::json!([
        {"type": "web_push", "vapid_private_key": VAPID_KEY, "subject": VAPID_SUBJECT, "allow_http": true, "push_services": ["127.0.0.1"]},
        {"type": "apns", "base_url": apns.url(""), "team_id": APNS_TEAM, "key_id": APNS_KEY_ID, "private_key": APNS_KEY, "topic": APNS_TOPIC},
        {"type": "fcm", "base_url": fcm.url(""), "project_id": FCM_PROJECT, "service_account": account.to_string()},
    ]);
    let service =
        Notification::start(&pipeline, &[("NEWSROOM_CHANNELS", channels.to_string())]).await;
    let mut notif = service.client().await;
    let newsroom = Newsroom::new(&pipeline);
    newsroom.follow("reader", &[TECH]).await;

    let browser = subscription();
    let expired = subscription();
    let apns_token = "a".repeat(64);
    let mut devices = vec![
        Device {
            device_id: "browser".into(),
            channel: DeviceChannel::WebPush as i32,
            address: push.url("/push/browser"),
            web_push: Some(newsroom_proto::v1::WebPushKeys {
                p256dh: browser.p256dh.clone(),
                auth: b64url(&browser.auth),
            }),
            ..Default::default()
        },
        Device {
            device_id: "old-browser".into(),
            channel: DeviceChannel::WebPush as i32,
            address: push.url("/push/gone"),
            web_push: Some(newsroom_proto::v1::WebPushKeys {
                p256dh: expired.p256dh.clone(),
                auth: b64url(&expired.auth),
            }),
            ..Default::default()
        },
        Device {
            device_id: "iphone".into(),
            channel: DeviceChannel::Apns as i32,
            address: apns_token.clone(),
            ..Default::default()
        },
        Device {
            device_id: "old-iphone".into(),
            channel: DeviceChannel::Apns as i32,
            address: apns_gone.clone(),
            ..Default::default()
        },
        Device {
            device_id: "pixel".into(),
            channel: DeviceChannel::Fcm as i32,
            address: "fcm-good".into(),
            ..Default::default()
        },
        Device {
            device_id: "busy-pixel".into(),
            channel: DeviceChannel::Fcm as i32,
            address: "fcm-busy".into(),
            ..Default::default()
        },
        Device {
            device_id: "old-pixel".into(),
            channel: DeviceChannel::Fcm as i32,
            address: "fcm-gone".into(),
            ..Default::default()
        },
    ];
    for d in &mut devices {
        d.user_id = "reader".into();
        register(&mut notif, d.clone()).await;
    }
    // A subscription without its keys is refused, naming the field.
    let err = notif
        .register_device(RegisterDeviceRequest {
            device: Some(Device {
                web_push: None,
                device_id: "keyless".into(),
                ..devices[0].clone()
            }),
        })
        .await
        .expect_err("keys are required");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("device.web_push"),
        "{}",
        err.message()
    );
    pipeline.wait_in_audience(TECH, "reader").await;

    let started = Instant::now();
    newsroom
        .publish_story(&story("moon", 1, 1, &[TECH], "Astronauts land on the Moon"))
        .await;
    let status = wait_sent(&notif, "moon", 7, Duration::from_secs(30)).await;
    assert_eq!(
        (
            status.targeted,
            status.sent,
            status.delivered,
            status.failed
        ),
        (7, 7, 4, 3)
    );

    // Web Push: RFC 8030 headers, VAPID, and a payload only the subscription's key decrypts.
    let pushes: Vec<Hit> = push
        .hits()
        .into_iter()
        .filter(|h| h.path == "/push/browser")
        .collect();
    assert_eq!(pushes.len(), 1);
    let p = &pushes[0];
    assert_eq!(p.method, Method::POST);
    assert_eq!(p.header("content-encoding"), "aes128gcm");
    assert_eq!(p.header("ttl"), "3600");
    assert_eq!(p.header("urgency"), "high");
    let topic = p.header("topic").to_owned();
    assert!(
        topic.len() <= 32
            && topic
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{topic}"
    );
    let vapid = p.header("authorization");
    let (t, k) = vapid
        .strip_prefix("vapid t=")
        .and_then(|r| r.split_once(", k="))
        .unwrap_or_else(|| panic!("VAPID authorization {vapid:?}"));
    assert_eq!(
        b64url_decode(k),
        ec_point(VAPID_PUBLIC),
        "k is the VAPID public key"
    );
    let (header, claims) = jwt_claims(
        t,
        &jsonwebtoken::DecodingKey::from_ec_pem(VAPID_PUBLIC.as_bytes()).unwrap(),
        jsonwebtoken::Algorithm::ES256,
    );
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    assert_eq!(claims["aud"], format!("http://{}", push.addr));
    assert_eq!(claims["sub"], VAPID_SUBJECT);
    let exp = claims["exp"].as_i64().unwrap();
    assert!(
        exp > unix_now() && exp <= unix_now() + 24 * 3600,
        "exp {exp}"
    );
    let plain = ece::decrypt(&browser.components, &browser.auth, &p.body)
        .expect("the browser decrypts the alert");
    let alert: serde_json::Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(
        (
            alert["story_id"].as_str(),
            alert["headline"].as_str(),
            alert["correction"].as_bool()
        ),
        (
            Some("moon"),
            Some("Astronauts land on the Moon"),
            Some(false)
        )
    );
    assert!(
        ece::decrypt(&expired.components, &expired.auth, &p.body).is_err(),
        "no other key decrypts it"
    );

    // APNs: HTTP/2 and the headers and body Apple requires, with a provider token it verifies.
    let to_iphone: Vec<Hit> = apns
        .hits()
        .into_iter()
        .filter(|h| h.path == format!("/3/device/{apns_token}"))
        .collect();
    assert_eq!(to_iphone.len(), 1);
    let a = &to_iphone[0];
    assert_eq!((&a.method, a.version), (&Method::POST, Version::HTTP_2));
    let bearer = a
        .header("authorization")
        .strip_prefix("bearer ")
        .expect("bearer provider token");
    let (header, claims) = jwt_claims(
        bearer,
        &jsonwebtoken::DecodingKey::from_ec_pem(APNS_PUBLIC.as_bytes()).unwrap(),
        jsonwebtoken::Algorithm::ES256,
    );
    assert_eq!(header.kid.as_deref(), Some(APNS_KEY_ID));
    assert_eq!(claims["iss"], APNS_TEAM);
    assert!((claims["iat"].as_i64().unwrap() - unix_now()).abs() < 120);
    assert_eq!(a.header("apns-topic"), APNS_TOPIC);
    assert_eq!(a.header("apns-push-type"), "alert");
    assert_eq!(a.header("apns-priority"), "10");
    assert_eq!(a.header("apns-collapse-id"), "moon");
    assert!(a.header("apns-expiration").parse::<i64>().unwrap() > unix_now());
    let apns_id = a.header("apns-id").to_owned();
    assert!(
        apns_id.len() == 36 && apns_id.matches('-').count() == 4,
        "{apns_id}"
    );
    assert!(a.body.len() <= 4096);
    let body = a.json();
    assert_eq!(body["aps"]["alert"]["body"], "Astronauts land on the Moon");
    assert_eq!(body["aps"]["sound"], "default");
    assert_eq!(body["story_id"], "moon");

    // FCM: an OAuth token from the service account, then HTTP v1 messages over HTTP/2.
    let fcm_hits = fcm.hits();
    let token_requests: Vec<&Hit> = fcm_hits.iter().filter(|h| h.path == "/token").collect();
    assert_eq!(
        token_requests.len(),
        1,
        "one access token for the whole fan-out"
    );
    let form = String::from_utf8_lossy(&token_requests[0].body).to_string();
    let assertion = form
        .strip_prefix("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=")
        .unwrap_or_else(|| panic!("a jwt-bearer grant: {form}"));
    let (header, claims) = jwt_claims(
        assertion,
        &jsonwebtoken::DecodingKey::from_rsa_pem(FCM_PUBLIC.as_bytes()).unwrap(),
        jsonwebtoken::Algorithm::RS256,
    );
    assert_eq!(header.kid.as_deref(), Some("fcm-key-1"));
    assert_eq!(
        (claims["iss"].as_str(), claims["aud"].as_str()),
        (Some(FCM_EMAIL), Some(fcm.url("/token").as_str()))
    );
    assert_eq!(
        claims["scope"],
        "https://www.googleapis.com/auth/firebase.messaging"
    );
    let sends: Vec<&Hit> = fcm_hits
        .iter()
        .filter(|h| h.path == format!("/v1/projects/{FCM_PROJECT}/messages:send"))
        .collect();
    for s in &sends {
        assert_eq!((&s.method, s.version), (&Method::POST, Version::HTTP_2));
        assert_eq!(s.header("authorization"), format!("Bearer {FCM_ACCESS}"));
        let m = &s.json()["message"];
        assert_eq!(m["notification"]["body"], "Astronauts land on the Moon");
        assert_eq!(m["data"]["story_id"], "moon");
        assert_eq!(m["android"]["collapse_key"], "moon");
        assert_eq!(m["android"]["priority"], "HIGH");
        assert_eq!(m["apns"]["headers"]["apns-collapse-id"], "moon");
        assert_eq!(m["webpush"]["headers"]["Topic"], topic.as_str());
    }
    let to = |token: &str| {
        sends
            .iter()
            .filter(|s| s.json()["message"]["token"] == token)
            .count()
    };
    assert_eq!(
        (to("fcm-good"), to("fcm-busy"), to("fcm-gone")),
        (1, 2, 1),
        "the throttled send retried once"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );

    // Gone devices are unregistered; the others are not.
    for gone in ["old-browser", "old-iphone", "old-pixel"] {
        let e = notif
            .unregister_device(newsroom_proto::v1::UnregisterDeviceRequest {
                device_id: gone.into(),
            })
            .await
            .expect_err("a gone device was removed");
        assert_eq!(e.code(), tonic::Code::NotFound, "{gone}");
    }

    // A correction replaces the alert through each provider's collapse id, quietly; a later
    // plain update sends nothing.
    let (n_push, n_apns, n_fcm) = (push.count(), apns.count(), fcm.count());
    let mut corrected = story(
        "moon",
        2,
        1,
        &[TECH],
        "Astronauts land on the Moon's south pole",
    );
    corrected.story.as_mut().unwrap().signal = newsroom_proto::v1::Signal::Correction as i32;
    newsroom.publish_story(&corrected).await;
    let fixed = eventually(Duration::from_secs(30), "the correction sent", || {
        let mut notif = notif.clone();
        async move {
            alert_status(&mut notif, "moon")
                .await
                .filter(|s| s.corrected >= 4)
        }
    })
    .await;
    assert_eq!(fixed.corrected, 4);
    newsroom
        .publish_story(&story(
            "moon",
            3,
            1,
            &[TECH],
            "Astronauts land on the Moon's south pole, NASA says",
        ))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let p2: Vec<Hit> = push.hits()[n_push..].to_vec();
    assert_eq!(p2.len(), 1);
    assert_eq!(
        p2[0].header("topic"),
        topic,
        "same Topic: the push service replaces the alert"
    );
    let again: serde_json::Value = serde_json::from_slice(
        &ece::decrypt(&browser.components, &browser.auth, &p2[0].body).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (
            again["headline"].as_str(),
            again["correction"].as_bool(),
            again["tag"].as_str()
        ),
        (
            Some("Astronauts land on the Moon's south pole"),
            Some(true),
            Some("moon")
        )
    );
    let a2: Vec<Hit> = apns.hits()[n_apns..].to_vec();
    assert_eq!(a2.len(), 1);
    assert_eq!(a2[0].header("apns-collapse-id"), "moon");
    assert_eq!(a2[0].header("apns-priority"), "5");
    assert!(
        a2[0].json()["aps"].get("sound").is_none(),
        "a correction makes no sound"
    );
    let f2: Vec<Hit> = fcm.hits()[n_fcm..].to_vec();
    assert_eq!(f2.len(), 2, "pixel and busy-pixel");
    for f in &f2 {
        let m = &f.json()["message"];
        assert_eq!(
            (
                m["android"]["collapse_key"].as_str(),
                m["data"]["correction"].as_str()
            ),
            (Some("moon"), Some("true"))
        );
    }
    service.stop().await;
}

// ---------------------------------------------------------------------------------------------
// In-app alerts, and who may call what.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_app_alerts_reach_an_open_app_and_a_late_app_catches_up_since() {
    let pipeline = Pipeline::start_only(&[]).await;
    let service = Notification::start(&pipeline, &[]).await;
    let mut notif = service.client().await;
    let newsroom = Newsroom::new(&pipeline);
    newsroom.follow("app-user", &[TECH]).await;
    register(
        &mut notif,
        Device {
            device_id: "app".into(),
            user_id: "app-user".into(),
            channel: DeviceChannel::InApp as i32,
            ..Default::default()
        },
    )
    .await;
    pipeline.wait_in_audience(TECH, "app-user").await;
    let opened_at = SystemTime::now();
    let mut open = notif
        .stream_alerts(newsroom_proto::v1::StreamAlertsRequest {
            user_id: "app-user".into(),
            since: None,
        })
        .await
        .expect("StreamAlerts")
        .into_inner();

    newsroom
        .publish_story(&story("inapp-1", 1, 1, &[TECH], "Markets halt trading"))
        .await;
    let alert = tokio::time::timeout(Duration::from_secs(30), open.message())
        .await
        .expect("an alert within 30 s")
        .expect("stream open")
        .expect("an alert");
    assert_eq!(
        (alert.story_id.as_str(), alert.headline.as_str()),
        ("inapp-1", "Markets halt trading")
    );
    assert!(alert.sent_at.is_some());
    let status = wait_sent(&notif, "inapp-1", 1, Duration::from_secs(10)).await;
    assert_eq!(status.delivered, 1);

    // An app opened later asks for what it missed since it last looked.
    let mut late = notif
        .stream_alerts(newsroom_proto::v1::StreamAlertsRequest {
            user_id: "app-user".into(),
            since: Some((opened_at - Duration::from_secs(60)).into()),
        })
        .await
        .unwrap()
        .into_inner();
    let missed = tokio::time::timeout(Duration::from_secs(5), late.message())
        .await
        .expect("the replay at once")
        .unwrap()
        .expect("the missed alert");
    assert_eq!(missed.story_id, "inapp-1");
    // Nothing else is pending for this user.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), late.message())
            .await
            .is_err()
    );
    service.stop().await;
}

fn with_token<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    if let Some(t) = token {
        r.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn editors_send_alerts_services_manage_devices_and_no_credential_reaches_a_log() {
    const EDITOR: &str = "editor-secret-token-7f3a9c";
    const SERVICE: &str = "service-secret-token-41be2d";
    const WEBHOOK_KEY: &str = "webhook-secret-key-93ad1e";
    let pipeline = Pipeline::start_only(&[]).await;

    // A bad auth or channel configuration exits 64 naming the variable, echoing no secret.
    for (var, value, extra) in [
        (
            "NEWSROOM_AUTH_TOKENS",
            "",
            vec![("NEWSROOM_AUTH_MODE", "tokens")],
        ),
        (
            "NEWSROOM_CHANNELS",
            r#"[{"type": "apns", "team_id": "T", "key_id": "K", "private_key": "not-a-key-93ad1e", "topic": "x"}]"#,
            vec![],
        ),
    ] {
        let out = tokio::process::Command::new(newsroom_e2e::binary("newsroom-notification"))
            .envs(pipeline.env(Service::Notification))
            .envs(extra)
            .env(var, value)
            .env("NEWSROOM_GRPC_ADDR", "127.0.0.1:0")
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{stderr}");
        assert!(stderr.contains(var), "{stderr}");
        assert!(!stderr.contains("93ad1e"), "a secret was echoed: {stderr}");
    }

    let log = std::env::temp_dir().join(format!("notification-auth-{}.log", pipeline.id));
    let log_file = std::fs::File::create(&log).unwrap();
    let grpc = free_addr();
    let admin = free_addr();
    let mut child = tokio::process::Command::new(newsroom_e2e::binary("newsroom-notification"))
        .envs(pipeline.env(Service::Notification))
        .env("NEWSROOM_AUTH_MODE", "tokens")
        .env(
            "NEWSROOM_AUTH_TOKENS",
            format!("editor:{EDITOR},service:{SERVICE}"),
        )
        .env("NEWSROOM_WEBHOOK_SECRET", WEBHOOK_KEY)
        .env("NEWSROOM_GRPC_ADDR", &grpc)
        .env("NEWSROOM_ADMIN_ADDR", &admin)
        // Everything, so that a leak would show.
        .env(
            "RUST_LOG",
            "trace,h2=info,hyper=info,rdkafka=info,tower=info",
        )
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_ready(admin.parse().unwrap()).await;
    let mut notif = client(grpc.parse().unwrap()).await;
    let phone = Endpoint::ok(Duration::ZERO).await;
    let device = webhook("authz-phone", "authz-user", &phone.url("/p"));
    let reg = |token: Option<&str>| {
        with_token(
            RegisterDeviceRequest {
                device: Some(device.clone()),
            },
            token,
        )
    };
    let code =
        |r: Result<tonic::Response<Device>, tonic::Status>| r.map(|_| ()).map_err(|e| e.code());
    assert_eq!(
        code(notif.register_device(reg(None)).await),
        Err(tonic::Code::Unauthenticated)
    );
    assert_eq!(
        code(
            notif
                .register_device(reg(Some("made-up-token-123456")))
                .await
        ),
        Err(tonic::Code::Unauthenticated)
    );
    assert_eq!(
        code(notif.register_device(reg(Some(EDITOR))).await),
        Err(tonic::Code::PermissionDenied)
    );
    assert_eq!(
        code(notif.register_device(reg(Some(SERVICE))).await),
        Ok(())
    );

    let alert = |token: Option<&str>| {
        with_token(
            SendAlertRequest {
                story_id: "no-such-story".into(),
                audience: None,
                critical: true,
                dry_run: false,
                expires_after: None,
            },
            token,
        )
    };
    let code = |r: Result<tonic::Response<newsroom_proto::v1::AlertStatus>, tonic::Status>| {
        r.map(|_| ()).map_err(|e| e.code())
    };
    assert_eq!(
        code(notif.send_alert(alert(None)).await),
        Err(tonic::Code::Unauthenticated)
    );
    assert_eq!(
        code(notif.send_alert(alert(Some(SERVICE))).await),
        Err(tonic::Code::PermissionDenied)
    );
    // The editor is let through, to learn the story does not exist.
    assert_eq!(
        code(notif.send_alert(alert(Some(EDITOR))).await),
        Err(tonic::Code::NotFound)
    );
    let get = |token: &str| {
        with_token(
            GetAlertRequest {
                story_id: "no-such-story".into(),
            },
            Some(token),
        )
    };
    assert_eq!(
        code(notif.get_alert(get(SERVICE)).await),
        Err(tonic::Code::NotFound)
    );
    assert_eq!(
        code(notif.get_alert(get(EDITOR)).await),
        Err(tonic::Code::NotFound)
    );

    // The signed webhook still goes out, and nothing secret was written to the log.
    let newsroom = Newsroom::new(&pipeline);
    newsroom.follow("authz-user", &[TECH]).await;
    pipeline.wait_in_audience(TECH, "authz-user").await;
    newsroom
        .publish_story(&story("authz-flash", 1, 1, &[TECH], "Flash"))
        .await;
    eventually(Duration::from_secs(30), "the alert", || {
        let n = phone.count();
        async move { (n == 1).then_some(()) }
    })
    .await;
    child.kill().await.unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("device registered"),
        "the log is being written: {text:.2000}"
    );
    for secret in [EDITOR, SERVICE, WEBHOOK_KEY, "made-up-token-123456"] {
        assert!(!text.contains(secret), "{secret} appears in the log");
    }
    let _ = std::fs::remove_file(log);
}

/// Issue 14: a kill deleted the cached story that was the version guard, so an older version
/// arriving after the kill (an enrichment replica that was slow on it, a replay) alerted
/// followers about a story the newsroom had killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_version_older_than_a_kill_never_alerts() {
    let pipeline = Pipeline::start_only(&[]).await;
    let service = Notification::start(&pipeline, &[]).await;
    let mut notif = service.client().await;
    let newsroom = Newsroom::new(&pipeline);
    let phone = Endpoint::ok(Duration::ZERO).await;
    newsroom.follow("dan", &[TECH]).await;
    register(
        &mut notif,
        webhook("dan-phone", "dan", &phone.url("/dan-phone")),
    )
    .await;
    pipeline.wait_in_audience(TECH, "dan").await;

    // The kill (version 2) is handled first; the breaking version 1 comes after it.
    let mut kill = story("killed-1", 2, 1, &[TECH], "Withdrawn");
    kill.story.as_mut().unwrap().pubstatus = newsroom_proto::v1::PubStatus::Canceled as i32;
    newsroom.publish_story(&kill).await;
    newsroom
        .publish_story(&story(
            "killed-1",
            1,
            1,
            &[TECH],
            "Early flash, since killed",
        ))
        .await;
    // A flash published after both is alerted: by then both were handled (or nearly: their
    // partition may differ, so a little more time is given).
    newsroom
        .publish_story(&story("control-1", 1, 1, &[TECH], "Another flash"))
        .await;
    wait_sent(&notif, "control-1", 1, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let killed_alerts = phone
        .hits()
        .iter()
        .filter(|h| h.json()["story_id"] == "killed-1")
        .count();
    assert_eq!(killed_alerts, 0, "an alert for a killed story");
    service.stop().await;
    pipeline.stop().await;
}

/// Issue 14: notification read its Redis index epoch only at start, so after a Redis flush the
/// audiences stayed empty until a restart (a flash reached nobody), and the ledger was gone (a
/// redelivered flash alerted everyone again). Now the loss is noticed at run time and the state
/// rebuilt from Kafka: devices, follows, and the ledger from the delivery receipts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_redis_flush_a_new_flash_still_alerts_and_a_redelivered_one_does_not() {
    let pipeline = Pipeline::start_only(&[]).await;
    let service = Notification::start(&pipeline, &[]).await;
    let mut notif = service.client().await;
    let newsroom = Newsroom::new(&pipeline);
    let phone = Endpoint::ok(Duration::ZERO).await;
    newsroom.follow("erin", &[TECH]).await;
    register(
        &mut notif,
        webhook("erin-phone", "erin", &phone.url("/erin-phone")),
    )
    .await;
    pipeline.wait_in_audience(TECH, "erin").await;
    let before = story("before-flush", 1, 1, &[TECH], "Flash before the flush");
    newsroom.publish_story(&before).await;
    wait_sent(&notif, "before-flush", 1, Duration::from_secs(30)).await;

    // "FLUSHALL" for this pipeline: every key under its prefix, while notification runs.
    assert!(pipeline.flush_redis().await.expect("flush") > 0);

    // The flash before the flush is redelivered; a new flash follows.
    newsroom.publish_story(&before).await;
    newsroom
        .publish_story(&story(
            "after-flush",
            1,
            1,
            &[TECH],
            "Flash after the flush",
        ))
        .await;
    eventually(
        Duration::from_secs(60),
        "the flash after the flush on erin's phone",
        || {
            let phone = phone.clone();
            async move {
                phone
                    .hits()
                    .iter()
                    .any(|h| h.json()["story_id"] == "after-flush")
                    .then_some(())
            }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut per_story: BTreeMap<String, usize> = BTreeMap::new();
    for hit in phone.hits() {
        *per_story
            .entry(
                hit.json()["story_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
            .or_default() += 1;
    }
    assert_eq!(
        per_story,
        BTreeMap::from([("after-flush".into(), 1), ("before-flush".into(), 1)]),
        "one alert per story and device across the flush"
    );
    service.stop().await;
    pipeline.stop().await;
}

/// Issue 14: a send that failed (a provider answering 503 past the channel's own retries) was
/// final: the reader never got the flash. Now failed devices get later rounds, under the same
/// idempotency key, and the alert's counts end delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_send_that_failed_while_the_provider_was_down_is_sent_in_a_later_round() {
    let pipeline = Pipeline::start_only(&[]).await;
    let service = Notification::start(&pipeline, &[]).await;
    let mut notif = service.client().await;
    let newsroom = Newsroom::new(&pipeline);
    // The provider answers 503 to its first four requests (more than one send's retries).
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let phone = Endpoint::serve(Duration::ZERO, {
        let answered = answered.clone();
        Arc::new(move |_| {
            let n = answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let status = if n < 4 {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            };
            (status, HeaderMap::new(), "{}".into())
        })
    })
    .await;
    newsroom.follow("hal", &[TECH]).await;
    register(
        &mut notif,
        webhook("hal-phone", "hal", &phone.url("/hal-phone")),
    )
    .await;
    pipeline.wait_in_audience(TECH, "hal").await;
    newsroom
        .publish_story(&story(
            "outage-1",
            1,
            1,
            &[TECH],
            "Flash during a provider outage",
        ))
        .await;
    let status = eventually(Duration::from_secs(60), "the flash delivered", || {
        let mut notif = notif.clone();
        async move {
            let s = alert_status(&mut notif, "outage-1").await?;
            (s.delivered == 1).then_some(s)
        }
    })
    .await;
    assert_eq!((status.sent, status.failed), (1, 0), "{status:?}");
    let hits = phone.hits();
    assert!(
        hits.len() > 4,
        "retried past the outage: {} requests",
        hits.len()
    );
    assert!(
        hits.iter()
            .all(|h| h.header("idempotency-key") == "outage-1:hal-phone"),
        "one idempotency key for every attempt"
    );
    service.stop().await;
    pipeline.stop().await;
}
