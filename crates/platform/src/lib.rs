//! The Newsroom platform: everything the four services share, so that none re-implements it.
//!
//! - [`auth`] — who is calling: verified JWTs (readers, services, editors, sources, operators),
//!   static back-office tokens, the loopback-only local mode;
//! - [`config`] — typed configuration from the environment, with errors that name the variable
//!   (a service exits with code 64 on one, before binding any port);
//! - [`telemetry`] — `tracing` + OpenTelemetry (W3C propagation, OTLP export when configured);
//! - [`shutdown`] — SIGTERM/SIGINT handling and a bounded drain;
//! - [`server`] — the gRPC server bootstrap (health, reflection, trace-context extraction) and the
//!   HTTP admin port (`/healthz`, `/readyz`, `/metrics`);
//! - [`kafka`] — one module per concern: client config, topics, the idempotent producer, the
//!   at-least-once consumer (a task per partition), the dead-letter queue, replay;
//! - [`readiness`] — checks (Kafka clients, Redis, consumers) behind `/readyz` and gRPC health;
//! - [`redis`] — the Redis connection with a key prefix;
//! - [`metrics`] — the Prometheus registry and the metrics every service exposes;
//! - [`outbound`] — the SSRF guard for addresses users choose (feeds, webhooks);
//! - [`tls`] — TLS and SASL for gRPC (rustls, mTLS), Kafka (SASL_SSL, SCRAM) and Redis;
//! - [`time`] — milliseconds since the epoch, and protobuf timestamps through prost-types;
//! - [`service`] — the life of a service binary (config, telemetry, listeners, signals, run)
//!   and [`service::Service`], the wiring every service shares, with its one stop deadline.

pub mod auth;
pub mod config;
pub mod kafka;
pub mod metrics;
pub mod outbound;
pub mod readiness;
pub mod redis;
pub mod server;
pub mod service;
pub mod shutdown;
pub mod telemetry;
pub mod time;
pub mod tls;

pub use config::{ConfigError, PlatformConfig};

/// The allocator of every binary that links the platform (the services, the CLI, tests and
/// benchmarks): the services allocate many small, short-lived values per request (protobuf
/// messages, Redis replies), where glibc's malloc and free took ~20 % of `GetFeed`'s CPU
/// under load (`perf` on `just bench-feed`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
pub use shutdown::Shutdown;

/// Benchmarks call this first. A debug build is several times slower than what a user runs (the
/// services' `GetFeed` p99 at 2,000 requests/s: 65 ms debug, 41 ms release), so its figures
/// would mislead a publisher sizing a cluster: refused (exit 2) unless
/// `NEWSROOM_BENCH_ALLOW_DEBUG=1`, then only warned about, on every figure's first line.
pub fn refuse_debug_build(benchmark: &str) {
    if !cfg!(debug_assertions) {
        return;
    }
    if std::env::var_os("NEWSROOM_BENCH_ALLOW_DEBUG").is_some() {
        eprintln!("{benchmark}: WARNING: a debug build; these figures are not what a user runs");
        return;
    }
    eprintln!(
        "{benchmark}: refusing to measure a debug build (run `just {benchmark}`, which builds \
         release; NEWSROOM_BENCH_ALLOW_DEBUG=1 to measure it anyway)"
    );
    std::process::exit(2);
}
