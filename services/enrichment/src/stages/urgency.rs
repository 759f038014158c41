//! `type = "urgency"`: the breaking score, 0..1, from three signals.
//!
//! - **Source urgency** `u`: IPTC urgency 1 (flash) → 1.0 … 8 → 0.125; not given counts as 5.
//! - **Wording** `w`: breaking markers ("breaking", "flash", "urgent", "just in") in the
//!   headline → 1; hard-news verbs and nouns ("killed", "explosion", "earthquake", "resigns")
//!   → 0.35 each in the headline, half that in the lead; capped at 1.
//! - **Velocity** `v`: how many sources reported the same event (the `dedup` stage's cluster)
//!   within `velocity_window_s` of this story: 1 source → 0, `velocity_sources` or more → 1.
//!   Counted in Redis (`enrich:velocity:<cluster>`: each source's first report time), on event
//!   time, so a replay scores what live scored.
//!
//! `score = 1 − (1 − u)(1 − wording_weight·w)(1 − velocity_weight·v)`: any strong signal alone
//! makes a story urgent, and they reinforce each other. A cancelled story scores 0. When Redis
//! does not answer, velocity counts one source (logged) rather than failing the story.

use std::sync::Arc;

use newsroom_platform::redis::RedisStore;
use newsroom_platform::redis::redis;
use newsroom_proto::v1::{Enrichment, PubStatus, Story};
use serde::Deserialize;

use super::{BuildContext, BuildError, StageParams, check_range};
use crate::stage::{DynStage, Fields, Stage, StageError, StageInput, StageOutput};
use crate::text::StoryText;

/// Params of the `urgency` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrgencyConfig {
    /// Weight (0..1) of breaking wording. Default 0.35.
    #[serde(default = "default_wording")]
    pub wording_weight: f64,
    /// Weight (0..1) of velocity. Default 0.5.
    #[serde(default = "default_velocity")]
    pub velocity_weight: f64,
    /// Window (seconds, 10..86400) in which sources count towards velocity. Default 900.
    #[serde(default = "default_window")]
    pub velocity_window_s: u64,
    /// Distinct sources (2..50) at which velocity is full. Default 3.
    #[serde(default = "default_sources")]
    pub velocity_sources: u32,
}

fn default_wording() -> f64 {
    0.35
}
fn default_velocity() -> f64 {
    0.5
}
fn default_window() -> u64 {
    900
}
fn default_sources() -> u32 {
    3
}

impl StageParams for UrgencyConfig {
    fn validate(&self) -> Result<(), String> {
        check_range("wording_weight", self.wording_weight, 0.0, 1.0)?;
        check_range("velocity_weight", self.velocity_weight, 0.0, 1.0)?;
        check_range("velocity_window_s", self.velocity_window_s, 10, 86_400)?;
        check_range("velocity_sources", self.velocity_sources, 2, 50)
    }

    fn build(&self, _name: &str, cx: &BuildContext) -> Result<DynStage, BuildError> {
        Ok(Arc::new(Urgency {
            config: self.clone(),
            redis: cx.redis.clone(),
        }))
    }
}

struct Urgency {
    config: UrgencyConfig,
    redis: Option<RedisStore>,
}

/// Markers that a story is breaking news.
const MARKERS: &[&str] = &[
    "breaking",
    "flash",
    "urgent",
    "just in",
    "alert",
    "developing",
];
/// Hard-news words.
const HARD_NEWS: &[&str] = &[
    "killed",
    "kills",
    "dead",
    "dies",
    "died",
    "explosion",
    "blast",
    "earthquake",
    "quake",
    "tsunami",
    "attack",
    "shooting",
    "gunman",
    "crash",
    "collapse",
    "evacuat",
    "resigns",
    "resignation",
    "assassinat",
    "coup",
    "invades",
    "invasion",
    "missile",
    "hostage",
    "outage",
    "emergency",
    "wildfire",
    "hurricane",
    "landslide",
];

/// The wording signal, 0..1.
pub fn wording(text: &StoryText) -> f64 {
    let headline = format!(" {} ", text.headline.to_lowercase());
    let lead = format!(" {} ", text.lead.to_lowercase());
    if MARKERS
        .iter()
        .any(|m| headline.contains(&format!(" {m}")) || headline.starts_with(&format!(" {m}:")))
    {
        return 1.0;
    }
    let hits = |s: &str| {
        HARD_NEWS
            .iter()
            .filter(|w| s.contains(&format!(" {w}")))
            .count()
    };
    (0.35 * hits(&headline) as f64 + 0.175 * hits(&lead) as f64).min(1.0)
}

/// The source urgency signal, 0..1.
pub fn urgency_signal(story: &Story) -> f64 {
    let urgency = match story.urgency {
        0 => 5,
        u => u.min(8),
    };
    f64::from(9 - urgency) / 8.0
}

