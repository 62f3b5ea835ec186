//! Which entries of a snapshot a restore takes: `--include` (a path with everything below it, or
//! a glob) and `--exclude` (the glob rules of backup's `--exclude`: a pattern with `/` matches
//! whole paths, one without matches names anywhere).

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::backup::walker::Excludes;
use crate::error::{Error, Result};

enum Include {
    /// A snapshot path: it and everything below it.
    Prefix(Vec<u8>),
    /// A glob over whole paths: every match and everything below it.
    Glob(globset::GlobMatcher),
}

pub struct Selection {
    includes: Vec<Include>,
    excludes: Excludes,
    /// The `--include` values as given, for messages.
    given: Vec<String>,
}

fn is_glob(p: &str) -> bool {
    p.contains(['*', '?', '[', '{'])
}

fn absolute(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.starts_with('/') {
        t.to_string()
    } else {
        format!("/{t}")
    }
}

impl Selection {
    /// # Errors
    /// `InvalidInput` quoting a pattern that is not a valid glob.
    pub fn new(includes: &[String], excludes: &[String]) -> Result<Selection> {
        let mut out = Vec::new();
        for i in includes {
            let abs = absolute(i);
            if is_glob(&abs) {
                let glob = globset::GlobBuilder::new(&abs)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| Error::invalid(format!("--include '{i}' is not a valid glob: {e}")))?
                    .compile_matcher();
                out.push(Include::Glob(glob));
            } else {
                out.push(Include::Prefix(abs.into_bytes()));
            }
        }
        Ok(Selection { includes: out, excludes: Excludes::new(excludes)?, given: includes.to_vec() })
    }

    /// True when something was asked for: only part of the snapshot is restored.
    pub fn is_partial(&self) -> bool {
        !self.includes.is_empty()
    }

    pub fn given(&self) -> &[String] {
        &self.given
    }

    /// Whether to restore the entry at `path` (named `name`), and whether to look inside it.
    pub fn decide(&self, path: &[u8], name: &[u8]) -> (bool, bool) {
        if self.excludes.matches(Path::new(std::ffi::OsStr::from_bytes(path)), name) {
            return (false, false);
        }
        if self.includes.is_empty() {
            return (true, true);
        }
        let (mut take, mut enter) = (false, false);
        for inc in &self.includes {
            match inc {
                Include::Prefix(p) => {
                    let under =
                        path == p.as_slice() || (path.starts_with(p) && path.get(p.len()) == Some(&b'/'));
                    let above = p.starts_with(path) && p.get(path.len()) == Some(&b'/');
                    take |= under;
                    enter |= under || above;
                }
                Include::Glob(g) => {
                    // The path itself or a folder above it matches.
                    let hit = std::iter::once(path.len())
                        .chain(path.iter().enumerate().skip(1).filter(|(_, b)| **b == b'/').map(|(i, _)| i))
                        .any(|end| g.is_match(Path::new(std::ffi::OsStr::from_bytes(&path[..end]))));
                    take |= hit;
                    enter = true;
                }
            }
        }
        (take, enter)
    }
}

#[cfg(test)]
mod tests {
    use super::Selection;

    fn sel(inc: &[&str], exc: &[&str]) -> Selection {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        Selection::new(&s(inc), &s(exc)).unwrap()
    }

    #[test]
    fn paths_globs_and_excludes() {
        let all = sel(&[], &[]);
        assert_eq!(all.decide(b"/a/b", b"b"), (true, true));
        let p = sel(&["/srv/app"], &[]);
        assert_eq!(p.decide(b"/srv", b"srv"), (false, true));
        assert_eq!(p.decide(b"/srv/app/x", b"x"), (true, true));
        assert_eq!(p.decide(b"/srv/apple", b"apple"), (false, false));
        let g = sel(&["/etc/**/*.conf"], &[]);
        assert!(g.decide(b"/etc/a/b.conf", b"b.conf").0);
        assert!(!g.decide(b"/etc/a/b.txt", b"b.txt").0);
        let d = sel(&["/srv/*/data"], &[]);
        assert!(d.decide(b"/srv/app/data/f", b"f").0, "below a matching folder");
        let e = sel(&[], &["*.tmp", "/srv/cache"]);
        assert_eq!(e.decide(b"/srv/x.tmp", b"x.tmp"), (false, false));
        assert_eq!(e.decide(b"/srv/cache", b"cache"), (false, false));
        assert_eq!(e.decide(b"/srv/keep", b"keep"), (true, true));
        assert!(Selection::new(&["/a/[".into()], &[]).is_err());
    }
}
