//! Webhook phones for the end-to-end tests and the chaos scenarios: an HTTP sink on 127.0.0.1
//! recording each alert with the device it reached and when, answering after a delay, or
//! failing as a push provider does ([`ProviderFault`]) for a while.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a push provider fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderFault {
    /// 503 Service Unavailable, nothing delivered.
    Unavailable,
    /// 429 Too Many Requests with `Retry-After: 1`, nothing delivered.
    TooManyRequests,
    /// No answer at all until the fault ends (then the connection drops), nothing delivered.
    Stall,
}

/// Webhook phones: every alert a device received, as (story, device, when), and the fault
/// their push provider has until when.
#[derive(Clone, Default)]
pub struct Phones {
    hits: Arc<Mutex<Vec<(String, String, Instant)>>>,
    /// When each story first reached a phone (looked up while a long fan-out runs).
    first: Arc<Mutex<std::collections::HashMap<String, Instant>>>,
    /// Keep no bodies (a million-device fan-out would hold gigabytes of them).
    lean: bool,
    /// Every body received, as (device, JSON).
    bodies: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
    fault: Arc<Mutex<Option<(ProviderFault, Instant)>>>,
}

impl Phones {
    /// Phones that record who got what and when, but not the bodies: for a million devices.
    pub fn lean() -> Self {
        Phones {
            lean: true,
            ..Phones::default()
        }
    }

    /// Serves `POST /<device>` on a free 127.0.0.1 port, answering after `delay`; returns the
    /// address (a device's webhook is `http://<address>/<device>`).
    pub async fn serve(&self, delay: Duration) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the phones");
        let addr = listener.local_addr().expect("address");
        let phones = self.clone();
        let app = axum::Router::new().route(
            "/{device}",
            axum::routing::post(
                move |axum::extract::Path(device): axum::extract::Path<String>,
                      body: axum::body::Bytes| {
                    let phones = phones.clone();
                    async move { phones.answer(device, &body, delay).await }
                },
            ),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        addr
    }

    async fn answer(
        &self,
        device: String,
        body: &[u8],
        delay: Duration,
    ) -> axum::response::Response {
        use axum::http::StatusCode;
        use axum::response::IntoResponse as _;
        let fault = *self.fault.lock().unwrap_or_else(|p| p.into_inner());
        match fault {
            Some((ProviderFault::Unavailable, until)) if Instant::now() < until => {
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
            Some((ProviderFault::TooManyRequests, until)) if Instant::now() < until => {
                return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")]).into_response();
            }
            Some((ProviderFault::Stall, until)) if Instant::now() < until => {
                tokio::time::sleep_until(until.into()).await;
                return StatusCode::GATEWAY_TIMEOUT.into_response();
            }
            _ => {}
        }
        tokio::time::sleep(delay).await;
        let json = serde_json::from_slice::<serde_json::Value>(body).unwrap_or_default();
        let story = json["story_id"].as_str().unwrap_or_default().to_owned();
        let now = Instant::now();
        self.first
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(story.clone())
            .or_insert(now);
        if !self.lean {
            self.bodies
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((device.clone(), json));
        }
        self.hits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((story, device, now));
        "{}".into_response()
    }

    /// Every phone's provider answers `fault` for `d` from now.
    pub fn fail(&self, fault: ProviderFault, d: Duration) {
        *self.fault.lock().unwrap_or_else(|p| p.into_inner()) = Some((fault, Instant::now() + d));
    }

    /// Every alert received, as (story, device).
    pub fn hits(&self) -> Vec<(String, String)> {
        self.hits_at().into_iter().map(|(s, d, _)| (s, d)).collect()
    }

    /// The JSON bodies `device` received, in order.
    pub fn bodies_of(&self, device: &str) -> Vec<serde_json::Value> {
        self.bodies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(d, _)| d == device)
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// How many alerts were received (cheap: a long fan-out polls it).
    pub fn count(&self) -> usize {
        self.hits.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// When `story` first reached a phone.
    pub fn first_at(&self, story: &str) -> Option<Instant> {
        self.first
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(story)
            .copied()
    }

    /// Every alert received, as (story, device, when).
    pub fn hits_at(&self) -> Vec<(String, String, Instant)> {
        self.hits.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Alerts each device received among `stories`.
    pub fn per_device(&self, stories: &[String]) -> std::collections::HashMap<String, usize> {
        let mut n = std::collections::HashMap::new();
        for (s, d, _) in self.hits_at() {
            if stories.contains(&s) {
                *n.entry(d).or_default() += 1;
            }
        }
        n
    }
}
