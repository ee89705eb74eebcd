//! The detector component under wasmtime. Every wasmtime call of the host
//! lives in this module: the rest of the host sees native records and
//! verdicts and never a wasm type.
//!
//! The component is linked with WASI preview 2 (a `wasm32-wasip2` std guest
//! imports it) but given nothing: no preopened directories, no environment,
//! no arguments, no network, no stdio.
//!
//! It is also contained (issue 10): its memory, tables and instances are
//! capped ([`MEMORY_LIMIT`]), every call has a time limit ([`CALL_LIMIT`],
//! wasmtime's epoch interruption, ticking every [`TICK`]), and a stop
//! request (SIGTERM) interrupts a call within a tick.
//! [`ComponentDetector::score_contained`], the monitor's way in, survives a
//! guest that traps, hits a limit or times out: the instance is dropped and
//! a fresh one made, the batch is split to find the records that fail on
//! their own (those come back as errors, to be passed on unscored), and
//! after [`BREAKER_FAILURES`] such records in a row the circuit breaker
//! opens: records pass unscored, with one warning, until a probe with
//! backoff ([`BREAKER_BACKOFF`]) scores again. The fresh instance gets the
//! memory of kinds already reported as last saved ([`MEMORY_SNAPSHOT`]),
//! so that they do not alert again.

use anyhow::{Context, Result, anyhow, bail};
use logarithm_detector::{Burst, LogRecord, ModelInfo, PackedRecord, Repeat, Report, Term, Verdict};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use wasmtime::component::{Component, Linker, ResourceAny, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

wasmtime::component::bindgen!({
    world: "detector",
    path: "../wit",
});

use exports::logarithm::detector::scoring as wit;

/// The release build of the detector component, embedded at build time.
pub static EMBEDDED_COMPONENT: &[u8] = include_bytes!(env!("LOGARITHM_GUEST_WASM"));

/// Largest linear memory the component may grow to.
pub const MEMORY_LIMIT: usize = 1 << 30;

/// How often the engine's epoch ticks: the resolution of [`CALL_LIMIT`]
/// and how soon a stop request interrupts a call.
pub const TICK: Duration = Duration::from_millis(100);

/// The longest one call into the component may run. The slowest honest
/// call is a full batch of the longest lines (256 × 64 KiB, 16 MiB of
/// text): `logarithm monitor --once` of such a file takes 1.2–1.4 s here
/// (a test build, on 2 busy cores), of which 1.1 s is compiling the
/// component and loading the model (a one-line file takes as long), so
/// each call takes well under a second. 30 s is over twenty times that:
/// only a stuck guest reaches it. `LOGARITHM_CALL_LIMIT_MS` overrides it
/// (the tests make it short).
pub const CALL_LIMIT: Duration = Duration::from_secs(30);

/// Records that fail on their own, in a row without a record scored in
/// between, before the circuit breaker opens.
pub const BREAKER_FAILURES: u32 = 3;

/// The first wait before an open breaker probes the guest again; it
/// doubles after each failed probe, up to [`BREAKER_MAX_BACKOFF`].
pub const BREAKER_BACKOFF: Duration = Duration::from_secs(5);

/// The longest wait between probes of an open breaker.
pub const BREAKER_MAX_BACKOFF: Duration = Duration::from_secs(300);

/// How often, at most, the memory of kinds already reported
/// (`save-memory`) is copied out of the instance, after a call that
/// changed what it reports (a kind new or worse, a repeat summary), to be
/// restored into a fresh instance after a failure (issue 10): a kind
/// reported since the last copy alerts once more, never one that was not.
/// While a failed batch is split, it is copied after every such call, so
/// that one part does not report again what another did. The memory at its
/// largest (10,000 kinds, 2.6 MB of JSON) takes 26 ms to copy here (a test
/// build, on 2 busy cores), three times as long as scoring a batch of 256
/// lines of new kinds: copying after every such batch would slow a storm
/// of new kinds fourfold; once a second costs at most 3%.
pub const MEMORY_SNAPSHOT: Duration = Duration::from_secs(1);

/// The fewest records a part of a batch gets when the batch is scored on
/// several cores ([`ComponentDetector::set_threads`]): a smaller batch is
/// scored whole, in one instance, since starting a thread per part would
/// cost more than it saves.
pub const MIN_PART: usize = 64;

/// How much the live instance's part of a batch grows or shrinks against
/// a helper's after each batch in parts (see [`part_bounds`]), and the
/// most it may be, either way.
const WEIGHT_STEP: f64 = 1.02;
const MAX_WEIGHT: f64 = 4.0;

/// What a record must cost to score, on average over recent batches, for
/// a batch to be scored in parts on several threads
/// ([`ComponentDetector::set_threads`]). Records the detector answers from
/// its memory of recent verdicts (most, in typical logs) cost well under
/// a microsecond, and handing parts over to other threads costs more than
/// it saves; new lines cost 3-6 µs here.
pub const PARALLEL_COST: Duration = Duration::from_micros(2);

/// The most bytes of lines one call into the component may carry: a
/// quarter of its memory, which also holds the model, the batch's copies
/// and its verdicts.
pub const MAX_BATCH_BYTES: usize = MEMORY_LIMIT / 4;

/// Checks that `--batch-size` records of `--max-line-bytes` each fit the
/// component's memory, naming both flags when they do not.
pub fn check_batch(batch_size: usize, max_line_bytes: usize) -> Result<()> {
    if batch_size.saturating_mul(max_line_bytes) > MAX_BATCH_BYTES {
        bail!(
            "--batch-size {batch_size} × --max-line-bytes {max_line_bytes} is {} MiB, more than the {} MiB a call into the detector may carry (its memory is capped at {} MiB): lower one of them",
            batch_size.saturating_mul(max_line_bytes) >> 20,
            MAX_BATCH_BYTES >> 20,
            MEMORY_LIMIT >> 20
        );
    }
    Ok(())
}

/// `anyhow`'s `context` for wasmtime's own error type.
trait WasmContext<T> {
    fn wasm_context<C: std::fmt::Display + Send + Sync + 'static>(self, context: C) -> Result<T>;
    fn with_wasm_context<C: std::fmt::Display + Send + Sync + 'static>(self, f: impl FnOnce() -> C) -> Result<T>;
}

impl<T> WasmContext<T> for wasmtime::Result<T> {
    fn wasm_context<C: std::fmt::Display + Send + Sync + 'static>(self, context: C) -> Result<T> {
        self.map_err(anyhow::Error::from).context(context)
    }
    fn with_wasm_context<C: std::fmt::Display + Send + Sync + 'static>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.map_err(anyhow::Error::from).with_context(f)
    }
}

struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    /// When the call in progress started (the time limit counts from it).
    call_started: Instant,
    /// Set by SIGTERM/SIGINT: interrupts the call in progress.
    stop: Option<Arc<AtomicBool>>,
    /// Why the last call was interrupted, if it was.
    interrupted: Option<Interruption>,
}

/// Why the host interrupted a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interruption {
    TimeLimit,
    Stop,
}

