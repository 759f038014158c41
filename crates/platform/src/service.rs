//! The life of a service, the same for the four.
//!
//! [`main`] is the binary: configuration from the environment (a bad value is reported naming
//! its variable and the process exits with 64 before any port is bound), telemetry, the gRPC
//! and admin listeners, then the service's `run` until SIGTERM or SIGINT asks it to drain.
//! Each `main.rs` is one call to it.
//!
//! [`Service`] is the wiring every `run` shares, so that each service's `lib.rs` keeps only its
//! own handlers: the metrics registry, topics, the producer, Redis, consumer loops and
//! background tasks, readiness from all of them, serving, and the stop. The stop has one
//! deadline (`NEWSROOM_DRAIN_TIMEOUT_MS`, 10 s by default) over everything: in-flight calls,
//! consumer loops finishing their records, background tasks, and the flushes of whatever
//! buffers writes, so a pod always stops within its grace period (5 s preStop + the drain <
//! 30 s).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::registry::Registry;
use tonic::service::Routes;

use crate::config::{EXIT_CONFIG, Env};
use crate::kafka::{self, ConsumerDeps, ConsumerLoop, ConsumerSettings, Handler, Producer};
use crate::metrics::KafkaMetrics;
use crate::readiness::{Check, Readiness};
use crate::redis::RedisStore;
use crate::server::{self, Listeners, ServeError};
use crate::shutdown::{Shutdown, wait_for_signal};
use crate::{ConfigError, PlatformConfig};

/// What a service binary returns from `main` when it stops on an error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A service's configuration: read from the environment, and carrying the platform's part.
pub trait ServiceConfig: Sized {
    fn from_env(env: &Env<'_>) -> Result<Self, ConfigError>;
    fn platform(&self) -> &PlatformConfig;
}

/// The configuration from the process environment; on an error, says which variable and why
/// on standard error and exits with [`EXIT_CONFIG`] (64).
pub fn config_or_exit<C: ServiceConfig>(binary: &str) -> C {
    match C::from_env(&Env::process()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{binary}: configuration error: {e}");
            std::process::exit(EXIT_CONFIG);
        }
    }
}

/// Runs a service binary: configuration ([`config_or_exit`]), telemetry (flushed when this
/// returns), listeners, and `run` with a [`Shutdown`] triggered by SIGTERM or SIGINT; the exit
/// code and, on an error, its message ([`exit_code`]).
pub async fn main<C, F, E>(
    binary: &str,
    run: impl FnOnce(C, Listeners, Shutdown) -> F,
) -> std::process::ExitCode
where
    C: ServiceConfig,
    F: Future<Output = Result<(), E>>,
    E: Into<BoxError>,
{
    exit_code(binary, serve_binary(binary, run).await)
}

/// The exit code of a binary that ended with `result`: 0, or 1 after the error and each of
/// its causes on one line of standard error (`newsroom-ingest: REDIS_URL: this Redis evicts
/// …`), as an operator reads it, not Rust's debug form.
pub fn exit_code(binary: &str, result: Result<(), BoxError>) -> std::process::ExitCode {
    let Err(error) = result else {
        return std::process::ExitCode::SUCCESS;
    };
    let mut line = format!("{binary}: {error}");
    let mut cause = error.source();
    while let Some(c) = cause {
        line.push_str(&format!(": {c}"));
        cause = c.source();
    }
    tracing::error!(error = %line, "stopped on an error");
    eprintln!("{line}");
    std::process::ExitCode::FAILURE
}

async fn serve_binary<C, F, E>(
    binary: &str,
    run: impl FnOnce(C, Listeners, Shutdown) -> F,
) -> Result<(), BoxError>
where
    C: ServiceConfig,
    F: Future<Output = Result<(), E>>,
    E: Into<BoxError>,
{
    let config: C = config_or_exit(binary);
    let _telemetry = crate::telemetry::init(config.platform())?;
    let listeners = Listeners::bind(config.platform()).await?;
    let shutdown = Shutdown::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            wait_for_signal().await;
            shutdown.trigger();
        }
    });
    run(config, listeners, shutdown).await.map_err(Into::into)
}

