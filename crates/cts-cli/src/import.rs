//! `cts import`: bulk-loads traces into a data directory without a running
//! server. Files are JSON Lines (one trace per line), a JSON array of traces,
//! or a CTS trace file (`{"traces":[...]}`), each optionally gzipped
//! (`.gz`), or a Parquet trace file (`.parquet`, as trackers with `compress_type: parquet` deliver them), and
//! optionally encrypted as trackers deliver them (`.enc`, opened with `CTS_KEYRING`). Every trace is validated as on ingest; full records (as
//! ListTraces returns them, or as delivered to OBS) keep their `project_id`
//! and `record_time`.

use crate::config::Config;
use anyhow::{anyhow, Context};
use cts_model::redact::Redactor;
use cts_model::{now_ms, Trace, TraceInput};
use cts_store::Store;
use cts_transfer::Keyring;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
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

/// One trace document as read: a JSON Lines line still to parse, or a value
/// taken out of a JSON document.
enum Document {
    Line(String),
    Value(Value),
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
                        match parse(document, default_project, record_time) {
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
                    Ok(())
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

/// Validates one document. A line in the ingest format is parsed straight
/// into a [`TraceInput`]; anything else (full records with `project_id` and
/// `record_time`, or a line that does not parse) goes through [`to_trace`],
/// which keeps those fields or names the problem.
fn parse(document: Document, default_project: &str, record_time: i64) -> Result<Trace, String> {
    let value = match document {
        Document::Line(line) => match serde_json::from_str::<TraceInput>(&line) {
            Ok(input) => return input.into_trace(default_project, record_time).map_err(|e| e.to_string()),
            Err(_) => serde_json::from_str(&line).map_err(|e| format!("not JSON: {e}"))?,
        },
        Document::Value(value) => value,
    };
    to_trace(value, default_project, record_time)
}

/// Calls `each(position, document)` for every trace document of a file:
/// per line for JSON Lines (`.jsonl`, `.ndjson`; a bad line is rejected
/// alone), per row for Parquet trace files (`.parquet`, full records),
/// otherwise per top-level JSON value, where an array or a
/// `{"traces":[...]}` object contributes each of its elements.
fn for_each_document(
    path: &Path,
    mut reader: impl Read,
    mut each: impl FnMut(usize, Document) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    if path.extension().is_some_and(|e| e == "parquet") {
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).with_context(|| format!("reading {}", path.display()))?;
        let traces = cts_store::traces_from_parquet(bytes.into(), path)?;
        for (i, trace) in traces.iter().enumerate() {
            each(i + 1, Document::Value(serde_json::to_value(trace)?))?;
        }
        return Ok(());
    }
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    let reader = BufReader::with_capacity(1 << 20, reader);
    if is_json_lines(path) {
        for (i, line) in reader.lines().enumerate() {
            let line = line.with_context(|| format!("reading {}", path.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            each(i + 1, Document::Line(line))?;
        }
        return Ok(());
    }
    let mut position = 0;
    for value in serde_json::Deserializer::from_reader(reader).into_iter::<Value>() {
        let value = value.with_context(|| format!("parsing {}", path.display()))?;
        let docs = match value {
            Value::Array(traces) => traces,
            Value::Object(mut file) if matches!(file.get("traces"), Some(Value::Array(_))) => {
                match file.remove("traces") {
                    Some(Value::Array(traces)) => traces,
                    _ => unreachable!("checked to be an array"),
                }
            }
            doc => vec![doc],
        };
        for doc in docs {
            position += 1;
            each(position, Document::Value(doc))?;
        }
    }
    Ok(())
}

/// `.jsonl`/`.ndjson` files (optionally gzipped) are read line by line.
fn is_json_lines(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(name);
    name.ends_with(".jsonl") || name.ends_with(".ndjson")
}

/// Validates one document; full records keep their project and record time.
fn to_trace(doc: Value, default_project: &str, record_time: i64) -> Result<Trace, String> {
    let Value::Object(mut fields) = doc else {
        return Err("a trace must be a JSON object".to_owned());
    };
    let project = match fields.remove("project_id") {
        Some(Value::String(project)) => project,
        Some(_) => return Err("project_id: must be a string".to_owned()),
        None => default_project.to_owned(),
    };
    let record_time = match fields.remove("record_time") {
        Some(value) => {
            value.as_i64().filter(|t| *t > 0).ok_or("record_time: must be a positive UTC millisecond time")?
        }
        None => record_time,
    };
    let input: TraceInput = serde_json::from_value(Value::Object(fields)).map_err(|e| e.to_string())?;
    input.into_trace(&project, record_time).map_err(|e| e.to_string())
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

    /// The documents of a file, each parsed to JSON (or the parse error).
    fn documents(name: &str, bytes: &[u8]) -> Vec<Value> {
        let mut docs = Vec::new();
        for_each_document(Path::new(name), bytes, |_, doc| {
            docs.push(match doc {
                Document::Line(line) => serde_json::from_str(&line).unwrap_or_else(|e| json!(format!("not JSON: {e}"))),
                Document::Value(value) => value,
            });
            Ok(())
        })
        .unwrap();
        docs
    }

    #[test]
    fn reads_json_lines_arrays_concatenated_objects_and_cts_files() {
        let a = json!({"trace_name": "createOrder"});
        let b = json!({"trace_name": "cancelOrder"});
        let lines = format!("{a}\n\n{b}\n");
        assert_eq!(documents("t.jsonl", lines.as_bytes()), vec![a.clone(), b.clone()]);
        assert_eq!(documents("t.json", lines.as_bytes()), vec![a.clone(), b.clone()]);
        let array = json!([a, b]).to_string();
        assert_eq!(documents("t.json", array.as_bytes()), vec![a.clone(), b.clone()]);
        let file = json!({"traces": [a, b]}).to_string();
        assert_eq!(documents("t.json", file.as_bytes()), vec![a.clone(), b.clone()]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, file.as_bytes()).unwrap();
        assert_eq!(documents("t.json.gz", &gz.finish().unwrap()), vec![a, b]);
    }

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
            Ok(())
        })
        .unwrap();
        assert_eq!(docs, [true]);
        let error = open_trace_file(&path, &Keyring::default(), &ProgressBar::hidden()).err().unwrap();
        assert!(format!("{error:#}").contains("no master key \"k1\""), "{error:#}");
    }