/// Combines the signals.
pub fn combine(config: &UrgencyConfig, u: f64, w: f64, v: f64) -> f64 {
    (1.0 - (1.0 - u) * (1.0 - config.wording_weight * w) * (1.0 - config.velocity_weight * v))
        .clamp(0.0, 1.0)
}

#[async_trait::async_trait]
impl Stage for Urgency {
    fn reads(&self) -> Fields {
        Fields::CLUSTER
    }

    fn writes(&self) -> Fields {
        Fields::BREAKING
    }

    async fn run(&self, input: &StageInput<'_>) -> Result<StageOutput, StageError> {
        let story = input.story;
        if story.pubstatus == PubStatus::Canceled as i32 {
            return Ok(Enrichment::default().into());
        }
        // Redis is a cache that can be lost: without it velocity is unknown (one source), and
        // the story still gets its score from urgency and wording.
        // The lookup gets half of what is left of the stage's budget: a Redis that stalls
        // (connections open, nothing answered) must not make the stage itself time out.
        let budget = input
            .deadline
            .saturating_duration_since(std::time::Instant::now())
            / 2;
        let sources = match &self.redis {
            Some(redis) if !input.enrichment.cluster_id.is_empty() => {
                match tokio::time::timeout(budget, self.sources(redis, input)).await {
                    Ok(Ok(n)) => n,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "velocity unknown, counting one source");
                        1
                    }
                    Err(_) => {
                        tracing::warn!(?budget, "velocity lookup too slow, counting one source");
                        1
                    }
                }
            }
            _ => 1,
        };
        let v = f64::from(sources.saturating_sub(1)) / f64::from(self.config.velocity_sources - 1);
        let score = combine(
            &self.config,
            urgency_signal(story),
            wording(input.text),
            v.min(1.0),
        );
        let mut patch = Enrichment {
            breaking_score: score,
            ..Default::default()
        };
        patch
            .attributes
            .insert("urgency.sources".into(), sources.to_string());
        Ok(patch.into())
    }
}

impl Urgency {
    /// Distinct sources that reported this story's event within the window (itself included).
    async fn sources(&self, redis: &RedisStore, input: &StageInput<'_>) -> Result<u32, StageError> {
        let key = redis.key(format!("enrich:velocity:{}", input.enrichment.cluster_id));
        let t = newsroom_platform::time::ms_of(input.event_time).max(0) as u64;
        let w = self.config.velocity_window_s * 1000;
        let source = if input.story.source.is_empty() {
            "unknown"
        } else {
            input.story.source.as_str()
        };
        let mut conn = redis.conn();
        let mut pipe = redis::pipe();
        if input.mode.records() {
            // NX: a source's first report is what counts.
            pipe.cmd("ZADD")
                .arg(&key)
                .arg("NX")
                .arg(t)
                .arg(source)
                .ignore();
            pipe.cmd("EXPIRE")
                .arg(&key)
                .arg((self.config.velocity_window_s * 4).max(3600))
                .ignore();
        }
        pipe.cmd("ZCOUNT")
            .arg(&key)
            .arg(t.saturating_sub(w))
            .arg(t + w);
        pipe.cmd("ZSCORE").arg(&key).arg(source);
        let (count, own): (u32, Option<f64>) = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| StageError::Failed(format!("redis: {e}")))?;
        // In a preview the story itself is not recorded: count it.
        Ok(if own.is_none() {
            count + 1
        } else {
            count.max(1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> UrgencyConfig {
        toml::from_str("").unwrap()
    }

    fn text(headline: &str, lead: &str) -> StoryText {
        StoryText {
            headline: headline.into(),
            lead: lead.into(),
            ..Default::default()
        }
    }

    fn story(urgency: u32) -> Story {
        Story {
            urgency,
            ..Default::default()
        }
    }

    #[test]
    fn flash_urgency_scores_higher_than_routine() {
        let c = config();
        let flash = combine(&c, urgency_signal(&story(1)), 0.0, 0.0);
        let routine = combine(&c, urgency_signal(&story(6)), 0.0, 0.0);
        assert!(flash > 0.9 && routine < 0.5, "{flash} {routine}");
    }

    #[test]
    fn wording_and_velocity_raise_an_ordinary_story() {
        let c = config();
        let u = urgency_signal(&story(0));
        let quiet = combine(&c, u, wording(&text("Council approves budget", "")), 0.0);
        let worded = combine(
            &c,
            u,
            wording(&text("BREAKING: Explosion at chemical plant", "")),
            0.0,
        );
        let fast = combine(&c, u, 0.0, 1.0);
        assert!(worded > quiet + 0.1, "{worded} {quiet}");
        assert!(fast > quiet + 0.2, "{fast} {quiet}");
        assert!(combine(&c, u, 1.0, 1.0) > 0.8);
    }
}
