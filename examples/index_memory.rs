//! Measures the in-memory index at a given number of chunks (default 10 million), in its full
//! form (check, prune) and its lookup form (backup, restore, drill): bytes per chunk (from the
//! structures' sizes and from the process RSS), build and lookup time, and the peak RSS of
//! the whole load. Run with `cargo run --release --example index_memory [CHUNKS]`.

use std::time::Instant;

use rempart::repo::index::{Index, IndexBuilder, IndexFile, IndexedPack};
use rempart::repo::pack::{BlobType, PackEntry};
use rempart::Id;

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

fn main() {
    let baseline = rss_bytes();
    let chunks: usize = std::env::args().nth(1).map(|a| a.parse().unwrap()).unwrap_or(10_000_000);
    let per_pack = 16; // 16 MiB packs of ~1 MiB chunks
                       // Synthetic index objects of 50,000 packs each, as a large repository would have, fed to
                       // the builder one at a time as `Repository::load_index` does.
    let started = Instant::now();
    let mut builder = IndexBuilder::default();
    let mut files = 0u64;
    let mut n = 0usize;
    let mut pack_no = 0u64;
    while n < chunks {
        let mut packs = Vec::new();
        while packs.len() < 50_000 && n < chunks {
            let mut blobs = Vec::with_capacity(per_pack);
            for i in 0..per_pack.min(chunks - n) {
                blobs.push(PackEntry {
                    blob_type: BlobType::Data,
                    compressed: true,
                    id: Id(*blake3::hash(&(n as u64).to_le_bytes()).as_bytes()),
                    offset: (i * 1_000_000) as u32,
                    length: 900_000,
                    raw_length: 1_048_576,
                });
                n += 1;
            }
            packs.push(IndexedPack {
                id: Id(*blake3::hash(&pack_no.to_be_bytes()).as_bytes()),
                salt: [0; 16],
                size: 16 << 20,
                blobs,
            });
            pack_no += 1;
        }
        builder.add_file(Id::of_bytes(&files.to_le_bytes()), IndexFile { supersedes: vec![], packs });
        files += 1;
    }
    let full = builder.finish();
    let built = started.elapsed();
    let after_full = rss_bytes();
    let full_bytes = full.memory_bytes();
    let started = Instant::now();
    let index = full.into_lookup();
    let converted = started.elapsed();
    let after = rss_bytes();
    let lookups = 1_000_000;
    let started = Instant::now();
    let mut found = 0;
    for i in 0..lookups {
        let id = Id(*blake3::hash(&((i * 7 % chunks) as u64).to_le_bytes()).as_bytes());
        found += usize::from(index.contains(&id));
    }
    let lookup = started.elapsed();
    assert_eq!(found, lookups);
    let per_chunk = |bytes: f64| bytes / chunks as f64;
    println!("chunks: {}", index.blob_count());
    println!(
        "entry size: full form {} bytes, lookup form {} bytes",
        Index::ENTRY_SIZE,
        Index::LOOKUP_ENTRY_SIZE
    );
    println!(
        "full form: structures {:.1} MiB = {:.1} bytes per chunk; process RSS growth {:.1} bytes per chunk",
        full_bytes as f64 / 1048576.0,
        per_chunk(full_bytes as f64),
        per_chunk(after_full as f64 - baseline as f64)
    );
    println!(
        "lookup form: structures {:.1} MiB = {:.1} bytes per chunk; process RSS growth with only it left {:.1} bytes per chunk (includes allocator slack)",
        index.memory_bytes() as f64 / 1048576.0,
        per_chunk(index.memory_bytes() as f64),
        per_chunk(after as f64 - baseline as f64)
    );
    println!("process RSS with the lookup form loaded: {:.0} MiB", after as f64 / 1048576.0);
    println!("peak RSS of the whole run: {:.0} MiB", peak_rss_bytes() as f64 / 1048576.0);
    println!(
        "build: {:.2} s; into the lookup form: {:.2} s; lookups in the lookup form: {:.0} ns each",
        built.as_secs_f64(),
        converted.as_secs_f64(),
        lookup.as_nanos() as f64 / lookups as f64
    );
}
