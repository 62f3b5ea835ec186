//! One conformance suite for the storage contract, run against the local backend and against
//! a real S3 server (Garage, started by scripts/test).

mod common;

use std::sync::Arc;

use bytes::Bytes;
use rempart::storage::{Kind, Storage};
use rempart::Error;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

async fn conformance(s: Arc<dyn Storage>) {
    let label = s.location();
    // Missing objects are NotFound, never an I/O error.
    match s.get(Kind::Snapshot, "00aa").await {
        Err(Error::NotFound(msg)) => assert!(msg.contains("00aa"), "{label}: {msg}"),
        other => panic!("{label}: missing object gave {other:?}"),
    }
    // Put and get round trip; putting the same name again is harmless.
    let data = Bytes::from(common::random_bytes(1, 100_000));
    s.put(Kind::Index, "aa01", data.clone()).await.unwrap();
    s.put(Kind::Index, "aa01", data.clone()).await.unwrap();
    assert_eq!(s.get(Kind::Index, "aa01").await.unwrap(), data, "{label}");
    // Ranged reads, and a range past the end is integrity damage naming the object.
    assert_eq!(s.get_range(Kind::Index, "aa01", 10..1010).await.unwrap(), data.slice(10..1010), "{label}");
    match s.get_range(Kind::Index, "aa01", 99_000..101_000).await {
        Err(e) if e.is_integrity() => assert!(e.to_string().contains("aa01"), "{label}: {e}"),
        other => panic!("{label}: range past the end gave {other:?}"),
    }
    // Listing by kind (prefixes do not leak into each other); sizes are reported.
    s.put(Kind::Snapshot, "bb02", Bytes::from_static(b"snap")).await.unwrap();
    s.put(Kind::Pack, "cc03", Bytes::from_static(b"pack")).await.unwrap();
    s.put(Kind::Pack, "cd04", Bytes::from_static(b"pack two")).await.unwrap();
    s.put(Kind::Config, "config", Bytes::from_static(b"cfg")).await.unwrap();
    let mut packs: Vec<_> = s.list(Kind::Pack).await.unwrap().into_iter().map(|o| (o.name, o.size)).collect();
    packs.sort();
    assert_eq!(packs, vec![("cc03".to_string(), 4), ("cd04".to_string(), 8)], "{label}");
    assert_eq!(s.list(Kind::Snapshot).await.unwrap().len(), 1, "{label}");
    assert_eq!(s.list(Kind::Index).await.unwrap().len(), 1, "{label}");
    assert_eq!(s.list(Kind::Config).await.unwrap().len(), 1, "{label}");
    assert!(s.list(Kind::Lock).await.unwrap().is_empty(), "{label}");
    // Delete, and deleting what is gone succeeds.
    s.delete(Kind::Pack, "cc03").await.unwrap();
    s.delete(Kind::Pack, "cc03").await.unwrap();
    assert!(matches!(s.get(Kind::Pack, "cc03").await, Err(Error::NotFound(_))), "{label}");
    assert_eq!(s.list(Kind::Pack).await.unwrap().len(), 1, "{label}");
    // Large objects: as one put (multipart on S3) and from a staged file.
    let big = Bytes::from(common::random_bytes(2, 21 << 20));
    s.put(Kind::Pack, "dd05", big.clone()).await.unwrap();
    assert_eq!(s.get(Kind::Pack, "dd05").await.unwrap(), big, "{label}: large put");
    let staging = s.staging_dir().unwrap_or_else(|| std::env::temp_dir().join("rempart-conformance"));
    std::fs::create_dir_all(&staging).unwrap();
    let staged = staging.join(format!(".pack-{:08x}.tmp", rand::random::<u32>()));
    std::fs::write(&staged, &big[..19 << 20]).unwrap();
    s.put_file(Kind::Pack, "ee06", &staged).await.unwrap();
    let _ = std::fs::remove_file(&staged);
    assert_eq!(s.get(Kind::Pack, "ee06").await.unwrap(), big.slice(..19 << 20), "{label}: staged put");
    assert_eq!(
        s.get_range(Kind::Pack, "ee06", (18 << 20)..(18 << 20) + 5).await.unwrap(),
        big.slice((18 << 20)..(18 << 20) + 5)
    );
    // Staged files never show up as objects.
    let names: Vec<String> = s.list(Kind::Pack).await.unwrap().into_iter().map(|o| o.name).collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{label}: {names:?}");
    assert_eq!(names.len(), 3, "{label}: {names:?}");
}

