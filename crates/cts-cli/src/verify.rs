//! `cts verify`: checks the ledger (the logic is `cts_ledger::verify_data_dir` / `verify_trace`;
//! this only opens, reads files and prints).
//!
//! - `cts verify --data-dir DIR [--key KEY]`: with the server stopped, recovers the store (so WAL
//!   traces reach the ledger as at a restart), then checks every stored trace, every leaf and every
//!   signed checkpoint; prints each problem and a summary; exit status 0 only when all is valid.
//! - `cts verify --trace FILE --proof FILE --checkpoint FILE --key KEY`: one trace offline.

use crate::config::RawSettings;
use anyhow::{bail, Context};
use clap::Args;
use cts_ledger::NoteVerifier;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    settings: RawSettings,
    /// The trace to verify offline: its JSON exactly as ListTraces returns it.
    #[arg(long, requires_all = ["proof", "checkpoint", "key"])]
    trace: Option<PathBuf>,
    /// The inclusion proof of the trace (the JSON of `GET .../ledger/proof/inclusion`).
    #[arg(long, requires = "trace")]
    proof: Option<PathBuf>,
    /// The signed checkpoint the proof is for (`GET .../ledger/checkpoint`).
    #[arg(long, requires = "trace")]
    checkpoint: Option<PathBuf>,
    /// A verifier key `<name>+<key id>+<base64>` or a file holding keys, one per line (for a data
    /// directory: trust only these instead of the keys listed in it).
    #[arg(long)]
    key: Option<String>,
}

fn read(path: &PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// The key text: the argument itself when it parses as a key, else the file it names.
fn key_text(key: &str) -> anyhow::Result<String> {
    if NoteVerifier::parse(key).is_ok() {
        return Ok(key.to_owned());
    }
    std::fs::read_to_string(key).with_context(|| format!("--key is neither a verifier key nor a readable file: {key}"))
}

pub fn run(args: VerifyArgs) -> anyhow::Result<()> {
    if let (Some(trace), Some(proof), Some(checkpoint), Some(key)) =
        (&args.trace, &args.proof, &args.checkpoint, &args.key)
    {
        let key = key_text(key)?;
        let key = key.lines().find(|line| !line.trim().is_empty()).context("--key holds no key")?;
        return match cts_ledger::verify_trace(&read(trace)?, &read(proof)?, &read(checkpoint)?, key) {
            Ok(signed) => {
                println!("valid: the trace is in the tree of {} leaves that {} signed", signed.size, signed.origin);
                Ok(())
            }
            Err(error) => bail!("the trace does not verify: {error}"),
        };
    }
    let config = args.settings.resolve()?;
    let trusted: Option<Vec<NoteVerifier>> = match &args.key {
        Some(key) => Some(
            key_text(key)?
                .lines()
                .filter(|line| !line.trim().is_empty())
                .map(NoteVerifier::parse)
                .collect::<Result<_, _>>()?,
        ),
        None => None,
    };
    // Recovery first, as a restart would do it (it also takes the store's lock: the server must be stopped).
    match crate::data_dir::open_store(&config) {
        Ok(opened) => drop(opened),
        Err(error) => eprintln!("warning: the store does not open ({error:#}); checking its files as they are"),
    }
    let report = cts_ledger::verify_data_dir(&config.data_dir, trusted.as_deref())?;
    for finding in &report.findings {
        println!("{finding}");
    }
    println!("{}", report.summary());
    if !report.is_valid() {
        std::process::exit(1);
    }
    Ok(())
}
