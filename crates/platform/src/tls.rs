//! TLS and SASL on every connection a service accepts or makes, configured once here:
//!
//! - **gRPC** (rustls through tonic): `NEWSROOM_TLS_CERT` and `NEWSROOM_TLS_KEY` (PEM files)
//!   turn TLS on for the service's gRPC server; `NEWSROOM_TLS_CLIENT_CA` also requires every
//!   client to present a certificate signed by that CA (mTLS between services).
//!   `NEWSROOM_TLS_CA` is the CA the service's own gRPC clients trust (remote enrichment
//!   stages), and with mTLS they present the service's certificate.
//! - **Kafka** (librdkafka, OpenSSL): `KAFKA_SECURITY_PROTOCOL` (`plaintext`, `ssl`,
//!   `sasl_ssl`, `sasl_plaintext`), `KAFKA_SASL_MECHANISM` (`SCRAM-SHA-512` by default with
//!   SASL), `KAFKA_SASL_USERNAME`, `KAFKA_SASL_PASSWORD`, `KAFKA_SSL_CA_LOCATION` (a PEM file;
//!   the system's CAs otherwise). Applied to every client the platform makes
//!   ([`crate::kafka::service_client`]).
//! - **Redis** (rustls): a `rediss://` `REDIS_URL`, verified against `REDIS_TLS_CA` (a PEM
//!   file) when set, the system's CAs otherwise.
//!
//! Plaintext stays the loopback default. A file that cannot be read, or a half configuration
//! (a certificate without its key, SASL without a password) is a configuration error naming
//! the variable; a password never appears in a log or a `Debug`.

use std::fmt;
use std::path::PathBuf;

use rdkafka::config::ClientConfig;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::config::{ConfigError, Env};

pub const NEWSROOM_TLS_CERT: &str = "NEWSROOM_TLS_CERT";
pub const NEWSROOM_TLS_KEY: &str = "NEWSROOM_TLS_KEY";
pub const NEWSROOM_TLS_CLIENT_CA: &str = "NEWSROOM_TLS_CLIENT_CA";
pub const NEWSROOM_TLS_CA: &str = "NEWSROOM_TLS_CA";
pub const REDIS_TLS_CA: &str = "REDIS_TLS_CA";
pub const KAFKA_SECURITY_PROTOCOL: &str = "KAFKA_SECURITY_PROTOCOL";
pub const KAFKA_SASL_MECHANISM: &str = "KAFKA_SASL_MECHANISM";
pub const KAFKA_SASL_USERNAME: &str = "KAFKA_SASL_USERNAME";
pub const KAFKA_SASL_PASSWORD: &str = "KAFKA_SASL_PASSWORD";
pub const KAFKA_SSL_CA_LOCATION: &str = "KAFKA_SSL_CA_LOCATION";

/// A PEM file's contents, with where it came from.
#[derive(Clone)]
struct Pem(Vec<u8>);

/// Every TLS and SASL setting of a service.
#[derive(Clone, Default)]
pub struct Tls {
    server: Option<(Pem, Pem)>,
    client_ca: Option<Pem>,
    ca: Option<Pem>,
    pub redis_ca: Option<Vec<u8>>,
    pub kafka: KafkaSecurity,
}

/// How Kafka clients authenticate and encrypt.
#[derive(Clone, Default)]
pub struct KafkaSecurity {
    pub protocol: Option<String>,
    pub mechanism: Option<String>,
    pub username: Option<String>,
    password: Option<String>,
    pub ca_location: Option<PathBuf>,
}

impl fmt::Debug for KafkaSecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KafkaSecurity({} {} user {:?}{})",
            self.protocol.as_deref().unwrap_or("plaintext"),
            self.mechanism.as_deref().unwrap_or("-"),
            self.username.as_deref().unwrap_or(""),
            if self.password.is_some() {
                ", password set"
            } else {
                ""
            }
        )
    }
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tls(grpc server: {}, mtls: {}, client ca: {}, redis ca: {}, kafka: {:?})",
            self.server.is_some(),
            self.client_ca.is_some(),
            self.ca.is_some(),
            self.redis_ca.is_some(),
            self.kafka
        )
    }
}