/// The cost per record from which batches are scored in parts:
/// [`PARALLEL_COST`] or `LOGARITHM_PARALLEL_COST_US` (the tests make it
/// zero, to score every batch of two parts or more in parts; see
/// [`ComponentDetector::set_parallel_cost`]).
fn parallel_cost() -> f64 {
    std::env::var("LOGARITHM_PARALLEL_COST_US")
        .ok()
        .and_then(|us| us.parse().ok())
        .map_or(PARALLEL_COST, Duration::from_micros)
        .as_secs_f64()
}

/// The call limit in force: [`CALL_LIMIT`] or `LOGARITHM_CALL_LIMIT_MS`.
fn call_limit() -> Duration {
    std::env::var("LOGARITHM_CALL_LIMIT_MS").ok().and_then(|ms| ms.parse().ok()).map_or(CALL_LIMIT, Duration::from_millis)
}

/// The engine's epoch clock: one thread per process ticks every engine made
/// here (one per loaded detector), so that deadlines pass.
fn start_ticking(engine: &Engine) {
    let engine = engine.weak();
    std::thread::Builder::new()
        .name("wasm epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })
        .expect("cannot start the wasm epoch thread");
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Where the component comes from.
#[derive(Debug, Clone, Copy)]
pub enum ComponentSource<'a> {
    /// The component embedded in this binary.
    Embedded,
    /// A component file (`--component PATH`).
    File(&'a Path),
}

/// Caps on what an instance may create besides memory: the detector (a
/// `wasm32-wasip2` std guest and its WASI adapter) needs a handful of each.
const MAX_INSTANCES: usize = 64;
const MAX_TABLES: usize = 64;
const MAX_MEMORIES: usize = 8;
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// How long a call may go on after a stop request (SIGTERM): an honest
/// batch finishes within it, so the batch in flight is still flushed; a
/// stuck call is interrupted.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// One instance of the component, with the model loaded in it.
struct Instance {
    store: Store<State>,
    bindings: Detector,
    handle: ResourceAny,
}

/// Why a contained call failed.
enum Failure {
    /// The guest trapped, hit a limit or ran out of time: the instance is gone.
    Guest(String),
    /// No fresh instance could be made (the model no longer loads).
    Unavailable(String),
    /// A stop request interrupted the call.
    Stopped(anyhow::Error),
}

impl From<Failure> for anyhow::Error {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Guest(msg) | Failure::Unavailable(msg) => anyhow!(msg),
            Failure::Stopped(e) => e,
        }
    }
}

/// The circuit breaker: closed while records score; open after
/// [`BREAKER_FAILURES`] records failed in a row, until `open_until`.
#[derive(Debug, Default)]
struct Breaker {
    failures_in_a_row: u32,
    open_until: Option<Instant>,
    backoff: Duration,
    /// Why it opened (shown with each record passed unscored).
    why: String,
}

/// A model loaded inside a component instance. The instance is replaced
/// by a fresh one (the same model and threshold) whenever a call fails.
pub struct ComponentDetector {
    /// What a fresh instance is made from: the model, its settings, the
    /// time limit and the stop request.
    recipe: Recipe,
    /// `None` after a failure, until the next call makes a fresh one.
    instance: Option<Instance>,
    /// How many instances score a large batch, each a part of it on its
    /// own thread ([`ComponentDetector::set_threads`]).
    threads: usize,
    /// The threads that analyse the parts after the first, each in its own
    /// instance, started when a batch first needs them.
    helpers: Vec<Helper>,
    /// What a record costs to analyse, in seconds, averaged over recent
    /// batches, and the cost from which batches are scored in parts (see
    /// [`PARALLEL_COST`]).
    cost: f64,
    parallel_cost: f64,
    /// Batches scored in parts.
    in_parts: u64,
    /// How large the live instance's part is against a helper's (see
    /// [`part_bounds`]).
    weight: f64,
    breaker: Breaker,
    /// The memory of kinds reported, as last saved from the instance, for
    /// a fresh one (see [`MEMORY_SNAPSHOT`]).
    memory: Memory,
    /// The buffers a batch (or each of its parts) is packed into, kept
    /// from call to call.
    packed: Vec<wit::PackedRecords>,
}

/// The last saved memory of kinds reported, and whether it is behind the
/// instance's.
#[derive(Debug, Default)]
struct Memory {
    saved: Option<Vec<u8>>,
    saved_at: Option<Instant>,
    /// The instance reported something since `saved`.
    behind: bool,
    /// A failed batch is being split: save after every call that reports.
    splitting: bool,
}

/// Why a model could not be loaded, distinguishing the detector's own
/// verdict on the model (wrong key, corrupt file) from host failures.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The detector refused the model; the message is the detector's.
    #[error("{0}")]
    Model(logarithm_detector::Error),
    /// The component could not be compiled, instantiated or called.
    #[error(transparent)]
    Host(#[from] anyhow::Error),
}

fn error_from_wit(e: wit::Error) -> logarithm_detector::Error {
    use logarithm_detector::Error;
    match e {
        wit::Error::WrongKey(k) => Error::WrongKey { expected: k.expected, given: k.given },
        wit::Error::CorruptModel(msg) => Error::CorruptModel(msg),
        wit::Error::UnsupportedVersion(v) => Error::UnsupportedVersion(v),
        wit::Error::InvalidArgument(msg) => Error::InvalidArgument(msg),
    }
}

/// Runs one call into the instance of `store` under the time limit,
/// interruptible by a stop request, and says why it failed if it did.
fn guarded<R>(
    store: &mut Store<State>,
    what: &str,
    limit: Duration,
    call: impl FnOnce(&mut Store<State>) -> wasmtime::Result<R>,
) -> Result<R, Failure> {
    let state = store.data_mut();
    state.call_started = Instant::now();
    state.interrupted = None;
    // The callback below runs at the next tick and decides then.
    store.set_epoch_deadline(1);
    call(store).map_err(|e| match store.data().interrupted {
        Some(Interruption::Stop) => Failure::Stopped(anyhow!("stopped while the detector component was {what}")),
        Some(Interruption::TimeLimit) => {
            Failure::Guest(format!("the detector component was {what} for longer than its time limit of {:.1} s", limit.as_secs_f64()))
        }
        None => {
            let why = e.downcast_ref::<wasmtime::Trap>().map_or_else(|| format!("{:#}", e.root_cause()), ToString::to_string);
            Failure::Guest(format!("the detector component failed while {what}: {why}"))
        }
    })
}

impl ComponentDetector {
    /// Compiles and instantiates the component, then decrypts and loads
    /// `model` inside it with `passphrase`.
    pub fn load(source: ComponentSource<'_>, model: &[u8], passphrase: &str) -> Result<Self, LoadError> {
        Self::load_cached(source, None, model, passphrase)
    }

