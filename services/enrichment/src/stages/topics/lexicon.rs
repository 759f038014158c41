//! The topics lexicon: stems per top-level IPTC Media Topic (`lexicon.tsv`), for the topics
//! the BBC set lacks, and the baseline `fit-topics` compares the model against.
//!
//! Each of the 17 topics has stems that newsrooms use when writing about it; a story scores one
//! point per stem in its body and three per stem in its headline ([`points`]). Alone
//! ([`classify`]) the lexicon is the baseline; the service combines it with the trained model
//! ([`super::TopicClassifier`]). The stems are a data file so that a newsroom can tune them
//! without reading Rust; they are parsed once, into an index by the first four characters of
//! their first word, so a story is scanned word by word instead of once per stem.

use std::collections::HashMap;
use std::sync::LazyLock;

use newsroom_proto::media_topics;
use newsroom_proto::v1::TopicScore;

use crate::corpus::list_entries;

/// The lexicon, parsed once.
static LEXICON: LazyLock<Lexicon> = LazyLock::new(|| Lexicon::parse(include_str!("lexicon.tsv")));

/// The topics (codes, in the file's order) and their stems, indexed.
struct Lexicon {
    topics: Vec<&'static str>,
    /// Stems by the first four characters of their first word (or the whole word when shorter).
    index: HashMap<String, Vec<IndexedStem>>,
}

impl Lexicon {
    /// Parses `code<TAB>stem` lines; a line without a tab is a mistake in the shipped file.
    fn parse(text: &'static str) -> Lexicon {
        let mut topics: Vec<&'static str> = Vec::new();
        let mut index: HashMap<String, Vec<IndexedStem>> = HashMap::new();
        for line in list_entries(text) {
            let (code, stem) = line
                .split_once('\t')
                .unwrap_or_else(|| panic!("lexicon.tsv: expected code<TAB>stem, got {line:?}"));
            let topic = match topics.iter().position(|t| *t == code) {
                Some(i) => i,
                None => {
                    topics.push(code);
                    topics.len() - 1
                }
            };
            let parts: Vec<&'static str> = stem.split(' ').collect();
            let first = parts[0];
            let key = if first.len() <= 3 {
                first.to_owned()
            } else {
                first.chars().take(4).collect()
            };
            index.entry(key).or_default().push(IndexedStem {
                topic,
                whole: stem.len() <= 3,
                parts,
            });
        }
        Lexicon { topics, index }
    }
}

/// Lexicon points per topic (only topics with any).
pub fn points(headline: &str, body_text: &str) -> Vec<(&'static str, f64)> {
    let lexicon = &*LEXICON;
    let mut points = vec![0.0f64; lexicon.topics.len()];
    for (text, weight) in [(headline, 3.0), (body_text, 1.0)] {
        let words: Vec<String> = crate::text::words(text).collect();
        for i in 0..words.len() {
            let w = words[i].as_str();
            let key4: String = w.chars().take(4).collect();
            let keys: &[&str] = if w.len() <= 3 { &[w] } else { &[key4.as_str()] };
            for key in keys {
                for stem in lexicon.index.get(*key).into_iter().flatten() {
                    if stem.matches(&words[i..]) {
                        points[stem.topic] += weight;
                    }
                }
            }
        }
    }
    lexicon
        .topics
        .iter()
        .zip(points)
        .filter(|(_, p)| *p > 0.0)
        .map(|(code, p)| (*code, p))
        .collect()
}

/// A stem ready for matching at a word: its words, and whether the last must be whole.
struct IndexedStem {
    topic: usize,
    parts: Vec<&'static str>,
    /// Stems of three letters or fewer match whole words only ("war" is not "warm").
    whole: bool,
}

impl IndexedStem {
    fn matches(&self, words: &[String]) -> bool {
        let last = self.parts.len() - 1;
        self.parts.len() <= words.len()
            && self.parts.iter().enumerate().all(|(j, part)| {
                if j < last || self.whole {
                    words[j] == *part
                } else {
                    words[j].starts_with(part)
                }
            })
    }
}

