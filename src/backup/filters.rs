//! What a backup leaves out beyond its glob patterns, and the files its inputs come from.
//!
//! - Marker files (`--exclude-if-present NAME[:HEADER]`, `--exclude-caches`): a folder holding
//!   the marker (whose first bytes match HEADER, when given) is kept with the marker alone, as
//!   restic and borg do, so a restore shows why the folder is empty. `--exclude-caches` is the
//!   marker `CACHEDIR.TAG` with the header the Cache Directory Tagging Specification fixes.
//! - `--exclude-larger-than SIZE`: regular files above the size are left out, not errors.
//! - `--exclude-file` and `--files-from`: read here so that their errors name the file and line.

use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::walker::Excludes;
use crate::error::{Error, Result};

/// The header a valid `CACHEDIR.TAG` starts with (bford.info/cachedir).
pub const CACHEDIR_SIGNATURE: &[u8] = b"Signature: 8a477f597d28d172789f06886806bc55";

/// A file whose presence excludes the rest of its folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker {
    pub name: Vec<u8>,
    /// The marker counts only when its first bytes are these.
    pub header: Option<Vec<u8>>,
}

impl Marker {
    /// `NAME` or `NAME:HEADER`.
    ///
    /// # Errors
    /// `InvalidInput` for an empty name or one with a `/`.
    pub fn parse(spec: &str) -> Result<Marker> {
        let (name, header) = match spec.split_once(':') {
            Some((n, h)) => (n, Some(h.as_bytes().to_vec())),
            None => (spec, None),
        };
        if name.is_empty() || name.contains('/') {
            return Err(Error::invalid(format!(
                "--exclude-if-present '{spec}': expected a file name (NAME or NAME:HEADER), without '/'"
            )));
        }
        Ok(Marker { name: name.as_bytes().to_vec(), header })
    }

    pub fn cachedir_tag() -> Marker {
        Marker { name: b"CACHEDIR.TAG".to_vec(), header: Some(CACHEDIR_SIGNATURE.to_vec()) }
    }

    /// True when `dir` holds this marker (with its header).
    fn present_in(&self, dir: &Path) -> bool {
        let path = dir.join(std::ffi::OsStr::from_bytes(&self.name));
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            return false;
        };
        let Some(header) = &self.header else {
            return true;
        };
        if !meta.is_file() {
            return false;
        }
        let mut got = vec![0u8; header.len()];
        std::fs::File::open(&path).and_then(|mut f| f.read_exact(&mut got)).is_ok() && &got == header
    }
}

/// Everything that decides what a backup leaves out.
pub struct Filters {
    pub patterns: Excludes,
    pub markers: Vec<Marker>,
    pub larger_than: Option<u64>,
}

impl Filters {
    /// # Errors
    /// `InvalidInput` naming a bad glob or marker.
    pub fn new(
        patterns: &[String],
        markers: &[String],
        caches: bool,
        larger_than: Option<u64>,
    ) -> Result<Filters> {
        let mut m = markers.iter().map(|s| Marker::parse(s)).collect::<Result<Vec<_>>>()?;
        if caches {
            m.push(Marker::cachedir_tag());
        }
        Ok(Filters { patterns: Excludes::new(patterns)?, markers: m, larger_than })
    }

    /// The marker `dir` holds, if any: then only that file of the folder is kept.
    pub fn marker_in(&self, dir: &Path) -> Option<&Marker> {
        self.markers.iter().find(|m| m.present_in(dir))
    }
}

/// Parses a size like `500`, `100K`, `20M`, `1.5G`, `2T` (powers of 1024; `KiB`, `MB`, `B`
/// suffixes accepted too).
///
/// # Errors
/// A message that says what is expected.
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let shift = match unit.trim().to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("'{text}' is not a size: expected a number with K, M, G or T (like 100M)")),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{text}' is not a size: expected a number with K, M, G or T (like 100M)"))?;
    let bytes = n * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("'{text}' is out of range"));
    }
    Ok(bytes as u64)
}

/// The patterns of an `--exclude-file`: one per line; blank lines and `#` comments skipped.
///
/// # Errors
/// `InvalidInput` naming the file when it cannot be read.
pub fn read_pattern_file(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::invalid(format!(
            "--exclude-file '{}' cannot be read: {e}; expected a text file of globs, one per line",
            path.display()
        ))
    })?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

/// The paths of a `--files-from` file (`-` for stdin): one per line (blank lines and `#`
/// comments skipped), or separated by NUL bytes with `null` (as `find -print0` writes; then
/// every byte is part of a name).
///
/// # Errors
/// `InvalidInput` naming the file when it cannot be read.
pub fn read_files_from(path: &Path, null: bool) -> Result<Vec<PathBuf>> {
    let bytes = if path == Path::new("-") {
        let mut b = Vec::new();
        std::io::stdin().read_to_end(&mut b).map(|_| b)
    } else {
        std::fs::read(path)
    }
    .map_err(|e| Error::invalid(format!("--files-from '{}' cannot be read: {e}", path.display())))?;
    let to_path = |b: &[u8]| PathBuf::from(std::ffi::OsStr::from_bytes(b));
    Ok(if null {
        bytes.split(|b| *b == 0).filter(|p| !p.is_empty()).map(to_path).collect()
    } else {
        bytes
            .split(|b| *b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace) && !l.starts_with(b"#"))
            .map(to_path)
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_markers_and_input_files() {
        assert_eq!(parse_size("500"), Ok(500));
        assert_eq!(parse_size("100K"), Ok(100 << 10));
        assert_eq!(parse_size("20MiB"), Ok(20 << 20));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert!(parse_size("12 parsecs").unwrap_err().contains("not a size"));
        assert!(parse_size("").is_err());
        assert_eq!(Marker::parse(".nobackup").unwrap().header, None);
        assert_eq!(Marker::parse("TAG:abc").unwrap().header.as_deref(), Some(&b"abc"[..]));
        assert!(Marker::parse("a/b").is_err());

        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("list");
        std::fs::write(&f, "/srv/a\n# comment\n\n/srv/b c\r\n").unwrap();
        assert_eq!(read_files_from(&f, false).unwrap(), [PathBuf::from("/srv/a"), PathBuf::from("/srv/b c")]);
        std::fs::write(&f, b"/srv/with\nnewline\0/srv/x\0").unwrap();
        assert_eq!(read_files_from(&f, true).unwrap().len(), 2);
        let err = read_files_from(&dir.path().join("missing"), false).unwrap_err().to_string();
        assert!(err.contains("--files-from") && err.contains("missing"), "{err}");

        std::fs::write(dir.path().join("CACHEDIR.TAG"), b"not the signature").unwrap();
        let filters = Filters::new(&[], &[], true, None).unwrap();
        assert!(filters.marker_in(dir.path()).is_none(), "a tag without the signature does not count");
        std::fs::write(dir.path().join("CACHEDIR.TAG"), [CACHEDIR_SIGNATURE, b"\n# cache"].concat()).unwrap();
        assert!(filters.marker_in(dir.path()).is_some());
    }
}
