//! Typed configuration from the environment.
//!
//! Every variable has a `pub const` name and a default that works with the local stack
//! (`deploy/stack.sh`). A wrong value is a [`ConfigError`] naming the variable; `main` turns it
//! into exit code 64 (EX_USAGE) before any port is bound. The reading goes through a lookup
//! function so tests can feed a map instead of the process environment.

use std::net::SocketAddr;
use std::time::Duration;

/// Kafka bootstrap servers, comma-separated. Default `127.0.0.1:9092`.
pub const KAFKA_BROKERS: &str = "KAFKA_BROKERS";
/// Redis URL. Default `redis://127.0.0.1:6379`.
pub const REDIS_URL: &str = "REDIS_URL";
/// gRPC listen address. Default `127.0.0.1:<the service's port>` (50051 … 50054).
pub const NEWSROOM_GRPC_ADDR: &str = "NEWSROOM_GRPC_ADDR";
/// HTTP admin listen address (`/healthz`, `/readyz`, `/metrics`). Default: gRPC port + 1000.
pub const NEWSROOM_ADMIN_ADDR: &str = "NEWSROOM_ADMIN_ADDR";
/// Prefix put before every Kafka topic name (isolates tests and tenants). Default empty.
pub const NEWSROOM_TOPIC_PREFIX: &str = "NEWSROOM_TOPIC_PREFIX";
/// Prefix put before every Redis key. Default `newsroom:`.
pub const NEWSROOM_REDIS_PREFIX: &str = "NEWSROOM_REDIS_PREFIX";
/// Kafka consumer group id. Default `newsroom-<service>`.
pub const NEWSROOM_CONSUMER_GROUP: &str = "NEWSROOM_CONSUMER_GROUP";
/// Partitions used when this service creates a missing topic; default: each topic's own
/// (ARCHITECTURE.md). Tests set a small number.
pub const NEWSROOM_TOPIC_PARTITIONS: &str = "NEWSROOM_TOPIC_PARTITIONS";
/// Longest time the service takes to drain on shutdown, in milliseconds. Default 10000.
pub const NEWSROOM_DRAIN_TIMEOUT_MS: &str = "NEWSROOM_DRAIN_TIMEOUT_MS";
/// Concurrent gRPC streams (calls) one client connection may have open (HTTP/2
/// `SETTINGS_MAX_CONCURRENT_STREAMS`); more wait for one to finish. Default 256.
pub const NEWSROOM_GRPC_MAX_STREAMS: &str = "NEWSROOM_GRPC_MAX_STREAMS";
/// How long the producer tries to deliver a record before the write fails (and a gRPC caller
/// gets UNAVAILABLE), in milliseconds. Default 5000.
pub const NEWSROOM_KAFKA_DELIVERY_TIMEOUT_MS: &str = "NEWSROOM_KAFKA_DELIVERY_TIMEOUT_MS";
/// Log format: `text` (default) or `json`.
pub const NEWSROOM_LOG_FORMAT: &str = "NEWSROOM_LOG_FORMAT";
/// Log filter in `RUST_LOG` syntax. Default `info`.
pub const RUST_LOG: &str = "RUST_LOG";
/// OTLP endpoint (gRPC, e.g. `http://127.0.0.1:4317`); traces are exported only when set.
pub const OTEL_EXPORTER_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// Service name reported in traces. Default: the service's name.
pub const OTEL_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";

/// Exit code for a configuration error (EX_USAGE from sysexits.h).
pub const EXIT_CONFIG: i32 = 64;

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var}={value:?} is invalid: {reason}")]
    Invalid {
        var: &'static str,
        value: String,
        reason: String,
    },
}

impl ConfigError {
    /// Builds an [`ConfigError::Invalid`].
    pub fn invalid(var: &'static str, value: &str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            var,
            value: value.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A function from variable name to value.
type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

/// Reads variables through a lookup function (the process environment in production).
pub struct Env<'a> {
    lookup: Lookup<'a>,
}

impl<'a> Env<'a> {
    /// The process environment.
    pub fn process() -> Env<'static> {
        Env {
            lookup: Box::new(|k| std::env::var(k).ok()),
        }
    }

    /// Any lookup function (tests use a map).
    pub fn from_fn(f: impl Fn(&str) -> Option<String> + 'a) -> Self {
        Env {
            lookup: Box::new(f),
        }
    }

    /// The raw value, `None` when unset. An empty value counts as unset.
    pub fn raw(&self, var: &str) -> Option<String> {
        (self.lookup)(var).filter(|v| !v.trim().is_empty())
    }

