//! How every Newsroom client talks to Kafka, written once.
//!
//! Producers, group consumers, replays, lookups, the admin client, the CLI and the tests all
//! start from [`client_config`]: the bootstrap servers and a `client.id` that says who is
//! connecting (broker logs and quotas see `newsroom-<service>`). Security settings (SASL, TLS)
//! belong here, so that they reach every client at once.

use rdkafka::config::ClientConfig;

use crate::config::PlatformConfig;

/// A client configuration for `brokers` (comma-separated) identifying itself as `client_id`.
pub fn client_config(brokers: &str, client_id: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("client.id", client_id);
    c
}

/// The configuration of a service's own client: its brokers, `client.id` `newsroom-<service>`.
/// With the security settings of [`crate::tls`] (SASL_SSL, SCRAM) when there are any.
pub fn service_client(config: &PlatformConfig) -> ClientConfig {
    named_client(config, &format!("newsroom-{}", config.service))
}

/// [`service_client`] with a `client.id` of its own.
pub fn named_client(config: &PlatformConfig, client_id: &str) -> ClientConfig {
    let mut c = client_config(&config.kafka_brokers, client_id);
    config.tls.kafka.apply(&mut c);
    c
}

/// A consumer that reads on its own (`assign`, no group membership): nothing is committed.
/// `group` only names it to the broker (librdkafka requires a `group.id` for `assign`).
pub fn reader_config(config: &PlatformConfig, group: &str) -> ClientConfig {
    let mut c = service_client(config);
    c.set("group.id", group).set("enable.auto.commit", "false");
    c
}
