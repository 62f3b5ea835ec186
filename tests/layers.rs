//! The layout is the architecture: modules are layered, and no module imports one above it.
//!
//! From the top: cli → daemon → report → runner → drill, evidence → jobs, maintenance (with
//! the catalog, settings and repair) → restore, check, backup, inspect → sources, repo → crypto,
//! storage → the base (error, id, util, state). Modules of one layer may use each other, but
//! never in a cycle. This test reads every `crate::MODULE` path in `src/` and fails on an
//! upward import or a cycle, naming the file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn layer(module: &str) -> Option<u32> {
    Some(match module {
        "error" | "id" | "util" | "state" | "serde_b64" | "duration" => 0,
        "crypto" | "storage" => 1,
        "sources" | "repo" => 2,
        "restore" | "check" | "backup" | "inspect" => 3,
        "jobs" | "maintenance" | "catalog" | "settings" | "repair" => 4,
        "drill" | "evidence" => 5,
        "runner" => 6,
        "report" => 7,
        "daemon" => 8,
        "cli" => 9,
        // The fuzzing entry points reach into every decoder; nothing imports them.
        "fuzzing" => 10,
        _ => return None,
    })
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_module_imports_one_above_it_and_no_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut upward = Vec::new();
    for f in &all {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let from =
            layer(&top).unwrap_or_else(|| panic!("module '{top}' has no layer: add it to tests/layers.rs"));
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let mut rest = code;
            while let Some(i) = rest.find("crate::") {
                rest = &rest[i + 7..];
                let name: String =
                    rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if name == top || name.is_empty() || rest[name.len()..].starts_with('!') {
                    continue; // itself, or a macro exported at the crate root
                }
                let Some(to) = layer(&name) else { continue };
                if to > from {
                    upward.push(format!(
                        "{}:{}: {top} (layer {from}) uses {name} (layer {to})",
                        rel.display(),
                        n + 1
                    ));
                }
                edges.entry(top.clone()).or_default().insert(name);
            }
        }
    }
    assert!(upward.is_empty(), "imports from a lower layer to a higher one:\n{}", upward.join("\n"));
    // Cycles between modules (within a layer, the only place they could be).
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut cycle = path[i..].to_vec();
            cycle.push(n.to_string());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for n in edges.keys() {
        if let Some(c) = visit(n, &edges, &mut Vec::new(), &mut done) {
            panic!("import cycle between modules: {}", c.join(" → "));
        }
    }
}