    /// [`Self::load`], keeping the compiled component in `code_cache` (a
    /// directory) for the next start: compiling takes ~0.5 s, loading the
    /// compiled code a few ms (issue 11). The cache must be as private as
    /// the model's key: compiled code is run as it is.
    pub fn load_cached(source: ComponentSource<'_>, code_cache: Option<&Path>, model: &[u8], passphrase: &str) -> Result<Self, LoadError> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        config.epoch_interruption(true);
        let engine = Engine::new(&config).wasm_context("cannot set up wasmtime")?;
        let component = match source {
            ComponentSource::Embedded => {
                compile(&engine, EMBEDDED_COMPONENT, code_cache).wasm_context("cannot compile the embedded detector component")?
            }
            ComponentSource::File(path) => std::fs::read(path)
                .map_err(wasmtime::Error::from)
                .and_then(|bytes| compile(&engine, &bytes, code_cache))
                .with_wasm_context(|| format!("cannot load the detector component {}", path.display()))?,
        };
        let mut linker = Linker::<State>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).wasm_context("cannot link WASI")?;
        start_ticking(&engine);
        let recipe = Recipe {
            engine,
            component,
            linker,
            model: model.to_vec(),
            passphrase: passphrase.to_owned(),
            threshold: None,
            explain_all: true,
            limit: call_limit(),
            stop: None,
        };
        let mut detector = Self {
            recipe,
            instance: None,
            threads: 1,
            helpers: Vec::new(),
            cost: 0.0,
            parallel_cost: parallel_cost(),
            in_parts: 0,
            weight: 1.0,
            breaker: Breaker::default(),
            memory: Memory::default(),
            packed: Vec::new(),
        };
        detector.instance = Some(detector.instantiate()?);
        Ok(detector)
    }

    /// Lets `stop` (set by SIGTERM/SIGINT) interrupt a call that is still
    /// running [`STOP_GRACE`] after it was set.
    pub fn interrupt_on(&mut self, stop: Arc<AtomicBool>) {
        if let Some(instance) = self.instance.as_mut() {
            instance.store.data_mut().stop = Some(stop.clone());
        }
        // Helpers' instances are made again with it.
        self.helpers.clear();
        self.recipe.stop = Some(stop);
    }

    /// Scores large batches on up to `threads` cores (1, the default: on
    /// this thread alone) while records are expensive ([`PARALLEL_COST`]):
    /// each part of at least [`MIN_PART`] records is analysed in its own
    /// instance of the component, on its own thread, and the parts are
    /// concluded in order in the live instance, which alone keeps the
    /// memory of earlier records (bursts, kinds reported). The verdicts
    /// are the same (`analyse-packed`, `conclude-packed`); each instance
    /// made holds its own copy of the model. A part that fails makes the
    /// batch fail like a whole one: it is split and scored in the live
    /// instance alone.
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.max(1);
        self.helpers.truncate(self.threads - 1);
    }

    /// A fresh instance with the model (and threshold) loaded.
    fn instantiate(&self) -> Result<Instance, LoadError> {
        self.recipe.instantiate()
    }

    /// The live instance, a fresh one if the last call failed, with the
    /// memory of kinds reported as last saved.
    fn live(&mut self) -> Result<&mut Instance, Failure> {
        if self.instance.is_none() {
            let unavailable = |e: LoadError| Failure::Unavailable(format!("cannot start a fresh detector instance: {e:#}"));
            let mut fresh = self.instantiate().map_err(unavailable)?;
            crate::metrics::count(|m| m.guest_restarted());
            if let Some(memory) = &self.memory.saved {
                let Instance { store, bindings, handle } = &mut fresh;
                let api = bindings.logarithm_detector_scoring().detector();
                let restored = guarded(store, "restoring the kinds reported", self.recipe.limit, |store| {
                    api.call_restore_memory(store, *handle, memory)
                });
                match restored {
                    Ok(Ok(kept)) => tracing::debug!("{kept} kinds of anomalies already reported restored into a fresh detector instance"),
                    Ok(Err(e)) => tracing::warn!(
                        "the kinds of anomalies already reported were not restored into a fresh detector instance ({}); they may be reported again",
                        error_from_wit(e)
                    ),
                    Err(Failure::Stopped(e)) => return Err(Failure::Stopped(e)),
                    Err(Failure::Guest(why) | Failure::Unavailable(why)) => {
                        // The instance is not to be trusted after a trap: a
                        // fresh one without the memory it failed on.
                        tracing::warn!(
                            "the kinds of anomalies already reported were not restored into a fresh detector instance ({why}); they may be reported again"
                        );
                        self.memory.saved = None;
                        fresh = self.instantiate().map_err(unavailable)?;
                    }
                }
            }
            self.instance = Some(fresh);
        }
        Ok(self.instance.as_mut().expect("an instance was just made"))
    }

    /// Copies the memory of kinds reported out of the instance when it has
    /// reported something since the last copy, at most every
    /// [`MEMORY_SNAPSHOT`] (after every call while a failed batch is
    /// split). A failure here drops the instance like any other.
    fn snapshot_memory(&mut self, verdicts: &[Verdict]) {
        self.memory.behind |= verdicts.iter().any(|v| v.reported() || v.repeat.is_some());
        let due = self.memory.splitting || self.memory.saved_at.is_none_or(|at| at.elapsed() >= MEMORY_SNAPSHOT);
        if !(self.memory.behind && due) {
            return;
        }
        match self.call("saving the kinds reported", |store, b, h| b.logarithm_detector_scoring().detector().call_save_memory(store, h)) {
            Ok(memory) => self.keep_memory(memory),
            Err(e) => tracing::debug!("the kinds reported could not be saved for a fresh instance: {:#}", anyhow::Error::from(e)),
        }
    }

    /// Keeps `memory`, saved from the instance just now, for a fresh one.
    fn keep_memory(&mut self, memory: Vec<u8>) {
        self.memory.saved = Some(memory);
        self.memory.saved_at = Some(Instant::now());
        self.memory.behind = false;
    }

    /// One call into the live instance; a failure drops the instance (its
    /// state after a trap or an interruption is not to be trusted).
    fn call<R>(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut Store<State>, &Detector, ResourceAny) -> wasmtime::Result<R>,
    ) -> Result<R, Failure> {
        let limit = self.recipe.limit;
        let instance = self.live()?;
        let (bindings, handle) = (&instance.bindings, instance.handle);
        let result = guarded(&mut instance.store, what, limit, |store| f(store, bindings, handle));
        if result.is_err() {
            self.instance = None;
        }
        result
    }

    /// Loads another model into the same instance (no recompilation), with
    /// `threshold` if given, and returns its threshold in force. The model
    /// must be `version` inside its sealed payload ([`check_version`]). The
    /// old model keeps scoring unless every step succeeded. The memory of
    /// kinds reported moves to the new model, which keeps those it still
    /// finds anomalous (issue 15).
    pub fn replace_model(&mut self, model: &[u8], passphrase: &str, threshold: Option<f64>, version: u32) -> Result<f64, LoadError> {
        let created =
            self.call("loading a model", |store, b, _| b.logarithm_detector_scoring().detector().call_create(store, model, passphrase));
        let handle = created.map_err(anyhow::Error::from)?.map_err(|e| LoadError::Model(error_from_wit(e)))?;
        let ready = self
            .call("setting the threshold", |store, b, _| {
                threshold.map_or(Ok(Ok(())), |t| b.logarithm_detector_scoring().detector().call_set_threshold(store, handle, t))
            })
            .map_err(anyhow::Error::from)
            .and_then(|set| set.map_err(|e| anyhow!(error_from_wit(e))))
            .and_then(|()| {
                let explain = self.recipe.explain_all;
                self.call("setting explanations", |store, b, _| {
                    b.logarithm_detector_scoring().detector().call_set_explain(store, handle, explain)
                })
                .map_err(anyhow::Error::from)
            })
            .and_then(|()| {
                self.call("describing the model", |store, b, _| b.logarithm_detector_scoring().detector().call_info(store, handle))
                    .map_err(anyhow::Error::from)
            })
            .and_then(|info| check_version(version, info.version).map(|()| info));
        if ready.is_ok() {
            // The kinds already reported carry over, less those the new
            // model knows (a retrained model clears them).
            let carried = self.call("carrying over the kinds reported", |store, b, old| {
                let api = b.logarithm_detector_scoring().detector();
                let memory = api.call_save_memory(&mut *store, old)?;
                api.call_restore_memory(store, handle, &memory)
            });
            match carried {
                Ok(Ok(kept)) => tracing::debug!("{kept} kinds of anomalies already reported carried over to the new model"),
                Ok(Err(e)) => tracing::warn!("the kinds of anomalies already reported were not carried over: {}", error_from_wit(e)),
                Err(e) => tracing::warn!("the kinds of anomalies already reported were not carried over: {:#}", anyhow::Error::from(e)),
            }
        }
        let Some(instance) = self.instance.as_mut() else {
            // A call failed and took the instance (and the new handle) with it.
            return Err(LoadError::Host(ready.err().unwrap_or_else(|| anyhow!("the detector instance was lost"))));
        };
        match ready {
            Ok(info) => {
                let old = std::mem::replace(&mut instance.handle, handle);
                // The old detector is no longer used; failing to free it only leaks it.
                let _ = old.resource_drop(&mut instance.store);
                (self.recipe.model, self.recipe.passphrase, self.recipe.threshold) = (model.to_vec(), passphrase.to_owned(), threshold);
                // Helpers are made again with the new model when needed.
                self.helpers.clear();
                // What was carried over is saved after the next batch.
                self.memory.behind = true;
                Ok(info.threshold)
            }
            Err(e) => {
                let _ = handle.resource_drop(&mut instance.store);
                Err(LoadError::Host(e))
            }
        }
    }

    /// Describes the loaded model.
    pub fn info(&mut self) -> Result<ModelInfo> {
        let i = self.call("describing the model", |store, b, h| b.logarithm_detector_scoring().detector().call_info(store, h))?;
        Ok(ModelInfo {
            version: i.version,
            format_version: i.format_version,
            vocabulary_size: i.vocabulary_size,
            training_lines: i.training_lines,
            threshold: i.threshold,
            trained_at: i.trained_at,
            key_fingerprint: i.key_fingerprint,
            bursts: i.bursts,
        })
    }

    /// Overrides the model's threshold.
    pub fn set_threshold(&mut self, threshold: f64) -> Result<()> {
        self.call("setting the threshold", |store, b, h| {
            b.logarithm_detector_scoring().detector().call_set_threshold(store, h, threshold)
        })?
        .map_err(|e| anyhow!(error_from_wit(e)))?;
        self.recipe.threshold = Some(threshold);
        // Helpers are made again with it when needed.
        self.helpers.clear();
        Ok(())
    }

    /// Whether every verdict names its terms (the default) or only
    /// anomalies do: a monitor that prints only anomalies saves copying an
    /// explanation out of the component for every normal line (issue 11).
    /// Kept for fresh instances and models loaded later.
    pub fn set_explain(&mut self, all: bool) -> Result<()> {
        self.recipe.explain_all = all;
        self.helpers.clear();
        Ok(self.call("setting explanations", |store, b, h| b.logarithm_detector_scoring().detector().call_set_explain(store, h, all))?)
    }

    /// The component's memory of reported kinds, to keep across a restart
    /// ([`ComponentDetector::restore_memory`]).
    pub fn save_memory(&mut self) -> Result<Vec<u8>> {
        let memory =
            self.call("saving the kinds reported", |store, b, h| b.logarithm_detector_scoring().detector().call_save_memory(store, h))?;
        self.keep_memory(memory.clone());
        Ok(memory)
    }

    /// Restores a memory of reported kinds; returns the kinds kept.
    pub fn restore_memory(&mut self, state: &[u8]) -> Result<u32> {
        let kept = self
            .call("restoring the kinds reported", |store, b, h| {
                b.logarithm_detector_scoring().detector().call_restore_memory(store, h, state)
            })?
            .map_err(|e| anyhow!(error_from_wit(e)))?;
        // Restored into a fresh instance, the same bytes give the same
        // memory (kinds another model no longer finds anomalous left out).
        self.keep_memory(state.to_vec());
        Ok(kept)
    }

    /// Scores a batch of records in one call into the component; any
    /// failure is an error for the whole batch (see [`Self::score_contained`]
    /// for the monitor's way, which survives a misbehaving guest).
    pub fn score_batch(&mut self, records: &[LogRecord]) -> Result<Vec<Verdict>> {
        let records: Vec<&LogRecord> = records.iter().collect();
        Ok(self.try_batch(&records)?)
    }

    /// Scores a batch in one `score-packed` call, or in parts on several
    /// threads ([`ComponentDetector::set_threads`]), and copies the memory
    /// of kinds reported out when it is due.
    fn try_batch(&mut self, records: &[&LogRecord]) -> Result<Vec<Verdict>, Failure> {
        // While a failed batch is split, one instance finds the record.
        let parallel = !self.memory.splitting && self.cost >= self.parallel_cost;
        let wanted = if parallel { self.threads.min(records.len() / MIN_PART).max(1) } else { 1 };
        let parts = if wanted > 1 { 1 + self.ready_helpers(wanted - 1) } else { 1 };
        let verdicts = if parts > 1 { self.try_parts(records, parts)? } else { self.try_whole(records)? };
        self.snapshot_memory(&verdicts);
        Ok(verdicts)
    }

    /// One `score-packed` call: the batch packed flat (its text in one
    /// string), quiet verdicts back as scores alone (issue 11: lowering
    /// three strings per record and lifting a verdict per record were a
    /// fifth of the monitor's scoring thread).
    fn try_whole(&mut self, records: &[&LogRecord]) -> Result<Vec<Verdict>, Failure> {
        let mut buffers = std::mem::take(&mut self.packed);
        if buffers.is_empty() {
            buffers.push(empty_packed());
        }
        pack(records, &mut buffers[0]);
        let packed = &buffers[0];
        let started = Instant::now();
        let called = self.call("scoring", |store, b, h| b.logarithm_detector_scoring().detector().call_score_packed(store, h, packed));
        self.count_cost(started, records.len());
        self.packed = buffers;
        let unpacked = match called? {
            Ok(packed) => unpack(packed, records.len()),
            Err(e) => Err(format!("it refused a batch: {}", error_from_wit(e))),
        };
        unpacked.map_err(|why| {
            self.instance = None;
            Failure::Guest(why)
        })
    }

    /// Scores a batch in `parts` parts (issue 11): each analysed
    /// (`analyse-packed`) in its own instance, the first in the live
    /// instance on this thread, the others by helpers on theirs; then all
    /// concluded in order (`conclude-packed`) in the live instance. Any
    /// failure fails the batch; an instance that failed is dropped (the
    /// live one keeps its memory until the parts are concluded).
    fn try_parts(&mut self, records: &[&LogRecord], parts: usize) -> Result<Vec<Verdict>, Failure> {
        let mut buffers = std::mem::take(&mut self.packed);
        buffers.resize_with(buffers.len().max(parts), empty_packed);
        let bounds = part_bounds(records.len(), parts, self.weight);
        for (range, packed) in bounds.iter().zip(&mut buffers) {
            pack(&records[range.clone()], packed);
        }
        let limit = self.recipe.limit;
        for (helper, packed) in self.helpers.iter().zip(buffers.drain(1..parts)) {
            helper.send(Job::Analyse(packed, limit));
        }
        let started = Instant::now();
        let mut analysed = vec![self.live().and_then(|live| analyse(live, &buffers[0], limit))];
        self.count_cost(started, bounds[0].len());
        // Every part sent is waited for, whatever became of the others.
        let mut waited = false;
        for helper in &mut self.helpers[..parts - 1] {
            let (packed, result) = helper.receive(&mut waited);
            buffers.push(packed.unwrap_or_else(empty_packed));
            analysed.push(result);
        }
        // Balance the parts: a helper that was not done yet gets less next
        // time, one that was gets more.
        self.weight = if waited { self.weight * WEIGHT_STEP } else { self.weight / WEIGHT_STEP }.clamp(1.0 / MAX_WEIGHT, MAX_WEIGHT);
        let mut analyses = Vec::with_capacity(parts);
        let mut failed = None;
        for (i, a) in analysed.into_iter().enumerate() {
            match a {
                Ok(a) => analyses.push(a),
                Err(f) => {
                    if i == 0 {
                        self.instance = None;
                    } else {
                        self.helpers[i - 1].instance = Made::No;
                    }
                    // A stop request is the one to report.
                    if !matches!(failed, Some(Failure::Stopped(_))) {
                        failed = Some(f);
                    }
                }
            }
        }
        let verdicts = match failed {
            Some(f) => Err(f),
            None => self.conclude(&buffers[..parts], analyses, records.len()),
        };
        if verdicts.is_ok() {
            self.in_parts += 1;
            crate::metrics::count(crate::metrics::Metrics::batch_in_parts);
        }
        self.packed = buffers;
        verdicts
    }

    /// Scores batches in parts once records cost `cost` each on average
    /// over recent batches ([`PARALLEL_COST`] by default; zero: always,
    /// waiting for helpers to make their instances rather than scoring
    /// with fewer parts meanwhile).
    pub fn set_parallel_cost(&mut self, cost: Duration) {
        self.parallel_cost = cost.as_secs_f64();
    }

    /// How many batches were scored in parts, on several threads.
    pub fn batches_in_parts(&self) -> u64 {
        self.in_parts
    }

    /// Counts the cost of a call that analysed `records` since `started`
    /// into the recent average: each batch weighs a sixteenth, and counts
    /// at most twice [`PARALLEL_COST`], so that it takes a dozen batches
    /// of new lines in a row to go parallel (a stream's first batches are
    /// slow, then its lines repeat; a helper costs memory once made).
    fn count_cost(&mut self, started: Instant, records: usize) {
        let cost = (started.elapsed().as_secs_f64() / records.max(1) as f64).min(2.0 * self.parallel_cost);
        self.cost += (cost - self.cost) / 16.0;
    }

    /// Starts `count` helpers and has each make its instance, on its own
    /// thread, if it has none; returns how many of the first have theirs
    /// (the rest are still making them: batches are scored with fewer
    /// parts meanwhile). A helper that cannot start or make one is
    /// dropped, with a warning, and fewer threads are used from then on.
    fn ready_helpers(&mut self, count: usize) -> usize {
        for i in 0..count {
            if self.helpers.get(i).is_none_or(Helper::ended) {
                match Helper::start(i + 1) {
                    Ok(helper) if i < self.helpers.len() => self.helpers[i] = helper,
                    Ok(helper) => self.helpers.push(helper),
                    Err(e) => {
                        tracing::warn!("scoring on {} threads, not {}: cannot start another: {e}", i + 1, self.threads);
                        self.set_threads(i + 1);
                        return i;
                    }
                }
            }
            if self.helpers[i].instance == Made::No {
                self.helpers[i].send(Job::Make(Box::new(self.recipe.clone())));
                self.helpers[i].instance = Made::Making;
            }
            if self.helpers[i].instance == Made::Making {
                // Asked to score in parts always (the tests): wait for it.
                let wait = self.parallel_cost == 0.0;
                match self.helpers[i].made(wait) {
                    Some(Ok(())) => self.helpers[i].instance = Made::Yes,
                    Some(Err(why)) => {
                        tracing::warn!(
                            "scoring on {} threads, not {}: another detector instance failed to start: {why}",
                            i + 1,
                            self.threads
                        );
                        self.set_threads(i + 1);
                        return i;
                    }
                    None => return i,
                }
            }
        }
        count
    }

    /// Concludes analysed parts in order in the live instance.
    fn conclude(
        &mut self,
        parts: &[wit::PackedRecords],
        analyses: Vec<Result<wit::PackedAnalyses, wit::Error>>,
        count: usize,
    ) -> Result<Vec<Verdict>, Failure> {
        let mut verdicts = Vec::with_capacity(count);
        for (packed, analysed) in parts.iter().zip(analyses) {
            let concluded = analysed.map(|analysed| {
                self.call("scoring", |store, b, h| {
                    b.logarithm_detector_scoring().detector().call_conclude_packed(store, h, packed, &analysed)
                })
            });
            let unpacked = match concluded {
                Ok(called) => match called? {
                    Ok(concluded) => unpack(concluded, packed.meta.len()),
                    Err(e) => Err(format!("it refused a batch: {}", error_from_wit(e))),
                },
                Err(e) => Err(format!("it refused a batch: {}", error_from_wit(e))),
            };
            verdicts.extend(unpacked.map_err(|why| {
                self.instance = None;
                Failure::Guest(why)
            })?);
        }
        Ok(verdicts)
    }

    /// Scores one record (one call into the component; batches are faster).
    pub fn score(&mut self, record: &LogRecord) -> Result<Verdict> {
        let record = record_to_wit(record);
        let verdict = self.call("scoring", |store, b, h| b.logarithm_detector_scoring().detector().call_score(store, h, &record))?;
        let verdict = verdict_from_wit(verdict);
        self.snapshot_memory(std::slice::from_ref(&verdict));
        Ok(verdict)
    }

    /// Scores a batch, surviving a guest that traps, hits a limit or runs
    /// out of time: each record gets its verdict, or why it could not be
    /// scored (to be passed on unscored). A failed call is retried on a
    /// fresh instance, halving the batch until the records that fail on
    /// their own are found; those are never retried. While the circuit
    /// breaker is open, records come back unscored without a call. The
    /// only error is a stop request that interrupted a stuck call: the
    /// batch is then not done, and is read again after a restart.
    pub fn score_contained(&mut self, records: &[&LogRecord]) -> Result<Vec<Result<Verdict, String>>> {
        let mut out = Vec::with_capacity(records.len());
        if let Some(until) = self.breaker.open_until {
            if Instant::now() < until {
                out.extend(records.iter().map(|_| Err(self.breaker.why.clone())));
                return Ok(out);
            }
            // Half open: one call decides.
            match self.try_batch(records) {
                Ok(verdicts) => {
                    tracing::warn!("the detector component scores again; records are no longer passed unscored");
                    self.breaker = Breaker::default();
                    crate::audit::breaker("detector", false, "it scores again");
                    out.extend(verdicts.into_iter().map(Ok));
                }
                Err(Failure::Stopped(e)) => return Err(e),
                Err(Failure::Guest(why) | Failure::Unavailable(why)) => {
                    self.breaker.backoff = (self.breaker.backoff * 2).min(BREAKER_MAX_BACKOFF);
                    self.breaker.open_until = Some(Instant::now() + self.breaker.backoff);
                    tracing::debug!("the detector component still fails ({why}); next try in {:?}", self.breaker.backoff);
                    out.extend(records.iter().map(|_| Err(self.breaker.why.clone())));
                }
            }
            return Ok(out);
        }
        let scored = self.score_part(records, &mut out);
        self.memory.splitting = false;
        scored?;
        Ok(out)
    }

    /// Scores `records` into `out`, splitting them on failure.
    fn score_part(&mut self, records: &[&LogRecord], out: &mut Vec<Result<Verdict, String>>) -> Result<()> {
        if self.breaker.open_until.is_some() {
            out.extend(records.iter().map(|_| Err(self.breaker.why.clone())));
            return Ok(());
        }
        match self.try_batch(records) {
            Ok(verdicts) => {
                self.breaker.failures_in_a_row = 0;
                out.extend(verdicts.into_iter().map(Ok));
            }
            Err(Failure::Stopped(e)) => return Err(e),
            Err(Failure::Unavailable(why)) => {
                self.open_breaker(why);
                out.extend(records.iter().map(|_| Err(self.breaker.why.clone())));
            }
            Err(Failure::Guest(why)) if records.len() == 1 => {
                tracing::warn!("a record made the detector component fail on its own; it is passed on unscored: {why}");
                out.push(Err(format!("not scored: {why}")));
                self.breaker.failures_in_a_row += 1;
                if self.breaker.failures_in_a_row >= BREAKER_FAILURES {
                    self.open_breaker(format!("{BREAKER_FAILURES} records in a row made it fail, the last: {why}"));
                }
            }
            Err(Failure::Guest(why)) => {
                tracing::debug!("a batch of {} records failed ({why}); splitting it", records.len());
                // Each part reports on a fresh instance: what one reports
                // must not be reported again by the next.
                self.memory.splitting = true;
                let (left, right) = records.split_at(records.len() / 2);
                self.score_part(left, out)?;
                self.score_part(right, out)?;
            }
        }
        Ok(())
    }

    /// Opens the circuit breaker, with its one warning.
    fn open_breaker(&mut self, why: String) {
        self.breaker.backoff = BREAKER_BACKOFF;
        self.breaker.open_until = Some(Instant::now() + BREAKER_BACKOFF);
        tracing::warn!(
            "the detector component keeps failing ({why}); records are passed on unscored until it recovers (checked again with backoff, first in {} s)",
            BREAKER_BACKOFF.as_secs()
        );
        crate::audit::breaker("detector", true, &why);
        self.breaker.why = format!("not scored: the detector component is failing ({why})");
    }
}

