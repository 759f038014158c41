//! `newsroom canary`: the end-to-end probe an on-call watches, as the Guardian runs one. Every
//! `--every-secs` it submits a canary flash (`Story.canary`: enriched like any story, in no
//! reader's feed, alerting only the canary user's devices) and waits for the alert on its own
//! phone, a webhook it serves and registers as the canary user's device. Each probe prints one
//! line; Prometheus metrics at `http://--metrics/metrics`:
//!
//! - `newsroom_canary_alert_latency_seconds` — histogram, story submitted → alert received
//!   (ingest's acknowledgement included: the clock a reader's phone sees, less the provider's
//!   leg; on one machine the alert can arrive before the acknowledgement does);
//! - `newsroom_canary_probes_total{outcome}` — `ok`, `refused` (ingest did not acknowledge) or
//!   `missed` (no alert within `--deadline-secs`);
//! - `newsroom_canary_last_success_timestamp_seconds` — when a probe last succeeded (alert on
//!   `time() - this > 120`: the pipeline has stopped alerting).
//!
//! Probes overlap when the pipeline is slower than `--every-secs`, so a stall shows as a
//! failure every interval, not as one probe waiting. With `--count N` it stops after N probes
//! and exits 1 if one failed (a deploy gate); without, it runs until interrupted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use newsroom_platform::metrics::{Registry, encode};
use newsroom_proto::v1::{Story, SubmitStoryRequest};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

use super::print_json;
use super::register_webhook::register;
use crate::globals::Ingest;
use crate::sink::Received;
use crate::{Error, Globals};

/// The source every canary story comes from.
pub const CANARY_SOURCE: &str = "newsroom-canary";

#[derive(clap::Args)]
pub struct Args {
    /// Seconds between probes.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    every_secs: u64,
    /// Seconds a probe waits for its alert before it counts as missed.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    deadline_secs: u64,
    /// The canary user: notification's NEWSROOM_CANARY_USER.
    #[arg(long, default_value = "canary")]
    user: String,
    /// Where the canary's phone listens (its URL becomes the canary user's webhook device).
    #[arg(long, default_value = "127.0.0.1:8098")]
    phone: String,
    /// Where Prometheus scrapes the canary's metrics (`/metrics`).
    #[arg(long, default_value = "127.0.0.1:9098")]
    metrics: String,
    /// Stop after this many probes and exit 1 if one failed; 0 runs until interrupted.
    #[arg(long, default_value_t = 0)]
    count: u64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

/// The canary's metrics.
#[derive(Clone)]
struct Metrics {
    latency: Histogram,
    probes: Family<OutcomeLabel, Counter>,
    last_success: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl Metrics {
    fn register(registry: &mut Registry) -> Self {
        let m = Metrics {
            latency: Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0]),
            probes: Family::default(),
            last_success: Gauge::default(),
        };
        registry.register(
            "newsroom_canary_alert_latency_seconds",
            "Canary story submitted to ingest to its alert received on the canary phone",
            m.latency.clone(),
        );
        registry.register(
            "newsroom_canary_probes",
            "Canary probes by outcome: ok, refused (not acknowledged), missed (no alert in time)",
            m.probes.clone(),
        );
        registry.register(
            "newsroom_canary_last_success_timestamp_seconds",
            "Unix time of the last probe whose alert arrived",
            m.last_success.clone(),
        );
        m
    }

    fn count(&self, outcome: &'static str) {
        self.probes.get_or_create(&OutcomeLabel { outcome }).inc();
    }
}

/// What one probe came to.
#[derive(Debug, Clone, PartialEq)]
enum Probe {
    Ok { story_id: String, latency: Duration },
    Refused(String),
    Missed { story_id: String },
}

impl Probe {
    fn outcome(&self) -> &'static str {
        match self {
            Probe::Ok { .. } => "ok",
            Probe::Refused(_) => "refused",
            Probe::Missed { .. } => "missed",
        }
    }
}

