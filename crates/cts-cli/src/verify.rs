//! `cts verify`: checks the ledger (the logic is `cts_ledger::verify_data_dir` / `verify_trace`;
//! this only opens, reads files and prints).
//!
//! - `cts verify --data-dir DIR [--key KEY]`: with the server stopped, recovers the store (so WAL
//!   traces reach the ledger as at a restart), then checks every stored trace, every leaf and every
//!   signed checkpoint; prints each problem and a summary; exit status 0 only when all is valid.
//! - `cts verify --trace FILE --proof FILE --checkpoint FILE --key KEY`: one trace offline.
//! - `cts verify --bucket s3://BUCKET[/prefix] [--key KEYS] [--json]` (the store of `CTS_OBS_*`) or
//!   `--dir DIR` (a downloaded copy, same keys under DIR): the trace files delivered by trackers against their
//!   digests (`cts_transfer::verify`); the keys default to the data directory's ledger keys. With
//!   `CTS_KEYRING`, encrypted files are decrypted and their traces counted too.

use crate::config::{Config, RawSettings};
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
    /// A verifier key `<name>+<key id>+<base64>` or a file holding keys, one per line (the ledger's `keys` file,
    /// `GET /v3/{project_id}/ledger/keys`). For a data directory: trust only these instead of the keys listed in it.
    #[arg(long, visible_alias = "public-key")]
    key: Option<String>,
    /// Verify the trace files and digests in this bucket of the object store: `s3://BUCKET[/prefix]`.
    #[arg(long, conflicts_with_all = ["dir", "trace"])]
    bucket: Option<String>,
    /// Verify a downloaded copy of a bucket: the objects under DIR, with the bucket's keys.
    #[arg(long, conflicts_with = "trace")]
    dir: Option<PathBuf>,
    /// With --bucket or --dir: print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// `s3://BUCKET[/prefix]` as the bucket and the key prefix.
fn parse_bucket_url(url: &str) -> anyhow::Result<(&str, Option<&str>)> {
    let rest = url.strip_prefix("s3://").with_context(|| format!("--bucket {url:?} is not s3://BUCKET[/prefix]"))?;
    let (bucket, prefix) = match rest.split_once('/') {
        Some((bucket, prefix)) => (bucket, Some(prefix.trim_matches('/')).filter(|p| !p.is_empty())),
        None => (rest, None),
    };
    cts_obs::validate_bucket_name(bucket).with_context(|| format!("--bucket {url:?}"))?;
    Ok((bucket, prefix))
}

/// The verifier keys of `--key`, else those of the data directory's ledger.
fn trusted_keys(key: Option<&str>, data_dir: &std::path::Path) -> anyhow::Result<Vec<NoteVerifier>> {
    let lines = match key {
        Some(key) => key_text(key)?.lines().map(str::to_owned).collect(),
        None => cts_ledger::read_verifier_keys(&cts_ledger::ledger_dir(data_dir))?,
    };
    let keys: Vec<NoteVerifier> = lines
        .iter()
        .filter(|line| !line.trim().is_empty())
        .map(|line| NoteVerifier::parse(line))
        .collect::<Result<_, _>>()?;
    if keys.is_empty() {
        bail!("no verifier key: give --key (the ledger's keys, as GET /v3/{{project_id}}/ledger/keys serves them)");
    }
    Ok(keys)
}

/// `--bucket` / `--dir`: checks the trace files against their digests, prints the report; exit 1 when invalid.
fn verify_delivered(args: &VerifyArgs, config: &Config) -> anyhow::Result<()> {
    let verifiers = trusted_keys(args.key.as_deref(), &config.data_dir)?;
    let (objects, prefix) = match (&args.bucket, &args.dir) {
        (Some(url), _) => {
            let (bucket, prefix) = parse_bucket_url(url)?;
            let obs =
                config.obs.clone().context("--bucket needs the object store: set CTS_OBS_ENDPOINT and its keys")?;
            (cts_obs::Obs::new(obs)?.bucket(bucket)?, prefix)
        }
        (None, Some(dir)) => (cts_transfer::verify::local_copy(dir)?, None),
        (None, None) => unreachable!("called with --bucket or --dir"),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let keyring = Some(&config.keyring).filter(|keyring| !keyring.is_empty());
    let verifying = cts_transfer::verify::verify_objects(objects.as_ref(), prefix, &verifiers, keyring);
    let report = runtime.block_on(verifying)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for problem in &report.problems {
            println!("{problem}");
        }
        for key in &report.chains_starting_after_missing {
            println!("note: the chain of {key} starts after a digest that is gone (expired or deleted)");
        }
        println!("{}", report.summary());
    }
    if !report.is_valid() {
        std::process::exit(1);
    }
    Ok(())
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
    let config = args.settings.clone().resolve()?;
    if args.bucket.is_some() || args.dir.is_some() {
        return verify_delivered(&args, &config);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_urls_name_a_bucket_and_maybe_a_prefix() {
        assert_eq!(parse_bucket_url("s3://audit-logs").unwrap(), ("audit-logs", None));
        assert_eq!(parse_bucket_url("s3://audit-logs/").unwrap(), ("audit-logs", None));
        assert_eq!(
            parse_bucket_url("s3://audit-logs/CloudTraces/ap-southeast-3/").unwrap(),
            ("audit-logs", Some("CloudTraces/ap-southeast-3"))
        );
        for bad in ["audit-logs", "https://audit-logs", "s3://A_B", "s3://"] {
            assert!(parse_bucket_url(bad).is_err(), "{bad}");
        }
    }
}
