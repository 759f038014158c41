//! `type = "wasm"` stages, in-process with the real components built from `examples/stages/`
//! (`just stages`: Python with componentize-py, JavaScript with componentize-js, Go through
//! the preview1 stub adapter): the three example stages write their fields; a guest that loops,
//! allocates past its cap, traps or writes a field it did not declare is cut off and handled
//! by its `on_error` while the other stages carry on; a swapped `.wasm` takes effect on reload.
//!
//! The components are read from `target/stages/` (`NEWSROOM_STAGES_DIR` overrides it). A
//! missing one fails the test with the command that builds it: never a skip.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use newsroom_enrichment::metrics::StageMetrics;
use newsroom_enrichment::pipeline::Pipeline;
use newsroom_enrichment::reload::{Reloaded, Reloader};
use newsroom_enrichment::spec::OnError;
use newsroom_enrichment::stage::Mode;
use newsroom_enrichment::stages::BuildContext;
use newsroom_proto::v1::{Enrichment, StageOutcome, Story};

fn stages_dir() -> PathBuf {
    let dir = std::env::var_os("NEWSROOM_STAGES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/stages"));
    for name in [
        "sponsored",
        "reading-level",
        "region",
        "looper",
        "hog",
        "trapper",
        "undeclared",
        "empty",
    ] {
        assert!(
            dir.join(format!("{name}.wasm")).is_file(),
            "{name}.wasm is not in {}: build the stages first with `just stages` \
             (examples/stages/install-tools.sh, then examples/stages/build.sh all)",
            dir.display()
        );
    }
    dir
}

fn pipeline(toml: &str) -> Pipeline {
    let cx = BuildContext {
        base_dir: stages_dir(),
        ..Default::default()
    };
    Pipeline::build(toml, "test", &cx, StageMetrics::default()).expect("the pipeline builds")
}

fn story(headline: &str, body: &str) -> Story {
    Story {
        id: format!("s-{}", headline.len()),
        version: 1,
        source: "wire".into(),
        headline: headline.into(),
        body_html: format!("<p>{body}</p>"),
        language: "en".into(),
        ..Default::default()
    }
}

async fn enrich(p: &Pipeline, s: &Story) -> Enrichment {
    p.enrich(s, Mode::Live, SystemTime::now())
        .await
        .expect("the story is enriched")
}

fn run_of<'a>(e: &'a Enrichment, stage: &str) -> &'a newsroom_proto::v1::StageRun {
    e.stage_runs
        .iter()
        .find(|r| r.name == stage)
        .unwrap_or_else(|| panic!("no run of {stage}: {:?}", e.stage_runs))
}

