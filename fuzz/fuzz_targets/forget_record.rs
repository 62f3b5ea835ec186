#![no_main]
//! Fuzz target: see rempart::fuzzing::forget_record.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rempart::fuzzing::forget_record(data));
