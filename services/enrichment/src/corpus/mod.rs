//! What the service knows about English news copy from the BBC set, shared by several stages.
//!
//! - the labelled BBC set itself ([`read_bbc`], [`Article`]) and its deterministic held-out
//!   split ([`is_held_out`]), which `fit-topics` fits the topic model on and scores it against;
//! - stopwords ([`is_stopword`], `stopwords.txt`): the topic model and keywords skip them, and
//!   entities treat them as common words;
//! - word statistics ([`WordStats`], `models/words.tsv`, written by [`word_statistics`] in the
//!   same fit as the topic model): document frequency for keyword IDF, and how often a word is
//!   written in lower case mid-sentence, which tells entities a name from a common word at the
//!   start of a sentence.
//!
//! Word lists here and in the stages are plain text files, one entry a line, `#` comments
//! ([`list_entries`]), embedded with `include_str!` and parsed once.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::sync::LazyLock;

use crate::hash::fnv1a;
use crate::text;

/// The BBC category → Media Topic code mapping (the data's README).
pub const BBC_TOPICS: &[(&str, &str)] = &[
    ("business", "medtop:04000000"),
    ("entertainment", "medtop:01000000"),
    ("politics", "medtop:11000000"),
    ("sport", "medtop:15000000"),
    ("tech", "medtop:13000000"),
];

/// Corpus word statistics written by `fit-topics` (`just fit-topics` rewrites them).
pub const EMBEDDED_WORDS: &str = include_str!("../../models/words.tsv");

/// The entries of a word-list file: one a line, trimmed; blank lines and `#` comments skipped.
pub fn list_entries(text: &'static str) -> impl Iterator<Item = &'static str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// Function words and reporting verbs that say nothing about a topic (`stopwords.txt`).
static STOPWORDS: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| list_entries(include_str!("stopwords.txt")).collect());

/// Whether a lower-case word is a stopword.
pub fn is_stopword(word: &str) -> bool {
    STOPWORDS.contains(word)
}

/// One labelled article.
#[derive(Debug, Clone)]
pub struct Article {
    pub id: String,
    pub topic: String,
    pub headline: String,
    pub body: String,
}

/// Reads the BBC JSON lines (`id`, `category`, `headline`, `body`).
pub fn read_bbc(jsonl: &str) -> Result<Vec<Article>, String> {
    #[derive(serde::Deserialize)]
    struct Line {
        id: String,
        category: String,
        headline: String,
        body: String,
    }
    jsonl
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            let line: Line = serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1))?;
            let topic = BBC_TOPICS
                .iter()
                .find(|(c, _)| *c == line.category)
                .map(|(_, t)| (*t).to_owned())
                .ok_or_else(|| format!("line {}: unknown category {}", i + 1, line.category))?;
            Ok(Article {
                id: line.id,
                topic,
                headline: line.headline,
                body: line.body,
            })
        })
        .collect()
}

/// Whether an article belongs to the held-out evaluation split (never seen by the fit): the
/// FNV-1a hash of its id is 0 mod 5.
pub fn is_held_out(id: &str) -> bool {
    fnv1a(id.as_bytes()).is_multiple_of(5)
}

/// Per-word corpus statistics for other stages: `word\tdf\tlower\tupper`, where `lower` and
/// `upper` count mid-sentence occurrences written in lower case and capitalised.
pub fn word_statistics(articles: &[Article]) -> String {
    let mut stats: BTreeMap<String, (u32, u32, u32)> = BTreeMap::new();
    for a in articles {
        let mut seen = std::collections::HashSet::new();
        for para in text::html_paragraphs(&a.body) {
            for sentence in text::sentences(&para) {
                for (i, raw) in sentence
                    .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’' || c == '-'))
                    .filter(|w| !w.is_empty())
                    .enumerate()
                {
                    let w = raw.trim_matches(|c| c == '\'' || c == '’' || c == '-');
                    if w.is_empty() || w.chars().any(|c| c.is_ascii_digit()) {
                        continue;
                    }
                    let lower = w.to_lowercase();
                    let e = stats.entry(lower.clone()).or_default();
                    if seen.insert(lower) {
                        e.0 += 1;
                    }
                    if i > 0 {
                        if w.chars().next().is_some_and(char::is_lowercase) {
                            e.1 += 1;
                        } else {
                            e.2 += 1;
                        }
                    }
                }
            }
        }
    }
    let mut out = String::from(
        "# newsroom word statistics (corpus/mod.rs, `just fit-topics`): word, document frequency, mid-sentence lower-case and capitalised occurrences\n",
    );
    let _ = writeln!(out, "documents\t{}", articles.len());
    for (w, (df, lower, upper)) in stats {
        if df >= 2 {
            let _ = writeln!(out, "{w}\t{df}\t{lower}\t{upper}");
        }
    }
    out
}

