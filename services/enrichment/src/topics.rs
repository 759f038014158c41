//! IPTC Media Topic classification: the trained model where it has data, a lexicon elsewhere.
//!
//! The BBC set that [`crate::topic_model`] is fit on covers five of the 17 top-level topics
//! (economy, arts, politics, sport, science and technology). The other twelve (crime, disaster,
//! education, environment, health, human interest, labour, lifestyle, religion, society,
//! conflict, weather) have no labelled copy here, so a lexicon covers them: each of the 17
//! topics has stems that newsrooms use when writing about it; a story scores one point per stem
//! in its body and three per stem in its headline.
//!
//! [`TopicClassifier`] combines the two. Let `u` be the share of the lexicon's points that went
//! to topics the model does not know (counting only topics with enough points to matter). The
//! model's probabilities are scaled by `1 - u²`, and each such topic scores its share of the
//! points: squared, so that a few crime or labour words in a political story add a second
//! label without unseating the model, while a story mostly about weather is about weather. A story about a hurricane's floods gets weather and disaster from the lexicon while
//! the model's best guess shrinks; a BBC-like business story keeps the model's answer. Topics
//! are returned best first, multi-label (every topic above `min_score`, at most `max_topics`).
//! `fit-topics` reports macro-F1 for the model alone and for this combination.

use std::collections::HashMap;

use newsroom_proto::media_topics;
use newsroom_proto::v1::TopicScore;

use crate::topic_model::TopicModel;

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
        let points = points(headline, body_text);
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

/// Lexicon points per topic (only topics with any).
pub fn points(headline: &str, body_text: &str) -> Vec<(&'static str, f64)> {
    let mut points = vec![0.0f64; TOPICS.len()];
    let index = stem_index();
    for (text, weight) in [(headline, 3.0), (body_text, 1.0)] {
        let words: Vec<String> = crate::text::words(text).collect();
        for i in 0..words.len() {
            let w = words[i].as_str();
            let key4: String = w.chars().take(4).collect();
            let keys: &[&str] = if w.len() <= 3 { &[w] } else { &[key4.as_str()] };
            for key in keys {
                for stem in index.get(*key).into_iter().flatten() {
                    if stem.matches(&words[i..]) {
                        points[stem.topic] += weight;
                    }
                }
            }
        }
    }
    TOPICS
        .iter()
        .zip(points)
        .filter(|(_, p)| *p > 0.0)
        .map(|(t, p)| (t.code, p))
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

/// Stems by the first four characters of their first word (or the whole word when shorter),
/// built once: a story is scanned word by word instead of once per stem.
fn stem_index() -> &'static HashMap<String, Vec<IndexedStem>> {
    static INDEX: std::sync::OnceLock<HashMap<String, Vec<IndexedStem>>> =
        std::sync::OnceLock::new();
    INDEX.get_or_init(|| {
        let mut index: HashMap<String, Vec<IndexedStem>> = HashMap::new();
        for (topic, t) in TOPICS.iter().enumerate() {
            for stem in t.stems {
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
        }
        index
    })
}

/// One top-level IPTC Media Topic and its indicative stems.
struct Topic {
    code: &'static str,
    stems: &'static [&'static str],
}

