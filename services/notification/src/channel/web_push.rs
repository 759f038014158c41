//! The Web Push channel: RFC 8030 delivery, RFC 8291 `aes128gcm` payload encryption and VAPID
//! (RFC 8292), through the `web-push` crate.
//!
//! `web-push` (maintained, used widely) does the cryptography: the ECDH with the
//! subscription's `p256dh` key, the HKDF with its `auth` secret, AES-128-GCM, and the ES256
//! VAPID JWT. This file only builds messages and sends them with the service's own HTTP client,
//! so the crate's bundled clients (isahc, hyper 0.14) stay out of the build.
//!
//! - The VAPID JWT depends only on the push service's origin (`aud`); it is signed once per
//!   origin and reused for [`VAPID_REUSE`] (it is valid for 12 h).
//! - `Topic` is derived from the alert's collapse id, so a correction replaces an alert the
//!   push service still holds for an offline browser (RFC 8030 §5.4).
//! - `Urgency: high`, `TTL` from the config. 201 is delivered; 404/410 mean the subscription
//!   expired (the device is removed); 429/5xx are retried.
//! - An endpoint is only ever a push service's: its host must be one of `push_services` (the
//!   browsers' push services by default), at registration and again at every send, so a
//!   subscription cannot make notification post to an address of the caller's choosing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::FutureExt as _;
use futures::future::BoxFuture;
use newsroom_platform::config::Env;
use newsroom_proto::v1::{Channel as ChannelKind, Device};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use web_push::{
    ContentEncoding, PartialVapidSignatureBuilder, SubscriptionInfo, Urgency, VapidSignature,
    VapidSignatureBuilder, WebPushMessageBuilder,
};

use super::http::{self, Attempt, RetryPolicy};
use super::{Channel, Delivery, Limits, SendOutcome};
use crate::secret::{Secret, SecretSource};

/// How long a signed VAPID JWT is reused for one push service (it expires after 12 h).
pub const VAPID_REUSE: Duration = Duration::from_secs(6 * 3600);

/// `{"type": "web_push", ...}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebPushConfig {
    /// The VAPID private key: the raw P-256 scalar in base64url (what `npx web-push
    /// generate-vapid-keys` prints) or a PEM (SEC1 or PKCS#8). Required; browsers subscribed
    /// with its public key.
    pub vapid_private_key: SecretSource,
    /// The VAPID `sub` claim: a `mailto:` or `https:` contact for push service operators.
    /// Required.
    pub subject: String,
    /// Seconds a push service keeps an alert for an offline browser (`TTL`). Default 3600.
    #[serde(default = "default_ttl")]
    pub ttl_seconds: u32,
    /// Accept `http://` endpoints. Only for local test endpoints. Default false.
    #[serde(default)]
    pub allow_http: bool,
    /// The push services an endpoint may point at: host names, each also matching its
    /// subdomains. Default [`PUSH_SERVICES`], the browsers' own.
    #[serde(default = "default_push_services")]
    pub push_services: Vec<String>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(skip)]
    resolved: Option<Secret>,
}

fn default_ttl() -> u32 {
    3600
}

/// The push services of the browsers: Chrome and other Chromium browsers (FCM), Firefox
/// (Mozilla autopush), Safari (Apple), Edge (Windows Push Notification Services).
pub const PUSH_SERVICES: [&str; 4] = [
    "fcm.googleapis.com",
    "push.services.mozilla.com",
    "push.apple.com",
    "notify.windows.com",
];

fn default_push_services() -> Vec<String> {
    PUSH_SERVICES.iter().map(|s| (*s).to_owned()).collect()
}

/// Whether `host` is one of `services` or a subdomain of one (case-insensitive).
fn is_push_service(host: &str, services: &[String]) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    services.iter().any(|s| {
        let s = s.trim_end_matches('.').to_ascii_lowercase();
        host == s
            || host
                .strip_suffix(&s)
                .is_some_and(|rest| rest.ends_with('.'))
    })
}

