//! End-to-end: back up a tree holding every kind of entry, restore it, compare field by field.

mod common;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use common::{random_bytes, Env};

/// Builds the source tree; returns its root.
fn build_tree(root: &Path) {
    let d = root.join("src");
    std::fs::create_dir_all(d.join("sub/deeper")).unwrap();
    std::fs::write(d.join("small.txt"), b"hello rempart\n").unwrap();
    std::fs::write(d.join("empty"), b"").unwrap();
    // Several chunks (the chunker's minimum is 512 KiB, maximum 8 MiB).
    std::fs::write(d.join("sub/big.bin"), random_bytes(1, 12 << 20)).unwrap();
    std::fs::write(d.join("sub/deeper/compressible.log"), "line of log text\n".repeat(100_000)).unwrap();
    // A sparse file: 64 MiB with data at 1 MiB and 40 MiB, holes elsewhere.
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::create(d.join("sparse.img")).unwrap();
        f.set_len(64 << 20).unwrap();
        f.write_all_at(&random_bytes(2, 100_000), 1 << 20).unwrap();
        f.write_all_at(b"tail data", 40 << 20).unwrap();
    }
    std::os::unix::fs::symlink("small.txt", d.join("link")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/target", d.join("dangling")).unwrap();
    std::fs::write(d.join("hard1"), b"hard linked content").unwrap();
    std::fs::hard_link(d.join("hard1"), d.join("sub/hard2")).unwrap();
    nix::unistd::mkfifo(&d.join("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o640)).unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(d.join("socket")).unwrap();
    // A name that is not UTF-8.
    std::fs::write(d.join(OsStr::from_bytes(b"caf\xe9-latin1")), b"latin-1 name").unwrap();
    std::fs::write(d.join("setuid"), b"#!/bin/sh\n").unwrap();
    std::fs::set_permissions(d.join("setuid"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    std::fs::write(d.join("private"), b"secret").unwrap();
    std::fs::set_permissions(d.join("private"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(d.join("sub/deeper"), std::fs::Permissions::from_mode(0o700)).unwrap();
    xattr::set(d.join("small.txt"), "user.rempart.test", b"xattr value").unwrap();
    xattr::set(d.join("sub"), "user.dir.attr", b"on a folder").unwrap();
    if nix::unistd::geteuid().is_root() {
        use nix::sys::stat::{makedev, mknod, Mode, SFlag};
        mknod(&d.join("chardev"), SFlag::S_IFCHR, Mode::from_bits_truncate(0o600), makedev(1, 3)).unwrap();
        mknod(&d.join("blockdev"), SFlag::S_IFBLK, Mode::from_bits_truncate(0o600), makedev(7, 99)).unwrap();
        nix::unistd::chown(&d.join("private"), Some(1234.into()), Some(5678.into())).unwrap();
        nix::unistd::fchownat(
            None,
            &d.join("link"),
            Some(4321.into()),
            Some(8765.into()),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .unwrap();
    }
    // Times to the nanosecond, set last (deepest first so folder times stick).
    let stamp = |p: &Path, secs: i64, nanos: i64| {
        let t = nix::sys::time::TimeSpec::new(secs, nanos);
        nix::sys::stat::utimensat(None, p, &t, &t, nix::sys::stat::UtimensatFlags::NoFollowSymlink).unwrap();
    };
    stamp(&d.join("small.txt"), 1_600_000_000, 123_456_789);
    stamp(&d.join("link"), 1_500_000_000, 987_654_321);
    stamp(&d.join("sub/deeper"), 1_400_000_000, 5);
    stamp(&d.join("sub"), 1_300_000_000, 999_999_999);
}

#[derive(Debug, PartialEq)]
struct Entry {
    kind: String,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: (i64, i64),
    rdev: u64,
    link: Option<PathBuf>,
    content: Option<blake3::Hash>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Index of the first path sharing this inode (hard links).
    link_group: Option<String>,
}

fn scan(root: &Path) -> (HashMap<Vec<u8>, Entry>, HashMap<Vec<u8>, u64>) {
    let mut out = HashMap::new();
    let mut blocks = HashMap::new();
    let mut inodes: HashMap<(u64, u64), String> = HashMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap() {
            let e = e.unwrap();
            let path = e.path();
            let m = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().as_os_str().as_bytes().to_vec();
            let ft = m.file_type();
            use std::os::unix::fs::FileTypeExt;
            let kind = if ft.is_dir() {
                stack.push(path.clone());
                "dir"
            } else if ft.is_symlink() {
                "symlink"
            } else if ft.is_fifo() {
                "fifo"
            } else if ft.is_char_device() {
                "char"
            } else if ft.is_block_device() {
                "block"
            } else if ft.is_socket() {
                "socket"
            } else {
                "file"
            };
            let content = (kind == "file").then(|| blake3::hash(&std::fs::read(&path).unwrap()));
            let mut xattrs: Vec<_> = xattr::list(&path)
                .map(|l| {
                    l.map(|n| (n.as_bytes().to_vec(), xattr::get(&path, &n).unwrap().unwrap_or_default()))
                        .collect()
                })
                .unwrap_or_default();
            xattrs.sort();
            let link_group = (kind == "file" && m.nlink() > 1).then(|| {
                inodes
                    .entry((m.dev(), m.ino()))
                    .or_insert_with(|| String::from_utf8_lossy(&rel).into_owned())
                    .clone()
            });
            if kind == "file" {
                blocks.insert(rel.clone(), m.blocks());
            }
            out.insert(
                rel,
                Entry {
                    kind: kind.into(),
                    mode: m.mode() & 0o7777,
                    uid: m.uid(),
                    gid: m.gid(),
                    size: if kind == "dir" { 0 } else { m.size() },
                    mtime: (m.mtime(), m.mtime_nsec()),
                    rdev: m.rdev(),
                    link: (kind == "symlink").then(|| std::fs::read_link(&path).unwrap()),
                    content,
                    xattrs,
                    link_group,
                },
            );
        }
    }
    (out, blocks)
}

#[test]
fn every_kind_of_entry_round_trips_field_by_field() {
    let env = Env::new();
    let source = env.path().join("source");
    build_tree(&source);
    env.init();
    let out = env.json(&["backup", source.join("src").to_str().unwrap()]);
    assert_eq!(out["status"], "success", "{out}");
    let target = env.path().join("restored");
    let r = env.json(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(r["status"], "success", "{r}");

    let (orig, orig_blocks) = scan(&source.join("src"));
    let restored_root = target.join(source.join("src").strip_prefix("/").unwrap());
    let (back, back_blocks) = scan(&restored_root);
    let mut names: Vec<_> = orig.keys().collect();
    names.sort();
    for name in names {
        let shown = String::from_utf8_lossy(name);
        let o = &orig[name];
        if o.kind == "socket" {
            assert!(!back.contains_key(name), "sockets are not recreated");
            continue;
        }
        let b = back.get(name).unwrap_or_else(|| panic!("'{shown}' was not restored"));
        assert_eq!(o.kind, b.kind, "{shown}: kind");
        assert_eq!(o.mode, b.mode, "{shown}: mode");
        assert_eq!((o.uid, o.gid), (b.uid, b.gid), "{shown}: owner");
        assert_eq!(o.size, b.size, "{shown}: size");
        assert_eq!(o.mtime, b.mtime, "{shown}: mtime");
        assert_eq!(o.rdev, b.rdev, "{shown}: device number");
        assert_eq!(o.link, b.link, "{shown}: symlink target");
        assert_eq!(o.content, b.content, "{shown}: content");
        assert_eq!(o.xattrs, b.xattrs, "{shown}: xattrs");
        assert_eq!(o.link_group.is_some(), b.link_group.is_some(), "{shown}: hard link");
    }
    assert_eq!(orig.len() - 1, back.len(), "same entries but the socket");
    // Holes stay holes: the restored sparse file allocates no more than the original.
    let sparse = b"sparse.img".to_vec();
    assert!(
        back_blocks[&sparse] <= orig_blocks[&sparse] + 8,
        "restored {} blocks, source {}",
        back_blocks[&sparse],
        orig_blocks[&sparse]
    );
    assert!(back_blocks[&sparse] * 512 < 8 << 20, "sparse file was restored dense");
    // Hard links point at one inode again.
    let h1 = std::fs::metadata(restored_root.join("hard1")).unwrap();
    let h2 = std::fs::metadata(restored_root.join("sub/hard2")).unwrap();
    assert_eq!(h1.ino(), h2.ino());
}

#[test]
fn incremental_backup_reads_only_changed_files() {
    let env = Env::new();
    let src = env.path().join("data");
    std::fs::create_dir_all(src.join("a")).unwrap();
    for i in 0..50 {
        std::fs::write(src.join(format!("a/f{i}")), random_bytes(i, 10_000)).unwrap();
    }
    std::fs::write(src.join("big"), random_bytes(99, 3 << 20)).unwrap();
    env.init();
    let first = env.json(&["backup", src.to_str().unwrap()]);
    assert_eq!(first["summary"]["files_new"], 51);
    let second = env.json(&["backup", src.to_str().unwrap()]);
    assert_eq!(second["summary"]["files_unmodified"], 51);
    assert_eq!(second["summary"]["bytes_read"], 0);
    // No file data is stored again; only trees of folders whose metadata changed (the scratch
    // folder above the source gains the state directory after the first backup).
    assert_eq!(second["summary"]["data_blobs_added"], 0, "an unchanged tree adds no data");
    assert!(second["summary"]["bytes_added"].as_u64().unwrap() < 2_000, "{second}");
    std::fs::write(src.join("a/f7"), random_bytes(1000, 10_000)).unwrap();
    let third = env.json(&["backup", src.to_str().unwrap()]);
    assert_eq!(third["summary"]["files_changed"], 1);
    assert_eq!(third["summary"]["files_unmodified"], 50);
    assert_eq!(third["summary"]["bytes_read"], 10_000);
    // Restore of a single path with --include.
    let target = env.path().join("one");
    env.ok(&[
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
        "--include",
        &format!("{}/a/f7", src.display()),
    ]);
    let restored = target.join(src.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read(restored.join("a/f7")).unwrap(), random_bytes(1000, 10_000));
    assert!(!restored.join("big").exists(), "--include restores only what it names");
}
