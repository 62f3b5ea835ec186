#![no_main]
//! Fuzz target: see rempart::fuzzing::evidence_record.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rempart::fuzzing::evidence_record(data));
