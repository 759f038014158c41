//! The test kit: the whole pipeline, isolated, against the real Kafka and Redis.
//!
//! [`Pipeline::start`] runs the four services in this process, each on ephemeral ports, with a
//! topic prefix, a Redis key prefix and consumer groups unique to the test, so tests run in
//! parallel and again without seeing each other. The broker and Redis are the ones
//! `deploy/stack.sh up` starts (`KAFKA_BROKERS` / `REDIS_URL` override); a test fails with a
//! clear message when they are not there, it never skips.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use newsroom_platform::config::{self as cfg, Env};
use newsroom_platform::server::Listeners;
use newsroom_platform::shutdown::Shutdown;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

pub mod bench;
mod brokers;
pub mod chaos;
pub mod phones;
pub mod process;
pub mod tls;
pub mod toxiproxy;

pub use brokers::{OwnBroker, OwnCluster};

/// The four services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Ingest,
    Enrichment,
    Recommendation,
    Notification,
}

impl Service {
    pub const ALL: [Service; 4] = [
        Service::Ingest,
        Service::Enrichment,
        Service::Recommendation,
        Service::Notification,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Service::Ingest => "ingest",
            Service::Enrichment => "enrichment",
            Service::Recommendation => "recommendation",
            Service::Notification => "notification",
        }
    }
}

/// Where the shared test data lives (`NEWSROOM_DATA`, else `../shared/data`).
pub fn data_dir() -> PathBuf {
    std::env::var_os("NEWSROOM_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data")))
}

/// Reads a test data file, failing with its name when it is missing.
pub fn data_file(name: &str) -> String {
    let path = data_dir().join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("test data {} is missing: {e}", path.display()))
}

/// The `n`th BBC article of `category` (`tech`, `politics`, `sport`, ...) as a story: distinct
/// `n` are distinct news events (near-duplicates would be one event, one cluster, one card).
pub fn bbc_story(category: &str, n: usize) -> newsroom_proto::v1::Story {
    data_file("bbc-news.jsonl")
        .lines()
        .filter_map(|l| serde_json::from_str::<newsroom_cli::bbc::BbcArticle>(l).ok())
        .filter(|a| a.category == category)
        .nth(n)
        .unwrap_or_else(|| panic!("no {category} article {n}"))
        .to_story()
}

/// A service binary built by `cargo build --workspace --bins` (which `just test` runs first).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/<test> → target/debug/<name>; target/debug/<bin> (`just chaos`) too.
    let dir = exe.parent().expect("target directory");
    let dir = if dir.ends_with("deps") {
        dir.parent().expect("target directory")
    } else {
        dir
    };
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (`just test` does)",
        path.display()
    );
    path
}

struct Running {
    shutdown: Shutdown,
    task: JoinHandle<()>,
    grpc: SocketAddr,
    admin: SocketAddr,
}

/// The pipeline of one test.
pub struct Pipeline {
    /// Unique to the test: `t<id>.` for topics, `test:<id>:` for Redis keys.
    pub id: String,
    /// Extra environment for every service of this pipeline.
    extra_env: HashMap<String, String>,
    running: Vec<(Service, Running)>,
    /// The services speak TLS everywhere (see [`tls`]): `NEWSROOM_E2E_TLS=1`, or
    /// [`Pipeline::start_tls`].
    tls: bool,
}

impl Pipeline {
    /// All four services.
    pub async fn start() -> Self {
        Self::start_only(&Service::ALL).await
    }

    /// Only the given services (a test may run one as a separate process, see [`Pipeline::env`]).
    pub async fn start_only(services: &[Service]) -> Self {
        Self::start_with(services, &[]).await
    }

    /// Only the given services, with extra environment variables for all of them.
    pub async fn start_with(services: &[Service], env: &[(&str, &str)]) -> Self {
        Self::start_as(services, env, tls::from_env()).await
    }

    /// Only the given services, speaking TLS on every connection (gRPC with mTLS, Kafka
    /// SASL_SSL with SCRAM, Redis TLS), whatever `NEWSROOM_E2E_TLS` says.
    pub async fn start_tls(services: &[Service], env: &[(&str, &str)]) -> Self {
        Self::start_as(services, env, true).await
    }

