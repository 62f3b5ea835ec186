//! Measures the in-memory index at a given number of chunks (default 10 million):
//! bytes per chunk (from the structures' sizes and from the process RSS), build and lookup
//! time. Run with `cargo run --release --example index_memory [CHUNKS]`.

use std::time::Instant;

use rempart::repo::index::{Index, IndexBuilder, IndexFile, IndexedPack};
use rempart::repo::pack::{BlobType, PackEntry};
use rempart::Id;

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
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
    let index = builder.finish();
    let built = started.elapsed();
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
    println!("chunks: {}", index.blob_count());
    println!("entry size: {} bytes", Index::ENTRY_SIZE);
    println!(
        "index structures: {:.1} MiB = {:.1} bytes per chunk",
        index.memory_bytes() as f64 / 1048576.0,
        index.memory_bytes() as f64 / chunks as f64
    );
    println!(
        "process RSS growth with only the index left: {:.1} bytes per chunk (includes allocator slack)",
        (after as f64 - baseline as f64) / chunks as f64
    );
    println!("process RSS with the index loaded: {:.0} MiB", after as f64 / 1048576.0);
    println!(
        "build: {:.2} s; lookups: {:.0} ns each",
        built.as_secs_f64(),
        lookup.as_nanos() as f64 / lookups as f64
    );
}
