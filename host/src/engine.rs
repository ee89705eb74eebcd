//! The detector component under wasmtime. Every wasmtime call of the host
//! lives in this module: the rest of the host sees native records and
//! verdicts and never a wasm type.
//!
//! The component is linked with WASI preview 2 (a `wasm32-wasip2` std guest
//! imports it) but given nothing: no preopened directories, no environment,
//! no arguments, no network, no stdio. Its memory is capped.

use anyhow::{Context, Result, anyhow, bail};
use logarithm_detector::{Burst, LogRecord, ModelInfo, Repeat, Report, Term, Verdict};
use std::path::Path;
use wasmtime::component::{Component, Linker, ResourceAny, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};
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

/// A model loaded inside a component instance.
pub struct ComponentDetector {
    store: Store<State>,
    bindings: Detector,
    handle: ResourceAny,
    /// Whether normal verdicts carry terms ([`ComponentDetector::set_explain`]),
    /// kept for the next model.
    explain_all: bool,
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

impl ComponentDetector {
    /// Compiles and instantiates the component, then decrypts and loads
    /// `model` inside it with `passphrase`.
    pub fn load(source: ComponentSource<'_>, model: &[u8], passphrase: &str) -> Result<Self, LoadError> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        let engine = Engine::new(&config).wasm_context("cannot set up wasmtime")?;
        let component = match source {
            ComponentSource::Embedded => {
                Component::new(&engine, EMBEDDED_COMPONENT).wasm_context("cannot compile the embedded detector component")?
            }
            ComponentSource::File(path) => Component::from_file(&engine, path)
                .with_wasm_context(|| format!("cannot load the detector component {}", path.display()))?,
        };
        let mut linker = Linker::<State>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).wasm_context("cannot link WASI")?;
        let state = State {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new().memory_size(MEMORY_LIMIT).build(),
        };
        let mut store = Store::new(&engine, state);
        store.limiter(|s| &mut s.limits);
        let bindings = Detector::instantiate(&mut store, &component, &linker)
            .wasm_context("cannot instantiate the detector component (is it a Logarithm detector?)")?;
        let handle = bindings
            .logarithm_detector_scoring()
            .detector()
            .call_create(&mut store, model, passphrase)
            .wasm_context("the detector component trapped while loading the model")?
            .map_err(|e| LoadError::Model(error_from_wit(e)))?;
        Ok(Self { store, bindings, handle, explain_all: true })
    }

    /// Loads another model into the same instance (no recompilation), with
    /// `threshold` if given, and returns its threshold in force. The old
    /// model keeps scoring unless every step succeeded. The memory of kinds
    /// reported moves to the new model, which keeps those it still finds
    /// anomalous.
    pub fn replace_model(&mut self, model: &[u8], passphrase: &str, threshold: Option<f64>) -> Result<f64, LoadError> {
        let api = self.bindings.logarithm_detector_scoring().detector();
        let handle = api
            .call_create(&mut self.store, model, passphrase)
            .wasm_context("the detector component trapped while loading the model")?
            .map_err(|e| LoadError::Model(error_from_wit(e)))?;
        let ready = threshold
            .map_or(Ok(Ok(())), |t| api.call_set_threshold(&mut self.store, handle, t))
            .wasm_context("the detector component trapped in set-threshold")
            .and_then(|set| set.map_err(|e| anyhow!(error_from_wit(e))))
            .and_then(|()| {
                api.call_set_explain(&mut self.store, handle, self.explain_all)
                    .wasm_context("the detector component trapped in set-explain")
            })
            .and_then(|()| api.call_info(&mut self.store, handle).wasm_context("the detector component trapped in info"));
        match ready {
            Ok(info) => {
                // The kinds already reported carry over, less those the new
                // model knows (a retrained model clears them).
                let carried = api
                    .call_save_memory(&mut self.store, self.handle)
                    .and_then(|memory| api.call_restore_memory(&mut self.store, handle, &memory))
                    .wasm_context("the detector component trapped while carrying over the kinds reported");
                match carried {
                    Ok(Ok(kept)) => tracing::debug!("{kept} kinds of anomalies already reported carried over to the new model"),
                    Ok(Err(e)) => tracing::warn!("the kinds of anomalies already reported were not carried over: {}", error_from_wit(e)),
                    Err(e) => tracing::warn!("{e:#}"),
                }
                let old = std::mem::replace(&mut self.handle, handle);
                // The old detector is no longer used; failing to free it only leaks it.
                let _ = old.resource_drop(&mut self.store);
                Ok(info.threshold)
            }
            Err(e) => {
                let _ = handle.resource_drop(&mut self.store);
                Err(LoadError::Host(e))
            }
        }
    }

