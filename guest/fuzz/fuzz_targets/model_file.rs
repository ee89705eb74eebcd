//! libFuzzer driver for [`logarithm_fuzz::model_file`]: `cargo fuzz run --fuzz-dir guest/fuzz model_file`
//! (see README, "Fuzzing").
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| logarithm_fuzz::model_file(data));
