//! The lister: reads folders ahead of the walker on a small pool of threads.
//!
//! A backup of many small files, or one where almost nothing changed, spends its time listing
//! folders and calling `lstat` on every entry, on one thread (the walker keeps a deterministic
//! depth-first order, which the tree encoding needs). The lister takes that work off the
//! walker: when the walker has listed a folder it asks for its subfolders, which the pool reads
//! in the order the walker will need them (the first subfolder's own subfolders before the
//! second subfolder), while the walker handles entries. Each folder is opened once and its
//! entries are read with `fstatat` relative to it, so the kernel does not walk the whole path
//! again for every entry. The walker still decides everything in order; only the reading
//! moves. Excluded names are never `lstat`ed (an excluded dead mount must not hang a backup).
//! Listings held ahead are bounded (folders, and entries: readers pause at the bound), so
//! memory stays bounded on a tree of any shape; a folder that was not read ahead is read by
//! the walker itself.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::fsmeta::EntryStat;
use super::walker::Excludes;

/// At most this many folders are listed ahead of the walker...
const MAX_FOLDERS_AHEAD: usize = 512;
/// ...and at most this many of their entries are held.
const MAX_ENTRIES_AHEAD: usize = 200_000;

/// One folder's entries, sorted by name, each with its `lstat` or the error of reading it.
#[derive(Debug, Default)]
pub struct Listing {
    pub entries: Vec<(Vec<u8>, std::io::Result<EntryStat>)>,
    /// The folder could not be opened or read to the end (what was read is in `entries`).
    pub error: Option<String>,
}

/// Reads one folder: opens it, reads its names, `fstatat`s each relative to it, leaving out
/// the names `excludes` matches (unread).
pub fn list_folder(path: &Path, excludes: &Excludes) -> Listing {
    use rustix::fs::{AtFlags, Mode, OFlags, CWD};
    let mut out = Listing::default();
    let fd = match rustix::fs::openat(
        CWD,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(e) => {
            out.error = Some(format!("cannot list folder: {}", std::io::Error::from(e)));
            return out;
        }
    };
    let mut names: Vec<Vec<u8>> = Vec::new();
    let excluded =
        |name: &[u8]| !excludes.is_empty() && excludes.matches(&path.join(OsStr::from_bytes(name)), name);
    match rustix::fs::Dir::read_from(&fd) {
        Ok(mut dir) => {
            while let Some(entry) = dir.read() {
                match entry {
                    Ok(e) => {
                        let name = e.file_name().to_bytes();
                        if name != b"." && name != b".." && !excluded(name) {
                            names.push(name.to_vec());
                        }
                    }
                    Err(e) => {
                        out.error = Some(format!("listing failed part-way: {}", std::io::Error::from(e)));
                        break;
                    }
                }
            }
        }
        Err(e) => out.error = Some(format!("cannot list folder: {}", std::io::Error::from(e))),
    }
    names.sort_unstable();
    out.entries = names
        .into_iter()
        .map(|name| {
            let stat = rustix::fs::statat(&fd, OsStr::from_bytes(&name), AtFlags::SYMLINK_NOFOLLOW)
                .map(|s| EntryStat::from(&s))
                .map_err(std::io::Error::from);
            (name, stat)
        })
        .collect();
    out
}

#[derive(Default)]
struct State {
    /// Folders asked for and not started, the next one needed first.
    queue: VecDeque<PathBuf>,
    in_flight: HashSet<PathBuf>,
    ready: HashMap<PathBuf, Listing>,
    /// Entries held in `ready`.
    entries_ready: usize,
    stop: bool,
}

impl State {
    fn ahead(&self) -> usize {
        self.queue.len() + self.in_flight.len() + self.ready.len()
    }
}

struct Shared {
    state: Mutex<State>,
    work: Condvar,
    done: Condvar,
    excludes: Excludes,
    /// Entries held ahead at most ([`MAX_ENTRIES_AHEAD`]; smaller in tests).
    max_entries: usize,
}

/// The pool; dropping it stops its threads.
pub struct Lister {
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Lister {
    /// A pool of `threads` readers (none: the walker reads every folder itself), leaving out
    /// what `excludes` matches.
    pub fn new(threads: usize, excludes: Excludes) -> Lister {
        Self::with_bound(threads, excludes, MAX_ENTRIES_AHEAD)
    }

    fn with_bound(threads: usize, excludes: Excludes, max_entries: usize) -> Lister {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            done: Condvar::new(),
            excludes,
            max_entries,
        });
        let threads = (0..threads)
            .map(|i| {
                let shared = shared.clone();
                std::thread::Builder::new()
                    .name(format!("backup-lister-{i}"))
                    .spawn(move || read_ahead(&shared))
                    .expect("spawn a lister thread")
            })
            .collect();
        Lister { shared, threads }
    }

    /// Asks for `folders`, in the order the walker will enter them, ahead of the folders asked
    /// for before (which the walker needs only after these). Beyond the bound, the rest are
    /// left for the walker to read.
    pub fn prefetch(&self, folders: Vec<PathBuf>) {
        if self.threads.is_empty() || folders.is_empty() {
            return;
        }
        let mut st = self.shared.state.lock();
        let room = MAX_FOLDERS_AHEAD.saturating_sub(st.ahead());
        if room == 0 || st.entries_ready >= self.shared.max_entries {
            return;
        }
        for f in folders.into_iter().take(room).rev() {
            st.queue.push_front(f);
        }
        drop(st);
        self.shared.work.notify_all();
    }

    /// The listing of `folder`: read ahead, waited for when a reader has it in hand, else read
    /// here and now.
    pub fn take(&self, folder: &Path) -> Listing {
        if self.threads.is_empty() {
            return list_folder(folder, &self.shared.excludes);
        }
        let mut st = self.shared.state.lock();
        loop {
            if let Some(l) = st.ready.remove(folder) {
                st.entries_ready -= l.entries.len();
                drop(st);
                // A reader paused at the bound may go on.
                self.shared.work.notify_all();
                return l;
            }
            if !st.in_flight.contains(folder) {
                if let Some(i) = st.queue.iter().position(|q| q == folder) {
                    st.queue.remove(i);
                }
                drop(st);
                return list_folder(folder, &self.shared.excludes);
            }
            self.shared.done.wait(&mut st);
        }
    }
}