    /// Describes the loaded model.
    pub fn info(&mut self) -> Result<ModelInfo> {
        let i = self
            .bindings
            .logarithm_detector_scoring()
            .detector()
            .call_info(&mut self.store, self.handle)
            .wasm_context("the detector component trapped in info")?;
        Ok(ModelInfo {
            version: i.version,
            format_version: i.format_version,
            vocabulary_size: i.vocabulary_size,
            training_lines: i.training_lines,
            threshold: i.threshold,
            trained_at: i.trained_at,
            key_fingerprint: i.key_fingerprint,
        })
    }

    /// Overrides the model's threshold.
    pub fn set_threshold(&mut self, threshold: f64) -> Result<()> {
        self.bindings
            .logarithm_detector_scoring()
            .detector()
            .call_set_threshold(&mut self.store, self.handle, threshold)
            .wasm_context("the detector component trapped in set-threshold")?
            .map_err(|e| anyhow!(error_from_wit(e)))
    }

    /// Whether every verdict names its terms (the default) or only
    /// anomalies do: a monitor that prints only anomalies saves copying an
    /// explanation out of the component for every normal line. Kept for
    /// models loaded later.
    pub fn set_explain(&mut self, all: bool) -> Result<()> {
        self.explain_all = all;
        self.bindings
            .logarithm_detector_scoring()
            .detector()
            .call_set_explain(&mut self.store, self.handle, all)
            .wasm_context("the detector component trapped in set-explain")
    }

    /// Scores a batch of records in one call into the component.
    pub fn score_batch(&mut self, records: &[LogRecord]) -> Result<Vec<Verdict>> {
        let batch: Vec<wit::LogRecord> = records.iter().map(record_to_wit).collect();
        let verdicts = self
            .bindings
            .logarithm_detector_scoring()
            .detector()
            .call_score_batch(&mut self.store, self.handle, &batch)
            .wasm_context("the detector component trapped while scoring")?;
        if verdicts.len() != records.len() {
            bail!("the detector component returned {} verdicts for {} records", verdicts.len(), records.len());
        }
        Ok(verdicts.into_iter().map(verdict_from_wit).collect())
    }

    /// The component's memory of reported kinds, to keep across a restart
    /// or hand to the next model ([`ComponentDetector::restore_memory`]).
    pub fn save_memory(&mut self) -> Result<Vec<u8>> {
        self.bindings
            .logarithm_detector_scoring()
            .detector()
            .call_save_memory(&mut self.store, self.handle)
            .wasm_context("the detector component trapped in save-memory")
    }

    /// Restores a memory of reported kinds; returns the kinds kept.
    pub fn restore_memory(&mut self, state: &[u8]) -> Result<u32> {
        self.bindings
            .logarithm_detector_scoring()
            .detector()
            .call_restore_memory(&mut self.store, self.handle, state)
            .wasm_context("the detector component trapped in restore-memory")?
            .map_err(|e| anyhow!(error_from_wit(e)))
    }

    /// Scores one record (one call into the component; batches are faster).
    pub fn score(&mut self, record: &LogRecord) -> Result<Verdict> {
        let verdict = self
            .bindings
            .logarithm_detector_scoring()
            .detector()
            .call_score(&mut self.store, self.handle, &record_to_wit(record))
            .wasm_context("the detector component trapped while scoring")?;
        Ok(verdict_from_wit(verdict))
    }
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
        let _ = self.handle.resource_drop(&mut self.store);
    }
}