fn read(env: &Env<'_>, var: &'static str) -> Result<Option<Pem>, ConfigError> {
    let Some(path) = env.raw(var).filter(|p| !p.trim().is_empty()) else {
        return Ok(None);
    };
    let bytes = std::fs::read(path.trim())
        .map_err(|e| ConfigError::invalid(var, &path, format!("cannot read: {e}")))?;
    if !bytes.windows(10).any(|w| w == b"-----BEGIN") {
        return Err(ConfigError::invalid(var, &path, "not a PEM file"));
    }
    Ok(Some(Pem(bytes)))
}

impl KafkaSecurity {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let protocol = env
            .raw(KAFKA_SECURITY_PROTOCOL)
            .map(|p| p.trim().to_ascii_lowercase())
            .filter(|p| !p.is_empty());
        if let Some(p) = &protocol
            && !matches!(
                p.as_str(),
                "plaintext" | "ssl" | "sasl_ssl" | "sasl_plaintext"
            )
        {
            return Err(ConfigError::invalid(
                KAFKA_SECURITY_PROTOCOL,
                p,
                "expected plaintext, ssl, sasl_ssl or sasl_plaintext",
            ));
        }
        let sasl = protocol.as_deref().is_some_and(|p| p.starts_with("sasl"));
        let username = env.raw(KAFKA_SASL_USERNAME).filter(|u| !u.is_empty());
        let password = env.raw(KAFKA_SASL_PASSWORD).filter(|p| !p.is_empty());
        if sasl && (username.is_none() || password.is_none()) {
            return Err(ConfigError::invalid(
                KAFKA_SASL_PASSWORD,
                "<not repeated>",
                format!(
                    "{KAFKA_SECURITY_PROTOCOL}=sasl_* needs {KAFKA_SASL_USERNAME} and {KAFKA_SASL_PASSWORD}"
                ),
            ));
        }
        let ca_location = env
            .raw(KAFKA_SSL_CA_LOCATION)
            .filter(|p| !p.trim().is_empty())
            .map(PathBuf::from);
        if let Some(ca) = &ca_location
            && !ca.is_file()
        {
            return Err(ConfigError::invalid(
                KAFKA_SSL_CA_LOCATION,
                &ca.display().to_string(),
                "no such file",
            ));
        }
        Ok(KafkaSecurity {
            mechanism: sasl.then(|| {
                env.raw(KAFKA_SASL_MECHANISM)
                    .filter(|m| !m.trim().is_empty())
                    .unwrap_or_else(|| "SCRAM-SHA-512".into())
            }),
            protocol,
            username,
            password,
            ca_location,
        })
    }

    /// Sets the security properties on a librdkafka client configuration.
    pub fn apply(&self, c: &mut ClientConfig) {
        if let Some(p) = &self.protocol {
            c.set("security.protocol", p);
        }
        if let Some(m) = &self.mechanism {
            c.set("sasl.mechanism", m);
        }
        if let Some(u) = &self.username {
            c.set("sasl.username", u);
        }
        if let Some(p) = &self.password {
            c.set("sasl.password", p);
        }
        if let Some(ca) = &self.ca_location {
            c.set("ssl.ca.location", ca.display().to_string());
        }
    }
}

