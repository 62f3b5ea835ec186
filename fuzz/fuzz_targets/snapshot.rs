#![no_main]
//! Fuzz target: see rempart::fuzzing::snapshot.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rempart::fuzzing::snapshot(data));
