//! The operator commands of the `newsroom` binary against the running stack: `tail` decodes a
//! topic to JSON, `lag` shows a group's lag per partition, and both exit with codes a script
//! can act on (3 lag above --max-lag, 66 no such topic, 75 timed out).

use std::time::Duration;

use newsroom_e2e::{Pipeline, Service, eventually};
use newsroom_proto::v1::ingest_service_client::IngestServiceClient;
use newsroom_proto::v1::{Story, SubmitStoryRequest};
use serde_json::Value;

/// Runs `newsroom --output json <args>`: (exit code, stdout JSON lines).
async fn newsroom(args: &[&str]) -> (i32, Vec<Value>) {
    let out = tokio::process::Command::new(newsroom_e2e::binary("newsroom"))
        .args(["--output", "json"])
        .args(args)
        .output()
        .await
        .expect("run newsroom");
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (out.status.code().unwrap_or(-1), lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_decodes_a_topic_to_json_and_lag_shows_the_group_per_partition() {
    let pipeline = Pipeline::start_only(&[Service::Ingest, Service::Enrichment]).await;
    let headline = "Chip makers race to build AI data centres";
    let (story_id, _) = submit(
        &pipeline,
        "cli-1",
        headline,
        "<p>Semiconductor firms announced new investments.</p>",
    )
    .await;

    // tail: the enriched story, decoded, with its key and trace context.
    let enriched = pipeline.topic("stories.enriched");
    let (code, records) = newsroom(&[
        "tail",
        &enriched,
        "--from-beginning",
        "--count",
        "1",
        "--timeout-secs",
        "60",
    ])
    .await;
    assert_eq!(code, 0);
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r["key"], story_id.as_str());
    assert_eq!(r["value"]["story"]["headline"], headline);
    assert!(
        r["value"]["enrichment"]["wordCount"].as_u64() > Some(0),
        "{r}"
    );
    assert!(r["headers"]["traceparent"].as_str().is_some(), "{r}");

    // tail: asked for more than there is, it gives up with 75 after printing what it found.
    let (code, records) = newsroom(&[
        "tail",
        &enriched,
        "--from-beginning",
        "--count",
        "2",
        "--timeout-secs",
        "3",
    ])
    .await;
    assert_eq!((code, records.len()), (75, 1));
    // No such topic: 66.
    let (code, _) = newsroom(&["tail", &pipeline.topic("no.such.topic"), "--count", "1"]).await;
    assert_eq!(code, 66);

    // lag: enrichment's group has committed the story; every partition at 0.
    let raw = pipeline.topic("stories.raw");
    let group = format!("t{}-enrichment", pipeline.id);
    let lags = eventually(Duration::from_secs(30), "enrichment committed", || {
        let (raw, group) = (raw.clone(), group.clone());
        async move {
            let (code, lags) = newsroom(&["lag", "--group", &group, "--topic", &raw]).await;
            (code == 0 && lags.iter().any(|l| l["committed"].as_i64() > Some(0))).then_some(lags)
        }
    })
    .await;
    assert_eq!(lags.len(), 3, "one line per partition: {lags:?}");
    assert!(
        lags.iter()
            .all(|l| l["lag"] == 0 && l["group"] == group.as_str())
    );

    // Without --topic: the topics the group consumes (committed on), from the system's list.
    let (code, lags) = newsroom(&[
        "lag",
        "--group",
        &group,
        "--topic-prefix",
        &format!("t{}.", pipeline.id),
    ])
    .await;
    assert_eq!(code, 0);
    assert!(
        !lags.is_empty() && lags.iter().all(|l| l["topic"] == raw.as_str()),
        "{lags:?}"
    );

    // A group that never read stories.raw is one record behind; --max-lag 0 makes that exit 3.
    let (code, lags) = newsroom(&[
        "lag",
        "--group",
        &format!("t{}-nobody", pipeline.id),
        "--topic",
        &raw,
        "--max-lag",
        "0",
    ])
    .await;
    assert_eq!(code, 3);
    assert_eq!(
        lags.iter().map(|l| l["lag"].as_i64().unwrap()).sum::<i64>(),
        1
    );
    assert!(lags.iter().all(|l| l["committed"].is_null()));
    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_watch_prints_the_counts_until_the_flash_reached_every_device() {
    const TECH: &str = "medtop:13000000";

    let pipeline = Pipeline::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (phone, _received, _sink) = newsroom_cli::sink::serve(listener, false).await;
    pipeline
        .reader_with_phone(
            "reader-1",
            "phone-1",
            TECH,
            &format!("http://{phone}/alerts"),
        )
        .await;

    let mut ingest = IngestServiceClient::new(pipeline.channel(Service::Ingest).await);
    let story_id = ingest
        .submit_story(SubmitStoryRequest {
            story: Some(Story {
                source: "wire".into(),
                guid: "cli-flash-1".into(),
                headline: "FLASH: Global internet outage knocks out cloud and mobile networks"
                    .into(),
                body_html: "<p>A failure at a major cloud computing provider took down \
                            websites, apps and mobile data networks, engineers said.</p>"
                    .into(),
                urgency: 1,
                ..Default::default()
            }),
            idempotency_key: String::new(),
        })
        .await
        .expect("SubmitStory")
        .into_inner()
        .story_id;

    let url = format!("http://{}", pipeline.grpc_addr(Service::Notification));
    let (code, counts) = newsroom(&[
        "--notification",
        &url,
        "alert",
        &story_id,
        "--watch",
        "--timeout-secs",
        "60",
    ])
    .await;
    assert_eq!(code, 0, "{counts:?}");
    let last = counts.last().expect("at least one line of counts");
    assert_eq!(last["story_id"], story_id.as_str());
    assert_eq!(
        (last["targeted"].as_u64(), last["sent"].as_u64()),
        (Some(1), Some(1)),
        "{counts:?}"
    );
    pipeline.stop().await;
}

/// Submits a story through ingest; its (id, version).
async fn submit(pipeline: &Pipeline, guid: &str, headline: &str, body: &str) -> (String, u32) {
    let mut ingest = IngestServiceClient::new(pipeline.channel(Service::Ingest).await);
    let r = ingest
        .submit_story(SubmitStoryRequest {
            story: Some(Story {
                source: "wire".into(),
                guid: guid.into(),
                headline: headline.into(),
                body_html: body.into(),
                urgency: 5,
                ..Default::default()
            }),
            idempotency_key: String::new(),
        })
        .await
        .expect("SubmitStory")
        .into_inner();
    (r.story_id, r.version)
}

/// The versions of a story on `stories.enriched`, in the order they were written.
async fn enriched_versions(pipeline: &Pipeline, id: &str) -> Vec<u32> {
    use newsroom_proto::Message as _;
    pipeline
        .records("stories.enriched")
        .await
        .into_iter()
        .filter(|(k, _)| k == id)
        .filter_map(|(_, v)| newsroom_proto::v1::EnrichedStory::decode(v?.as_slice()).ok())
        .map(|e| e.story.unwrap_or_default().version)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_sends_dead_lettered_stories_back_through_enrichment_once_the_stage_is_back() {
    use newsroom_proto::v1::ListStagesRequest;
    use newsroom_proto::v1::enrichment_service_client::EnrichmentServiceClient;

    // A remote fact-checking stage nobody answers: its stories are dead-lettered.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let language = "[[stage]]\nname = \"language\"\ntype = \"language\"\n";
    let broken = format!(
        "{language}\n[[stage]]\nname = \"factcheck\"\ntype = \"grpc\"\ntimeout_ms = 500\n\
         on_error = \"dead-letter\"\nparams = {{ endpoint = \"http://127.0.0.1:{port}\", retries = 0 }}\n"
    );
    let path = std::env::temp_dir().join(format!(
        "newsroom-e2e-cli-replay-{}.toml",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&path, &broken).unwrap();
    let pipeline = Pipeline::start_with(
        &[Service::Ingest, Service::Enrichment],
        &[("NEWSROOM_PIPELINE_FILE", path.to_str().unwrap())],
    )
    .await;
    let (id, _) = submit(
        &pipeline,
        "cli-replay-dlq-1",
        "Court blocks merger of two rail freight companies",
        "<p>Judges ruled the deal would cut competition.</p>",
    )
    .await;
    let dlq = pipeline.topic("stories.raw.dlq");
    let (code, dead) = newsroom(&[
        "tail",
        &dlq,
        "--from-beginning",
        "--count",
        "1",
        "--timeout-secs",
        "60",
    ])
    .await;
    assert_eq!(code, 0);
    assert_eq!(dead[0]["key"], id.as_str());
    assert_eq!(dead[0]["headers"]["dlq.stage"], "factcheck", "{dead:?}");

    // A dry run counts what it would send and writes nothing.
    let (code, out) = newsroom(&["replay", &dlq, "--dry-run"]).await;
    assert_eq!(code, 0, "{out:?}");
    assert_eq!(
        (out[0]["replayed"].as_u64(), out[0]["dry_run"].as_bool()),
        (Some(1), Some(true)),
        "{out:?}"
    );
    assert_eq!(pipeline.records("stories.raw").await.len(), 1);

    // The stage is fixed (here: taken out of the pipeline); the replay goes through and waits
    // for enrichment to have handled it.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, language).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    let api = EnrichmentServiceClient::new(pipeline.channel(Service::Enrichment).await);
    eventually(Duration::from_secs(20), "the fixed pipeline", || {
        let mut api = api.clone();
        async move {
            let stages = api.list_stages(ListStagesRequest {}).await.ok()?;
            (stages.into_inner().stages.len() == 1).then_some(())
        }
    })
    .await;
    let group = format!("t{}-enrichment", pipeline.id);
    let (code, out) = newsroom(&[
        "replay",
        &dlq,
        "--wait",
        "--group",
        &group,
        "--timeout-secs",
        "60",
    ])
    .await;
    assert_eq!(code, 0, "{out:?}");
    let report = &out[0];
    assert_eq!(
        (
            report["read"].as_u64(),
            report["replayed"].as_u64(),
            report["handled"].as_u64(),
            report["new_in_dlq"].as_u64()
        ),
        (Some(1), Some(1), Some(1), Some(0)),
        "{report}"
    );
    assert_eq!(report["target"], pipeline.topic("stories.raw").as_str());
    // Enriched now: --wait returned once enrichment had committed past it.
    assert_eq!(enriched_versions(&pipeline, &id).await, [1]);
    // The replayed record says where it came from and no longer carries the DLQ verdict.
    let (_, raw) = newsroom(&[
        "tail",
        &pipeline.topic("stories.raw"),
        "--from-beginning",
        "--count",
        "2",
        "--timeout-secs",
        "30",
    ])
    .await;
    let replayed = &raw[1]["headers"];
    assert_eq!(replayed["newsroom.replay"], "cli", "{raw:?}");
    assert_eq!(
        replayed["newsroom.replay.source"],
        format!("{dlq}/{}/{}", dead[0]["partition"], dead[0]["offset"]).as_str()
    );
    assert!(replayed.get("dlq.error").is_none(), "{replayed}");

    // A topic that does not carry stories cannot be replayed: bad usage, 2.
    let (code, _) = newsroom(&["replay", &pipeline.topic("profiles")]).await;
    assert_eq!(code, 2);
    pipeline.stop().await;
    let _ = std::fs::remove_file(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_of_a_stories_raw_range_writes_back_only_the_latest_version_of_each_story() {
    let pipeline = Pipeline::start_only(&[Service::Ingest, Service::Enrichment]).await;
    let (id, v1) = submit(
        &pipeline,
        "cli-replay-raw-1",
        "Storm closes ports along the east coast",
        "<p>Ferries were cancelled.</p>",
    )
    .await;
    let (same, v2) = submit(
        &pipeline,
        "cli-replay-raw-1",
        "Storm closes ports along the east coast",
        "<p>Ferries were cancelled and two ports flooded.</p>",
    )
    .await;
    assert_eq!((same.as_str(), v1, v2), (id.as_str(), 1, 2));
    eventually(
        Duration::from_secs(30),
        "both versions enriched",
        || async { (enriched_versions(&pipeline, &id).await.len() == 2).then_some(()) },
    )
    .await;

    let raw = pipeline.topic("stories.raw");
    let group = format!("t{}-enrichment", pipeline.id);
    let (code, out) = newsroom(&[
        "replay",
        &raw,
        "--from",
        "beginning",
        "--wait",
        "--group",
        &group,
        "--timeout-secs",
        "60",
    ])
    .await;
    assert_eq!(code, 0, "{out:?}");
    let report = &out[0];
    assert_eq!(
        (
            report["read"].as_u64(),
            report["replayed"].as_u64(),
            report["superseded"].as_u64(),
            report["handled"].as_u64()
        ),
        (Some(2), Some(1), Some(1), Some(1)),
        "{report}"
    );
    // Version 1 was not written back: the latest record of the compacted topic is still v2.
    assert_eq!(enriched_versions(&pipeline, &id).await, [1, 2, 2]);

    // A range that starts after the last record reads nothing.
    let later = (chrono::Utc::now() + chrono::Duration::minutes(1)).to_rfc3339();
    let (code, out) = newsroom(&["replay", &raw, "--from", &later]).await;
    assert_eq!(code, 0, "{out:?}");
    assert_eq!(
        (out[0]["read"].as_u64(), out[0]["replayed"].as_u64()),
        (Some(0), Some(0))
    );
    // A range by time that covers the story, the replayed record included (dry run, --story).
    let (code, out) = newsroom(&[
        "replay",
        &raw,
        "--from",
        "2000-01-01T00:00:00Z",
        "--story",
        &id,
        "--dry-run",
    ])
    .await;
    assert_eq!(code, 0, "{out:?}");
    assert_eq!(
        (out[0]["replayed"].as_u64(), out[0]["superseded"].as_u64()),
        (Some(2), Some(1)),
        "{out:?}"
    );
    pipeline.stop().await;
}

/// `newsroom --output json` against this pipeline's services.
async fn newsroom_at(pipeline: &Pipeline, args: &[&str]) -> (i32, Vec<Value>) {
    let url = |s: Service| format!("http://{}", pipeline.grpc_addr(s));
    let (ingest, rec, notif) = (
        url(Service::Ingest),
        url(Service::Recommendation),
        url(Service::Notification),
    );
    let mut all = vec![
        "--ingest",
        &ingest,
        "--recommendation",
        &rec,
        "--notification",
        &notif,
    ];
    all.extend_from_slice(args);
    newsroom(&all).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_editor_submits_a_feed_follows_reads_the_feed_and_sends_an_alert_watching_it_finish() {
    const TECH: &str = "medtop:13000000";
    let pipeline = Pipeline::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (phone, received, _sink) = newsroom_cli::sink::serve(listener, false).await;

    let (code, out) = newsroom_at(
        &pipeline,
        &["follow", "--user", "editor-1", "--topic", TECH],
    )
    .await;
    assert_eq!(code, 0, "{out:?}");
    assert_eq!(out[0]["follows"], serde_json::json!([TECH]));
    let url = format!("http://{phone}/alerts");
    let (code, out) = newsroom_at(
        &pipeline,
        &[
            "register-webhook",
            "--user",
            "editor-1",
            "--device",
            "phone-1",
            "--url",
            &url,
        ],
    )
    .await;
    assert_eq!((code, &out[0]["device_id"]), (0, &Value::from("phone-1")));
    pipeline.wait_in_audience(TECH, "editor-1").await;

    // A feed file: one story, and one item without a headline or text, refused by name.
    let rss = std::env::temp_dir().join(format!("newsroom-cli-{}.rss", pipeline.id));
    std::fs::write(
        &rss,
        r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>
<item><guid>chips-1</guid><title>Chip makers race to build AI data centres</title>
<description>Semiconductor firms announced new investments in computing capacity.</description>
<pubDate>Sat, 28 Nov 2026 10:00:00 GMT</pubDate></item>
<item><guid>empty-1</guid></item>
</channel></rss>"#,
    )
    .unwrap();
    let (code, out) = newsroom_at(
        &pipeline,
        &["submit", rss.to_str().unwrap(), "--source", "wire"],
    )
    .await;
    assert_eq!(code, 0, "{out:?}");
    let story = out
        .iter()
        .find(|l| l["outcome"].is_string())
        .unwrap_or_else(|| panic!("a submitted story in {out:?}"));
    assert_eq!(
        (story["version"].as_u64(), story["outcome"].as_str()),
        (Some(1), Some("OUTCOME_ACCEPTED")),
        "{out:?}"
    );
    let story_id = story["story_id"].as_str().unwrap().to_owned();
    let refused = out
        .iter()
        .find(|l| l["error"].is_string())
        .unwrap_or_else(|| panic!("the empty item refused in {out:?}"));
    assert_eq!(refused["guid"], "empty-1", "{refused}");

    // The same feed imported from its URL: the story is a duplicate, nothing new written.
    let served = std::fs::read_to_string(&rss).unwrap();
    let app = axum::Router::new().route(
        "/rss",
        axum::routing::get(move || {
            let body = served.clone();
            async move { ([("content-type", "application/rss+xml")], body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let feed_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (code, out) = newsroom_at(
        &pipeline,
        &[
            "import",
            &format!("http://{feed_addr}/rss"),
            "--source",
            "wire",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out:?}");
    assert!(
        out.iter()
            .any(|l| l["story_id"] == story_id.as_str() && l["outcome"] == "OUTCOME_DUPLICATE"),
        "{out:?}"
    );
    let (code, _) = newsroom_at(&pipeline, &["import", &format!("http://{feed_addr}/gone")]).await;
    assert_eq!(code, 1, "a feed URL answering 404");

    // The story reaches the reader's feed.
    let feed = eventually(Duration::from_secs(30), "the story in the feed", || async {
        let (code, items) = newsroom_at(&pipeline, &["feed", "--user", "editor-1"]).await;
        (code == 0 && items.iter().any(|i| i["story_id"] == story_id.as_str())).then_some(items)
    })
    .await;
    let item = feed
        .iter()
        .find(|i| i["story_id"] == story_id.as_str())
        .unwrap();
    assert!(
        item["reasons"].as_array().is_some_and(|r| !r.is_empty()),
        "{item}"
    );

    // Not urgent, so no alert by itself; the editor sends one and watches it finish.
    assert!(received.all().is_empty());
    pipeline.wait_story_in_notification(&story_id).await;
    let (code, counts) = newsroom_at(
        &pipeline,
        &[
            "send-alert",
            &story_id,
            "--everyone",
            "--watch",
            "--timeout-secs",
            "60",
        ],
    )
    .await;
    assert_eq!(code, 0, "{counts:?}");
    let last = counts.last().expect("the counts");
    assert_eq!(
        (last["targeted"].as_u64(), last["sent"].as_u64()),
        (Some(1), Some(1)),
        "{counts:?}"
    );
    assert!(last["finished_at"].is_string(), "{last}");
    eventually(Duration::from_secs(10), "the phone rang", || async {
        (received.all().len() == 1).then_some(())
    })
    .await;
    // Sent again, it finishes again without a second alert on the phone.
    let (code, counts) = newsroom_at(
        &pipeline,
        &[
            "send-alert",
            &story_id,
            "--everyone",
            "--watch",
            "--timeout-secs",
            "60",
        ],
    )
    .await;
    assert_eq!(code, 0, "{counts:?}");
    assert_eq!(counts.last().unwrap()["sent"].as_u64(), Some(1));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(received.all().len(), 1, "one alert per device, ever");

    // Exit codes a script can act on: no such file 66, a service that is not there 69, an
    // unknown story 1.
    let (code, _) = newsroom_at(&pipeline, &["submit", "/no/such/file.xml"]).await;
    assert_eq!(code, 66);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap();
    let (code, _) = newsroom(&[
        "--recommendation",
        &format!("http://{closed}"),
        "feed",
        "--user",
        "editor-1",
    ])
    .await;
    assert_eq!(code, 69);
    let (code, _) = newsroom_at(&pipeline, &["alert", "no-such-story"]).await;
    assert_eq!(code, 1);
    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_loads_a_reader_with_a_phone_and_the_flash_reaches_it() {
    let pipeline = Pipeline::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (phone, received, _sink) = newsroom_cli::sink::serve(listener, false).await;
    let data = newsroom_e2e::data_dir();
    let webhook = format!("http://{phone}/");
    let (code, out) = newsroom_at(
        &pipeline,
        &[
            "demo",
            "--data",
            data.to_str().unwrap(),
            "--count",
            "10",
            "--user",
            "demo-reader",
            "--webhook",
            &webhook,
        ],
    )
    .await;
    assert_eq!(code, 0, "{out:?}");
    let alert = eventually(
        Duration::from_secs(60),
        "the flash on the demo phone",
        || async { received.all().into_iter().next() },
    )
    .await;
    assert!(
        alert.to_string().contains("outage"),
        "the demo's flash story: {alert}"
    );
    // The BBC stories are still going through enrichment when the flash (submitted last, but
    // alone on its partition) has rung: the reader's feed fills up within seconds.
    let feed = eventually(Duration::from_secs(60), "a full first page", || async {
        let (code, feed) = newsroom_at(
            &pipeline,
            &["feed", "--user", "demo-reader", "--limit", "5"],
        )
        .await;
        (code == 0 && feed.len() == 5).then_some(feed)
    })
    .await;
    assert!(
        feed.iter()
            .all(|i| i["reasons"].as_array().is_some_and(|r| !r.is_empty())),
        "{feed:?}"
    );
    // The seed story is today's news in the demo: it is on the first page, and its story page
    // lists the wire's take on the same event.
    let seed = eventually(
        Duration::from_secs(60),
        "the seed on the first page",
        || async {
            let (_, feed) = newsroom_at(
                &pipeline,
                &["feed", "--user", "demo-reader", "--limit", "5"],
            )
            .await;
            feed.into_iter().find(|i| {
                i["headline"]
                    .as_str()
                    .is_some_and(|h| h.contains("Xi Jinping"))
            })
        },
    )
    .await;
    let seed_id = seed["story_id"].as_str().unwrap().to_owned();
    let related = eventually(
        Duration::from_secs(60),
        "the seed's related story",
        || async {
            let (code, related) = newsroom_at(&pipeline, &["related", &seed_id]).await;
            (code == 0 && !related.is_empty()).then_some(related)
        },
    )
    .await;
    assert!(
        related[0]["headline"]
            .as_str()
            .is_some_and(|h| h.contains("Wuzhen")),
        "{related:?}"
    );
    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_development_token_acts_as_its_reader_and_only_as_them() {
    const TECH: &str = "medtop:13000000";
    let dir = std::env::temp_dir().join(format!("newsroom-cli-dev-auth-{}", std::process::id()));
    let dir = dir.display().to_string();
    // The local stack (loopback, `local` auth mode) trusts the development key.
    let pipeline = Pipeline::start_with(
        &[
            Service::Ingest,
            Service::Recommendation,
            Service::Notification,
        ],
        &[("NEWSROOM_DEV_AUTH_DIR", dir.as_str())],
    )
    .await;
    let token_of = |args: Vec<&'static str>| {
        let dir = dir.clone();
        async move {
            let out = tokio::process::Command::new(newsroom_e2e::binary("newsroom"))
                .env("NEWSROOM_DEV_AUTH_DIR", &dir)
                .args(["--output", "json", "token"])
                .args(args)
                .output()
                .await
                .expect("run newsroom token");
            let v: Option<Value> = serde_json::from_slice(&out.stdout).ok();
            (out.status.code().unwrap_or(-1), v)
        }
    };
    let (code, v) = token_of(vec!["--sub", "alice"]).await;
    assert_eq!(code, 0);
    let alice = v.unwrap()["token"].as_str().unwrap().to_owned();
    // Follow and feed with the token: the reader is the token's, no --user needed.
    let (code, lines) =
        newsroom_at(&pipeline, &["--token", &alice, "follow", "--topic", TECH]).await;
    assert_eq!(code, 0, "{lines:?}");
    assert_eq!(lines[0]["user_id"], "alice");
    let (code, _) = newsroom_at(&pipeline, &["--token", &alice, "feed"]).await;
    assert_eq!(code, 0);
    // Another reader's feed with alice's token: refused (exit 1, PERMISSION_DENIED).
    let (code, _) = newsroom_at(&pipeline, &["--token", &alice, "feed", "--user", "bob"]).await;
    assert_eq!(code, 1);
    // A role that does not exist is a usage error.
    let (code, _) = token_of(vec!["--sub", "x", "--role", "admin"]).await;
    assert_eq!(code, 2);
    pipeline.stop().await;
}
