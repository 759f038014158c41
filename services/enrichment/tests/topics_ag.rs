//! Topics that travel: the shipped classifier (semantic head over MiniLM + lexicon, as the
//! `topics` stage runs it) on AG News items the fit never saw — news from other publishers,
//! countries and years than the BBC set. `just eval-topics` scores all 1,900; this scores
//! every fifth (380) so `just test` stays quick, and fails below a floor under the figure
//! measured on them. Needs the model (`just enrichment-model`, which `just test` runs).

use newsroom_enrichment::corpus::ag;
use newsroom_enrichment::stages::embedding::minilm::MiniLm;
use newsroom_enrichment::stages::topics::semantic::{EMBEDDED_HEAD, SemanticHead};
use newsroom_enrichment::stages::topics::{TopicClassifier, TopicModel, model};

#[test]
fn stories_from_other_publishers_get_their_broad_topic() {
    let data = std::env::var("NEWSROOM_DATA").unwrap_or_else(|_| "../../../shared/data".into());
    let path = std::path::Path::new(&data).join("ag-news-sample.csv");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (set NEWSROOM_DATA)", path.display()));
    let items = ag::read(&text).expect("the AG sample");
    let unseen: Vec<&ag::AgItem> = items
        .iter()
        .filter(|a| !ag::fit_half(&a.id))
        .step_by(5)
        .collect();
    let dir = newsroom_enrichment::config::model_dir();
    let minilm = MiniLm::load(&dir, 128)
        .unwrap_or_else(|e| panic!("the model is missing ({e}): run `just enrichment-model`"));
    let lexical = TopicModel::parse(model::EMBEDDED_MODEL).unwrap();
    let served = TopicClassifier::new(lexical.clone())
        .with_head(SemanticHead::parse(EMBEDDED_HEAD).unwrap());
    let before = TopicClassifier::new(lexical);
    let (mut right, mut right_before) = (0, 0);
    for a in &unseen {
        let v = minilm
            .embed(&format!("{}\n{}", a.title, a.description))
            .unwrap();
        right += usize::from(
            ag::broad(&served.classify(&a.title, &a.description, &v)[0].code) == a.class,
        );
        right_before += usize::from(
            ag::broad(&before.classify(&a.title, &a.description, &[])[0].code) == a.class,
        );
    }
    let n = unseen.len() as f64;
    let (accuracy, baseline) = (right as f64 / n, right_before as f64 / n);
    eprintln!(
        "AG unseen ({} items): top-1 broad accuracy {accuracy:.3} with embeddings, {baseline:.3} lexical only",
        unseen.len()
    );
    assert!(unseen.len() >= 350, "{}", unseen.len());
    assert!(
        accuracy >= 0.83,
        "top-1 broad accuracy {accuracy:.3} below the 0.83 floor"
    );
    assert!(
        accuracy > baseline + 0.1,
        "{accuracy:.3} vs lexical {baseline:.3}"
    );
}