impl Drop for Lister {
    fn drop(&mut self) {
        self.shared.state.lock().stop = true;
        self.shared.work.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn read_ahead(shared: &Shared) {
    let mut st = shared.state.lock();
    loop {
        if st.stop {
            return;
        }
        // At the bound, wait for the walker to take listings (it reads a folder it needs
        // itself, so it never waits on a paused reader).
        if st.entries_ready >= shared.max_entries {
            shared.work.wait(&mut st);
            continue;
        }
        let Some(folder) = st.queue.pop_front() else {
            shared.work.wait(&mut st);
            continue;
        };
        st.in_flight.insert(folder.clone());
        drop(st);
        let listing = list_folder(&folder, &shared.excludes);
        st = shared.state.lock();
        st.in_flight.remove(&folder);
        st.entries_ready += listing.entries.len();
        st.ready.insert(folder, listing);
        shared.done.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for d in ["a", "a/x", "a/y", "b", "c"] {
            std::fs::create_dir_all(t.path().join(d)).unwrap();
        }
        for f in ["a/1", "a/x/2", "a/y/3", "b/4", "top"] {
            std::fs::write(t.path().join(f), f.as_bytes()).unwrap();
        }
        std::os::unix::fs::symlink("top", t.path().join("link")).unwrap();
        t
    }

    fn none() -> Excludes {
        Excludes::new(&[]).unwrap()
    }

    fn names(l: &Listing) -> Vec<String> {
        l.entries.iter().map(|(n, _)| String::from_utf8_lossy(n).into_owned()).collect()
    }

    #[test]
    fn a_listing_is_sorted_and_holds_what_lstat_says() {
        let t = tree();
        let l = list_folder(t.path(), &none());
        assert!(l.error.is_none());
        assert_eq!(names(&l), ["a", "b", "c", "link", "top"]);
        for (name, stat) in &l.entries {
            let path = t.path().join(OsStr::from_bytes(name));
            let want = EntryStat::from(&std::fs::symlink_metadata(&path).unwrap());
            assert_eq!(stat.as_ref().unwrap(), &want, "{}", path.display());
        }
    }

    #[test]
    fn a_folder_that_cannot_be_read_says_why() {
        let t = tree();
        let l = list_folder(&t.path().join("missing"), &none());
        assert!(l.error.unwrap().contains("cannot list folder"));
        // A symlink to a folder is not followed.
        std::os::unix::fs::symlink("a", t.path().join("to-a")).unwrap();
        assert!(list_folder(&t.path().join("to-a"), &none()).error.is_some());
    }

    #[test]
    fn the_pool_gives_every_folder_once_whatever_was_asked_ahead() {
        let t = tree();
        let lister = Lister::new(2, none());
        let root = t.path().to_path_buf();
        let all = ["a", "a/x", "a/y", "b", "c"].map(|d| root.join(d));
        lister.prefetch(all.to_vec());
        // Some taken before, some after the pool read them; one asked twice; one never asked.
        for d in all.iter().chain([&root.join("a")]) {
            let l = lister.take(d);
            let direct = list_folder(d, &none());
            assert_eq!(names(&l), names(&direct), "{}", d.display());
        }
        assert_eq!(names(&lister.take(&root)), ["a", "b", "c", "link", "top"]);
        drop(lister);
    }

    #[test]
    fn excluded_names_are_left_out_unread() {
        let t = tree();
        let ex = Excludes::new(&["link".into(), format!("{}/a", t.path().display())]).unwrap();
        assert_eq!(names(&list_folder(t.path(), &ex)), ["b", "c", "top"]);
    }

    #[test]
    fn readers_pause_at_the_entry_bound_and_the_walker_still_gets_every_folder() {
        // More entries than the bound, in folders asked for ahead: the readers stop at the
        // bound, and every folder is still given (by a reader or read in place).
        let t = tempfile::tempdir().unwrap();
        let bound = 100;
        let per_folder = bound / 4 + 1;
        let folders: Vec<PathBuf> = (0..6).map(|i| t.path().join(format!("f{i}"))).collect();
        for f in &folders {
            std::fs::create_dir(f).unwrap();
        }
        for f in &folders {
            for n in 0..per_folder {
                std::fs::write(f.join(format!("{n}")), b"").unwrap();
            }
        }
        let lister = Lister::with_bound(2, none(), bound);
        lister.prefetch(folders.clone());
        std::thread::sleep(std::time::Duration::from_millis(300));
        {
            let st = lister.shared.state.lock();
            // At most one folder per reader past the bound.
            assert!(st.entries_ready < bound + 2 * per_folder, "{} entries held", st.entries_ready);
            assert!(!st.queue.is_empty(), "the readers did not pause at the bound");
        }
        for f in &folders {
            assert_eq!(lister.take(f).entries.len(), per_folder);
        }
    }
}
