//! The TLS end-to-end run: the services of a [`crate::Pipeline`] on the secure side of the local
//! stack — gRPC servers with TLS and mTLS (clients must present a certificate of the local CA),
//! Kafka through the broker's SASL_SSL listener as the SCRAM user, Redis through its TLS port —
//! with the certificates `deploy/tls.sh` makes (`deploy/stack.sh up` runs it). The test's own
//! observation clients keep the plaintext ports of the same broker and Redis.
//!
//! `NEWSROOM_E2E_TLS=1 cargo test -p newsroom-e2e --test pipeline` runs the pipeline suite this
//! way (`just test-tls`, part of `just ci`).

use std::net::SocketAddr;
use std::path::PathBuf;

use newsroom_platform::tls as t;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// Set to `1` to run every pipeline of the test process with TLS.
pub const NEWSROOM_E2E_TLS: &str = "NEWSROOM_E2E_TLS";

pub fn from_env() -> bool {
    std::env::var(NEWSROOM_E2E_TLS).is_ok_and(|v| v == "1" || v == "true")
}

/// Where `deploy/tls.sh` put the certificates.
pub fn dir() -> PathBuf {
    let run = std::env::var_os("NEWSROOM_RUN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.run"));
    run.join("tls")
}

fn file(name: &str) -> String {
    let path = dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: `deploy/stack.sh up` makes the TLS material (deploy/tls.sh)",
        path.display()
    );
    path.display().to_string()
}

/// The secure side of the local stack (`deploy/stack.sh`): SASL_SSL on 9094, Redis TLS on 6380.
pub fn service_env() -> Vec<(String, String)> {
    let ca = file("ca.pem");
    [
        (
            newsroom_platform::config::KAFKA_BROKERS,
            "127.0.0.1:9094".to_owned(),
        ),
        (t::KAFKA_SECURITY_PROTOCOL, "sasl_ssl".into()),
        (t::KAFKA_SASL_MECHANISM, "SCRAM-SHA-512".into()),
        (t::KAFKA_SASL_USERNAME, "newsroom".into()),
        (t::KAFKA_SASL_PASSWORD, "newsroom-local-scram".into()),
        (t::KAFKA_SSL_CA_LOCATION, ca.clone()),
        (
            newsroom_platform::config::REDIS_URL,
            "rediss://127.0.0.1:6380".into(),
        ),
        (t::REDIS_TLS_CA, ca.clone()),
        (t::NEWSROOM_TLS_CERT, file("server.pem")),
        (t::NEWSROOM_TLS_KEY, file("server.key")),
        (t::NEWSROOM_TLS_CLIENT_CA, ca.clone()),
        (t::NEWSROOM_TLS_CA, ca),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The client side of mTLS: the local CA and the client certificate (`identity: false` leaves
/// the certificate out, for the test that a server refuses such a client).
pub fn client_config(identity: bool) -> ClientTlsConfig {
    t::install_crypto_provider();
    let read = |f: &str| std::fs::read(file(f)).expect("TLS file");
    let config = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read("ca.pem")))
        .domain_name("localhost");
    match identity {
        true => config.identity(Identity::from_pem(read("client.pem"), read("client.key"))),
        false => config,
    }
}

/// A TLS channel (with the client certificate) to a service of a TLS pipeline.
pub async fn channel_to(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("https://{addr}"))
        .expect("valid uri")
        .tls_config(client_config(true))
        .expect("client TLS")
        .connect()
        .await
        .expect("connect to service over TLS")
}
