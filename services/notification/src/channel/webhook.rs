//! The webhook channel: the alert as a signed JSON POST to the device's URL.
//!
//! The body is [`WebhookAlert`]. Every request carries
//! - `Idempotency-Key: <story id>:<device id>` — the same on every attempt, also after a crash,
//!   so a receiver shows one alert however often it is told;
//! - when a secret is configured, `X-Newsroom-Signature: t=<unix seconds>,v1=<hex>` where `<hex>`
//!   is HMAC-SHA256 over `"<t>.<body>"` with the secret (the scheme Stripe and GitHub made
//!   familiar: the timestamp inside the MAC lets a receiver refuse replays).
//!
//! 2xx is delivered, 404/410 means the endpoint is gone, 429/5xx and connection errors are
//! retried (see [`super::http`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::FutureExt as _;
use futures::future::BoxFuture;
use hmac::{Hmac, Mac as _};
use newsroom_platform::config::Env;
use newsroom_proto::v1::{Channel as ChannelKind, Device};
use serde::Deserialize;
use sha2::Sha256;

use super::http::{self, RetryPolicy};
use super::{Channel, Delivery, Limits, SendOutcome};
use crate::secret::{Secret, SecretSource};

/// The default signature header.
pub const SIGNATURE_HEADER: &str = "X-Newsroom-Signature";

/// `{"type": "webhook", ...}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// HMAC-SHA256 key that signs every request. Default: none — requests go unsigned and the
    /// service warns at start-up.
    #[serde(default)]
    pub secret: Option<SecretSource>,
    /// Name of the signature header. Default `X-Newsroom-Signature`.
    #[serde(default = "default_header")]
    pub signature_header: String,
    #[serde(default)]
    pub limits: Limits,
    #[serde(skip)]
    resolved: Option<Secret>,
}

fn default_header() -> String {
    SIGNATURE_HEADER.to_owned()
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            secret: None,
            signature_header: default_header(),
            limits: Limits::default(),
            resolved: None,
        }
    }
}

impl WebhookConfig {
    pub(super) fn resolve(&mut self, env: &Env<'_>) -> Result<(), String> {
        reqwest::header::HeaderName::from_bytes(self.signature_header.as_bytes()).map_err(
            |_| {
                format!(
                    "signature_header {:?} is not a header name",
                    self.signature_header
                )
            },
        )?;
        if let Some(source) = &self.secret {
            self.resolved = Some(source.resolve(env).map_err(|e| format!("secret: {e}"))?);
        }
        Ok(())
    }

    /// A config with this secret (tests, benchmarks).
    pub fn with_secret(secret: Secret) -> Self {
        WebhookConfig {
            resolved: Some(secret),
            ..WebhookConfig::default()
        }
    }

    pub fn is_signed(&self) -> bool {
        self.resolved.is_some()
    }
}

/// The JSON body of a webhook alert.
#[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct WebhookAlert {
    pub story_id: String,
    pub version: u32,
    pub headline: String,
    pub url: String,
    pub urgency: u32,
    pub topics: Vec<String>,
    pub device_id: String,
    /// Seconds since the epoch.
    pub sent_at: u64,
    /// The idempotency key (also in the `Idempotency-Key` header).
    pub alert_id: String,
    /// The alert replaces an earlier one with the same `collapse_id`.
    pub correction: bool,
    /// The alert with this `collapse_id` is withdrawn (the story killed or the alert recalled).
    #[serde(default)]
    pub retracted: bool,
    pub critical: bool,
    pub collapse_id: String,
    /// A daily briefing's stories, top first (absent for an alert).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub briefing: Vec<super::BriefingEntry>,
}

