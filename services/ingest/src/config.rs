//! Ingest's configuration: the platform's variables plus the limits on a story.

use newsroom_platform::config::{ConfigError, Env, PlatformConfig};

/// Largest accepted story (headline + standfirst + body + metadata), in bytes. Default 1 MiB.
pub const NEWSROOM_MAX_STORY_BYTES: &str = "NEWSROOM_MAX_STORY_BYTES";
/// Longest accepted headline, in characters. Default 300.
pub const NEWSROOM_MAX_HEADLINE_CHARS: &str = "NEWSROOM_MAX_HEADLINE_CHARS";

/// Largest accepted `ImportFeed` document, in bytes. Default 10 MiB.
pub const NEWSROOM_MAX_DOCUMENT_BYTES: &str = "NEWSROOM_MAX_DOCUMENT_BYTES";

/// The default gRPC port of ingest.
pub const DEFAULT_PORT: u16 = 50051;

#[derive(Debug, Clone)]
pub struct Config {
    pub platform: PlatformConfig,
    pub limits: Limits,
    pub api_keys: crate::access::ApiKeys,
    pub rate_per_source: std::num::NonZeroU32,
    /// Feeds to poll (`NEWSROOM_FEEDS_FILE`), and whether they may be internal addresses.
    pub feeds: Vec<crate::feeds::FeedSource>,
    pub feeds_allow_private: bool,
}

/// Bounds on one story.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_story_bytes: usize,
    pub max_headline_chars: usize,
    pub max_document_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_story_bytes: 1024 * 1024,
            max_headline_chars: 300,
            max_document_bytes: 10 * 1024 * 1024,
        }
    }
}

impl Config {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let d = Limits::default();
        let max_story_bytes = env.parse(NEWSROOM_MAX_STORY_BYTES, d.max_story_bytes)?;
        if max_story_bytes < 1024 {
            return Err(ConfigError::invalid(
                NEWSROOM_MAX_STORY_BYTES,
                &max_story_bytes.to_string(),
                "must be at least 1024",
            ));
        }
        let api_keys = crate::access::ApiKeys::parse(
            &env.string(crate::access::NEWSROOM_INGEST_API_KEYS, ""),
        )?;
        let rate: u32 = env.parse(crate::access::NEWSROOM_INGEST_RATE_PER_SOURCE, 2000)?;
        let rate_per_source = std::num::NonZeroU32::new(rate).ok_or_else(|| {
            ConfigError::invalid(
                crate::access::NEWSROOM_INGEST_RATE_PER_SOURCE,
                "0",
                "must be at least 1",
            )
        })?;
        let feeds = match env.raw(crate::feeds::NEWSROOM_FEEDS_FILE) {
            Some(path) => crate::feeds::load(&path)?,
            None => Vec::new(),
        };
        Ok(Config {
            feeds,
            feeds_allow_private: env.parse(crate::feeds::NEWSROOM_FEEDS_ALLOW_PRIVATE, false)?,
            api_keys,
            rate_per_source,
            platform: PlatformConfig::from_env(env, "ingest", DEFAULT_PORT)?,
            limits: Limits {
                max_story_bytes,
                max_headline_chars: env.parse(NEWSROOM_MAX_HEADLINE_CHARS, d.max_headline_chars)?,
                max_document_bytes: env.parse(NEWSROOM_MAX_DOCUMENT_BYTES, d.max_document_bytes)?,
            },
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
