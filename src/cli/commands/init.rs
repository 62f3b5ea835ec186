//! `rempart init`

use crate::cli::args::InitArgs;
use crate::cli::context::{create_password_file, Context};
use crate::error::{ExitStatus, Result};
use crate::repo::{InitOptions, Repository};

pub fn run(ctx: &Context, a: InitArgs) -> Result<ExitStatus> {
    if a.create_password_file {
        if let Some(f) = &ctx.global.password_file {
            if create_password_file(f)? && !ctx.global.quiet {
                eprintln!("created password file '{}' (mode 0600): keep a copy somewhere safe", f.display());
            }
        }
    }
    let storage = ctx.storage()?;
    let pass = ctx.passphrase()?;
    let opts = InitOptions {
        compression_level: a.compression,
        pack_size: a.pack_size_mib.saturating_mul(1 << 20),
        ..Default::default()
    };
    let repo = Repository::init(storage, &pass, &opts)?;
    if ctx.global.json {
        crate::cli::print_json(&serde_json::json!({
            "repository": repo.storage().location(),
            "id": repo.id().to_hex(),
            "key": repo.opened_with().key_object(),
        }));
    } else if !ctx.global.quiet {
        crate::outln!("created repository {} at {}", repo.id().short(), repo.storage().location());
        crate::outln!("keep the passphrase safe, and a recovery file offline: rempart key export -o FILE");
    }
    Ok(ExitStatus::Success)
}
