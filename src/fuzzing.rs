//! Entry points for the fuzz targets in `fuzz/fuzz_targets/` and for the corpus replay test.
//!
//! Every decoder that reads repository bytes or user files gets one function that takes
//! arbitrary bytes and must return without panicking, whatever they hold. Sealed objects stop
//! at their AEAD tag, so fuzzing them as stored would only exercise the tag check: the
//! functions here take the bytes *after* decryption (what an attacker holding the key, or a
//! bug in rempart's own writer, could produce), and [`envelope`] fuzzes the sealed envelope
//! itself. The unit test below replays the saved corpora with stable `cargo test`.

use std::path::Path;

use crate::crypto::Keys;

/// A fixed key, so that the envelope target is deterministic.
fn keys() -> Keys {
    Keys::from_master([7u8; 64])
}

/// A key object as stored (clear JSON): decode, and check its parameters without deriving.
pub fn key_file(data: &[u8]) {
    if let Ok(k) = crate::repo::keyfile::KeyFile::from_bytes(data, "fuzz") {
        // Only bound-checks: deriving with attacker parameters is what the bounds prevent.
        let mut p = k.kdf.clone();
        p.memory_kib = p.memory_kib.max(crate::crypto::kdf::MAX_MEMORY_KIB.saturating_add(1));
        let _ = p.derive(b"x");
    }
}

/// A recovery file as `rempart key export` writes it.
pub fn recovery_file(data: &[u8]) {
    let _ = crate::repo::keyfile::RecoveryFile::from_bytes(data, "fuzz");
}

/// The configuration object after decryption.
pub fn config(data: &[u8]) {
    if let Ok(c) = serde_json::from_slice::<crate::repo::config::Config>(data) {
        let _ = c.validate();
    }
}

/// A pack header after decryption, ending where the blobs end.
pub fn pack_header(data: &[u8]) {
    if data.len() < 8 {
        return;
    }
    let start = u64::from(u32::from_le_bytes(data[..4].try_into().expect("4 bytes")));
    let _ = crate::repo::pack::decode_header(&data[4..], start, "fuzz");
}

/// An index object after decryption.
/// Decoded with a 4 MiB bound instead of the 1 GiB of real reads: the same code, but an input
/// that decompresses to a gigabyte would otherwise take seconds per execution (the bound itself
/// is a unit test in repo::index).
pub fn index(data: &[u8]) {
    if let Ok(f) = crate::repo::index::IndexFile::decode_bounded(data, "fuzz", 4 << 20) {
        let mut b = crate::repo::index::IndexBuilder::default();
        b.add_file(crate::Id::default(), f);
        let index = b.finish();
        let _ = index.blob_count();
    }
}

/// A tree blob after decryption and decompression.
pub fn tree(data: &[u8]) {
    if let Ok(t) = crate::repo::tree::Tree::decode(data, "fuzz") {
        for n in &t.nodes {
            let _ = n.display_name();
        }
    }
}

/// A snapshot object after decryption.
pub fn snapshot(data: &[u8]) {
    if let Ok(s) = crate::repo::snapshot::Snapshot::decode(data, "fuzz") {
        let _ = s.same_paths(&["/".to_string()]);
    }
}

/// A lock object after decryption.
pub fn lock(data: &[u8]) {
    if let Ok(l) = serde_json::from_slice::<crate::repo::lock::LockInfo>(data) {
        let _ = l.describe();
        let _ = l.is_stale(chrono::Utc::now());
    }
}

/// An evidence record's repository copy after decryption, verified against a fixed key.
pub fn evidence_record(data: &[u8]) {
    if let Ok(copy) = serde_json::from_slice::<crate::evidence::ledger::RepoCopy>(data) {
        let key = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]).verifying_key();
        let _ = copy.entry.record();
        let entry = copy.entry.clone();
        let repo = crate::evidence::verify::RepoEvidence {
            repository_id: crate::evidence::verify::chain_repository(&entry.chain).to_string(),
            copies: vec![copy],
            keys: vec![],
        };
        let none = std::collections::HashSet::new();
        let _ = crate::evidence::verify::verify_ledger(
            std::slice::from_ref(&entry),
            &[repo],
            vec![],
            Some(&key),
            &[],
            &none,
        );
    }
}

