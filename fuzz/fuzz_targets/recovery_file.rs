#![no_main]
//! Fuzz target: see rempart::fuzzing::recovery_file.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rempart::fuzzing::recovery_file(data));