/// The signature header value for `body` at `t` (seconds since the epoch).
pub fn sign(secret: &Secret, t: u64, body: &[u8]) -> String {
    // HMAC accepts a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

pub struct Webhook {
    client: reqwest::Client,
    secret: Option<Secret>,
    header: reqwest::header::HeaderName,
    retry: RetryPolicy,
}

impl Webhook {
    /// `allow_private`: see [`newsroom_platform::outbound`]; otherwise every connection is to
    /// a public address (checked at each resolution), and a redirect is never followed (it
    /// could point anywhere, and its answer would tell the caller what lives there).
    pub fn new(
        config: &WebhookConfig,
        timeout: Duration,
        retry: RetryPolicy,
        allow_private: bool,
    ) -> Result<Self, String> {
        Ok(Webhook {
            client: newsroom_platform::outbound::guarded(reqwest::Client::builder(), allow_private)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(timeout)
                .user_agent(concat!("newsroom-notification/", env!("CARGO_PKG_VERSION")))
                .pool_max_idle_per_host(1024)
                .build()
                .map_err(|e| e.to_string())?,
            secret: config.resolved.clone(),
            header: reqwest::header::HeaderName::from_bytes(config.signature_header.as_bytes())
                .map_err(|e| e.to_string())?,
            retry,
        })
    }

    async fn deliver(&self, d: Delivery<'_>) -> SendOutcome {
        let alert = d.alert;
        let body = WebhookAlert {
            story_id: alert.story_id.clone(),
            version: alert.version,
            headline: alert.headline.clone(),
            url: alert.url.clone(),
            urgency: alert.urgency,
            topics: alert.topics.clone(),
            device_id: d.device.device_id.clone(),
            sent_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |t| t.as_secs()),
            alert_id: d.idempotency_key.to_owned(),
            correction: alert.correction,
            retracted: alert.retracted,
            critical: alert.critical,
            collapse_id: alert.collapse_id.clone(),
            briefing: super::briefing_of(alert),
        };
        let Ok(body) = serde_json::to_vec(&body) else {
            return SendOutcome::Failed("alert does not serialise".into());
        };
        http::with_retries(&self.retry, |_| {
            let mut request = self
                .client
                .post(&d.device.address)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("Idempotency-Key", d.idempotency_key);
            if let Some(secret) = &self.secret {
                // Signed per attempt: the timestamp is the attempt's.
                let t = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |t| t.as_secs());
                request = request.header(self.header.clone(), sign(secret, t, &body));
            }
            let request = request.body(body.clone());
            async move {
                match request.send().await {
                    Ok(resp) => http::classify(resp.status(), resp.headers()),
                    Err(e) => http::transport_error(e),
                }
            }
        })
        .await
    }
}

impl Channel for Webhook {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Webhook
    }

    fn check_device(&self, device: &Device) -> Result<(), String> {
        let url = reqwest::Url::parse(&device.address)
            .map_err(|e| format!("device.address: not a URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err("device.address: a webhook needs an http(s) URL".into());
        }
        Ok(())
    }

    fn send<'a>(&'a self, delivery: Delivery<'a>) -> BoxFuture<'a, SendOutcome> {
        self.deliver(delivery).boxed()
    }
}

#[cfg(test)]
fn classify(status: u16) -> http::Attempt {
    http::classify(
        reqwest::StatusCode::from_u16(status).unwrap(),
        &reqwest::header::HeaderMap::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::http::Attempt;
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_dot_body() {
        // Reference value: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac key
        let sig = sign(&Secret::new("key"), 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(
            sig,
            "t=1700000000,v1=a438e398bfafc57e4396bb7fc2304422f0f768e965d073ca313cb52e22e6ad03"
        );
    }

    #[test]
    fn gone_retry_and_fail_are_told_apart() {
        assert!(matches!(classify(410), Attempt::Gone(_)));
        assert!(matches!(classify(404), Attempt::Gone(_)));
        assert!(matches!(classify(503), Attempt::Retry(..)));
        assert!(matches!(classify(429), Attempt::Retry(..)));
        assert!(matches!(classify(400), Attempt::Fail(_)));
        assert_eq!(classify(204), Attempt::Delivered);
    }

    #[test]
    fn it_parses_with_defaults() {
        let c: WebhookConfig = serde_json::from_str(r#"{"secret": {"env": "S"}}"#).unwrap();
        assert_eq!(c.signature_header, SIGNATURE_HEADER);
        assert_eq!(c.limits, Limits::default());
    }
}
