//! `type = "wasm"`: a stage written in any language that compiles to a WebAssembly component
//! of the world `newsroom:stage/stage@0.1.0` (`wit/newsroom-stage.wit`): Python with
//! componentize-py, JavaScript with componentize-js, Go through the preview1 adapter — see
//! `examples/stages/`. Run in-process by Wasmtime, sandboxed:
//!
//! - **Nothing but its inputs.** The component gets the story (plain text), what earlier stages
//!   found, its `config` from the pipeline file and the time the host passes in; its only
//!   imports are `log` (an event on the stage's span, in the story's trace) and a key-value
//!   cache private to the stage. No WASI: no filesystem, network, clock or randomness — a
//!   component that imports anything else does not link, and the pipeline does not build.
//! - **Time capped.** Epoch interruption: the engine's epoch ticks every [`TICK`]; a call may
//!   run until the stage's deadline (`timeout_ms`), then it traps, the instance is dropped and
//!   the stage's `on_error` applies — a guest stuck in a loop is stopped, the thread freed.
//! - **Memory capped.** Each instance's linear memories are limited to `max_memory_mib`; a
//!   `memory.grow` past it fails (the guest sees out-of-memory, most runtimes then trap), the
//!   failure names the cap, and the instance is dropped.
//! - **Declared writes only.** The manifest (`manifest()`, read when the stage is built) names
//!   the fields the stage writes; an answer with another field fails the story in this stage
//!   (`on_error`), nothing of it is merged. Findings become attributes `<stage>.<field>`.
//! - **Compiled once.** Components are compiled by Cranelift once per content (SHA-256): kept in
//!   process across reloads, and on disk (`NEWSROOM_WASM_CACHE_DIR`, default
//!   `~/.cache/newsroom/wasm`) across restarts. A changed `.wasm` changes the stage's
//!   [`fingerprint`](Stage::fingerprint) and so the pipeline id: a reload swaps it in, a story
//!   runs whole on one pipeline (reload.rs).
//! - **Warm instances.** Up to `instances` instantiated components are kept and reused by
//!   later stories (instantiating runs the guest's start-up: milliseconds for a JavaScript or
//!   Python runtime); one that trapped or hit its cap is never reused. A stage must not rely on
//!   state between calls: its `cache` is the place for that.
//!
//! ```toml
//! [[stage]]
//! name = "sponsored"
//! type = "wasm"
//! timeout_ms = 200
//! params = { module = "stages/sponsored.wasm", config = { words = "sponsored,advertorial" } }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant, SystemTime};

use newsroom_proto::v1::Enrichment;
use serde::Deserialize;
use sha2::Digest as _;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, ResourceLimiter, Store, Trap};

use super::{BuildContext, BuildError, StageParams, check_range};
use crate::stage::{DynStage, Fields, Stage, StageError, StageInput, StageOutput};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit/newsroom-stage.wit",
        world: "stage",
    });
}

use bindings::newsroom::stage::host::{self, Level};
use bindings::newsroom::stage::types;

/// How often the engine's epoch advances: the granularity of a stage's deadline.
pub const TICK: Duration = Duration::from_millis(2);
/// Entries a stage's cache holds; values larger than [`CACHE_VALUE_MAX`] are not kept.
const CACHE_ENTRIES: usize = 4096;
const CACHE_VALUE_MAX: usize = 64 * 1024;
/// Log lines a call may write (a guest logging in a loop is not a way to flood the logs).
const LOGS_PER_CALL: usize = 32;

/// Params of the `wasm` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmConfig {
    /// The component (`.wasm`), relative to the pipeline file's folder. Required.
    pub module: String,
    /// Memory cap of each instance, in MiB (1..4096). Default 128.
    #[serde(default = "default_memory")]
    pub max_memory_mib: u32,
    /// Warm instances kept for reuse (1..64). Default 2.
    #[serde(default = "default_instances")]
    pub instances: usize,
    /// The stage's configuration, handed to every call as `input.config`. Default: empty.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

fn default_memory() -> u32 {
    128
}
fn default_instances() -> usize {
    2
}

impl StageParams for WasmConfig {
    fn validate(&self) -> Result<(), String> {
        if self.module.trim().is_empty() {
            return Err("module: the component's path is required".into());
        }
        check_range("max_memory_mib", self.max_memory_mib, 1, 4096)?;
        check_range("instances", self.instances, 1, 64)
    }

