//! Table inventories: which tables a database holds and how many rows each, read from a
//! restored database or counted from the dump stream itself.
//!
//! A drill compares the two: a restore that silently lost tables or rows (a scratch database
//! dropped mid-restore, a load that stopped early without failing) cannot pass. The dump side is
//! counted from SQL text, streaming (memory bounded by the longest line of the dump: one
//! extended INSERT or one COPY row):
//!
//! - MariaDB/MySQL dumps: `CREATE TABLE` statements name the tables; rows are the tuples of the
//!   `INSERT INTO ... VALUES (...),(...);` statements, counted with a small scanner that knows
//!   string literals (quotes, backslash escapes) and parentheses;
//! - PostgreSQL: the custom-format dump is turned into SQL by `pg_restore -f -`, whose
//!   `CREATE TABLE` statements name the tables and whose `COPY ... FROM stdin;` blocks hold one
//!   row per line up to `\.`.

use std::collections::BTreeMap;
use std::io::BufRead;

use crate::error::{Error, Result};

/// Table name (schema-qualified for PostgreSQL) to row count.
pub type Inventory = BTreeMap<String, u64>;

/// Compares what was restored with what the dump holds; `None` when they agree, else what
/// differs (first few tables).
pub fn compare(dump: &Inventory, restored: &Inventory) -> Option<String> {
    let mut diffs = Vec::new();
    for (t, n) in dump {
        match restored.get(t) {
            None => diffs.push(format!("table {t} ({n} rows in the dump) is missing")),
            Some(m) if m != n => diffs.push(format!("table {t} has {m} rows, the dump {n}")),
            Some(_) => {}
        }
    }
    for t in restored.keys().filter(|t| !dump.contains_key(*t)) {
        diffs.push(format!("table {t} is not in the dump"));
    }
    if diffs.is_empty() {
        return None;
    }
    let n = diffs.len();
    diffs.truncate(5);
    Some(format!("{} difference(s): {}", n, diffs.join("; ")))
}

/// Unquotes a MySQL identifier (`` `a``b` `` → ``a`b``).
fn mysql_ident(s: &str) -> String {
    let s = s.trim();
    match s.strip_prefix('`').and_then(|r| r.strip_suffix('`')) {
        Some(inner) => inner.replace("``", "`"),
        None => s.to_string(),
    }
}

/// The identifier at the start of `s` (backquoted or bare), and the rest.
fn take_mysql_ident(s: &str) -> (String, &str) {
    let s = s.trim_start();
    if let Some(rest) = s.strip_prefix('`') {
        let mut i = 0;
        let b = rest.as_bytes();
        while i < b.len() {
            if b[i] == b'`' {
                if b.get(i + 1) == Some(&b'`') {
                    i += 2;
                    continue;
                }
                return (mysql_ident(&s[..i + 2]), &rest[i + 1..]);
            }
            i += 1;
        }
        return (mysql_ident(s), "");
    }
    let end = s.find(|c: char| c.is_whitespace() || c == '(').unwrap_or(s.len());
    (s[..end].to_string(), &s[end..])
}

/// Counts the tuples of an `INSERT ... VALUES` statement, fed in pieces.
#[derive(Default)]
struct TupleCounter {
    depth: u32,
    in_string: Option<u8>,
    escaped: bool,
    /// The statement ended (`;` outside strings and parentheses).
    done: bool,
}

impl TupleCounter {
    /// Scans `text`; returns the tuples that started in it.
    fn feed(&mut self, text: &[u8]) -> u64 {
        let mut n = 0;
        for &c in text {
            if let Some(q) = self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if c == b'\\' {
                    self.escaped = true;
                } else if c == q {
                    // A doubled quote ('') closes and reopens: the same state either way.
                    self.in_string = None;
                }
                continue;
            }
            match c {
                b'\'' | b'"' => self.in_string = Some(c),
                b'(' => {
                    if self.depth == 0 {
                        n += 1;
                    }
                    self.depth += 1;
                }
                b')' => self.depth = self.depth.saturating_sub(1),
                b';' if self.depth == 0 => {
                    self.done = true;
                    return n;
                }
                _ => {}
            }
        }
        n
    }
}

