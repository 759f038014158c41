//! Candidate mentions out of a story's sentences: capitalised runs, split at titles, with the
//! cues of their own words and of the words around them (steps 1–3 of the [module
//! docs](super)).

use newsroom_proto::v1::Entity;

use super::lexicon::{Gazetteer, lexicon};
use super::resolve::{Mention, Votes, resolve, share_list_cues};
use super::tokens::{Token, tokens};
use crate::corpus::{self, WordStats};
use crate::text::{self, StoryText};

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
                        || lx.org_words.contains(toks[end + 1].lower().as_str()))
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
                // "UK-based", "IDN-disabled": an adjective made of a name, not a name.
                || w.rsplit_once('-').is_some_and(|(_, tail)| {
                    tail.chars().next().is_some_and(char::is_lowercase)
                })
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
                lx.events.contains(t.lower().as_str()) || lx.org_words.contains(t.lower().as_str())
            })
        {
            return Vec::new();
        }
        let mut m = self.mention(part, weight);
        if let Some(p) = prev_word.as_deref() {
            if lx.titles.contains(p) {
                m.votes.person += 3.0;
            }
            if lx.place_prepositions.contains(p) {
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
        if part.len() > 1 && lx.org_words.contains(last.as_str()) {
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
            votes.org += 0.6;
        }
        if part.len() == 1 && is_camel_case(part[0].word) {
            // TimeWarner, PlayStation, YouTube: brands and companies.
            votes.org += 1.0;
        }
        if part.len() > 1 && lx.place_words.contains(last.as_str()) {
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
            || corpus::is_stopword(&lower)
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

#[cfg(test)]
mod tests {
    use super::*;
    use newsroom_proto::v1::{EntityKind, Story};

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
        let doc: serde_json::Value =
            serde_json::from_str(&crate::corpus::test_data("seed-story.ninjs.json")).unwrap();
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