/// Why wiring or serving a service failed: what the platform's parts report.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("kafka: {0}")]
    Kafka(#[from] kafka::rdkafka::error::KafkaError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The Redis at `REDIS_URL` may evict any key, and this service keeps state there.
    #[error(
        "{}: this Redis evicts keys when full (maxmemory-policy {policy}), and {service} keeps state there that must not vanish silently; set maxmemory-policy noeviction (writes then fail and the service waits, instead of losing state)",
        crate::config::REDIS_URL
    )]
    EvictingRedis { service: String, policy: String },
}

/// What flushes a buffer of writes when the service stops, given the time left.
type Flush = Box<dyn FnOnce(Duration) + Send + Sync>;

/// The wiring of a running service: build it, add what the service needs, then [`Service::serve`].
pub struct Service {
    grpc_service: &'static str,
    platform: PlatformConfig,
    listeners: Listeners,
    shutdown: Shutdown,
    registry: Registry,
    kafka_metrics: KafkaMetrics,
    readiness: Readiness,
    producer: Option<Producer>,
    flushes: Vec<Flush>,
    /// The topics its consumers read (full names): their DLQs are the service's.
    consumed: Vec<String>,
}

impl Service {
    /// A service serving `grpc_service` (its full name, `newsroom.v1.IngestService`, which
    /// `grpc.health.v1.Health` reports) on `listeners` until `shutdown`, once the `topics` it
    /// reads and writes exist (base names; created when missing).
    pub async fn start(
        grpc_service: &'static str,
        platform: &PlatformConfig,
        listeners: Listeners,
        shutdown: Shutdown,
        topics: &[&str],
    ) -> Result<Self, ServiceError> {
        crate::tls::install_crypto_provider();
        let service = Service::new(grpc_service, platform, listeners, shutdown);
        kafka::ensure_topics(&service.platform, topics).await?;
        Ok(service)
    }

    /// [`Service::start`] without topics.
    pub fn new(
        grpc_service: &'static str,
        platform: &PlatformConfig,
        listeners: Listeners,
        shutdown: Shutdown,
    ) -> Self {
        let mut registry = Registry::default();
        let kafka_metrics = KafkaMetrics::register(&mut registry);
        Service {
            grpc_service,
            platform: platform.clone(),
            listeners,
            shutdown,
            registry,
            kafka_metrics,
            readiness: Readiness::default(),
            producer: None,
            flushes: Vec::new(),
            consumed: Vec::new(),
        }
    }

    /// The registry, for the service's own metrics.
    pub fn registry(&mut self) -> &mut Registry {
        &mut self.registry
    }

    pub fn kafka_metrics(&self) -> &KafkaMetrics {
        &self.kafka_metrics
    }

    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    pub fn platform(&self) -> &PlatformConfig {
        &self.platform
    }

    /// The readiness, for a check of the service's own.
    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// Creates the given topics when missing (base names from [`kafka::TOPICS`]).
    pub async fn ensure_topics(
        &self,
        names: &[&str],
    ) -> Result<(), kafka::rdkafka::error::KafkaError> {
        kafka::ensure_topics(&self.platform, names).await
    }

    /// The service's producer (one per service, created on first use): its health is part of
    /// readiness and it is flushed when the service stops.
    pub fn producer(&mut self) -> Result<Producer, ServiceError> {
        if let Some(p) = &self.producer {
            return Ok(p.clone());
        }
        let producer = Producer::new(&self.platform, self.kafka_metrics.clone())?;
        self.readiness.add(producer.health());
        self.producer = Some(producer.clone());
        Ok(producer)
    }

