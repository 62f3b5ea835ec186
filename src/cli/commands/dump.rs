//! `rempart dump`

use crate::cli::args::DumpArgs;
use crate::cli::context::Context;
use crate::error::{Error, ExitStatus, Result};
use crate::inspect::dump::{dump_file, dump_tar, locate};
use crate::repo::lock::LockKind;

pub fn run(ctx: &Context, a: DumpArgs) -> Result<ExitStatus> {
    if ctx.global.json {
        return Err(Error::invalid("dump writes the data itself to standard output: --json does not apply"));
    }
    let repo = ctx.open()?;
    let _lock = repo.lock(LockKind::Read, "dump")?;
    let (_, snap) = repo.find_snapshot(&a.snapshot)?;
    let index = repo.load_index()?;
    let node = locate(&repo, &index, &snap.tree, &a.path)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    let result = match a.archive.as_deref() {
        Some(_) => dump_tar(&repo, &index, &node, &a.path, &mut out).map(|_| ()),
        None => dump_file(&repo, &index, &node, &a.path, &mut out).map(|_| ()),
    };
    let flushed = std::io::Write::flush(&mut out);
    match result.and_then(|()| flushed.map_err(|e| Error::io("cannot write the dump", e))) {
        Ok(()) => Ok(ExitStatus::Success),
        // The reader had enough (`rempart dump ... | head -c 100`).
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => {
            Ok(ExitStatus::Success)
        }
        Err(e) => Err(e),
    }
}
