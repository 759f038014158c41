//! The FCM channel: Firebase Cloud Messaging HTTP v1.
//!
//! `POST <base_url>/v1/projects/<project_id>/messages:send` with `Authorization: Bearer <OAuth 2
//! access token>`. The token comes from the service account: a JWT (RS256, signed with
//! `jsonwebtoken`) exchanged at the account's `token_uri` (RFC 7523 `jwt-bearer` grant) for an
//! access token with the `firebase.messaging` scope, cached until a minute before it expires.
//!
//! The message carries the collapse id everywhere FCM passes it on: `android.collapse_key`
//! and `android.notification.tag`, `apns.headers.apns-collapse-id`, `webpush.headers.Topic`,
//! so a correction replaces the alert on every platform.
//!
//! Answers: 200 delivered; `UNREGISTERED` (404) and `SENDER_ID_MISMATCH` remove the device;
//! 401 refreshes the access token once; 429 `QUOTA_EXCEEDED` and 5xx are retried honouring
//! `Retry-After`.

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

/// The OAuth 2 scope FCM needs.
pub const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";

/// `{"type": "fcm", ...}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FcmConfig {
    /// Default `https://fcm.googleapis.com`.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The Firebase project id. Required.
    pub project_id: String,
    /// The service account key: the JSON file Google Cloud issues (`client_email`,
    /// `private_key`, `private_key_id`, `token_uri`). Required.
    pub service_account: SecretSource,
    /// The OAuth 2 token endpoint. Default: the service account's `token_uri`.
    #[serde(default)]
    pub token_url: Option<String>,
    /// Seconds FCM keeps an alert for a device that is off. Default 3600.
    #[serde(default = "default_ttl")]
    pub ttl_seconds: u32,
    /// The alert's title. Default "Breaking news".
    #[serde(default = "super::apns::default_title")]
    pub title: String,
    #[serde(default)]
    pub limits: Limits,
    #[serde(skip)]
    resolved: Option<ServiceAccount>,
}

fn default_base_url() -> String {
    "https://fcm.googleapis.com".into()
}
fn default_ttl() -> u32 {
    3600
}

/// The fields of a Google service account key that the token exchange needs.
#[derive(Clone, Deserialize)]
pub struct ServiceAccount {
    pub client_email: String,
    pub private_key: String,
    #[serde(default)]
    pub private_key_id: String,
    #[serde(default = "default_token_uri")]
    pub token_uri: String,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServiceAccount({}, <redacted>)", self.client_email)
    }
}

fn default_token_uri() -> String {
    "https://oauth2.googleapis.com/token".into()
}

impl FcmConfig {
    pub(super) fn resolve(&mut self, env: &Env<'_>) -> Result<(), String> {
        reqwest::Url::parse(&self.base_url).map_err(|e| format!("base_url: {e}"))?;
        if self.project_id.trim().is_empty() {
            return Err("project_id: required".into());
        }
        let json = self
            .service_account
            .resolve(env)
            .map_err(|e| format!("service_account: {e}"))?;
        let account = ServiceAccount::parse(&json)?;
        self.resolved = Some(account);
        Ok(())
    }

    /// A config made in code (tests, benchmarks).
    pub fn new(
        base_url: &str,
        project_id: &str,
        account: &Secret,
        token_url: Option<&str>,
    ) -> Result<Self, String> {
        Ok(FcmConfig {
            base_url: base_url.to_owned(),
            project_id: project_id.to_owned(),
            service_account: SecretSource::Inline(String::new()),
            token_url: token_url.map(str::to_owned),
            ttl_seconds: default_ttl(),
            title: super::apns::default_title(),
            limits: Limits::default(),
            resolved: Some(ServiceAccount::parse(account)?),
        })
    }
}

impl ServiceAccount {
    fn parse(json: &Secret) -> Result<Self, String> {
        let account: ServiceAccount = serde_json::from_str(json.expose())
            .map_err(|e| format!("service_account is not a service account key ({e})"))?;
        EncodingKey::from_rsa_pem(account.private_key.as_bytes())
            .map_err(|e| format!("service_account.private_key is not an RSA key ({e})"))?;
        Ok(account)
    }
}

pub struct Fcm {
    client: reqwest::Client,
    send_url: String,
    token_url: String,
    account: ServiceAccount,
    key: EncodingKey,
    ttl: u32,
    title: String,
    retry: RetryPolicy,
    /// One token fetch at a time: the first send of a fan-out fetches, the others wait.
    token: tokio::sync::Mutex<Option<(String, Instant)>>,
}

impl Fcm {
    pub fn new(config: &FcmConfig, timeout: Duration, retry: RetryPolicy) -> Result<Self, String> {
        let account = config
            .resolved
            .clone()
            .ok_or("service_account was not resolved")?;
        Ok(Fcm {
            client: reqwest::Client::builder()
                .timeout(timeout)
                .http2_prior_knowledge()
                .build()
                .map_err(|e| e.to_string())?,
            send_url: format!(
                "{}/v1/projects/{}/messages:send",
                config.base_url.trim_end_matches('/'),
                config.project_id
            ),
            token_url: config
                .token_url
                .clone()
                .unwrap_or_else(|| account.token_uri.clone()),
            key: EncodingKey::from_rsa_pem(account.private_key.as_bytes())
                .map_err(|e| e.to_string())?,
            account,
            ttl: config.ttl_seconds,
            title: config.title.clone(),
            retry,
            token: tokio::sync::Mutex::new(None),
        })
    }

