//! `cts import`: bulk-loads traces into a data directory without a running
//! server. Files are JSON Lines (one trace per line), a JSON array of traces,
//! or a CTS trace file (`{"traces":[...]}`), each optionally gzipped
//! (`.gz`), or a Parquet trace file (`.parquet`, as trackers with `compress_type: parquet` deliver them), and
//! optionally encrypted as trackers deliver them (`.enc`, opened with `CTS_KEYRING`). Every trace is validated as on ingest; full records (as
//! ListTraces returns them, or as delivered to OBS) keep their `project_id`
//! and `record_time`. Reading and validating the files is `cts_transfer::import`; this module decrypts, spreads
//! the documents over parser threads and appends in batches.

use crate::config::Config;
use anyhow::{anyhow, Context};
use cts_model::redact::Redactor;
use cts_model::{now_ms, Trace};
use cts_store::Store;
use cts_transfer::import::{for_each_document, Document};
use cts_transfer::Keyring;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};

/// Traces handed to the store at once.
const BATCH: usize = 10_000;
/// Documents handed to a parser thread at once.
const CHUNK: usize = 2_048;

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportSummary {
    pub read: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub rejected: u64,
}

/// Documents of one file with their positions (line or index).
struct Chunk<'a> {
    path: &'a Path,
    documents: Vec<(usize, Document)>,
}

/// Imports `files` into `store`; traces without a `project_id` go to
/// `default_project`. One thread reads, one parser per core validates, one
/// thread appends (the store's group commit fsyncs each batch). The parsers redact
/// each trace with `redactor`, as ingest does.
fn import(
    store: &Store,
    default_project: &str,
    files: &[PathBuf],
    keyring: &Keyring,
    redactor: Option<&Redactor>,
    progress: bool,
) -> anyhow::Result<ImportSummary> {
    let total_bytes: u64 = files.iter().map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0)).sum();
    let bar = if progress { ProgressBar::new(total_bytes) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {bytes}/{total_bytes} {wide_bar} {msg}")
            .expect("valid progress template"),
    );
    let record_time = now_ms();
    let parsers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let read = AtomicU64::new(0);
    let rejected = AtomicU64::new(0);

    let (chunks, parser_input) = mpsc::sync_channel::<Chunk>(parsers * 2);
    let parser_input = Mutex::new(parser_input);
    let (batches, appender_input) = mpsc::sync_channel::<Vec<Trace>>(2);
    let (stored, duplicates) = std::thread::scope(|scope| -> anyhow::Result<(u64, u64)> {
        let appender = scope.spawn(move || -> anyhow::Result<(u64, u64)> {
            let (mut stored, mut duplicates) = (0, 0);
            for batch in appender_input {
                let outcome = store.append_blocking(batch).context("appending to the store")?;
                stored += outcome.stored as u64;
                duplicates += outcome.duplicates as u64;
            }
            Ok((stored, duplicates))
        });
        for _ in 0..parsers {
            let (batches, parser_input, bar, rejected) = (batches.clone(), &parser_input, &bar, &rejected);
            scope.spawn(move || {
                let mut batch = Vec::with_capacity(BATCH);
                loop {
                    let next = parser_input.lock().expect("parser input lock").recv();
                    let Ok(chunk) = next else { break };
                    for (position, document) in chunk.documents {
                        match document.into_trace(default_project, record_time) {
                            Ok(mut trace) => {
                                if let Some(redactor) = redactor {
                                    redactor.redact_trace(&mut trace);
                                }
                                batch.push(trace);
                            }
                            Err(reason) => {
                                rejected.fetch_add(1, Ordering::Relaxed);
                                bar.suspend(|| eprintln!("{}:{position}: rejected: {reason}", chunk.path.display()));
                            }
                        }
                    }
                    if batch.len() >= BATCH && batches.send(std::mem::take(&mut batch)).is_err() {
                        return;
                    }
                }
                if !batch.is_empty() {
                    let _ = batches.send(batch);
                }
            });
        }
        drop(batches);

        let reading = (|| -> anyhow::Result<()> {
            for path in files {
                let (format, reader) = open_trace_file(path, keyring, &bar)?;
                let mut documents = Vec::with_capacity(CHUNK);
                for_each_document(&format, reader, |position, document| {
                    documents.push((position, document));
                    if documents.len() == CHUNK {
                        let count = read.fetch_add(CHUNK as u64, Ordering::Relaxed) + CHUNK as u64;
                        bar.set_message(format!("{count} traces"));
                        let full = std::mem::replace(&mut documents, Vec::with_capacity(CHUNK));
                        chunks.send(Chunk { path, documents: full }).map_err(|_| anyhow!("the import stopped"))?;
                    }
                    Ok::<_, anyhow::Error>(())
                })?;
                read.fetch_add(documents.len() as u64, Ordering::Relaxed);
                chunks.send(Chunk { path, documents }).map_err(|_| anyhow!("the import stopped"))?;
            }
            Ok(())
        })();
        drop(chunks);
        let appended = appender.join().expect("appender thread panicked");
        reading?;
        appended
    })?;
    store.flush().context("sealing the imported traces")?;
    bar.finish_and_clear();
    Ok(ImportSummary { read: read.into_inner(), stored, duplicates, rejected: rejected.into_inner() })
}

