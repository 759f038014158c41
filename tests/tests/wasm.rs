//! WebAssembly stages in the running enrichment service (components from `just stages` in
//! target/stages/, or `NEWSROOM_STAGES_DIR`): the three example stages in the test stack's
//! pipeline, and a shadow stage never published until `newsroom stage promote` makes it serve.
//!
//! A suite of its own: compiling a component the first time takes both cores for a while (the
//! cache makes it once per content), which must not slow the timing tests of the enrichment
//! suite that would otherwise run beside it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use newsroom_e2e::{Pipeline, Service, eventually};
use newsroom_platform::kafka::{Producer, topics};
use newsroom_platform::metrics::{KafkaMetrics, Registry};
use newsroom_proto::Message as _;
use newsroom_proto::v1::enrichment_service_client::EnrichmentServiceClient;
use newsroom_proto::v1::ingest_service_client::IngestServiceClient;
use newsroom_proto::v1::{
    EnrichedStory, ListStagesRequest, ListStagesResponse, Story, StoryEvent, SubmitStoryRequest,
};

fn stages_dir() -> PathBuf {
    let dir = std::env::var_os("NEWSROOM_STAGES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/stages"));
    for name in ["sponsored", "reading-level", "region", "empty"] {
        assert!(
            dir.join(format!("{name}.wasm")).is_file(),
            "{name}.wasm is not in {}: run `just stages` first",
            dir.display()
        );
    }
    dir.canonicalize().unwrap()
}

/// Writes a pipeline file the way editors do (a new file renamed over the old one).
fn write_pipeline(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn pipeline_file(text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "newsroom-e2e-wasm-{}.toml",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&path, text).unwrap();
    path
}

fn story(id: &str, headline: &str, body: &str) -> Story {
    Story {
        id: id.into(),
        version: 1,
        source: "wire".into(),
        guid: id.into(),
        headline: headline.into(),
        body_html: body.into(),
        urgency: 5,
        ..Default::default()
    }
}

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

/// The latest enriched record of a story, waiting up to 60 s for it.
async fn enriched(pipeline: &Pipeline, id: &str) -> EnrichedStory {
    eventually(
        Duration::from_secs(60),
        &format!("{id} on stories.enriched"),
        || async {
            pipeline
                .records(topics::STORIES_ENRICHED)
                .await
                .into_iter()
                .rev()
                .filter(|(k, _)| k == id)
                .find_map(|(_, v)| EnrichedStory::decode(v?.as_slice()).ok())
        },
    )
    .await
}

