//! The trained model and the lexicon, combined: what the `topics` stage runs.
//!
//! The BBC set that the [model](super::model) is fit on covers five of the 17 top-level topics
//! (economy, arts, politics, sport, science and technology). The other twelve (crime, disaster,
//! education, environment, health, human interest, labour, lifestyle, religion, society,
//! conflict, weather) have no labelled copy here, so the [`lexicon`] covers them.
//!
//! Let `u` be the share of the lexicon's points that went to topics the model does not know
//! (counting only topics with enough points to matter). The model's probabilities are scaled by
//! `1 - u²`, and each such topic scores its share of the points: squared, so that a few crime or
//! labour words in a political story add a second label without unseating the model, while a
//! story mostly about weather is about weather. A story about a hurricane's floods gets weather
//! and disaster from the lexicon while the model's best guess shrinks; a BBC-like business story
//! keeps the model's answer. Topics are returned best first, multi-label (every topic above
//! `min_score`, at most `max_topics`). `fit-topics` reports macro-F1 for the model alone and
//! for this combination.

use newsroom_proto::media_topics;
use newsroom_proto::v1::TopicScore;

use super::lexicon::{self, MAX_TOPICS, MIN_POINTS};
use super::model::TopicModel;

/// The model and the lexicon, combined (see the module docs).
#[derive(Debug, Clone)]
pub struct TopicClassifier {
    model: TopicModel,
    /// Topics returned at most. Default 3.
    pub max_topics: usize,
    /// Lowest score of a topic returned after the first. Default 0.2.
    pub min_score: f64,
}

impl TopicClassifier {
    pub fn new(model: TopicModel) -> Self {
        TopicClassifier {
            model,
            max_topics: MAX_TOPICS,
            min_score: 0.2,
        }
    }

    /// Topics of a story, best first; never empty.
    pub fn classify(&self, headline: &str, body_text: &str) -> Vec<TopicScore> {
        let prediction = self.model.predict(headline, body_text);
        let points = lexicon::points(headline, body_text);
        let total: f64 = points.iter().map(|(_, p)| p).sum();
        let known = |code: &str| self.model.classes.iter().any(|c| c == code);
        let outside: Vec<(&str, f64)> = points
            .iter()
            .filter(|(code, p)| !known(code) && *p >= MIN_POINTS)
            .map(|(code, p)| (*code, p / total))
            .collect();
        let u: f64 = outside.iter().map(|(_, s)| s).sum();
        let mut scored: Vec<TopicScore> = prediction
            .scores
            .iter()
            .map(|(code, p)| (code.as_str(), p * (1.0 - u * u)))
            .chain(outside)
            .map(|(code, score)| TopicScore {
                code: code.to_owned(),
                label: media_topics::label(code).unwrap_or_default().to_owned(),
                score,
            })
            .collect();
        scored.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.code.cmp(&b.code)));
        let keep = scored
            .iter()
            .skip(1)
            .take(self.max_topics.saturating_sub(1))
            .take_while(|t| t.score >= self.min_score)
            .count();
        scored.truncate(1 + keep);
        scored
    }
}