    /// Connects to Redis (failing if it does not answer now); from then on a `PING` every
    /// second is part of readiness.
    pub async fn redis(&self) -> Result<RedisStore, ServiceError> {
        let redis = RedisStore::connect_tls(
            &self.platform.redis_url,
            &self.platform.redis_prefix,
            self.platform.tls.redis_ca.as_deref(),
        )
        .await?;
        let check = self.readiness.check("redis");
        check.set(true);
        tokio::spawn(watch_redis(redis.clone(), check, self.shutdown.clone()));
        Ok(redis)
    }

    /// [`Service::redis`] for a service that keeps state in Redis (ingest's story versions,
    /// notification's at-most-once ledger), refused when that Redis may evict any key
    /// (any `maxmemory-policy` but `noeviction`): an evicted version or ledger entry would be
    /// a duplicate, silently.
    pub async fn state_redis(&self) -> Result<RedisStore, ServiceError> {
        let redis = self.redis().await?;
        match redis.eviction_policy().await {
            Some(policy) if !crate::redis::keeps_state(&policy) => {
                Err(ServiceError::EvictingRedis {
                    service: self.platform.service.to_owned(),
                    policy,
                })
            }
            _ => Ok(redis),
        }
    }

    /// Runs a consumer loop: `settings.group_id`'s member, `handler` for every record, dead
    /// letters through the service's producer, its health part of readiness.
    pub fn consumer<H: Handler>(
        &mut self,
        settings: ConsumerSettings,
        handler: Arc<H>,
    ) -> Result<(), ServiceError> {
        let producer = self.producer()?;
        for t in &settings.topics {
            if !self.consumed.contains(t) {
                self.consumed.push(t.clone());
            }
        }
        let health = self
            .readiness
            .check(format!("kafka consumer {}", settings.group_id));
        let handling = self
            .readiness
            .check(format!("kafka consumer {} handling", settings.group_id));
        ConsumerLoop {
            settings,
            handler,
            deps: ConsumerDeps {
                platform: self.platform.clone(),
                producer,
                metrics: self.kafka_metrics.clone(),
                shutdown: self.shutdown.clone(),
            },
            health,
            handling,
        }
        .spawn();
        Ok(())
    }

    /// `newsroom.v1.DeadLetterService` for the DLQs of the topics this service's consumers read
    /// (so far: call it after the last [`Service::consumer`]), for its routes.
    pub fn dead_letters(
        &mut self,
        auth: crate::auth::Auth,
    ) -> Result<
        newsroom_proto::v1::dead_letter_service_server::DeadLetterServiceServer<kafka::DeadLetters>,
        ServiceError,
    > {
        Ok(kafka::DeadLetters::new(
            self.platform.clone(),
            self.producer()?,
            auth,
            self.consumed.clone(),
        )
        .into_server())
    }

    /// Runs a background task as a drained worker; if it fails, the whole service stops rather
    /// than run without it.
    pub fn task<E: std::fmt::Display>(
        &self,
        name: &'static str,
        task: impl Future<Output = Result<(), E>> + Send + 'static,
    ) {
        let shutdown = self.shutdown.clone();
        self.shutdown.spawn(async move {
            if let Err(e) = task.await {
                tracing::error!(error = %e, task = name, "background task failed; shutting down");
                shutdown.trigger();
            }
        });
    }

    /// Flushes a buffer of writes when the service stops, within the time left of the drain.
    pub fn on_stop(&mut self, flush: impl FnOnce(Duration) + Send + Sync + 'static) {
        self.flushes.push(Box::new(flush));
    }

