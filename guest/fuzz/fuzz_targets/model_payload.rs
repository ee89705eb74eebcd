//! libFuzzer driver for [`logarithm_fuzz::model_payload`]: `cargo fuzz run --fuzz-dir guest/fuzz model_payload`
//! (see README, "Fuzzing").
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| logarithm_fuzz::model_payload(data));
