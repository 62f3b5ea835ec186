#![no_main]
//! Fuzz target: see rempart::fuzzing::pack_header.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rempart::fuzzing::pack_header(data));
