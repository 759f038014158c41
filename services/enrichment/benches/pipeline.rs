//! `just bench-enrichment`: stories per second per core of the default pipeline over the BBC
//! corpus, with and without the embedding stage, p50/p99 per stage, the embedding stage's
//! achieved GFLOP/s, and the WebAssembly stages: an empty component stage's overhead per story
//! and each example stage's stories/s/core.
//!
//! One story at a time on a single-threaded runtime (and `RAYON_NUM_THREADS=1` for candle, set
//! by the recipe), so the figures are per core. Stateful stages (dedup, velocity, the embedding
//! cache) run without Redis here: their Redis round trips are I/O, measured by the service's
//! `newsroom_enrichment_stage_duration_seconds`, not CPU. Targets from issue 4 are printed as
//! the baseline: ≥ 1,000 stories/s/core without embeddings, ≥ 10 stories/s/core for the
//! embedding stage at 128 tokens. Nothing here fails on a number.
//!
//! `BENCH_STORIES` (default: the whole corpus, 2,225) and `BENCH_EMBED_STORIES` (default 100)
//! bound the runs; `NEWSROOM_EMBEDDING_MODEL_DIR` (default `~/.cache/newsroom/all-MiniLM-L6-v2`)
//! is the model.

#![allow(clippy::print_stdout)] // a benchmark prints its figures

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime};

use newsroom_enrichment::Pipeline;
use newsroom_enrichment::corpus;
use newsroom_enrichment::stage::Mode;
use newsroom_enrichment::stages::BuildContext;
use newsroom_proto::v1::Story;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn stories() -> Vec<Story> {
    let path = std::env::var("NEWSROOM_DATA")
        .map(|d| format!("{d}/bbc-news.jsonl"))
        .unwrap_or_else(|_| {
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/data/bbc-news.jsonl"
            )
            .to_owned()
        });
    let data = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("test data {path} is missing: {e}"));
    corpus::read_bbc(&data)
        .expect("BBC lines")
        .into_iter()
        .map(|a| Story {
            id: a.id.clone(),
            version: 1,
            source: "bbc".into(),
            guid: a.id,
            headline: a.headline,
            body_html: a
                .body
                .split("\n\n")
                .map(|p| format!("<p>{p}</p>"))
                .collect(),
            urgency: 5,
            ..Default::default()
        })
        .collect()
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[i])
}

/// Runs `stories` through `pipeline` one at a time; returns stories/s and per-stage durations.
fn run(
    rt: &tokio::runtime::Runtime,
    pipeline: &Pipeline,
    stories: &[Story],
) -> (f64, BTreeMap<String, Vec<u32>>) {
    let mut per_stage: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let started = Instant::now();
    rt.block_on(async {
        for s in stories {
            let e = pipeline
                .enrich(s, Mode::Preview, SystemTime::now())
                .await
                .expect("the default pipeline enriches every BBC story");
            for r in e.stage_runs {
                per_stage.entry(r.name).or_default().push(r.duration_us);
            }
        }
    });
    let rate = stories.len() as f64 / started.elapsed().as_secs_f64();
    (rate, per_stage)
}

fn print_stages(per_stage: &BTreeMap<String, Vec<u32>>) {
    println!("    {:<12} {:>10} {:>10}", "stage", "p50 µs", "p99 µs");
    for (name, d) in per_stage {
        let mut d = d.clone();
        d.sort_unstable();
        println!(
            "    {name:<12} {:>10.1} {:>10.1}",
            percentile(&d, 0.5),
            percentile(&d, 0.99)
        );
    }
}

fn main() {
    newsroom_platform::refuse_debug_build("bench-enrichment");
    let all = stories();
    let n = env_usize("BENCH_STORIES", all.len()).min(all.len());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cx = BuildContext {
        words_per_minute: 230,
        ..Default::default()
    };
    let pipeline = Pipeline::default_pipeline(&cx);
    // Warm-up: the embedded model, word statistics and gazetteer are parsed on first use.
    run(&rt, &pipeline, &all[..20.min(n)]);
    let (rate, per_stage) = run(&rt, &pipeline, &all[..n]);
    println!("enrichment benchmark: {n} BBC stories, one at a time, one core");
    println!("default pipeline without embeddings: {rate:.0} stories/s/core   (target ≥ 1,000)");
    print_stages(&per_stage);
    wasm(&rt, &all[..n.min(env_usize("BENCH_WASM_STORIES", 500))]);
    embedding(&rt, &all, rate);
}

