//! The pipeline file: stages in order, each with its type, params, timeout and `on_error`.
//!
//! ```toml
//! [[stage]]
//! name = "topics"          # unique; shown by ListStages, in metrics and in DLQ headers
//! type = "topics"          # which stage (one variant of `StageConfig`)
//! timeout_ms = 100         # budget for one attempt (default 1000)
//! on_error = "retry"       # skip | retry | dead-letter (default skip)
//! attempts = 3             # attempts when on_error = "retry" (default 3)
//! after = ["language"]     # extra ordering; reads/writes already order most stages
//! params = { max_topics = 3 }
//! ```
//!
//! A stage may run in **shadow** beside the one it would replace: `mode = "shadow"` and
//! `shadows = "<serving stage>"`. It runs on every story, its findings are compared with the
//! serving stage's (a diff per story in the log, agreement as metrics) and never published;
//! `newsroom stage promote <name>` makes it serve (it takes the serving stage's place and name).
//!
//! The file is validated whole before anything runs: an unknown type, an unknown param, a
//! duplicate name or a bad value is a [`SpecError`] naming the stage, and a reload with such a
//! file keeps the running pipeline. `params` are the fields of the stage's config struct; the
//! struct and its `///` docs (which double as user documentation, with defaults) live in the
//! stage's own file under `stages/`.

use std::collections::HashSet;

use serde::Deserialize;

use crate::stages;

/// What the pipeline does when a stage fails (error, timeout, open circuit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum OnError {
    /// The story goes on without this stage's findings (recorded as skipped). The default:
    /// most stages are nice to have.
    #[default]
    Skip,
    /// Try the stage again (`attempts`, with backoff); if every attempt fails the story is
    /// dead-lettered.
    Retry,
    /// Dead-letter the story at once, with the stage's name and error in the headers.
    DeadLetter,
}

impl OnError {
    pub fn as_str(self) -> &'static str {
        match self {
            OnError::Skip => "skip",
            OnError::Retry => "retry",
            OnError::DeadLetter => "dead-letter",
        }
    }
}

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PipelineFile {
    #[serde(default)]
    stage: Vec<RawStage>,
}

/// One `[[stage]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    timeout_ms: Option<u64>,
    #[serde(default)]
    on_error: OnError,
    attempts: Option<u32>,
    retry_backoff_ms: Option<u64>,
    #[serde(default)]
    after: Vec<String>,
    #[serde(default)]
    mode: StageMode,
    shadows: Option<String>,
    #[serde(default)]
    params: toml::Table,
}

/// Whether a stage's findings are published (`serve`, the default) or only compared with those
/// of the stage it shadows (`shadow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum StageMode {
    #[default]
    Serve,
    Shadow,
}

/// One validated stage of the file.
#[derive(Debug, Clone)]
pub struct StageSpec {
    /// Unique name of the stage.
    pub name: String,
    /// Its `type`.
    pub kind: String,
    /// Budget of one attempt. Default 1000 ms.
    pub timeout_ms: u64,
    /// Default `skip`.
    pub on_error: OnError,
    /// Attempts before giving up: `attempts` (default 3) with `on_error = "retry"`, else 1.
    pub attempts: u32,
    /// First pause between attempts, doubled each time. Default 50 ms.
    pub retry_backoff_ms: u64,
    /// Stages this one must run after, beyond what reads/writes imply.
    pub after: Vec<String>,
    /// In shadow mode: the serving stage it is compared with (its findings never published).
    pub shadows: Option<String>,
    /// The stage's typed config (`type` and `params`).
    pub config: stages::StageConfig,
}

/// A pipeline file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("not a valid pipeline file: {0}")]
    Toml(String),
    #[error("the pipeline has no stages")]
    Empty,
    #[error("stage {index} ({name:?}): {reason}")]
    Stage {
        index: usize,
        name: String,
        reason: String,
    },
}