async fn reloaded(
    api: &EnrichmentServiceClient<tonic::transport::Channel>,
    what: &str,
    applied: impl Fn(&ListStagesResponse) -> bool,
) -> ListStagesResponse {
    let applied = &applied;
    eventually(Duration::from_secs(60), what, || {
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

/// The default pipeline plus the three example WebAssembly stages (Python, JavaScript, Go, built
/// by `just stages` into target/stages/): their findings reach `stories.enriched` and the story
/// readers get from the feed service, with the default stages' as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_wasm_stages_in_three_languages_reach_stories_enriched_and_the_feed() {
    use newsroom_proto::v1::GetStoryRequest;
    use newsroom_proto::v1::recommendation_service_client::RecommendationServiceClient;

    let stages = stages_dir();
    let text = format!(
        "{}\n[[stage]]\nname = \"sponsored\"\ntype = \"wasm\"\ntimeout_ms = 5000\nparams = {{ module = \"{dir}/sponsored.wasm\" }}\n\n\
         [[stage]]\nname = \"reading-level\"\ntype = \"wasm\"\ntimeout_ms = 5000\nparams = {{ module = \"{dir}/reading-level.wasm\" }}\n\n\
         [[stage]]\nname = \"region\"\ntype = \"wasm\"\ntimeout_ms = 5000\nparams = {{ module = \"{dir}/region.wasm\" }}\n",
        include_str!("../../services/enrichment/pipeline.default.toml"),
        dir = stages.display()
    );
    let path = pipeline_file(&text);
    let pipeline = Pipeline::start_with(
        &[
            Service::Ingest,
            Service::Enrichment,
            Service::Recommendation,
        ],
        &[("NEWSROOM_PIPELINE_FILE", path.to_str().unwrap())],
    )
    .await;
    let id = IngestServiceClient::new(pipeline.channel(Service::Ingest).await)
        .submit_story(SubmitStoryRequest {
            story: Some(Story {
                source: "wire".into(),
                guid: "wasm-e2e-1".into(),
                headline: "Sponsored: a weekend in Paris and Berlin by train".into(),
                body_html: "<p>This advertorial is a paid partnership with the rail operator. \
                    Trains leave Paris every morning and reach Berlin by the evening.</p>"
                    .into(),
                urgency: 5,
                ..Default::default()
            }),
            idempotency_key: String::new(),
        })
        .await
        .expect("SubmitStory")
        .into_inner()
        .story_id;
    let e = enriched(&pipeline, &id).await;
    let en = e.enrichment.as_ref().unwrap();
    let a = &en.attributes;
    assert_eq!(
        a.get("sponsored.flag").map(String::as_str),
        Some("true"),
        "{a:?}"
    );
    assert!(a.contains_key("reading-level.flesch"), "{a:?}");
    assert!(a["region.regions"].contains("Europe"), "{a:?}");
    assert!(
        !en.topics.is_empty() && !en.entities.is_empty(),
        "the default stages ran too"
    );
    // What readers are served: recommendation's copy of the story carries the same findings.
    let rec = RecommendationServiceClient::new(pipeline.channel(Service::Recommendation).await);
    let served = eventually(
        Duration::from_secs(30),
        "the story in recommendation",
        || {
            let (mut rec, id) = (rec.clone(), id.clone());
            async move {
                rec.get_story(GetStoryRequest { story_id: id })
                    .await
                    .ok()
                    .map(|r| r.into_inner())
            }
        },
    )
    .await;
    assert_eq!(
        served
            .enrichment
            .unwrap()
            .attributes
            .get("sponsored.flag")
            .map(String::as_str),
        Some("true")
    );
    pipeline.stop().await;
    let _ = std::fs::remove_file(&path);
}

/// A shadow stage in the running service: its findings never reach `stories.enriched`; `newsroom
/// stage promote` rewrites the pipeline file so it serves under the serving stage's name, the
/// service reloads it, and the next story carries its findings and the new pipeline id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_wasm_stage_is_never_published_until_promoted() {
    let stages = stages_dir();
    let dir = stages.display();
    let text = format!(
        "# serving: a region tagger that finds nothing; shadow: the real one\n\
         [[stage]]\nname = \"entities\"\ntype = \"entities\"\n\n\
         [[stage]]\nname = \"region\"\ntype = \"wasm\"\ntimeout_ms = 5000\nparams = {{ module = \"{dir}/empty.wasm\" }}\n\n\
         [[stage]]\nname = \"region-next\"\ntype = \"wasm\"\nmode = \"shadow\"\nshadows = \"region\"\ntimeout_ms = 5000\nparams = {{ module = \"{dir}/region.wasm\" }}\n"
    );
    let path = pipeline_file(&text);
    let pipeline = Pipeline::start_with(
        &[Service::Enrichment],
        &[("NEWSROOM_PIPELINE_FILE", path.to_str().unwrap())],
    )
    .await;
    let api = EnrichmentServiceClient::new(pipeline.channel(Service::Enrichment).await);
    let body = "<p>Ministers met in Paris and Berlin on Tuesday.</p>";
    publish(&pipeline, story("shadow-1", "Talks in Paris", body)).await;
    let before = enriched(&pipeline, "shadow-1").await.enrichment.unwrap();
    assert!(
        before.attributes.keys().all(|k| !k.starts_with("region")),
        "neither the empty serving stage nor the shadow published anything: {:?}",
        before.attributes
    );
    let metrics = pipeline.scrape(Service::Enrichment).await;
    assert!(
        metrics.contains(
            r#"newsroom_enrichment_shadow_comparisons_total{stage="region-next",result="differ"} 1"#
        ),
        "{metrics}"
    );

    let promoted = newsroom_cli::commands::stage::promote(
        &std::fs::read_to_string(&path).unwrap(),
        "region-next",
    )
    .expect("promote");
    write_pipeline(&path, &promoted);
    let now = reloaded(&api, "the promoted pipeline", |s| {
        s.pipeline_id != before.pipeline_id
    })
    .await;
    assert_eq!(
        now.stages.len(),
        2,
        "the shadow took the serving stage's place"
    );
    publish(&pipeline, story("shadow-2", "Talks in Paris", body)).await;
    let after = enriched(&pipeline, "shadow-2").await.enrichment.unwrap();
    assert_eq!(after.pipeline_id, now.pipeline_id);
    assert!(
        after.attributes["region.regions"].contains("Europe"),
        "{:?}",
        after.attributes
    );
    pipeline.stop().await;
    let _ = std::fs::remove_file(&path);
}