impl WebPushConfig {
    pub(super) fn resolve(&mut self, env: &Env<'_>) -> Result<(), String> {
        if !(self.subject.starts_with("mailto:") || self.subject.starts_with("https:")) {
            return Err(format!(
                "subject {:?}: a mailto: or https: contact",
                self.subject
            ));
        }
        let key = self
            .vapid_private_key
            .resolve(env)
            .map_err(|e| format!("vapid_private_key: {e}"))?;
        vapid_builder(&key)?;
        self.resolved = Some(key);
        Ok(())
    }

    /// A config made in code (tests, benchmarks).
    pub fn new(vapid_private_key: Secret, subject: &str, allow_http: bool) -> Self {
        WebPushConfig {
            vapid_private_key: SecretSource::Inline(String::new()),
            subject: subject.to_owned(),
            ttl_seconds: default_ttl(),
            allow_http,
            push_services: default_push_services(),
            limits: Limits::default(),
            resolved: Some(vapid_private_key),
        }
    }
}

fn vapid_builder(key: &Secret) -> Result<PartialVapidSignatureBuilder, String> {
    let key = key.expose();
    let built = if key.starts_with("-----BEGIN") {
        VapidSignatureBuilder::from_pem_no_sub(key.as_bytes())
    } else {
        VapidSignatureBuilder::from_base64_no_sub(key)
    };
    built.map_err(|e| format!("vapid_private_key is not a P-256 private key ({e})"))
}

/// The `Topic` header for a collapse id: at most 32 characters of the URL-safe base64
/// alphabet (RFC 8030 §5.4), so a hash of the id rather than the id.
pub fn topic_of(collapse_id: &str) -> String {
    let mut topic = URL_SAFE_NO_PAD.encode(Sha256::digest(collapse_id.as_bytes()));
    topic.truncate(32);
    topic
}

/// The JSON a service worker receives (decrypted).
#[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct WebPushAlert {
    pub story_id: String,
    pub version: u32,
    pub headline: String,
    pub url: String,
    /// Use as the notification's `tag`: a correction replaces the alert shown.
    pub tag: String,
    pub correction: bool,
    /// The alert is withdrawn: close the notification with this `tag` (or show the notice).
    #[serde(default)]
    pub retracted: bool,
    pub critical: bool,
    /// A daily briefing's stories, top first (absent for an alert).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub briefing: Vec<super::BriefingEntry>,
}

pub struct WebPush {
    client: reqwest::Client,
    vapid: PartialVapidSignatureBuilder,
    subject: String,
    ttl: u32,
    allow_http: bool,
    push_services: Vec<String>,
    retry: RetryPolicy,
    signatures: Mutex<HashMap<String, (VapidSignature, Instant)>>,
}