    /// Serves `routes` (plus health, reflection and the admin port) until shutdown, then stops
    /// within one deadline: in-flight calls, consumer loops and tasks, then the producer's and
    /// every other flush, each given only the time left.
    pub async fn serve(self, routes: Routes) -> Result<(), ServiceError> {
        let Service {
            grpc_service,
            platform,
            listeners,
            shutdown,
            registry,
            readiness,
            producer,
            flushes,
            ..
        } = self;
        tracing::info!(
            service = grpc_service,
            grpc = %listeners.grpc_addr(),
            admin = %listeners.admin_addr(),
            "serving"
        );
        readiness.set_serving(true);
        let mut server = tokio::spawn(server::serve(
            grpc_service,
            server::GrpcOptions {
                tls: platform.tls.server_config(),
                max_streams: platform.grpc_max_streams,
            },
            routes,
            listeners,
            Arc::new(registry),
            readiness.clone(),
            shutdown.clone(),
        ));
        // Until the stop is asked for, or the server ends on its own (an error).
        let early = tokio::select! {
            _ = shutdown.requested() => None,
            r = &mut server => Some(r),
        };
        readiness.set_serving(false);
        shutdown.trigger();
        let deadline = Instant::now() + platform.drain_timeout;
        let served = match early {
            Some(r) => r,
            None => match tokio::time::timeout_at(deadline.into(), server).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::warn!("in-flight calls outlived the drain deadline");
                    Ok(Ok(()))
                }
            },
        };
        shutdown.drain_until(deadline).await;
        let left = || deadline.saturating_duration_since(Instant::now());
        // Nothing acknowledged may stay queued: the producer first, then the service's own.
        if let Some(p) = producer {
            p.flush(left());
        }
        for flush in flushes {
            flush(left());
        }
        match served {
            Ok(r) => Ok(r?),
            Err(e) => {
                tracing::error!(error = %e, "gRPC server task failed");
                Ok(())
            }
        }
    }
}

/// Keeps `check` in step with Redis: a `PING` every second, failing after 2 s without answer.
async fn watch_redis(redis: RedisStore, check: Check, shutdown: Shutdown) {
    let mut conn = redis.conn();
    loop {
        tokio::select! {
            _ = shutdown.requested() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let ping = redis::cmd("PING");
        let ping = ping.query_async::<String>(&mut conn);
        let ok = matches!(
            tokio::time::timeout(Duration::from_secs(2), ping).await,
            Ok(Ok(_))
        );
        check.set(ok);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[tokio::test]
    async fn the_whole_stop_keeps_one_deadline_over_tasks_and_flushes() {
        let env =
            Env::from_fn(|k| (k == crate::config::NEWSROOM_DRAIN_TIMEOUT_MS).then(|| "800".into()));
        let platform = PlatformConfig::from_env(&env, "test", 0).expect("config");
        let listeners = Listeners::ephemeral().await.expect("bind");
        let shutdown = Shutdown::new();
        let mut service = Service::new("newsroom.v1.Test", &platform, listeners, shutdown.clone());
        // A task that ignores the stop for 300 ms, and two flushes that would each take all
        // they are given.
        let stop = shutdown.clone();
        service.task("slow", async move {
            stop.requested().await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok::<(), std::io::Error>(())
        });
        let given = Arc::new(Mutex::new(Vec::new()));
        for _ in 0..2 {
            let given = given.clone();
            service.on_stop(move |left| {
                given.lock().unwrap().push(left);
                std::thread::sleep(left);
            });
        }
        let ready = service.readiness().clone();
        let serving = tokio::spawn(service.serve(tonic::service::Routes::default()));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(ready.get(), "serving, with no check failing");

        let asked = Instant::now();
        shutdown.trigger();
        serving.await.expect("serve task").expect("served");
        let took = asked.elapsed();
        assert!(!ready.get(), "not ready once stopping");
        assert!(
            took < Duration::from_millis(1500),
            "the stop outlived its deadline: {took:?}"
        );
        let given = given.lock().unwrap().clone();
        assert_eq!(given.len(), 2, "every flush ran");
        assert!(
            given[0] <= Duration::from_millis(520) && given[0] >= Duration::from_millis(200),
            "the first flush gets what the task left of the 800 ms: {given:?}"
        );
        assert!(
            given[1] < Duration::from_millis(50),
            "the second gets what the first left: {given:?}"
        );
    }
}
