//! The stage model: what a stage is given, what it returns, and how its findings are merged.
//!
//! A [`Stage`] reads the story and what earlier stages found ([`StageInput`]) and returns only
//! what it adds (an [`Enrichment`] patch). The pipeline merges patches in pipeline order
//! ([`merge`]), so stages never share mutable state and stages that do not depend on each other
//! can run concurrently on the same snapshot. Each stage declares the [`Fields`] it reads and
//! writes; the pipeline derives the run order from that (a stage runs after every earlier stage
//! that writes a field it reads or writes).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use newsroom_proto::v1::{Enrichment, Story};

use crate::text::StoryText;

/// Why a stage did not produce its findings.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StageError {
    /// Something the stage depends on failed (Redis, a remote service); trying again may work.
    #[error("{0}")]
    Failed(String),
    /// This story can never be handled by the stage (the remote said INVALID_ARGUMENT, …).
    #[error("invalid story: {0}")]
    Invalid(String),
    /// The stage did not finish within its `timeout_ms`.
    #[error("timed out after {0} ms")]
    Timeout(u64),
    /// The stage's dependency is known to be down (a remote stage's circuit is open).
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// Why the pipeline is running a story: decides whether stateful stages remember it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A story from `stories.raw`: stages record what they must remember (duplicate signatures,
    /// sources per event, embeddings).
    Live,
    /// `EnrichPreview`: look, don't touch. Stateful stages read but write nothing.
    Preview,
    /// The replay command re-running history: like live (it rebuilds lost state).
    Replay,
}

impl Mode {
    /// Whether stages may write their state (Redis).
    pub fn records(self) -> bool {
        !matches!(self, Mode::Preview)
    }
}

/// What a stage sees: the story, its text (computed once per story), what earlier stages found.
pub struct StageInput<'a> {
    pub story: &'a Story,
    pub text: &'a StoryText,
    pub enrichment: &'a Enrichment,
    pub mode: Mode,
    /// When ingest accepted this version (event time; now when unknown). Time windows (velocity,
    /// duplicate detection) use it rather than the wall clock, so a replay sees what live saw.
    pub event_time: SystemTime,
    /// When this attempt's budget (`timeout_ms`) runs out: a remote stage passes what is left
    /// on as its gRPC deadline.
    pub deadline: Instant,
}

/// An enrichment stage. Built from its config variant (see [`crate::stages::StageConfig`]).
#[async_trait::async_trait]
pub trait Stage: Send + Sync {
    /// The fields of [`Enrichment`] this stage reads (findings of earlier stages).
    fn reads(&self) -> Fields {
        Fields::NONE
    }
    /// The fields this stage writes.
    fn writes(&self) -> Fields;
    /// Whether the stage does real work; a disabled stage (no model configured) is recorded as
    /// `STAGE_OUTCOME_DISABLED` and never called.
    fn enabled(&self) -> bool {
        true
    }
    /// What the stage loads besides its params (a `wasm` stage: its component's SHA-256), so
    /// that a change to it makes a new pipeline id and a reload. Default: nothing.
    fn fingerprint(&self) -> Option<String> {
        None
    }
    /// What this stage adds to the story's enrichment.
    async fn run(&self, input: &StageInput<'_>) -> Result<StageOutput, StageError>;
}

/// A stage's findings, and whether it reused an earlier result.
#[derive(Debug, Default)]
pub struct StageOutput {
    pub patch: Enrichment,
    /// The stage reused a remembered result (the embedding of unchanged text).
    pub reused: bool,
}

impl From<Enrichment> for StageOutput {
    fn from(patch: Enrichment) -> Self {
        StageOutput {
            patch,
            reused: false,
        }
    }
}

/// A shared, built stage.
pub type DynStage = Arc<dyn Stage>;

/// A set of [`Enrichment`] fields (a small bit set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fields(u16);

impl Fields {
    pub const NONE: Fields = Fields(0);
    pub const LANGUAGE: Fields = Fields(1);
    pub const ENTITIES: Fields = Fields(1 << 1);
    pub const TOPICS: Fields = Fields(1 << 2);
    pub const KEYWORDS: Fields = Fields(1 << 3);
    pub const SUMMARY: Fields = Fields(1 << 4);
    /// `word_count` and `reading_time_seconds`.
    pub const COUNTS: Fields = Fields(1 << 5);
    pub const BREAKING: Fields = Fields(1 << 6);
    pub const CLUSTER: Fields = Fields(1 << 7);
    pub const EMBEDDING: Fields = Fields(1 << 8);
    pub const ATTRIBUTES: Fields = Fields(1 << 9);
    pub const ALL: Fields = Fields((1 << 10) - 1);

    /// Names as written in a pipeline file (`reads = ["topics"]`).
    pub const NAMES: &'static [(&'static str, Fields)] = &[
        ("language", Fields::LANGUAGE),
        ("entities", Fields::ENTITIES),
        ("topics", Fields::TOPICS),
        ("keywords", Fields::KEYWORDS),
        ("summary", Fields::SUMMARY),
        ("counts", Fields::COUNTS),
        ("breaking_score", Fields::BREAKING),
        ("cluster_id", Fields::CLUSTER),
        ("embedding", Fields::EMBEDDING),
        ("attributes", Fields::ATTRIBUTES),
    ];

    pub const fn union(self, other: Fields) -> Fields {
        Fields(self.0 | other.0)
    }

    pub fn intersects(self, other: Fields) -> bool {
        self.0 & other.0 != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Parses a list of field names.
    pub fn parse(names: &[String]) -> Result<Fields, String> {
        names.iter().try_fold(Fields::NONE, |acc, n| {
            Fields::NAMES
                .iter()
                .find(|(name, _)| name == n)
                .map(|(_, f)| acc.union(*f))
                .ok_or_else(|| {
                    let known: Vec<&str> = Fields::NAMES.iter().map(|(n, _)| *n).collect();
                    format!("unknown field {n:?} (known: {})", known.join(", "))
                })
        })
    }
}

