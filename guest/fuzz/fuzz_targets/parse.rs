//! libFuzzer driver for [`logarithm_fuzz::parse`]: `cargo fuzz run --fuzz-dir guest/fuzz parse`
//! (see README, "Fuzzing").
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| logarithm_fuzz::parse(data));
