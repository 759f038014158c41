//! Web's configuration: where it listens, the four services it calls, the credentials it calls
//! them with, and how readers and editors sign in. Every variable is named in the error when
//! its value cannot be used.

use std::net::SocketAddr;

use newsroom_platform::auth::{LOCAL_EDITOR_TOKEN, LOCAL_SERVICE_TOKEN};
use newsroom_platform::config::{ConfigError, Env, PlatformConfig};

/// The HTTP address of the pages and the JSON API. Default 127.0.0.1:8080.
pub const NEWSROOM_WEB_ADDR: &str = "NEWSROOM_WEB_ADDR";
/// The services web calls (the same variables as the `newsroom` CLI).
pub const NEWSROOM_INGEST_URL: &str = "NEWSROOM_INGEST_URL";
pub const NEWSROOM_ENRICHMENT_URL: &str = "NEWSROOM_ENRICHMENT_URL";
pub const NEWSROOM_RECOMMENDATION_URL: &str = "NEWSROOM_RECOMMENDATION_URL";
pub const NEWSROOM_NOTIFICATION_URL: &str = "NEWSROOM_NOTIFICATION_URL";
/// The `service`-role token web acts for a signed-in reader with (required off loopback).
pub const NEWSROOM_WEB_SERVICE_TOKEN: &str = "NEWSROOM_WEB_SERVICE_TOKEN";
/// The `editor`-role token the console sends alerts with (required off loopback).
pub const NEWSROOM_WEB_EDITOR_TOKEN: &str = "NEWSROOM_WEB_EDITOR_TOKEN";
/// The key that signs session cookies: at least 64 bytes (hex or plain). Unset on loopback: a
/// new key at each start (sessions end with the process). Required off loopback.
pub const NEWSROOM_WEB_SESSION_KEY: &str = "NEWSROOM_WEB_SESSION_KEY";
/// `true` (the default on loopback) offers the development sign-in: any name, reader or editor,
/// no password. Refused off loopback.
pub const NEWSROOM_WEB_DEV_SIGNIN: &str = "NEWSROOM_WEB_DEV_SIGNIN";
/// Editors needed for an alert whose audience is above `NEWSROOM_WEB_APPROVAL_AUDIENCE`
/// devices: a second editor approves it. Default 10000.
pub const NEWSROOM_WEB_APPROVAL_AUDIENCE: &str = "NEWSROOM_WEB_APPROVAL_AUDIENCE";
/// The Web Push VAPID public key (base64url) the service worker subscribes with; empty: the
/// page offers no Web Push.
pub const NEWSROOM_WEB_VAPID_PUBLIC_KEY: &str = "NEWSROOM_WEB_VAPID_PUBLIC_KEY";
/// The trace viewer a story's trace links to (`{trace_id}` replaced). Default Jaeger's UI on
/// 127.0.0.1:16686.
pub const NEWSROOM_WEB_TRACE_URL: &str = "NEWSROOM_WEB_TRACE_URL";

/// The OpenID Connect provider readers and editors sign in with (its issuer URL: https, or
/// http on a loopback host); unset: no provider sign-in.
pub const NEWSROOM_WEB_OIDC_ISSUER: &str = "NEWSROOM_WEB_OIDC_ISSUER";
/// Web's client id at the provider (required with an issuer).
pub const NEWSROOM_WEB_OIDC_CLIENT_ID: &str = "NEWSROOM_WEB_OIDC_CLIENT_ID";
/// Web's client secret, for a confidential client; unset: a public client (PKCE alone).
pub const NEWSROOM_WEB_OIDC_CLIENT_SECRET: &str = "NEWSROOM_WEB_OIDC_CLIENT_SECRET";
/// Where the provider sends readers back (`https://<web>/signin/oidc/callback`); on loopback it
/// defaults to the address the browser used.
pub const NEWSROOM_WEB_OIDC_REDIRECT_URL: &str = "NEWSROOM_WEB_OIDC_REDIRECT_URL";
/// The provider's name on the sign-in page. Default "your organisation".
pub const NEWSROOM_WEB_OIDC_NAME: &str = "NEWSROOM_WEB_OIDC_NAME";

/// The default HTTP port.
pub const DEFAULT_PORT: u16 = 8080;

