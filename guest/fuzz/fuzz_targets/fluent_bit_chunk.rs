//! libFuzzer driver for [`logarithm_fuzz::fluent_bit_chunk`]: `cargo fuzz run --fuzz-dir guest/fuzz fluent_bit_chunk`
//! (see README, "Fuzzing").
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| logarithm_fuzz::fluent_bit_chunk(data));