const TOPICS: &[Topic] = &[
    Topic {
        code: "medtop:01000000",
        stems: &[
            "film",
            "movie",
            "cinema",
            "actor",
            "actress",
            "music",
            "album",
            "singer",
            "band",
            "concert",
            "theatre",
            "theater",
            "festival",
            "museum",
            "artist",
            "novel",
            "book",
            "award",
            "oscar",
            "grammy",
            "television",
            "tv",
            "broadcast",
            "celebrit",
            "star",
            "box office",
            "hollywood",
            "comedy",
            "drama",
            "director",
            "media",
            "newspaper",
        ],
    },
    Topic {
        code: "medtop:02000000",
        stems: &[
            "police",
            "arrest",
            "court",
            "judge",
            "trial",
            "jury",
            "prosecut",
            "lawyer",
            "murder",
            "crime",
            "criminal",
            "convict",
            "sentenc",
            "prison",
            "jail",
            "fraud",
            "robbery",
            "theft",
            "charged",
            "suspect",
            "lawsuit",
            "sued",
            "verdict",
            "guilty",
            "supreme court",
            "investigat",
        ],
    },
    Topic {
        code: "medtop:03000000",
        stems: &[
            "earthquake",
            "quake",
            "tsunami",
            "flood",
            "wildfire",
            "fire",
            "explosion",
            "blast",
            "crash",
            "collision",
            "derail",
            "accident",
            "disaster",
            "rescue",
            "casualt",
            "evacuat",
            "emergency",
            "collapse",
            "volcan",
            "landslide",
            "death toll",
            "injured",
        ],
    },
    Topic {
        code: "medtop:04000000",
        stems: &[
            "econom",
            "market",
            "stock",
            "share",
            "investor",
            "bank",
            "profit",
            "revenue",
            "sales",
            "company",
            "firm",
            "business",
            "trade",
            "tariff",
            "inflation",
            "interest rate",
            "gdp",
            "growth",
            "deal",
            "merger",
            "acquisition",
            "ceo",
            "price",
            "oil",
            "dollar",
            "euro",
            "debt",
            "budget",
            "tax",
            "industry",
            "export",
            "earnings",
        ],
    },
    Topic {
        code: "medtop:05000000",
        stems: &[
            "school",
            "pupil",
            "student",
            "teacher",
            "universit",
            "college",
            "education",
            "exam",
            "curriculum",
            "tuition",
            "classroom",
            "graduate",
            "academ",
        ],
    },
    Topic {
        code: "medtop:06000000",
        stems: &[
            "climate",
            "emission",
            "carbon",
            "pollution",
            "environment",
            "biodiversity",
            "species",
            "wildlife",
            "deforestation",
            "renewable",
            "fossil fuel",
            "recycl",
            "conservation",
            "greenhouse",
            "net zero",
            "ecosystem",
        ],
    },
    Topic {
        code: "medtop:07000000",
        stems: &[
            "health",
            "hospital",
            "doctor",
            "nurse",
            "patient",
            "disease",
            "virus",
            "vaccin",
            "pandemic",
            "epidemic",
            "cancer",
            "medic",
            "drug",
            "treatment",
            "outbreak",
            "infection",
            "nhs",
            "surgery",
            "mental health",
            "covid",
        ],
    },
    Topic {
        code: "medtop:08000000",
        stems: &[
            "birthday",
            "wedding",
            "centenarian",
            "heartwarming",
            "pet",
            "dog",
            "cat",
            "royal baby",
            "anniversary",
            "viral",
            "record-breaking",
            "oldest",
            "quirky",
        ],
    },
    Topic {
        code: "medtop:09000000",
        stems: &[
            "strike",
            "union",
            "worker",
            "employee",
            "unemploy",
            "jobs",
            "wage",
            "salary",
            "pension",
            "layoff",
            "redundanc",
            "labour",
            "labor",
            "workforce",
            "hiring",
        ],
    },
    Topic {
        code: "medtop:10000000",
        stems: &[
            "travel",
            "holiday",
            "vacation",
            "tourism",
            "restaurant",
            "recipe",
            "food",
            "fashion",
            "garden",
            "fitness",
            "hobby",
            "shopping",
            "wine",
            "leisure",
        ],
    },
    Topic {
        code: "medtop:11000000",
        stems: &[
            "government",
            "minister",
            "president",
            "parliament",
            "election",
            "vote",
            "voter",
            "party",
            "policy",
            "senate",
            "congress",
            "lawmaker",
            "mp",
            "mps",
            "politic",
            "campaign",
            "prime minister",
            "cabinet",
            "opposition",
            "democra",
            "republican",
            "labour party",
            "conservative",
            "tory",
            "tories",
            "communist",
            "legislat",
            "referendum",
            "diplomat",
            "summit",
            "sanction",
        ],
    },
    Topic {
        code: "medtop:12000000",
        stems: &[
            "church",
            "pope",
            "vatican",
            "mosque",
            "temple",
            "religio",
            "faith",
            "bishop",
            "priest",
            "imam",
            "rabbi",
            "christian",
            "muslim",
            "islam",
            "jewish",
            "buddhis",
        ],
    },
    Topic {
        code: "medtop:13000000",
        stems: &[
            "technolog",
            "tech",
            "internet",
            "online",
            "digital",
            "software",
            "computer",
            "chip",
            "semiconductor",
            "smartphone",
            "phone",
            "mobile",
            "app",
            "apps",
            "web",
            "cyber",
            "data",
            "artificial intelligence",
            "ai",
            "robot",
            "scien",
            "research",
            "space",
            "nasa",
            "satellite",
            "telecom",
            "broadband",
            "google",
            "microsoft",
            "apple",
            "gadget",
            "games console",
            "video game",
            "network",
            "cloud",
            "5g",
        ],
    },
    Topic {
        code: "medtop:14000000",
        stems: &[
            "immigra",
            "migrant",
            "refugee",
            "poverty",
            "homeless",
            "welfare",
            "charity",
            "discrimination",
            "equality",
            "gender",
            "racism",
            "communit",
            "housing",
            "family",
            "families",
            "protest",
        ],
    },
    Topic {
        code: "medtop:15000000",
        stems: &[
            "football",
            "soccer",
            "cricket",
            "rugby",
            "tennis",
            "golf",
            "olympic",
            "match",
            "league",
            "cup",
            "championship",
            "tournament",
            "coach",
            "striker",
            "goal",
            "player",
            "team",
            "season",
            "world cup",
            "athlet",
            "race",
            "medal",
            "premiership",
            "wimbledon",
            "fifa",
            "uefa",
            "nba",
            "nfl",
            "squad",
            "injury",
            "defeat",
            "win",
        ],
    },
    Topic {
        code: "medtop:16000000",
        stems: &[
            "war",
            "military",
            "troops",
            "soldier",
            "army",
            "missile",
            "airstrike",
            "attack",
            "militant",
            "terror",
            "ceasefire",
            "invasion",
            "rebel",
            "insurgen",
            "bomb",
            "nato",
            "armed forces",
            "peace talks",
            "hostage",
            "shelling",
        ],
    },
    Topic {
        code: "medtop:17000000",
        stems: &[
            "weather",
            "storm",
            "hurricane",
            "typhoon",
            "cyclone",
            "tornado",
            "heatwave",
            "snow",
            "rain",
            "forecast",
            "temperature",
            "drought",
            "blizzard",
            "met office",
        ],
    },
];

