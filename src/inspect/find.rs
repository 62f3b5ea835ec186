//! Which snapshots hold paths matching a pattern.
//!
//! A pattern without `/` matches entry names (`*.conf`, `id_rsa*`); one with `/` matches whole
//! paths inside the snapshot (`/etc/**/*.conf`), with the same glob rules as backup's
//! `--exclude`. A tree shared by several snapshots is still walked once per snapshot, so each
//! match is reported with every snapshot that holds it.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::Id;
use crate::repo::index::Index;
use crate::repo::snapshot::Snapshot;
use crate::repo::tree::NodeKind;
use crate::repo::walk::{show, walk, WalkItem};
use crate::repo::Repository;

/// A compiled `find` pattern.
pub struct Pattern {
    glob: globset::GlobMatcher,
    whole_path: bool,
    /// Only below this path (absolute inside the snapshot, no trailing `/`).
    under: Option<Vec<u8>>,
}

impl Pattern {
    /// # Errors
    /// `InvalidInput` naming the pattern when it is not a valid glob.
    pub fn new(pattern: &str, under: Option<&str>) -> Result<Pattern> {
        let whole_path = pattern.contains('/');
        let glob = globset::GlobBuilder::new(pattern)
            .literal_separator(whole_path)
            .build()
            .map_err(|e| {
                Error::invalid(format!(
                    "pattern '{pattern}': {e}; expected a glob such as '*.conf' or '/etc/**/*.conf'"
                ))
            })?
            .compile_matcher();
        let under = under.map(|u| {
            let t = u.trim_end_matches('/');
            let t = if t.starts_with('/') { t.to_string() } else { format!("/{t}") };
            t.into_bytes()
        });
        Ok(Pattern { glob, whole_path, under })
    }

    fn matches(&self, path: &[u8], name: &[u8]) -> bool {
        use std::os::unix::ffi::OsStrExt;
        let subject = if self.whole_path { path } else { name };
        self.glob.is_match(std::path::Path::new(std::ffi::OsStr::from_bytes(subject)))
    }

    /// Whether `path` is inside `--path` (or on the way to it).
    fn scope(&self, path: &[u8]) -> (bool, bool) {
        let Some(u) = &self.under else { return (true, true) };
        let inside = path == u.as_slice() || (path.starts_with(u) && path.get(u.len()) == Some(&b'/'));
        let above = u.starts_with(path) && u.get(path.len()) == Some(&b'/');
        (inside, inside || above)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Match {
    #[serde(skip)]
    pub raw_path: Vec<u8>,
    pub path: String,
    pub kind: String,
    pub size: u64,
    pub mtime: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct SnapshotMatches {
    pub snapshot: String,
    pub time: String,
    pub hostname: String,
    pub matches: Vec<Match>,
}

/// The matches of `pattern` in each of `snapshots`, and the folders that could not be read.
///
/// # Errors
/// Storage errors that stop everything; unreadable trees are listed, not fatal.
pub fn find(
    repo: &Repository,
    index: &Index,
    snapshots: &[(Id, Snapshot)],
    pattern: &Pattern,
) -> Result<(Vec<SnapshotMatches>, Vec<String>)> {
    let mut out = Vec::new();
    let mut damaged = Vec::new();
    for (id, snap) in snapshots {
        let mut matches = Vec::new();
        walk(repo, index, &snap.tree, &mut |item| match item {
            WalkItem::Damaged { path, error, .. } => {
                damaged.push(format!("snapshot {}: {}: {error}", id.short(), show(path)));
                Ok(false)
            }
            WalkItem::Entry { path, node } => {
                let (inside, enter) = pattern.scope(path);
                if inside && pattern.matches(path, &node.name) {
                    matches.push(Match {
                        raw_path: path.to_vec(),
                        path: show(path),
                        kind: format!("{:?}", node.kind).to_lowercase(),
                        size: if node.kind == NodeKind::File { node.size } else { 0 },
                        mtime: node.mtime.to_datetime().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    });
                }
                Ok(enter)
            }
        })?;
        if !matches.is_empty() {
            out.push(SnapshotMatches {
                snapshot: id.to_hex(),
                time: snap.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                hostname: snap.hostname.clone(),
                matches,
            });
        }
    }
    Ok((out, damaged))
}
