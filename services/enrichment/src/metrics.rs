//! Enrichment's own metrics: per-stage latency and failures, pipeline reloads.
//!
//! Each event type bumps its counter in the same call that logs it (the callers log), so the
//! numbers operators graph and the lines they grep never disagree.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabel {
    pub stage: String,
    /// `ok` or `error`.
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabel {
    pub stage: String,
    /// `skipped`, `dead_lettered`, or `waiting` (a `retry` stage's dependency down: the story
    /// waits for it, retried by the consumer).
    pub action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShadowLabel {
    pub stage: String,
    /// `agree`, `differ` or `failed` (the shadow stage itself failed).
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabel {
    /// `applied`, `rejected` or `unchanged`.
    pub outcome: &'static str,
}

fn stage_histogram() -> Histogram {
    // 20 µs … ~1.3 s.
    Histogram::new(exponential_buckets(0.000_02, 2.0, 17))
}

/// Stage metrics, shared by every pipeline the service builds (reloads keep the series).
#[derive(Clone)]
pub struct StageMetrics {
    duration: Family<StageLabel, Histogram>,
    failures: Family<FailureLabel, Counter>,
    reloads: Family<ReloadLabel, Counter>,
    shadows: Family<ShadowLabel, Counter>,
    stages: Gauge,
    /// Each stage's recent attempts, for `ListStages` (the console): percentiles a scrape of
    /// the histogram can only bound.
    recent: Arc<Mutex<HashMap<String, Recent>>>,
}

/// Attempts remembered per stage for its percentiles.
pub const RECENT_ATTEMPTS: usize = 1024;

/// A stage's attempts since the service started, and the durations of the latest.
#[derive(Debug, Default, Clone)]
struct Recent {
    attempts: u64,
    errors: u64,
    durations_us: VecDeque<u32>,
}

/// What `ListStages` reports of a stage's work.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct StageStats {
    pub attempts: u64,
    pub errors: u64,
    /// Stories the stage failed for good (skipped, dead-lettered or waiting).
    pub failures: u64,
    pub p50_us: u32,
    pub p99_us: u32,
}

impl Default for StageMetrics {
    fn default() -> Self {
        StageMetrics {
            duration: Family::new_with_constructor(stage_histogram),
            failures: Family::default(),
            reloads: Family::default(),
            shadows: Family::default(),
            stages: Gauge::default(),
            recent: Arc::default(),
        }
    }
}

impl StageMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = StageMetrics::default();
        registry.register(
            "newsroom_enrichment_stage_duration_seconds",
            "Time of one stage attempt, by stage and result",
            m.duration.clone(),
        );
        registry.register(
            "newsroom_enrichment_stage_failures",
            "Stories whose stage failed for good, by stage and what happened to the story",
            m.failures.clone(),
        );
        registry.register(
            "newsroom_enrichment_shadow_comparisons",
            "Stories a shadow stage ran on, by whether its findings agreed with the serving stage's",
            m.shadows.clone(),
        );
        registry.register(
            "newsroom_enrichment_pipeline_reloads",
            "Pipeline file reloads, by outcome",
            m.reloads.clone(),
        );
        registry.register(
            "newsroom_enrichment_pipeline_stages",
            "Stages in the running pipeline",
            m.stages.clone(),
        );
        m
    }

    pub fn observe(&self, stage: &str, took: std::time::Duration, ok: bool) {
        self.duration
            .get_or_create(&StageLabel {
                stage: stage.to_owned(),
                result: if ok { "ok" } else { "error" },
            })
            .observe(took.as_secs_f64());
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let r = recent.entry(stage.to_owned()).or_default();
        r.attempts += 1;
        r.errors += u64::from(!ok);
        if r.durations_us.len() == RECENT_ATTEMPTS {
            r.durations_us.pop_front();
        }
        r.durations_us
            .push_back(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
    }

    /// A stage's attempts, errors and failures since the service started, and the p50 and p99
    /// of its last [`RECENT_ATTEMPTS`] attempts.
    pub fn stats(&self, stage: &str) -> StageStats {
        let failures = Self::ACTIONS
            .iter()
            .map(|action| {
                self.failures
                    .get_or_create(&FailureLabel {
                        stage: stage.to_owned(),
                        action,
                    })
                    .get()
            })
            .sum();
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let Some(r) = recent.get(stage) else {
            return StageStats {
                failures,
                ..StageStats::default()
            };
        };
        let mut sorted: Vec<u32> = r.durations_us.iter().copied().collect();
        sorted.sort_unstable();
        let at = |q: f64| {
            sorted
                .get(((sorted.len() as f64 * q).ceil() as usize).saturating_sub(1))
                .copied()
                .unwrap_or(0)
        };
        StageStats {
            attempts: r.attempts,
            errors: r.errors,
            failures,
            p50_us: at(0.50),
            p99_us: at(0.99),
        }
    }

    /// A shadow stage's comparison on one story.
    pub fn shadow(&self, stage: &str, result: &'static str) {
        self.shadows
            .get_or_create(&ShadowLabel {
                stage: stage.to_owned(),
                result,
            })
            .inc();
    }

    /// A shadow stage's comparisons so far: (agreed, differed, failed).
    pub fn shadow_counts(&self, stage: &str) -> (u64, u64, u64) {
        let n = |result| {
            self.shadows
                .get_or_create(&ShadowLabel {
                    stage: stage.to_owned(),
                    result,
                })
                .get()
        };
        (n("agree"), n("differ"), n("failed"))
    }

    /// Reloads applied and rejected since the service started (the first load, which the
    /// `applied` series counts, is not a reload).
    pub fn reloads(&self) -> (u64, u64) {
        let n = |outcome| self.reloads.get_or_create(&ReloadLabel { outcome }).get();
        (n("applied").saturating_sub(1), n("rejected"))
    }

    /// What a stage's failure can lead to (the `action` label).
    pub const ACTIONS: [&'static str; 3] = ["skipped", "dead_lettered", "waiting"];

    /// Declares a stage's series at 0 when a pipeline with it is built: the failure panels
    /// show "none" for a healthy stage instead of "no data".
    pub fn declare(&self, stage: &str) {
        for action in Self::ACTIONS {
            let _ = self.failures.get_or_create(&FailureLabel {
                stage: stage.to_owned(),
                action,
            });
        }
    }

    pub fn failed(&self, stage: &str, action: &'static str) {
        self.failures
            .get_or_create(&FailureLabel {
                stage: stage.to_owned(),
                action,
            })
            .inc();
    }

    pub fn reloaded(&self, outcome: &'static str, stages: usize) {
        self.reloads.get_or_create(&ReloadLabel { outcome }).inc();
        if outcome == "applied" {
            self.stages.set(stages as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_stage_reports_its_attempts_failures_and_percentiles() {
        let m = StageMetrics::default();
        for us in 1..=100u64 {
            m.observe("topics", Duration::from_micros(us), us != 100);
        }
        m.failed("topics", "skipped");
        let s = m.stats("topics");
        assert_eq!((s.attempts, s.errors, s.failures), (100, 1, 1));
        assert_eq!((s.p50_us, s.p99_us), (50, 99));
        assert_eq!(m.stats("unknown"), StageStats::default());
        m.reloaded("applied", 3);
        m.reloaded("rejected", 0);
        m.reloaded("applied", 3);
        // The first load is not a reload.
        assert_eq!(m.reloads(), (1, 1));
    }
}
