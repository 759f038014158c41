//! `type = "keywords"`: the words and two-word phrases that say what a story is about.
//!
//! TF-IDF: a term's count in the story (headline words count three times) times its inverse
//! document frequency in the BBC corpus (`models/words.tsv`), so "semiconductor" beats "said".
//! Two-word phrases ("data centres", "interest rates") count when they recur or sit in the
//! headline, and a word already inside a chosen phrase is not repeated on its own.

use std::collections::HashMap;
use std::sync::Arc;

use newsroom_proto::v1::Enrichment;
use serde::Deserialize;

use super::{BuildContext, BuildError, StageParams, check_range};
use crate::corpus::{self, WordStats};
use crate::stage::{DynStage, Fields, Stage, StageError, StageInput, StageOutput};
use crate::text::{self, StoryText};

/// Params of the `keywords` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeywordsConfig {
    /// Keywords returned at most (1..50). Default 10.
    #[serde(default = "default_max")]
    pub max_keywords: usize,
}

fn default_max() -> usize {
    10
}

impl StageParams for KeywordsConfig {
    fn validate(&self) -> Result<(), String> {
        check_range("max_keywords", self.max_keywords, 1, 50)
    }

    fn build(&self, _name: &str, _cx: &BuildContext) -> Result<DynStage, BuildError> {
        Ok(Arc::new(Keywords {
            max: self.max_keywords,
        }))
    }
}

struct Keywords {
    max: usize,
}

#[async_trait::async_trait]
impl Stage for Keywords {
    fn writes(&self) -> Fields {
        Fields::KEYWORDS
    }

    async fn run(&self, input: &StageInput<'_>) -> Result<StageOutput, StageError> {
        Ok(Enrichment {
            keywords: keywords(input.text, WordStats::embedded(), self.max),
            ..Default::default()
        }
        .into())
    }
}

fn usable(w: &str) -> bool {
    w.chars().count() >= 3 && !corpus::is_stopword(w) && !w.chars().any(|c| c.is_ascii_digit())
}

/// Term weights of a text: TF-IDF over words and recurring two-word phrases.
pub fn term_weights(text: &StoryText, stats: &WordStats) -> Vec<(String, f64)> {
    let mut tf: HashMap<String, f64> = HashMap::new();
    let mut phrases: HashMap<String, (f64, bool)> = HashMap::new();
    let mut add = |sentence: &str, weight: f64, headline: bool| {
        // Phrases never cross punctuation: split the sentence at it first.
        for chunk in sentence.split([',', ';', ':', '(', ')', '"', '“', '”', '–', '—']) {
            let words: Vec<String> = text::words(chunk).collect();
            for (i, w) in words.iter().enumerate() {
                if !usable(w) {
                    continue;
                }
                *tf.entry(w.clone()).or_insert(0.0) += weight;
                if let Some(next) = words.get(i + 1)
                    && usable(next)
                {
                    let e = phrases.entry(format!("{w} {next}")).or_insert((0.0, false));
                    e.0 += weight;
                    e.1 |= headline;
                }
            }
        }
    };
    add(&text.headline, 3.0, true);
    for p in &text.paragraphs {
        add(p, 1.0, false);
    }
    let mut scored: Vec<(String, f64)> = tf
        .iter()
        .map(|(w, &n)| (w.clone(), (1.0 + n.ln()) * stats.idf(w)))
        .collect();
    for (p, (n, in_headline)) in phrases {
        if n >= 2.0 || in_headline {
            let idf: f64 = p.split(' ').map(|w| stats.idf(w)).sum::<f64>() * 0.6;
            scored.push((p, (1.0 + n.ln()) * idf));
        }
    }
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored
}

/// The story's keywords, best first.
pub fn keywords(text: &StoryText, stats: &WordStats, max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (term, _) in term_weights(text, stats) {
        if out.len() >= max {
            break;
        }
        let covered = out.iter().any(|k| {
            k.split(' ').any(|w| w == term) || term.split(' ').all(|w| out.iter().any(|o| o == w))
        });
        if !covered {
            out.push(term);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use newsroom_proto::v1::Story;

    #[test]
    fn keywords_are_what_the_story_is_about() {
        let story = Story {
            headline: "Chip makers race to build data centres".into(),
            body_html: "<p>Semiconductor makers said on Monday they would build data centres for artificial intelligence. \
                        The data centres will use new chips.</p><p>Analysts said the semiconductor boom would last.</p>"
                .into(),
            ..Default::default()
        };
        let k = keywords(&StoryText::new(&story), WordStats::embedded(), 5);
        assert!(k.contains(&"data centres".to_owned()), "{k:?}");
        assert!(k.iter().any(|w| w.starts_with("semiconductor")), "{k:?}");
        assert!(
            !k.contains(&"said".to_owned()) && !k.contains(&"monday".to_owned()),
            "{k:?}"
        );
        assert!(
            !k.contains(&"data".to_owned()),
            "a word inside a phrase is not repeated: {k:?}"
        );
    }
}