/// A forget record after decryption.
pub fn forget_record(data: &[u8]) {
    let _ = serde_json::from_slice::<crate::repo::forgotten::ForgetRecord>(data);
}

/// A job file (TOML).
pub fn job_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let dir = Path::new("/nonexistent-fuzz");
    let defaults = crate::jobs::Defaults::new(dir, dir, None);
    let _ = crate::jobs::spec::parse_job(&dir.join("fuzz.toml"), text, &defaults);
}

/// A configuration file (TOML).
pub fn config_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = crate::settings::parse(Path::new("/nonexistent-fuzz/rempart.toml"), text);
}

/// A sealed object envelope, and a blob envelope, under a fixed key.
pub fn envelope(data: &[u8]) {
    let keys = keys();
    let _ = crate::crypto::seal::open_object(&keys, "snapshot", data, "fuzz");
    if data.len() > 16 {
        let salt: [u8; 16] = data[..16].try_into().expect("16 bytes");
        let entry = crate::repo::pack::PackEntry {
            blob_type: crate::repo::pack::BlobType::Data,
            compressed: data[0] & 1 == 1,
            id: crate::Id::default(),
            offset: 0,
            length: (data.len() - 16) as u32,
            raw_length: u32::from(data[1]) << 8,
        };
        let _ = crate::repo::pack::open_blob(&keys, &salt, &entry, &data[16..]);
    }
}

/// A fuzz target: takes any bytes, must never panic.
pub type Target = fn(&[u8]);

/// Every target by name (the fuzz crate and the corpus replay use the same table).
pub const TARGETS: &[(&str, Target)] = &[
    ("key_file", key_file),
    ("recovery_file", recovery_file),
    ("config", config),
    ("pack_header", pack_header),
    ("index", index),
    ("tree", tree),
    ("snapshot", snapshot),
    ("lock", lock),
    ("evidence_record", evidence_record),
    ("forget_record", forget_record),
    ("job_toml", job_toml),
    ("config_file", config_file),
    ("envelope", envelope),
];