/// Parses and validates a pipeline file.
pub fn parse(text: &str) -> Result<Vec<StageSpec>, SpecError> {
    let file: PipelineFile = toml::from_str(text).map_err(|e| SpecError::Toml(e.to_string()))?;
    if file.stage.is_empty() {
        return Err(SpecError::Empty);
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(file.stage.len());
    for (i, raw) in file.stage.into_iter().enumerate() {
        let index = i + 1;
        let fail = |reason: String| SpecError::Stage {
            index,
            name: raw.name.clone(),
            reason,
        };
        if raw.name.trim().is_empty()
            || !raw
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(fail(
                "name: use ASCII letters, digits, '-', '_' or '.'".into(),
            ));
        }
        if !seen.insert(raw.name.clone()) {
            return Err(fail("name: another stage has the same name".into()));
        }
        for a in &raw.after {
            if !seen.contains(a) || a == &raw.name {
                return Err(fail(format!(
                    "after: {a:?} is not a stage listed before this one"
                )));
            }
        }
        let timeout_ms = raw.timeout_ms.unwrap_or(1000);
        if !(1..=600_000).contains(&timeout_ms) {
            return Err(fail("timeout_ms: expected 1..600000".into()));
        }
        let attempts = match (raw.on_error, raw.attempts) {
            (OnError::Retry, None) => 3,
            (OnError::Retry, Some(n)) if (1..=20).contains(&n) => n,
            (OnError::Retry, Some(_)) => return Err(fail("attempts: expected 1..20".into())),
            (_, None) => 1,
            (_, Some(_)) => {
                return Err(fail(
                    "attempts: only meaningful with on_error = \"retry\"".into(),
                ));
            }
        };
        let retry_backoff_ms = raw.retry_backoff_ms.unwrap_or(50);
        if retry_backoff_ms > 60_000 {
            return Err(fail("retry_backoff_ms: expected 0..60000".into()));
        }
        let shadows = match (raw.mode, &raw.shadows) {
            (StageMode::Serve, None) => None,
            (StageMode::Shadow, Some(target)) if target != &raw.name => Some(target.clone()),
            (StageMode::Shadow, _) => {
                return Err(fail(
                    "shadows: a shadow stage names the serving stage it is compared with".into(),
                ));
            }
            (StageMode::Serve, Some(_)) => {
                return Err(fail("shadows: only with mode = \"shadow\"".into()));
            }
        };
        let mut table = raw.params.clone();
        if table.contains_key("type") {
            return Err(fail(
                "params: `type` belongs to the stage, not its params".into(),
            ));
        }
        table.insert("type".into(), toml::Value::String(raw.kind.clone()));
        let config = stages::StageConfig::deserialize(toml::Value::Table(table))
            .map_err(|e| fail(format!("params: {}", e.message())))?;
        config
            .validate()
            .map_err(|e| fail(format!("params: {e}")))?;
        out.push(StageSpec {
            name: raw.name,
            kind: raw.kind,
            timeout_ms,
            on_error: raw.on_error,
            attempts,
            retry_backoff_ms,
            after: raw.after,
            shadows,
            config,
        });
    }
    // A shadow is compared with a serving stage of the same file.
    for (i, spec) in out.iter().enumerate() {
        if let Some(target) = &spec.shadows
            && !out.iter().any(|o| &o.name == target && o.shadows.is_none())
        {
            return Err(SpecError::Stage {
                index: i + 1,
                name: spec.name.clone(),
                reason: format!("shadows: {target:?} is not a serving stage of this pipeline"),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shadow_stage_names_a_serving_stage() {
        let ok = "[[stage]]\nname = \"a\"\ntype = \"counts\"\n[[stage]]\nname = \"b\"\ntype = \"counts\"\nmode = \"shadow\"\nshadows = \"a\"\n";
        let specs = parse(ok).unwrap();
        assert_eq!(specs[1].shadows.as_deref(), Some("a"));
        assert_eq!(specs[0].shadows, None);
        for bad in [
            "[[stage]]\nname = \"b\"\ntype = \"counts\"\nmode = \"shadow\"\n",
            "[[stage]]\nname = \"b\"\ntype = \"counts\"\nmode = \"shadow\"\nshadows = \"nope\"\n",
            "[[stage]]\nname = \"a\"\ntype = \"counts\"\n[[stage]]\nname = \"b\"\ntype = \"counts\"\nshadows = \"a\"\n",
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains("shadows"), "{e}");
        }
    }

    #[test]
    fn the_built_in_default_pipeline_parses() {
        let specs = parse(crate::pipeline::DEFAULT_PIPELINE).unwrap();
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert!(
            names.contains(&"topics") && names.contains(&"entities"),
            "{names:?}"
        );
    }

    #[test]
    fn the_kubernetes_configmap_pipeline_parses() {
        // The file deploy/compose.yaml and the k8s ConfigMap mount: it must keep working.
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../k8s/base/enrichment/pipeline.toml"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let specs = parse(&text).unwrap();
        let stage = |n: &str| specs.iter().find(|s| s.name == n).unwrap();
        assert_eq!(stage("topics").on_error, OnError::Retry);
        assert_eq!(stage("topics").attempts, 3);
        assert_eq!(stage("dedup").on_error, OnError::Skip);
        // The deployed pipeline runs what the service runs by default, the embedding included.
        let default = parse(include_str!("../pipeline.default.toml")).unwrap();
        let names = |s: &[StageSpec]| s.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&specs), names(&default));
    }

    #[test]
    fn a_stage_is_plugged_in_by_config_alone() {
        let specs = parse(
            r#"
            [[stage]]
            name = "tagger"
            type = "grpc"
            timeout_ms = 250
            on_error = "skip"
            params = { endpoint = "http://127.0.0.1:7000", writes = ["keywords", "attributes"] }
            "#,
        )
        .unwrap();
        assert_eq!(specs[0].kind, "grpc");
        assert_eq!(specs[0].timeout_ms, 250);
        assert!(matches!(specs[0].config, stages::StageConfig::Grpc(_)));
    }

    #[test]
    fn mistakes_name_the_stage_and_the_problem() {
        let cases = [
            (
                "[[stage]]\nname = \"a\"\ntype = \"nope\"\n",
                "unknown variant",
            ),
            (
                "[[stage]]\nname = \"a\"\ntype = \"topics\"\nparams = { max_topics = 0 }\n",
                "max_topics",
            ),
            (
                "[[stage]]\nname = \"a\"\ntype = \"topics\"\nparams = { colour = 1 }\n",
                "colour",
            ),
            (
                "[[stage]]\nname = \"a\"\ntype = \"language\"\n[[stage]]\nname = \"a\"\ntype = \"counts\"\n",
                "same name",
            ),
            (
                "[[stage]]\nname = \"a\"\ntype = \"language\"\non_error = \"explode\"\n",
                "explode",
            ),
            (
                "[[stage]]\nname = \"a\"\ntype = \"language\"\ntimeout_ms = 0\n",
                "timeout_ms",
            ),
            (
                "[[stage]]\nname = \"a\"\ntype = \"language\"\nafter = [\"b\"]\n",
                "not a stage listed before",
            ),
            ("[[stage]]\nname = \"a\"\ntype = \"grpc\"\n", "endpoint"),
            ("", "no stages"),
            ("[[stage]\n", "not a valid pipeline file"),
        ];
        for (text, want) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }
}
