//! Notification's configuration: the platform's variables plus the alert rules, the fan-out,
//! the channels, the segments and who may call what.
//!
//! Every value is checked here, before any port is bound: a bad one is a [`ConfigError`] naming
//! its variable (exit 64). Values that may hold credentials (`NEWSROOM_CHANNELS`,
//! `NEWSROOM_AUTH_TOKENS`) are never repeated in an error.

use std::collections::BTreeMap;
use std::time::Duration;

use newsroom_platform::config::{ConfigError, Env, PlatformConfig};

use crate::audience::Segment;
use crate::channel::ChannelConfig;
use newsroom_platform::auth::Auth;

/// A story alerts when its IPTC urgency is at most this (1 = flash). Default 2.
pub const NEWSROOM_ALERT_MAX_URGENCY: &str = "NEWSROOM_ALERT_MAX_URGENCY";
/// A story also alerts when enrichment's breaking score is at least this (0..1). Default: unset,
/// urgency alone decides.
pub const NEWSROOM_ALERT_BREAKING_SCORE: &str = "NEWSROOM_ALERT_BREAKING_SCORE";
/// A story accepted longer ago than this many seconds never alerts by itself (a consumer that
/// replays `stories.enriched` must not push yesterday's flashes). Default 3600.
pub const NEWSROOM_ALERT_MAX_AGE_S: &str = "NEWSROOM_ALERT_MAX_AGE_S";
/// Default concurrent sends per channel (a channel's `limits.concurrency` overrides it).
/// Default 64.
pub const NEWSROOM_FANOUT_CONCURRENCY: &str = "NEWSROOM_FANOUT_CONCURRENCY";
/// Devices read, filtered and claimed per Redis round trip. Default 256.
pub const NEWSROOM_FANOUT_BATCH: &str = "NEWSROOM_FANOUT_BATCH";
/// Alerts (fan-outs) run at once per partition of `stories.enriched` and
/// `notifications.alerts`, of different stories. Default 8.
pub const NEWSROOM_ALERTS_PER_PARTITION: &str = "NEWSROOM_ALERTS_PER_PARTITION";
/// Default timeout of one provider request, in milliseconds. Default 5000.
pub const NEWSROOM_WEBHOOK_TIMEOUT_MS: &str = "NEWSROOM_WEBHOOK_TIMEOUT_MS";
/// A correction of an alerted story replaces the alert on devices alerted less than this many
/// seconds ago (through the providers' collapse ids). 0 = never. Default 3600.
pub const NEWSROOM_CORRECTION_WINDOW_S: &str = "NEWSROOM_CORRECTION_WINDOW_S";
/// The channels, as a JSON array of `{"type": ...}` objects (see `channel`). Default: a webhook
/// channel (signed when `NEWSROOM_WEBHOOK_SECRET` is set) and the in-app channel.
pub const NEWSROOM_CHANNELS: &str = "NEWSROOM_CHANNELS";
/// A file holding the channels' JSON, instead of `NEWSROOM_CHANNELS`.
pub const NEWSROOM_CHANNELS_FILE: &str = "NEWSROOM_CHANNELS_FILE";
/// The webhook HMAC key of the default channel configuration. Default: unset (unsigned).
pub const NEWSROOM_WEBHOOK_SECRET: &str = "NEWSROOM_WEBHOOK_SECRET";
/// Named audiences for `SendAlert`, as a JSON object of name → filter on every device:
/// `{"uk": {"timezones": ["Europe/London"], "languages": ["en"], "channels": ["apns"]}}`.
/// Default: none.
pub const NEWSROOM_SEGMENTS: &str = "NEWSROOM_SEGMENTS";

/// The default gRPC port of notification.
/// Webhook devices may point at private, loopback and link-local addresses. Default: only
/// when the service listens on loopback (the demo, the tests); never on a public address.
pub const NEWSROOM_WEBHOOK_ALLOW_PRIVATE: &str = "NEWSROOM_WEBHOOK_ALLOW_PRIVATE";
/// The user whose devices alone receive canary stories (`newsroom canary`). Default `canary`.
pub const NEWSROOM_CANARY_USER: &str = "NEWSROOM_CANARY_USER";
pub const DEFAULT_PORT: u16 = 50054;

