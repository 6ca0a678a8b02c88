//! Reading trace files back, as `cts import` does: JSON Lines (one trace per line), a JSON array of traces, or a
//! CTS trace file (`{"traces":[...]}`, what [`crate::trace_file`] writes), each optionally gzipped (`.gz`), or a
//! Parquet trace file (`.parquet`, as trackers with `compress_type: parquet` deliver them). Every trace is
//! validated as on ingest; full records (as ListTraces returns them, or as delivered to OBS) keep their
//! `project_id` and `record_time`.
//!
//! [`for_each_document`] splits a file into trace documents; [`Document::into_trace`] validates one. A bad
//! document is refused alone; a file that cannot be read or parsed as a whole stops with an [`ImportError`].

use cts_model::{Trace, TraceInput};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Why a trace file could not be read (a single bad trace is not an error of the file: see [`Document`]).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Parquet(#[from] cts_store::StoreError),
}

/// One trace document as read: a JSON Lines line still to parse, or a value taken out of a JSON document.
#[derive(Debug, Clone, PartialEq)]
pub enum Document {
    Line(String),
    Value(Value),
}

impl Document {
    /// Validates the document into the trace to store; traces without a `project_id` go to `default_project`
    /// and those without a `record_time` get `record_time`. A line in the ingest format is parsed straight into
    /// a [`TraceInput`]; anything else (full records, or a line that does not parse) goes through
    /// [`full_record`], which keeps those fields or names the problem. The error is the reason, for a log line.
    pub fn into_trace(self, default_project: &str, record_time: i64) -> Result<Trace, String> {
        let value = match self {
            Document::Line(line) => match serde_json::from_str::<TraceInput>(&line) {
                Ok(input) => return input.into_trace(default_project, record_time).map_err(|e| e.to_string()),
                Err(_) => serde_json::from_str(&line).map_err(|e| format!("not JSON: {e}"))?,
            },
            Document::Value(value) => value,
        };
        full_record(value, default_project, record_time)
    }
}

/// Calls `each(position, document)` for every trace document of a file, `format` being the file's name (an
/// encrypted file's without `.enc`): per line for JSON Lines (`.jsonl`, `.ndjson`; a bad line is refused
/// alone), per row for Parquet trace files (`.parquet`, full records), otherwise per top-level JSON value,
/// where an array or a `{"traces":[...]}` object contributes each of its elements. Stops at the first error
/// of `each`.
pub fn for_each_document<E: From<ImportError>>(
    format: &Path,
    mut reader: impl Read,
    mut each: impl FnMut(usize, Document) -> Result<(), E>,
) -> Result<(), E> {
    let read_error = |source| ImportError::Read { path: format.to_owned(), source };
    if format.extension().is_some_and(|e| e == "parquet") {
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).map_err(read_error)?;
        let traces = cts_store::traces_from_parquet(bytes.into(), format).map_err(ImportError::from)?;
        for (i, trace) in traces.iter().enumerate() {
            each(i + 1, Document::Value(serde_json::to_value(trace).expect("a trace serializes")))?;
        }
        return Ok(());
    }
    let reader: Box<dyn Read> = if format.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    let reader = BufReader::with_capacity(1 << 20, reader);
    if is_json_lines(format) {
        for (i, line) in reader.lines().enumerate() {
            let line = line.map_err(read_error)?;
            if line.trim().is_empty() {
                continue;
            }
            each(i + 1, Document::Line(line))?;
        }
        return Ok(());
    }
    let mut position = 0;
    for value in serde_json::Deserializer::from_reader(reader).into_iter::<Value>() {
        let value = value.map_err(|source| ImportError::Parse { path: format.to_owned(), source })?;
        let documents = match value {
            Value::Array(traces) => traces,
            Value::Object(mut file) if matches!(file.get("traces"), Some(Value::Array(_))) => {
                match file.remove("traces") {
                    Some(Value::Array(traces)) => traces,
                    _ => unreachable!("checked to be an array"),
                }
            }
            document => vec![document],
        };
        for document in documents {
            position += 1;
            each(position, Document::Value(document))?;
        }
    }
    Ok(())
}

/// `.jsonl`/`.ndjson` files (optionally gzipped) are read line by line.
fn is_json_lines(format: &Path) -> bool {
    let name = format.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(name);
    name.ends_with(".jsonl") || name.ends_with(".ndjson")
}

/// Validates one document; full records keep their project and record time.
fn full_record(document: Value, default_project: &str, record_time: i64) -> Result<Trace, String> {
    let Value::Object(mut fields) = document else {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The documents of a file, each parsed to JSON (or the parse error).
    fn documents(name: &str, bytes: &[u8]) -> Vec<Value> {
        let mut documents = Vec::new();
        for_each_document(Path::new(name), bytes, |_, document| {
            documents.push(match document {
                Document::Line(line) => serde_json::from_str(&line).unwrap_or_else(|e| json!(format!("not JSON: {e}"))),
                Document::Value(value) => value,
            });
            Ok::<_, ImportError>(())
        })
        .unwrap();
        documents
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
            read.push(document.into_trace("default-project", 1).unwrap());
            Ok::<_, ImportError>(())
        })
        .unwrap();
        assert_eq!(read, traces, "project and record time kept");
        let garbage =
            for_each_document(Path::new("x.parquet"), &b"PAR1 not really"[..], |_, _| Ok::<_, ImportError>(()));
        assert!(garbage.is_err());
    }

    #[test]
    fn a_bad_json_line_is_rejected_alone() {
        let documents = documents("t.jsonl", b"{\"trace_name\":\"a\"}\n{oops\n");
        assert_eq!(documents.len(), 2);
        assert!(matches!(&documents[1], Value::String(reason) if reason.starts_with("not JSON")));
    }

    #[test]
    fn full_records_keep_project_and_record_time() {
        let document = json!({"trace_name": "createOrder", "service_type": "marketplace", "resource_type": "Order",
                         "project_id": "p-2", "record_time": 1_700_000_000_000_i64, "time": 1_699_999_999_000_i64});
        let trace = full_record(document, "p-default", 5).unwrap();
        assert_eq!((trace.project_id.as_str(), trace.record_time), ("p-2", 1_700_000_000_000));
        let document =
            json!({"trace_name": "createOrder", "service_type": "marketplace", "resource_type": "Order", "time": 4});
        assert_eq!(full_record(document, "p-default", 5).unwrap().project_id, "p-default");
        assert!(full_record(json!({"trace_name": "x"}), "p", 5).unwrap_err().contains("service_type"));
    }

    #[test]
    fn lines_take_the_fast_path_or_fall_back_to_full_records() {
        let line = |document: Value| Document::Line(document.to_string());
        let base =
            json!({"trace_name": "createOrder", "service_type": "marketplace", "resource_type": "Order", "time": 4});
        assert_eq!(line(base.clone()).into_trace("p-default", 5).unwrap().project_id, "p-default");
        let mut full = base.clone();
        full["project_id"] = json!("p-9");
        full["record_time"] = json!(7);
        let trace = line(full).into_trace("p-default", 5).unwrap();
        assert_eq!((trace.project_id.as_str(), trace.record_time), ("p-9", 7));
        let mut invalid = base;
        invalid["trace_name"] = json!("9lives");
        assert!(line(invalid).into_trace("p", 5).unwrap_err().starts_with("trace_name"));
        assert!(Document::Line("{oops".into()).into_trace("p", 5).unwrap_err().starts_with("not JSON"));
    }
}
