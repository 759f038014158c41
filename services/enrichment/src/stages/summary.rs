//! `type = "summary"`: an extractive summary — the story's most representative sentences.
//!
//! Each sentence scores the TF-IDF weight of its words (the story's own term weights, see
//! [`super::keywords::term_weights`]) divided by the square root of its length, plus a bonus
//! for the lead, where news copy puts what matters. The best sentences are returned in story
//! order, within `max_chars`.

use std::collections::HashMap;
use std::sync::Arc;

use newsroom_proto::v1::Enrichment;
use serde::Deserialize;

use super::{BuildContext, BuildError, StageParams, check_range};
use crate::corpus::WordStats;
use crate::stage::{DynStage, Fields, Stage, StageError, StageInput, StageOutput};
use crate::text::{self, StoryText};

/// Params of the `summary` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummaryConfig {
    /// Sentences in the summary at most (1..10). Default 2.
    #[serde(default = "default_sentences")]
    pub max_sentences: usize,
    /// Characters at most (80..5000); a longer first sentence is cut at a word. Default 400.
    #[serde(default = "default_chars")]
    pub max_chars: usize,
}

fn default_sentences() -> usize {
    2
}

fn default_chars() -> usize {
    400
}

impl StageParams for SummaryConfig {
    fn validate(&self) -> Result<(), String> {
        check_range("max_sentences", self.max_sentences, 1, 10)?;
        check_range("max_chars", self.max_chars, 80, 5000)
    }

    fn build(&self, _name: &str, _cx: &BuildContext) -> Result<DynStage, BuildError> {
        Ok(Arc::new(Summary {
            max_sentences: self.max_sentences,
            max_chars: self.max_chars,
        }))
    }
}

struct Summary {
    max_sentences: usize,
    max_chars: usize,
}

#[async_trait::async_trait]
impl Stage for Summary {
    fn writes(&self) -> Fields {
        Fields::SUMMARY
    }

    async fn run(&self, input: &StageInput<'_>) -> Result<StageOutput, StageError> {
        Ok(Enrichment {
            summary: summarise(input.text, self.max_sentences, self.max_chars),
            ..Default::default()
        }
        .into())
    }
}

/// The summary of a story ("" for a story without body).
pub fn summarise(text: &StoryText, max_sentences: usize, max_chars: usize) -> String {
    let weights: HashMap<String, f64> = super::keywords::term_weights(text, WordStats::embedded())
        .into_iter()
        .filter(|(t, _)| !t.contains(' '))
        .collect();
    let mut candidates: Vec<(usize, &str, f64)> = Vec::new();
    for (p, para) in text.paragraphs.iter().enumerate() {
        for (s, sentence) in text::sentences(para).into_iter().enumerate() {
            let words: Vec<String> = text::words(sentence).collect();
            if words.len() < 4 {
                continue;
            }
            let sum: f64 = words.iter().filter_map(|w| weights.get(w)).sum();
            let mut score = sum / (words.len() as f64).sqrt();
            if p == 0 && s == 0 {
                score *= 1.6;
            } else if p == 0 {
                score *= 1.2;
            }
            candidates.push((candidates.len(), sentence, score));
        }
    }
    let mut best = candidates.clone();
    best.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
    let mut chosen: Vec<(usize, &str)> = Vec::new();
    let mut chars = 0;
    for (i, s, _) in best {
        if chosen.len() >= max_sentences {
            break;
        }
        let len = s.chars().count() + 1;
        if chars + len > max_chars && !chosen.is_empty() {
            continue;
        }
        chars += len;
        chosen.push((i, s));
    }
    chosen.sort_by_key(|(i, _)| *i);
    let mut out = chosen
        .into_iter()
        .map(|(_, s)| s)
        .collect::<Vec<_>>()
        .join(" ");
    if out.chars().count() > max_chars {
        let cut: String = out.chars().take(max_chars.saturating_sub(1)).collect();
        out = match cut.rfind(' ') {
            Some(i) => format!("{}…", &cut[..i]),
            None => format!("{cut}…"),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use newsroom_proto::v1::Story;

    #[test]
    fn the_summary_is_made_of_the_storys_central_sentences_in_order() {
        let story = Story {
            headline: "Central bank raises interest rates to fight inflation".into(),
            body_html: "<p>The central bank raised interest rates by half a point on Thursday to fight inflation.</p>\
                        <p>It was sunny in the capital.</p>\
                        <p>Inflation has risen for six months, and the bank said interest rates may rise again.</p>"
                .into(),
            ..Default::default()
        };
        let s = summarise(&StoryText::new(&story), 2, 400);
        assert!(
            s.starts_with("The central bank raised interest rates"),
            "{s}"
        );
        assert!(s.contains("may rise again"), "{s}");
        assert!(!s.contains("sunny"), "{s}");
        let short = summarise(&StoryText::new(&story), 2, 80);
        assert!(short.chars().count() <= 80, "{short}");
        assert!(summarise(&StoryText::default(), 2, 400).is_empty());
    }
}
