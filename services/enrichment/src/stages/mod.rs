//! The stages a pipeline file can name: one file per stage, one variant of [`StageConfig`] each.
//!
//! Adding a built-in stage: write `stages/<name>.rs` with a config struct (every field with a
//! `///` doc giving its default, `#[serde(deny_unknown_fields)]`), a `build` that returns the
//! [`Stage`](crate::stage::Stage), and tests; add one variant below and one arm in
//! [`StageConfig::build`] / [`StageConfig::validate`]. Nothing else changes: the pipeline file
//! names it by `type`, ListStages lists it, reload picks it up.
//!
//! | `type` | writes | notes |
//! |---|---|---|
//! | `language` | language | the source's tag, else whatlang |
//! | `counts` | word_count, reading_time_seconds | |
//! | `topics` | topics | trained model + lexicon (IPTC Media Topics) |
//! | `entities` | entities | people, organisations, places, events |
//! | `keywords` | keywords | TF-IDF over words and two-word phrases |
//! | `summary` | summary | extractive |
//! | `dedup` | cluster_id | MinHash + LSH in Redis across sources |
//! | `urgency` | breaking_score | source urgency, wording, velocity (Redis) |
//! | `embedding` | embedding | all-MiniLM-L6-v2 (cargo feature `embedding`) |
//! | `grpc` | what it declares | any `newsroom.v1.EnrichmentStage` |

pub mod counts;
pub mod dedup;
pub mod embedding;
pub mod entities;
pub mod grpc;
pub mod keywords;
pub mod language;
pub mod summary;
pub mod topics;
pub mod urgency;

use std::path::PathBuf;

use newsroom_platform::redis::RedisStore;
use serde::Deserialize;

use crate::stage::DynStage;

/// What building a stage may need from the service.
#[derive(Clone, Default)]
pub struct BuildContext {
    /// Redis, for stages that remember (dedup, velocity, embedding cache). `None` in unit tests
    /// and tools: those stages then work on the story alone.
    pub redis: Option<RedisStore>,
    /// `NEWSROOM_WORDS_PER_MINUTE`: the `counts` stage's default.
    pub words_per_minute: u32,
    /// `NEWSROOM_EMBEDDING_MODEL_DIR`: the `embedding` stage's default model folder.
    pub embedding_model_dir: Option<PathBuf>,
    /// Folder that relative paths in params are relative to (the pipeline file's).
    pub base_dir: PathBuf,
}

impl BuildContext {
    /// A path from a param, relative to the pipeline file's folder.
    pub fn path(&self, p: &str) -> PathBuf {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            self.base_dir.join(p)
        }
    }
}

/// A stage that could not be built (a model file that does not load, a bad endpoint).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BuildError(pub String);

/// The `type` of a stage and its `params`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StageConfig {
    Language(language::LanguageConfig),
    Counts(counts::CountsConfig),
    Topics(topics::TopicsConfig),
    Entities(entities::EntitiesConfig),
    Keywords(keywords::KeywordsConfig),
    Summary(summary::SummaryConfig),
    Dedup(dedup::DedupConfig),
    Urgency(urgency::UrgencyConfig),
    Embedding(embedding::EmbeddingConfig),
    Grpc(grpc::GrpcConfig),
}

impl StageConfig {
    /// Checks values serde cannot (ranges, URLs).
    pub fn validate(&self) -> Result<(), String> {
        match self {
            StageConfig::Language(_) | StageConfig::Embedding(_) => Ok(()),
            StageConfig::Counts(c) => c.validate(),
            StageConfig::Topics(c) => c.validate(),
            StageConfig::Entities(c) => c.validate(),
            StageConfig::Keywords(c) => c.validate(),
            StageConfig::Summary(c) => c.validate(),
            StageConfig::Dedup(c) => c.validate(),
            StageConfig::Urgency(c) => c.validate(),
            StageConfig::Grpc(c) => c.validate(),
        }
    }

    /// Builds the stage named `name` (the name labels a remote stage's spans and errors).
    pub fn build(&self, name: &str, cx: &BuildContext) -> Result<DynStage, BuildError> {
        Ok(match self {
            StageConfig::Language(c) => c.build(),
            StageConfig::Counts(c) => c.build(cx),
            StageConfig::Topics(c) => c.build(cx)?,
            StageConfig::Entities(c) => c.build(),
            StageConfig::Keywords(c) => c.build(),
            StageConfig::Summary(c) => c.build(),
            StageConfig::Dedup(c) => c.build(cx),
            StageConfig::Urgency(c) => c.build(cx),
            StageConfig::Embedding(c) => c.build(cx)?,
            StageConfig::Grpc(c) => c.build(name)?,
        })
    }

    /// The remote endpoint of a `grpc` stage.
    pub fn endpoint(&self) -> Option<&str> {
        match self {
            StageConfig::Grpc(c) => Some(&c.endpoint),
            _ => None,
        }
    }
}

/// `Err(reason)` unless `lo <= v <= hi`.
pub(crate) fn check_range<T: PartialOrd + std::fmt::Display>(
    name: &str,
    v: T,
    lo: T,
    hi: T,
) -> Result<(), String> {
    if v < lo || v > hi {
        Err(format!("{name}: expected {lo}..{hi}, got {v}"))
    } else {
        Ok(())
    }
}