#[derive(Debug, Clone)]
pub struct Config {
    pub platform: PlatformConfig,
    pub alert_max_urgency: u32,
    pub alert_breaking_score: Option<f64>,
    pub alert_max_age: Duration,
    pub fanout_concurrency: usize,
    pub fanout_batch: usize,
    pub alerts_per_partition: usize,
    pub webhook_timeout: Duration,
    pub correction_window: Duration,
    pub channels: Vec<ChannelConfig>,
    pub segments: BTreeMap<String, Segment>,
    pub auth: Auth,
    /// Caps on open `StreamAlerts` streams: per reader, per replica.
    pub streams_per_reader: usize,
    pub streams_max: usize,
    pub canary_user: String,
    pub webhook_allow_private: bool,
}

impl Config {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let platform = PlatformConfig::from_env(env, "notification", DEFAULT_PORT)?;
        let alert_max_urgency: u32 = env.parse(NEWSROOM_ALERT_MAX_URGENCY, 2)?;
        if !(1..=8).contains(&alert_max_urgency) {
            return Err(ConfigError::invalid(
                NEWSROOM_ALERT_MAX_URGENCY,
                &alert_max_urgency.to_string(),
                "expected an IPTC urgency 1..8",
            ));
        }
        let alert_breaking_score = match env.raw(NEWSROOM_ALERT_BREAKING_SCORE) {
            None => None,
            Some(v) => match v.trim().parse::<f64>() {
                Ok(s) if (0.0..=1.0).contains(&s) => Some(s),
                _ => {
                    return Err(ConfigError::invalid(
                        NEWSROOM_ALERT_BREAKING_SCORE,
                        &v,
                        "expected a score between 0 and 1",
                    ));
                }
            },
        };
        let max_age: u64 = env.parse(NEWSROOM_ALERT_MAX_AGE_S, 3600)?;
        let fanout_concurrency: usize = env.parse(NEWSROOM_FANOUT_CONCURRENCY, 64)?;
        if fanout_concurrency == 0 {
            return Err(ConfigError::invalid(
                NEWSROOM_FANOUT_CONCURRENCY,
                "0",
                "must be at least 1",
            ));
        }
        let fanout_batch: usize = env.parse(NEWSROOM_FANOUT_BATCH, 256)?;
        if !(1..=10_000).contains(&fanout_batch) {
            return Err(ConfigError::invalid(
                NEWSROOM_FANOUT_BATCH,
                &fanout_batch.to_string(),
                "expected 1..10000",
            ));
        }
        let alerts_per_partition: usize = env.parse(NEWSROOM_ALERTS_PER_PARTITION, 8)?;
        if alerts_per_partition == 0 {
            return Err(ConfigError::invalid(
                NEWSROOM_ALERTS_PER_PARTITION,
                "0",
                "at least 1 alert must be able to run",
            ));
        }
        let timeout_ms: u64 = env.parse(NEWSROOM_WEBHOOK_TIMEOUT_MS, 5000)?;
        let correction_s: u64 = env.parse(NEWSROOM_CORRECTION_WINDOW_S, 3600)?;
        let channels = channels_from_env(env)?;
        let segments = match env.raw(NEWSROOM_SEGMENTS) {
            None => BTreeMap::new(),
            Some(json) => serde_json::from_str(&json).map_err(|e| {
                ConfigError::invalid(
                    NEWSROOM_SEGMENTS,
                    &json,
                    format!("expected a JSON object of name → filter: {e}"),
                )
            })?,
        };
        let auth = Auth::from_env(env, &platform)?;
        let canary_user = env.string(NEWSROOM_CANARY_USER, "canary");
        if canary_user.trim().is_empty() {
            return Err(ConfigError::invalid(
                NEWSROOM_CANARY_USER,
                &canary_user,
                "a user id is required (canary stories alert only that user's devices)",
            ));
        }
        let webhook_allow_private = env.parse(
            NEWSROOM_WEBHOOK_ALLOW_PRIVATE,
            platform.grpc_addr.ip().is_loopback(),
        )?;
        Ok(Config {
            platform,
            alert_max_urgency,
            alert_breaking_score,
            alert_max_age: Duration::from_secs(max_age),
            fanout_concurrency,
            fanout_batch,
            alerts_per_partition,
            webhook_timeout: Duration::from_millis(timeout_ms.max(1)),
            correction_window: Duration::from_secs(correction_s),
            channels,
            segments,
            auth,
            streams_per_reader: env.parse(crate::streams::NEWSROOM_STREAMS_PER_READER, 5)?,
            streams_max: env.parse(crate::streams::NEWSROOM_STREAMS_MAX, 10_000)?,
            canary_user,
            webhook_allow_private,
        })
    }
}