/// Everything a fresh instance is made from (see
/// [`ComponentDetector::instantiate`]), owned, so that a helper can make
/// its own on its own thread: making one (Argon2id, AES-GCM in wasm, the
/// network's Gram matrix) takes about a tenth of a second.
#[derive(Clone)]
struct Recipe {
    engine: Engine,
    component: Component,
    linker: Linker<State>,
    /// The model file and its passphrase.
    model: Vec<u8>,
    passphrase: String,
    /// The threshold set over the model's own, if any.
    threshold: Option<f64>,
    /// Whether normal verdicts carry terms ([`ComponentDetector::set_explain`]).
    explain_all: bool,
    /// The time limit of a call.
    limit: Duration,
    stop: Option<Arc<AtomicBool>>,
}

impl Recipe {
    /// A fresh instance with the model (and threshold) loaded.
    fn instantiate(&self) -> Result<Instance, LoadError> {
        let state = State {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(MEMORY_LIMIT)
                .memories(MAX_MEMORIES)
                .tables(MAX_TABLES)
                .table_elements(MAX_TABLE_ELEMENTS)
                .instances(MAX_INSTANCES)
                .trap_on_grow_failure(true)
                .build(),
            call_started: Instant::now(),
            stop: self.stop.clone(),
            interrupted: None,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        let limit = self.limit;
        store.epoch_deadline_callback(move |mut ctx| {
            let state = ctx.data_mut();
            let running = state.call_started.elapsed();
            if state.stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) && running >= STOP_GRACE {
                state.interrupted = Some(Interruption::Stop);
                return Ok(UpdateDeadline::Interrupt);
            }
            if running >= limit {
                state.interrupted = Some(Interruption::TimeLimit);
                return Ok(UpdateDeadline::Interrupt);
            }
            Ok(UpdateDeadline::Continue(1))
        });
        let bindings = guarded(&mut store, "starting", limit, |store| Detector::instantiate(store, &self.component, &self.linker))
            .map_err(|f| anyhow!(f).context("cannot instantiate the detector component (is it a Logarithm detector?)"))?;
        let api = bindings.logarithm_detector_scoring().detector();
        let handle = guarded(&mut store, "loading the model", limit, |store| api.call_create(store, &self.model, &self.passphrase))
            .map_err(anyhow::Error::from)?
            .map_err(|e| LoadError::Model(error_from_wit(e)))?;
        if let Some(t) = self.threshold {
            guarded(&mut store, "setting the threshold", limit, |store| api.call_set_threshold(store, handle, t))
                .map_err(anyhow::Error::from)?
                .map_err(|e| anyhow!(error_from_wit(e)))?;
        }
        if !self.explain_all {
            guarded(&mut store, "setting explanations", limit, |store| api.call_set_explain(store, handle, false))
                .map_err(anyhow::Error::from)?;
        }
        Ok(Instance { store, bindings, handle })
    }
}

