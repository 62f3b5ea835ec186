#![no_main]
//! Fuzz target: see rempart::fuzzing::config_file.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rempart::fuzzing::config_file(data));