pub async fn run(args: Args, globals: &Globals) -> Result<(), Error> {
    let phone = tokio::net::TcpListener::bind(&args.phone).await?;
    let (phone_addr, received, _phone) = crate::sink::serve(phone, false).await;
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let metrics_addr = serve_metrics(&args.metrics, Arc::new(registry)).await?;

    let mut notif = globals.notification_client().await?;
    let device = format!("{}-phone", args.user);
    register(
        &mut notif,
        &args.user,
        &device,
        &format!("http://{phone_addr}/"),
    )
    .await?;
    eprintln!(
        "canary: a probe every {} s as {} (phone http://{phone_addr}/, metrics http://{metrics_addr}/metrics)",
        args.every_secs, args.user
    );

    let ingest = globals.ingest_client().await?;
    let deadline = Duration::from_secs(args.deadline_secs);
    let mut every = tokio::time::interval(Duration::from_secs(args.every_secs));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut probes = tokio::task::JoinSet::new();
    let (mut started, mut failed) = (0u64, 0u64);
    let json = globals.json();
    loop {
        tokio::select! {
            _ = every.tick(), if args.count == 0 || started < args.count => {
                started += 1;
                let (ingest, received, metrics) = (ingest.clone(), received.clone(), metrics.clone());
                probes.spawn(async move {
                    let probe = probe(ingest, &received, deadline).await;
                    metrics.count(probe.outcome());
                    if let Probe::Ok { latency, .. } = &probe {
                        metrics.latency.observe(latency.as_secs_f64());
                        metrics.last_success.set(unix_secs(SystemTime::now()));
                    }
                    probe
                });
            }
            Some(done) = probes.join_next() => {
                let probe = done?;
                if probe.outcome() != "ok" {
                    failed += 1;
                }
                report(&probe, json);
                if args.count > 0 && started >= args.count && probes.is_empty() {
                    break;
                }
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    if failed > 0 {
        return Err(Error::Timeout(format!(
            "{failed} of {started} canary probes failed"
        )));
    }
    Ok(())
}

/// Submits one canary flash and waits up to `deadline` for its alert on the phone.
async fn probe(mut ingest: Ingest, received: &Received, deadline: Duration) -> Probe {
    let submitted = Instant::now();
    let answer = ingest
        .submit_story(SubmitStoryRequest {
            story: Some(canary_story(SystemTime::now())),
            idempotency_key: String::new(),
        })
        .await;
    let story_id = match answer {
        Ok(a) => a.into_inner().story_id,
        Err(status) => return Probe::Refused(format!("{}: {}", status.code(), status.message())),
    };
    while submitted.elapsed() < deadline {
        if received.contains_story(&story_id) {
            return Probe::Ok {
                story_id,
                latency: submitted.elapsed(),
            };
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Probe::Missed { story_id }
}

/// A canary flash: urgency 1, its own guid and wording at each probe.
fn canary_story(now: SystemTime) -> Story {
    let stamp = chrono::DateTime::<chrono::Utc>::from(now);
    Story {
        source: CANARY_SOURCE.to_owned(),
        guid: format!("canary-{}", stamp.timestamp_millis()),
        headline: format!(
            "Newsroom canary probe {}",
            stamp.format("%Y-%m-%d %H:%M:%S%.3f")
        ),
        body_html: format!(
            "<p>A synthetic flash of the Newsroom canary, sent at {}: it reaches no reader.</p>",
            stamp.to_rfc3339()
        ),
        urgency: 1,
        language: "en".to_owned(),
        canary: true,
        ..Default::default()
    }
}

fn report(probe: &Probe, json: bool) {
    if json {
        let mut v = serde_json::json!({ "outcome": probe.outcome() });
        match probe {
            Probe::Ok { story_id, latency } => {
                v["story_id"] = story_id.clone().into();
                v["latency_ms"] = (latency.as_millis() as u64).into();
            }
            Probe::Refused(why) => v["error"] = why.clone().into(),
            Probe::Missed { story_id } => v["story_id"] = story_id.clone().into(),
        }
        print_json(&v);
        return;
    }
    match probe {
        Probe::Ok { story_id, latency } => {
            println!("ok       {story_id} alerted in {} ms", latency.as_millis())
        }
        Probe::Refused(why) => println!("refused  {why}"),
        Probe::Missed { story_id } => println!("missed   {story_id}: no alert in time"),
    }
}

async fn serve_metrics(addr: &str, registry: Arc<Registry>) -> Result<SocketAddr, Error> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let registry = registry.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    encode(&registry),
                )
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(bound)
}

fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_canary_is_a_flash_of_its_own_marked_canary() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_000_000_123);
        let a = canary_story(t);
        let b = canary_story(t + Duration::from_millis(1));
        assert!(a.canary && a.urgency == 1 && a.source == CANARY_SOURCE);
        assert_ne!(a.guid, b.guid, "each probe is a new story");
        assert_ne!(a.headline, b.headline);
    }

    #[test]
    fn the_metrics_name_each_outcome() {
        let mut registry = Registry::default();
        let m = Metrics::register(&mut registry);
        m.count("ok");
        m.count("missed");
        m.latency.observe(0.4);
        let text = encode(&registry);
        for want in [
            "newsroom_canary_probes_total{outcome=\"ok\"} 1",
            "newsroom_canary_probes_total{outcome=\"missed\"} 1",
            "newsroom_canary_alert_latency_seconds_count 1",
            "newsroom_canary_last_success_timestamp_seconds",
        ] {
            assert!(text.contains(want), "{want} missing from:\n{text}");
        }
    }
}