/// Word statistics loaded for lookups.
#[derive(Debug, Clone, Default)]
pub struct WordStats {
    pub documents: u32,
    words: std::collections::HashMap<String, (u32, u32, u32)>,
}

impl WordStats {
    pub fn parse(text: &str) -> WordStats {
        let mut out = WordStats::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let cols: Vec<&str> = line.split('\t').collect();
            match cols.as_slice() {
                ["documents", n] => out.documents = n.parse().unwrap_or(0),
                [w, df, lower, upper] => {
                    let p = |s: &str| s.parse::<u32>().unwrap_or(0);
                    out.words
                        .insert((*w).to_owned(), (p(df), p(lower), p(upper)));
                }
                _ => {}
            }
        }
        out
    }

    /// The embedded statistics, parsed once.
    pub fn embedded() -> &'static WordStats {
        static STATS: LazyLock<WordStats> = LazyLock::new(|| WordStats::parse(EMBEDDED_WORDS));
        &STATS
    }

    /// Inverse document frequency of a lower-case word (rare and unknown words score high).
    pub fn idf(&self, word: &str) -> f64 {
        let n = f64::from(self.documents.max(1));
        let df = self.words.get(word).map_or(0, |s| s.0);
        ((n + 1.0) / (f64::from(df) + 1.0)).ln() + 1.0
    }

    /// Share of mid-sentence occurrences written in lower case (`None` for unknown words).
    pub fn lower_share(&self, word: &str) -> Option<f64> {
        let (_, lower, upper) = self.words.get(&word.to_lowercase())?;
        let total = lower + upper;
        (total >= 3).then(|| f64::from(*lower) / f64::from(total))
    }
}

/// A file of the shared test data, read whole: from `NEWSROOM_DATA` (what `just test` sets),
/// else `../shared/data` beside the repository, as the e2e tests and benches find it.
#[cfg(test)]
pub(crate) fn test_data(file: &str) -> String {
    let dir = std::env::var("NEWSROOM_DATA").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data").to_owned()
    });
    let path = format!("{dir}/{file}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("test data {path} is missing: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_lists_skip_comments_and_blank_lines() {
        let entries: Vec<&str> = list_entries("# a list\n\none\n  two \n#three\n").collect();
        assert_eq!(entries, ["one", "two"]);
        assert!(is_stopword("the") && is_stopword("didn't") && !is_stopword("storm"));
    }
}

/// The AG News sample (`ag-news-sample.csv`): news from other publishers, what topics are
/// judged on beyond the BBC set.
pub mod ag {
    use crate::hash::fnv1a;

    /// An AG News item: its broad class (1 World, 2 Sports, 3 Business, 4 Sci/Tech).
    pub struct AgItem {
        /// `ag-<row>` (0-based, after the header).
        pub id: String,
        pub class: u8,
        pub title: String,
        pub description: String,
    }

    /// The broad classes' names, by class − 1.
    pub const BROAD: [&str; 4] = ["World", "Sports", "Business", "Sci/Tech"];

    /// Reads the CSV (`class`, `title`, `description`, quoted).
    pub fn read(text: &str) -> Result<Vec<AgItem>, String> {
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let mut items = Vec::new();
        for (i, row) in reader.records().enumerate() {
            let row = row.map_err(|e| format!("row {}: {e}", i + 2))?;
            let class: u8 = row
                .get(0)
                .unwrap_or_default()
                .parse()
                .map_err(|e| format!("row {}: class: {e}", i + 2))?;
            if !(1..=4).contains(&class) {
                return Err(format!("row {}: class {class}, expected 1..4", i + 2));
            }
            items.push(AgItem {
                id: format!("ag-{i}"),
                class,
                title: row.get(1).unwrap_or_default().to_owned(),
                description: row.get(2).unwrap_or_default().to_owned(),
            });
        }
        Ok(items)
    }

    /// Whether a topic fit may see the item; the other half is what it is scored on.
    pub fn fit_half(id: &str) -> bool {
        fnv1a(id.as_bytes()).is_multiple_of(2)
    }

    /// An AG class in IPTC terms (the data README's mapping; World → politics).
    pub fn iptc(class: u8) -> &'static str {
        match class {
            2 => "medtop:15000000",
            3 => "medtop:04000000",
            4 => "medtop:13000000",
            _ => "medtop:11000000",
        }
    }

    /// A Media Topic code's broad AG class: sport, economy, science and technology, or World
    /// for every other top level.
    pub fn broad(code: &str) -> u8 {
        match code {
            "medtop:15000000" => 2,
            "medtop:04000000" => 3,
            "medtop:13000000" => 4,
            _ => 1,
        }
    }
}