    fn build(&self, name: &str, cx: &BuildContext) -> Result<DynStage, BuildError> {
        let path = cx.path(&self.module);
        let bytes = std::fs::read(&path)
            .map_err(|e| BuildError(format!("module {}: {e}", path.display())))?;
        let sha = hex::encode(sha2::Sha256::digest(&bytes));
        let component = compiled(&bytes, &sha)
            .map_err(|e| BuildError(format!("module {}: {e:#}", path.display())))?;
        let pre = linker()
            .instantiate_pre(&component)
            .map_err(|e| BuildError(format!("module {}: {e:#}", path.display())))?;
        let pre = bindings::StagePre::new(pre)
            .map_err(|e| BuildError(format!("module {}: not a newsroom:stage/stage component: {e:#}", path.display())))?;
        let mut stage = Inner {
            name: name.to_owned(),
            sha,
            pre,
            max_memory: u64::from(self.max_memory_mib) << 20,
            instances: self.instances,
            config: self.config.clone().into_iter().collect(),
            warm: Mutex::new(Vec::new()),
            cache: Arc::new(Mutex::new(HashMap::new())),
            manifest: types::Manifest {
                name: String::new(),
                version: String::new(),
                reads: Vec::new(),
                writes: Vec::new(),
            },
            reads: Fields::NONE,
        };
        // The manifest, once: what the stage reads (its place in the pipeline) and may write.
        let mut guest = stage
            .instantiate(Instant::now() + Duration::from_secs(30))
            .map_err(|e| BuildError(format!("module {}: {e}", path.display())))?;
        let manifest = guest
            .bindings
            .call_manifest(&mut guest.store)
            .map_err(|e| BuildError(format!("module {}: manifest(): {e:#}", path.display())))?;
        let reads: Vec<String> = manifest
            .reads
            .iter()
            .filter(|r| r.as_str() != "story")
            .cloned()
            .collect();
        stage.reads = Fields::parse(&reads)
            .map_err(|e| BuildError(format!("module {}: manifest reads: {e}", path.display())))?;
        if let Some(bad) = manifest.writes.iter().find(|w| !valid_field(w)) {
            return Err(BuildError(format!(
                "module {}: manifest writes {bad:?}: a field name is 1 to 64 of a-z, 0-9, '-' and '_'",
                path.display()
            )));
        }
        tracing::info!(stage = name, module = %path.display(), guest = %manifest.name, version = %manifest.version, writes = ?manifest.writes, "wasm stage loaded");
        stage.manifest = manifest;
        stage.warm.lock().unwrap_or_else(|p| p.into_inner()).push(guest);
        Ok(Arc::new(WasmStage {
            inner: Arc::new(stage),
        }))
    }
}

fn valid_field(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The one engine: Cranelift, the component model, epoch interruption; its epoch advanced by a
/// thread every [`TICK`].
static ENGINE: LazyLock<Engine> = LazyLock::new(|| {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true).epoch_interruption(true);
    if let Some(dir) = cache_dir() {
        let mut cache = wasmtime::CacheConfig::new();
        cache.with_directory(dir);
        match wasmtime::Cache::new(cache) {
            Ok(cache) => {
                config.cache(Some(cache));
            }
            Err(e) => tracing::warn!(error = %e, "no cache of compiled wasm: every start compiles"),
        }
    }
    let engine = Engine::new(&config).expect("the wasmtime configuration is valid");
    let ticker = engine.weak();
    std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            while let Some(engine) = ticker.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })
        .expect("the epoch thread starts");
    engine
});

/// Compiled components by content, kept across reloads.
static COMPILED: LazyLock<Mutex<HashMap<String, Component>>> = LazyLock::new(Mutex::default);

/// The linker every stage shares: the host interface, and nothing else.
fn linker() -> Linker<Guest> {
    let mut linker = Linker::new(&ENGINE);
    bindings::Stage::add_to_linker::<Guest, HasSelf<Guest>>(&mut linker, |g| g)
        .expect("the host interface links once");
    linker
}

/// Where compiled code is kept between runs (wasmtime's cache, keyed by content and engine).
fn cache_dir() -> Option<PathBuf> {
    std::env::var_os("NEWSROOM_WASM_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/newsroom/wasm")))
}

