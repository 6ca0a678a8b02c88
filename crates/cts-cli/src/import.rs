//! `cts import`: bulk-loads traces into a data directory without a running
//! server. Files are JSON Lines (one trace per line), a JSON array of traces,
//! or a CTS trace file (`{"traces":[...]}`), each optionally gzipped
//! (`.gz`). Every trace is validated as on ingest; full records (as
//! ListTraces returns them, or as delivered to OBS) keep their `project_id`
//! and `record_time`.

use crate::config::Config;
use anyhow::Context;
use cts_model::{now_ms, Trace, TraceInput};
use cts_store::Store;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// Traces handed to the store at once.
const BATCH: usize = 10_000;

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportSummary {
    pub read: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub rejected: u64,
}

/// Imports `files` into `store`; traces without a `project_id` go to `default_project`.
fn import(store: &Store, default_project: &str, files: &[PathBuf], progress: bool) -> anyhow::Result<ImportSummary> {
    let total_bytes: u64 = files.iter().map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0)).sum();
    let bar = if progress { ProgressBar::new(total_bytes) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {bytes}/{total_bytes} {wide_bar} {msg}")
            .expect("valid progress template"),
    );
    let (batches, appender_input) = mpsc::sync_channel::<Vec<Trace>>(2);
    let appender_store = store.clone();
    let appender = std::thread::spawn(move || -> anyhow::Result<(u64, u64)> {
        let (mut stored, mut duplicates) = (0, 0);
        for batch in appender_input {
            let outcome = appender_store.append_blocking(batch).context("appending to the store")?;
            stored += outcome.stored as u64;
            duplicates += outcome.duplicates as u64;
        }
        Ok((stored, duplicates))
    });

    let mut summary = ImportSummary::default();
    let mut batch = Vec::with_capacity(BATCH);
    let record_time = now_ms();
    let parse_result = (|| -> anyhow::Result<()> {
        for path in files {
            let reader =
                bar.wrap_read(std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?);
            for_each_document(path, reader, |line, doc| {
                summary.read += 1;
                match to_trace(doc, default_project, record_time) {
                    Ok(trace) => batch.push(trace),
                    Err(reason) => {
                        summary.rejected += 1;
                        bar.suspend(|| eprintln!("{}:{line}: rejected: {reason}", path.display()));
                    }
                }
                if batch.len() == BATCH {
                    bar.set_message(format!("{} traces", summary.read));
                    batches.send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))?;
                }
                Ok(())
            })?;
        }
        if !batch.is_empty() {
            batches.send(std::mem::take(&mut batch))?;
        }
        Ok(())
    })();
    drop(batches);
    let appended = appender.join().expect("appender thread panicked");
    parse_result?;
    let (stored, duplicates) = appended?;
    summary.stored = stored;
    summary.duplicates = duplicates;
    store.flush().context("sealing the imported traces")?;
    bar.finish_and_clear();
    Ok(summary)
}

/// Calls `each(position, document)` for every trace document of a file:
/// per line for JSON Lines (`.jsonl`, `.ndjson`; a bad line is rejected
/// alone), otherwise per top-level JSON value, where an array or a
/// `{"traces":[...]}` object contributes each of its elements.
fn for_each_document(
    path: &Path,
    reader: impl Read,
    mut each: impl FnMut(usize, Value) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
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
            let doc = serde_json::from_str(&line).unwrap_or_else(|e| Value::String(format!("not JSON: {e}")));
            each(i + 1, doc)?;
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
            each(position, doc)?;
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
        return Err(match doc {
            Value::String(reason) => reason,
            _ => "a trace must be a JSON object".to_owned(),
        });
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
    let store = crate::data_dir::open_store(config)?;
    let started = std::time::Instant::now();
    let summary = import(&store, &project_id, files, std::io::IsTerminal::is_terminal(&std::io::stderr()))?;
    let seconds = started.elapsed().as_secs_f64();
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

    fn documents(name: &str, bytes: &[u8]) -> Vec<Value> {
        let mut docs = Vec::new();
        for_each_document(Path::new(name), bytes, |_, doc| {
            docs.push(doc);
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
}