#[derive(Debug, Clone)]
pub struct Config {
    /// Telemetry, TLS to the services, log settings (its gRPC address is the HTTP one).
    pub platform: PlatformConfig,
    pub addr: SocketAddr,
    pub ingest_url: String,
    pub enrichment_url: String,
    pub recommendation_url: String,
    pub notification_url: String,
    pub service_token: String,
    pub editor_token: String,
    /// `None`: a random key per process (loopback only).
    pub session_key: Option<Vec<u8>>,
    pub dev_signin: bool,
    pub approval_audience: u64,
    pub vapid_public_key: String,
    pub trace_url: String,
    pub oidc: Option<crate::oidc::OidcConfig>,
}

impl Config {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let addr = env.addr(
            NEWSROOM_WEB_ADDR,
            SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)),
        )?;
        let loopback = addr.ip().is_loopback();
        let mut platform = PlatformConfig::from_env(env, "web", DEFAULT_PORT)?;
        platform.grpc_addr = addr;
        if env
            .raw(newsroom_platform::config::NEWSROOM_ADMIN_ADDR)
            .is_none()
        {
            platform.admin_addr = SocketAddr::new(addr.ip(), addr.port().saturating_add(1000));
            if addr.port() == 0 {
                platform.admin_addr = SocketAddr::new(addr.ip(), 0);
            }
        }
        let required = |var: &'static str, local: &str| -> Result<String, ConfigError> {
            match env.raw(var) {
                Some(v) => Ok(v.trim().to_owned()),
                None if loopback => Ok(local.to_owned()),
                None => Err(ConfigError::invalid(
                    var,
                    "",
                    format!("required when {NEWSROOM_WEB_ADDR} is not a loopback address"),
                )),
            }
        };
        let service_token = required(NEWSROOM_WEB_SERVICE_TOKEN, LOCAL_SERVICE_TOKEN)?;
        let editor_token = required(NEWSROOM_WEB_EDITOR_TOKEN, LOCAL_EDITOR_TOKEN)?;
        let session_key = match env.raw(NEWSROOM_WEB_SESSION_KEY) {
            Some(v) => {
                let v = v.trim();
                let bytes = decode_hex(v).unwrap_or_else(|| v.as_bytes().to_vec());
                if bytes.len() < 64 {
                    return Err(ConfigError::invalid(
                        NEWSROOM_WEB_SESSION_KEY,
                        "(hidden)",
                        format!("needs at least 64 bytes, got {}", bytes.len()),
                    ));
                }
                Some(bytes)
            }
            None if loopback => None,
            None => {
                return Err(ConfigError::invalid(
                    NEWSROOM_WEB_SESSION_KEY,
                    "",
                    format!("required when {NEWSROOM_WEB_ADDR} is not a loopback address"),
                ));
            }
        };
        let dev_signin: bool = env.parse(NEWSROOM_WEB_DEV_SIGNIN, loopback)?;
        if dev_signin && !loopback {
            return Err(ConfigError::invalid(
                NEWSROOM_WEB_DEV_SIGNIN,
                "true",
                "the development sign-in is for loopback addresses only",
            ));
        }
        let url = |var: &'static str, port: u16| -> Result<String, ConfigError> {
            let v = env.string(var, &format!("http://127.0.0.1:{port}"));
            if v.starts_with("http://") || v.starts_with("https://") {
                Ok(v)
            } else {
                Err(ConfigError::invalid(
                    var,
                    &v,
                    "expected an http:// or https:// URL",
                ))
            }
        };
        let oidc = match env.raw(NEWSROOM_WEB_OIDC_ISSUER) {
            None => None,
            Some(issuer) => {
                let issuer = issuer.trim().trim_end_matches('/').to_owned();
                let local_http = issuer.starts_with("http://127.0.0.1")
                    || issuer.starts_with("http://localhost")
                    || issuer.starts_with("http://[::1]");
                if !issuer.starts_with("https://") && !local_http {
                    return Err(ConfigError::invalid(
                        NEWSROOM_WEB_OIDC_ISSUER,
                        &issuer,
                        "expected an https:// URL (http only on a loopback host)",
                    ));
                }
                let client_id = env.raw(NEWSROOM_WEB_OIDC_CLIENT_ID).ok_or_else(|| {
                    ConfigError::invalid(
                        NEWSROOM_WEB_OIDC_CLIENT_ID,
                        "",
                        format!("required with {NEWSROOM_WEB_OIDC_ISSUER}"),
                    )
                })?;
                Some(crate::oidc::OidcConfig {
                    issuer,
                    client_id: client_id.trim().to_owned(),
                    client_secret: env.raw(NEWSROOM_WEB_OIDC_CLIENT_SECRET),
                    redirect_url: match env.raw(NEWSROOM_WEB_OIDC_REDIRECT_URL) {
                        Some(u) => Some(u.trim().to_owned()),
                        None if loopback => None,
                        None => {
                            return Err(ConfigError::invalid(
                                NEWSROOM_WEB_OIDC_REDIRECT_URL,
                                "",
                                format!(
                                    "required with {NEWSROOM_WEB_OIDC_ISSUER} when {NEWSROOM_WEB_ADDR} is not a loopback address"
                                ),
                            ));
                        }
                    },
                    name: env.string(NEWSROOM_WEB_OIDC_NAME, "your organisation"),
                })
            }
        };
        Ok(Config {
            oidc,
            addr,
            ingest_url: url(NEWSROOM_INGEST_URL, 50051)?,
            enrichment_url: url(NEWSROOM_ENRICHMENT_URL, 50052)?,
            recommendation_url: url(NEWSROOM_RECOMMENDATION_URL, 50053)?,
            notification_url: url(NEWSROOM_NOTIFICATION_URL, 50054)?,
            service_token,
            editor_token,
            session_key,
            dev_signin,
            approval_audience: env.parse(NEWSROOM_WEB_APPROVAL_AUDIENCE, 10_000)?,
            vapid_public_key: env.string(NEWSROOM_WEB_VAPID_PUBLIC_KEY, ""),
            trace_url: env.string(
                NEWSROOM_WEB_TRACE_URL,
                "http://127.0.0.1:16686/trace/{trace_id}",
            ),
            platform,
        })
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