impl WebPush {
    pub fn new(
        config: &WebPushConfig,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self, String> {
        let key = config
            .resolved
            .as_ref()
            .ok_or("vapid_private_key was not resolved")?;
        Ok(WebPush {
            client: reqwest::Client::builder()
                .timeout(timeout)
                .pool_max_idle_per_host(1024)
                .build()
                .map_err(|e| e.to_string())?,
            vapid: vapid_builder(key)?,
            subject: config.subject.clone(),
            ttl: config.ttl_seconds,
            allow_http: config.allow_http,
            push_services: config.push_services.clone(),
            retry,
            signatures: Mutex::new(HashMap::new()),
        })
    }

    /// The VAPID public key browsers subscribe with (`applicationServerKey`), base64url.
    pub fn public_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.vapid.get_public_key())
    }

    /// The signed VAPID JWT for the endpoint's push service, reused per origin.
    fn signature(&self, info: &SubscriptionInfo, origin: &str) -> Result<VapidSignature, String> {
        if let Ok(cache) = self.signatures.lock()
            && let Some((sig, at)) = cache.get(origin)
            && at.elapsed() < VAPID_REUSE
        {
            return Ok(sig.clone());
        }
        let mut builder = self.vapid.clone().add_sub_info(info);
        builder.add_claim("sub", self.subject.as_str());
        // The crate would drop the port from `aud`; RFC 8292 wants the origin.
        builder.add_claim("aud", origin);
        let sig = builder
            .build()
            .map_err(|e| format!("VAPID signature: {e}"))?;
        if let Ok(mut cache) = self.signatures.lock() {
            cache.insert(origin.to_owned(), (sig.clone(), Instant::now()));
        }
        Ok(sig)
    }

    async fn deliver(&self, d: Delivery<'_>) -> SendOutcome {
        let (device, alert) = (d.device, d.alert);
        let Some(keys) = &device.web_push else {
            return SendOutcome::Gone("the subscription has no keys".into());
        };
        let Ok(url) = reqwest::Url::parse(&device.address) else {
            return SendOutcome::Gone("the endpoint is not a URL".into());
        };
        // Checked again here: a device may come from the devices topic, not the API.
        if !url
            .host_str()
            .is_some_and(|h| is_push_service(h, &self.push_services))
        {
            return SendOutcome::Gone("the endpoint is not a configured push service's".into());
        }
        let origin = url.origin().ascii_serialization();
        let info = SubscriptionInfo::new(
            device.address.as_str(),
            keys.p256dh.as_str(),
            keys.auth.as_str(),
        );
        let payload = WebPushAlert {
            story_id: alert.story_id.clone(),
            version: alert.version,
            headline: alert.headline.clone(),
            url: alert.url.clone(),
            tag: alert.collapse_id.clone(),
            correction: alert.correction,
            retracted: alert.retracted,
            critical: alert.critical,
            briefing: super::briefing_of(alert),
        };
        let Ok(payload) = serde_json::to_vec(&payload) else {
            return SendOutcome::Failed("alert does not serialise".into());
        };
        let signature = match self.signature(&info, &origin) {
            Ok(s) => s,
            Err(e) => return SendOutcome::Failed(e),
        };
        let mut builder = WebPushMessageBuilder::new(&info);
        builder.set_payload(ContentEncoding::Aes128Gcm, &payload);
        builder.set_ttl(self.ttl);
        builder.set_urgency(Urgency::High);
        builder.set_topic(topic_of(&alert.collapse_id));
        builder.set_vapid_signature(signature);
        // Encrypted once: a retry resends the same ciphertext.
        let message = match builder.build() {
            Ok(m) => m,
            Err(e) => {
                return SendOutcome::Failed(format!("cannot encrypt for this subscription: {e}"));
            }
        };
        let Some(encrypted) = message.payload else {
            return SendOutcome::Failed("no payload".into());
        };
        http::with_retries(&self.retry, |_| {
            let mut request = self
                .client
                .post(url.clone())
                .header("TTL", message.ttl.to_string())
                .header("Urgency", "high")
                .header(
                    reqwest::header::CONTENT_ENCODING,
                    encrypted.content_encoding.to_str(),
                )
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream");
            if let Some(topic) = &message.topic {
                request = request.header("Topic", topic.as_str());
            }
            for (name, value) in &encrypted.crypto_headers {
                request = request.header(*name, value.as_str());
            }
            let request = request.body(encrypted.content.clone());
            async move {
                match request.send().await {
                    Ok(resp) => match resp.status().as_u16() {
                        413 => Attempt::Fail("HTTP 413: payload too large".into()),
                        _ => http::classify(resp.status(), resp.headers()),
                    },
                    Err(e) => http::transport_error(e),
                }
            }
        })
        .await
    }
}

impl Channel for WebPush {
    fn kind(&self) -> ChannelKind {
        ChannelKind::WebPush
    }

