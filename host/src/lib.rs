//! Logarithm's native host, as a library: the parts of the `logarithm`
//! binary that the trainer shares (sources, parsing, the data directory,
//! logging) and the wasmtime embedding of the detector component.
//!
//! A line's path through the host: [`sources`] reads it (records are made
//! by the core's `logarithm_detector::parse`),
//! [`monitor`] batches it into the component via [`engine`], and [`output`]
//! prints the verdict.

pub mod alert;
pub mod audit;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod datadir;
pub mod engine;
pub mod export;
pub mod filter;
pub mod logging;
pub mod metrics;
pub mod monitor;
pub mod output;
pub mod signals;
pub mod sources;
