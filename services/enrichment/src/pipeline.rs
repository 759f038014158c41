//! The pipeline: built stages in order, grouped into waves that run concurrently.
//!
//! [`Pipeline::build`] turns a validated pipeline file into stages and works out the order:
//! a stage runs after every earlier stage that writes a field it reads or writes (and after
//! the stages in its `after`). Its wave is one more than the latest wave it depends on; the
//! stages of one wave run concurrently on the same snapshot of the enrichment, and their
//! findings are merged in file order, so the result is the same as running the file top to
//! bottom.
//!
//! Each stage attempt has the stage's `timeout_ms`; a failure (error, timeout, open circuit)
//! follows `on_error`: `skip` records the stage as skipped and goes on, `retry` tries again
//! with backoff and, when every attempt failed, fails the story, as `dead-letter` does at once.
//! A failed story is a [`PipelineError`] naming the stage; the consumer dead-letters it with
//! that name in the headers.
//!
//! A `Pipeline` is immutable; hot reload builds a new one and swaps it in ([`crate::reload`]).

use backon::{BackoffBuilder as _, ExponentialBuilder};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use newsroom_proto::v1::{EnrichedStory, Enrichment, StageOutcome, StageRun, Story, StoryEvent};
use sha2::Digest as _;
use tracing::Instrument as _;

use crate::metrics::StageMetrics;
use crate::spec::{self, OnError, SpecError, StageSpec};
use crate::stage::{self, DynStage, Mode, StageError, StageInput};
use crate::stages::BuildContext;
use crate::text::StoryText;

/// The pipeline used when `NEWSROOM_PIPELINE_FILE` is not set.
pub const DEFAULT_PIPELINE: &str = include_str!("../pipeline.default.toml");

/// A stage with its place in the pipeline.
pub struct PlannedStage {
    pub spec: StageSpec,
    pub stage: DynStage,
    /// Names of the stages it runs after.
    pub after: Vec<String>,
    pub wave: usize,
}

/// A pipeline that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("stage {name:?}: {reason}")]
    Stage { name: String, reason: String },
}

/// A story the pipeline could not enrich: which stage, why, after how many attempts.
#[derive(Debug, Clone, thiserror::Error)]
#[error("stage {stage:?} failed after {attempts} attempt(s): {error}")]
pub struct PipelineError {
    pub stage: String,
    pub error: StageError,
    pub attempts: u32,
}

impl PipelineError {
    /// Whether the failure is an outage the story should wait out rather than be
    /// dead-lettered for: a stage with `on_error = "retry"` whose dependency failed or is known
    /// to be down (Redis, a remote stage). An invalid story, or a stage past its timeout on
    /// every attempt, still goes to the DLQ; so does any failure of a `dead-letter` stage.
    pub fn is_outage(&self, on_error: OnError) -> bool {
        on_error == OnError::Retry
            && matches!(
                self.error,
                StageError::Failed(_) | StageError::Unavailable(_)
            )
    }
}

