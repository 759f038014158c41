//! Delivery guarantees against the real broker: poison records go to the dead-letter topic and
//! the consumer carries on; enrichment stopped with SIGTERM mid-stream and restarted loses no
//! story and duplicates none in the feed.

use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

use newsroom_e2e::{Pipeline, Service, data_file, eventually};
use newsroom_platform::kafka::{Producer, dlq_headers, topics};
use newsroom_platform::metrics::{KafkaMetrics, Registry};
use newsroom_platform::redis::redis::AsyncCommands as _;
use newsroom_proto::v1::ingest_service_client::IngestServiceClient;
use newsroom_proto::v1::recommendation_service_client::RecommendationServiceClient;
use newsroom_proto::v1::{GetFeedRequest, GetStoryRequest, Outcome, Story, SubmitStoryRequest};
use tokio::process::{Child, Command};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_record_lands_in_the_dlq_and_the_consumer_carries_on() {
    let pipeline = Pipeline::start_only(&[
        Service::Ingest,
        Service::Enrichment,
        Service::Recommendation,
    ])
    .await;
    let config = pipeline.platform_config(Service::Ingest);
    let producer =
        Producer::new(&config, KafkaMetrics::register(&mut Registry::default())).unwrap();

    // Garbage keyed like the story that follows, so it sits before it in the same partition.
    let story = Story {
        source: "wire".into(),
        guid: "after-poison".into(),
        headline: "Markets steady after central bank decision".into(),
        body_html: "<p>Shares and bonds were little changed.</p>".into(),
        ..Default::default()
    };
    let id = newsroom_ingest::identity::story_id("wire", "after-poison");
    let raw = pipeline.topic(topics::STORIES_RAW);
    let garbage = b"\xff\xfe this is not a protobuf StoryEvent \x00\x01".to_vec();
    producer
        .send(&raw, &id, &garbage)
        .await
        .expect("write garbage");

    let mut ingest = IngestServiceClient::new(pipeline.channel(Service::Ingest).await);
    let answer = ingest
        .submit_story(SubmitStoryRequest {
            story: Some(story),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.story_id, id);

    // The story behind the poison record is enriched and indexed.
    let rec = RecommendationServiceClient::new(pipeline.channel(Service::Recommendation).await);
    eventually(
        Duration::from_secs(30),
        "the story after the poison record",
        || {
            let mut rec = rec.clone();
            let id = id.clone();
            async move {
                rec.get_story(GetStoryRequest { story_id: id })
                    .await
                    .ok()
                    .map(|_| ())
            }
        },
    )
    .await;

    // The poison record is in the DLQ, bytes intact, with the reason and its origin.
    let dlq = pipeline.first_record(topics::STORIES_RAW_DLQ).await;
    assert_eq!(dlq.payload.as_deref(), Some(garbage.as_slice()));
    assert_eq!(dlq.key.as_deref(), Some(id.as_bytes()));
    let header = |name: &str| dlq.header(name);
    assert_eq!(header(dlq_headers::TOPIC), raw);
    assert!(
        header(dlq_headers::ERROR).contains("not a newsroom.v1.StoryEvent"),
        "{}",
        header(dlq_headers::ERROR)
    );
    assert!(header(dlq_headers::OFFSET).parse::<i64>().is_ok());
    pipeline.stop().await;
}

fn spawn_enrichment(pipeline: &Pipeline) -> Child {
    Command::new(newsroom_e2e::binary("newsroom-enrichment"))
        .envs(pipeline.env(Service::Enrichment))
        .env("NEWSROOM_GRPC_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start newsroom-enrichment")
}

async fn sigterm_and_wait(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id().expect("running").to_string();
    let kill = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(kill.success());
    tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("enrichment exits within 20 s of SIGTERM")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrichment_stopped_mid_stream_and_restarted_loses_and_duplicates_nothing() {
    const STORIES: usize = 800;
    let pipeline = Pipeline::start_only(&[Service::Ingest, Service::Recommendation]).await;
    let mut ingest = IngestServiceClient::new(pipeline.channel(Service::Ingest).await);

    // A backlog on stories.raw, every one acknowledged.
    let articles: Vec<SubmitStoryRequest> = data_file("bbc-news.jsonl")
        .lines()
        .take(STORIES)
        .map(|l| {
            let a: newsroom_cli::bbc::BbcArticle = serde_json::from_str(l).unwrap();
            SubmitStoryRequest {
                story: Some(a.to_story()),
                idempotency_key: String::new(),
            }
        })
        .collect();
    let mut answers = ingest
        .submit_stories(tokio_stream::iter(articles))
        .await
        .unwrap()
        .into_inner();
    let mut ids = HashSet::new();
    while let Some(a) = answers.message().await.unwrap() {
        assert_eq!(a.outcome(), Outcome::Accepted);
        ids.insert(a.story_id);
    }
    assert_eq!(ids.len(), STORIES);

    let redis = pipeline.redis().await;
    let latest = redis.key("rec:{rec}:idx:latest");
    let indexed = || {
        let (mut conn, latest) = (redis.conn(), latest.clone());
        async move { conn.zcard::<_, usize>(&latest).await.unwrap() }
    };

    let mut first = spawn_enrichment(&pipeline);
    eventually(
        Duration::from_secs(60),
        "enrichment to get going",
        || async { (indexed().await >= 50).then_some(()) },
    )
    .await;
    let status = sigterm_and_wait(&mut first).await;
    assert!(status.success(), "graceful exit on SIGTERM, got {status}");
    let at_stop = indexed().await;
    eprintln!("stopped with SIGTERM after {at_stop} of {STORIES} stories");
    assert!(at_stop < STORIES, "the stop must come mid-stream");

    let mut second = spawn_enrichment(&pipeline);
    eventually(
        Duration::from_secs(120),
        "every story in the feed store",
        || async { (indexed().await == STORIES).then_some(()) },
    )
    .await;

    // Every acknowledged story is in the feed store, exactly once, at version 1.
    let mut rec = RecommendationServiceClient::new(pipeline.channel(Service::Recommendation).await);
    for id in &ids {
        let story = rec
            .get_story(GetStoryRequest {
                story_id: id.clone(),
            })
            .await
            .unwrap_or_else(|e| panic!("story {id} lost: {e}"))
            .into_inner();
        assert_eq!(story.story.unwrap().version, 1);
    }
    assert_eq!(indexed().await, STORIES);

    // A reader following the five BBC categories pages through a feed without duplicates.
    let reader = "bbc-reader";
    for topic in [
        "medtop:04000000",
        "medtop:01000000",
        "medtop:11000000",
        "medtop:15000000",
        "medtop:13000000",
    ] {
        rec.follow(newsroom_proto::v1::FollowRequest {
            user_id: reader.into(),
            target: Some(newsroom_proto::v1::FollowTarget {
                kind: newsroom_proto::v1::TargetKind::Topic as i32,
                value: topic.into(),
            }),
        })
        .await
        .unwrap();
    }
    let mut seen = HashSet::new();
    let mut cursor = String::new();
    loop {
        let page = rec
            .get_feed(GetFeedRequest {
                user_id: reader.into(),
                limit: 100,
                cursor: cursor.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        for item in page.items {
            let id = item.story.unwrap().id;
            assert!(ids.contains(&id), "unknown story {id}");
            assert!(seen.insert(id.clone()), "story {id} twice in the feed");
        }
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    assert!(seen.len() >= 300, "a full feed, got {}", seen.len());

    assert!(sigterm_and_wait(&mut second).await.success());
    pipeline.stop().await;
}
