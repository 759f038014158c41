//! Enrichment end to end, against the real broker and Redis: stages plugged in by the pipeline
//! file alone (a remote stage running as its own process), stage timeouts and `on_error`, the
//! dead-letter queue with the failing stage named, hot reload of a good and a bad file,
//! near-duplicates from two sources in one cluster with velocity in the breaking score,
//! `EnrichPreview` / `ListStages`, and a replay that sends no second alert.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use newsroom_e2e::{Pipeline, Service, data_file, eventually};
use newsroom_platform::kafka::{Producer, dlq_headers, topics};
use newsroom_platform::metrics::{KafkaMetrics, Registry};
use newsroom_proto::Message as _;
use newsroom_proto::v1::enrichment_service_client::EnrichmentServiceClient;
use newsroom_proto::v1::enrichment_stage_server::EnrichmentStage;
use newsroom_proto::v1::ingest_service_client::IngestServiceClient;
use newsroom_proto::v1::{
    EnrichPreviewRequest, EnrichRequest, EnrichResponse, EnrichedStory, Enrichment, EntityKind,
    ListStagesRequest, ListStagesResponse, StageOutcome, Story, StoryEvent, SubmitStoryRequest,
};
use tokio::io::AsyncBufReadExt as _;
use tokio::process::{Child, Command};

/// A folder for this test's pipeline file.
fn pipeline_dir(pipeline: &Pipeline) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("newsroom-e2e-enrichment-{}", pipeline.id));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes a pipeline file the way editors do (a new file renamed over the old one).
fn write_pipeline(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The enrichment service alone, running the pipeline file written here first.
async fn enrichment_with(text: &str) -> (Pipeline, PathBuf) {
    let path = std::env::temp_dir().join(format!(
        "newsroom-e2e-enrichment-{}.toml",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&path, text).unwrap();
    let pipeline = Pipeline::start_with(
        &[Service::Enrichment],
        &[("NEWSROOM_PIPELINE_FILE", path.to_str().unwrap())],
    )
    .await;
    (pipeline, path)
}

fn story(id: &str, source: &str, headline: &str, body: &str) -> Story {
    Story {
        id: id.into(),
        version: 1,
        source: source.into(),
        guid: id.into(),
        headline: headline.into(),
        body_html: body.into(),
        urgency: 5,
        ..Default::default()
    }
}

/// Waits (10 s at most) until the running pipeline is what `applied` expects: a reload took
/// effect. Returns what `ListStages` answered then.
async fn reloaded(
    api: &EnrichmentServiceClient<tonic::transport::Channel>,
    what: &str,
    applied: impl Fn(&ListStagesResponse) -> bool,
) -> ListStagesResponse {
    let applied = &applied;
    eventually(Duration::from_secs(10), what, || {
        let mut api = api.clone();
        async move {
            let s = api
                .list_stages(ListStagesRequest {})
                .await
                .ok()?
                .into_inner();
            applied(&s).then_some(s)
        }
    })
    .await
}

/// Puts a story on stories.raw as ingest would.
async fn publish(pipeline: &Pipeline, story: Story) {
    let config = pipeline.platform_config(Service::Enrichment);
    let producer =
        Producer::new(&config, KafkaMetrics::register(&mut Registry::default())).unwrap();
    let id = story.id.clone();
    let event = StoryEvent {
        story: Some(story),
        fingerprint: String::new(),
        accepted_at: Some(std::time::SystemTime::now().into()),
    };
    producer
        .send(
            &pipeline.topic(topics::STORIES_RAW),
            &id,
            &event.encode_to_vec(),
        )
        .await
        .expect("stories.raw write");
}

/// The latest enriched record of a story, waiting up to 30 s for it.
async fn enriched(pipeline: &Pipeline, id: &str) -> EnrichedStory {
    enriched_where(pipeline, id, |_| true).await
}

async fn enriched_where(
    pipeline: &Pipeline,
    id: &str,
    want: impl Fn(&EnrichedStory) -> bool,
) -> EnrichedStory {
    eventually(
        Duration::from_secs(30),
        &format!("{id} on stories.enriched"),
        || async {
            pipeline
                .records(topics::STORIES_ENRICHED)
                .await
                .into_iter()
                .rev()
                .filter(|(k, _)| k == id)
                .filter_map(|(_, v)| EnrichedStory::decode(v?.as_slice()).ok())
                .find(|e| want(e))
        },
    )
    .await
}

fn run_of<'a>(e: &'a Enrichment, stage: &str) -> &'a newsroom_proto::v1::StageRun {
    e.stage_runs
        .iter()
        .find(|r| r.name == stage)
        .unwrap_or_else(|| panic!("no run of {stage} in {:?}", e.stage_runs))
}

