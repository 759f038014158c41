//! Enrichment's configuration: the platform's variables plus reading speed.

use newsroom_platform::config::{ConfigError, Env, PlatformConfig};

/// Reading speed used for `reading_time_seconds`, in words per minute. Default 230.
pub const NEWSROOM_WORDS_PER_MINUTE: &str = "NEWSROOM_WORDS_PER_MINUTE";

/// The default gRPC port of enrichment.
pub const DEFAULT_PORT: u16 = 50052;

#[derive(Debug, Clone)]
pub struct Config {
    pub platform: PlatformConfig,
    pub words_per_minute: u32,
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
        Ok(Config {
            platform: PlatformConfig::from_env(env, "enrichment", DEFAULT_PORT)?,
            words_per_minute,
        })
    }
}
