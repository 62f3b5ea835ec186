#![no_main]
//! Fuzz target: see rempart::fuzzing::lock.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rempart::fuzzing::lock(data));
