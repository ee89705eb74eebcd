//! Logarithm's trainer as a library: fitting a model to log records
//! ([`fit`]), sealing and installing it ([`export`]), and generating
//! realistic fake logs ([`fakelogs`]).
//!
//! The features and scoring it fits are `logarithm_detector`'s own, the
//! very code the detector component runs, so training and serving agree.

pub mod corpus;
pub mod export;
pub mod fakelogs;
pub mod fit;
pub mod progress;
