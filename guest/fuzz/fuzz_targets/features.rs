//! libFuzzer driver for [`logarithm_fuzz::features`]: `cargo fuzz run --fuzz-dir guest/fuzz features`
//! (see README, "Fuzzing").
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| logarithm_fuzz::features(data));