/// Keeps only the fields in `allowed` of a patch (a remote stage writes what it declared).
pub fn restrict(mut patch: Enrichment, allowed: Fields) -> Enrichment {
    let keep = |f: Fields| allowed.intersects(f);
    if !keep(Fields::LANGUAGE) {
        patch.language.clear();
    }
    if !keep(Fields::ENTITIES) {
        patch.entities.clear();
    }
    if !keep(Fields::TOPICS) {
        patch.topics.clear();
    }
    if !keep(Fields::KEYWORDS) {
        patch.keywords.clear();
    }
    if !keep(Fields::SUMMARY) {
        patch.summary.clear();
    }
    if !keep(Fields::COUNTS) {
        patch.word_count = 0;
        patch.reading_time_seconds = 0;
    }
    if !keep(Fields::BREAKING) {
        patch.breaking_score = 0.0;
    }
    if !keep(Fields::CLUSTER) {
        patch.cluster_id.clear();
    }
    if !keep(Fields::EMBEDDING) {
        patch.embedding.clear();
    }
    if !keep(Fields::ATTRIBUTES) {
        patch.attributes.clear();
    }
    patch.stage_runs.clear();
    patch.pipeline_id.clear();
    patch
}

/// Merges a stage's patch into the enrichment so far.
///
/// Scalars are replaced when the patch sets them (a later stage corrects an earlier one);
/// lists are added to: topics by code (the higher score wins), entities by name and kind
/// (mentions added, the higher salience kept), keywords without repeats; attributes by key.
pub fn merge(into: &mut Enrichment, patch: Enrichment) {
    if !patch.language.is_empty() {
        into.language = patch.language;
    }
    if !patch.summary.is_empty() {
        into.summary = patch.summary;
    }
    if patch.word_count != 0 {
        into.word_count = patch.word_count;
        into.reading_time_seconds = patch.reading_time_seconds;
    }
    if patch.breaking_score != 0.0 {
        into.breaking_score = patch.breaking_score;
    }
    if !patch.cluster_id.is_empty() {
        into.cluster_id = patch.cluster_id;
    }
    if !patch.embedding.is_empty() {
        into.embedding = patch.embedding;
    }
    for t in patch.topics {
        match into.topics.iter_mut().find(|x| x.code == t.code) {
            Some(x) => {
                if t.score > x.score {
                    *x = t;
                }
            }
            None => into.topics.push(t),
        }
    }
    into.topics.sort_by(|a, b| b.score.total_cmp(&a.score));
    for e in patch.entities {
        match into
            .entities
            .iter_mut()
            .find(|x| x.name == e.name && x.kind == e.kind)
        {
            Some(x) => {
                x.mentions += e.mentions;
                x.salience = x.salience.max(e.salience);
                for a in e.aliases {
                    if !x.aliases.contains(&a) {
                        x.aliases.push(a);
                    }
                }
            }
            None => into.entities.push(e),
        }
    }
    for k in patch.keywords {
        if !into.keywords.contains(&k) {
            into.keywords.push(k);
        }
    }
    let attributes: HashMap<String, String> = patch.attributes;
    into.attributes.extend(attributes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use newsroom_proto::v1::TopicScore;

    fn topic(code: &str, score: f64) -> TopicScore {
        TopicScore {
            code: code.into(),
            label: String::new(),
            score,
        }
    }

    #[test]
    fn a_later_stage_adds_topics_and_keeps_the_best_score() {
        let mut e = Enrichment {
            topics: vec![topic("medtop:04000000", 0.7)],
            keywords: vec!["bank".into()],
            ..Default::default()
        };
        merge(
            &mut e,
            Enrichment {
                topics: vec![topic("medtop:04000000", 0.9), topic("medtop:09000000", 0.3)],
                keywords: vec!["bank".into(), "strike".into()],
                language: "en".into(),
                ..Default::default()
            },
        );
        assert_eq!(e.topics.len(), 2);
        assert_eq!(e.topics[0].score, 0.9);
        assert_eq!(e.keywords, ["bank", "strike"]);
        assert_eq!(e.language, "en");
    }

    #[test]
    fn a_remote_stage_writes_only_what_it_declared() {
        let patch = Enrichment {
            language: "fr".into(),
            keywords: vec!["x".into()],
            ..Default::default()
        };
        let kept = restrict(patch, Fields::KEYWORDS);
        assert!(kept.language.is_empty());
        assert_eq!(kept.keywords, ["x"]);
    }

    #[test]
    fn field_names_parse_and_unknown_ones_are_named() {
        let f = Fields::parse(&["topics".into(), "keywords".into()]).unwrap();
        assert!(f.intersects(Fields::TOPICS) && f.intersects(Fields::KEYWORDS));
        assert!(!f.intersects(Fields::LANGUAGE));
        let err = Fields::parse(&["colour".into()]).unwrap_err();
        assert!(err.contains("colour"), "{err}");
    }
}