/// An immutable, built pipeline.
pub struct Pipeline {
    /// Short hash of the definition (`Enrichment.pipeline_id`).
    pub id: String,
    /// Names of the stages a shadow stage is compared with.
    shadowed: std::collections::HashSet<String>,
    /// Where the definition came from (a path, or "built-in default").
    pub source: String,
    pub stages: Vec<PlannedStage>,
    waves: Vec<Vec<usize>>,
    metrics: StageMetrics,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("id", &self.id)
            .field("source", &self.source)
            .field(
                "stages",
                &self.stages.iter().map(|s| &s.spec.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Pipeline {
    /// The `on_error` of the stage named `stage` (`dead-letter` for a name it does not have).
    pub fn on_error_of(&self, stage: &str) -> OnError {
        self.stages
            .iter()
            .find(|p| p.spec.name == stage)
            .map_or(OnError::DeadLetter, |p| p.spec.on_error)
    }

    /// Parses, validates and builds a pipeline definition.
    pub fn build(
        text: &str,
        source: &str,
        cx: &BuildContext,
        metrics: StageMetrics,
    ) -> Result<Pipeline, BuildError> {
        let specs = spec::parse(text)?;
        // The definition and what it loads from elsewhere (a `wasm` stage's component): a
        // changed module is a new pipeline, which a reload swaps in.
        let mut digest = sha2::Sha256::new();
        digest.update(text.as_bytes());
        let mut stages: Vec<PlannedStage> = Vec::with_capacity(specs.len());
        for spec in specs {
            let stage = spec
                .config
                .build(&spec.name, cx)
                .map_err(|e| BuildError::Stage {
                    name: spec.name.clone(),
                    reason: e.0,
                })?;
            let needs = stage.reads().union(stage.writes());
            let mut after: Vec<String> = Vec::new();
            for earlier in &stages {
                if earlier.stage.writes().intersects(needs)
                    || spec.after.contains(&earlier.spec.name)
                {
                    after.push(earlier.spec.name.clone());
                }
            }
            let wave = stages
                .iter()
                .filter(|e| after.contains(&e.spec.name))
                .map(|e| e.wave + 1)
                .max()
                .unwrap_or(0);
            stages.push(PlannedStage {
                spec,
                stage,
                after,
                wave,
            });
        }
        for s in &stages {
            metrics.declare(&s.spec.name);
            if let Some(f) = s.stage.fingerprint() {
                digest.update(s.spec.name.as_bytes());
                digest.update(f.as_bytes());
            }
        }
        let id = hex::encode(&digest.finalize()[..6]);
        let n_waves = stages.iter().map(|s| s.wave + 1).max().unwrap_or(0);
        let waves = (0..n_waves)
            .map(|w| {
                stages
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.wave == w)
                    .map(|(i, _)| i)
                    .collect()
            })
            .collect();
        let shadowed = stages
            .iter()
            .filter_map(|s| s.spec.shadows.clone())
            .collect();
        Ok(Pipeline {
            id,
            shadowed,
            source: source.to_owned(),
            stages,
            waves,
            metrics,
        })
    }

    /// The default pipeline (tools and tests).
    pub fn default_pipeline(cx: &BuildContext) -> Pipeline {
        Pipeline::build(
            DEFAULT_PIPELINE,
            "built-in default",
            cx,
            StageMetrics::default(),
        )
        .expect("the built-in default pipeline builds")
    }

    /// Enriches a `stories.raw` event into a `stories.enriched` record.
    pub async fn enrich_event(
        &self,
        event: StoryEvent,
        mode: Mode,
    ) -> Result<EnrichedStory, PipelineError> {
        let story = event.story.unwrap_or_default();
        let event_time = event
            .accepted_at
            .and_then(|t| SystemTime::try_from(t).ok())
            .unwrap_or_else(SystemTime::now);
        let enrichment = self.enrich(&story, mode, event_time).await?;
        Ok(EnrichedStory {
            enrichment: Some(enrichment),
            story: Some(story),
            accepted_at: event.accepted_at,
        })
    }

    /// What the pipeline finds in one story.
    pub async fn enrich(
        &self,
        story: &Story,
        mode: Mode,
        event_time: SystemTime,
    ) -> Result<Enrichment, PipelineError> {
        let text = StoryText::new(story);
        let mut enrichment = Enrichment::default();
        let mut runs: HashMap<usize, StageRun> = HashMap::new();
        // Shadow stages' results, and the findings of the stages they shadow.
        let mut shadows: Vec<(usize, Result<Enrichment, PipelineError>)> = Vec::new();
        let mut served: HashMap<String, Enrichment> = HashMap::new();
        for wave in &self.waves {
            let snapshot = enrichment.clone();
            let results = futures::future::join_all(wave.iter().map(|&i| {
                let planned = &self.stages[i];
                let input_parts = (story, &text, &snapshot, mode, event_time);
                async move { (i, self.run_stage(planned, input_parts).await) }
            }))
            .await;
            // Merge in file order (join_all keeps the wave's order, which is file order). A
            // shadow stage's findings are kept aside, never merged: compared below.
            for (i, result) in results {
                let spec = &self.stages[i].spec;
                if spec.shadows.is_some() {
                    shadows.push((i, result.map(|(patch, _)| patch.unwrap_or_default())));
                    continue;
                }
                match result {
                    Ok((patch, run)) => {
                        if let Some(p) = patch {
                            if self.shadowed.contains(&spec.name) {
                                served.insert(spec.name.clone(), p.clone());
                            }
                            stage::merge(&mut enrichment, p);
                        }
                        runs.insert(i, run);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        for (i, result) in shadows {
            self.compare_shadow(story, &self.stages[i].spec, result, &served);
        }
        enrichment.stage_runs = (0..self.stages.len())
            .filter_map(|i| runs.remove(&i))
            .collect();
        enrichment.pipeline_id = self.id.clone();
        Ok(enrichment)
    }

    /// Compares a shadow stage's findings on `story` with those of the stage it shadows: the
    /// agreement as a metric, a difference as a log line in the story's trace. Its own failure
    /// is counted, never the story's.
    fn compare_shadow(
        &self,
        story: &Story,
        spec: &StageSpec,
        result: Result<Enrichment, PipelineError>,
        served: &HashMap<String, Enrichment>,
    ) {
        let Some(target) = spec.shadows.as_deref() else {
            return;
        };
        let shadow = match result {
            Ok(p) => p,
            Err(e) => {
                self.metrics.shadow(&spec.name, "failed");
                tracing::info!(story.id = %story.id, shadow = %spec.name, serving = target, error = %e, "shadow stage failed");
                return;
            }
        };
        let serving = served.get(target).cloned().unwrap_or_default();
        let differences = shadow_differences(&shadow, &spec.name, &serving, target);
        if differences.is_empty() {
            self.metrics.shadow(&spec.name, "agree");
        } else {
            self.metrics.shadow(&spec.name, "differ");
            tracing::info!(story.id = %story.id, shadow = %spec.name, serving = target, differences = %differences.join("; "), "shadow stage differs");
        }
    }

    /// Runs one stage with its timeout, attempts and `on_error`.
    async fn run_stage(
        &self,
        planned: &PlannedStage,
        (story, text, snapshot, mode, event_time): (
            &Story,
            &StoryText,
            &Enrichment,
            Mode,
            SystemTime,
        ),
    ) -> Result<(Option<Enrichment>, StageRun), PipelineError> {
        let spec = &planned.spec;
        let name = spec.name.clone();
        let started = Instant::now();
        if !planned.stage.enabled() {
            return Ok((
                None,
                StageRun {
                    name,
                    outcome: StageOutcome::Disabled as i32,
                    ..Default::default()
                },
            ));
        }
        let timeout = Duration::from_millis(spec.timeout_ms);
        // `retry_backoff_ms`, then doubling, between at most `attempts` attempts.
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(spec.retry_backoff_ms))
            .with_max_times(spec.attempts.saturating_sub(1) as usize)
            .build();
        let mut attempt = 0;
        let error = loop {
            attempt += 1;
            let attempt_started = Instant::now();
            let input = StageInput {
                story,
                text,
                enrichment: snapshot,
                mode,
                event_time,
                deadline: attempt_started + timeout,
            };
            // One span per stage attempt, a child of the record's consumer span, so the trace
            // shows where enrichment spent its time (a remote stage's client span nests in it).
            let span = tracing::info_span!(
                "stage",
                otel.name = %format!("stage {name}"),
                newsroom.stage = %name,
                newsroom.stage.attempt = attempt,
            );
            let result = match tokio::time::timeout(timeout, planned.stage.run(&input))
                .instrument(span)
                .await
            {
                // A stage that computes past its budget without yielding is late all the same,
                // and one that failed because its budget ran out (a remote's gRPC deadline) timed
                // out.
                Ok(r)
                    if matches!(r, Err(StageError::Timeout(_)))
                        || (attempt_started.elapsed() >= timeout
                            && !matches!(r, Err(StageError::Invalid(_)))) =>
                {
                    Err(StageError::Timeout(spec.timeout_ms))
                }
                Ok(r) => r,
                Err(_) => Err(StageError::Timeout(spec.timeout_ms)),
            };
            self.metrics
                .observe(&name, attempt_started.elapsed(), result.is_ok());
            match result {
                Ok(out) => {
                    return Ok((
                        Some(out.patch),
                        StageRun {
                            name,
                            outcome: if out.reused {
                                StageOutcome::Reused
                            } else {
                                StageOutcome::Ok
                            } as i32,
                            error: String::new(),
                            duration_us: micros(started.elapsed()),
                            attempts: attempt,
                        },
                    ));
                }
                Err(e) => {
                    // An invalid story fails every attempt alike: no retry.
                    let delay = match e {
                        StageError::Invalid(_) => None,
                        _ => delays.next(),
                    };
                    let Some(delay) = delay else {
                        break e;
                    };
                    tracing::warn!(stage = %name, attempt, error = %e, "stage failed, retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        };
        match spec.on_error {
            OnError::Skip => {
                self.metrics.failed(&name, "skipped");
                tracing::warn!(stage = %name, story.id = %story.id, error = %error, "stage failed, skipped");
                Ok((
                    None,
                    StageRun {
                        name,
                        outcome: StageOutcome::Skipped as i32,
                        error: error.to_string(),
                        duration_us: micros(started.elapsed()),
                        attempts: attempt,
                    },
                ))
            }
            OnError::Retry | OnError::DeadLetter => {
                let error = PipelineError {
                    stage: name,
                    error,
                    attempts: attempt,
                };
                let outcome = if error.is_outage(spec.on_error) {
                    "waiting"
                } else {
                    "dead_lettered"
                };
                self.metrics.failed(&error.stage, outcome);
                Err(error)
            }
        }
    }
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// The running pipeline, shared by the consumer and the API and swapped by reload.
pub type SharedPipeline = Arc<arc_swap::ArcSwap<Pipeline>>;

/// What differs between a shadow stage's findings and the serving stage's, with the shadow's
/// attributes read under the serving stage's prefix (`<shadow>.x` as `<serving>.x`).
fn shadow_differences(
    shadow: &Enrichment,
    shadow_name: &str,
    serving: &Enrichment,
    serving_name: &str,
) -> Vec<String> {
    let strip = |e: &Enrichment, prefix: &str| -> std::collections::BTreeMap<String, String> {
        e.attributes
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(prefix)
                    .and_then(|k| k.strip_prefix('.'))
                    .map(|k| (k.to_owned(), v.clone()))
            })
            .collect()
    };
    let (a, b) = (strip(shadow, shadow_name), strip(serving, serving_name));
    let mut out: Vec<String> = a
        .keys()
        .chain(b.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            format!(
                "{k}: {:?} (serving) vs {:?} (shadow)",
                b.get(k).map(String::as_str).unwrap_or("-"),
                a.get(k).map(String::as_str).unwrap_or("-")
            )
        })
        .collect();
    let (mut x, mut y) = (shadow.clone(), serving.clone());
    x.attributes.clear();
    y.attributes.clear();
    if x != y {
        out.push("findings other than attributes differ".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::{Fields, Stage, StageOutput};
    use newsroom_proto::v1::EntityKind;

    fn cx() -> BuildContext {
        BuildContext {
            words_per_minute: 230,
            ..Default::default()
        }
    }

    fn build(text: &str) -> Pipeline {
        Pipeline::build(text, "test", &cx(), StageMetrics::default()).unwrap()
    }

    fn story() -> Story {
        Story {
            id: "s1".into(),
            source: "wire".into(),
            headline: "Chancellor Olaf Scholz meets Siemens bosses in Berlin".into(),
            body_html: "<p>German Chancellor Olaf Scholz met executives of Siemens AG in Berlin on Monday to discuss energy prices, the government said.</p>\
                        <p>Scholz told reporters that industry needed cheaper electricity.</p>"
                .into(),
            urgency: 3,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn the_default_pipeline_fills_every_field_it_promises() {
        let p = Pipeline::default_pipeline(&cx());
        let e = p
            .enrich(&story(), Mode::Preview, SystemTime::now())
            .await
            .unwrap();
        assert_eq!(e.language, "en");
        assert!(e.word_count > 30);
        assert!(e.reading_time_seconds > 0);
        assert!(!e.topics.is_empty());
        assert!(!e.keywords.is_empty());
        assert!(e.summary.starts_with("German Chancellor"), "{}", e.summary);
        assert!(e.breaking_score > 0.0);
        assert_eq!(e.cluster_id, "c-s1");
        let scholz = e.entities.iter().find(|x| x.name == "Olaf Scholz").unwrap();
        assert_eq!(scholz.kind(), EntityKind::Person);
        assert_eq!(e.pipeline_id, p.id);
        assert_eq!(e.stage_runs.len(), p.stages.len());
        let embedding = e.stage_runs.iter().find(|r| r.name == "embedding").unwrap();
        assert_eq!(embedding.outcome(), StageOutcome::Disabled);
    }

    #[test]
    fn independent_stages_share_a_wave_and_readers_wait_for_writers() {
        let p = Pipeline::default_pipeline(&cx());
        let wave = |n: &str| p.stages.iter().find(|s| s.spec.name == n).unwrap().wave;
        assert_eq!(wave("language"), 0);
        assert_eq!(wave("embedding"), 0);
        assert_eq!(wave("entities"), 0);
        assert_eq!(wave("topics"), 1, "topics read the embedding");
        let topics = p.stages.iter().find(|s| s.spec.name == "topics").unwrap();
        assert_eq!(topics.after, ["embedding"]);
        assert!(wave("urgency") > wave("dedup"), "urgency reads the cluster");
        let urgency = p.stages.iter().find(|s| s.spec.name == "urgency").unwrap();
        assert_eq!(urgency.after, ["dedup"]);
    }

    /// A stage that sleeps or fails, to exercise the executor.
    struct Flaky {
        sleep: Duration,
        fail_times: std::sync::atomic::AtomicU32,
    }

    #[async_trait::async_trait]
    impl Stage for Flaky {
        fn writes(&self) -> Fields {
            Fields::ATTRIBUTES
        }
        async fn run(&self, _i: &StageInput<'_>) -> Result<StageOutput, StageError> {
            tokio::time::sleep(self.sleep).await;
            if self
                .fail_times
                .fetch_update(
                    std::sync::atomic::Ordering::SeqCst,
                    std::sync::atomic::Ordering::SeqCst,
                    |n| n.checked_sub(1),
                )
                .is_ok()
            {
                return Err(StageError::Failed("boom".into()));
            }
            let mut e = Enrichment::default();
            e.attributes.insert("flaky.ok".into(), "yes".into());
            Ok(e.into())
        }
    }

    fn with_flaky(on_error: &str, timeout_ms: u64, sleep_ms: u64, fails: u32) -> Pipeline {
        let attempts = if on_error == "retry" {
            "attempts = 3\n"
        } else {
            ""
        };
        let mut p = build(&format!(
            "[[stage]]\nname = \"language\"\ntype = \"language\"\n\
             [[stage]]\nname = \"flaky\"\ntype = \"keywords\"\ntimeout_ms = {timeout_ms}\non_error = \"{on_error}\"\n{attempts}retry_backoff_ms = 1\n"
        ));
        p.stages[1].stage = Arc::new(Flaky {
            sleep: Duration::from_millis(sleep_ms),
            fail_times: fails.into(),
        });
        p
    }

    #[tokio::test]
    async fn a_slow_stage_times_out_and_is_skipped() {
        let p = with_flaky("skip", 20, 200, 0);
        let started = Instant::now();
        let e = p
            .enrich(&story(), Mode::Live, SystemTime::now())
            .await
            .unwrap();
        assert!(started.elapsed() < Duration::from_millis(150));
        assert_eq!(e.language, "en", "the other stages' findings are kept");
        let run = &e.stage_runs[1];
        assert_eq!(run.outcome(), StageOutcome::Skipped);
        assert_eq!(run.error, "timed out after 20 ms");
    }

    #[tokio::test]
    async fn retry_tries_again_and_then_dead_letters() {
        let p = with_flaky("retry", 1000, 0, 2);
        let e = p
            .enrich(&story(), Mode::Live, SystemTime::now())
            .await
            .unwrap();
        assert_eq!(e.stage_runs[1].attempts, 3);
        assert_eq!(e.attributes["flaky.ok"], "yes");

        let p = with_flaky("retry", 1000, 0, 5);
        let err = p
            .enrich(&story(), Mode::Live, SystemTime::now())
            .await
            .unwrap_err();
        assert_eq!((err.stage.as_str(), err.attempts), ("flaky", 3));
        assert!(err.to_string().contains("boom"), "{err}");
        // A failed dependency of a `retry` stage is an outage: the story waits, no DLQ.
        assert!(err.is_outage(p.on_error_of("flaky")));
        // Past its timeout on every attempt, it is the story's: DLQ.
        let p = with_flaky("retry", 20, 100, 0);
        let err = p
            .enrich(&story(), Mode::Live, SystemTime::now())
            .await
            .unwrap_err();
        assert!(!err.is_outage(p.on_error_of("flaky")), "{err}");
    }

    #[tokio::test]
    async fn dead_letter_fails_the_story_at_once() {
        let p = with_flaky("dead-letter", 1000, 0, 1);
        let err = p
            .enrich(&story(), Mode::Live, SystemTime::now())
            .await
            .unwrap_err();
        assert_eq!((err.stage.as_str(), err.attempts), ("flaky", 1));
        assert!(
            !err.is_outage(p.on_error_of("flaky")),
            "dead-letter means the DLQ, whatever failed"
        );
    }
}