/// Compiles a component, or loads its compiled code from `cache`, where
/// it is kept under a hash of the component and of what the compiled code
/// depends on (wasmtime's version and settings, the CPU's features); other
/// files there are earlier builds' and are removed. A cache that cannot be
/// read or written costs the time to compile, nothing else.
///
/// Only a cache that is this user's is used: the data directory, the cache
/// directory (not a link) and the file must belong to the effective user.
/// Compiled code runs as it is, so root running `logarithm info` on the
/// service's directory must not run a file the service's user (which reads
/// untrusted input) could have planted (review).
fn compile(engine: &Engine, bytes: &[u8], cache: Option<&Path>) -> wasmtime::Result<Component> {
    use std::hash::{Hash, Hasher};
    use std::os::unix::fs::MetadataExt;
    let euid = crate::datadir::effective_uid();
    let ours = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.uid() == euid && !m.file_type().is_symlink());
    let usable = |dir: &Path| dir.parent().is_some_and(ours) && (!dir.exists() || ours(dir));
    let Some(dir) = cache.filter(|d| usable(d)) else {
        return Component::new(engine, bytes);
    };
    let mut hasher = xxhash_rust::xxh3::Xxh3Default::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.write(bytes);
    let name = format!("component-{:032x}.cwasm", hasher.digest128());
    let path = dir.join(&name);
    // Opened without following a link, and checked by its descriptor.
    let cached = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(&path).and_then(|mut f| {
        let meta = f.metadata()?;
        if !meta.is_file() || meta.uid() != euid {
            return Err(std::io::Error::other("not a file of this user's"));
        }
        let mut code = Vec::with_capacity(meta.len() as usize);
        f.read_to_end(&mut code).map(|_| code)
    });
    if let Err(e) = &cached
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::debug!("compiling the detector component again: not using {}: {e}", path.display());
    }
    if let Ok(code) = cached {
        // SAFETY: wasmtime runs compiled code as it is, so it must come from
        // `Engine::precompile_component`. It does: the cache lives in the
        // data directory (mode 0700, files 0600), which is this user's, is
        // written only below, and whoever can write there can read the
        // model's key anyway.
        match unsafe { Component::deserialize(engine, &code) } {
            Ok(component) => return Ok(component),
            Err(e) => tracing::debug!("compiling the detector component again: cannot load {}: {e:#}", path.display()),
        }
    }
    let code = engine.precompile_component(bytes)?;
    let kept =
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).and_then(|()| tempfile::NamedTempFile::new_in(dir)).and_then(
            |mut file| {
                file.write_all(&code)?;
                file.persist(&path).map_err(|e| e.error)
            },
        );
    match kept {
        Ok(_) => {
            for old in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let file = old.file_name().to_string_lossy().into_owned();
                if file.starts_with("component-") && file.ends_with(".cwasm") && file != name {
                    let _ = std::fs::remove_file(old.path());
                }
            }
        }
        Err(e) => tracing::debug!("cannot keep the compiled detector component in {}: {e}", dir.display()),
    }
    // SAFETY: just compiled by this engine.
    unsafe { Component::deserialize(engine, &code) }
}