impl newsroom_platform::service::ServiceConfig for Config {
    fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Config::from_env(env)
    }
    fn platform(&self) -> &PlatformConfig {
        &self.platform
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_env(&Env::from_fn(move |k| map.get(k).cloned()))
    }

    #[test]
    fn loopback_works_out_of_the_box_and_a_public_address_needs_its_secrets() {
        let c = load(&[]).unwrap();
        assert_eq!(c.addr.port(), 8080);
        assert!(c.dev_signin);
        assert_eq!(c.service_token, LOCAL_SERVICE_TOKEN);
        let e = load(&[(NEWSROOM_WEB_ADDR, "0.0.0.0:8080")])
            .unwrap_err()
            .to_string();
        assert!(e.contains(NEWSROOM_WEB_SERVICE_TOKEN), "{e}");
        let key = "ab".repeat(64);
        let e = load(&[
            (NEWSROOM_WEB_ADDR, "0.0.0.0:8080"),
            (NEWSROOM_WEB_SERVICE_TOKEN, "s"),
            (NEWSROOM_WEB_EDITOR_TOKEN, "e"),
            (NEWSROOM_WEB_SESSION_KEY, &key),
            (NEWSROOM_WEB_DEV_SIGNIN, "true"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains(NEWSROOM_WEB_DEV_SIGNIN), "{e}");
        let e = load(&[(NEWSROOM_WEB_SESSION_KEY, "short")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("64 bytes") && !e.contains("short"), "{e}");
        let e = load(&[(NEWSROOM_WEB_OIDC_ISSUER, "http://idp.example")])
            .unwrap_err()
            .to_string();
        assert!(e.contains(NEWSROOM_WEB_OIDC_ISSUER), "{e}");
        let e = load(&[(NEWSROOM_WEB_OIDC_ISSUER, "https://idp.example")])
            .unwrap_err()
            .to_string();
        assert!(e.contains(NEWSROOM_WEB_OIDC_CLIENT_ID), "{e}");
        let e = load(&[(NEWSROOM_RECOMMENDATION_URL, "127.0.0.1:1")])
            .unwrap_err()
            .to_string();
        assert!(e.contains(NEWSROOM_RECOMMENDATION_URL), "{e}");
    }
}
