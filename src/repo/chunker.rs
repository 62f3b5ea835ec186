//! Content-defined chunking: FastCDC (v2020) with a gear table derived from the key.
//!
//! fastcdc's own seed only XORs one 64-bit value into its public gear table; here the whole
//! 256-entry table is drawn from BLAKE3's output stream keyed by the chunker key, so chunk
//! boundaries depend on the secret (as Borg's keyed buzhash table does). docs/format.md says
//! what this does and does not protect against.
//!
//! [`ChunkStream`] cuts a reader into chunks with one reusable buffer of `max_size` plus one
//! read block, so a worker pays for that buffer once, not once per file.

use std::io::Read;

use fastcdc::v2020::{cut_gear, logarithm2, MASKS};

use super::config::ChunkerParams;
use crate::crypto::Keys;

pub struct Chunker {
    gear: Box<[u64; 256]>,
    gear_ls: Box<[u64; 256]>,
    min: usize,
    avg: usize,
    max: usize,
    mask_s: u64,
    mask_l: u64,
}

impl Chunker {
    pub fn new(keys: &Keys, params: &ChunkerParams) -> Chunker {
        let mut xof = blake3::Hasher::new_keyed(keys.chunker_key()).finalize_xof();
        let mut gear = Box::new([0u64; 256]);
        let mut bytes = [0u8; 8];
        for g in gear.iter_mut() {
            xof.fill(&mut bytes);
            *g = u64::from_le_bytes(bytes);
        }
        let mut gear_ls = Box::new([0u64; 256]);
        for (d, s) in gear_ls.iter_mut().zip(gear.iter()) {
            *d = s << 1;
        }
        let bits = logarithm2(params.avg_size);
        Chunker {
            gear,
            gear_ls,
            min: params.min_size as usize,
            avg: params.avg_size as usize,
            max: params.max_size as usize,
            mask_s: MASKS[(bits + params.normalization) as usize],
            mask_l: MASKS[(bits - params.normalization) as usize],
        }
    }

    /// The length of the chunk that starts `data`. The caller passes at least `max_size`
    /// bytes unless `data` is the end of the stream.
    pub fn cut(&self, data: &[u8]) -> usize {
        let (_, n) = cut_gear(
            data,
            self.min,
            self.avg,
            self.max,
            self.mask_s,
            self.mask_l,
            self.mask_s << 1,
            self.mask_l << 1,
            &self.gear,
            &self.gear_ls,
        );
        n.max(data.len().min(1))
    }
}

/// Cuts a reader into chunks, reusing `buf` between calls and between files.
pub struct ChunkStream<'a> {
    chunker: &'a Chunker,
    buf: &'a mut Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    short_read_is_eof: bool,
}

/// The read block added to `max_size` for the buffer.
const READ_BLOCK: usize = 1 << 20;

impl<'a> ChunkStream<'a> {
    pub fn new(chunker: &'a Chunker, buf: &'a mut Vec<u8>) -> ChunkStream<'a> {
        let want = chunker.max + READ_BLOCK;
        if buf.len() < want {
            buf.resize(want, 0);
        }
        ChunkStream { chunker, buf, start: 0, end: 0, eof: false, short_read_is_eof: false }
    }

    /// For regular files: a read that returns less than asked means the end of the file
    /// (POSIX), which saves the extra read that would return 0 on every small file.
    pub fn regular_file(mut self) -> Self {
        self.short_read_is_eof = true;
        self
    }

    /// Calls `f` with each chunk in order and whether that chunk is the whole stream; returns
    /// the number of bytes read.
    ///
    /// # Errors
    /// The first error of the reader or of `f`.
    pub fn for_each<R: Read, E: From<std::io::Error>>(
        mut self,
        mut reader: R,
        mut f: impl FnMut(&[u8], bool) -> Result<(), E>,
    ) -> Result<u64, E> {
        let mut total = 0u64;
        let mut first = true;
        loop {
            // Refill until a whole max-size window is buffered or the stream ends.
            while !self.eof && self.end - self.start < self.chunker.max {
                if self.end == self.buf.len() {
                    self.buf.copy_within(self.start..self.end, 0);
                    self.end -= self.start;
                    self.start = 0;
                }
                let space = self.buf.len() - self.end;
                match reader.read(&mut self.buf[self.end..]) {
                    Ok(0) => self.eof = true,
                    Ok(n) => {
                        self.end += n;
                        total += n as u64;
                        if self.short_read_is_eof && n < space {
                            self.eof = true;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if self.start == self.end {
                return Ok(total);
            }
            let n = self.chunker.cut(&self.buf[self.start..self.end]);
            let whole = first && self.eof && self.start + n == self.end;
            first = false;
            f(&self.buf[self.start..self.start + n], whole)?;
            self.start += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn small_params() -> ChunkerParams {
        ChunkerParams {
            algorithm: "fastcdc-v2020".into(),
            min_size: 256,
            avg_size: 1024,
            max_size: 4096,
            normalization: 1,
        }
    }

    fn chunks(c: &Chunker, data: &[u8], buf: &mut Vec<u8>, read_size: usize) -> Vec<Vec<u8>> {
        struct Slow<'a>(&'a [u8], usize);
        impl Read for Slow<'_> {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(out.len()).min(self.1);
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut out = Vec::new();
        ChunkStream::new(c, buf)
            .for_each::<_, std::io::Error>(Slow(data, read_size), |ch, _| {
                out.push(ch.to_vec());
                Ok(())
            })
            .unwrap();
        out
    }

    proptest! {
        #[test]
        fn chunks_reassemble_and_respect_bounds(data in proptest::collection::vec(any::<u8>(), 0..40_000), rs in 1usize..5000) {
            let keys = Keys::generate();
            let c = Chunker::new(&keys, &small_params());
            let mut buf = Vec::new();
            let parts = chunks(&c, &data, &mut buf, rs);
            prop_assert_eq!(parts.concat(), data.clone());
            for (i, p) in parts.iter().enumerate() {
                prop_assert!(p.len() <= 4096);
                if i + 1 < parts.len() { prop_assert!(p.len() >= 256); }
            }
            // The read size never changes the boundaries.
            let again = chunks(&c, &data, &mut buf, 100_000);
            prop_assert_eq!(parts, again);
        }
    }

    #[test]
    fn boundaries_depend_on_the_key_and_resynchronise_after_an_insert() {
        let mut data = vec![0u8; 200_000];
        let mut x = 1u64;
        for b in data.iter_mut() {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            *b = (x >> 33) as u8;
        }
        let k1 = Keys::generate();
        let c1 = Chunker::new(&k1, &small_params());
        let c2 = Chunker::new(&Keys::generate(), &small_params());
        let mut buf = Vec::new();
        let a = chunks(&c1, &data, &mut buf, 1 << 20);
        let b = chunks(&c2, &data, &mut buf, 1 << 20);
        assert_ne!(a.iter().map(Vec::len).collect::<Vec<_>>(), b.iter().map(Vec::len).collect::<Vec<_>>());
        let mut shifted = vec![42u8; 10];
        shifted.extend_from_slice(&data);
        let s = chunks(&c1, &shifted, &mut buf, 1 << 20);
        let common = a.iter().filter(|ch| s.contains(ch)).count();
        assert!(common + 3 >= a.len(), "only {common} of {} chunks survive an insert", a.len());
    }
}
