//! Logarithm's trainer as a library: the training job ([`train`]) and its
//! parts, the on-disk training corpus ([`corpus`]), fitting a model
//! ([`fit`]), sealing and installing it ([`export`]); the evaluation on
//! labelled public logs ([`eval`]) and of what gets reported on generated
//! traffic ([`drift`]), and realistic fake logs ([`fakelogs`]).
//!
//! The features and scoring it fits are `logarithm_detector`'s own, the
//! very code the detector component runs, so training and serving agree.

pub mod corpus;
pub mod drift;
pub mod eval;
pub mod export;
pub mod fakelogs;
pub mod fit;
pub mod progress;
pub mod train;