/// A thread that analyses parts of batches in its own instance (see
/// [`ComponentDetector::set_threads`]). The instance lives on the thread;
/// parts go there and come back over channels (issue 11: a thread
/// started per batch cost a third more CPU time than it saved).
struct Helper {
    jobs: Option<SyncSender<Job>>,
    done: Receiver<Reply>,
    thread: Option<JoinHandle<()>>,
    /// Whether it has an instance to analyse in.
    instance: Made,
}

/// Whether a helper has an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Made {
    /// No (or it failed): it is asked to make one before its next part.
    No,
    /// It is making one.
    Making,
    Yes,
}

/// What a helper is asked to do.
enum Job {
    /// Make a fresh instance, and analyse in it from now on.
    Make(Box<Recipe>),
    /// Analyse this part under this time limit.
    Analyse(wit::PackedRecords, Duration),
}

/// What a helper answers.
enum Reply {
    /// Its instance is made, or why not.
    Made(Result<(), String>),
    /// A part back (its buffers, unless the thread is gone) and its
    /// analyses, or why there are none.
    Analysed(Analysed),
}

type Analysed = (Option<wit::PackedRecords>, Result<Result<wit::PackedAnalyses, wit::Error>, Failure>);

impl Helper {
    fn start(n: usize) -> std::io::Result<Self> {
        let (jobs, inbox) = sync_channel::<Job>(2);
        let (outbox, done) = sync_channel::<Reply>(2);
        let thread = std::thread::Builder::new().name(format!("detector {n}")).spawn(move || {
            let mut instance: Option<Box<Instance>> = None;
            // Blocks at once: between parts it waits for the live instance
            // to conclude a batch and fill the next, and polling meanwhile
            // would take the core the readers need (measured).
            for job in inbox {
                let reply = match job {
                    Job::Make(recipe) => {
                        // Any instance it had failed and was dropped.
                        let made = recipe.instantiate();
                        Reply::Made(made.map(|fresh| instance = Some(Box::new(fresh))).map_err(|e| format!("{e:#}")))
                    }
                    Job::Analyse(packed, limit) => {
                        let result = match instance.as_deref_mut() {
                            Some(instance) => analyse(instance, &packed, limit),
                            None => Err(Failure::Guest("the scoring thread has no detector instance".into())),
                        };
                        if result.is_err() {
                            // Not to be trusted after a failure.
                            instance = None;
                        }
                        Reply::Analysed((Some(packed), result))
                    }
                };
                if outbox.send(reply).is_err() {
                    break;
                }
            }
            if let Some(instance) = instance.as_deref_mut() {
                let _ = instance.handle.resource_drop(&mut instance.store);
            }
        })?;
        Ok(Self { jobs: Some(jobs), done, thread: Some(thread), instance: Made::No })
    }