/// Starts `newsroom-example-stage` and returns it with its address.
async fn spawn_example_stage() -> (Child, String) {
    let mut child = Command::new(newsroom_e2e::binary("newsroom-example-stage"))
        .env("NEWSROOM_STAGE_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start newsroom-example-stage");
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("the example stage says where it listens within 20 s")
        .unwrap()
        .unwrap();
    let addr = line.strip_prefix("listening ").expect("listening <addr>");
    (child, format!("http://{addr}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_stage_plugged_in_by_config_alone_enriches_every_story() {
    let (mut stage, endpoint) = spawn_example_stage().await;
    let (pipeline, _path) = enrichment_with(&format!(
        r#"
        [[stage]]
        name = "language"
        type = "language"

        [[stage]]
        name = "readability"
        type = "grpc"
        timeout_ms = 2000
        on_error = "retry"
        params = {{ endpoint = "{endpoint}", reads = ["language"], writes = ["attributes"] }}
        "#
    ))
    .await;

    let mut api = EnrichmentServiceClient::new(pipeline.channel(Service::Enrichment).await);
    let stages = api
        .list_stages(ListStagesRequest {})
        .await
        .unwrap()
        .into_inner();
    let remote = &stages.stages[1];
    assert_eq!(
        (remote.kind.as_str(), remote.endpoint.as_str()),
        ("grpc", endpoint.as_str())
    );
    assert_eq!(
        remote.after,
        ["language"],
        "it reads the language stage's finding"
    );
    assert_eq!(remote.wave, 1);

    publish(
        &pipeline,
        story(
            "remote-1",
            "wire",
            "The cat sat on the mat",
            "<p>The cat sat on the mat. It was a good day. We all went home.</p>",
        ),
    )
    .await;
    let e = enriched(&pipeline, "remote-1").await.enrichment.unwrap();
    assert_eq!(e.attributes["readability.level"], "easy", "{e:?}");
    assert!(e.attributes["readability.flesch"].parse::<f64>().unwrap() > 70.0);
    assert_eq!(run_of(&e, "readability").outcome(), StageOutcome::Ok);
    assert_eq!(e.language, "en");
    let _ = stage.kill().await;
    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_story_waits_for_a_retry_stage_that_is_down_instead_of_going_to_the_dlq() {
    // The remote stage's address, with nothing listening there yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let (pipeline, _path) = enrichment_with(&format!(
        r#"
        [[stage]]
        name = "readability"
        type = "grpc"
        timeout_ms = 1000
        on_error = "retry"
        attempts = 2
        params = {{ endpoint = "http://127.0.0.1:{port}", reads = [], writes = ["attributes"] }}
        "#
    ))
    .await;
    publish(
        &pipeline,
        story(
            "waits-1",
            "wire",
            "The cat sat on the mat",
            "<p>The cat sat on the mat. It was a good day. We all went home.</p>",
        ),
    )
    .await;
    // The stage is down for a while: the story is neither published nor dead-lettered.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        pipeline.records("stories.raw.dlq").await.is_empty(),
        "an outage sent the story to the DLQ"
    );
    assert!(pipeline.records("stories.enriched").await.is_empty());

    // The stage comes up: the story goes through, once, with its findings.
    let mut stage = Command::new(newsroom_e2e::binary("newsroom-example-stage"))
        .env("NEWSROOM_STAGE_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start newsroom-example-stage");
    let e = enriched(&pipeline, "waits-1").await.enrichment.unwrap();
    assert_eq!(e.attributes["readability.level"], "easy", "{e:?}");
    assert!(pipeline.records("stories.raw.dlq").await.is_empty());
    let _ = stage.kill().await;
    pipeline.stop().await;
}

