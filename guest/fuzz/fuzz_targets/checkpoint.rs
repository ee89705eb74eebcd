//! libFuzzer driver for [`logarithm_fuzz::checkpoint`]: `cargo fuzz run --fuzz-dir guest/fuzz checkpoint`
//! (see README, "Fuzzing").
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| logarithm_fuzz::checkpoint(data));