    /// Whether its thread ended (it cannot panic, but if it did).
    fn ended(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    fn send(&self, job: Job) {
        // A thread that ended is found by `receive`.
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(job);
        }
    }

    /// Its instance made, or why not; `None` while it is being made
    /// (unless asked to `wait`).
    fn made(&mut self, wait: bool) -> Option<Result<(), String>> {
        let reply = if wait { self.done.recv().map_err(|_| TryRecvError::Disconnected) } else { self.done.try_recv() };
        match reply {
            Ok(Reply::Made(made)) => Some(made),
            Ok(Reply::Analysed(_)) => Some(Err("a scoring thread answered out of turn".into())),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err("a scoring thread ended".into())),
        }
    }

    /// The part sent last, analysed; sets `waited` if it was not back yet.
    fn receive(&mut self, waited: &mut bool) -> Analysed {
        let reply = match self.done.try_recv() {
            Ok(reply) => Some(reply),
            Err(_) => {
                *waited = true;
                next(&self.done)
            }
        };
        match reply {
            Some(Reply::Analysed(analysed)) => analysed,
            Some(Reply::Made(_)) | None => {
                self.instance = Made::No;
                (None, Err(Failure::Guest("a scoring thread ended or answered out of turn".into())))
            }
        }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        // No part is in flight here (each is received before the batch
        // ends): the thread ends as soon as its inbox closes.
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The next message on `channel`, `None` once it is closed. It is polled
/// for up to [`SPIN`] before the thread sleeps: parts are balanced
/// ([`part_bounds`]), so the live instance waits for a helper's part a
/// few microseconds when it waits at all, and waking a sleeping thread
/// takes tens (unique lines: 5% faster).
/// Between polls the core goes to any other thread that is ready (the
/// readers).
fn next<T>(channel: &Receiver<T>) -> Option<T> {
    let started = Instant::now();
    loop {
        match channel.try_recv() {
            Ok(message) => return Some(message),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) if started.elapsed() < SPIN => std::thread::yield_now(),
            Err(TryRecvError::Empty) => return channel.recv().ok(),
        }
    }
}