const COUNTS: &str = "[[stage]]\nname = \"counts\"\ntype = \"counts\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_javascript_and_go_example_stages_write_their_fields() {
    let p = pipeline(
        r#"
[[stage]]
name = "entities"
type = "entities"

[[stage]]
name = "sponsored"
type = "wasm"
timeout_ms = 5000
params = { module = "sponsored.wasm", config = { words = "in association with,advertorial" } }

[[stage]]
name = "reading-level"
type = "wasm"
timeout_ms = 5000
params = { module = "reading-level.wasm" }

[[stage]]
name = "region"
type = "wasm"
timeout_ms = 5000
params = { module = "region.wasm" }
"#,
    );
    let s = story(
        "Paris and Berlin back a new rail link, in association with the operators",
        "Ministers in Paris and Berlin agreed on Tuesday to fund a high-speed rail link. \
         The line will cut the journey to four hours. Work starts next year.",
    );
    let e = enrich(&p, &s).await;
    let a = &e.attributes;
    assert_eq!(
        a.get("sponsored.flag").map(String::as_str),
        Some("true"),
        "{a:?}"
    );
    assert_eq!(
        a.get("sponsored.matched").map(String::as_str),
        Some("in association with"),
        "{a:?}"
    );
    let flesch: f64 = a["reading-level.flesch"].parse().expect("a number");
    assert!((0.0..=100.0).contains(&flesch), "{a:?}");
    assert!(
        ["easy", "standard", "hard"].contains(&a["reading-level.level"].as_str()),
        "{a:?}"
    );
    assert!(a["region.regions"].contains("Europe"), "{a:?}");
    for stage in ["sponsored", "reading-level", "region"] {
        assert_eq!(
            run_of(&e, stage).outcome,
            StageOutcome::Ok as i32,
            "{stage}: {:?}",
            run_of(&e, stage)
        );
    }
    // A plain story is not flagged; the stages answer again on warm instances.
    let plain = story(
        "Council approves the budget",
        "The council approved the budget.",
    );
    let e = enrich(&p, &plain).await;
    assert_eq!(e.attributes["sponsored.flag"], "false");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_guest_is_stopped_at_its_deadline_and_the_others_carry_on() {
    let p = pipeline(&format!(
        "{COUNTS}[[stage]]\nname = \"looper\"\ntype = \"wasm\"\ntimeout_ms = 300\non_error = \"skip\"\nparams = {{ module = \"looper.wasm\" }}\n"
    ));
    for round in 0..2 {
        let started = Instant::now();
        let e = enrich(&p, &story("A story", "Some words in a body.")).await;
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "round {round}: {took:?}");
        let run = run_of(&e, "looper");
        assert_eq!(run.outcome, StageOutcome::Skipped as i32, "{run:?}");
        assert!(e.word_count > 0, "counts ran: {e:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allocating_guest_is_stopped_at_its_memory_cap() {
    let p = pipeline(&format!(
        "{COUNTS}[[stage]]\nname = \"hog\"\ntype = \"wasm\"\ntimeout_ms = 5000\non_error = \"skip\"\nparams = {{ module = \"hog.wasm\", max_memory_mib = 48 }}\n"
    ));
    let e = enrich(&p, &story("A story", "Some words in a body.")).await;
    let run = run_of(&e, "hog");
    assert_eq!(run.outcome, StageOutcome::Skipped as i32, "{run:?}");
    assert!(run.error.contains("memory cap of 48 MiB"), "{run:?}");
    assert!(!e.attributes.contains_key("hog.allocated-mb"), "{e:?}");
    assert!(e.word_count > 0, "counts ran: {e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_guest_is_dead_lettered_or_skipped_per_its_on_error() {
    let stage = |on_error: &str| {
        format!(
            "{COUNTS}[[stage]]\nname = \"trapper\"\ntype = \"wasm\"\ntimeout_ms = 5000\non_error = \"{on_error}\"\nparams = {{ module = \"trapper.wasm\" }}\n"
        )
    };
    let s = story("A story", "Some words in a body.");
    let err = pipeline(&stage("dead-letter"))
        .enrich(&s, Mode::Live, SystemTime::now())
        .await
        .expect_err("a trap with on_error = dead-letter fails the story");
    assert_eq!(err.stage, "trapper");
    assert!(err.to_string().contains("trapped"), "{err}");
    // With `retry`, a trap is not an outage to wait out: the story is dead-lettered too, and
    // the partition behind it moves on.
    let err = pipeline(&stage("retry"))
        .enrich(&s, Mode::Live, SystemTime::now())
        .await
        .expect_err("a trap fails the story");
    assert!(!err.is_outage(OnError::Retry), "{err}");
    let p = pipeline(&stage("skip"));
    for _ in 0..2 {
        let e = enrich(&p, &s).await;
        assert_eq!(run_of(&e, "trapper").outcome, StageOutcome::Skipped as i32);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_writing_a_field_it_did_not_declare_is_cut_off() {
    let p = pipeline(
        "[[stage]]\nname = \"undeclared\"\ntype = \"wasm\"\non_error = \"skip\"\ntimeout_ms = 5000\nparams = { module = \"undeclared.wasm\" }\n",
    );
    let e = enrich(&p, &story("A story", "Some words in a body.")).await;
    let run = run_of(&e, "undeclared");
    assert_eq!(run.outcome, StageOutcome::Skipped as i32, "{run:?}");
    assert!(run.error.contains("does not declare"), "{run:?}");
    assert!(
        e.attributes.keys().all(|k| !k.starts_with("undeclared.")),
        "nothing of its answer is kept: {:?}",
        e.attributes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swapped_module_takes_effect_on_reload_without_a_restart() {
    let src = stages_dir();
    let dir = std::env::temp_dir().join(format!("newsroom-wasm-swap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(src.join("empty.wasm"), dir.join("swap.wasm")).unwrap();
    let toml = dir.join("pipeline.toml");
    std::fs::write(
        &toml,
        "[[stage]]\nname = \"entities\"\ntype = \"entities\"\n[[stage]]\nname = \"swap\"\ntype = \"wasm\"\ntimeout_ms = 5000\nparams = { module = \"swap.wasm\" }\n",
    )
    .unwrap();
    let reloader = Reloader::start(
        Some(toml.clone()),
        BuildContext::default(),
        StageMetrics::default(),
    )
    .expect("the pipeline builds");
    let s = story("Talks in Paris", "Ministers met in Paris on Tuesday.");
    let before = reloader.shared().load_full();
    let e = enrich(&before, &s).await;
    assert!(e.attributes.is_empty(), "{:?}", e.attributes);

    // Same file again: nothing to do. Another component under the same name: a new pipeline.
    assert_eq!(reloader.reload("test").unwrap(), Reloaded::Unchanged);
    std::fs::copy(src.join("region.wasm"), dir.join("swap.wasm")).unwrap();
    assert!(matches!(
        reloader.reload("test").unwrap(),
        Reloaded::Applied(_)
    ));
    let after = reloader.shared().load_full();
    assert_ne!(
        after.id, before.id,
        "the component is part of the pipeline id"
    );
    let e = enrich(&after, &s).await;
    assert!(
        e.attributes["swap.regions"].contains("Europe"),
        "{:?}",
        e.attributes
    );
    assert_eq!(e.pipeline_id, after.id);
    // A story already holding the old pipeline runs whole on it.
    let e = enrich(&before, &s).await;
    assert!(e.attributes.is_empty() && e.pipeline_id == before.id);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_stage_is_compared_and_never_published() {
    let metrics = StageMetrics::default();
    let cx = BuildContext {
        base_dir: stages_dir(),
        ..Default::default()
    };
    let text = r#"
[[stage]]
name = "entities"
type = "entities"

[[stage]]
name = "region"
type = "wasm"
timeout_ms = 5000
params = { module = "region.wasm" }

[[stage]]
name = "region-same"
type = "wasm"
mode = "shadow"
shadows = "region"
timeout_ms = 5000
params = { module = "region.wasm" }

[[stage]]
name = "region-empty"
type = "wasm"
mode = "shadow"
shadows = "region"
timeout_ms = 5000
params = { module = "empty.wasm" }

[[stage]]
name = "region-loop"
type = "wasm"
mode = "shadow"
shadows = "region"
on_error = "dead-letter"
timeout_ms = 200
params = { module = "looper.wasm" }
"#;
    let p = Pipeline::build(text, "test", &cx, metrics.clone()).expect("the pipeline builds");
    let e = enrich(
        &p,
        &story("Talks in Paris", "Ministers met in Paris on Tuesday."),
    )
    .await;
    assert!(
        e.attributes["region.regions"].contains("Europe"),
        "{:?}",
        e.attributes
    );
    assert!(
        e.attributes.keys().all(|k| k.starts_with("region.")),
        "nothing of a shadow is published: {:?}",
        e.attributes
    );
    assert!(
        e.stage_runs.iter().all(|r| !r.name.starts_with("region-")),
        "{:?}",
        e.stage_runs
    );
    // The same component agrees; one that finds nothing differs; one that fails (even with
    // on_error = dead-letter) is counted, and the story goes on.
    assert_eq!(metrics.shadow_counts("region-same"), (1, 0, 0));
    assert_eq!(metrics.shadow_counts("region-empty"), (0, 1, 0));
    assert_eq!(metrics.shadow_counts("region-loop"), (0, 0, 1));
}
