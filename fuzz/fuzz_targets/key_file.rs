#![no_main]
//! Fuzz target: see rempart::fuzzing::key_file.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rempart::fuzzing::key_file(data));
