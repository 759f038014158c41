//! The trained models and the lexicon, combined: what the `topics` stage runs.
//!
//! When the story carries an embedding (the `embedding` stage ran first) and a
//! [semantic head](super::semantic) is loaded, the head's calibrated probabilities — over the
//! embedding and the lexical model's posterior — replace the lexical model's; without one (no
//! MiniLM model on this replica) the lexical model answers alone, as before.
//!
//! The BBC set that the [model](super::model) is fit on covers five of the 17 top-level topics
//! (economy, arts, politics, sport, science and technology). The other twelve (crime, disaster,
//! education, environment, health, human interest, labour, lifestyle, religion, society,
//! conflict, weather) have no labelled copy here, so the [`lexicon`] covers them.
//!
//! Each topic the model does not know scores its share of the lexicon's points (counting only
//! topics with enough points to matter); let `u` be the sum of those shares. The model's
//! probabilities are scaled by `1 - u⁸` ([`SHRINK_POWER`]). So a few crime or labour words in a
//! political or business story add a second label without unseating the model, while a story
//! mostly about weather is about weather. A story about a hurricane's floods gets weather
//! and disaster from the lexicon while the model's best guess shrinks; a BBC-like business story
//! keeps the model's answer. A semantic head at least `HEAD_LEADS` sure of its best class
//! keeps the top slot whatever the lexicon scores. Topics are returned best first, multi-label (every topic above
//! `min_score`, at most `max_topics`). `fit-topics` reports macro-F1 for the model alone and
//! for this combination.

use newsroom_proto::media_topics;
use newsroom_proto::v1::TopicScore;

use super::lexicon::{self, MAX_TOPICS, MIN_POINTS};
use super::model::TopicModel;
use super::semantic::{self, SemanticHead};

/// How the model's probabilities shrink as the lexicon's other topics take a share `u` of its
/// points: by `1 - u^SHRINK_POWER`. At 2 (before the semantic head) a business story with a
/// few labour or crime words often lost its top topic to them. AG top-1 broad accuracy 0.830
/// at 2, 0.841 at 4, 0.852 at 8; BBC held-out macro-F1 0.966, 0.967, 0.968 (`just eval-topics`,
/// 2026-12-07). A story whose lexicon points all go to other topics (a flood: disaster,
/// weather) still loses the model's answer entirely.
const SHRINK_POWER: i32 = 8;

/// The semantic head's probability at and above which its best class stays first whatever
/// the lexicon's other topics score (they stay as further labels). AG unseen half 0.852 →
/// 0.8753 with it, BBC held out 0.968 → 0.975 (`just eval-topics`, 2026-12-07).
const HEAD_LEADS: f64 = 0.7;

/// The model and the lexicon, combined (see the module docs).
#[derive(Debug, Clone)]
pub struct TopicClassifier {
    model: TopicModel,
    head: Option<SemanticHead>,
    /// Topics returned at most. Default 3.
    pub max_topics: usize,
    /// Lowest score of a topic returned after the first. Default 0.2.
    pub min_score: f64,
}

impl TopicClassifier {
    pub fn new(model: TopicModel) -> Self {
        TopicClassifier {
            model,
            head: None,
            max_topics: MAX_TOPICS,
            min_score: 0.2,
        }
    }

    /// With the semantic head over embeddings (used for stories that carry one).
    pub fn with_head(mut self, head: SemanticHead) -> Self {
        self.head = Some(head);
        self
    }

    /// The lexical model's probabilities, or the semantic head's when there is one and the
    /// story's `embedding` fits it.
    fn probabilities(&self, headline: &str, body_text: &str, embedding: &[f32]) -> Vec<(String, f64)> {
        let lexical = self.model.predict(headline, body_text).scores;
        let Some(head) = self.head.as_ref().filter(|_| !embedding.is_empty()) else {
            return lexical;
        };
        head.predict(&semantic::features(&head.classes, embedding, &lexical))
            .unwrap_or(lexical)
    }

    /// Topics of a story, best first; never empty. `embedding` is the story's (empty when it
    /// has none).
    pub fn classify(&self, headline: &str, body_text: &str, embedding: &[f32]) -> Vec<TopicScore> {
        let prediction = self.probabilities(headline, body_text, embedding);
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
            .iter()
            .map(|(code, p)| (code.as_str(), p * (1.0 - u.powi(SHRINK_POWER))))
            .chain(outside)
            .map(|(code, score)| TopicScore {
                code: code.to_owned(),
                label: media_topics::label(code).unwrap_or_default().to_owned(),
                score,
            })
            .collect();
        scored.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.code.cmp(&b.code)));
        // A confident semantic head keeps the top slot: the lexicon's other topics stay as
        // further labels ("job cuts" in a business story), never in its place.
        if self.head.is_some()
            && !embedding.is_empty()
            && let Some((lead, p)) = prediction
                .iter()
                .max_by(|a, b| a.1.total_cmp(&b.1))
            && *p >= HEAD_LEADS
            && let Some(i) = scored.iter().position(|t| t.code == *lead)
        {
            let t = scored.remove(i);
            scored.insert(0, t);
        }
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