/// A file's name as its format reads (an encrypted file's without `.enc`) and a reader of its plain bytes:
/// encrypted trace files (`.enc`) are decrypted with the keyring (`CTS_KEYRING`).
fn open_trace_file(path: &Path, keyring: &Keyring, bar: &ProgressBar) -> anyhow::Result<(PathBuf, Box<dyn Read>)> {
    let encrypted = path.to_str().and_then(|name| name.strip_suffix(cts_transfer::layout::ENCRYPTED_EXTENSION));
    match encrypted {
        Some(inner) => {
            let sealed = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            bar.inc(sealed.len() as u64);
            let plain = keyring.open(&sealed).with_context(|| format!("decrypting {}", path.display()))?;
            Ok((PathBuf::from(inner), Box::new(std::io::Cursor::new(plain))))
        }
        None => {
            let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
            Ok((path.to_owned(), Box::new(bar.wrap_read(file))))
        }
    }
}

/// `cts import`: loads files into the data directory's store.
pub fn run(config: &Config, project_id: Option<String>, files: &[PathBuf]) -> anyhow::Result<()> {
    let iam = crate::data_dir::open_iam(config)?;
    let project_id = match project_id {
        Some(project_id) => project_id,
        None => iam.projects().first().context("the data directory has no project")?.id.clone(),
    };
    let (store, ledger) = crate::data_dir::open_store(config)?;
    let started = std::time::Instant::now();
    let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let summary = import(&store, &project_id, files, &config.keyring, config.redactor.as_ref(), progress)?;
    let seconds = started.elapsed().as_secs_f64();
    ledger.checkpoint_all().context("signing ledger checkpoints")?;
    println!(
        "imported {} traces ({} new, {} already stored, {} rejected) in {:.1} s ({:.0} traces/s)",
        summary.read,
        summary.stored,
        summary.duplicates,
        summary.rejected,
        seconds,
        summary.read as f64 / seconds.max(1e-9)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encrypted_trace_files_are_read_with_the_keyring_and_refused_without() {
        let dir = tempfile::tempdir().unwrap();
        let a = json!({"trace_name": "createOrder"});
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, json!({"traces": [a]}).to_string().as_bytes()).unwrap();
        let keyring = Keyring::from_keys([("k1".to_owned(), [5; 32])]);
        let path = dir.path().join("audit_CloudTrace_x.json.gz.enc");
        std::fs::write(&path, keyring.seal("k1", &gz.finish().unwrap()).unwrap()).unwrap();

        let (format, reader) = open_trace_file(&path, &keyring, &ProgressBar::hidden()).unwrap();
        assert_eq!(format, dir.path().join("audit_CloudTrace_x.json.gz"));
        let mut docs = Vec::new();
        for_each_document(&format, reader, |_, doc| {
            docs.push(matches!(doc, Document::Value(v) if v == a));
            Ok::<_, anyhow::Error>(())
        })
        .unwrap();
        assert_eq!(docs, [true]);
        let error = open_trace_file(&path, &Keyring::default(), &ProgressBar::hidden()).err().unwrap();
        assert!(format!("{error:#}").contains("no master key \"k1\""), "{error:#}");
    }
}
