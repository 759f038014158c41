//! The webhook channel: the alert as a JSON POST to the device's URL.
//!
//! Retries with exponential backoff on 429, 5xx and connection errors (at most
//! [`MAX_ATTEMPTS`]), honouring a `Retry-After` in seconds up to [`MAX_RETRY_AFTER`]. 404 and
//! 410 mean the endpoint is gone.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use newsroom_proto::v1::{Alert, Device};
use reqwest::StatusCode;

use super::{Channel, SendOutcome};

/// Attempts per alert and device.
pub const MAX_ATTEMPTS: u32 = 3;
/// Longest `Retry-After` honoured; beyond it the send fails rather than holding the fan-out.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

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
}

#[derive(Clone)]
pub struct Webhook {
    client: reqwest::Client,
}

impl Webhook {
    pub fn new(timeout: Duration) -> Result<Self, reqwest::Error> {
        Ok(Webhook {
            client: reqwest::Client::builder()
                .timeout(timeout)
                .user_agent(concat!("newsroom-notification/", env!("CARGO_PKG_VERSION")))
                .build()?,
        })
    }
}

impl Channel for Webhook {
    async fn send(&self, device: &Device, alert: &Alert) -> SendOutcome {
        let body = WebhookAlert {
            story_id: alert.story_id.clone(),
            version: alert.version,
            headline: alert.headline.clone(),
            url: alert.url.clone(),
            urgency: alert.urgency,
            topics: alert.topics.clone(),
            device_id: device.device_id.clone(),
            sent_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        let mut backoff = Duration::from_millis(200);
        let mut last_error = String::new();
        for attempt in 1..=MAX_ATTEMPTS {
            let wait = match self.client.post(&device.address).json(&body).send().await {
                Ok(resp) if resp.status().is_success() => return SendOutcome::Delivered,
                Ok(resp) if matches!(resp.status(), StatusCode::NOT_FOUND | StatusCode::GONE) => {
                    return SendOutcome::Gone(format!("HTTP {}", resp.status()));
                }
                Ok(resp)
                    if resp.status() == StatusCode::TOO_MANY_REQUESTS
                        || resp.status().is_server_error() =>
                {
                    last_error = format!("HTTP {}", resp.status());
                    let retry_after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    match retry_after {
                        Some(d) if d > MAX_RETRY_AFTER => {
                            return SendOutcome::Failed(format!(
                                "{last_error}, Retry-After {}s is too long",
                                d.as_secs()
                            ));
                        }
                        Some(d) => d,
                        None => backoff,
                    }
                }
                Ok(resp) => return SendOutcome::Failed(format!("HTTP {}", resp.status())),
                Err(e) => {
                    last_error = e.to_string();
                    backoff
                }
            };
            if attempt < MAX_ATTEMPTS {
                tokio::time::sleep(wait).await;
                backoff *= 2;
            }
        }
        SendOutcome::Failed(format!("{last_error} (after {MAX_ATTEMPTS} attempts)"))
    }
}
