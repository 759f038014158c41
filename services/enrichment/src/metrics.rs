//! Enrichment's own metrics: per-stage latency and failures, pipeline reloads.
//!
//! Each event type bumps its counter in the same call that logs it (the callers log), so the
//! numbers operators graph and the lines they grep never disagree.

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
    stages: Gauge,
}

impl Default for StageMetrics {
    fn default() -> Self {
        StageMetrics {
            duration: Family::new_with_constructor(stage_histogram),
            failures: Family::default(),
            reloads: Family::default(),
            stages: Gauge::default(),
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