/// A topic is kept when its share of the points is at least this fraction of the best one's.
const KEEP_RELATIVE: f64 = 0.5;
/// Fewest points for a topic to count at all (one headline hit, or a few body hits).
pub(super) const MIN_POINTS: f64 = 2.0;
/// The topic of a story with no indicative word: human interest.
const FALLBACK: &str = "medtop:08000000";
/// Topics returned at most.
pub(super) const MAX_TOPICS: usize = 3;

/// Classifies a story by the lexicon alone (the baseline). Always returns at least one topic.
pub fn classify(headline: &str, body_text: &str) -> Vec<TopicScore> {
    let points: HashMap<&'static str, f64> = points(headline, body_text).into_iter().collect();
    let total: f64 = points.values().sum();
    let best = points.values().copied().fold(0.0, f64::max);
    let mut scored: Vec<TopicScore> = LEXICON
        .topics
        .iter()
        .filter_map(|code| {
            let p = *points.get(code)?;
            (p >= MIN_POINTS && p >= best * KEEP_RELATIVE).then(|| TopicScore {
                code: (*code).to_owned(),
                label: media_topics::label(code).unwrap_or_default().to_owned(),
                score: p / total,
            })
        })
        .collect();
    scored.sort_by(|a, b| b.score.total_cmp(&a.score));
    scored.truncate(MAX_TOPICS);
    if scored.is_empty() {
        // Nothing indicative: file it under human interest, with a score that says "unsure".
        scored.push(TopicScore {
            code: FALLBACK.to_owned(),
            label: media_topics::label(FALLBACK).unwrap_or_default().to_owned(),
            score: 0.1,
        });
    }
    scored
}

#[cfg(test)]
mod tests {
    use super::*;

    fn top(headline: &str, body: &str) -> String {
        classify(headline, body)[0].code.clone()
    }

    #[test]
    fn clear_stories_get_their_topic() {
        assert_eq!(
            top(
                "Striker scores twice as United win the cup",
                "The team's coach praised the players after the match."
            ),
            "medtop:15000000"
        );
        assert_eq!(
            top(
                "Chip makers bet on artificial intelligence",
                "Semiconductor firms and software companies expand data centres and cloud computing."
            ),
            "medtop:13000000"
        );
        assert_eq!(
            top(
                "Magnitude 7 earthquake strikes",
                "Rescue teams search collapsed buildings; the death toll rises as people evacuate."
            ),
            "medtop:03000000"
        );
    }

    #[test]
    fn the_lexicon_covers_every_top_level_topic_in_code_order() {
        let codes: Vec<&str> = newsroom_proto::media_topics::TOP_LEVEL
            .iter()
            .map(|(code, _)| *code)
            .collect();
        assert_eq!(LEXICON.topics, codes);
    }

    #[test]
    fn no_signal_still_yields_one_unsure_topic() {
        let t = classify("Lorem ipsum", "dolor sit amet");
        assert_eq!(t.len(), 1);
        assert!(t[0].score < 0.5);
    }

    #[test]
    fn bbc_categories_mostly_match() {
        // A sanity check against real copy: the BBC set's five categories.
        let data = crate::corpus::test_data("bbc-news.jsonl");
        let expected = |c: &str| match c {
            "business" => "medtop:04000000",
            "entertainment" => "medtop:01000000",
            "politics" => "medtop:11000000",
            "sport" => "medtop:15000000",
            "tech" => "medtop:13000000",
            other => panic!("unknown category {other}"),
        };
        let (mut right, mut total) = (0, 0);
        for line in data.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let want = expected(v["category"].as_str().unwrap());
            let got = classify(v["headline"].as_str().unwrap(), v["body"].as_str().unwrap());
            total += 1;
            if got[0].code == want {
                right += 1;
            }
        }
        let accuracy = right as f64 / total as f64;
        eprintln!("lexicon top-1 accuracy on the BBC set: {accuracy:.3} ({right}/{total})");
        assert!(accuracy > 0.6, "accuracy {accuracy}");
    }
}
