//! libFuzzer driver for [`logarithm_fuzz::config`]: `cargo fuzz run --fuzz-dir guest/fuzz config`
//! (see README, "Fuzzing").
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| logarithm_fuzz::config(data));
