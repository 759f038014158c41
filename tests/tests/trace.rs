//! One trace per story version, checked in a real trace backend.
//!
//! The four services run as their own binaries (as in production: one process, one
//! `service.name`, one OTLP exporter each), exporting to the Jaeger that `deploy/jaeger.sh up`
//! starts on 127.0.0.1 (`just test` does). The test submits a story, then asks Jaeger's HTTP
//! API for the trace and checks its shape: the four services in one trace id, the ingest server
//! span at the root, each enrichment stage a span under the record's consumer span, and each
//! Kafka hop a producer span whose child is the consumer span on the other side (`stories.raw`
//! to enrichment, `stories.enriched` to recommendation and to notification), and notification's
//! alert decision and fan-out under its consumer span (the story is a flash to a followed
//! topic, with a webhook phone).
//!
//! `JAEGER_QUERY_URL` (http://127.0.0.1:16686) and `JAEGER_OTLP_ENDPOINT`
//! (http://127.0.0.1:4317) point it elsewhere.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use newsroom_e2e::{Pipeline, Service, channel_to, eventually};
use newsroom_proto::v1::ingest_service_client::IngestServiceClient;
use newsroom_proto::v1::notification_service_client::NotificationServiceClient;
use newsroom_proto::v1::{Story, SubmitStoryRequest};
use serde_json::Value;
use tokio::process::{Child, Command};

const TECH: &str = "medtop:13000000";

fn query_url() -> String {
    std::env::var("JAEGER_QUERY_URL").unwrap_or_else(|_| "http://127.0.0.1:16686".into())
}

fn otlp_endpoint() -> String {
    std::env::var("JAEGER_OTLP_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:4317".into())
}

/// A free port on 127.0.0.1 (bound and released; the service binds it right after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Running {
    child: Child,
    grpc: std::net::SocketAddr,
}