/// The inventory of a MariaDB/MySQL SQL dump.
///
/// # Errors
/// `Io` when the stream cannot be read.
pub fn mysql_dump(reader: impl std::io::Read) -> Result<Inventory> {
    let mut inv = Inventory::new();
    let mut r = std::io::BufReader::with_capacity(1 << 20, reader);
    let mut line = Vec::new();
    // The table of the INSERT statement being scanned, across lines.
    let mut current: Option<(String, TupleCounter)> = None;
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line).map_err(|e| Error::io("cannot read the dump", e))? == 0 {
            break;
        }
        if let Some((table, counter)) = &mut current {
            let n = counter.feed(&line);
            *inv.entry(table.clone()).or_insert(0) += n;
            if counter.done {
                current = None;
            }
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        let t = text.trim_start();
        if let Some(rest) = t.strip_prefix("CREATE TABLE ") {
            let rest = rest.strip_prefix("IF NOT EXISTS ").unwrap_or(rest);
            let (name, _) = take_mysql_ident(rest);
            inv.entry(name).or_insert(0);
        } else if let Some(rest) =
            t.strip_prefix("INSERT INTO ").or_else(|| t.strip_prefix("INSERT IGNORE INTO "))
        {
            let (name, after) = take_mysql_ident(rest);
            let Some(pos) = after.find("VALUES") else { continue };
            let mut counter = TupleCounter::default();
            let n = counter.feed(&after.as_bytes()[pos + 6..]);
            *inv.entry(name.clone()).or_insert(0) += n;
            if !counter.done {
                current = Some((name, counter));
            }
        }
    }
    Ok(inv)
}

/// Splits a PostgreSQL qualified name (`public.t`, `"My Schema"."T"`) and unquotes it.
fn pg_name(s: &str) -> String {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = s.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut cur)),
            c if c.is_whitespace() && !quoted => break,
            '(' if !quoted => break,
            c => cur.push(c),
        }
    }
    parts.push(cur);
    parts.join(".")
}

/// The inventory of the SQL that `pg_restore -f -` writes for a custom-format dump.
///
/// # Errors
/// `Io` when the stream cannot be read.
pub fn pg_sql(reader: impl std::io::Read) -> Result<Inventory> {
    let mut inv = Inventory::new();
    let mut r = std::io::BufReader::with_capacity(1 << 20, reader);
    let mut line = Vec::new();
    let mut copying: Option<String> = None;
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line).map_err(|e| Error::io("cannot read pg_restore's output", e))? == 0 {
            break;
        }
        if let Some(table) = &copying {
            if line == b"\\.\n" || line == b"\\." {
                copying = None;
            } else {
                *inv.entry(table.clone()).or_insert(0) += 1;
            }
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        if let Some(rest) = text.strip_prefix("CREATE TABLE ") {
            let rest = rest.strip_prefix("IF NOT EXISTS ").unwrap_or(rest);
            inv.entry(pg_name(rest)).or_insert(0);
        } else if let Some(rest) = text.strip_prefix("CREATE UNLOGGED TABLE ") {
            inv.entry(pg_name(rest)).or_insert(0);
        } else if let Some(rest) = text.strip_prefix("COPY ") {
            if text.trim_end().ends_with("FROM stdin;") {
                let name = pg_name(rest);
                inv.entry(name.clone()).or_insert(0);
                copying = Some(name);
            }
        }
    }
    Ok(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_dumps_count_tuples_whatever_the_strings_hold() {
        let dump = "-- MariaDB dump\n\
            CREATE TABLE `plain` (\n  `id` int\n) ENGINE=InnoDB;\n\
            CREATE TABLE `we``ird` (`v` text);\n\
            CREATE TABLE `empty` (`v` int);\n\
            INSERT INTO `plain` VALUES (1),(2),(3);\n\
            INSERT INTO `we``ird` VALUES (1,'a),(b'),(2,'it''s'),(3,'back\\\\slash\\\\'),(4,'(\\n\\\"'),\n\
            (5,'next line');\n\
            INSERT INTO `plain` VALUES (4);\n";
        let inv = mysql_dump(dump.as_bytes()).unwrap();
        assert_eq!(inv["plain"], 4);
        assert_eq!(inv["we`ird"], 5, "{inv:?}");
        assert_eq!(inv["empty"], 0);
        assert_eq!(inv.len(), 3);
    }

    #[test]
    fn pg_restore_output_counts_copy_rows() {
        let sql = "SET x = 1;\n\
            CREATE TABLE public.t (\n    g integer\n);\n\
            CREATE TABLE \"My Schema\".\"We\"\"ird\" (v text);\n\
            CREATE TABLE public.empty (v int);\n\
            COPY public.t (g) FROM stdin;\n1\n2\n3\n\\.\n\
            COPY \"My Schema\".\"We\"\"ird\" (v) FROM stdin;\na\\nb\n\\.\n";
        let inv = pg_sql(sql.as_bytes()).unwrap();
        assert_eq!(inv["public.t"], 3);
        assert_eq!(inv["My Schema.We\"ird"], 1, "{inv:?}");
        assert_eq!(inv["public.empty"], 0);
    }

    #[test]
    fn comparisons_name_what_differs() {
        let dump = Inventory::from([("a".into(), 3), ("b".into(), 0)]);
        assert_eq!(compare(&dump, &dump.clone()), None);
        let lost = Inventory::new();
        let d = compare(&dump, &lost).unwrap();
        assert!(d.contains("table a (3 rows in the dump) is missing"), "{d}");
        let fewer = Inventory::from([("a".into(), 2), ("b".into(), 0)]);
        assert!(compare(&dump, &fewer).unwrap().contains("has 2 rows, the dump 3"));
    }
}