impl Config {
    /// The editorial rules the consumers and `SendAlert` share.
    pub fn rules(&self) -> crate::decision::Rules {
        crate::decision::Rules {
            max_urgency: self.alert_max_urgency,
            breaking_score: self.alert_breaking_score,
            max_age: self.alert_max_age,
            segments: self.segments.clone(),
            canary_user: self.canary_user.clone(),
        }
    }
}

/// The channel list: `NEWSROOM_CHANNELS`, else `NEWSROOM_CHANNELS_FILE`, else the default.
fn channels_from_env(env: &Env<'_>) -> Result<Vec<ChannelConfig>, ConfigError> {
    let (var, json) = match (env.raw(NEWSROOM_CHANNELS), env.raw(NEWSROOM_CHANNELS_FILE)) {
        (Some(json), _) => (NEWSROOM_CHANNELS, json),
        (None, Some(path)) => (
            NEWSROOM_CHANNELS_FILE,
            std::fs::read_to_string(path.trim()).map_err(|e| {
                ConfigError::invalid(NEWSROOM_CHANNELS_FILE, &path, format!("cannot read: {e}"))
            })?,
        ),
        (None, None) => (
            NEWSROOM_CHANNELS,
            format!(
                r#"[{{"type": "webhook"{}}}, {{"type": "in_app"}}]"#,
                if env.raw(NEWSROOM_WEBHOOK_SECRET).is_some() {
                    format!(r#", "secret": {{"env": "{NEWSROOM_WEBHOOK_SECRET}"}}"#)
                } else {
                    String::new()
                }
            ),
        ),
    };
    // The value may hold keys: errors show where, never what.
    let redacted = "<channels JSON, not repeated>";
    let mut channels: Vec<ChannelConfig> = serde_json::from_str(&json).map_err(|e| {
        ConfigError::invalid(var, redacted, format!("not a JSON array of channels: {e}"))
    })?;
    let mut seen = Vec::new();
    for c in &mut channels {
        if seen.contains(&c.name()) {
            return Err(ConfigError::invalid(
                var,
                redacted,
                format!("channel {} is configured twice", c.name()),
            ));
        }
        seen.push(c.name());
        c.resolve(env).map_err(|e| {
            ConfigError::invalid(var, redacted, format!("channel {}: {e}", c.name()))
        })?;
    }
    Ok(channels)
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
    use std::collections::HashMap;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_env(&Env::from_fn(|k| map.get(k).cloned()))
    }

    #[test]
    fn the_defaults_work_with_the_local_stack() {
        let c = load(&[]).unwrap();
        assert_eq!(c.alert_max_urgency, 2);
        assert_eq!(c.alert_breaking_score, None);
        let names: Vec<_> = c.channels.iter().map(ChannelConfig::name).collect();
        assert_eq!(names, ["webhook", "in_app"]);
        assert!(matches!(&c.channels[0], ChannelConfig::Webhook(w) if !w.is_signed()));
        let signed = load(&[(NEWSROOM_WEBHOOK_SECRET, "k")]).unwrap();
        assert!(matches!(&signed.channels[0], ChannelConfig::Webhook(w) if w.is_signed()));
    }

    #[test]
    fn a_bad_value_names_its_variable_and_never_echoes_a_key() {
        for (var, value) in [
            (NEWSROOM_ALERT_MAX_URGENCY, "9"),
            (NEWSROOM_ALERT_BREAKING_SCORE, "1.5"),
            (NEWSROOM_FANOUT_CONCURRENCY, "0"),
            (NEWSROOM_FANOUT_BATCH, "0"),
            (
                NEWSROOM_CHANNELS,
                r#"[{"type": "webhook"}, {"type": "webhook"}]"#,
            ),
            (NEWSROOM_CHANNELS, r#"[{"type": "carrier_pigeon"}]"#),
            (NEWSROOM_SEGMENTS, "[1]"),
        ] {
            let err = load(&[(var, value)]).unwrap_err().to_string();
            assert!(err.starts_with(var), "{var}: {err}");
        }
        let err = load(&[(
            NEWSROOM_CHANNELS,
            r#"[{"type": "apns", "team_id": "T", "key_id": "K", "private_key": "TOP-SECRET-KEY", "topic": "x"}]"#,
        )])
        .unwrap_err()
        .to_string();
        assert!(err.contains("private_key"), "{err}");
        assert!(!err.contains("TOP-SECRET-KEY"), "{err}");
    }
}
