//! Reading one file of a snapshot as a stream (to feed a database client), verified.
//!
//! A reader thread fetches the file's chunks in order (each decrypted and checked against its
//! id) a few chunks ahead. The whole content is checked against the hash recorded at backup
//! before the end of the stream is reported, so a client never gets a silently wrong dump: a
//! mismatch or an unreadable chunk is an `InvalidData` error instead of the end of file.

use std::io::Read;
use std::sync::Arc;

use crossbeam_channel::Receiver;

use crate::id::Id;
use crate::repo::index::Index;
use crate::repo::pack::BlobType;
use crate::repo::tree::Node;
use crate::repo::Repository;

pub struct VerifiedReader {
    chunks: Receiver<std::result::Result<Vec<u8>, String>>,
    current: Vec<u8>,
    pos: usize,
    hasher: blake3::Hasher,
    expected: Option<Id>,
}

impl VerifiedReader {
    /// Opens the file `node` of a snapshot.
    pub fn new(repo: &Repository, index: Arc<Index>, node: &Node) -> VerifiedReader {
        let (tx, rx) = crossbeam_channel::bounded(4);
        let reader_repo = repo.clone();
        let ids = node.content.clone();
        std::thread::spawn(move || {
            for id in ids {
                let r = reader_repo.read_blob(&index, &id, BlobType::Data).map_err(|e| e.to_string());
                let failed = r.is_err();
                if tx.send(r).is_err() || failed {
                    return;
                }
            }
        });
        VerifiedReader {
            chunks: rx,
            current: Vec::new(),
            pos: 0,
            hasher: repo.keys().content_hasher(),
            expected: node.content_hash,
        }
    }
}

impl Read for VerifiedReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.current.len() {
            match self.chunks.recv() {
                Ok(Ok(chunk)) => {
                    self.hasher.update(&chunk);
                    self.current = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
                Err(_) => {
                    if let Some(expected) = self.expected.take() {
                        if Id(*self.hasher.finalize().as_bytes()) != expected {
                            return Err(std::io::Error::new(
                                std::io::ErrorKind::InvalidData,
                                "the restored content does not match the hash recorded at backup",
                            ));
                        }
                    }
                    return Ok(0);
                }
            }
        }
        let n = out.len().min(self.current.len() - self.pos);
        out[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
