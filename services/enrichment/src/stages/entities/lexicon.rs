//! The words the entity rules know: cue words (`words/*.txt`, one word a line, written by
//! hand) and the gazetteer (`models/places.tsv`, written by `scripts/gazetteer.py`).
//!
//! The lists are data, not code, so that an editor can add a title or an event word without
//! reading Rust; each file's header says what its words do. They are embedded with
//! `include_str!` and parsed into sets once, on first use.

use std::collections::HashSet;
use std::sync::LazyLock;

use crate::corpus::list_entries;

/// The gazetteer the service ships with.
pub const EMBEDDED_PLACES: &str = include_str!("../../../models/places.tsv");

/// The cue words, one set per file of `words/`.
pub(super) struct Lexicon {
    pub(super) titles: HashSet<&'static str>,
    pub(super) org_roles: HashSet<&'static str>,
    pub(super) speech: HashSet<&'static str>,
    pub(super) org_words: HashSet<&'static str>,
    pub(super) legal: HashSet<&'static str>,
    pub(super) org_first: HashSet<&'static str>,
    pub(super) events: HashSet<&'static str>,
    pub(super) not_names: HashSet<&'static str>,
    pub(super) demonyms: HashSet<&'static str>,
    pub(super) place_words: HashSet<&'static str>,
    pub(super) place_prepositions: HashSet<&'static str>,
    pub(super) place_nouns: HashSet<&'static str>,
}

fn set(text: &'static str) -> HashSet<&'static str> {
    list_entries(text).collect()
}

/// The cue words, parsed once.
pub(super) fn lexicon() -> &'static Lexicon {
    static LEXICON: LazyLock<Lexicon> = LazyLock::new(|| Lexicon {
        titles: set(include_str!("words/titles.txt")),
        org_roles: set(include_str!("words/org_roles.txt")),
        speech: set(include_str!("words/speech.txt")),
        org_words: set(include_str!("words/org_words.txt")),
        legal: set(include_str!("words/legal_suffixes.txt")),
        org_first: set(include_str!("words/org_first.txt")),
        events: set(include_str!("words/event_words.txt")),
        not_names: set(include_str!("words/not_names.txt")),
        demonyms: set(include_str!("words/demonyms.txt")),
        place_words: set(include_str!("words/place_words.txt")),
        place_prepositions: set(include_str!("words/place_prepositions.txt")),
        place_nouns: set(include_str!("words/place_nouns.txt")),
    });
    &LEXICON
}

/// Place names (exact spelling) from the gazetteer.
#[derive(Debug, Default)]
pub struct Gazetteer {
    places: HashSet<String>,
}

impl Gazetteer {
    /// The gazetteer's names (first column), plus the short forms of countries it lists by
    /// their full name (`words/place_aliases.txt`: "US", "UK").
    pub fn parse(text: &str) -> Gazetteer {
        let mut places: HashSet<String> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split('\t').next())
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect();
        places.extend(list_entries(include_str!("words/place_aliases.txt")).map(str::to_owned));
        Gazetteer { places }
    }

    /// The embedded gazetteer, parsed once.
    pub fn embedded() -> &'static Gazetteer {
        static GAZETTEER: LazyLock<Gazetteer> =
            LazyLock::new(|| Gazetteer::parse(EMBEDDED_PLACES));
        &GAZETTEER
    }

    pub fn contains(&self, name: &str) -> bool {
        self.places.contains(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_list_loads_and_cue_words_are_lower_case() {
        let lx = lexicon();
        for (name, list) in [
            ("titles", &lx.titles),
            ("org_roles", &lx.org_roles),
            ("speech", &lx.speech),
            ("org_words", &lx.org_words),
            ("legal_suffixes", &lx.legal),
            ("org_first", &lx.org_first),
            ("event_words", &lx.events),
            ("not_names", &lx.not_names),
            ("demonyms", &lx.demonyms),
            ("place_words", &lx.place_words),
            ("place_prepositions", &lx.place_prepositions),
            ("place_nouns", &lx.place_nouns),
        ] {
            assert!(!list.is_empty(), "words/{name}.txt is empty");
            // The rules compare lower-cased words: an upper-case entry would never match.
            for w in list {
                assert_eq!(*w, w.to_lowercase(), "words/{name}.txt: {w:?}");
            }
        }
        assert!(Gazetteer::embedded().contains("Beijing") && Gazetteer::embedded().contains("US"));
    }
}