    async fn start_as(services: &[Service], env: &[(&str, &str)], tls: bool) -> Self {
        init_logging();
        check_stack().await;
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let mut pipeline = Pipeline {
            id,
            extra_env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            running: Vec::new(),
            tls,
        };
        for s in services {
            pipeline.start_service(*s).await;
        }
        for s in services {
            pipeline.wait_ready(*s).await;
        }
        pipeline
    }

    /// The environment a service of this pipeline runs with (in process or as a binary): with
    /// TLS, the secure side of the stack.
    pub fn env(&self, service: Service) -> HashMap<String, String> {
        let mut env = self.plain_env(service);
        if self.tls {
            env.extend(tls::service_env());
            env.extend(self.extra_env.clone());
        }
        env
    }

    /// Whether this pipeline's services speak TLS.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// [`Pipeline::env`] without TLS: what the test's own clients (Kafka, Redis) use — the same
    /// broker and Redis, through their plaintext ports.
    fn plain_env(&self, service: Service) -> HashMap<String, String> {
        let mut env = HashMap::new();
        for var in [cfg::KAFKA_BROKERS, cfg::REDIS_URL] {
            if let Ok(v) = std::env::var(var) {
                env.insert(var.to_owned(), v);
            }
        }
        env.insert(cfg::NEWSROOM_TOPIC_PREFIX.into(), format!("t{}.", self.id));
        env.insert(cfg::NEWSROOM_REDIS_PREFIX.into(), self.redis_prefix());
        env.insert(
            cfg::NEWSROOM_CONSUMER_GROUP.into(),
            format!("{}{}", self.consumer_group_prefix(), service.name()),
        );
        env.insert(cfg::NEWSROOM_TOPIC_PARTITIONS.into(), "3".into());
        env.insert(cfg::NEWSROOM_DRAIN_TIMEOUT_MS.into(), "5000".into());
        env.extend(self.extra_env.clone());
        env
    }

    /// What every consumer group of this pipeline's services starts with
    /// (`<prefix><service>`, `<prefix><service>-<suffix>`).
    pub fn consumer_group_prefix(&self) -> String {
        format!("t{}-", self.id)
    }

    pub fn redis_prefix(&self) -> String {
        format!("test:{}:", self.id)
    }

    /// The full name of a topic of this pipeline.
    pub fn topic(&self, base: &str) -> String {
        format!("t{}.{base}", self.id)
    }

    /// The platform config of a service of this pipeline.
    pub fn platform_config(&self, service: Service) -> newsroom_platform::PlatformConfig {
        let env = self.plain_env(service);
        newsroom_platform::PlatformConfig::from_env(
            &Env::from_fn(|k| env.get(k).cloned()),
            service.name(),
            0,
        )
        .expect("test config is valid")
    }

    /// Starts one more instance of a service (a replica, or a restart after [`Self::stop_service`])
    /// and waits until it is ready; returns its gRPC address.
    pub async fn start_replica(&mut self, service: Service) -> SocketAddr {
        self.start_service(service).await;
        let (_, r) = self.running.last().expect("just started");
        wait_ready(service, r.admin).await;
        r.grpc
    }

    /// Stops every instance of a service (as SIGTERM would) and waits for them to drain.
    pub async fn stop_service(&mut self, service: Service) {
        let (stopping, keep): (Vec<_>, Vec<_>) =
            self.running.drain(..).partition(|(s, _)| *s == service);
        self.running = keep;
        for (_, r) in stopping {
            r.shutdown.trigger();
            let _ = tokio::time::timeout(Duration::from_secs(20), r.task).await;
        }
    }

    /// Crashes every instance of a service: its task is dropped where it stands, nothing is
    /// drained, flushed or committed on its way out (in-process, the nearest thing to SIGKILL;
    /// librdkafka's clients are dropped with it).
    pub async fn crash_service(&mut self, service: Service) {
        let (crashing, keep): (Vec<_>, Vec<_>) =
            self.running.drain(..).partition(|(s, _)| *s == service);
        self.running = keep;
        for (_, r) in crashing {
            r.task.abort();
            let _ = r.task.await;
        }
    }

