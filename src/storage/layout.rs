//! Where each kind of object lives inside a repository (the same on every backend).

/// The kinds of stored object. `docs/format.md` describes each one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// The repository configuration (one object named `config`).
    Config,
    /// Passphrase-wrapped copies of the master key.
    Key,
    /// Packs of encrypted blobs, fanned out by the first two hex digits.
    Pack,
    /// Index objects: blob id to pack, offset and length.
    Index,
    /// Snapshots.
    Snapshot,
    /// Lock objects (random names).
    Lock,
    /// Packs marked for deletion by a prune, waiting out the second phase.
    Trash,
    /// Evidence ledger records (write-once copies).
    Evidence,
    /// Forget records: snapshots a forget decided to remove, written before they are deleted.
    Forgotten,
    /// Public keys of the installations whose evidence chains the repository holds.
    EvidenceKey,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::Config,
        Kind::Key,
        Kind::Pack,
        Kind::Index,
        Kind::Snapshot,
        Kind::Lock,
        Kind::Trash,
        Kind::Evidence,
        Kind::Forgotten,
        Kind::EvidenceKey,
    ];

    /// The folder (key prefix) of this kind.
    pub fn dir(self) -> &'static str {
        match self {
            Kind::Config => "",
            Kind::Key => "keys",
            Kind::Pack => "data",
            Kind::Index => "index",
            Kind::Snapshot => "snapshots",
            Kind::Lock => "locks",
            Kind::Trash => "trash",
            Kind::Evidence => "evidence",
            Kind::Forgotten => "forgotten",
            Kind::EvidenceKey => "evidence-keys",
        }
    }

    /// The word used in messages ("pack", "index", ...).
    pub fn label(self) -> &'static str {
        match self {
            Kind::Config => "config",
            Kind::Key => "key",
            Kind::Pack => "pack",
            Kind::Index => "index",
            Kind::Snapshot => "snapshot",
            Kind::Lock => "lock",
            Kind::Trash => "trash",
            Kind::Evidence => "evidence",
            Kind::Forgotten => "forget record",
            Kind::EvidenceKey => "evidence key",
        }
    }

    /// The relative key of an object, e.g. `data/ab/ab12...` or `snapshots/ef01...`.
    pub fn key(self, name: &str) -> String {
        match self {
            Kind::Config => "config".to_string(),
            Kind::Pack => {
                let fan = name.get(..2).unwrap_or("00");
                format!("data/{fan}/{name}")
            }
            _ => format!("{}/{name}", self.dir()),
        }
    }

    /// A name as messages show it: `pack 3fa2...` style with the relative key.
    pub fn describe(self, name: &str) -> String {
        format!("{} {}", self.label(), self.key(name))
    }
}