    /// An access token, fetched anew when none is cached, it is about to expire, or `refresh`.
    async fn access_token(&self, refresh: bool) -> Result<String, Attempt> {
        let mut cached = self.token.lock().await;
        if !refresh
            && let Some((t, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(t.clone());
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |t| t.as_secs());
        let mut header = Header::new(Algorithm::RS256);
        if !self.account.private_key_id.is_empty() {
            header.kid = Some(self.account.private_key_id.clone());
        }
        let claims = json!({
            "iss": self.account.client_email,
            "scope": SCOPE,
            "aud": self.token_url,
            "iat": now,
            "exp": now + 3600,
        });
        let assertion = jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| Attempt::Fail(format!("cannot sign the FCM token request: {e}")))?;
        let resp = self
            .client
            .post(&self.token_url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            // A JWT is base64url and dots: nothing to escape.
            .body(format!(
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
            ))
            .send()
            .await
            .map_err(http::transport_error)?;
        let status = resp.status();
        if !status.is_success() {
            return Err(match http::classify(status, resp.headers()) {
                Attempt::Retry(_, after) => {
                    Attempt::Retry(format!("OAuth token endpoint: HTTP {status}"), after)
                }
                _ => Attempt::Fail(format!("OAuth token endpoint: HTTP {status}")),
            });
        }
        #[derive(Deserialize)]
        struct Token {
            access_token: String,
            #[serde(default)]
            expires_in: u64,
        }
        let token: Token = resp
            .json()
            .await
            .map_err(|_| Attempt::Fail("OAuth token endpoint: not a token answer".into()))?;
        let life = Duration::from_secs(token.expires_in.clamp(60, 3600) - 30);
        *cached = Some((token.access_token.clone(), Instant::now() + life));
        Ok(token.access_token)
    }

    fn message(&self, d: &Delivery<'_>) -> serde_json::Value {
        let alert = d.alert;
        let collapse = &alert.collapse_id;
        json!({"message": {
            "token": d.device.address,
            "notification": {"title": self.title, "body": alert.headline},
            // FCM data values are strings.
            "data": {
                "story_id": alert.story_id,
                "version": alert.version.to_string(),
                "url": alert.url,
                "correction": alert.correction.to_string(),
                "retracted": alert.retracted.to_string(),
                "alert_id": d.idempotency_key,
            },
            "android": {
                "collapse_key": collapse,
                "priority": "HIGH",
                "ttl": format!("{}s", self.ttl),
                "notification": {"tag": collapse},
            },
            "apns": {"headers": {
                "apns-collapse-id": super::apns::collapse_id(collapse),
                "apns-priority": if alert.correction { "5" } else { "10" },
            }},
            "webpush": {"headers": {
                "Topic": super::web_push::topic_of(collapse),
                "Urgency": "high",
                "TTL": self.ttl.to_string(),
            }},
        }})
    }

    async fn deliver(&self, d: Delivery<'_>) -> SendOutcome {
        let body = self.message(&d);
        http::with_retries(&self.retry, |refresh| {
            let body = &body;
            async move {
                let token = match self.access_token(refresh).await {
                    Ok(t) => t,
                    Err(attempt) => return attempt,
                };
                let sent = self
                    .client
                    .post(&self.send_url)
                    .bearer_auth(token)
                    .json(body)
                    .send()
                    .await;
                match sent {
                    Ok(resp) => {
                        let (status, headers) = (resp.status(), resp.headers().clone());
                        let error = resp.json::<serde_json::Value>().await.unwrap_or_default();
                        classify(status, &headers, &error)
                    }
                    Err(e) => http::transport_error(e),
                }
            }
        })
        .await
    }
}

/// The FCM error code of an error answer (`details[].errorCode`), else its `status`.
fn error_code(error: &serde_json::Value) -> String {
    let e = &error["error"];
    e["details"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|d| d["errorCode"].as_str())
        .or_else(|| e["status"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Reads an FCM answer.
pub fn classify(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    error: &serde_json::Value,
) -> Attempt {
    if status.is_success() {
        return Attempt::Delivered;
    }
    let code = error_code(error);
    let what = format!("FCM {} {code}", status.as_u16());
    match (status.as_u16(), code.as_str()) {
        (_, "UNREGISTERED" | "SENDER_ID_MISMATCH") => Attempt::Gone(what),
        (401, _) => Attempt::RefreshAuth(what),
        (429, _) | (500..=599, _) => Attempt::Retry(what, http::retry_after(headers)),
        _ => Attempt::Fail(what),
    }
}

impl Channel for Fcm {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Fcm
    }

    fn check_device(&self, device: &Device) -> Result<(), String> {
        let t = &device.address;
        if t.is_empty() || t.len() > 4096 || !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(
                "device.address: an FCM registration token (printable, at most 4096 bytes)".into(),
            );
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
    fn fcm_error_codes_decide_gone_refresh_and_retry() {
        let h = HeaderMap::new();
        let c = |s: u16, code: &str| {
            let body = json!({"error": {"code": s, "status": "X", "details": [
                {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}
            ]}});
            classify(StatusCode::from_u16(s).unwrap(), &h, &body)
        };
        assert_eq!(c(200, ""), Attempt::Delivered);
        assert!(matches!(c(404, "UNREGISTERED"), Attempt::Gone(_)));
        assert!(matches!(c(403, "SENDER_ID_MISMATCH"), Attempt::Gone(_)));
        assert!(matches!(
            c(401, "THIRD_PARTY_AUTH_ERROR"),
            Attempt::RefreshAuth(_)
        ));
        assert!(matches!(c(429, "QUOTA_EXCEEDED"), Attempt::Retry(..)));
        assert!(matches!(c(503, "UNAVAILABLE"), Attempt::Retry(..)));
        assert!(matches!(c(400, "INVALID_ARGUMENT"), Attempt::Fail(_)));
    }
}