    #[test]
    fn parquet_trace_files_are_read_as_full_records() {
        let traces: Vec<Trace> = (0..3)
            .map(|i| {
                let input = json!({"trace_id": format!("6f1c2a4e-0000-4000-8000-00000000000{i}"), "trace_name": "createOrder", "service_type": "marketplace",
                    "resource_type": "Order", "time": 1_700_000_000_000i64 + i, "user": {"name": "alice"}});
                let input: TraceInput = serde_json::from_value(input).unwrap();
                input.into_trace("other-project", 1_700_000_000_500).unwrap()
            })
            .collect();
        let bytes = cts_store::traces_to_parquet(&traces.iter().collect::<Vec<_>>());
        let mut read = Vec::new();
        for_each_document(Path::new("x_CloudTrace_y.parquet"), &bytes[..], |_, document| {
            read.push(parse(document, "default-project", 1).unwrap());
            Ok(())
        })
        .unwrap();
        assert_eq!(read, traces, "project and record time kept");
        let garbage = for_each_document(Path::new("x.parquet"), &b"PAR1 not really"[..], |_, _| Ok(()));
        assert!(garbage.is_err());
    }

    #[test]
    fn a_bad_json_line_is_rejected_alone() {
        let docs = documents("t.jsonl", b"{\"trace_name\":\"a\"}\n{oops\n");
        assert_eq!(docs.len(), 2);
        assert!(matches!(&docs[1], Value::String(reason) if reason.starts_with("not JSON")));
    }

    #[test]
    fn full_records_keep_project_and_record_time() {
        let doc = json!({"trace_name": "createOrder", "service_type": "marketplace", "resource_type": "Order",
                         "project_id": "p-2", "record_time": 1_700_000_000_000_i64, "time": 1_699_999_999_000_i64});
        let trace = to_trace(doc, "p-default", 5).unwrap();
        assert_eq!((trace.project_id.as_str(), trace.record_time), ("p-2", 1_700_000_000_000));
        let doc =
            json!({"trace_name": "createOrder", "service_type": "marketplace", "resource_type": "Order", "time": 4});
        assert_eq!(to_trace(doc, "p-default", 5).unwrap().project_id, "p-default");
        assert!(to_trace(json!({"trace_name": "x"}), "p", 5).unwrap_err().contains("service_type"));
    }

    #[test]
    fn lines_take_the_fast_path_or_fall_back_to_full_records() {
        let line = |doc: Value| Document::Line(doc.to_string());
        let base =
            json!({"trace_name": "createOrder", "service_type": "marketplace", "resource_type": "Order", "time": 4});
        assert_eq!(parse(line(base.clone()), "p-default", 5).unwrap().project_id, "p-default");
        let mut full = base.clone();
        full["project_id"] = json!("p-9");
        full["record_time"] = json!(7);
        let trace = parse(line(full), "p-default", 5).unwrap();
        assert_eq!((trace.project_id.as_str(), trace.record_time), ("p-9", 7));
        let mut invalid = base;
        invalid["trace_name"] = json!("9lives");
        assert!(parse(line(invalid), "p", 5).unwrap_err().starts_with("trace_name"));
        assert!(parse(Document::Line("{oops".into()), "p", 5).unwrap_err().starts_with("not JSON"));
    }
}