/// The component of `bytes`: from memory, else compiled (through wasmtime's disk cache).
fn compiled(bytes: &[u8], sha: &str) -> wasmtime::Result<Component> {
    if let Some(c) = COMPILED.lock().unwrap_or_else(|p| p.into_inner()).get(sha) {
        return Ok(c.clone());
    }
    let started = Instant::now();
    let component = Component::new(&ENGINE, bytes)?;
    tracing::info!(sha, took_ms = started.elapsed().as_millis() as u64, "wasm component ready");
    COMPILED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(sha.to_owned(), component.clone());
    Ok(component)
}

/// A stage's cache: key → (expires, value), shared by its instances.
type StageCache = Arc<Mutex<HashMap<String, (Instant, Vec<u8>)>>>;

/// What a guest's store holds: its memory cap and whether it was hit, its stage's cache, the
/// span its logs go to.
struct Guest {
    limits: MemoryCap,
    cache: StageCache,
    stage: String,
    logs: usize,
}

/// Linear memory up to `max` bytes; remembers a refused growth.
struct MemoryCap {
    max: u64,
    hit: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = desired as u64 <= self.max;
        self.hit |= !ok;
        Ok(ok)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

impl types::Host for Guest {}

impl host::Host for Guest {
    fn log(&mut self, level: Level, message: String) {
        self.logs += 1;
        if self.logs > LOGS_PER_CALL {
            return;
        }
        let message: String = message.chars().take(1024).collect();
        let stage = self.stage.as_str();
        match level {
            Level::Debug => tracing::debug!(stage, guest = true, "{message}"),
            Level::Info => tracing::info!(stage, guest = true, "{message}"),
            Level::Warn => tracing::warn!(stage, guest = true, "{message}"),
            Level::Error => tracing::error!(stage, guest = true, "{message}"),
        }
    }

    fn cache_get(&mut self, key: String) -> Option<Vec<u8>> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        match cache.get(&key) {
            Some((expires, value)) if *expires > Instant::now() => Some(value.clone()),
            Some(_) => {
                cache.remove(&key);
                None
            }
            None => None,
        }
    }

    fn cache_set(&mut self, key: String, value: Vec<u8>, ttl_seconds: u32) {
        if value.len() > CACHE_VALUE_MAX || key.len() > 1024 || ttl_seconds == 0 {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_ENTRIES && !cache.contains_key(&key) {
            let now = Instant::now();
            cache.retain(|_, (expires, _)| *expires > now);
            if cache.len() >= CACHE_ENTRIES {
                return;
            }
        }
        let ttl = Duration::from_secs(u64::from(ttl_seconds.min(86_400)));
        cache.insert(key, (Instant::now() + ttl, value));
    }
}

/// An instantiated component with its store.
struct Instance {
    store: Store<Guest>,
    bindings: bindings::Stage,
}

/// A built `wasm` stage (what the pipeline holds).
pub struct WasmStage {
    inner: Arc<Inner>,
}

/// What a call needs, shared with the blocking thread that runs it.
struct Inner {
    name: String,
    sha: String,
    pre: bindings::StagePre<Guest>,
    max_memory: u64,
    instances: usize,
    config: Vec<(String, String)>,
    warm: Mutex<Vec<Instance>>,
    cache: StageCache,
    manifest: types::Manifest,
    reads: Fields,
}

impl Inner {
    fn instantiate(&self, deadline: Instant) -> Result<Instance, StageError> {
        let budget_ms = deadline.saturating_duration_since(Instant::now()).as_millis() as u64;
        let mut store = Store::new(
            &ENGINE,
            Guest {
                limits: MemoryCap {
                    max: self.max_memory,
                    hit: false,
                },
                cache: self.cache.clone(),
                stage: self.name.clone(),
                logs: 0,
            },
        );
        store.limiter(|g| &mut g.limits);
        store.set_epoch_deadline(ticks_until(deadline));
        let bindings = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| self.failure(&store, &e, deadline, budget_ms))?;
        Ok(Instance { store, bindings })
    }

