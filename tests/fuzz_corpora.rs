//! Replays the fuzzers' saved corpora (fuzz/corpus/TARGET/*) and the seeds through every
//! fuzz target with stable `cargo test`: no input may panic. Every crash a fuzzer finds is
//! saved under fuzz/corpus/TARGET/ (as `crash-*`), so it stays a regression test here.
//! `REMPART_WRITE_FUZZ_SEEDS=1` writes the seeds into the corpus folders.

use std::path::Path;

#[test]
fn every_saved_input_and_seed_decodes_without_panicking() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let write = std::env::var("REMPART_WRITE_FUZZ_SEEDS").is_ok_and(|v| v == "1");
    let seeds = rempart::fuzzing::seeds();
    let mut replayed = 0;
    for (name, target) in rempart::fuzzing::TARGETS {
        let mine: Vec<&Vec<u8>> = seeds.iter().filter(|(n, _)| n == name).map(|(_, b)| b).collect();
        assert!(!mine.is_empty(), "no seed for target {name}");
        for s in &mine {
            target(s);
        }
        let dir = root.join(name);
        if write {
            std::fs::create_dir_all(&dir).unwrap();
            for (i, s) in mine.iter().enumerate() {
                std::fs::write(dir.join(format!("seed-{i}")), s).unwrap();
            }
        }
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let bytes = std::fs::read(e.path()).unwrap();
            let r = std::panic::catch_unwind(|| target(&bytes));
            assert!(r.is_ok(), "target {name} panicked on {}", e.path().display());
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} saved inputs");
}
