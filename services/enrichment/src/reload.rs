//! Hot reload: the pipeline file is read again on SIGHUP and when it changes on disk.
//!
//! A reload parses, validates and builds the whole new pipeline first; only a pipeline that
//! built is swapped in, with one atomic pointer store (`arc-swap`). A bad file is rejected with
//! an error naming the file and the problem, and the running pipeline stays. Each story loads
//! the pipeline once and runs entirely on it, so no story is ever enriched half by the old
//! pipeline and half by the new (its `pipeline_id` says which).
//!
//! The watcher follows the file's folder rather than the file: editors save by renaming a new
//! file over the old one, and Kubernetes updates a mounted ConfigMap by swapping a `..data`
//! symlink; both replace the inode a file watch would follow. Bursts of events are coalesced
//! (100 ms), and a file whose content did not change is not rebuilt.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::Watcher as _;

use crate::metrics::StageMetrics;
use crate::pipeline::{BuildError, DEFAULT_PIPELINE, Pipeline, SharedPipeline};
use crate::stages::BuildContext;
use newsroom_platform::shutdown::Shutdown;

/// A reload that was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("cannot read the pipeline file {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("pipeline file {path} rejected: {error}")]
    Invalid { path: String, error: BuildError },
}

/// Where the pipeline comes from, and the running one.
pub struct Reloader {
    path: Option<PathBuf>,
    /// Behind a lock only because Redis may arrive late ([`Reloader::set_redis`]).
    cx: std::sync::Mutex<BuildContext>,
    metrics: StageMetrics,
    current: SharedPipeline,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// A new pipeline runs (its id).
    Applied(String),
    /// The file's content is what already runs.
    Unchanged,
}

impl Reloader {
    /// Builds the first pipeline: from `path`, or the built-in default when `None`.
    pub fn start(
        path: Option<PathBuf>,
        cx: BuildContext,
        metrics: StageMetrics,
    ) -> Result<Arc<Reloader>, ReloadError> {
        let pipeline = build(path.as_ref(), &cx, &metrics)?;
        metrics.reloaded("applied", pipeline.stages.len());
        tracing::info!(
            pipeline = %pipeline.id,
            source = %pipeline.source,
            stages = ?pipeline.stages.iter().map(|s| s.spec.name.as_str()).collect::<Vec<_>>(),
            "pipeline loaded"
        );
        Ok(Arc::new(Reloader {
            path,
            cx: std::sync::Mutex::new(cx),
            metrics,
            current: Arc::new(ArcSwap::from_pointee(pipeline)),
        }))
    }

    /// The running pipeline (shared with the consumer and the API).
    pub fn shared(&self) -> SharedPipeline {
        self.current.clone()
    }

    /// Reads the file again and swaps the new pipeline in if it builds.
    pub fn reload(&self, why: &str) -> Result<Reloaded, ReloadError> {
        let Some(path) = &self.path else {
            return Ok(Reloaded::Unchanged);
        };
        let result = build(Some(path), &self.context(), &self.metrics);
        match result {
            Ok(p) if p.id == self.current.load().id => {
                self.metrics.reloaded("unchanged", p.stages.len());
                Ok(Reloaded::Unchanged)
            }
            Ok(p) => {
                let id = p.id.clone();
                tracing::info!(
                    reason = why,
                    pipeline = %id,
                    previous = %self.current.load().id,
                    stages = ?p.stages.iter().map(|s| s.spec.name.as_str()).collect::<Vec<_>>(),
                    "pipeline reloaded"
                );
                self.metrics.reloaded("applied", p.stages.len());
                // The swap: stories already running keep the Arc of the old pipeline.
                self.current.store(Arc::new(p));
                Ok(Reloaded::Applied(id))
            }
            Err(e) => {
                self.metrics.reloaded("rejected", 0);
                tracing::error!(
                    reason = why,
                    error = %e,
                    keeping = %self.current.load().id,
                    "pipeline reload rejected; the running pipeline stays"
                );
                Err(e)
            }
        }
    }

    fn context(&self) -> BuildContext {
        self.cx.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Redis, once it answered (at start-up or since).
    pub fn redis(&self) -> Option<newsroom_platform::redis::RedisStore> {
        self.cx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .redis
            .clone()
    }

    /// Gives the stages Redis once it answers (it did not at start-up) and rebuilds the
    /// running pipeline with it.
    pub fn set_redis(&self, redis: newsroom_platform::redis::RedisStore) {
        self.cx.lock().unwrap_or_else(|p| p.into_inner()).redis = Some(redis);
        match build(self.path.as_ref(), &self.context(), &self.metrics) {
            Ok(p) => {
                tracing::info!(pipeline = %p.id, "Redis is back: stateful stages remember again");
                self.current.store(Arc::new(p));
            }
            Err(e) => {
                tracing::error!(error = %e, "rebuild with Redis failed; keeping the pipeline")
            }
        }
    }

    /// Reloads on SIGHUP and on changes of the file, until shutdown.
    pub fn watch(self: &Arc<Self>, shutdown: &Shutdown) {
        let Some(path) = self.path.clone() else {
            return;
        };
        // SIGHUP.
        let me = self.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                tracing::warn!("cannot listen for SIGHUP; reload on file change only");
                return;
            };
            loop {
                tokio::select! {
                    _ = stop.requested() => break,
                    _ = hup.recv() => { let _ = me.reload("SIGHUP"); }
                }
            }
        });

        // File changes: watch the folder, react to events naming the file or `..data`.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let file_name = path.file_name().map(|n| n.to_owned());
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event {
                let relevant = event.paths.iter().any(|p| {
                    p.file_name() == file_name.as_deref()
                        || p.file_name().is_some_and(|n| n == "..data")
                });
                if relevant && !event.kind.is_access() {
                    let _ = tx.send(());
                }
            }
        });
        let mut watcher = match watcher {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the pipeline file; reload on SIGHUP only");
                return;
            }
        };
        if let Err(e) = watcher.watch(&dir, notify::RecursiveMode::NonRecursive) {
            tracing::warn!(error = %e, dir = %dir.display(), "cannot watch the pipeline folder; reload on SIGHUP only");
            return;
        }
        let me = self.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            // The watcher lives as long as this task.
            let _watcher = watcher;
            loop {
                tokio::select! {
                    _ = stop.requested() => break,
                    got = rx.recv() => {
                        if got.is_none() { break; }
                        // Coalesce a burst (write + rename + chmod) into one reload.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        while rx.try_recv().is_ok() {}
                        let _ = me.reload("file changed");
                    }
                }
            }
        });
    }
}

