//! Notification's configuration: the platform's variables plus the alert rules and fan-out.

use std::time::Duration;

use newsroom_platform::config::{ConfigError, Env, PlatformConfig};

/// A story alerts when its IPTC urgency is at most this (1 = flash). Default 2.
pub const NEWSROOM_ALERT_MAX_URGENCY: &str = "NEWSROOM_ALERT_MAX_URGENCY";
/// Concurrent sends per alert. Default 64.
pub const NEWSROOM_FANOUT_CONCURRENCY: &str = "NEWSROOM_FANOUT_CONCURRENCY";
/// Timeout of one webhook request, in milliseconds. Default 5000.
pub const NEWSROOM_WEBHOOK_TIMEOUT_MS: &str = "NEWSROOM_WEBHOOK_TIMEOUT_MS";

/// The default gRPC port of notification.
pub const DEFAULT_PORT: u16 = 50054;

#[derive(Debug, Clone)]
pub struct Config {
    pub platform: PlatformConfig,
    pub alert_max_urgency: u32,
    pub fanout_concurrency: usize,
    pub webhook_timeout: Duration,
}

impl Config {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let alert_max_urgency: u32 = env.parse(NEWSROOM_ALERT_MAX_URGENCY, 2)?;
        if !(1..=8).contains(&alert_max_urgency) {
            return Err(ConfigError::invalid(
                NEWSROOM_ALERT_MAX_URGENCY,
                &alert_max_urgency.to_string(),
                "expected an IPTC urgency 1..8",
            ));
        }
        let fanout_concurrency: usize = env.parse(NEWSROOM_FANOUT_CONCURRENCY, 64)?;
        if fanout_concurrency == 0 {
            return Err(ConfigError::invalid(
                NEWSROOM_FANOUT_CONCURRENCY,
                "0",
                "must be at least 1",
            ));
        }
        let timeout_ms: u64 = env.parse(NEWSROOM_WEBHOOK_TIMEOUT_MS, 5000)?;
        Ok(Config {
            platform: PlatformConfig::from_env(env, "notification", DEFAULT_PORT)?,
            alert_max_urgency,
            fanout_concurrency,
            webhook_timeout: Duration::from_millis(timeout_ms.max(1)),
        })
    }
}
