//! Logarithm's detection core: everything between a log record and its verdict.
//!
//! The same code runs natively (the trainer fits models with it, the tests
//! check it, the Fluent Bit plugin scores with it) and inside the
//! WebAssembly component (built for `wasm32-wasip2`) and the Fluent Bit
//! module (`wasm32-wasip1`), so training and serving cannot drift:
//!
//! ```text
//! LogRecord ─► tokenizer ─► features (TF-IDF) ─► network (autoencoder)
//!           ─► raw error ─► calibration ─► Verdict { score, anomalous, terms }
//! ```
//!
//! [`parse`] is the one place where what a source or a log shipper hands
//! over (a raw line, a journald, Fluent Bit, rsyslog or NDJSON record)
//! becomes a [`LogRecord`]. [`modelfile`] seals and opens the encrypted
//! model file that carries a fitted [`Model`] from the trainer to the
//! detector.

pub mod cache;
pub mod calibration;
pub mod detector;
pub mod enrich;
pub mod error;
pub mod features;
pub mod kinds;
/// The filters' memory of reported kinds across restarts: natively (the
/// plugin, `logarithm filter`) and in the Fluent Bit module.
#[cfg(not(all(target_arch = "wasm32", target_env = "p2")))]
pub mod memory;
pub mod model;
pub mod modelfile;
pub mod network;
pub mod parse;
pub mod record;
pub mod tokenizer;

// The faces: each a thin adapter over the same core, one per target.
/// `wasm32-wasip2`: the WebAssembly component (the WIT `scoring` interface).
#[cfg(all(target_arch = "wasm32", target_env = "p2", feature = "component"))]
mod component;
/// `wasm32-wasip1`: the core module Fluent Bit's `filter_wasm` loads.
#[cfg(all(target_arch = "wasm32", target_env = "p1"))]
mod fluentbit;
/// Native, `--features fluent-bit-plugin`: a filter plugin Fluent Bit loads
/// as a shared library.
#[cfg(all(not(target_arch = "wasm32"), feature = "fluent-bit-plugin"))]
pub mod fluentbit_plugin;
/// The model of both Fluent Bit faces: found, opened and kept current.
#[cfg(any(all(target_arch = "wasm32", target_env = "p1"), all(not(target_arch = "wasm32"), feature = "fluent-bit-plugin")))]
mod watch;

/// In both wasm faces, Talc instead of the default allocator (wasi-libc's
/// dlmalloc), where allocating and freeing cost about 190 instructions a
/// pair, a tenth of scoring a line (issue 11). The modules are
/// single-threaded (no `atomics`); Talc grows memory with `memory.grow`,
/// like dlmalloc, so Fluent Bit's heap appended by WAMR is left alone.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

pub use detector::{Detector, ModelInfo, PackedAnalyses, PackedVerdicts, Term, Verdict};
pub use error::Error;
pub use kinds::{Burst, Repeat, Report};
pub use model::{Model, ModelMeta};
pub use record::{LogRecord, PackedRecord, RecordView};