/// The `wasm` stages (components from `just stages` in target/stages/, or
/// `NEWSROOM_STAGES_DIR`): the per-story overhead of an empty component stage over the
/// built-in `counts` stage alone, and each example stage's stories/s/core (its own p50 time).
fn wasm(rt: &tokio::runtime::Runtime, stories: &[Story]) {
    let dir = std::env::var_os("NEWSROOM_STAGES_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/stages")
        });
    if !dir.join("empty.wasm").is_file() {
        println!("wasm stages: not built (run `just stages`)");
        return;
    }
    let cx = BuildContext {
        base_dir: dir,
        ..Default::default()
    };
    let build = |extra: &str| {
        let text = format!("[[stage]]\nname = \"counts\"\ntype = \"counts\"\n{extra}");
        Pipeline::build(&text, "bench", &cx, Default::default()).expect("the bench pipeline builds")
    };
    let wasm_stage = |name: &str| {
        format!(
            "[[stage]]\nname = \"{name}\"\ntype = \"wasm\"\ntimeout_ms = 5000\nparams = {{ module = \"{name}.wasm\" }}\n"
        )
    };
    let base = build("");
    let empty = build(&wasm_stage("empty"));
    // Warm both, then time the same stories through each.
    run(rt, &base, &stories[..10.min(stories.len())]);
    run(rt, &empty, &stories[..10.min(stories.len())]);
    let (rate_base, _) = run(rt, &base, stories);
    let (rate_empty, per_stage) = run(rt, &empty, stories);
    let overhead_us = (1.0 / rate_empty - 1.0 / rate_base) * 1e6;
    let mut d = per_stage.get("empty").cloned().unwrap_or_default();
    d.sort_unstable();
    println!(
        "wasm: empty component stage {:.1} µs p50 inside the pipeline; per story {overhead_us:.1} µs over the built-in `counts` alone ({rate_base:.0} → {rate_empty:.0} stories/s/core)   (target ≤ 50 µs)",
        percentile(&d, 0.5)
    );
    for name in ["sponsored", "reading-level", "region"] {
        let p = build(&wasm_stage(name));
        run(rt, &p, &stories[..10.min(stories.len())]);
        let (_, per_stage) = run(rt, &p, stories);
        let mut d = per_stage.get(name).cloned().unwrap_or_default();
        d.sort_unstable();
        let p50 = percentile(&d, 0.5);
        println!(
            "wasm: {name:<14} p50 {p50:>8.1} µs  p99 {:>8.1} µs  → {:.0} stories/s/core",
            percentile(&d, 0.99),
            1e6 / p50.max(1.0)
        );
    }
}

#[cfg(not(feature = "embedding"))]
fn embedding(_rt: &tokio::runtime::Runtime, _all: &[Story], _rate: f64) {
    println!("embedding stage: not built (run with --features embedding: `just bench-enrichment`)");
}

#[cfg(feature = "embedding")]
fn embedding(rt: &tokio::runtime::Runtime, all: &[Story], rate_without: f64) {
    use newsroom_enrichment::stages::embedding::minilm::MiniLm;
    use newsroom_enrichment::text::StoryText;

    let dir = newsroom_enrichment::config::model_dir();
    let model = match MiniLm::load(&dir, 128) {
        Ok(m) => m,
        Err(e) => {
            println!(
                "embedding stage: no model at {} ({e}); fetch it with `just enrichment-model`",
                dir.display()
            );
            return;
        }
    };
    let n = env_usize("BENCH_EMBED_STORIES", 100).min(all.len());
    let texts: Vec<String> = all[..n]
        .iter()
        .map(|s| {
            let t = StoryText::new(s);
            format!("{}\n{}", t.headline, t.lead)
        })
        .collect();
    let _ = model.embed(&texts[0]);
    let measure = |texts: &[String]| {
        let mut flops = 0.0;
        let mut tokens = 0usize;
        let started = Instant::now();
        for t in texts {
            let k = model.tokens(t).expect("tokens").len();
            tokens += k;
            flops += model.flops(k);
            model.embed(t).expect("embedding");
        }
        let took = started.elapsed().as_secs_f64();
        (
            texts.len() as f64 / took,
            tokens as f64 / texts.len() as f64,
            flops / took / 1e9,
        )
    };
    let (rate, mean, gflops) = measure(&texts);
    println!(
        "embedding stage alone (headline + lead): {rate:.1} stories/s/core over {n} stories, mean {mean:.0} tokens, {gflops:.2} GFLOP/s achieved"
    );
    // The yardstick: a full 128 tokens per story (headline and body, truncated).
    let full: Vec<String> = all[..n]
        .iter()
        .map(|s| {
            let t = StoryText::new(s);
            format!("{}\n{}", t.headline, t.body())
        })
        .collect();
    let (rate128, mean128, gflops128) = measure(&full);
    println!(
        "embedding at 128 tokens: {rate128:.1} stories/s/core (mean {mean128:.0} tokens), {gflops128:.2} GFLOP/s achieved   (target ≥ 10/s; {:.2} GFLOP per 128-token story)",
        model.flops(128) / 1e9
    );

    let cx = BuildContext {
        words_per_minute: 230,
        embedding_model_dir: Some(dir),
        ..Default::default()
    };
    let with = Pipeline::default_pipeline(&cx);
    let (rate_with, per_stage) = run(rt, &with, &all[..n]);
    println!(
        "default pipeline with embeddings: {rate_with:.1} stories/s/core over {n} stories (CPU-additive estimate {:.1})",
        1.0 / (1.0 / rate_without + 1.0 / rate)
    );
    print_stages(&per_stage);
}