    /// What a trap (or a failed instantiation) means for the story. A guest stopped at its
    /// deadline is a timeout (`budget_ms`: what the call had); a trap or a refused growth is
    /// the guest's own failure on this story, not an outage to wait out, so it is `Invalid`:
    /// `on_error = "retry"` dead-letters it rather than holding the partition behind it.
    fn failure(
        &self,
        store: &Store<Guest>,
        e: &wasmtime::Error,
        deadline: Instant,
        budget_ms: u64,
    ) -> StageError {
        if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) || Instant::now() >= deadline {
            tracing::warn!(stage = %self.name, budget_ms, "wasm guest stopped at its deadline");
            return StageError::Timeout(budget_ms);
        }
        if store.data().limits.hit {
            return StageError::Invalid(format!(
                "{}: memory cap of {} MiB reached",
                self.name,
                self.max_memory >> 20
            ));
        }
        StageError::Invalid(format!("{}: trapped: {e:#}", self.name))
    }

    /// One call, on a warm instance or a new one; the instance goes back only if it is sound.
    fn call(&self, input: &types::Input, deadline: Instant) -> Result<Vec<types::Field>, StageError> {
        let budget_ms = deadline.saturating_duration_since(Instant::now()).as_millis() as u64;
        let warm = self.warm.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut instance = match warm {
            Some(i) => i,
            None => self.instantiate(deadline)?,
        };
        instance.store.set_epoch_deadline(ticks_until(deadline));
        instance.store.data_mut().logs = 0;
        let answer = instance.bindings.call_run(&mut instance.store, input);
        let answer = match answer {
            Ok(a) => a,
            Err(e) => return Err(self.failure(&instance.store, &e, deadline, budget_ms)),
        };
        if instance.store.data().limits.hit {
            // The guest survived a refused growth: its heap may be in any state.
            return Err(StageError::Invalid(format!(
                "{}: memory cap of {} MiB reached",
                self.name,
                self.max_memory >> 20
            )));
        }
        let mut warm = self.warm.lock().unwrap_or_else(|p| p.into_inner());
        if warm.len() < self.instances {
            warm.push(instance);
        }
        drop(warm);
        answer.map_err(|reason| StageError::Invalid(format!("{}: {reason}", self.name)))
    }
}

/// Epoch ticks from now until `deadline` (at least one).
fn ticks_until(deadline: Instant) -> u64 {
    let left = deadline.saturating_duration_since(Instant::now());
    (left.as_micros() / TICK.as_micros()) as u64 + 1
}

/// The WIT input of a story.
fn input_of(input: &StageInput<'_>, config: &[(String, String)]) -> types::Input {
    let s = input.story;
    let e = input.enrichment;
    types::Input {
        story: types::Story {
            id: s.id.clone(),
            version: s.version,
            headline: s.headline.clone(),
            body: input.text.paragraphs.join("\n\n"),
            language: s.language.clone(),
            source: s.source.clone(),
            urgency: s.urgency,
            keywords: s.tags.clone(),
        },
        enrichment: types::Enrichment {
            language: e.language.clone(),
            topics: e
                .topics
                .iter()
                .map(|t| types::Topic {
                    code: t.code.clone(),
                    label: t.label.clone(),
                    score: t.score,
                })
                .collect(),
            entities: e
                .entities
                .iter()
                .map(|x| types::Entity {
                    name: x.name.clone(),
                    kind: newsroom_proto::entity_kind_name(x.kind).to_owned(),
                    salience: x.salience,
                })
                .collect(),
            summary: e.summary.clone(),
            word_count: e.word_count,
            breaking_score: e.breaking_score,
            attributes: e
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        },
        config: config.to_vec(),
        now_ms: input
            .event_time
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
    }
}

#[async_trait::async_trait]
impl Stage for WasmStage {
    fn reads(&self) -> Fields {
        self.inner.reads
    }

    fn writes(&self) -> Fields {
        Fields::ATTRIBUTES
    }

    fn fingerprint(&self) -> Option<String> {
        Some(self.inner.sha.clone())
    }

    async fn run(&self, input: &StageInput<'_>) -> Result<StageOutput, StageError> {
        let inner = self.inner.clone();
        let wit = input_of(input, &inner.config);
        let deadline = input.deadline;
        // On a blocking thread (a guest runs until it answers or its deadline stops it), in
        // the stage's span so its log lines join the story's trace.
        let span = tracing::Span::current();
        let fields = tokio::task::spawn_blocking(move || {
            let _span = span.enter();
            inner.call(&wit, deadline)
        })
        .await
        .map_err(|e| StageError::Failed(format!("{}: {e}", self.inner.name)))??;
        let manifest = &self.inner.manifest;
        let mut patch = Enrichment::default();
        for f in fields {
            if !manifest.writes.contains(&f.name) {
                return Err(StageError::Invalid(format!(
                    "{}: wrote {:?}, which its manifest does not declare (writes {:?})",
                    self.inner.name, f.name, manifest.writes
                )));
            }
            patch
                .attributes
                .insert(format!("{}.{}", self.inner.name, f.name), f.value);
        }
        Ok(patch.into())
    }
}