    /// A string with a default.
    pub fn string(&self, var: &'static str, default: &str) -> String {
        self.raw(var).unwrap_or_else(|| default.to_owned())
    }

    /// A value parsed with `FromStr`, with a default.
    pub fn parse<T>(&self, var: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        match self.raw(var) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|e: T::Err| ConfigError::invalid(var, &v, e.to_string())),
        }
    }

    /// A socket address, with a default.
    pub fn addr(&self, var: &'static str, default: SocketAddr) -> Result<SocketAddr, ConfigError> {
        match self.raw(var) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| {
                ConfigError::invalid(var, &v, "expected host:port, e.g. 127.0.0.1:50051")
            }),
        }
    }
}

/// What every service needs from its environment.
#[derive(Debug, Clone)]
pub struct PlatformConfig {
    /// The service's name (`ingest`, `enrichment`, …).
    pub service: &'static str,
    pub grpc_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub kafka_brokers: String,
    pub redis_url: String,
    pub topic_prefix: String,
    pub redis_prefix: String,
    pub consumer_group: String,
    pub topic_partitions: Option<i32>,
    pub drain_timeout: Duration,
    pub delivery_timeout: Duration,
    pub log_format: LogFormat,
    pub log_filter: String,
    pub otlp_endpoint: Option<String>,
    pub otel_service_name: String,
    /// TLS and SASL of the gRPC server and clients, Kafka and Redis ([`crate::tls`]).
    pub tls: crate::tls::Tls,
    /// [`NEWSROOM_GRPC_MAX_STREAMS`].
    pub grpc_max_streams: u32,
}

impl PlatformConfig {
    /// Reads the common variables for `service`, whose default gRPC port is `default_port`.
    pub fn from_env(
        env: &Env<'_>,
        service: &'static str,
        default_port: u16,
    ) -> Result<Self, ConfigError> {
        let grpc_addr = env.addr(
            NEWSROOM_GRPC_ADDR,
            SocketAddr::from(([127, 0, 0, 1], default_port)),
        )?;
        let admin_default = match grpc_addr.port() {
            0 => SocketAddr::new(grpc_addr.ip(), 0),
            p => SocketAddr::new(
                grpc_addr.ip(),
                p.checked_add(1000).ok_or_else(|| {
                    ConfigError::invalid(
                        NEWSROOM_GRPC_ADDR,
                        &grpc_addr.to_string(),
                        "port + 1000 (the admin port) does not fit in 65535",
                    )
                })?,
            ),
        };
        let admin_addr = env.addr(NEWSROOM_ADMIN_ADDR, admin_default)?;

        let kafka_brokers = env.string(KAFKA_BROKERS, "127.0.0.1:9092");
        for broker in kafka_brokers.split(',') {
            let ok = broker
                .trim()
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
            if !ok {
                return Err(ConfigError::invalid(
                    KAFKA_BROKERS,
                    &kafka_brokers,
                    "expected a comma-separated list of host:port",
                ));
            }
        }

        let redis_url = env.string(REDIS_URL, "redis://127.0.0.1:6379");
        let nodes: Vec<&str> = redis_url.split(',').map(str::trim).collect();
        let cluster = nodes.len() > 1;
        for node in &nodes {
            let ok = if cluster {
                node.starts_with("redis://") || node.starts_with("rediss://")
            } else {
                node.starts_with("redis://")
                    || node.starts_with("rediss://")
                    || node.starts_with("unix://")
            };
            if !ok {
                return Err(ConfigError::invalid(
                    REDIS_URL,
                    &redis_url,
                    "expected a redis://, rediss:// or unix:// URL, or a Redis Cluster's nodes as comma-separated redis:// or rediss:// URLs",
                ));
            }
        }
        let redis_prefix = env.string(NEWSROOM_REDIS_PREFIX, "newsroom:");
        if redis_prefix.contains(['{', '}']) {
            return Err(ConfigError::invalid(
                NEWSROOM_REDIS_PREFIX,
                &redis_prefix,
                "braces would make the prefix every key's Redis Cluster hash tag (one slot for everything)",
            ));
        }

        let topic_prefix = env.string(NEWSROOM_TOPIC_PREFIX, "");
        if !topic_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(ConfigError::invalid(
                NEWSROOM_TOPIC_PREFIX,
                &topic_prefix,
                "Kafka topic names allow only ASCII letters, digits, '.', '_' and '-'",
            ));
        }

        let topic_partitions = match env.raw(NEWSROOM_TOPIC_PARTITIONS) {
            None => None,
            Some(v) => match v.trim().parse::<i32>() {
                Ok(n) if n >= 1 => Some(n),
                _ => {
                    return Err(ConfigError::invalid(
                        NEWSROOM_TOPIC_PARTITIONS,
                        &v,
                        "expected a positive whole number",
                    ));
                }
            },
        };

