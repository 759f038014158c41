//! A phone-like webhook endpoint: receives alerts, prints them, and keeps them for inspection.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use serde_json::Value;
use tokio::net::TcpListener;

/// The alerts a sink received, in order.
#[derive(Clone, Default)]
pub struct Received(Arc<Mutex<Vec<Value>>>);

impl Received {
    pub fn all(&self) -> Vec<Value> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Whether an alert for `story_id` has arrived.
    pub fn contains_story(&self, story_id: &str) -> bool {
        self.0
            .lock()
            .is_ok_and(|v| v.iter().any(|a| a["story_id"] == story_id))
    }
}

/// Serves the sink on `listener` (POST any path) until the task is dropped. `print` writes each
/// alert to stdout as one JSON line.
pub async fn serve(
    listener: TcpListener,
    print: bool,
) -> (SocketAddr, Received, tokio::task::JoinHandle<()>) {
    let received = Received::default();
    let addr = listener
        .local_addr()
        .expect("bound listener has an address");
    let app = axum::Router::new()
        .fallback(axum::routing::post(
            |State((received, print)): State<(Received, bool)>, Json(alert): Json<Value>| async move {
                if print {
                    #[allow(clippy::print_stdout)]
                    {
                        println!("ALERT {alert}");
                    }
                }
                if let Ok(mut all) = received.0.lock() {
                    all.push(alert);
                }
                "ok"
            },
        ))
        .with_state((received.clone(), print));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, received, task)
}
