//! Ingest's configuration: the platform's variables plus the limits on a story.

use newsroom_platform::config::{ConfigError, Env, PlatformConfig};

/// Largest accepted story (headline + standfirst + body + metadata), in bytes, before and after
/// sanitising. Default 768 KiB; at most [`MAX_STORY_BYTES_CEILING`].
///
/// Kafka bounds a record: librdkafka's `message.max.bytes` and the broker's default are ~1 MB.
/// A story travels as a `StoryEvent` and then as an `EnrichedStory` (the story plus entities,
/// topics, summary and a 384-float embedding), so it must leave room for both envelopes.
pub const NEWSROOM_MAX_STORY_BYTES: &str = "NEWSROOM_MAX_STORY_BYTES";
/// Longest accepted headline, in characters. Default 300.
pub const NEWSROOM_MAX_HEADLINE_CHARS: &str = "NEWSROOM_MAX_HEADLINE_CHARS";

/// Largest accepted `ImportFeed` document, in bytes. Default 10 MiB.
pub const NEWSROOM_MAX_DOCUMENT_BYTES: &str = "NEWSROOM_MAX_DOCUMENT_BYTES";

/// Most items one `ImportFeed` document (or polled feed) may hold. Default 1000.
pub const NEWSROOM_MAX_IMPORT_ITEMS: &str = "NEWSROOM_MAX_IMPORT_ITEMS";

/// The largest `NEWSROOM_MAX_STORY_BYTES` accepted: what leaves an enriched story below the
/// 1,000,000 bytes of librdkafka's default `message.max.bytes`.
pub const MAX_STORY_BYTES_CEILING: usize = 900_000;

/// The default gRPC port of ingest.
pub const DEFAULT_PORT: u16 = 50051;

#[derive(Debug, Clone)]
pub struct Config {
    pub platform: PlatformConfig,
    pub limits: Limits,
    /// API keys and source tokens.
    pub access: crate::access::Access,
    /// Who may send alert-level urgency.
    pub alert_sources: crate::access::AlertSources,
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
    pub max_import_items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_story_bytes: 768 * 1024,
            max_headline_chars: 300,
            max_document_bytes: 10 * 1024 * 1024,
            max_import_items: 1000,
        }
    }
}

impl Config {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let d = Limits::default();
        let max_story_bytes = env.parse(NEWSROOM_MAX_STORY_BYTES, d.max_story_bytes)?;
        if !(1024..=MAX_STORY_BYTES_CEILING).contains(&max_story_bytes) {
            return Err(ConfigError::invalid(
                NEWSROOM_MAX_STORY_BYTES,
                &max_story_bytes.to_string(),
                format!(
                    "must be 1024..={MAX_STORY_BYTES_CEILING}: a larger story would not fit a \
                     Kafka record of the default 1 MB once enriched"
                ),
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
        let platform = PlatformConfig::from_env(env, "ingest", DEFAULT_PORT)?;
        let loopback = platform.grpc_addr.ip().is_loopback();
        let has_jwt = [
            newsroom_platform::auth::NEWSROOM_AUTH_JWKS,
            newsroom_platform::auth::NEWSROOM_AUTH_TOKENS,
        ]
        .iter()
        .any(|v| env.raw(v).is_some_and(|x| !x.trim().is_empty()));
        if api_keys.is_empty() && !loopback && !has_jwt {
            return Err(ConfigError::invalid(
                crate::access::NEWSROOM_INGEST_API_KEYS,
                "",
                format!(
                    "required on the non-loopback address {}: ingest never runs open on a \
                     network (or give source tokens with {})",
                    platform.grpc_addr,
                    newsroom_platform::auth::NEWSROOM_AUTH_JWKS
                ),
            ));
        }
        let auth =
            newsroom_platform::auth::Auth::from_env_with(env, &platform, !api_keys.is_empty())?;
        let open = api_keys.is_empty() && auth.mode() == newsroom_platform::auth::AuthMode::Local;
        let alert_urgency: u32 = env.parse(crate::access::NEWSROOM_INGEST_ALERT_URGENCY, 2)?;
        if !(1..=8).contains(&alert_urgency) {
            return Err(ConfigError::invalid(
                crate::access::NEWSROOM_INGEST_ALERT_URGENCY,
                &alert_urgency.to_string(),
                "expected an IPTC urgency 1..8",
            ));
        }
        let alert_sources = crate::access::AlertSources::new(
            env.raw(crate::access::NEWSROOM_INGEST_ALERT_SOURCES)
                .as_deref(),
            open,
            alert_urgency,
        );
        let feeds = match env.raw(crate::feeds::NEWSROOM_FEEDS_FILE) {
            Some(path) => crate::feeds::load(&path)?,
            None => Vec::new(),
        };
        Ok(Config {
            feeds,
            feeds_allow_private: env.parse(crate::feeds::NEWSROOM_FEEDS_ALLOW_PRIVATE, false)?,
            access: crate::access::Access {
                keys: api_keys,
                auth,
            },
            alert_sources,
            rate_per_source,
            platform,
            limits: Limits {
                max_story_bytes,
                max_headline_chars: env.parse(NEWSROOM_MAX_HEADLINE_CHARS, d.max_headline_chars)?,
                max_document_bytes: env.parse(NEWSROOM_MAX_DOCUMENT_BYTES, d.max_document_bytes)?,
                max_import_items: env
                    .parse(NEWSROOM_MAX_IMPORT_ITEMS, d.max_import_items)?
                    .max(1),
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