/// A topic is kept when its share of the points is at least this fraction of the best one's.
const KEEP_RELATIVE: f64 = 0.5;
/// Fewest points for a topic to count at all (one headline hit, or a few body hits).
const MIN_POINTS: f64 = 2.0;
/// The topic of a story with no indicative word: human interest.
const FALLBACK: &str = "medtop:08000000";
/// Topics returned at most.
const MAX_TOPICS: usize = 3;

/// Classifies a story by the lexicon alone (the baseline). Always returns at least one topic.
pub fn classify(headline: &str, body_text: &str) -> Vec<TopicScore> {
    let points: HashMap<&'static str, f64> = points(headline, body_text).into_iter().collect();
    let total: f64 = points.values().sum();
    let best = points.values().copied().fold(0.0, f64::max);
    let mut scored: Vec<TopicScore> = TOPICS
        .iter()
        .filter_map(|t| {
            let p = *points.get(t.code)?;
            (p >= MIN_POINTS && p >= best * KEEP_RELATIVE).then(|| TopicScore {
                code: t.code.to_owned(),
                label: media_topics::label(t.code).unwrap_or_default().to_owned(),
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
    fn no_signal_still_yields_one_unsure_topic() {
        let t = classify("Lorem ipsum", "dolor sit amet");
        assert_eq!(t.len(), 1);
        assert!(t[0].score < 0.5);
    }

    #[test]
    fn bbc_categories_mostly_match() {
        // A sanity check against real copy: the BBC set's five categories.
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/bbc-news.jsonl"
        );
        let data = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("test data {path} is missing: {e}"));
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
