//! End-to-end: damaged objects of every kind are found and named; repairs work; restore and
//! ls report damaged paths and still deliver the rest.

mod common;

use std::path::{Path, PathBuf};

use common::{copy_dir, files_in, flip_byte, open_repo, random_bytes, truncate_half, Env};
use rempart::repo::pack::BlobType;

/// A repository with two snapshots over several data packs (1 MiB packs).
fn pristine() -> (Env, PathBuf) {
    let env = Env::new();
    let src = env.path().join("src");
    std::fs::create_dir_all(src.join("docs")).unwrap();
    for i in 0..4 {
        std::fs::write(src.join(format!("blob{i}.bin")), random_bytes(i, 1_500_000)).unwrap();
    }
    std::fs::write(src.join("docs/readme.txt"), b"read me").unwrap();
    env.ok(&["init", "--pack-size-mib", "1"]);
    env.ok(&["backup", src.to_str().unwrap()]);
    std::fs::write(src.join("docs/new.txt"), b"added later").unwrap();
    env.ok(&["backup", src.to_str().unwrap()]);
    (env, src)
}

/// A fresh copy of the pristine repository and state.
fn clone_env(p: &Env) -> Env {
    let e = Env::new();
    copy_dir(Path::new(&p.repo), Path::new(&e.repo));
    copy_dir(&p.state_dir, &e.state_dir);
    e
}

fn pack_path(repo: &str, id: &rempart::Id) -> PathBuf {
    let h = id.to_hex();
    Path::new(repo).join("data").join(&h[..2]).join(&h)
}

fn check_output(env: &Env, read_data: bool) -> (i32, String) {
    let mut args = vec!["check"];
    if read_data {
        args.push("--read-data");
    }
    let (code, out, err) = env.run(&args);
    (code, format!("{out}\n{err}"))
}

#[test]
fn every_kind_of_damage_is_found_and_named() {
    let (base, src) = pristine();
    assert_eq!(check_output(&base, true).0, 0, "pristine repository checks clean");
    let (rt, repo) = open_repo(&base);
    let index = repo.load_index().unwrap();
    let (_, snap) = repo.find_snapshot("latest").unwrap();
    let tree_loc = index.lookup(&snap.tree).unwrap();
    assert_eq!(tree_loc.entry.blob_type, BlobType::Tree);
    let file_node =
        rempart::restore::find_path(&repo, &index, &snap.tree, &format!("{}/blob2.bin", src.display()))
            .unwrap()
            .unwrap();
    let data_loc = index.lookup(&file_node.content[0]).unwrap();
    drop(rt);

    type Damage = fn(&Path);
    let damages: [(&str, Damage); 3] = [
        ("flip", |p| flip_byte(p, std::fs::metadata(p).unwrap().len() / 2)),
        ("truncate", truncate_half),
        ("delete", |p| std::fs::remove_file(p).unwrap()),
    ];
    for (how, damage) in damages {
        // Data pack.
        let env = clone_env(&base);
        let pack = pack_path(&env.repo, &data_loc.pack.id);
        if how == "flip" {
            flip_byte(&pack, u64::from(data_loc.entry.offset + data_loc.entry.length / 2));
        } else {
            damage(&pack);
        }
        let (code, out) = check_output(&env, true);
        assert_eq!(code, 4, "pack {how}: {out}");
        assert!(out.contains(&data_loc.pack.id.to_hex()), "pack {how} not named: {out}");
        assert!(out.contains("blob2.bin"), "pack {how}: damaged file not named: {out}");

        // Tree (inside its tree pack).
        let env = clone_env(&base);
        let pack = pack_path(&env.repo, &tree_loc.pack.id);
        if how == "flip" {
            flip_byte(&pack, u64::from(tree_loc.entry.offset + tree_loc.entry.length / 2));
        } else {
            damage(&pack);
        }
        let (code, out) = check_output(&env, false);
        assert_eq!(code, 4, "tree {how}: {out}");
        let named = if how == "flip" { snap.tree.to_hex() } else { tree_loc.pack.id.to_hex() };
        assert!(out.contains(&named), "tree {how} not named: {out}");

        // Index object.
        let env = clone_env(&base);
        let idx = files_in(&Path::new(&env.repo).join("index")).pop().unwrap();
        damage(&idx);
        let (code, out) = check_output(&env, false);
        assert_eq!(code, 4, "index {how}: {out}");
        if how == "delete" {
            assert!(out.contains("not in the index"), "deleted index: missing blobs not named: {out}");
        } else {
            assert!(out.contains(idx.file_name().unwrap().to_str().unwrap()), "index {how} not named: {out}");
        }
        assert!(out.contains("repair index"), "{out}");
        let repaired = env.ok(&["repair", "index"]);
        let (code, out) = check_output(&env, true);
        assert_eq!(code, 0, "after repair index ({how}): {repaired}\n{out}");

        // Snapshot object.
        let env = clone_env(&base);
        let s = files_in(&Path::new(&env.repo).join("snapshots")).pop().unwrap();
        damage(&s);
        let (code, out) = check_output(&env, false);
        assert_eq!(code, 4, "snapshot {how}: {out}");
        assert!(out.contains(s.file_name().unwrap().to_str().unwrap()), "snapshot {how} not named: {out}");

        // Key object: the only one, then one of two.
        let env = clone_env(&base);
        let k = files_in(&Path::new(&env.repo).join("keys")).pop().unwrap();
        damage(&k);
        let (code, out) = check_output(&env, false);
        assert_eq!(code, 4, "key {how}: {out}");
        assert!(out.contains("key"), "key {how}: {out}");
        if how != "delete" {
            assert!(out.contains(k.file_name().unwrap().to_str().unwrap()), "key {how} not named: {out}");
        }
        let env = clone_env(&base);
        let other = env.path().join("other.pass");
        std::fs::write(&other, "other passphrase\n").unwrap();
        env.ok(&["key", "add", "--new-password-file", other.to_str().unwrap()]);
        let first = files_in(&Path::new(&env.repo).join("keys"));
        let victim = first.iter().find(|p| p.file_name() != k.file_name()).unwrap().clone();
        if how != "delete" {
            damage(&victim);
            let (code, out) = check_output(&env, false);
            assert_eq!(code, 4, "second key {how}: {out}");
            assert!(
                out.contains(victim.file_name().unwrap().to_str().unwrap()),
                "second key {how} not named: {out}"
            );
        }

        // Config.
        let env = clone_env(&base);
        damage(&Path::new(&env.repo).join("config"));
        let (code, out) = check_output(&env, false);
        assert_eq!(code, 4, "config {how}: {out}");
        assert!(out.contains("config"), "config {how}: {out}");
    }
}

