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
use std::time::{Duration, SystemTime};

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

/// Waits until notification indexed that `user` follows `topic` (from the `profiles` topic).
async fn wait_follower(pipeline: &Pipeline, topic: &str, user: &str) {
    let redis = pipeline.redis().await;
    let key = redis.key(format!("notif:audience:topic:{topic}"));
    eventually(Duration::from_secs(30), "the follow indexed", || {
        let (mut conn, key) = (redis.conn(), key.clone());
        async move {
            let member: bool = conn.sismember(&key, user).await.ok()?;
            member.then_some(())
        }
    })
    .await;
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
    wait_follower(&pipeline, SCIENCE, "bob").await;
    wait_follower(&pipeline, POLITICS, "carol").await;

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
        wait_follower(&pipeline, TECH, user).await;
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
    let devices_key = redis.key("notif:user-devices:everyone");
    eventually(Duration::from_secs(60), "every device indexed", || {
        let (mut conn, key) = (redis.conn(), devices_key.clone());
        async move {
            let n: usize = conn.scard(&key).await.ok()?;
            (n == DEVICES).then_some(())
        }
    })
    .await;
    wait_follower(&pipeline, TECH, "everyone").await;

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
