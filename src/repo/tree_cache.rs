//! An in-memory cache of whole tree packs.
//!
//! Incremental backups, `ls`, restore and check read thousands of small tree blobs. Reading
//! each with its own ranged request costs a round trip apiece (a thread hand-off locally, a
//! request on S3); tree packs are small, so they are fetched whole once and kept, up to a
//! memory budget (oldest evicted first). Blobs are still authenticated one by one when
//! opened, so a damaged pack only spoils the blobs that are damaged.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::id::Id;

/// Packs larger than this are never cached whole.
pub const MAX_CACHED_PACK: u64 = 32 << 20;
const BUDGET: usize = 32 << 20;

#[derive(Default)]
pub struct TreePackCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    packs: HashMap<Id, Bytes>,
    order: VecDeque<Id>,
    bytes: usize,
}

impl TreePackCache {
    pub fn get(&self, id: &Id) -> Option<Bytes> {
        self.inner.lock().packs.get(id).cloned()
    }

    pub fn insert(&self, id: Id, bytes: Bytes) {
        let mut g = self.inner.lock();
        if g.packs.contains_key(&id) {
            return;
        }
        g.bytes += bytes.len();
        g.packs.insert(id, bytes);
        g.order.push_back(id);
        while g.bytes > BUDGET {
            let Some(old) = g.order.pop_front() else { break };
            if let Some(b) = g.packs.remove(&old) {
                g.bytes -= b.len();
            }
        }
    }
}