impl Tls {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let cert = read(env, NEWSROOM_TLS_CERT)?;
        let key = read(env, NEWSROOM_TLS_KEY)?;
        let server = match (cert, key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::invalid(
                    NEWSROOM_TLS_KEY,
                    "",
                    format!("required with {NEWSROOM_TLS_CERT}"),
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::invalid(
                    NEWSROOM_TLS_CERT,
                    "",
                    format!("required with {NEWSROOM_TLS_KEY}"),
                ));
            }
        };
        let client_ca = read(env, NEWSROOM_TLS_CLIENT_CA)?;
        if client_ca.is_some() && server.is_none() {
            return Err(ConfigError::invalid(
                NEWSROOM_TLS_CLIENT_CA,
                "",
                format!("mTLS needs the server's own {NEWSROOM_TLS_CERT} and {NEWSROOM_TLS_KEY}"),
            ));
        }
        Ok(Tls {
            server,
            client_ca,
            ca: read(env, NEWSROOM_TLS_CA)?,
            redis_ca: read(env, REDIS_TLS_CA)?.map(|p| p.0),
            kafka: KafkaSecurity::from_env(env)?,
        })
    }

    /// Whether the gRPC server speaks TLS.
    pub fn grpc_enabled(&self) -> bool {
        self.server.is_some()
    }

    /// The gRPC server's TLS (and mTLS) configuration, if any.
    pub fn server_config(&self) -> Option<ServerTlsConfig> {
        let (cert, key) = self.server.as_ref()?;
        let mut config = ServerTlsConfig::new().identity(Identity::from_pem(&cert.0, &key.0));
        if let Some(ca) = &self.client_ca {
            config = config.client_ca_root(Certificate::from_pem(&ca.0));
        }
        Some(config)
    }

    /// The TLS of a gRPC client this service makes to `domain`: the CA of `NEWSROOM_TLS_CA`
    /// and, when the service has a certificate, that certificate (for servers that ask).
    pub fn client_config(&self, domain: &str) -> Option<ClientTlsConfig> {
        let ca = self.ca.as_ref()?;
        let mut config = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&ca.0))
            .domain_name(domain);
        if let Some((cert, key)) = &self.server {
            config = config.identity(Identity::from_pem(&cert.0, &key.0));
        }
        Some(config)
    }
}

/// Installs ring as rustls's process-wide crypto provider (once; later calls do nothing), before
/// the first TLS connection of any client or server.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(pairs: &[(&str, &str)]) -> Result<Tls, ConfigError> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Tls::from_env(&Env::from_fn(|k| map.get(k).cloned()))
    }

    #[test]
    fn half_configurations_are_errors_naming_the_variable_and_no_password_is_shown() {
        let pem = std::env::temp_dir().join(format!("newsroom-tls-{}.pem", std::process::id()));
        std::fs::write(
            &pem,
            "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let pem = pem.display().to_string();
        let err = tls(&[(NEWSROOM_TLS_CERT, &pem)]).unwrap_err().to_string();
        assert!(err.starts_with(NEWSROOM_TLS_KEY), "{err}");
        let err = tls(&[(NEWSROOM_TLS_CLIENT_CA, &pem)])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(NEWSROOM_TLS_CLIENT_CA), "{err}");
        let err = tls(&[(NEWSROOM_TLS_CA, "/nonexistent.pem")])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(NEWSROOM_TLS_CA), "{err}");
        let err = tls(&[
            (KAFKA_SECURITY_PROTOCOL, "sasl_ssl"),
            (KAFKA_SASL_USERNAME, "u"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.starts_with(KAFKA_SASL_PASSWORD), "{err}");
        let err = tls(&[(KAFKA_SECURITY_PROTOCOL, "tls")])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(KAFKA_SECURITY_PROTOCOL), "{err}");
        let ok = tls(&[
            (KAFKA_SECURITY_PROTOCOL, "SASL_SSL"),
            (KAFKA_SASL_USERNAME, "newsroom"),
            (KAFKA_SASL_PASSWORD, "hunter2-secret"),
        ])
        .unwrap();
        assert!(!format!("{ok:?}").contains("hunter2"));
        let mut c = ClientConfig::new();
        ok.kafka.apply(&mut c);
        assert_eq!(c.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(c.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert!(!ok.grpc_enabled() && ok.server_config().is_none());
    }
}