    async fn start_service(&mut self, service: Service) {
        let env = self.env(service);
        let env = Env::from_fn(move |k| env.get(k).cloned());
        let listeners = Listeners::ephemeral().await.expect("bind 127.0.0.1:0");
        let (grpc, admin) = (listeners.grpc_addr(), listeners.admin_addr());
        let shutdown = Shutdown::new();
        let s = shutdown.clone();
        let task = match service {
            Service::Ingest => {
                let c = newsroom_ingest::Config::from_env(&env).expect("ingest config");
                tokio::spawn(async move {
                    newsroom_ingest::run(c, listeners, s)
                        .await
                        .expect("ingest runs")
                })
            }
            Service::Enrichment => {
                let c = newsroom_enrichment::Config::from_env(&env).expect("enrichment config");
                tokio::spawn(async move {
                    newsroom_enrichment::run(c, listeners, s)
                        .await
                        .expect("enrichment runs")
                })
            }
            Service::Recommendation => {
                let c =
                    newsroom_recommendation::Config::from_env(&env).expect("recommendation config");
                tokio::spawn(async move {
                    newsroom_recommendation::run(c, listeners, s)
                        .await
                        .expect("recommendation runs")
                })
            }
            Service::Notification => {
                let c = newsroom_notification::Config::from_env(&env).expect("notification config");
                tokio::spawn(async move {
                    newsroom_notification::run(c, listeners, s)
                        .await
                        .expect("notification runs")
                })
            }
        };
        self.running.push((
            service,
            Running {
                shutdown,
                task,
                grpc,
                admin,
            },
        ));
    }

    fn first(&self, service: Service) -> &Running {
        self.running
            .iter()
            .find(|(s, _)| *s == service)
            .map(|(_, r)| r)
            .unwrap_or_else(|| panic!("{} is not running", service.name()))
    }

    async fn wait_ready(&self, service: Service) {
        wait_ready(service, self.first(service).admin).await;
    }

    pub fn grpc_addr(&self, service: Service) -> SocketAddr {
        self.first(service).grpc
    }

    pub fn admin_addr(&self, service: Service) -> SocketAddr {
        self.first(service).admin
    }

    /// Web, in process, calling this pipeline's services (extra variables on top); its HTTP
    /// address, and the shutdown that stops it.
    pub async fn start_web(&self, extra: &[(&str, &str)]) -> (SocketAddr, Shutdown) {
        let mut env: HashMap<String, String> = HashMap::new();
        for (var, service) in [
            ("NEWSROOM_INGEST_URL", Service::Ingest),
            ("NEWSROOM_ENRICHMENT_URL", Service::Enrichment),
            ("NEWSROOM_RECOMMENDATION_URL", Service::Recommendation),
            ("NEWSROOM_NOTIFICATION_URL", Service::Notification),
        ] {
            if self.running.iter().any(|(s, _)| *s == service) {
                env.insert(var.into(), format!("http://{}", self.grpc_addr(service)));
            }
        }
        env.insert("NEWSROOM_WEB_ADDR".into(), "127.0.0.1:0".into());
        for (k, v) in extra {
            env.insert((*k).into(), (*v).into());
        }
        let config = newsroom_web::Config::from_env(&Env::from_fn(|k| env.get(k).cloned()))
            .expect("web config");
        let listeners = Listeners::ephemeral().await.expect("bind 127.0.0.1:0");
        let addr = listeners.grpc_addr();
        let shutdown = Shutdown::new();
        let s = shutdown.clone();
        tokio::spawn(async move {
            newsroom_web::run(config, listeners, s)
                .await
                .expect("web runs")
        });
        (addr, shutdown)
    }

    /// A service's `/metrics` page (its first instance).
    pub async fn scrape(&self, service: Service) -> String {
        let url = format!("http://{}/metrics", self.admin_addr(service));
        reqwest::get(&url)
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics body")
    }

    /// A gRPC channel to a running service (its first instance).
    pub async fn channel(&self, service: Service) -> Channel {
        self.channel_at(self.grpc_addr(service)).await
    }

    /// A channel to a service of this pipeline at `addr` (a replica, a binary the test runs
    /// with [`Pipeline::env`]): TLS with the client certificate when the pipeline speaks TLS.
    pub async fn channel_at(&self, addr: SocketAddr) -> Channel {
        match self.tls {
            true => tls::channel_to(addr).await,
            false => channel_to(addr).await,
        }
    }

