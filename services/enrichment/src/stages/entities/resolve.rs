//! From mentions to entities: cue votes, lists that share a cue, one entity per name and its
//! aliases, the kind with the most evidence, salience.

use std::collections::HashMap;

use newsroom_proto::v1::{Entity, EntityKind};

use super::lexicon::lexicon;

/// Cue weight below which a name's kind is not decided (it stays "other", kept when it recurs).
const MIN_EVIDENCE: f64 = 0.5;

/// Cue weights per kind for one mention.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Votes {
    pub(super) person: f64,
    pub(super) org: f64,
    pub(super) place: f64,
    pub(super) event: f64,
}

impl Votes {
    pub(super) fn add(&mut self, other: Votes) {
        self.person += other.person;
        self.org += other.org;
        self.place += other.place;
        self.event += other.event;
    }
    pub(super) fn best(&self) -> Option<(EntityKind, f64)> {
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
pub(super) struct Mention {
    /// The name as written (possessive stripped).
    pub(super) name: String,
    pub(super) words: usize,
    pub(super) votes: Votes,
    pub(super) weight: f64,
    /// Index of the list this mention belongs to (names joined by commas / "and").
    pub(super) list: Option<usize>,
    /// An acronym in parentheses right after it.
    pub(super) acronym: Option<String>,
    pub(super) order: usize,
}

/// Names in one list share the strongest cue among them, at half weight.
pub(super) fn share_list_cues(mentions: &mut [Mention]) {
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
pub(super) fn resolve(mentions: Vec<Mention>, max: usize) -> Vec<Entity> {
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
                // No cue at all: keep it only when it recurs. A recurring name that is no
                // place of the gazetteer and no part of a person's full name is, in news copy,
                // most often an organisation (a party, a company, a band): "Labour", "Parmalat".
                None if c.mentions >= 2 && c.votes.person == 0.0 => EntityKind::Organisation,
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