#[test]
fn restore_and_ls_name_damaged_paths_and_deliver_the_rest() {
    let (base, src) = pristine();
    let (rt, repo) = open_repo(&base);
    let index = repo.load_index().unwrap();
    let (_, snap) = repo.find_snapshot("latest").unwrap();
    let node =
        rempart::restore::find_path(&repo, &index, &snap.tree, &format!("{}/blob1.bin", src.display()))
            .unwrap()
            .unwrap();
    let loc = index.lookup(&node.content[0]).unwrap();
    let docs = rempart::restore::find_path(&repo, &index, &snap.tree, &format!("{}/docs", src.display()))
        .unwrap()
        .unwrap();
    let docs_loc = index.lookup(&docs.subtree.unwrap()).unwrap();
    drop(rt);

    let env = clone_env(&base);
    flip_byte(&pack_path(&env.repo, &loc.pack.id), u64::from(loc.entry.offset + 40));
    let target = env.path().join("out");
    let (code, out, err) = env.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(out.contains("blob1.bin"), "{out}");
    let restored = target.join(src.strip_prefix("/").unwrap());
    // Files whose chunks live elsewhere are intact.
    for i in [0u64, 2, 3] {
        let name = format!("blob{i}.bin");
        if out.contains(&name) {
            continue; // shares the damaged pack
        }
        assert_eq!(std::fs::read(restored.join(&name)).unwrap(), random_bytes(i, 1_500_000), "{name}");
    }
    assert_eq!(std::fs::read(restored.join("docs/readme.txt")).unwrap(), b"read me");

    // A damaged folder tree: ls names it and lists the rest.
    let env = clone_env(&base);
    flip_byte(
        &pack_path(&env.repo, &docs_loc.pack.id),
        u64::from(docs_loc.entry.offset + docs_loc.entry.length / 2),
    );
    let (code, out, err) = env.run(&["ls", "latest"]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(err.contains("/docs"), "damaged folder not named: {err}");
    assert!(out.contains("blob0.bin"), "rest not listed: {out}");
}

#[test]
fn repair_snapshots_drops_what_is_lost_and_check_passes() {
    let (base, src) = pristine();
    let (rt, repo) = open_repo(&base);
    let index = repo.load_index().unwrap();
    let (_, snap) = repo.find_snapshot("latest").unwrap();
    let node =
        rempart::restore::find_path(&repo, &index, &snap.tree, &format!("{}/blob3.bin", src.display()))
            .unwrap()
            .unwrap();
    let loc = index.lookup(&node.content[0]).unwrap();
    drop(rt);
    let env = clone_env(&base);
    std::fs::remove_file(pack_path(&env.repo, &loc.pack.id)).unwrap();
    assert_eq!(check_output(&env, false).0, 4);
    let dry = env.ok(&["repair", "snapshots", "--dry-run"]);
    assert!(dry.contains("blob3.bin") && dry.contains("dry run"), "{dry}");
    assert_eq!(check_output(&env, false).0, 4, "dry run changed nothing");
    let out = env.ok(&["repair", "snapshots", "--forget"]);
    assert!(out.contains("repaired as"), "{out}");
    let (code, out) = check_output(&env, true);
    assert_eq!(code, 0, "{out}");
    let snaps = env.json(&["snapshots"]);
    assert!(
        snaps.as_array().unwrap().iter().all(|s| s["repaired"]["removed"].as_array().is_some()),
        "{snaps}"
    );
    let target = env.path().join("out");
    env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert!(target.join(src.strip_prefix("/").unwrap()).join("docs/new.txt").exists());
}
