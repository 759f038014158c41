//! The APNs channel: Apple Push Notification service over HTTP/2 with token-based (JWT) auth.
//!
//! `POST <base_url>/3/device/<token>` with the headers Apple requires: `authorization: bearer
//! <JWT>` (ES256, `kid` = key id, `iss` = team id, `iat`; signed with `jsonwebtoken`, reused for
//! [`TOKEN_REUSE`] because Apple refuses tokens refreshed more than once per 20 minutes and
//! older than an hour), `apns-topic`, `apns-push-type: alert`, `apns-priority`,
//! `apns-expiration`, `apns-collapse-id` (so a correction replaces the alert in Notification
//! Centre) and `apns-id` (a UUID derived from the idempotency key: the same on every repeat).
//!
//! Answers: 200 delivered; 410 `Unregistered` and 400 `BadDeviceToken` /
//! `DeviceTokenNotForTopic` remove the device; 403 `ExpiredProviderToken` refreshes the JWT
//! once; 429 and 5xx are retried.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::FutureExt as _;
use futures::future::BoxFuture;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use newsroom_platform::config::Env;
use newsroom_proto::v1::{Channel as ChannelKind, Device};
use serde::Deserialize;
use serde_json::json;

use super::http::{self, Attempt, RetryPolicy};
use super::{Channel, Delivery, Limits, SendOutcome};
use crate::secret::{Secret, SecretSource};

/// How long one provider token is used (Apple: between 20 and 60 minutes).
pub const TOKEN_REUSE: Duration = Duration::from_secs(40 * 60);
/// Apple's limit on an alert's JSON payload.
pub const MAX_PAYLOAD: usize = 4096;

/// `{"type": "apns", ...}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApnsConfig {
    /// Default `https://api.push.apple.com`; `https://api.sandbox.push.apple.com` for
    /// development builds of the app.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The Apple developer team id (the JWT's `iss`). Required.
    pub team_id: String,
    /// The id of the signing key (the JWT's `kid`). Required.
    pub key_id: String,
    /// The `.p8` signing key from Apple (PKCS#8 PEM, P-256). Required.
    pub private_key: SecretSource,
    /// The app's bundle id (`apns-topic`). Required.
    pub topic: String,
    /// Seconds APNs keeps an alert for a device that is off (`apns-expiration`). Default 3600.
    #[serde(default = "default_expiration")]
    pub expiration_seconds: u32,
    /// The alert's title. Default "Breaking news".
    #[serde(default = "default_title")]
    pub title: String,
    #[serde(default)]
    pub limits: Limits,
    #[serde(skip)]
    resolved: Option<Secret>,
}

fn default_base_url() -> String {
    "https://api.push.apple.com".into()
}
fn default_expiration() -> u32 {
    3600
}
pub(super) fn default_title() -> String {
    "Breaking news".into()
}

impl ApnsConfig {
    pub(super) fn resolve(&mut self, env: &Env<'_>) -> Result<(), String> {
        reqwest::Url::parse(&self.base_url).map_err(|e| format!("base_url: {e}"))?;
        for (field, value) in [
            ("team_id", &self.team_id),
            ("key_id", &self.key_id),
            ("topic", &self.topic),
        ] {
            if value.trim().is_empty() {
                return Err(format!("{field}: required"));
            }
        }
        let key = self
            .private_key
            .resolve(env)
            .map_err(|e| format!("private_key: {e}"))?;
        EncodingKey::from_ec_pem(key.expose().as_bytes())
            .map_err(|e| format!("private_key is not a PKCS#8 P-256 key ({e})"))?;
        self.resolved = Some(key);
        Ok(())
    }

    /// A config made in code (tests, benchmarks).
    pub fn new(base_url: &str, team_id: &str, key_id: &str, key: Secret, topic: &str) -> Self {
        ApnsConfig {
            base_url: base_url.to_owned(),
            team_id: team_id.to_owned(),
            key_id: key_id.to_owned(),
            private_key: SecretSource::Inline(String::new()),
            topic: topic.to_owned(),
            expiration_seconds: default_expiration(),
            title: default_title(),
            limits: Limits::default(),
            resolved: Some(key),
        }
    }
}

/// An `apns-collapse-id` (at most 64 bytes) for a collapse id.
pub fn collapse_id(id: &str) -> String {
    if id.len() <= 64 {
        id.to_owned()
    } else {
        crate::channel::web_push::topic_of(id)
    }
}

pub struct Apns {
    client: reqwest::Client,
    base_url: String,
    team_id: String,
    key_id: String,
    key: EncodingKey,
    topic: String,
    expiration: u32,
    title: String,
    retry: RetryPolicy,
    token: Mutex<Option<(String, Instant)>>,
}

impl Apns {
    pub fn new(config: &ApnsConfig, timeout: Duration, retry: RetryPolicy) -> Result<Self, String> {
        let key = config
            .resolved
            .as_ref()
            .ok_or("private_key was not resolved")?;
        Ok(Apns {
            // APNs speaks only HTTP/2; one connection multiplexes many streams.
            client: reqwest::Client::builder()
                .timeout(timeout)
                .http2_prior_knowledge()
                .build()
                .map_err(|e| e.to_string())?,
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            team_id: config.team_id.clone(),
            key_id: config.key_id.clone(),
            key: EncodingKey::from_ec_pem(key.expose().as_bytes()).map_err(|e| e.to_string())?,
            topic: config.topic.clone(),
            expiration: config.expiration_seconds,
            title: config.title.clone(),
            retry,
            token: Mutex::new(None),
        })
    }