    fn check_device(&self, device: &Device) -> Result<(), String> {
        let url = reqwest::Url::parse(&device.address)
            .map_err(|e| format!("device.address: not a push endpoint URL ({e})"))?;
        let scheme_ok = url.scheme() == "https" || (self.allow_http && url.scheme() == "http");
        if !scheme_ok || url.host_str().is_none() {
            return Err("device.address: a Web Push endpoint is an https URL".into());
        }
        if !url
            .host_str()
            .is_some_and(|h| is_push_service(h, &self.push_services))
        {
            return Err(format!(
                "device.address: not a push service's endpoint (allowed: {})",
                self.push_services.join(", ")
            ));
        }
        let keys = device
            .web_push
            .as_ref()
            .ok_or("device.web_push: the subscription's p256dh and auth keys are required")?;
        let p256dh = URL_SAFE_NO_PAD
            .decode(keys.p256dh.trim_end_matches('='))
            .map_err(|_| "device.web_push.p256dh: not base64url")?;
        if p256dh.len() != 65 || p256dh[0] != 4 {
            return Err(
                "device.web_push.p256dh: not an uncompressed P-256 point (65 bytes)".into(),
            );
        }
        let auth = URL_SAFE_NO_PAD
            .decode(keys.auth.trim_end_matches('='))
            .map_err(|_| "device.web_push.auth: not base64url")?;
        if auth.len() != 16 {
            return Err("device.web_push.auth: not a 16-byte secret".into());
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

    /// The test key of the `web-push` crate's own tests.
    const KEY: &str = "IQ9Ur0ykXoHS9gzfYX0aBjy9lvdrjx_PFUXmie9YRcY";

    #[test]
    fn topics_are_short_url_safe_and_stable() {
        let t = topic_of("story-123");
        assert_eq!(t.len(), 32);
        assert!(
            t.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(t, topic_of("story-123"));
        assert_ne!(t, topic_of("story-124"));
    }

    #[test]
    fn a_bad_vapid_key_or_subject_is_a_config_error() {
        let env = Env::from_fn(|_| None);
        let mut c: WebPushConfig = serde_json::from_str(
            r#"{"vapid_private_key": "not-a-key", "subject": "mailto:a@example.com"}"#,
        )
        .unwrap();
        assert!(c.resolve(&env).unwrap_err().contains("vapid_private_key"));
        let mut c: WebPushConfig = serde_json::from_str(&format!(
            r#"{{"vapid_private_key": "{KEY}", "subject": "alerts@example.com"}}"#
        ))
        .unwrap();
        assert!(c.resolve(&env).unwrap_err().contains("subject"));
        c.subject = "mailto:alerts@example.com".into();
        c.resolve(&env).unwrap();
        assert_eq!(c.ttl_seconds, 3600);
    }

    #[test]
    fn a_subscription_needs_its_keys() {
        let wp = WebPush::new(
            &WebPushConfig::new(Secret::new(KEY), "mailto:a@example.com", false),
            Duration::from_secs(1),
            RetryPolicy::default(),
        )
        .unwrap();
        let mut d = Device {
            address: "https://fcm.googleapis.com/fcm/send/x".into(),
            ..Default::default()
        };
        assert!(wp.check_device(&d).unwrap_err().contains("device.web_push"));
        d.web_push = Some(newsroom_proto::v1::WebPushKeys {
            p256dh: URL_SAFE_NO_PAD.encode([4u8; 65]),
            auth: URL_SAFE_NO_PAD.encode([1u8; 16]),
        });
        wp.check_device(&d).unwrap();
        d.address = "http://fcm.googleapis.com/x".into();
        assert!(wp.check_device(&d).unwrap_err().contains("https"));
        // Only the push services' hosts: not the metadata service, not a look-alike.
        for other in [
            "https://169.254.169.254/latest",
            "https://push.example.com/x",
            "https://fcm.googleapis.com.evil.example/x",
            "https://evilfcm.googleapis.com/x",
        ] {
            d.address = other.into();
            let e = wp.check_device(&d).unwrap_err();
            assert!(e.contains("not a push service"), "{other}: {e}");
        }
        for ok in [
            "https://updates.push.services.mozilla.com/wpush/v2/x",
            "https://web.push.apple.com/x",
            "https://wns2-par02p.notify.windows.com/w/?token=x",
            "https://FCM.googleapis.com./fcm/send/x",
        ] {
            d.address = ok.into();
            wp.check_device(&d).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        assert_eq!(wp.public_key().len(), 87);
    }
}
