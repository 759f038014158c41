//! The stage types a pipeline file can name, each registered once in the table below.
//!
//! A stage type is a config struct (its `params`: every field with a `///` doc giving its
//! default, `#[serde(deny_unknown_fields)]`) implementing [`StageParams`] (`validate`, `build`),
//! and the [`Stage`](crate::stage::Stage) it builds. Simple stages are one file
//! (`stages/language.rs`); a stage with an algorithm and data of its own is a folder holding
//! both (`stages/topics/`: the trained model, the lexicon and its `.tsv`; `stages/entities/`:
//! the rules and their word lists).
//!
//! Adding a built-in stage: write `stages/<name>.rs` (or `stages/<name>/mod.rs`) with its
//! config, its [`StageParams`] impl and its tests, then add one line to the `stage_types!` table
//! below: its `type`, its variant and config, and the fields it reads and writes. Nothing else
//! changes: the line declares the module, the [`StageConfig`] variant the pipeline file's `type`
//! selects (spec.rs), and the dispatch of `validate`/`build`; ListStages lists it and reload
//! picks it up. A test builds every built-in type with default params and checks that the stage
//! declares the fields its line says.

use std::path::PathBuf;

use newsroom_platform::redis::RedisStore;
use serde::Deserialize;

use crate::stage::{DynStage, Fields};

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
    /// TLS of the service's gRPC clients: remote stages at `https://` endpoints.
    pub tls: newsroom_platform::tls::Tls,
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

/// What every stage type's config does: check its values, build its stage.
pub trait StageParams {
    /// Checks values serde cannot (ranges, URLs). Default: nothing to check.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }

    /// Builds the stage named `name` (the name labels a remote stage's spans and errors).
    fn build(&self, name: &str, cx: &BuildContext) -> Result<DynStage, BuildError>;
}

/// One stage type as registered: its `type` and the fields its stages read and write (`None`
/// when they come from its params, as a remote stage's do).
#[derive(Debug, Clone, Copy)]
pub struct StageType {
    pub name: &'static str,
    pub reads: Option<Fields>,
    pub writes: Option<Fields>,
}

/// The fields of a registration line: `[A, B]`, or `params` when the stage's params say.
macro_rules! declared_fields {
    (params) => {
        None
    };
    ([$($field:ident),*]) => {
        Some(Fields::NONE$(.union(Fields::$field))*)
    };
}

/// Declares each stage type's module, its [`StageConfig`] variant, the dispatch to its
/// [`StageParams`] and its [`StageType`] entry, from one line each.
macro_rules! stage_types {
    ($(
        $(#[$doc:meta])*
        $module:ident => $variant:ident($config:ty), reads $reads:tt, writes $writes:tt;
    )*) => {
        $(pub mod $module;)*

        /// The `type` of a stage and its `params` (`type` is the variant in snake case).
        #[derive(Debug, Clone, Deserialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        pub enum StageConfig {
            $($(#[$doc])* $variant($config),)*
        }

        /// Every stage type, in the table's order.
        pub const STAGE_TYPES: &[StageType] = &[$(StageType {
            name: stringify!($module),
            reads: declared_fields!($reads),
            writes: declared_fields!($writes),
        }),*];

        impl StageConfig {
            fn params(&self) -> &dyn StageParams {
                match self {
                    $(StageConfig::$variant(c) => c,)*
                }
            }
        }
    };
}

stage_types! {
    /// The source's language tag, else whatlang.
    language => Language(language::LanguageConfig), reads [], writes [LANGUAGE];
    /// `word_count` and `reading_time_seconds`.
    counts => Counts(counts::CountsConfig), reads [], writes [COUNTS];
    /// IPTC Media Topics: the trained model and the lexicon.
    topics => Topics(topics::TopicsConfig), reads [EMBEDDING], writes [TOPICS];
    /// People, organisations, places and events.
    entities => Entities(entities::EntitiesConfig), reads [], writes [ENTITIES];
    /// TF-IDF over words and two-word phrases.
    keywords => Keywords(keywords::KeywordsConfig), reads [], writes [KEYWORDS];
    /// Extractive summary.
    summary => Summary(summary::SummaryConfig), reads [], writes [SUMMARY];
    /// Near-duplicate clusters: MinHash + LSH in Redis, across sources.
    dedup => Dedup(dedup::DedupConfig), reads [EMBEDDING], writes [CLUSTER];
    /// Breaking score: source urgency, wording, velocity (Redis).
    urgency => Urgency(urgency::UrgencyConfig), reads [CLUSTER], writes [BREAKING];
    /// all-MiniLM-L6-v2 (cargo feature `embedding`).
    embedding => Embedding(embedding::EmbeddingConfig), reads [], writes [EMBEDDING];
    /// Any `newsroom.v1.EnrichmentStage`: reads and writes what its params declare.
    grpc => Grpc(grpc::GrpcConfig), reads params, writes params;
    /// A WebAssembly component (world `newsroom:stage/stage`, `wit/newsroom-stage.wit`):
    /// reads what its manifest declares, writes attributes `<stage>.<field>`.
    wasm => Wasm(wasm::WasmConfig), reads params, writes params;
}

impl StageConfig {
    /// Checks values serde cannot (ranges, URLs).
    pub fn validate(&self) -> Result<(), String> {
        self.params().validate()
    }

    /// Builds the stage named `name` (the name labels a remote stage's spans and errors).
    pub fn build(&self, name: &str, cx: &BuildContext) -> Result<DynStage, BuildError> {
        self.params().build(name, cx)
    }

    /// The remote endpoint of a `grpc` stage, the component of a `wasm` one.
    pub fn endpoint(&self) -> Option<&str> {
        match self {
            StageConfig::Grpc(c) => Some(&c.endpoint),
            StageConfig::Wasm(c) => Some(&c.module),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_type_builds_with_default_params_and_declares_its_line() {
        for t in STAGE_TYPES {
            let (Some(reads), Some(writes)) = (t.reads, t.writes) else {
                continue; // a remote stage: its fields come from its params
            };
            let mut table = toml::Table::new();
            table.insert("type".into(), toml::Value::String(t.name.into()));
            let config = StageConfig::deserialize(toml::Value::Table(table))
                .unwrap_or_else(|e| panic!("{}: {e}", t.name));
            config
                .validate()
                .unwrap_or_else(|e| panic!("{}: {e}", t.name));
            let stage = config
                .build(t.name, &BuildContext::default())
                .unwrap_or_else(|e| panic!("{}: {e}", t.name));
            assert_eq!(stage.reads(), reads, "{} reads", t.name);
            assert_eq!(stage.writes(), writes, "{} writes", t.name);
        }
    }
}
