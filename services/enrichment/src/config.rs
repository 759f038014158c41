//! Enrichment's configuration: the platform's variables, the pipeline file, reading speed and
//! the embedding model.
//!
//! The pipeline file is parsed and validated here, so a broken file at start-up is a
//! configuration error naming `NEWSROOM_PIPELINE_FILE` (exit 64) before any port is bound. (At
//! run time a broken file is only rejected and the running pipeline stays, see `reload`.)

use std::path::PathBuf;

use newsroom_platform::config::{ConfigError, Env, PlatformConfig};

/// Reading speed used for `reading_time_seconds` when the `counts` stage sets none, in words
/// per minute. Default 230.
pub const NEWSROOM_WORDS_PER_MINUTE: &str = "NEWSROOM_WORDS_PER_MINUTE";
/// The pipeline file (TOML: stages in order, see the README). Default: the built-in pipeline
/// (`services/enrichment/pipeline.default.toml`). Reloaded on SIGHUP and on change.
pub const NEWSROOM_PIPELINE_FILE: &str = "NEWSROOM_PIPELINE_FILE";
/// Folder of the all-MiniLM-L6-v2 model for the `embedding` stage when its `model_dir` param
/// is not set. Default unset: the stage is skipped (one log line).
pub const NEWSROOM_EMBEDDING_MODEL_DIR: &str = "NEWSROOM_EMBEDDING_MODEL_DIR";

/// The default gRPC port of enrichment.
pub const DEFAULT_PORT: u16 = 50052;

/// Where `just enrichment-model` puts MiniLM, under `$HOME`: the model used when
/// `NEWSROOM_EMBEDDING_MODEL_DIR` is unset.
pub const DEFAULT_MODEL_DIR: &str = ".cache/newsroom/all-MiniLM-L6-v2";

/// The model folder for tools, benchmarks and tests, from the process's environment:
/// `NEWSROOM_EMBEDDING_MODEL_DIR`, else `$HOME/`[`DEFAULT_MODEL_DIR`] (whether or not the model
/// has been fetched there yet).
pub fn model_dir() -> PathBuf {
    std::env::var(NEWSROOM_EMBEDDING_MODEL_DIR)
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(DEFAULT_MODEL_DIR)
        })
}

#[derive(Debug, Clone)]
pub struct Config {
    pub platform: PlatformConfig,
    pub words_per_minute: u32,
    /// `None`: the built-in pipeline.
    pub pipeline_file: Option<PathBuf>,
    pub embedding_model_dir: Option<PathBuf>,
    /// Who may call: editors, services and operators (see [`newsroom_platform::auth`]).
    pub auth: newsroom_platform::auth::Auth,
}

impl Config {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let words_per_minute: u32 = env.parse(NEWSROOM_WORDS_PER_MINUTE, 230)?;
        if !(50..=2000).contains(&words_per_minute) {
            return Err(ConfigError::invalid(
                NEWSROOM_WORDS_PER_MINUTE,
                &words_per_minute.to_string(),
                "expected 50..2000",
            ));
        }
        let pipeline_file = env.raw(NEWSROOM_PIPELINE_FILE).map(PathBuf::from);
        if let Some(path) = &pipeline_file {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError::invalid(NEWSROOM_PIPELINE_FILE, &shown, e.to_string()))?;
            crate::spec::parse(&text)
                .map_err(|e| ConfigError::invalid(NEWSROOM_PIPELINE_FILE, &shown, e.to_string()))?;
        }
        let explicit = env.raw(NEWSROOM_EMBEDDING_MODEL_DIR).map(PathBuf::from);
        // Unset: the folder `just enrichment-model` fills, when it holds the model.
        let embedding_model_dir = explicit.clone().or_else(|| {
            let home = env.raw("HOME").or_else(|| std::env::var("HOME").ok())?;
            let cached = PathBuf::from(home).join(DEFAULT_MODEL_DIR);
            cached.join("model.safetensors").is_file().then_some(cached)
        });
        if let Some(dir) = &explicit
            && !dir.is_dir()
        {
            return Err(ConfigError::invalid(
                NEWSROOM_EMBEDDING_MODEL_DIR,
                &dir.display().to_string(),
                "not a folder (fetch the model with `just enrichment-model`)",
            ));
        }
        let platform = PlatformConfig::from_env(env, "enrichment", DEFAULT_PORT)?;
        let auth = newsroom_platform::auth::Auth::from_env(env, &platform)?;
        Ok(Config {
            platform,
            auth,
            words_per_minute,
            pipeline_file,
            embedding_model_dir,
        })
    }
}

impl newsroom_platform::service::ServiceConfig for Config {
    fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Config::from_env(env)
    }
    fn platform(&self) -> &PlatformConfig {
        &self.platform
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_env(&Env::from_fn(|k| map.get(k).cloned()))
    }

    #[test]
    fn defaults_run_the_built_in_pipeline() {
        let home = std::env::temp_dir().join(format!("newsroom-home-{}", std::process::id()));
        let home_s = home.display().to_string();
        let c = load(&[("HOME", &home_s)]).unwrap();
        assert_eq!(c.words_per_minute, 230);
        assert!(c.pipeline_file.is_none());
        assert!(
            c.embedding_model_dir.is_none(),
            "no model fetched: no model folder"
        );
        // Once `just enrichment-model` filled the cache, the service finds it unasked.
        let cached = home.join(DEFAULT_MODEL_DIR);
        std::fs::create_dir_all(&cached).unwrap();
        std::fs::write(cached.join("model.safetensors"), b"x").unwrap();
        let c = load(&[("HOME", &home_s)]).unwrap();
        assert_eq!(c.embedding_model_dir.as_deref(), Some(cached.as_path()));
        std::fs::remove_dir_all(&home).unwrap();
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let bad = std::env::temp_dir().join(format!("newsroom-bad-{}.toml", std::process::id()));
        std::fs::write(&bad, "[[stage]]\nname = \"a\"\ntype = \"nope\"\n").unwrap();
        let bad = bad.display().to_string();
        for (var, value) in [
            (NEWSROOM_WORDS_PER_MINUTE, "10"),
            (NEWSROOM_PIPELINE_FILE, "/no/such/pipeline.toml"),
            (NEWSROOM_PIPELINE_FILE, bad.as_str()),
            (NEWSROOM_EMBEDDING_MODEL_DIR, "/no/such/model"),
        ] {
            let err = load(&[(var, value)]).unwrap_err().to_string();
            assert!(err.starts_with(var), "{var}: {err}");
        }
    }
}
