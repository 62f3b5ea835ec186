//! `rempart completions SHELL` and `rempart man DIR`: generated from the argument definitions,
//! so they never drift from the commands (the Debian package ships both).

use std::path::Path;

use clap::CommandFactory;

use crate::cli::args::Cli;
use crate::error::{Error, ExitStatus, Result};

pub fn completions(shell: &str) -> Result<ExitStatus> {
    let shell = match shell {
        "bash" => clap_complete::Shell::Bash,
        "zsh" => clap_complete::Shell::Zsh,
        _ => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "rempart", &mut out);
    crate::cli::out(&String::from_utf8_lossy(&out));
    Ok(ExitStatus::Success)
}

pub fn man(dir: &Path) -> Result<ExitStatus> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("cannot create the manual folder '{}'", dir.display()), e))?;
    let cmd = Cli::command();
    let write = |name: &str, page: &clap::Command| -> Result<()> {
        let mut out = Vec::new();
        clap_mangen::Man::new(page.clone())
            .render(&mut out)
            .map_err(|e| Error::io(format!("cannot render the manual page {name}"), e))?;
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, out).map_err(|e| Error::io(format!("cannot write '{}'", path.display()), e))
    };
    write("rempart", &cmd)?;
    let mut n = 1;
    for sub in cmd.get_subcommands() {
        let name = format!("rempart-{}", sub.get_name());
        write(&name, &sub.clone().name(name.clone()))?;
        n += 1;
    }
    crate::outln!("wrote {n} manual pages into {}", dir.display());
    Ok(ExitStatus::Success)
}