/// Starts one service binary with the pipeline's environment, exporting traces to Jaeger.
async fn spawn(pipeline: &Pipeline, service: Service) -> Running {
    let (grpc, admin) = (free_port(), free_port());
    let child = Command::new(newsroom_e2e::binary(&format!(
        "newsroom-{}",
        service.name()
    )))
    .envs(pipeline.env(service))
    .env("NEWSROOM_GRPC_ADDR", format!("127.0.0.1:{grpc}"))
    .env("NEWSROOM_ADMIN_ADDR", format!("127.0.0.1:{admin}"))
    .env("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_endpoint())
    .env("OTEL_SERVICE_NAME", service.name())
    .env("RUST_LOG", "warn")
    .stdout(Stdio::null())
    .kill_on_drop(true)
    .spawn()
    .unwrap_or_else(|e| panic!("start newsroom-{}: {e}", service.name()));
    let url = format!("http://127.0.0.1:{admin}/readyz");
    eventually(
        Duration::from_secs(60),
        &format!("{} ready", service.name()),
        || {
            let url = url.clone();
            async move {
                let r = reqwest::get(&url).await.ok()?;
                r.status().is_success().then_some(())
            }
        },
    )
    .await;
    Running {
        child,
        grpc: ([127, 0, 0, 1], grpc).into(),
    }
}

/// SIGTERM, so the service drains and its telemetry guard flushes the last spans.
async fn stop(mut running: Running) {
    if let Some(pid) = running.child.id() {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(20), running.child.wait()).await;
}

/// One span of a Jaeger trace, with what the checks need.
#[derive(Debug)]
struct Span {
    id: String,
    parent: Option<String>,
    name: String,
    service: String,
    kind: String,
    tags: HashMap<String, String>,
    /// (trace id, span id) of the spans this one links to (references to other traces).
    links: Vec<(String, String)>,
}

fn spans_of(trace: &Value) -> Vec<Span> {
    let processes = &trace["processes"];
    trace["spans"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|s| {
            let tags: HashMap<String, String> = s["tags"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|t| {
                    let v = match &t["value"] {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (t["key"].as_str().unwrap_or_default().to_owned(), v)
                })
                .collect();
            let references = s["references"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            let trace_id = s["traceID"].as_str().unwrap_or_default();
            Span {
                id: s["spanID"].as_str().unwrap_or_default().to_owned(),
                parent: references
                    .iter()
                    .find(|r| r["refType"] == "CHILD_OF" && r["traceID"] == trace_id)
                    .and_then(|r| r["spanID"].as_str())
                    .map(str::to_owned),
                links: references
                    .iter()
                    .filter(|r| r["traceID"] != trace_id)
                    .map(|r| {
                        let id = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
                        (id("traceID"), id("spanID"))
                    })
                    .collect(),
                name: s["operationName"].as_str().unwrap_or_default().to_owned(),
                service: processes[s["processID"].as_str().unwrap_or_default()]["serviceName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                kind: tags.get("span.kind").cloned().unwrap_or_default(),
                tags,
            }
        })
        .collect()
}

/// The traces Jaeger holds for ingest's SubmitStory in the last few minutes.
async fn submit_traces() -> Option<Vec<Value>> {
    traces_of("ingest", "newsroom.v1.IngestService/SubmitStory").await
}

/// The traces Jaeger holds for one service's operation in the last few minutes.
async fn traces_of(service: &str, operation: &str) -> Option<Vec<Value>> {
    let url = format!(
        "{}/api/traces?service={service}&operation={}&lookback=15m&limit=200",
        query_url(),
        operation.replace('/', "%2F")
    );
    let body: Value = reqwest::get(&url).await.ok()?.json().await.ok()?;
    body["data"].as_array().cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_follows_a_story_from_submit_through_kafka_to_recommendation_and_notification() {
    assert!(
        reqwest::get(format!("{}/api/services", query_url()))
            .await
            .is_ok_and(|r| r.status().is_success()),
        "Jaeger is not answering on {}: start it with `deploy/jaeger.sh up` (`just test` does)",
        query_url()
    );
    // Isolation (topic and Redis prefixes, groups) from the kit; the services are binaries.
    let pipeline = Pipeline::start_only(&[]).await;
    let mut running = Vec::new();
    for service in Service::ALL {
        running.push((service, spawn(&pipeline, service).await));
    }
    // A reader who follows technology, with a webhook phone: the story below is a flash, so
    // the trace goes on into notification's alert decision and fan-out.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (phone, received, _sink) = newsroom_cli::sink::serve(listener, false).await;
    let addr = |service: Service| {
        running
            .iter()
            .find(|(s, _)| *s == service)
            .map(|(_, r)| r.grpc)
            .expect("running")
    };
    pipeline
        .reader_with_phone_at(
            addr(Service::Recommendation),
            addr(Service::Notification),
            "reader-1",
            "phone-1",
            TECH,
            &format!("http://{phone}/alerts"),
        )
        .await;
    let mut notif = NotificationServiceClient::new(channel_to(addr(Service::Notification)).await);

    let ingest_addr = addr(Service::Ingest);
    let mut ingest = IngestServiceClient::new(channel_to(ingest_addr).await);
    let story_id = ingest
        .submit_story(SubmitStoryRequest {
            story: Some(Story {
                source: "wire".into(),
                guid: format!("trace-{}", pipeline.id),
                headline: "FLASH: Global internet outage knocks out cloud and mobile networks".into(),
                body_html: "<p>Semiconductor firms and cloud computing companies announced new investments.</p>".into(),
                urgency: 1,
                ..Default::default()
            }),
            idempotency_key: String::new(),
        })
        .await
        .expect("SubmitStory")
        .into_inner()
        .story_id;

    let raw = pipeline.topic("stories.raw");
    let enriched = pipeline.topic("stories.enriched");
    let send = |topic: &str| format!("send {topic}");
    let process = |topic: &str| format!("process {topic}");

    // Spans arrive in batches from four processes: wait until the whole chain is there.
    let found = eventually(
        Duration::from_secs(60),
        "the story's trace in Jaeger",
        || {
            let (raw, enriched) = (raw.clone(), enriched.clone());
            async move {
                let traces = submit_traces().await?;
                let trace = traces
                    .iter()
                    .find(|t| spans_of(t).iter().any(|s| s.name == format!("send {raw}")))?;
                let spans = spans_of(trace);
                let has = |service: &str, name: &str| {
                    spans.iter().any(|s| s.service == service && s.name == name)
                };
                (has("recommendation", &format!("process {enriched}"))
                    && has("notification", &format!("process {enriched}"))
                    && has("notification", "alert")
                    && has("notification", "send webhook"))
                .then_some((
                    trace["traceID"].as_str().unwrap_or_default().to_owned(),
                    spans,
                ))
            }
        },
    )
    .await;
    let (story_trace, spans) = found;
    assert!(!received.all().is_empty(), "the phone got the alert");

    // An editor sends an alert for the same story: its own trace, whose fan-out links to the
    // story version's trace.
    notif
        .send_alert(newsroom_proto::v1::SendAlertRequest {
            story_id: story_id.clone(),
            audience: Some(newsroom_proto::v1::Audience {
                target: Some(newsroom_proto::v1::audience::Target::Everyone(true)),
            }),
            critical: false,
            dry_run: false,
            expires_after: None,
        })
        .await
        .expect("SendAlert");
    let editor = eventually(
        Duration::from_secs(60),
        "the editor's alert in Jaeger",
        || async {
            let traces =
                traces_of("notification", "newsroom.v1.NotificationService/SendAlert").await?;
            // This story's (Jaeger also holds the traces of earlier runs).
            traces.iter().map(spans_of).find(|spans| {
                spans
                    .iter()
                    .any(|s| s.name == "alert" && s.tags.get("story.id") == Some(&story_id))
            })
        },
    )
    .await;
    for (_, r) in running {
        stop(r).await;
    }
    pipeline.stop().await;

    let dump = || {
        spans
            .iter()
            .map(|s| format!("{} {} {} ({:?})", s.service, s.kind, s.name, s.parent))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let one = |service: &str, name: &str| -> &Span {
        spans
            .iter()
            .find(|s| s.service == service && s.name == name)
            .unwrap_or_else(|| panic!("no {service} span {name:?} in the trace:\n{}", dump()))
    };
    let parent_of = |span: &Span| -> &Span {
        let id = span
            .parent
            .as_deref()
            .unwrap_or_else(|| panic!("{} has no parent in the trace:\n{}", span.name, dump()));
        spans.iter().find(|s| s.id == id).unwrap_or_else(|| {
            panic!(
                "the parent of {} is not in the trace:\n{}",
                span.name,
                dump()
            )
        })
    };

    // The four services, one trace.
    for service in Service::ALL {
        assert!(
            spans.iter().any(|s| s.service == service.name()),
            "{} is missing from the trace:\n{}",
            service.name(),
            dump()
        );
    }
    // The root: ingest's server span for SubmitStory.
    let submit = one("ingest", "newsroom.v1.IngestService/SubmitStory");
    assert_eq!(submit.kind, "server");
    assert!(
        submit.parent.is_none(),
        "SubmitStory is the root:\n{}",
        dump()
    );

    // Hop 1: ingest produces to stories.raw, enrichment consumes it as the child.
    let produce_raw = one("ingest", &send(&raw));
    assert_eq!(produce_raw.kind, "producer");
    assert_eq!(
        produce_raw.tags.get("messaging.kafka.message.key"),
        Some(&story_id)
    );
    let consume_raw = one("enrichment", &process(&raw));
    assert_eq!(consume_raw.kind, "consumer");
    assert_eq!(parent_of(consume_raw).id, produce_raw.id);

    // Enrichment: one span per stage, each under the consumer span of the record.
    let descends_from = |span: &Span, ancestor: &Span| {
        let mut at = span;
        while let Some(parent) = at.parent.as_deref() {
            if parent == ancestor.id {
                return true;
            }
            match spans.iter().find(|s| s.id == parent) {
                Some(p) => at = p,
                None => return false,
            }
        }
        false
    };
    let stages: Vec<&Span> = spans
        .iter()
        .filter(|s| s.service == "enrichment" && s.name.starts_with("stage "))
        .collect();
    assert!(
        stages.len() >= 3,
        "enrichment's stages are spans:\n{}",
        dump()
    );
    for stage in &stages {
        assert!(
            descends_from(stage, consume_raw),
            "{} is under the consumer span:\n{}",
            stage.name,
            dump()
        );
    }

    // Hop 2: enrichment produces to stories.enriched; recommendation and notification each
    // consume it as the producer span's child.
    let produce_enriched = one("enrichment", &send(&enriched));
    assert_eq!(produce_enriched.kind, "producer");
    for service in ["recommendation", "notification"] {
        let consume = one(service, &process(&enriched));
        assert_eq!(consume.kind, "consumer");
        assert_eq!(
            parent_of(consume).id,
            produce_enriched.id,
            "{service} continues enrichment's producer span"
        );
    }
    // Notification: the alert decision and fan-out under its consumer span.
    let consume_in_notification = one("notification", &process(&enriched));
    let alert = one("notification", "alert");
    assert!(
        descends_from(alert, consume_in_notification),
        "the fan-out is under notification's consumer span:\n{}",
        dump()
    );

    // The fan-out in batches: a `send batch` span per page (the phone's page here) under the
    // fan-out, and under it one span per channel with the devices delivered.
    let batch = one("notification", "send batch");
    assert_eq!(parent_of(batch).id, alert.id, "{}", dump());
    assert_eq!(
        batch
            .tags
            .get("messaging.batch.message_count")
            .map(String::as_str),
        Some("1"),
        "{batch:?}"
    );
    let webhook = one("notification", "send webhook");
    assert_eq!(parent_of(webhook).id, batch.id, "{}", dump());
    assert_eq!(
        webhook
            .tags
            .get("notification.delivered")
            .map(String::as_str),
        Some("1"),
        "{webhook:?}"
    );
    assert!(
        alert.links.is_empty(),
        "the story's own fan-out is in its trace, not linked"
    );

    // The editor's alert: SendAlert at the root of its own trace, its fan-out linked to the
    // story version's trace.
    let editor_alert = editor
        .iter()
        .find(|s| s.name == "alert")
        .expect("the editor's fan-out");
    assert!(
        editor_alert
            .links
            .iter()
            .any(|(trace, _)| *trace == story_trace),
        "the editor's fan-out links to the story's trace {story_trace}: {editor_alert:?}"
    );
    assert!(
        editor
            .iter()
            .any(|s| s.name == "newsroom.v1.NotificationService/SendAlert" && s.parent.is_none()),
        "SendAlert is the root of the editor's trace"
    );
    eprintln!(
        "trace of story {story_id}: {} spans\n{}",
        spans.len(),
        dump()
    );
}
