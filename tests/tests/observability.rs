//! What an on-call engineer reads: metrics that move when the system does, against the real
//! broker and Redis. Each test moves a metric and reads it back from `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use newsroom_e2e::{Pipeline, RawTopic, Service, eventually};
use newsroom_platform::kafka::{self, Handler, HandlerError, Producer, Record};
use newsroom_platform::metrics::{self, KafkaMetrics, Registry};
use newsroom_platform::shutdown::Shutdown;
use newsroom_proto::v1::ingest_service_client::IngestServiceClient;
use newsroom_proto::v1::recommendation_service_client::RecommendationServiceClient;
use newsroom_proto::v1::{GetFeedRequest, GetStoryRequest, SubmitStoryRequest};

fn sample(page: &str, series: &str) -> Option<f64> {
    newsroom_e2e::metric_sample(page, series)
}

async fn scrape(pipeline: &Pipeline, service: Service) -> String {
    pipeline.scrape(service).await
}

/// Takes its time over each record, as a slow enrichment stage would.
struct Slow;

impl Handler for Slow {
    async fn handle(&self, _record: &Record) -> Result<(), HandlerError> {
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_lag_per_partition_follows_what_the_group_has_not_committed() {
    let pipeline = Pipeline::start_only(&[]).await;
    let raw = RawTopic::of(&pipeline).await;
    let (producer, topic, registry) = (&raw.producer, &raw.topic, &raw.registry);
    // A backlog of ten records on one partition (one key) before the consumer starts.
    let mut partition = None;
    for n in 0..10 {
        let d = producer
            .send(topic, "one-story", format!("v{n}").as_bytes())
            .await
            .expect("acknowledged");
        partition = Some(d.partition);
    }
    let partition = partition.expect("ten records");

    let mut settings = raw.settings();
    settings.statistics_interval = Duration::from_millis(200);
    let series = format!(
        "newsroom_kafka_consumer_lag{{topic=\"{topic}\",partition=\"{partition}\",group=\"{}\"}}",
        settings.group_id
    );
    let shutdown = Shutdown::new();
    let consumer = raw.consume(settings, Arc::new(Slow), &shutdown);

    // librdkafka reports lag once the group has committed (every second): the backlog shows,
    // then drains to zero as the slow handler works through it.
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let lag = sample(&metrics::encode(registry), &series);
        if let Some(lag) = lag
            && seen.last() != Some(&lag)
        {
            seen.push(lag);
        }
        if lag == Some(0.0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "lag never drained to 0 within 30 s; seen {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        seen.iter().any(|&l| l > 0.0 && l < 10.0),
        "the backlog never showed as lag: {seen:?}"
    );
    assert!(
        seen.windows(2).all(|w| w[1] < w[0]),
        "lag only falls while the backlog drains: {seen:?}"
    );

    shutdown.trigger();
    consumer
        .await
        .expect("consumer task")
        .expect("consumer ran");
    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recommendation_times_the_feed_and_counts_story_cache_hits_and_misses() {
    let pipeline = Pipeline::start_only(&[Service::Recommendation]).await;
    let mut rec = RecommendationServiceClient::new(pipeline.channel(Service::Recommendation).await);
    let feeds = "newsroom_recommendation_feed_duration_seconds_count";
    let hits = "newsroom_recommendation_story_cache_lookups_total{result=\"hit\"}";
    let misses = "newsroom_recommendation_story_cache_lookups_total{result=\"miss\"}";

    let before = scrape(&pipeline, Service::Recommendation).await;
    assert_eq!(sample(&before, feeds), Some(0.0), "{before}");
    for _ in 0..3 {
        rec.get_feed(GetFeedRequest {
            user_id: "reader-1".into(),
            limit: 5,
            cursor: String::new(),
        })
        .await
        .expect("GetFeed");
    }
    let missing = rec
        .get_story(GetStoryRequest {
            story_id: "no-such-story".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound, "{missing:?}");

    // A story in the cache: write it the way enrichment does, wait until it is indexed.
    let config = pipeline.platform_config(Service::Enrichment);
    let producer =
        Producer::new(&config, KafkaMetrics::register(&mut Registry::default())).expect("producer");
    let story = newsroom_proto::v1::EnrichedStory {
        story: Some(newsroom_proto::v1::Story {
            id: "obs-story-1".into(),
            version: 1,
            source: "wire".into(),
            guid: "obs-1".into(),
            headline: "Storm brings floods to the coast".into(),
            urgency: 5,
            ..Default::default()
        }),
        enrichment: Some(Default::default()),
        ..Default::default()
    };
    use newsroom_proto::Message as _;
    producer
        .send(
            &pipeline.topic(kafka::topics::STORIES_ENRICHED),
            "obs-story-1",
            &story.encode_to_vec(),
        )
        .await
        .expect("acknowledged");
    let redis = pipeline.redis().await;
    eventually(Duration::from_secs(30), "story indexed", || {
        let redis = redis.clone();
        async move {
            use newsroom_platform::redis::redis::AsyncCommands as _;
            let exists: bool = redis
                .conn()
                .exists(redis.key("rec:{rec}:story:obs-story-1"))
                .await
                .ok()?;
            exists.then_some(())
        }
    })
    .await;
    rec.get_story(GetStoryRequest {
        story_id: "obs-story-1".into(),
    })
    .await
    .expect("GetStory from the cache");

    let after = scrape(&pipeline, Service::Recommendation).await;
    assert_eq!(sample(&after, feeds), Some(3.0), "{after}");
    assert_eq!(sample(&after, misses), Some(1.0), "{after}");
    assert_eq!(sample(&after, hits), Some(1.0), "{after}");
    pipeline.stop().await;
}

/// Every `newsroom_…` name in a text.
fn metric_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("newsroom_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// The sample names a `/metrics` page can carry: each family by its `# TYPE` line, with the
/// suffixes its type adds.
fn exposed(page: &str, into: &mut std::collections::BTreeSet<String>) {
    for line in page.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let (Some(name), Some(kind)) = (words.next(), words.next()) else {
            continue;
        };
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            _ => &[""],
        };
        into.insert(name.to_owned());
        for s in suffixes {
            into.insert(format!("{name}{s}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grafana_dashboard_uses_only_metrics_the_services_expose() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/grafana/newsroom.json"
    );
    let text = std::fs::read_to_string(path).expect("deploy/grafana/newsroom.json");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("dashboard is JSON");
    let exprs: Vec<&str> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .filter_map(|p| p["targets"].as_array())
        .flatten()
        .filter_map(|t| t["expr"].as_str())
        .collect();
    assert!(exprs.len() >= 10, "the dashboard graphs little: {exprs:?}");

    // Used names, anywhere in the file (expressions, variables, descriptions).
    let used: std::collections::BTreeSet<String> = metric_names(&text).into_iter().collect();

    // A family shows on /metrics once it has a series, so move them the way production does:
    // a story through the pipeline, a poison record, a feed and a story read; the failure
    // series are declared at 0 for what is configured (stages, channels, feed sources,
    // topics written), so the one polled feed here answers nothing.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let feeds = std::env::temp_dir().join(format!("feeds-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(
        &feeds,
        format!("[[feed]]\nsource = \"gone\"\nurl = \"http://{closed}/rss\"\ninterval_secs = 60\n"),
    )
    .unwrap();
    let pipeline = Pipeline::start_with(
        &Service::ALL,
        &[
            ("NEWSROOM_FEEDS_FILE", feeds.to_str().unwrap()),
            ("NEWSROOM_FEEDS_ALLOW_PRIVATE", "true"),
        ],
    )
    .await;
    let mut ingest = IngestServiceClient::new(pipeline.channel(Service::Ingest).await);
    let story_id = ingest
        .submit_story(SubmitStoryRequest {
            story: Some(newsroom_proto::v1::Story {
                source: "wire".into(),
                guid: "dashboard-1".into(),
                headline: "Chip makers race to build AI data centres".into(),
                body_html: "<p>Semiconductor firms announced new investments.</p>".into(),
                urgency: 5,
                ..Default::default()
            }),
            idempotency_key: String::new(),
        })
        .await
        .expect("SubmitStory")
        .into_inner()
        .story_id;
    let config = pipeline.platform_config(Service::Ingest);
    let producer =
        Producer::new(&config, KafkaMetrics::register(&mut Registry::default())).expect("producer");
    producer
        .send(
            &pipeline.topic(kafka::topics::STORIES_RAW),
            "poison",
            b"\xff\xfe not a StoryEvent",
        )
        .await
        .expect("acknowledged");
    let mut rec = RecommendationServiceClient::new(pipeline.channel(Service::Recommendation).await);
    rec.get_feed(GetFeedRequest {
        user_id: "reader-1".into(),
        limit: 5,
        cursor: String::new(),
    })
    .await
    .expect("GetFeed");
    eventually(Duration::from_secs(60), "the story readable", || {
        let (mut rec, story_id) = (rec.clone(), story_id.clone());
        async move { rec.get_story(GetStoryRequest { story_id }).await.ok() }
    })
    .await;

    // The canary, probing this pipeline every second, serves the canary panels' metrics.
    let canary_metrics = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let url = |s: Service| format!("http://{}", pipeline.grpc_addr(s));
    let mut canary = tokio::process::Command::new(newsroom_e2e::binary("newsroom"))
        .args(["--ingest", &url(Service::Ingest)])
        .args(["--notification", &url(Service::Notification)])
        .args(["canary", "--every-secs", "1", "--phone", "127.0.0.1:0"])
        .args(["--metrics", &canary_metrics.to_string()])
        .kill_on_drop(true)
        .spawn()
        .expect("run newsroom canary");

    // Consumer lag appears with the first statistics after a commit (5 s).
    let mut names = std::collections::BTreeSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        names.clear();
        for service in Service::ALL {
            exposed(&scrape(&pipeline, service).await, &mut names);
        }
        if let Ok(page) = reqwest::get(format!("http://{canary_metrics}/metrics")).await
            && let Ok(page) = page.text().await
        {
            exposed(&page, &mut names);
        }
        if used.is_subset(&names) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = canary.kill().await;
    pipeline.stop().await;

    let missing: Vec<&String> = used.difference(&names).collect();
    assert!(
        missing.is_empty(),
        "deploy/grafana/newsroom.json uses metrics no service exposes: {missing:?}\nexposed: {names:?}"
    );
    // The metrics an on-call engineer needs are on it (ARCHITECTURE.md).
    for needed in [
        "newsroom_ingest_stories_total",
        "newsroom_kafka_consumer_lag",
        "newsroom_enrichment_stage_duration_seconds_bucket",
        "newsroom_dlq_records_total",
        "newsroom_recommendation_story_cache_lookups_total",
        "newsroom_recommendation_feed_duration_seconds_bucket",
        "newsroom_notification_fanout_devices_total",
        "newsroom_canary_alert_latency_seconds_bucket",
        "newsroom_notification_delivery_latency_seconds_bucket",
        // Which channel, which stage: what fails.
        "newsroom_notification_sends_total",
        "newsroom_notification_send_duration_seconds_bucket",
        "newsroom_notification_suppressed_total",
        "newsroom_enrichment_stage_failures_total",
        "newsroom_kafka_produce_errors_total",
    ] {
        assert!(
            used.contains(needed),
            "the dashboard does not show {needed}"
        );
    }
}

#[test]
fn the_dashboard_check_catches_an_unknown_metric() {
    let mut names = std::collections::BTreeSet::new();
    exposed(
        "# TYPE newsroom_a counter\n# TYPE newsroom_b histogram\n",
        &mut names,
    );
    let used = metric_names(r#"rate(newsroom_a_total[5m]) / newsroom_b_count + newsroom_c"#);
    let missing: Vec<_> = used.iter().filter(|n| !names.contains(*n)).collect();
    assert_eq!(missing, ["newsroom_c"]);
}

/// The sum of every sample of a family's series (`name{…} value` or `name value`).
fn total(page: &str, name: &str) -> f64 {
    page.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flash_story_moves_ingest_rate_stage_latency_alert_fan_out_and_accepted_to_alert_latency()
{
    const TECH: &str = "medtop:13000000";

    let pipeline = Pipeline::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (phone, received, _sink) = newsroom_cli::sink::serve(listener, false).await;
    pipeline
        .reader_with_phone(
            "reader-1",
            "phone-1",
            TECH,
            &format!("http://{phone}/alerts"),
        )
        .await;

    let before = [
        scrape(&pipeline, Service::Ingest).await,
        scrape(&pipeline, Service::Enrichment).await,
        scrape(&pipeline, Service::Notification).await,
    ];
    let mut ingest = IngestServiceClient::new(pipeline.channel(Service::Ingest).await);
    ingest
        .submit_story(SubmitStoryRequest {
            story: Some(newsroom_proto::v1::Story {
                source: "wire".into(),
                guid: "obs-flash-1".into(),
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
        .expect("SubmitStory");
    eventually(Duration::from_secs(30), "the alert on the phone", || {
        let n = received.all().len();
        async move { (n > 0).then_some(()) }
    })
    .await;
    let after = [
        scrape(&pipeline, Service::Ingest).await,
        scrape(&pipeline, Service::Enrichment).await,
        scrape(&pipeline, Service::Notification).await,
    ];
    pipeline.stop().await;

    let moved = |i: usize, name: &str| total(&after[i], name) - total(&before[i], name);
    // Ingest rate per source: one accepted story from "wire".
    assert_eq!(
        sample(
            &after[0],
            "newsroom_ingest_stories_total{source=\"wire\",outcome=\"accepted\"}"
        ),
        Some(1.0),
        "{}",
        after[0]
    );
    // Stage latency: every stage of the pipeline timed the story.
    assert!(
        moved(1, "newsroom_enrichment_stage_duration_seconds_count") >= 1.0,
        "{}",
        after[1]
    );
    // Alert fan-out rate and story accepted → alert sent.
    assert_eq!(
        moved(2, "newsroom_notification_fanout_devices_total"),
        1.0,
        "{}",
        after[2]
    );
    assert_eq!(
        moved(2, "newsroom_notification_delivery_latency_seconds_count"),
        1.0,
        "{}",
        after[2]
    );
    assert!(
        moved(2, "newsroom_notification_delivery_latency_seconds_sum") > 0.0,
        "{}",
        after[2]
    );
}
