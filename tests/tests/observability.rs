//! What an on-call engineer reads: metrics that move when the system does, against the real
//! broker and Redis. Each test moves a metric and reads it back from `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use newsroom_e2e::{Pipeline, Service, eventually};
use newsroom_platform::kafka::{self, ConsumerSettings, Handler, HandlerError, Producer, Record};
use newsroom_platform::metrics::{self, KafkaMetrics, Registry};
use newsroom_platform::shutdown::Shutdown;
use newsroom_proto::v1::recommendation_service_client::RecommendationServiceClient;
use newsroom_proto::v1::{GetFeedRequest, GetStoryRequest};

/// The value of one sample (`name{labels} value`) in a Prometheus text page, if present.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// A service's `/metrics` page.
async fn scrape(pipeline: &Pipeline, service: Service) -> String {
    let url = format!("http://{}/metrics", pipeline.admin_addr(service));
    reqwest::get(&url)
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics body")
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
    let config = pipeline.platform_config(Service::Enrichment);
    kafka::ensure_topics(&config, &[kafka::topics::STORIES_RAW])
        .await
        .expect("topic");
    let mut registry = Registry::default();
    let kafka_metrics = KafkaMetrics::register(&mut registry);
    let producer = Producer::new(&config, kafka_metrics.clone()).expect("producer");
    let topic = pipeline.topic(kafka::topics::STORIES_RAW);
    // A backlog of ten records on one partition (one key) before the consumer starts.
    let mut partition = None;
    for n in 0..10 {
        let d = producer
            .send(&topic, "one-story", format!("v{n}").as_bytes())
            .await
            .expect("acknowledged");
        partition = Some(d.partition);
    }
    let partition = partition.expect("ten records");

    let mut settings = ConsumerSettings::new(&config, &[kafka::topics::STORIES_RAW]);
    settings.statistics_interval = Duration::from_millis(200);
    let series = format!(
        "newsroom_kafka_consumer_lag{{topic=\"{topic}\",partition=\"{partition}\",group=\"{}\"}}",
        settings.group_id
    );
    let shutdown = Shutdown::new();
    let consumer = tokio::spawn({
        let (config, producer, metrics, shutdown) = (
            config.clone(),
            producer.clone(),
            kafka_metrics.clone(),
            shutdown.clone(),
        );
        async move {
            kafka::run_consumer(
                &config,
                settings,
                Arc::new(Slow),
                producer,
                metrics,
                shutdown,
            )
            .await
        }
    });

    // librdkafka reports lag once the group has committed (every second): the backlog shows,
    // then drains to zero as the slow handler works through it.
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let lag = sample(&metrics::encode(&registry), &series);
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
    assert_eq!(missing.code(), tonic::Code::NotFound);

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
                .exists(redis.key("rec:story:obs-story-1"))
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