        let drain_ms: u64 = env.parse(NEWSROOM_DRAIN_TIMEOUT_MS, 10_000)?;
        let delivery_ms: u64 = env.parse(NEWSROOM_KAFKA_DELIVERY_TIMEOUT_MS, 5_000)?;
        if !(100..=300_000).contains(&delivery_ms) {
            return Err(ConfigError::invalid(
                NEWSROOM_KAFKA_DELIVERY_TIMEOUT_MS,
                &delivery_ms.to_string(),
                "expected 100..300000",
            ));
        }

        let log_format = match env.string(NEWSROOM_LOG_FORMAT, "text").as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError::invalid(
                    NEWSROOM_LOG_FORMAT,
                    other,
                    "expected `text` or `json`",
                ));
            }
        };

        let otlp_endpoint = env.raw(OTEL_EXPORTER_OTLP_ENDPOINT);
        if let Some(e) = &otlp_endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(ConfigError::invalid(
                OTEL_EXPORTER_OTLP_ENDPOINT,
                e,
                "expected an http:// or https:// URL",
            ));
        }

        Ok(PlatformConfig {
            service,
            grpc_addr,
            admin_addr,
            kafka_brokers,
            redis_url,
            topic_prefix,
            redis_prefix,
            consumer_group: env.string(NEWSROOM_CONSUMER_GROUP, &format!("newsroom-{service}")),
            topic_partitions,
            drain_timeout: Duration::from_millis(drain_ms),
            delivery_timeout: Duration::from_millis(delivery_ms),
            log_format,
            log_filter: env.string(RUST_LOG, "info"),
            otlp_endpoint,
            otel_service_name: env.string(OTEL_SERVICE_NAME, service),
            tls: crate::tls::Tls::from_env(env)?,
            grpc_max_streams: env.parse(NEWSROOM_GRPC_MAX_STREAMS, 256u32)?.max(1),
        })
    }

    /// The full name of a topic (`stories.raw` → `<prefix>stories.raw`).
    pub fn topic(&self, base: &str) -> String {
        format!("{}{base}", self.topic_prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load(pairs: &[(&str, &str)]) -> Result<PlatformConfig, ConfigError> {
        let map = env(pairs);
        PlatformConfig::from_env(&Env::from_fn(|k| map.get(k).cloned()), "ingest", 50051)
    }

    #[test]
    fn defaults_match_the_local_stack() {
        let c = load(&[]).unwrap();
        assert_eq!(c.grpc_addr.to_string(), "127.0.0.1:50051");
        assert_eq!(c.admin_addr.to_string(), "127.0.0.1:51051");
        assert_eq!(c.kafka_brokers, "127.0.0.1:9092");
        assert_eq!(c.redis_url, "redis://127.0.0.1:6379");
        assert_eq!(c.consumer_group, "newsroom-ingest");
        assert_eq!(c.topic("stories.raw"), "stories.raw");
    }

    #[test]
    fn a_list_of_redis_nodes_is_a_cluster() {
        let nodes = "redis://127.0.0.1:7001, redis://127.0.0.1:7002";
        let c = load(&[(REDIS_URL, nodes)]).unwrap();
        assert!(crate::redis::is_cluster(&c.redis_url));
        assert!(!crate::redis::is_cluster(&load(&[]).unwrap().redis_url));
    }

    #[test]
    fn admin_port_follows_grpc_port() {
        let c = load(&[(NEWSROOM_GRPC_ADDR, "0.0.0.0:6000")]).unwrap();
        assert_eq!(c.admin_addr.to_string(), "0.0.0.0:7000");
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (var, value) in [
            (KAFKA_BROKERS, "localhost"),
            (REDIS_URL, "http://x"),
            (REDIS_URL, "redis://127.0.0.1:7001,unix:///tmp/r.sock"),
            (NEWSROOM_REDIS_PREFIX, "{newsroom}:"),
            (NEWSROOM_GRPC_ADDR, "nope"),
            (NEWSROOM_DRAIN_TIMEOUT_MS, "-5"),
            (NEWSROOM_LOG_FORMAT, "xml"),
            (NEWSROOM_TOPIC_PREFIX, "a b"),
            (NEWSROOM_TOPIC_PARTITIONS, "0"),
            (OTEL_EXPORTER_OTLP_ENDPOINT, "collector:4317"),
        ] {
            let err = load(&[(var, value)]).unwrap_err().to_string();
            assert!(err.starts_with(var), "{var}: {err}");
        }
    }
}