/// A remote stage that takes its time and remembers what the pipeline sent it.
#[derive(Clone, Default)]
struct SlowStage {
    delay: Duration,
    seen: Arc<Mutex<Vec<HashMap<String, String>>>>,
}

#[tonic::async_trait]
impl EnrichmentStage for SlowStage {
    async fn enrich(
        &self,
        request: tonic::Request<EnrichRequest>,
    ) -> Result<tonic::Response<EnrichResponse>, tonic::Status> {
        let metadata: HashMap<String, String> = ["traceparent", "grpc-timeout"]
            .iter()
            .filter_map(|k| {
                let v = request.metadata().get(*k)?.to_str().ok()?;
                Some(((*k).to_owned(), v.to_owned()))
            })
            .collect();
        self.seen.lock().unwrap().push(metadata);
        tokio::time::sleep(self.delay).await;
        Ok(tonic::Response::new(EnrichResponse::default()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_past_its_timeout_is_skipped_or_dead_lettered_as_its_on_error_says() {
    let slow = SlowStage {
        delay: Duration::from_millis(1500),
        ..Default::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let server_shutdown = newsroom_platform::Shutdown::new();
    let server = tokio::spawn({
        let (slow, stop) = (slow.clone(), server_shutdown.clone());
        async move {
            newsroom_enrichment::remote::serve(
                slow,
                listener,
                async move { stop.requested().await },
            )
            .await
        }
    });
    let pipeline_text = |on_error: &str| {
        format!(
            r#"
            [[stage]]
            name = "language"
            type = "language"

            [[stage]]
            name = "slow"
            type = "grpc"
            timeout_ms = 200
            on_error = "{on_error}"
            params = {{ endpoint = "{endpoint}", retries = 0 }}
            "#
        )
    };
    let (pipeline, path) = enrichment_with(&pipeline_text("skip")).await;

    // skip: the story is published on time without the stage's findings.
    let started = std::time::Instant::now();
    publish(
        &pipeline,
        story(
            "slow-1",
            "wire",
            "Markets steady",
            "<p>Shares were little changed on Monday.</p>",
        ),
    )
    .await;
    let e = enriched(&pipeline, "slow-1").await.enrichment.unwrap();
    let run = run_of(&e, "slow");
    assert_eq!(run.outcome(), StageOutcome::Skipped);
    assert_eq!(run.error, "timed out after 200 ms");
    assert_eq!(e.language, "en", "the other stages' findings are kept");
    assert!(started.elapsed() < Duration::from_secs(10));
    // The remote heard the deadline (what was left of the 200 ms).
    let seen = slow.seen.lock().unwrap().clone();
    let timeout = &seen[0]["grpc-timeout"];
    assert!(
        timeout.ends_with('m') || timeout.ends_with('u'),
        "{timeout}"
    );

    // dead-letter (after a reload): the story lands in the DLQ naming the stage.
    write_pipeline(&path, &pipeline_text("dead-letter"));
    let api = EnrichmentServiceClient::new(pipeline.channel(Service::Enrichment).await);
    reloaded(&api, "the reload", |s| {
        s.stages[1].on_error == "dead-letter"
    })
    .await;
    publish(
        &pipeline,
        story(
            "slow-2",
            "wire",
            "Markets fall",
            "<p>Shares fell sharply on Tuesday.</p>",
        ),
    )
    .await;
    let dlq = pipeline.first_record(topics::STORIES_RAW_DLQ).await;
    let (headers, payload) = (dlq.headers, dlq.payload.unwrap_or_default());
    assert_eq!(headers[newsroom_enrichment::DLQ_STAGE_HEADER], "slow");
    assert!(
        headers[dlq_headers::ERROR].contains("timed out after 200 ms"),
        "{headers:?}"
    );
    assert_eq!(
        headers[dlq_headers::TOPIC],
        pipeline.topic(topics::STORIES_RAW)
    );
    let event = StoryEvent::decode(payload.as_slice()).unwrap();
    assert_eq!(
        event.story.unwrap().id,
        "slow-2",
        "the original bytes, intact"
    );
    // And the consumer carries on: a story after it is enriched.
    write_pipeline(&path, &pipeline_text("skip"));
    reloaded(&api, "the second reload", |s| {
        s.stages[1].on_error == "skip"
    })
    .await;
    publish(
        &pipeline,
        story(
            "slow-3",
            "wire",
            "Markets rise",
            "<p>Shares rose on Wednesday.</p>",
        ),
    )
    .await;
    enriched(&pipeline, "slow-3").await;
    server_shutdown.trigger();
    let _ = server.await;
    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_pipeline_file_is_applied_live_and_a_bad_one_is_rejected_keeping_the_old() {
    let one = "[[stage]]\nname = \"language\"\ntype = \"language\"\n";
    let two = "[[stage]]\nname = \"language\"\ntype = \"language\"\n\
               [[stage]]\nname = \"keywords\"\ntype = \"keywords\"\nparams = { max_keywords = 3 }\n";
    let (pipeline, path) = enrichment_with(one).await;
    let mut api = EnrichmentServiceClient::new(pipeline.channel(Service::Enrichment).await);
    let first = api
        .list_stages(ListStagesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.stages.len(), 1);
    assert_eq!(first.source, path.display().to_string());

    publish(
        &pipeline,
        story(
            "reload-1",
            "wire",
            "Chip makers build data centres",
            "<p>Semiconductor firms build data centres.</p>",
        ),
    )
    .await;
    let before = enriched(&pipeline, "reload-1").await.enrichment.unwrap();
    assert_eq!(before.pipeline_id, first.pipeline_id);
    assert!(before.keywords.is_empty());

    // A good file: applied without a restart.
    write_pipeline(&path, two);
    let second = reloaded(&api, "the new pipeline", |s| s.stages.len() == 2).await;
    assert_ne!(second.pipeline_id, first.pipeline_id);
    publish(
        &pipeline,
        story(
            "reload-2",
            "wire",
            "Chip makers build data centres",
            "<p>Semiconductor firms build data centres.</p>",
        ),
    )
    .await;
    let after = enriched(&pipeline, "reload-2").await.enrichment.unwrap();
    assert_eq!(after.pipeline_id, second.pipeline_id);
    assert!(
        !after.keywords.is_empty() && after.keywords.len() <= 3,
        "{:?}",
        after.keywords
    );
    assert_eq!(
        after.stage_runs.len(),
        2,
        "the whole story ran on the new pipeline"
    );

    // A bad file: rejected, the running pipeline stays and stories keep flowing.
    write_pipeline(
        &path,
        "[[stage]]\nname = \"keywords\"\ntype = \"keywords\"\nparams = { max_keywords = 0 }\n",
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    let still = api
        .list_stages(ListStagesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(still.pipeline_id, second.pipeline_id);
    let metrics = reqwest::get(format!(
        "http://{}/metrics",
        pipeline.admin_addr(Service::Enrichment)
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(
        metrics.contains(r#"newsroom_enrichment_pipeline_reloads_total{outcome="rejected"} 1"#),
        "{metrics}"
    );
    publish(
        &pipeline,
        story(
            "reload-3",
            "wire",
            "Chip makers build data centres",
            "<p>Semiconductor firms build data centres.</p>",
        ),
    )
    .await;
    let kept = enriched(&pipeline, "reload-3").await.enrichment.unwrap();
    assert_eq!(kept.pipeline_id, second.pipeline_id);
    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_pipeline_of_the_running_binary_and_remote_calls_carry_the_trace() {
    let pipeline = Pipeline::start_only(&[]).await;
    let dir = pipeline_dir(&pipeline);
    let path = dir.join("pipeline.toml");
    // A remote stage that records what it is sent.
    let recorder = SlowStage::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let stop = newsroom_platform::Shutdown::new();
    tokio::spawn({
        let (recorder, stop) = (recorder.clone(), stop.clone());
        async move {
            newsroom_enrichment::remote::serve(
                recorder,
                listener,
                async move { stop.requested().await },
            )
            .await
        }
    });
    let one = format!(
        "[[stage]]\nname = \"language\"\ntype = \"language\"\n\
         [[stage]]\nname = \"recorder\"\ntype = \"grpc\"\ntimeout_ms = 2000\nparams = {{ endpoint = \"{endpoint}\" }}\n"
    );
    std::fs::write(&path, &one).unwrap();
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let mut child = Command::new(newsroom_e2e::binary("newsroom-enrichment"))
        .envs(pipeline.env(Service::Enrichment))
        .env("NEWSROOM_GRPC_ADDR", addr.to_string())
        .env("NEWSROOM_ADMIN_ADDR", "127.0.0.1:0")
        .env("NEWSROOM_PIPELINE_FILE", &path)
        // Spans on, so the story's trace exists in the binary.
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start newsroom-enrichment");
    let channel = eventually(
        Duration::from_secs(60),
        "the binary's gRPC port",
        || async {
            tonic::transport::Channel::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect()
                .await
                .ok()
        },
    )
    .await;
    let mut api = EnrichmentServiceClient::new(channel);
    let stages = |api: &EnrichmentServiceClient<tonic::transport::Channel>| {
        let mut api = api.clone();
        async move {
            api.list_stages(ListStagesRequest {})
                .await
                .ok()
                .map(|r| r.into_inner().stages.len())
        }
    };
    eventually(Duration::from_secs(60), "the pipeline served", || {
        let f = stages(&api);
        async move { (f.await? == 2).then_some(()) }
    })
    .await;

    // A story whose trace began upstream: the remote stage's call continues that trace.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let config = pipeline.platform_config(Service::Enrichment);
    let producer =
        Producer::new(&config, KafkaMetrics::register(&mut Registry::default())).unwrap();
    let event = StoryEvent {
        story: Some(story(
            "traced-1",
            "wire",
            "Markets steady",
            "<p>Shares were little changed.</p>",
        )),
        ..Default::default()
    };
    let headers = newsroom_platform::kafka::rdkafka::message::OwnedHeaders::new().insert(
        newsroom_platform::kafka::rdkafka::message::Header {
            key: "traceparent",
            value: Some(format!("00-{trace_id}-00f067aa0ba902b7-01").as_bytes()),
        },
    );
    producer
        .send_with_headers(
            &pipeline.topic(topics::STORIES_RAW),
            "traced-1",
            Some(&event.encode_to_vec()),
            headers,
        )
        .await
        .unwrap();
    let seen = eventually(Duration::from_secs(30), "the remote stage's call", || {
        let seen = recorder.seen.lock().unwrap().clone();
        async move { seen.into_iter().find(|m| m.contains_key("traceparent")) }
    })
    .await;
    assert!(
        seen["traceparent"].contains(trace_id),
        "the call continues the story's trace: {seen:?}"
    );
    assert!(seen.contains_key("grpc-timeout"), "{seen:?}");

    // Overwrite in place (no rename) and say so with SIGHUP, as an operator would.
    std::fs::write(
        &path,
        format!("{one}[[stage]]\nname = \"counts\"\ntype = \"counts\"\n"),
    )
    .unwrap();
    let pid = child.id().unwrap().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .await
            .unwrap()
            .success()
    );
    eventually(Duration::from_secs(10), "three stages after SIGHUP", || {
        let f = stages(&api);
        async move { (f.await? == 3).then_some(()) }
    })
    .await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP reloads, it does not stop"
    );
    let _ = api.list_stages(ListStagesRequest {}).await.unwrap();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    stop.trigger();
    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_event_from_two_sources_shares_a_cluster_and_raises_the_breaking_score() {
    let pipeline = Pipeline::start_only(&[Service::Enrichment]).await;
    let a = "<p>Heavy rain caused flooding across the north of England on Tuesday, with hundreds of homes evacuated and rail services cancelled as rivers burst their banks.</p>\
             <p>The Environment Agency issued severe flood warnings for parts of Yorkshire and Cumbria, and more rain is forecast overnight.</p>";
    let b = "<p>Torrential rain caused flooding across the north of England on Tuesday, with hundreds of homes evacuated and rail services cancelled as rivers burst their banks.</p>\
             <p>The Environment Agency issued severe flood warnings for parts of Yorkshire and Cumbria, and more rain is forecast overnight, forecasters said.</p>";
    publish(
        &pipeline,
        story(
            "flood-wire-a",
            "wire-a",
            "Floods force hundreds from homes in northern England",
            a,
        ),
    )
    .await;
    let first = enriched(&pipeline, "flood-wire-a")
        .await
        .enrichment
        .unwrap();
    publish(
        &pipeline,
        story(
            "flood-wire-b",
            "wire-b",
            "Hundreds evacuated as floods hit north of England",
            b,
        ),
    )
    .await;
    let second = enriched(&pipeline, "flood-wire-b")
        .await
        .enrichment
        .unwrap();
    publish(
        &pipeline,
        story("budget", "wire-a", "Council approves budget", "<p>The council approved its annual budget on Tuesday after a long debate about road repairs and library opening hours.</p>"),
    )
    .await;
    let other = enriched(&pipeline, "budget").await.enrichment.unwrap();

    assert_eq!(first.cluster_id, "c-flood-wire-a");
    assert_eq!(
        second.cluster_id, first.cluster_id,
        "one event, one cluster"
    );
    assert_eq!(other.cluster_id, "c-budget");
    assert_eq!(first.attributes["urgency.sources"], "1");
    assert_eq!(second.attributes["urgency.sources"], "2");
    assert!(
        second.breaking_score > first.breaking_score + 0.1,
        "velocity: {} vs {}",
        second.breaking_score,
        first.breaking_score
    );
    // Both are about weather (the lexicon covers what the BBC set lacks).
    assert!(
        second.topics.iter().any(|t| t.code == "medtop:17000000"),
        "{:?}",
        second.topics
    );
    pipeline.stop().await;
}

/// A remote stage that writes an embedding: one direction per event, whatever the wording.
#[derive(Clone, Default)]
struct Embedder;

#[tonic::async_trait]
impl EnrichmentStage for Embedder {
    async fn enrich(
        &self,
        request: tonic::Request<EnrichRequest>,
    ) -> Result<tonic::Response<EnrichResponse>, tonic::Status> {
        let story = request.into_inner().story.unwrap_or_default();
        let mut embedding = vec![0.0f32; 8];
        let event = if story.headline.contains("quake") || story.headline.contains("tremor") {
            0
        } else {
            1
        };
        embedding[event] = 1.0;
        embedding[7] = 0.1;
        Ok(tonic::Response::new(EnrichResponse {
            enrichment: Some(Enrichment {
                embedding,
                ..Default::default()
            }),
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_event_in_other_words_joins_its_cluster_by_embedding() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let stop = newsroom_platform::Shutdown::new();
    tokio::spawn({
        let stop = stop.clone();
        async move {
            newsroom_enrichment::remote::serve(
                Embedder,
                listener,
                async move { stop.requested().await },
            )
            .await
        }
    });
    let (pipeline, _path) = enrichment_with(&format!(
        r#"
        [[stage]]
        name = "embedder"
        type = "grpc"
        timeout_ms = 2000
        on_error = "retry"
        params = {{ endpoint = "{endpoint}", reads = [], writes = ["embedding"] }}

        [[stage]]
        name = "dedup"
        type = "dedup"
        params = {{ min_cosine = 0.9 }}
        "#
    ))
    .await;
    publish(
        &pipeline,
        story(
            "quake-a",
            "wire-a",
            "Strong quake shakes the capital",
            "<p>A magnitude 6.1 earthquake struck near the capital on Monday morning, shaking buildings and sending people into the streets.</p>",
        ),
    )
    .await;
    let first = enriched(&pipeline, "quake-a").await.enrichment.unwrap();
    publish(
        &pipeline,
        story(
            "quake-b",
            "wire-b",
            "Powerful tremor rattles city",
            "<p>Residents fled offices and homes after violent shaking hit the metropolitan area early in the day, seismologists reported.</p>",
        ),
    )
    .await;
    let second = enriched(&pipeline, "quake-b").await.enrichment.unwrap();
    publish(
        &pipeline,
        story(
            "rates",
            "wire-a",
            "Central bank holds rates",
            "<p>The central bank left interest rates unchanged on Monday, citing steady inflation.</p>",
        ),
    )
    .await;
    let other = enriched(&pipeline, "rates").await.enrichment.unwrap();
    assert_eq!(
        first.embedding.len(),
        8,
        "the remote stage wrote the embedding"
    );
    assert_eq!(first.cluster_id, "c-quake-a");
    assert_eq!(
        second.cluster_id, first.cluster_id,
        "different words, same event: one cluster by meaning"
    );
    assert_eq!(other.cluster_id, "c-rates");
    stop.trigger();
    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_stories_still_flow_each_its_own_cluster() {
    // Nothing listens on port 1: Redis is "lost" for this enrichment.
    let pipeline = Pipeline::start_with(
        &[Service::Enrichment],
        &[("REDIS_URL", "redis://127.0.0.1:1")],
    )
    .await;
    publish(
        &pipeline,
        story(
            "no-redis",
            "wire",
            "BREAKING: Explosion at chemical plant",
            "<p>An explosion at a chemical plant in Ludwigshafen injured several workers on Monday, police said.</p>",
        ),
    )
    .await;
    let e = enriched(&pipeline, "no-redis").await.enrichment.unwrap();
    assert_eq!(e.cluster_id, "c-no-redis");
    assert!(e.breaking_score > 0.5, "{}", e.breaking_score);
    assert!(!e.topics.is_empty() && !e.entities.is_empty());
    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrich_preview_shows_what_the_pipeline_finds_and_publishes_nothing() {
    let pipeline = Pipeline::start_only(&[Service::Enrichment]).await;
    let doc: serde_json::Value = serde_json::from_str(&data_file("seed-story.ninjs.json")).unwrap();
    let seed = Story {
        headline: doc["headline"].as_str().unwrap().into(),
        standfirst: doc["description_text"].as_str().unwrap().into(),
        body_html: doc["body_html"].as_str().unwrap().into(),
        located: doc["located"].as_str().unwrap().into(),
        urgency: 3,
        ..Default::default()
    };
    let mut api = EnrichmentServiceClient::new(pipeline.channel(Service::Enrichment).await);
    let e = api
        .enrich_preview(EnrichPreviewRequest { story: Some(seed) })
        .await
        .unwrap()
        .into_inner()
        .enrichment
        .unwrap();
    let names: Vec<(&str, EntityKind)> = e
        .entities
        .iter()
        .map(|x| (x.name.as_str(), x.kind()))
        .collect();
    for (name, kind) in [
        ("Xi Jinping", EntityKind::Person),
        ("Li Shulei", EntityKind::Person),
        ("IBM", EntityKind::Organisation),
        ("Intel", EntityKind::Organisation),
        ("Cisco", EntityKind::Organisation),
        ("Alibaba", EntityKind::Organisation),
        ("Huawei", EntityKind::Organisation),
        ("Wuzhen", EntityKind::Place),
        ("Beijing", EntityKind::Place),
    ] {
        assert!(
            names.contains(&(name, kind)),
            "{name} {kind:?} not in {names:?}"
        );
    }
    assert!(
        e.topics.iter().any(|t| t.code == "medtop:13000000"),
        "{:?}",
        e.topics
    );
    assert!(!e.keywords.is_empty() && !e.summary.is_empty());
    assert_eq!(e.language, "en");
    assert!(e.word_count > 500 && e.reading_time_seconds > 120);

    let stages = api
        .list_stages(ListStagesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stages.source, "built-in default");
    assert_eq!(stages.pipeline_id, e.pipeline_id);
    let names: Vec<&str> = stages.stages.iter().map(|s| s.name.as_str()).collect();
    for want in [
        "language",
        "entities",
        "topics",
        "keywords",
        "summary",
        "dedup",
        "urgency",
        "embedding",
    ] {
        assert!(names.contains(&want), "{want} not in {names:?}");
    }
    let err = api
        .enrich_preview(EnrichPreviewRequest {
            story: Some(Story::default()),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        pipeline.records(topics::STORIES_ENRICHED).await.is_empty(),
        "a preview publishes nothing"
    );
    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replay_republishes_history_without_a_second_alert() {
    const TECH: &str = "medtop:13000000";
    let pipeline = Pipeline::start().await;
    let mut ingest = IngestServiceClient::new(pipeline.channel(Service::Ingest).await);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (phone, received, _sink) = newsroom_cli::sink::serve(listener, false).await;
    let user = "replay-reader";
    pipeline
        .reader_with_phone(
            user,
            "replay-phone",
            TECH,
            &format!("http://{phone}/alerts"),
        )
        .await;

    let flash = ingest
        .submit_story(SubmitStoryRequest {
            story: Some(Story {
                source: "wire".into(),
                guid: "replay-flash".into(),
                headline: "FLASH: Global internet outage knocks out cloud and mobile networks".into(),
                body_html: "<p>A failure at a major cloud computing provider took down websites, apps and mobile data networks in several countries, engineers said.</p>".into(),
                urgency: 1,
                ..Default::default()
            }),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    eventually(Duration::from_secs(30), "the flash alert", || {
        let n = received.all().len();
        async move { (n > 0).then_some(()) }
    })
    .await;
    let before = pipeline.records(topics::STORIES_ENRICHED).await.len();

    // Replay with the pipeline of the running service.
    let env = pipeline.env(Service::Enrichment);
    let config =
        newsroom_enrichment::Config::from_env(&newsroom_platform::config::Env::from_fn(|k| {
            env.get(k).cloned()
        }))
        .unwrap();
    let report = newsroom_enrichment::replay::replay(&config, &Default::default())
        .await
        .unwrap();
    assert_eq!(report.republished as usize, before);
    assert_eq!((report.skipped, report.failed), (0, 0));
    let after = pipeline.records(topics::STORIES_ENRICHED).await;
    assert_eq!(after.len(), 2 * before);
    let versions: Vec<u32> = after
        .iter()
        .filter(|(k, _)| *k == flash.story_id)
        .filter_map(|(_, v)| EnrichedStory::decode(v.as_deref()?).ok()?.story)
        .map(|s| s.version)
        .collect();
    assert_eq!(
        versions,
        [flash.version, flash.version],
        "republished with the same version"
    );

    // Notification saw the replayed record and sent nothing more.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let alerts = received.all();
    assert_eq!(alerts.len(), 1, "exactly one alert, got {alerts:?}");
    pipeline.stop().await;
}

/// Issue 14: enrichment had no version guard: an older version arriving after a newer one (a
/// late record, an enrichment replica slow on it during a rebalance) was enriched and written
/// last, and `stories.enriched`, compacted, kept it: the older version became the story.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_version_after_a_newer_one_is_not_published_again() {
    let pipeline = Pipeline::start_only(&[Service::Enrichment]).await;
    let mut v2 = story(
        "late-1",
        "wire",
        "Budget passed, final",
        "<p>The final text.</p>",
    );
    v2.version = 2;
    publish(&pipeline, v2).await;
    enriched(&pipeline, "late-1").await;
    let v1 = story("late-1", "wire", "Budget passes", "<p>An early text.</p>");
    publish(&pipeline, v1).await;
    // A story published after the late version is enriched once that one was handled (same
    // partition or not: a little more time is given).
    publish(
        &pipeline,
        story("after-1", "wire", "Another story", "<p>Text.</p>"),
    )
    .await;
    enriched(&pipeline, "after-1").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let versions: Vec<u32> = pipeline
        .records(topics::STORIES_ENRICHED)
        .await
        .into_iter()
        .filter(|(k, _)| k == "late-1")
        .filter_map(|(_, v)| EnrichedStory::decode(v?.as_slice()).ok()?.story)
        .map(|s| s.version)
        .collect();
    assert_eq!(versions, [2], "version 1 written after version 2");
    pipeline.stop().await;
}
