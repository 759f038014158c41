//! `type = "topics"`: IPTC Media Topics, multi-label with scores.
//!
//! - [`model`] — the trained classifier (naive Bayes over TF-IDF, fit on the BBC set by
//!   `fit-topics`; its artefact is `models/topics.tsv`, embedded);
//! - [`lexicon`] — stems per topic (`lexicon.tsv`) for the topics the BBC set lacks;
//! - [`semantic`] — the head over MiniLM embeddings (`models/topics-semantic.tsv`, embedded),
//!   fit by `fit-topics` on the BBC set and half of the AG News sample;
//! - [`classifier`] — all of them combined, as the stage runs them ([`TopicClassifier`]);
//! - this file — the stage: its params and its [`Stage`] impl.

pub mod classifier;
pub mod lexicon;
pub mod model;
pub mod semantic;

use std::sync::{Arc, LazyLock};

use newsroom_proto::v1::Enrichment;
use serde::Deserialize;

use super::{BuildContext, BuildError, StageParams, check_range};
use crate::stage::{DynStage, Fields, Stage, StageError, StageInput, StageOutput};

pub use classifier::TopicClassifier;
pub use model::TopicModel;

/// Params of the `topics` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicsConfig {
    /// Topics returned at most (1..17). Default 3.
    #[serde(default = "default_max_topics")]
    pub max_topics: usize,
    /// Lowest score (0..1) of a topic after the first; the best topic is always returned.
    /// Default 0.2.
    #[serde(default = "default_min_score")]
    pub min_score: f64,
    /// A topic model artefact written by `fit-topics`, relative to the pipeline file. Default:
    /// the model built into the service (`services/enrichment/models/topics.tsv`).
    pub model: Option<String>,
}

fn default_max_topics() -> usize {
    3
}

fn default_min_score() -> f64 {
    0.2
}

impl StageParams for TopicsConfig {
    fn validate(&self) -> Result<(), String> {
        check_range("max_topics", self.max_topics, 1, 17)?;
        check_range("min_score", self.min_score, 0.0, 1.0)
    }

    fn build(&self, _name: &str, cx: &BuildContext) -> Result<DynStage, BuildError> {
        let model = match &self.model {
            None => embedded().clone(),
            Some(p) => {
                let path = cx.path(p);
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| BuildError(format!("model {}: {e}", path.display())))?;
                TopicModel::parse(&text)
                    .map_err(|e| BuildError(format!("model {}: {e}", path.display())))?
            }
        };
        let mut classifier = TopicClassifier::new(model).with_head(embedded_head().clone());
        classifier.max_topics = self.max_topics;
        classifier.min_score = self.min_score;
        Ok(Arc::new(Topics { classifier }))
    }
}

/// The built-in semantic head, parsed once per process.
fn embedded_head() -> &'static semantic::SemanticHead {
    static HEAD: LazyLock<semantic::SemanticHead> = LazyLock::new(|| {
        semantic::SemanticHead::parse(semantic::EMBEDDED_HEAD)
            .expect("the built-in semantic topic head parses")
    });
    &HEAD
}

/// The built-in model, parsed once per process.
fn embedded() -> &'static TopicModel {
    static MODEL: LazyLock<TopicModel> = LazyLock::new(|| {
        TopicModel::parse(model::EMBEDDED_MODEL).expect("the built-in topic model parses")
    });
    &MODEL
}

struct Topics {
    classifier: TopicClassifier,
}

#[async_trait::async_trait]
impl Stage for Topics {
    fn reads(&self) -> Fields {
        Fields::EMBEDDING
    }

    fn writes(&self) -> Fields {
        Fields::TOPICS
    }

    async fn run(&self, input: &StageInput<'_>) -> Result<StageOutput, StageError> {
        let body = input.text.body();
        Ok(Enrichment {
            topics: self.classifier.classify(
                &input.text.headline,
                &body,
                &input.enrichment.embedding,
            ),
            ..Default::default()
        }
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::TopicClassifier;

    fn top(headline: &str, body: &str) -> Vec<String> {
        TopicClassifier::new(super::embedded().clone())
            .classify(headline, body, &[])
            .into_iter()
            .map(|t| t.code)
            .collect()
    }

    #[test]
    fn bbc_like_stories_get_the_models_topic() {
        assert_eq!(
            top(
                "Striker scores twice as United win the cup",
                "The team's coach praised the players after the match at the stadium."
            )[0],
            "medtop:15000000"
        );
        assert_eq!(
            top(
                "Chip makers bet on artificial intelligence",
                "Semiconductor firms and software companies expand data centres, broadband networks and cloud computing."
            )[0],
            "medtop:13000000"
        );
    }

    #[test]
    fn topics_the_bbc_set_lacks_come_from_the_lexicon() {
        let weather = top(
            "Storm brings heavy rain and snow as forecasters warn of blizzard",
            "The Met Office forecast more rain, snow and strong winds; temperatures will drop and the storm will bring drifting snow.",
        );
        assert_eq!(weather[0], "medtop:17000000", "{weather:?}");
        let health = top(
            "Hospital doctors warn of flu outbreak",
            "Patients with the virus filled hospital wards as doctors and nurses urged people to get vaccinated against the disease.",
        );
        assert_eq!(health[0], "medtop:07000000", "{health:?}");
        let quake = top(
            "Earthquake kills dozens as buildings collapse",
            "Rescue teams searched the rubble for survivors after the earthquake; the death toll rose as thousands were evacuated.",
        );
        assert_eq!(quake[0], "medtop:03000000", "{quake:?}");
    }

    #[test]
    fn a_story_can_have_several_topics() {
        let t = top(
            "Government to tax banks to pay for new schools",
            "The finance minister told parliament the budget would raise taxes on bank profits to pay teachers and build schools for pupils.",
        );
        assert!(t.len() >= 2, "{t:?}");
    }
}
