//! Toxiproxy (`deploy/toxiproxy.sh up`) driven through its HTTP API: TCP proxies between the
//! services and Kafka or Redis whose links a chaos scenario cuts, stalls or slows down — real
//! network faults, seen by librdkafka and the Redis client as they would see them in a data
//! centre.

use std::time::Duration;

use serde_json::json;

/// The Toxiproxy API (127.0.0.1:`NEWSROOM_TOXIPROXY_PORT`, 8474).
#[derive(Clone)]
pub struct Toxiproxy {
    api: String,
    http: reqwest::Client,
}

/// One proxy: `listen` on 127.0.0.1 to `upstream`.
pub struct Proxy {
    toxiproxy: Toxiproxy,
    pub name: String,
    pub listen: u16,
}

impl Toxiproxy {
    /// The running Toxiproxy; panics, saying how to start it, when none answers.
    pub async fn connect() -> Self {
        let port = std::env::var("NEWSROOM_TOXIPROXY_PORT").unwrap_or_else(|_| "8474".into());
        let t = Toxiproxy {
            api: format!("http://127.0.0.1:{port}"),
            // A fresh connection per call: Toxiproxy's API server drops idle keep-alive
            // connections, and a request sent on one it just closed fails with a reset (seen
            // once in `just ci`, mid-scenario).
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .pool_max_idle_per_host(0)
                .build()
                .expect("HTTP client"),
        };
        let answer = t.http.get(format!("{}/version", t.api)).send().await;
        assert!(
            answer.is_ok_and(|a| a.status().is_success()),
            "Toxiproxy does not answer on {}: start it with `deploy/toxiproxy.sh up` (`just chaos` does)",
            t.api
        );
        t
    }

    /// Creates (or replaces) a proxy listening on 127.0.0.1:`listen` in front of `upstream`.
    pub async fn proxy(&self, name: &str, listen: u16, upstream: &str) -> Proxy {
        let _ = self
            .http
            .delete(format!("{}/proxies/{name}", self.api))
            .send()
            .await;
        let answer = self
            .http
            .post(format!("{}/proxies", self.api))
            .json(&json!({
                "name": name,
                "listen": format!("127.0.0.1:{listen}"),
                "upstream": upstream,
                "enabled": true,
            }))
            .send()
            .await
            .expect("create the proxy");
        assert!(
            answer.status().is_success(),
            "create proxy {name}: {}",
            answer.text().await.unwrap_or_default()
        );
        Proxy {
            toxiproxy: self.clone(),
            name: name.to_owned(),
            listen,
        }
    }
}

impl Proxy {
    fn url(&self, path: &str) -> String {
        format!("{}/proxies/{}{path}", self.toxiproxy.api, self.name)
    }

    async fn post(&self, path: &str, body: serde_json::Value) {
        let answer = self
            .toxiproxy
            .http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("Toxiproxy API");
        assert!(
            answer.status().is_success(),
            "{} {path}: {}",
            self.name,
            answer.text().await.unwrap_or_default()
        );
    }

    /// The link cut: open connections reset, new ones refused.
    pub async fn cut(&self) {
        self.post("", json!({ "enabled": false })).await;
    }

    /// Connections stay open, but no byte passes in either direction.
    pub async fn stall(&self) {
        for stream in ["upstream", "downstream"] {
            self.post(
                "/toxics",
                json!({
                    "name": format!("stall-{stream}"), "type": "timeout", "stream": stream,
                    "toxicity": 1.0, "attributes": { "timeout": 0 },
                }),
            )
            .await;
        }
    }

    /// Every byte delayed by `latency` each way.
    pub async fn slow(&self, latency: Duration) {
        for stream in ["upstream", "downstream"] {
            self.post(
                "/toxics",
                json!({
                    "name": format!("latency-{stream}"), "type": "latency", "stream": stream,
                    "toxicity": 1.0,
                    "attributes": { "latency": latency.as_millis() as u64, "jitter": 0 },
                }),
            )
            .await;
        }
    }

    /// The link as it was: enabled, every toxic removed.
    pub async fn heal(&self) {
        let toxics: Vec<serde_json::Value> = self
            .toxiproxy
            .http
            .get(self.url("/toxics"))
            .send()
            .await
            .expect("Toxiproxy API")
            .json()
            .await
            .unwrap_or_default();
        for t in toxics {
            if let Some(name) = t["name"].as_str() {
                let _ = self
                    .toxiproxy
                    .http
                    .delete(self.url(&format!("/toxics/{name}")))
                    .send()
                    .await;
            }
        }
        self.post("", json!({ "enabled": true })).await;
    }

    /// Deletes the proxy.
    pub async fn remove(self) {
        let _ = self.toxiproxy.http.delete(self.url("")).send().await;
    }
}
