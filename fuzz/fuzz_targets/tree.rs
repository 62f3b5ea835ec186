#![no_main]
//! Fuzz target: see rempart::fuzzing::tree.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rempart::fuzzing::tree(data));
