#![no_main]
//! Fuzz target: see rempart::fuzzing::job_toml.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rempart::fuzzing::job_toml(data));
