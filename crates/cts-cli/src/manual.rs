//! `cts completions SHELL` and `cts man`: shell completions and man pages, both generated from the
//! same clap definitions as the commands themselves, so they never fall out of date.

use anyhow::Context;
use std::io::Write;
use std::path::Path;

/// Prints the completion script of `shell` for `command` on standard output.
pub fn completions(shell: clap_complete::Shell, mut command: clap::Command) -> anyhow::Result<()> {
    let name = command.get_name().to_owned();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, name, &mut script);
    match std::io::stdout().write_all(&script) {
        // The reader stopped early (`| head`): nothing is wrong.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        written => written.context("writing the completion script"),
    }
}

/// Writes `cts.1` and a page per subcommand (`cts-serve.1`, ...) into `out_dir`.
pub fn man_pages(command: clap::Command, out_dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    clap_mangen::generate_to(command, out_dir)
        .with_context(|| format!("writing man pages to {}", out_dir.display()))?;
    for entry in std::fs::read_dir(out_dir)? {
        println!("{}", entry?.path().display());
    }
    Ok(())
}