    /// Submits `story` to this pipeline's ingest (panicking if it refuses); the story's id.
    pub async fn submit(&self, story: newsroom_proto::v1::Story) -> String {
        use newsroom_proto::v1::ingest_service_client::IngestServiceClient;
        IngestServiceClient::new(self.channel(Service::Ingest).await)
            .submit_story(newsroom_proto::v1::SubmitStoryRequest {
                story: Some(story),
                idempotency_key: String::new(),
            })
            .await
            .expect("SubmitStory")
            .into_inner()
            .story_id
    }

    /// Every record now in one of this pipeline's topics (base name), in partition order:
    /// (key, value; `None` for a tombstone).
    pub async fn records(&self, base_topic: &str) -> Vec<(String, Option<Vec<u8>>)> {
        let topic = self.topic(base_topic);
        let brokers = self.platform_config(Service::Ingest).kafka_brokers;
        tokio::task::spawn_blocking(move || read_all(&brokers, &topic))
            .await
            .expect("reader thread")
    }

    /// The first record that arrives on this pipeline's `base_topic` (waiting up to 30 s), with
    /// its headers as text: what a DLQ reader sees.
    pub async fn first_record(&self, base_topic: &str) -> FirstRecord {
        use newsroom_platform::kafka::rdkafka::consumer::{Consumer as _, StreamConsumer};
        use newsroom_platform::kafka::rdkafka::message::{Headers as _, Message as _};
        let brokers = self.platform_config(Service::Ingest).kafka_brokers;
        let reader: StreamConsumer =
            newsroom_platform::kafka::client_config(&brokers, "newsroom-e2e")
                .set("group.id", format!("t{}-{base_topic}-reader", self.id))
                .set("auto.offset.reset", "earliest")
                .create()
                .expect("reader");
        reader
            .subscribe(&[&self.topic(base_topic)])
            .expect("subscribe");
        let msg = tokio::time::timeout(Duration::from_secs(30), reader.recv())
            .await
            .unwrap_or_else(|_| panic!("a record in {base_topic} within 30 s"))
            .expect("a record");
        FirstRecord {
            key: msg.key().map(<[u8]>::to_vec),
            payload: msg.payload().map(<[u8]>::to_vec),
            headers: msg
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|x| {
                            (
                                x.key.to_owned(),
                                String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// A Redis connection with this pipeline's prefix (to synchronise on, not to fake state).
    pub async fn redis(&self) -> newsroom_platform::redis::RedisStore {
        let url = std::env::var(cfg::REDIS_URL).unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        newsroom_platform::redis::RedisStore::connect(&url, &self.redis_prefix())
            .await
            .expect("redis")
    }

    /// A reader who follows `topic` and has a webhook device `device` at `url`. Returns once
    /// notification has the reader in the topic's audience (it learns follows from the
    /// `profiles` topic), so a flash story submitted next cannot overtake the follow.
    pub async fn reader_with_phone(&self, user: &str, device: &str, topic: &str, url: &str) {
        self.reader_with_phone_at(
            self.grpc_addr(Service::Recommendation),
            self.grpc_addr(Service::Notification),
            user,
            device,
            topic,
            url,
        )
        .await;
    }

    /// [`Pipeline::reader_with_phone`] through services at other addresses (binaries a test
    /// runs itself with this pipeline's environment).
    pub async fn reader_with_phone_at(
        &self,
        recommendation: SocketAddr,
        notification: SocketAddr,
        user: &str,
        device: &str,
        topic: &str,
        url: &str,
    ) {
        use newsroom_proto::v1::notification_service_client::NotificationServiceClient;
        use newsroom_proto::v1::recommendation_service_client::RecommendationServiceClient;
        use newsroom_proto::v1::{
            Channel as DeviceChannel, Device, FollowRequest, FollowTarget, RegisterDeviceRequest,
            TargetKind,
        };
        RecommendationServiceClient::new(self.channel_at(recommendation).await)
            .follow(FollowRequest {
                user_id: user.into(),
                target: Some(FollowTarget {
                    kind: TargetKind::Topic as i32,
                    value: topic.into(),
                }),
            })
            .await
            .expect("Follow");
        NotificationServiceClient::new(self.channel_at(notification).await)
            .register_device(RegisterDeviceRequest {
                device: Some(Device {
                    device_id: device.into(),
                    user_id: user.into(),
                    channel: DeviceChannel::Webhook as i32,
                    address: url.into(),
                    ..Default::default()
                }),
            })
            .await
            .expect("RegisterDevice");
        self.wait_in_audience(topic, user).await;
    }

    /// The first page (up to 50 items) of `user`'s feed.
    pub async fn feed(&self, user: &str) -> Vec<newsroom_proto::v1::FeedItem> {
        use newsroom_proto::v1::GetFeedRequest;
        use newsroom_proto::v1::recommendation_service_client::RecommendationServiceClient;
        RecommendationServiceClient::new(self.channel(Service::Recommendation).await)
            .get_feed(GetFeedRequest {
                user_id: user.into(),
                limit: 50,
                cursor: String::new(),
            })
            .await
            .expect("GetFeed")
            .into_inner()
            .items
    }

    /// Waits (30 s at most) until notification has story `id` (read from `stories.enriched`):
    /// an editor's alert of it is accepted from then on. Recommendation showing the story says
    /// nothing about notification, which reads the topic in groups of its own.
    pub async fn wait_story_in_notification(&self, id: &str) {
        use newsroom_platform::redis::redis::AsyncCommands as _;
        let redis = self.redis().await;
        let key = redis.key(format!("notif:story:{id}"));
        eventually(
            Duration::from_secs(30),
            &format!("story {id} known to notification"),
            || {
                let (mut conn, key) = (redis.conn(), key.clone());
                async move { conn.exists::<_, bool>(&key).await.ok()?.then_some(()) }
            },
        )
        .await;
    }

    /// Waits (30 s at most) until notification has `user` in the audience of `topic`.
    pub async fn wait_in_audience(&self, topic: &str, user: &str) {
        self.wait_in_audience_of("topic", topic, user).await;
    }

    /// Waits (30 s at most) until notification has `user` in the audience of the `kind`
    /// (`topic`, `entity`, `cluster`) `value`.
    pub async fn wait_in_audience_of(&self, kind: &str, value: &str, user: &str) {
        use newsroom_platform::redis::redis::AsyncCommands as _;
        let redis = self.redis().await;
        let audience = redis.key(format!("notif:{{audiences}}:audience:{kind}:{value}"));
        eventually(
            Duration::from_secs(60),
            &format!("{user} in the audience of {kind} {value}"),
            || {
                let (mut conn, audience) = (redis.conn(), audience.clone());
                async move {
                    let member: bool = conn.sismember(&audience, user).await.ok()?;
                    member.then_some(())
                }
            },
        )
        .await;
    }

    /// Stops every service (as SIGTERM would) and waits for them to drain.
    pub async fn stop(mut self) {
        for (_, r) in self.running.drain(..) {
            r.shutdown.trigger();
            let _ = tokio::time::timeout(Duration::from_secs(20), r.task).await;
        }
        self.delete_topics().await;
        // Best effort: a failure here fails no test.
        let _ = self.flush_redis().await;
    }

    /// Deletes this pipeline's Redis keys (its prefix): what `FLUSHALL` would do to the
    /// services of this pipeline, and the clean-up after it (for the same reason as its
    /// topics). Returns how many keys it deleted.
    pub async fn flush_redis(&self) -> newsroom_platform::redis::redis::RedisResult<usize> {
        let url = std::env::var(cfg::REDIS_URL).unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let store =
            newsroom_platform::redis::RedisStore::connect(&url, &self.redis_prefix()).await?;
        store.delete_matching(&format!("{}*", store.prefix())).await
    }

    /// Deletes this pipeline's topics, so that a broker running the suite again and again
    /// keeps only what the tests running now use (best effort: a failure here fails no test).
    async fn delete_topics(&self) {
        use newsroom_platform::kafka::client_config;
        use newsroom_platform::kafka::rdkafka::admin::{AdminClient, AdminOptions};
        use newsroom_platform::kafka::rdkafka::client::DefaultClientContext;
        let brokers = self.platform_config(Service::Ingest).kafka_brokers;
        let Ok(admin) =
            client_config(&brokers, "newsroom-e2e").create::<AdminClient<DefaultClientContext>>()
        else {
            return;
        };
        let names: Vec<String> = newsroom_platform::kafka::TOPICS
            .iter()
            .map(|t| self.topic(t.name))
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let _ = tokio::time::timeout(
            Duration::from_secs(15),
            admin.delete_topics(&names, &options),
        )
        .await;
    }
}

/// A record read by [`Pipeline::first_record`].
pub struct FirstRecord {
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    /// Header name → value as text (the first value of a name that appears twice).
    pub headers: HashMap<String, String>,
}

impl FirstRecord {
    /// A header's value, empty when absent.
    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).cloned().unwrap_or_default()
    }
}

/// The platform's Kafka parts on `stories.raw`, outside any service: tests of the consumer
/// loop itself (its lag metric, its partitions) produce with [`RawTopic::producer`] and run a
/// handler with [`RawTopic::consume`].
pub struct RawTopic {
    pub config: newsroom_platform::PlatformConfig,
    pub registry: newsroom_platform::metrics::Registry,
    pub metrics: newsroom_platform::metrics::KafkaMetrics,
    pub producer: newsroom_platform::kafka::Producer,
    /// The full name of the pipeline's `stories.raw`.
    pub topic: String,
}

impl RawTopic {
    /// The pipeline's `stories.raw`, created, with a producer.
    pub async fn of(pipeline: &Pipeline) -> Self {
        use newsroom_platform::kafka::{self, topics};
        let config = pipeline.platform_config(Service::Enrichment);
        kafka::ensure_topics(&config, &[topics::STORIES_RAW])
            .await
            .expect("topic");
        let mut registry = newsroom_platform::metrics::Registry::default();
        let metrics = newsroom_platform::metrics::KafkaMetrics::register(&mut registry);
        let producer = kafka::Producer::new(&config, metrics.clone()).expect("producer");
        RawTopic {
            topic: pipeline.topic(topics::STORIES_RAW),
            config,
            registry,
            metrics,
            producer,
        }
    }

    /// Settings of a consumer of this topic in the pipeline's group.
    pub fn settings(&self) -> newsroom_platform::kafka::ConsumerSettings {
        newsroom_platform::kafka::ConsumerSettings::new(
            &self.config,
            &[newsroom_platform::kafka::topics::STORIES_RAW],
        )
    }

    /// Runs the platform's consumer loop with `handler` until `shutdown`.
    pub fn consume<H: newsroom_platform::kafka::Handler>(
        &self,
        settings: newsroom_platform::kafka::ConsumerSettings,
        handler: std::sync::Arc<H>,
        shutdown: &Shutdown,
    ) -> JoinHandle<Result<(), newsroom_platform::kafka::rdkafka::error::KafkaError>> {
        let handling = newsroom_platform::readiness::Check::new("handling under test");
        self.consume_watched(settings, handler, shutdown, handling)
    }

    /// The same, with the loop's `handling` check (failing while a record waits on a
    /// dependency) given by the test to watch.
    pub fn consume_watched<H: newsroom_platform::kafka::Handler>(
        &self,
        settings: newsroom_platform::kafka::ConsumerSettings,
        handler: std::sync::Arc<H>,
        shutdown: &Shutdown,
        handling: newsroom_platform::readiness::Check,
    ) -> JoinHandle<Result<(), newsroom_platform::kafka::rdkafka::error::KafkaError>> {
        use newsroom_platform::kafka::{ConsumerDeps, ConsumerLoop};
        tokio::spawn(
            ConsumerLoop {
                settings,
                handler,
                deps: ConsumerDeps {
                    platform: self.config.clone(),
                    producer: self.producer.clone(),
                    metrics: self.metrics.clone(),
                    shutdown: shutdown.clone(),
                },
                health: newsroom_platform::readiness::Check::new("consumer under test"),
                handling,
            }
            .run(),
        )
    }
}

/// Waits until a service's `/readyz` answers 200.
pub(crate) async fn wait_ready(service: Service, admin: SocketAddr) {
    let url = format!("http://{admin}/readyz");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = reqwest::get(&url).await
            && r.status().is_success()
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} did not become ready within 60 s",
            service.name()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A gRPC channel to an address.
pub async fn channel_to(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("valid uri")
        .connect()
        .await
        .expect("connect to service")
}

fn read_all(brokers: &str, topic: &str) -> Vec<(String, Option<Vec<u8>>)> {
    use newsroom_platform::kafka::client_config;
    use newsroom_platform::kafka::rdkafka::consumer::{BaseConsumer, Consumer as _};
    use newsroom_platform::kafka::rdkafka::message::Message as _;
    use newsroom_platform::kafka::rdkafka::{Offset, TopicPartitionList};

    let consumer: BaseConsumer = client_config(brokers, "newsroom-e2e")
        .set("group.id", "e2e-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut ends = HashMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in metadata.topics()[0].partitions() {
        let (low, high) = consumer
            .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
            .expect("watermarks");
        if high > low {
            ends.insert(p.id(), high);
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                .expect("partition");
        }
    }
    let mut out = Vec::new();
    if ends.is_empty() {
        return out;
    }
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ends.is_empty() {
        let m = match consumer.poll(Duration::from_secs(10)) {
            Some(Ok(m)) => m,
            // A broker of a cluster down (a chaos scenario killed it): the client reports the
            // lost connection and goes on with the partitions' new leaders.
            Some(Err(e)) if Instant::now() < deadline => {
                eprintln!("reading {topic}: {e}; going on");
                continue;
            }
            other => panic!("records of {topic} within 60 s: {other:?}"),
        };
        if m.offset() + 1 >= ends.get(&m.partition()).copied().unwrap_or(0) {
            ends.remove(&m.partition());
        }
        out.push((
            m.key()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .unwrap_or_default(),
            m.payload().map(<[u8]>::to_vec),
        ));
    }
    out
}

/// Logs of the services under test, filtered by `RUST_LOG` (default: warnings).
fn init_logging() {
    static GUARD: std::sync::OnceLock<Option<newsroom_platform::telemetry::TelemetryGuard>> =
        std::sync::OnceLock::new();
    GUARD.get_or_init(|| {
        let env: HashMap<String, String> = [(
            cfg::RUST_LOG.to_owned(),
            std::env::var(cfg::RUST_LOG).unwrap_or_else(|_| "warn".into()),
        )]
        .into();
        let config = newsroom_platform::PlatformConfig::from_env(
            &Env::from_fn(|k| env.get(k).cloned()),
            "e2e",
            0,
        )
        .expect("logging config");
        newsroom_platform::telemetry::init(&config).ok()
    });
}

/// Fails the test with a clear message when Kafka or Redis is not running.
async fn check_stack() {
    let kafka = std::env::var(cfg::KAFKA_BROKERS).unwrap_or_else(|_| "127.0.0.1:9092".into());
    let first = kafka.split(',').next().unwrap_or_default().to_owned();
    let redis = std::env::var(cfg::REDIS_URL).unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    // One server, or the first of a cluster's nodes.
    let redis_addr = redis
        .split(',')
        .next()
        .unwrap_or_default()
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_owned();
    for (what, addr) in [("Kafka", first), ("Redis", redis_addr)] {
        assert!(
            tokio::net::TcpStream::connect(&addr).await.is_ok(),
            "{what} is not answering on {addr}: start the stack with `deploy/stack.sh up` (`just test` does)"
        );
    }
}

/// Polls `check` every 100 ms until it returns `Some`, or panics after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of one sample (`name{labels} value`) in a Prometheus text page, if present.
pub fn metric_sample(page: &str, series: &str) -> Option<f64> {
    page.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// The IPTC Media Topic top levels of the BBC sample's five categories (business,
/// entertainment, politics, sport, technology).
pub const BBC_TOPICS: [&str; 5] = [
    "medtop:04000000",
    "medtop:01000000",
    "medtop:11000000",
    "medtop:15000000",
    "medtop:13000000",
];

/// Readers `user-0` … `user-<n-1>`, each following two or three of [`BBC_TOPICS`], written
/// straight to recommendation's follow sets (as its profile consumer leaves them), a thousand
/// per round trip: the benchmarks' readers.
pub async fn seed_readers(
    redis: &newsroom_platform::redis::RedisStore,
    n: usize,
) -> Result<(), newsroom_platform::redis::redis::RedisError> {
    use newsroom_platform::redis::redis;
    use newsroom_recommendation::store::IndexKey;
    let mut conn = redis.conn();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut pipe = redis::pipe();
        for u in chunk {
            let follows: Vec<String> = (0..2 + u % 2)
                .map(|k| {
                    let topic = BBC_TOPICS[(u + k * 2) % BBC_TOPICS.len()];
                    IndexKey::new(newsroom_proto::v1::TargetKind::Topic, topic).member()
                })
                .collect();
            pipe.sadd(redis.key(format!("rec:follows:{{user-{u}}}")), follows)
                .ignore();
        }
        pipe.query_async::<()>(&mut conn).await?;
    }
    Ok(())
}
