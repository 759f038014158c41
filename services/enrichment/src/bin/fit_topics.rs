//! `fit-topics`: fits the IPTC topic model on the BBC set and reports its quality on the
//! held-out split the fit never saw (`just fit-topics`; `--check` only evaluates the shipped
//! artefact).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use newsroom_enrichment::corpus::{self, Article};
use newsroom_enrichment::stages::topics::model::{self, TopicModel};
use newsroom_enrichment::stages::topics::{TopicClassifier, lexicon};

#[derive(Parser)]
#[command(about = "Fit the IPTC topic model on the BBC set and report held-out macro-F1")]
struct Args {
    /// The BBC JSON lines.
    #[arg(long, default_value = "../shared/data/bbc-news.jsonl")]
    data: PathBuf,
    /// Where the artefacts (`topics.tsv`, `words.tsv`) are written.
    #[arg(long, default_value = "services/enrichment/models")]
    out: PathBuf,
    /// Only evaluate the shipped artefact; write nothing.
    #[arg(long)]
    check: bool,
}

#[allow(clippy::print_stdout)] // a command-line tool: its report is its output
fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let data = std::fs::read_to_string(&args.data)
        .with_context(|| format!("test data {} is missing", args.data.display()))?;
    let articles = corpus::read_bbc(&data).map_err(anyhow::Error::msg)?;
    let (held_out, train): (Vec<Article>, Vec<Article>) = articles
        .into_iter()
        .partition(|a| corpus::is_held_out(&a.id));
    println!(
        "BBC set: {} training articles, {} held out (FNV-1a(id) % 5 == 0), never seen by the fit",
        train.len(),
        held_out.len()
    );

    let model = if args.check {
        TopicModel::parse(model::EMBEDDED_MODEL).map_err(anyhow::Error::msg)?
    } else {
        let started = std::time::Instant::now();
        let model = TopicModel::fit(&train);
        std::fs::create_dir_all(&args.out)?;
        std::fs::write(args.out.join("topics.tsv"), model.to_artefact())?;
        std::fs::write(args.out.join("words.tsv"), corpus::word_statistics(&train))?;
        println!(
            "fitted in {:.2} s: {} terms; wrote {}/topics.tsv and words.tsv",
            started.elapsed().as_secs_f64(),
            model.vocabulary(),
            args.out.display()
        );
        model
    };

    let report = |name: &str, e: &model::Evaluation| {
        println!(
            "{name:<48} macro-F1 {:.4}  accuracy {:.4}  ({} articles)",
            e.macro_f1, e.accuracy, e.articles
        );
        for (class, f1) in &e.per_class {
            println!(
                "    {class} {:<40} F1 {f1:.4}",
                newsroom_proto::media_topics::label(class).unwrap_or_default()
            );
        }
    };
    let alone = model::evaluate(&held_out, |a| {
        model.predict(&a.headline, &a.body).best().to_owned()
    });
    report("model alone (held out)", &alone);
    let classifier = TopicClassifier::new(model.clone());
    let combined = model::evaluate(&held_out, |a| {
        classifier
            .classify(&a.headline, &a.body)
            .first()
            .map(|t| t.code.clone())
            .unwrap_or_default()
    });
    report("model + lexicon, as the service runs it", &combined);
    let lexicon = model::evaluate(&held_out, |a| {
        lexicon::classify(&a.headline, &a.body)[0].code.clone()
    });
    report("baseline: the lexicon alone", &lexicon);
    Ok(())
}
