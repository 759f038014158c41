//! `newsroom canary` against the running pipeline: its probes come back `ok` with a latency,
//! and a canary story reaches no reader — not the phone of a reader who follows its very
//! topics, not their feed — while `GetStory` still serves it.

use std::time::Duration;

use newsroom_e2e::{Pipeline, Service};
use newsroom_proto::v1::recommendation_service_client::RecommendationServiceClient;
use newsroom_proto::v1::{
    FollowRequest, FollowTarget, GetFeedRequest, GetStoryRequest, TargetKind,
};
use serde_json::Value;

/// The 17 top levels of IPTC Media Topics: a reader who follows them all follows whatever
/// topic enrichment gives a story.
const EVERY_TOPIC: [&str; 17] = [
    "medtop:01000000",
    "medtop:02000000",
    "medtop:03000000",
    "medtop:04000000",
    "medtop:05000000",
    "medtop:06000000",
    "medtop:07000000",
    "medtop:08000000",
    "medtop:09000000",
    "medtop:10000000",
    "medtop:11000000",
    "medtop:12000000",
    "medtop:13000000",
    "medtop:14000000",
    "medtop:15000000",
    "medtop:16000000",
    "medtop:17000000",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_probes_alert_the_canary_phone_and_reach_no_reader() {
    let pipeline = Pipeline::start().await;
    // A reader who follows every topic, with a phone.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (phone, reader_phone, _sink) = newsroom_cli::sink::serve(listener, false).await;
    pipeline
        .reader_with_phone(
            "everything-reader",
            "everything-phone",
            EVERY_TOPIC[0],
            &format!("http://{phone}/"),
        )
        .await;
    let mut rec = RecommendationServiceClient::new(pipeline.channel(Service::Recommendation).await);
    for topic in &EVERY_TOPIC[1..] {
        rec.follow(FollowRequest {
            user_id: "everything-reader".into(),
            target: Some(FollowTarget {
                kind: TargetKind::Topic as i32,
                value: (*topic).into(),
            }),
        })
        .await
        .expect("Follow");
    }
    for topic in EVERY_TOPIC {
        pipeline.wait_in_audience(topic, "everything-reader").await;
    }

    let url = |s: Service| format!("http://{}", pipeline.grpc_addr(s));
    let out = tokio::process::Command::new(newsroom_e2e::binary("newsroom"))
        .args(["--output", "json"])
        .args(["--ingest", &url(Service::Ingest)])
        .args(["--notification", &url(Service::Notification)])
        .args(["canary", "--count", "2", "--every-secs", "2"])
        .args(["--deadline-secs", "45", "--phone", "127.0.0.1:0"])
        .args(["--metrics", "127.0.0.1:0"])
        .output()
        .await
        .expect("run newsroom canary");
    let probes: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{probes:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(probes.len(), 2, "{probes:?}");
    let mut canaries = Vec::new();
    for p in &probes {
        assert_eq!(p["outcome"], "ok", "{p}");
        assert!(p["latency_ms"].as_u64().is_some(), "{p}");
        canaries.push(p["story_id"].as_str().expect("story id").to_owned());
    }

    // Enriched and served by GetStory, with topics the reader follows…
    for id in &canaries {
        let story = rec
            .get_story(GetStoryRequest {
                story_id: id.clone(),
            })
            .await
            .expect("GetStory of a canary")
            .into_inner();
        assert!(story.story.is_some_and(|s| s.canary), "a canary story");
        let topics: Vec<_> = story
            .enrichment
            .iter()
            .flat_map(|e| &e.topics)
            .map(|t| t.code.clone())
            .collect();
        assert!(
            topics.iter().any(|t| EVERY_TOPIC.contains(&t.as_str())),
            "the canary has a topic the reader follows: {topics:?}"
        );
    }
    // …yet neither on the reader's phone nor in their feed.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rung: Vec<_> = reader_phone
        .all()
        .into_iter()
        .filter(|a| canaries.iter().any(|c| a["story_id"] == c.as_str()))
        .collect();
    assert!(rung.is_empty(), "a canary rang a reader's phone: {rung:?}");
    let feed = rec
        .get_feed(GetFeedRequest {
            user_id: "everything-reader".into(),
            limit: 50,
            ..Default::default()
        })
        .await
        .expect("GetFeed")
        .into_inner();
    let shown: Vec<_> = feed
        .items
        .iter()
        .filter_map(|i| i.story.as_ref())
        .filter(|s| canaries.contains(&s.id))
        .collect();
    assert!(shown.is_empty(), "a canary in a reader's feed: {shown:?}");
    pipeline.stop().await;
}
