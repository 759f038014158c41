//! Recommendation's configuration: the platform's variables plus story cache lifetime.

use std::time::Duration;

use newsroom_platform::auth::Auth;
use newsroom_platform::config::{ConfigError, Env, PlatformConfig};

/// How long a story stays in the Redis cache and its indexes, in hours. Default 336 (14 days).
pub const NEWSROOM_STORY_TTL_HOURS: &str = "NEWSROOM_STORY_TTL_HOURS";

/// Stories kept per index (topic, section, author, entity, latest), newest first. Default 10000.
pub const NEWSROOM_INDEX_MAX_STORIES: &str = "NEWSROOM_INDEX_MAX_STORIES";

/// Readers whose first page each replica keeps prepared (see `feed::prepared`); 0 turns it
/// off. Default 10000.
pub const NEWSROOM_FEED_PREPARED_READERS: &str = "NEWSROOM_FEED_PREPARED_READERS";

/// The default gRPC port of recommendation.
pub const DEFAULT_PORT: u16 = 50053;

#[derive(Debug, Clone)]
pub struct Config {
    pub platform: PlatformConfig,
    pub story_ttl: Duration,
    pub index_max_stories: usize,
    /// Readers whose first page is kept prepared per replica.
    pub prepared_readers: usize,
    /// Who may call (see [`newsroom_platform::auth`]): readers act for themselves only.
    pub auth: Auth,
}

impl Config {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let hours: u64 = env.parse(NEWSROOM_STORY_TTL_HOURS, 336)?;
        if hours == 0 {
            return Err(ConfigError::invalid(
                NEWSROOM_STORY_TTL_HOURS,
                "0",
                "must be at least 1",
            ));
        }
        let index_max_stories: usize = env.parse(NEWSROOM_INDEX_MAX_STORIES, 10_000)?;
        if index_max_stories == 0 {
            return Err(ConfigError::invalid(
                NEWSROOM_INDEX_MAX_STORIES,
                "0",
                "must be at least 1",
            ));
        }
        let prepared_readers = env.parse(
            NEWSROOM_FEED_PREPARED_READERS,
            crate::feed::prepared::DEFAULT_READERS,
        )?;
        let platform = PlatformConfig::from_env(env, "recommendation", DEFAULT_PORT)?;
        let auth = Auth::from_env(env, &platform)?;
        Ok(Config {
            platform,
            auth,
            story_ttl: Duration::from_secs(hours * 3600),
            index_max_stories,
            prepared_readers,
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