#[test]
fn local_backend_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let s = rempart::storage::open_local(dir.path()).unwrap();
    rt.block_on(conformance(s));
}

#[test]
fn s3_backend_keeps_the_contract() {
    let prefix = format!("conformance-{:016x}", rand::random::<u64>());
    let rt = rt();
    let _guard = rt.enter();
    let Some(s) = common::s3_storage(&prefix) else { return };
    rt.block_on(conformance(s));
}

#[test]
fn s3_errors_say_what_to_check() {
    let Some(settings) = common::s3_settings() else { return };
    let rt = rt();
    let _guard = rt.enter();
    let write = |pairs: &[(String, String)]| {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), pairs.iter().map(|(k, v)| format!("{k}={v}\n")).collect::<String>())
            .unwrap();
        f
    };
    // Wrong secret: bad credentials.
    let mut bad = settings.clone();
    for (k, v) in bad.iter_mut() {
        if k == "AWS_SECRET_ACCESS_KEY" {
            *v = "0".repeat(64);
        }
    }
    let f = write(&bad);
    let s = rempart::storage::open_s3(
        rempart::storage::S3Settings::from_env_and_file("rempart-test/x", Some(f.path())).unwrap(),
    )
    .unwrap();
    let err = rt.block_on(s.list(Kind::Snapshot)).unwrap_err();
    assert!(!err.is_retryable(), "bad credentials are permanent: {err}");
    let msg = err.to_string();
    assert!(msg.contains("credentials") || msg.contains("access denied") || msg.contains("AWS_"), "{msg}");
    // A bucket that does not exist.
    let f = write(&settings);
    let s = rempart::storage::open_s3(
        rempart::storage::S3Settings::from_env_and_file("no-such-bucket-rempart/x", Some(f.path())).unwrap(),
    )
    .unwrap();
    let err = rt.block_on(s.put(Kind::Lock, "aa", Bytes::from_static(b"x"))).unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert!(
        err.to_string().contains("no-such-bucket-rempart") || err.to_string().contains("bucket"),
        "{err}"
    );
}

/// A listing longer than one page (1,000 keys) is split at the names' first hex digit and the
/// parts listed at once: every object must come back exactly once, names on the split points
/// and names that are not hex included, also under a prefix with characters object_store
/// percent-encodes (`#` sorts the encoded key after every key if encoded twice, `~` before).
#[test]
fn s3_listings_longer_than_a_page_return_every_object_once() {
    for prefix in ["listing", "listing#hash~tilde"] {
        list_every_object_once(&format!("{prefix}-{:016x}", rand::random::<u64>()));
    }
}

fn list_every_object_once(prefix: &str) {
    use futures::StreamExt;
    let rt = rt();
    let _guard = rt.enter();
    let Some(s) = common::s3_storage(prefix) else { return };
    let mut names: Vec<String> =
        (0..2_600u32).map(|i| blake3::hash(&i.to_le_bytes()).to_hex().to_string()).collect();
    names.extend(["0", "4", "40", "4f", "f", "ff", "zz", "g0", "-x"].map(String::from));
    rt.block_on(async {
        futures::stream::iter(names.clone())
            .map(|n| {
                let s = s.clone();
                async move { s.put(Kind::Index, &n, Bytes::from_static(b"i")).await }
            })
            .buffer_unordered(32)
            .for_each(|r| async { r.unwrap() })
            .await;
        let before = s.scheduler_stats().unwrap();
        let mut listed: Vec<String> =
            s.list(Kind::Index).await.unwrap().into_iter().map(|o| o.name).collect();
        let after = s.scheduler_stats().unwrap();
        assert!(after.requests - before.requests > 1, "a long listing is split into parts listed at once");
        assert!(after.most_in_flight <= rempart::storage::scheduler::MAX_IN_FLIGHT);
        listed.sort();
        names.sort();
        assert_eq!(listed.len(), names.len(), "no object listed twice or left out");
        assert_eq!(listed, names);
    });
}