fn build(
    path: Option<&PathBuf>,
    cx: &BuildContext,
    metrics: &StageMetrics,
) -> Result<Pipeline, ReloadError> {
    let (text, source) = match path {
        None => (DEFAULT_PIPELINE.to_owned(), "built-in default".to_owned()),
        Some(p) => (
            std::fs::read_to_string(p).map_err(|error| ReloadError::Read {
                path: p.display().to_string(),
                error,
            })?,
            p.display().to_string(),
        ),
    };
    let mut cx = cx.clone();
    if let Some(dir) = path.and_then(|p| p.parent()) {
        cx.base_dir = dir.to_path_buf();
    }
    Pipeline::build(&text, &source, &cx, metrics.clone()).map_err(|error| ReloadError::Invalid {
        path: source,
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = "[[stage]]\nname = \"language\"\ntype = \"language\"\n";
    const TWO: &str = "[[stage]]\nname = \"language\"\ntype = \"language\"\n[[stage]]\nname = \"counts\"\ntype = \"counts\"\n";

    fn temp_file(text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "newsroom-reload-{}-{}",
            std::process::id(),
            crate::hash::fnv1a(format!("{:?}", std::time::Instant::now()).as_bytes())
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pipeline.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_good_file_is_swapped_in_and_a_bad_one_rejected_keeping_the_old() {
        let path = temp_file(ONE);
        let r = Reloader::start(
            Some(path.clone()),
            BuildContext::default(),
            StageMetrics::default(),
        )
        .unwrap();
        let shared = r.shared();
        let first = shared.load_full();
        assert_eq!(first.stages.len(), 1);
        assert_eq!(r.reload("test").unwrap(), Reloaded::Unchanged);

        std::fs::write(&path, TWO).unwrap();
        assert!(matches!(r.reload("test").unwrap(), Reloaded::Applied(_)));
        assert_eq!(shared.load().stages.len(), 2);
        // A story that loaded the old pipeline still holds all of it.
        assert_eq!(first.stages.len(), 1);

        std::fs::write(&path, "[[stage]]\nname = \"x\"\ntype = \"no-such-stage\"\n").unwrap();
        let err = r.reload("test").unwrap_err().to_string();
        assert!(
            err.contains("rejected") && err.contains("no-such-stage"),
            "{err}"
        );
        assert_eq!(shared.load().stages.len(), 2, "the running pipeline stays");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_story_runs_whole_on_one_pipeline_while_reloads_swap_it() {
        let path = temp_file(ONE);
        let r = Reloader::start(
            Some(path.clone()),
            BuildContext::default(),
            StageMetrics::default(),
        )
        .unwrap();
        let shared = r.shared();
        let story = newsroom_proto::v1::Story {
            id: "s".into(),
            headline: "Parliament votes on the budget".into(),
            body_html: "<p>Members of parliament voted on the budget on Tuesday.</p>".into(),
            ..Default::default()
        };
        let stories = tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..300 {
                // As the consumer does: load once, run the whole story on it.
                let p = shared.load_full();
                let e = p
                    .enrich(
                        &story,
                        crate::stage::Mode::Preview,
                        std::time::SystemTime::now(),
                    )
                    .await
                    .unwrap();
                seen.push((e.pipeline_id, e.stage_runs.len()));
                tokio::task::yield_now().await;
            }
            seen
        });
        for i in 0..60 {
            std::fs::write(&path, if i % 2 == 0 { TWO } else { ONE }).unwrap();
            r.reload("test").unwrap();
            tokio::task::yield_now().await;
        }
        let seen = stories.await.unwrap();
        let ids: std::collections::HashMap<String, usize> = [ONE, TWO]
            .iter()
            .map(|t| {
                let p = Pipeline::build(t, "t", &BuildContext::default(), StageMetrics::default())
                    .unwrap();
                (p.id.clone(), p.stages.len())
            })
            .collect();
        for (id, runs) in &seen {
            assert_eq!(
                ids[id], *runs,
                "a story ran on pipeline {id} with {runs} stages"
            );
        }
        let distinct: std::collections::HashSet<&String> = seen.iter().map(|(id, _)| id).collect();
        assert_eq!(distinct.len(), 2, "the swaps happened while stories ran");
    }

    #[tokio::test]
    async fn a_change_on_disk_is_picked_up_without_a_signal() {
        let path = temp_file(ONE);
        let r = Reloader::start(
            Some(path.clone()),
            BuildContext::default(),
            StageMetrics::default(),
        )
        .unwrap();
        let shutdown = Shutdown::new();
        r.watch(&shutdown);
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Replace it the way editors do: write a new file, rename it over the old one.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, TWO).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        let shared = r.shared();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while shared.load().stages.len() != 2 {
            assert!(std::time::Instant::now() < deadline, "no reload within 5 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        shutdown.trigger();
    }
}