/// How long [`next`] polls before it sleeps.
const SPIN: Duration = Duration::from_micros(200);

/// The records of each of `parts` parts of a batch of `len` (at least
/// `parts`): the first, the live instance's, `weight` times as large as
/// each of the others, which are even. The live instance also concludes
/// the parts and fills the next batch, but a helper shares its core with
/// the readers: on this machine the balance came out at a live part of
/// about 57%, and 50% was 10-30% slower on new lines; so it is found as
/// it goes ([`WEIGHT_STEP`]), not fixed. Every part gets a record.
fn part_bounds(len: usize, parts: usize, weight: f64) -> Vec<std::ops::Range<usize>> {
    let helpers = parts - 1;
    let first = ((len as f64 * weight / (weight + helpers as f64)).round() as usize).clamp(1, len - helpers);
    let rest = len - first;
    std::iter::once(0..first).chain((0..helpers).map(|j| first + j * rest / helpers..first + (j + 1) * rest / helpers)).collect()
}

/// One `analyse-packed` call into `instance`, under the time limit.
fn analyse(
    instance: &mut Instance,
    packed: &wit::PackedRecords,
    limit: Duration,
) -> Result<Result<wit::PackedAnalyses, wit::Error>, Failure> {
    let (bindings, handle) = (&instance.bindings, instance.handle);
    guarded(&mut instance.store, "scoring", limit, |store| {
        bindings.logarithm_detector_scoring().detector().call_analyse_packed(store, handle, packed)
    })
}

/// Buffers for [`pack`], empty.
fn empty_packed() -> wit::PackedRecords {
    wit::PackedRecords { text: String::new(), lengths: Vec::new(), timestamps: Vec::new(), meta: Vec::new() }
}

/// Packs records for `score-packed`, reusing `packed`'s buffers.
fn pack(records: &[&LogRecord], packed: &mut wit::PackedRecords) {
    packed.text.clear();
    packed.lengths.clear();
    packed.timestamps.clear();
    packed.meta.clear();
    for r in records {
        // Lengths beyond u32 cannot occur: a call carries at most
        // MAX_BATCH_BYTES (`check_batch`), and lines are cut far below it.
        let len = |s: &str| u32::try_from(s.len()).unwrap_or(u32::MAX);
        packed.text.push_str(&r.source);
        packed.text.push_str(&r.host);
        packed.text.push_str(&r.message);
        let (lengths, timestamp, meta) = PackedRecord {
            timestamp_us: r.timestamp_us,
            priority: r.priority,
            source_len: len(&r.source),
            host_len: len(&r.host),
            message_len: len(&r.message),
        }
        .to_lists();
        packed.lengths.extend(lengths);
        packed.timestamps.push(timestamp);
        packed.meta.push(meta);
    }
}

/// The verdicts of a `score-packed` call on `count` records, or why they
/// cannot be trusted.
fn unpack(packed: wit::PackedVerdicts, count: usize) -> Result<Vec<Verdict>, String> {
    if packed.scores.len() != count {
        return Err(format!("the detector component returned {} scores for {count} records", packed.scores.len()));
    }
    let mut verdicts: Vec<Verdict> = packed.scores.into_iter().map(Verdict::only_score).collect();
    let mut last = None;
    for (i, verdict) in packed.details {
        if last.is_some_and(|l| i <= l) || i as usize >= count {
            return Err(format!("the detector component returned verdict details out of order or range (record {i} of {count})"));
        }
        last = Some(i);
        verdicts[i as usize] = verdict_from_wit(verdict);
    }
    Ok(verdicts)
}

fn record_to_wit(r: &LogRecord) -> wit::LogRecord {
    wit::LogRecord {
        timestamp_us: r.timestamp_us,
        source: r.source.clone(),
        host: r.host.clone(),
        priority: r.priority,
        message: r.message.clone(),
    }
}

fn verdict_from_wit(v: wit::Verdict) -> Verdict {
    Verdict {
        score: v.score,
        anomalous: v.anomalous,
        terms: v.terms.into_iter().map(|t| Term { text: t.text, weight: t.weight, unseen: t.unseen }).collect(),
        report: match v.report {
            wit::Report::Quiet => Report::Quiet,
            wit::Report::New => Report::New,
            wit::Report::Worse => Report::Worse,
            wit::Report::Counted => Report::Counted,
        },
        repeat: v.repeat.map(|r| Repeat { template: r.template, count: r.count, first_timestamp_us: r.first_timestamp_us }),
        burst: v.burst.map(|b| Burst { template: b.template, count: b.count, window_secs: b.window_secs, usual: b.usual }),
    }
}

impl Drop for ComponentDetector {
    fn drop(&mut self) {
        // Guest resources must be dropped explicitly; a failure here only
        // means the instance is already unusable.
        if let Some(instance) = self.instance.as_mut() {
            let _ = instance.handle.resource_drop(&mut instance.store);
        }
    }
}

/// [`logarithm_detector::modelfile::check_version`], as an `anyhow` error.
pub fn check_version(expected: u32, sealed: u32) -> Result<()> {
    logarithm_detector::modelfile::check_version(expected, sealed).map_err(anyhow::Error::msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parts cover the batch in order, each with a record, the first
    /// `weight` times each of the others (to a record), the others even.
    #[test]
    fn parts_cover_the_batch_and_follow_the_weight() {
        for (len, parts) in [(128, 2), (129, 2), (256, 2), (1000, 3), (192, 3), (4, 4), (65_536, 8)] {
            for weight in [1.0 / MAX_WEIGHT, 0.5, 1.0, 1.02, 1.3, 2.0, MAX_WEIGHT] {
                let bounds = part_bounds(len, parts, weight);
                assert_eq!(bounds.len(), parts);
                assert_eq!((bounds[0].start, bounds[parts - 1].end), (0, len), "{bounds:?}");
                assert!(bounds.windows(2).all(|w| w[0].end == w[1].start) && bounds.iter().all(|b| !b.is_empty()), "{bounds:?}");
                let others: Vec<usize> = bounds[1..].iter().map(|b| b.len()).collect();
                assert!(others.iter().max().unwrap() - others.iter().min().unwrap() <= 1, "{bounds:?}");
                if len >= 100 * parts {
                    let ratio = bounds[0].len() as f64 / (others.iter().sum::<usize>() as f64 / others.len() as f64);
                    assert!((ratio / weight - 1.0).abs() < 0.05, "{len} in {parts} at {weight}: {bounds:?}");
                }
            }
        }
        assert_eq!(part_bounds(256, 2, 1.0), vec![0..128, 128..256]);
    }
}