    /// The provider token, signed anew when older than [`TOKEN_REUSE`] or when `refresh`.
    fn token(&self, refresh: bool) -> Result<String, String> {
        let mut cached = self.token.lock().map_err(|_| "token cache poisoned")?;
        if !refresh
            && let Some((t, at)) = cached.as_ref()
            && at.elapsed() < TOKEN_REUSE
        {
            return Ok(t.clone());
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key_id.clone());
        let claims = json!({"iss": self.team_id, "iat": unix_now()});
        let token = jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| format!("cannot sign the APNs token: {e}"))?;
        *cached = Some((token.clone(), Instant::now()));
        Ok(token)
    }

    fn payload(&self, d: &Delivery<'_>) -> Vec<u8> {
        let alert = d.alert;
        let mut headline = alert.headline.clone();
        loop {
            let mut aps = json!({
                "alert": {"title": self.title, "body": headline},
                "thread-id": "breaking-news",
                "interruption-level": "time-sensitive",
            });
            if !alert.correction {
                // A correction (a retraction too) replaces the alert quietly.
                aps["sound"] = json!("default");
            }
            let body = json!({
                "aps": aps,
                "story_id": alert.story_id,
                "version": alert.version,
                "url": alert.url,
                "correction": alert.correction,
                "retracted": alert.retracted,
            });
            let bytes = serde_json::to_vec(&body).unwrap_or_default();
            if bytes.len() <= MAX_PAYLOAD || headline.is_empty() {
                return bytes;
            }
            // Too long for APNs: shorten the headline, on a character boundary.
            let keep = headline.len().saturating_sub(bytes.len() - MAX_PAYLOAD + 3);
            let mut cut = keep.min(headline.len());
            while !headline.is_char_boundary(cut) {
                cut -= 1;
            }
            headline.truncate(cut);
            headline.push('…');
        }
    }

    async fn deliver(&self, d: Delivery<'_>) -> SendOutcome {
        let url = format!("{}/3/device/{}", self.base_url, d.device.address);
        let body = self.payload(&d);
        let apns_id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, d.idempotency_key.as_bytes());
        let priority = if d.alert.correction { "5" } else { "10" };
        let expiration = (unix_now() + u64::from(self.expiration)).to_string();
        let collapse = collapse_id(&d.alert.collapse_id);
        http::with_retries(&self.retry, |refresh| {
            let token = self.token(refresh);
            let request = token.map(|token| {
                self.client
                    .post(&url)
                    .header(reqwest::header::AUTHORIZATION, format!("bearer {token}"))
                    .header("apns-topic", &self.topic)
                    .header("apns-push-type", "alert")
                    .header("apns-priority", priority)
                    .header("apns-expiration", &expiration)
                    .header("apns-collapse-id", &collapse)
                    .header("apns-id", apns_id.to_string())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone())
            });
            async move {
                let request = match request {
                    Ok(r) => r,
                    Err(e) => return Attempt::Fail(e),
                };
                match request.send().await {
                    Ok(resp) => {
                        let (status, headers) = (resp.status(), resp.headers().clone());
                        let reason = resp
                            .json::<serde_json::Value>()
                            .await
                            .ok()
                            .and_then(|v| v["reason"].as_str().map(str::to_owned))
                            .unwrap_or_default();
                        classify(status, &headers, &reason)
                    }
                    Err(e) => http::transport_error(e),
                }
            }
        })
        .await
    }
}

/// Reads an APNs answer: status and the `reason` of its JSON body.
pub fn classify(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    reason: &str,
) -> Attempt {
    let what = format!("APNs {} {reason}", status.as_u16());
    match (status.as_u16(), reason) {
        (200, _) => Attempt::Delivered,
        (410, _) | (400, "BadDeviceToken" | "DeviceTokenNotForTopic") => Attempt::Gone(what),
        (403, "ExpiredProviderToken") => Attempt::RefreshAuth(what),
        _ => match http::classify(status, headers) {
            // Only 410 means gone for APNs; a 404 is a wrong path.
            Attempt::Gone(_) => Attempt::Fail(what),
            Attempt::Retry(_, after) => Attempt::Retry(what, after),
            Attempt::Fail(_) => Attempt::Fail(what),
            other => other,
        },
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |t| t.as_secs())
}

impl Channel for Apns {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Apns
    }

    fn check_device(&self, device: &Device) -> Result<(), String> {
        let t = &device.address;
        if t.len() < 64
            || t.len() > 200
            || !t.len().is_multiple_of(2)
            || !t.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err("device.address: an APNs device token is 64 or more hex digits".into());
        }
        Ok(())
    }

    fn send<'a>(&'a self, delivery: Delivery<'a>) -> BoxFuture<'a, SendOutcome> {
        self.deliver(delivery).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;
    use reqwest::header::HeaderMap;

    #[test]
    fn apple_reasons_decide_gone_refresh_and_retry() {
        let h = HeaderMap::new();
        let c = |s: u16, r: &str| classify(StatusCode::from_u16(s).unwrap(), &h, r);
        assert_eq!(c(200, ""), Attempt::Delivered);
        assert!(matches!(c(410, "Unregistered"), Attempt::Gone(_)));
        assert!(matches!(c(400, "BadDeviceToken"), Attempt::Gone(_)));
        assert!(matches!(c(400, "BadCollapseId"), Attempt::Fail(_)));
        assert!(matches!(
            c(403, "ExpiredProviderToken"),
            Attempt::RefreshAuth(_)
        ));
        assert!(matches!(c(429, "TooManyRequests"), Attempt::Retry(..)));
        assert!(matches!(c(503, "ServiceUnavailable"), Attempt::Retry(..)));
        assert!(matches!(c(404, "BadPath"), Attempt::Fail(_)));
    }

    #[test]
    fn collapse_ids_fit_apples_64_bytes() {
        assert_eq!(collapse_id("abc"), "abc");
        assert!(collapse_id(&"x".repeat(100)).len() <= 64);
    }
}