/// One valid input per target, built from rempart's own encoders: the starting corpus (the
/// fuzzers mutate from there) and a replay that must decode.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    use crate::repo::index::{IndexFile, IndexedPack};
    use crate::repo::pack::{BlobType, PackEntry};
    use crate::repo::tree::{Node, NodeKind, Tree};
    let keys = keys();
    let mut out: Vec<(&'static str, Vec<u8>)> = Vec::new();
    let mut kdf = crate::crypto::kdf::KdfParams::new_random();
    kdf.memory_kib = 8;
    kdf.iterations = 1;
    let key = crate::repo::keyfile::KeyFile {
        version: 1,
        repository_id: crate::Id([1; 32]),
        kdf,
        wrapped_master: vec![0; 92],
        sealed_meta: crate::crypto::seal::seal_object(&keys, "key-meta", b"{}"),
    };
    out.push(("key_file", key.to_bytes()));
    let rec = crate::repo::keyfile::RecoveryFile::new(key);
    out.push(("recovery_file", serde_json::to_vec(&rec).expect("serializable")));
    let config = crate::repo::config::Config::new(3, 16 << 20).expect("valid");
    out.push(("config", serde_json::to_vec(&config).expect("serializable")));
    let entries: Vec<PackEntry> = (0..3u8)
        .map(|i| PackEntry {
            blob_type: if i == 2 { BlobType::Tree } else { BlobType::Data },
            compressed: i == 1,
            id: crate::Id([i; 32]),
            offset: 0,
            length: 100 + u32::from(i),
            raw_length: 200,
        })
        .collect();
    let mut header = 304u32.to_le_bytes().to_vec();
    for e in &entries {
        header.push(e.blob_type as u8);
        header.push(u8::from(e.compressed));
        header.extend_from_slice(&e.id.0);
        header.extend_from_slice(&e.length.to_le_bytes());
        header.extend_from_slice(&e.raw_length.to_le_bytes());
    }
    out.push(("pack_header", header));
    let index = IndexFile {
        supersedes: vec![crate::Id([5; 32])],
        packs: vec![IndexedPack { id: crate::Id([4; 32]), salt: [3; 16], size: 1000, blobs: entries }],
    };
    out.push(("index", index.encode()));
    let mut file = Node::new(b"file.txt", NodeKind::File);
    file.content = vec![crate::Id([8; 32])];
    file.size = 12;
    let mut dir = Node::new(b"dir", NodeKind::Dir);
    dir.subtree = Some(crate::Id([6; 32]));
    let mut link = Node::new(b"link", NodeKind::Symlink);
    link.link_target = b"file.txt".to_vec();
    out.push(("tree", Tree { nodes: vec![dir, file, link] }.encode()));
    let snap = crate::repo::snapshot::Snapshot {
        version: 1,
        time: chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("valid"),
        hostname: "host".into(),
        username: "user".into(),
        paths: vec!["/srv".into()],
        tags: vec!["t".into()],
        tree: crate::Id([2; 32]),
        parent: None,
        source: Default::default(),
        job: Some("job".into()),
        summary: Default::default(),
        program_version: "0".into(),
        repaired: None,
    };
    out.push(("snapshot", snap.encode()));
    let lock = crate::repo::lock::LockInfo {
        kind: crate::repo::lock::LockKind::Backup,
        operation: "backup".into(),
        hostname: "host".into(),
        username: "user".into(),
        pid: 1,
        started: snap.time,
        time: snap.time,
    };
    out.push(("lock", serde_json::to_vec(&lock).expect("serializable")));
    let entry = crate::evidence::ledger::LedgerEntry {
        chain: "host/repo".into(),
        seq: 1,
        record_id: "r1".into(),
        canonical: r#"{"job":"j","prev":"","seq":1,"status":"success","step":"backup"}"#.into(),
        hash: "00".repeat(32),
        signature: String::new(),
    };
    let copy = crate::evidence::ledger::RepoCopy { entry, public_key_pem: String::new() };
    out.push(("evidence_record", serde_json::to_vec(&copy).expect("serializable")));
    let forget = crate::repo::forgotten::ForgetRecord {
        version: 1,
        time: snap.time,
        host: "host".into(),
        operation: "forget".into(),
        snapshots: vec![crate::Id([1; 32])],
    };
    out.push(("forget_record", serde_json::to_vec(&forget).expect("serializable")));
    out.push((
        "job_toml",
        b"name = \"j\"\nsources = [\"/srv\"]\n[schedule]\nbackup = \"0 * * * *\"\n[retention]\nkeep_daily = 7\nkeep_within = \"30d\"\n[objectives]\nrpo = \"2h\"\nrto = \"15m\"\n".to_vec(),
    ));
    out.push((
        "config_file",
        b"jobs_dir = \"jobs\"\nstate_dir = \"/var/lib/rempart\"\n[daemon]\nlisten = \"127.0.0.1:8420\"\nmax_concurrent = 2\ngrace = \"60s\"\n".to_vec(),
    ));
    out.push(("envelope", crate::crypto::seal::seal_object(&keys, "snapshot", b"{}")));
    out
}

/// Replays the fuzzers' saved corpora (fuzz/corpus/TARGET/*) and the seeds through every fuzz
/// target: no input may panic. Every crash a fuzzer finds is saved under fuzz/corpus/TARGET/
/// (as `crash-*`), so it stays a regression test here. `REMPART_WRITE_FUZZ_SEEDS=1` writes the
/// seeds into the corpus folders.
#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn every_saved_input_and_seed_decodes_without_panicking() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        let write = std::env::var("REMPART_WRITE_FUZZ_SEEDS").is_ok_and(|v| v == "1");
        let seeds = super::seeds();
        let mut replayed = 0;
        for (name, target) in super::TARGETS {
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
}
