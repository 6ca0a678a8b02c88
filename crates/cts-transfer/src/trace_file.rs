//! The content of trace files: a window's traces grouped by service (when the tracker sorts by service),
//! ordered by (time, trace_id), split into parts of at most `max_file_bytes` of JSON, each part encoded as
//! `{"traces":[...]}` (gzip-compressed or plain) or as Parquet (the store's segment schema, zstd).
//!
//! The same traces always give the same parts, so a retried window rewrites exactly the files it wrote before;
//! a window that gained late traces gives at least as many parts, so rewriting it leaves no stale part behind.

use crate::layout::Encoding;
use cts_model::Trace;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write;

/// One file's worth of a window's traces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceFile {
    /// The service directory, `None` when the tracker does not sort by service.
    pub service: Option<String>,
    pub part: usize,
    /// The file's bytes (before any encryption).
    pub body: Vec<u8>,
    pub trace_ids: Vec<String>,
}

/// How a tracker's files are cut and encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileShape {
    pub sort_by_service: bool,
    pub encoding: Encoding,
    /// A part holds traces of at most this many JSON bytes (one trace larger than this gets a part of its own).
    pub max_file_bytes: usize,
}

/// Cuts `traces` into files.
pub fn build_files(mut traces: Vec<Trace>, shape: FileShape) -> Vec<TraceFile> {
    let group_of = |trace: &Trace| shape.sort_by_service.then(|| trace.service_type.clone());
    traces.sort_by(|a, b| (group_of(a), a.time, &a.trace_id).cmp(&(group_of(b), b.time, &b.trace_id)));
    let mut files = Vec::new();
    let mut current: Option<OpenPart> = None;
    for trace in &traces {
        let group = group_of(trace);
        let json = serde_json::to_string(trace).expect("a trace serializes");
        let continues = current.as_ref().is_some_and(|open| {
            open.service == group && (open.documents.is_empty() || open.bytes + json.len() <= shape.max_file_bytes)
        });
        if !continues {
            let part = match &current {
                Some(open) if open.service == group => open.part + 1,
                _ => 0,
            };
            if let Some(done) = current.take() {
                files.push(done.finish(shape.encoding));
            }
            current = Some(OpenPart { service: group, part, traces: Vec::new(), documents: Vec::new(), bytes: 0 });
        }
        let open = current.as_mut().expect("a part is open");
        open.bytes += json.len();
        open.documents.push(json);
        open.traces.push(trace);
    }
    if let Some(done) = current {
        files.push(done.finish(shape.encoding));
    }
    files
}

/// The part being filled: its traces, and each as a JSON document.
struct OpenPart<'a> {
    service: Option<String>,
    part: usize,
    traces: Vec<&'a Trace>,
    documents: Vec<String>,
    bytes: usize,
}

impl OpenPart<'_> {
    fn finish(self, encoding: Encoding) -> TraceFile {
        let json = || format!("{{\"traces\":[{}]}}", self.documents.join(","));
        let body = match encoding {
            Encoding::Json => json().into_bytes(),
            Encoding::Parquet => cts_store::traces_to_parquet(&self.traces),
            Encoding::Gzip => {
                // The gzip header's time stays 0: the same traces give the same bytes.
                let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
                encoder.write_all(json().as_bytes()).expect("writing to memory");
                encoder.finish().expect("writing to memory")
            }
        };
        let trace_ids = self.traces.iter().map(|trace| trace.trace_id.clone()).collect();
        TraceFile { service: self.service, part: self.part, body, trace_ids }
    }
}

/// Why a trace file's bytes do not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("not a JSON trace file: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not a Parquet trace file: {0}")]
    Parquet(#[from] cts_store::StoreError),
}

/// The magic bytes a Parquet file starts with.
const PARQUET_MAGIC: &[u8] = b"PAR1";

/// The traces of a trace file's bytes (gzip, plain JSON or Parquet), as [`build_files`] wrote them.
pub fn read_traces(body: &[u8]) -> Result<Vec<Trace>, ReadError> {
    #[derive(serde::Deserialize)]
    struct File {
        traces: Vec<Trace>,
    }
    if body.starts_with(PARQUET_MAGIC) {
        let origin = std::path::Path::new("<parquet trace file>");
        return Ok(cts_store::traces_from_parquet(bytes::Bytes::copy_from_slice(body), origin)?);
    }
    let json = if body.starts_with(&[0x1f, 0x8b]) {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(body), &mut text)
            .map_err(serde_json::Error::io)?;
        text
    } else {
        body.to_vec()
    };
    Ok(serde_json::from_slice::<File>(&json)?.traces)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn trace(id: &str, service: &str, time: i64) -> Trace {
        let input = serde_json::json!({
            "trace_name": "createOrder", "trace_rating": "normal", "trace_type": "ApiCall",
            "service_type": service, "resource_type": "Order", "time": 1_000 + time,
            "user": {"id": "u1", "name": "alice", "domain": {"id": "d1", "name": "acme"}},
        });
        let mut trace =
            cts_model::TraceInput::from_json(&input.to_string()).unwrap().into_trace("p1", 1_000 + time).unwrap();
        trace.trace_id = id.to_owned();
        trace
    }

    const SHAPE: FileShape = FileShape { sort_by_service: true, encoding: Encoding::Gzip, max_file_bytes: 1 << 20 };

    #[test]
    fn files_are_one_per_service_in_time_order_and_read_back() {
        let traces = vec![trace("c", "marketplace", 3), trace("a", "CTS", 1), trace("b", "marketplace", 2)];
        let files = build_files(traces.clone(), SHAPE);
        let summary: Vec<_> = files.iter().map(|f| (f.service.as_deref(), f.part, f.trace_ids.clone())).collect();
        assert_eq!(
            summary,
            [(Some("CTS"), 0, vec!["a".to_owned()]), (Some("marketplace"), 0, vec!["b".into(), "c".into()])]
        );
        assert_eq!(read_traces(&files[1].body).unwrap(), [traces[2].clone(), traces[0].clone()]);

        let parquet = build_files(traces.clone(), FileShape { encoding: Encoding::Parquet, ..SHAPE });
        assert_eq!(parquet.iter().map(|f| f.trace_ids.len()).collect::<Vec<_>>(), [1, 2]);
        assert!(parquet[1].body.starts_with(PARQUET_MAGIC));
        assert_eq!(read_traces(&parquet[1].body).unwrap(), [traces[2].clone(), traces[0].clone()]);

        let plain = build_files(traces, FileShape { sort_by_service: false, encoding: Encoding::Json, ..SHAPE });
        assert_eq!(plain.len(), 1);
        assert_eq!(plain[0].service, None);
        assert!(plain[0].body.starts_with(b"{\"traces\":[{"));
        assert_eq!(read_traces(&plain[0].body).unwrap().len(), 3);
    }

    #[test]
    fn large_windows_are_split_and_an_oversized_trace_gets_a_part_of_its_own() {
        let one = serde_json::to_string(&trace("t00", "s", 0)).unwrap().len();
        let traces: Vec<_> = (0..10).map(|i| trace(&format!("t{i:02}"), "s", i)).collect();
        let files = build_files(traces, FileShape { max_file_bytes: one * 3, ..SHAPE });
        assert_eq!(files.iter().map(|f| f.trace_ids.len()).collect::<Vec<_>>(), [3, 3, 3, 1]);
        assert_eq!(files.iter().map(|f| f.part).collect::<Vec<_>>(), [0, 1, 2, 3]);
        let tiny = build_files(vec![trace("a", "s", 0), trace("b", "s", 1)], FileShape { max_file_bytes: 1, ..SHAPE });
        assert_eq!(tiny.len(), 2);
    }

    proptest! {
        /// Every trace lands in exactly one part; the same traces in any order give the same files; more traces
        /// never give fewer parts per service (so rewriting a window that gained late traces leaves no stale part).
        #[test]
        fn parts_are_a_deterministic_partition(
            specs in prop::collection::vec((0..3usize, 0..50i64), 1..40),
            extra in prop::collection::vec((0..3usize, 0..50i64), 0..10),
            max_traces in 1..6usize,
        ) {
            let services = ["CTS", "marketplace", "iam"];
            let make = |offset: usize, specs: &[(usize, i64)]| -> Vec<Trace> {
                specs.iter().enumerate().map(|(i, (s, t))| trace(&format!("id{:03}", i + offset), services[*s], *t)).collect()
            };
            let one = serde_json::to_string(&trace("id000", "marketplace", 10)).unwrap().len() + 4;
            let shape = FileShape { max_file_bytes: one * max_traces, ..SHAPE };
            let traces = make(0, &specs);
            let files = build_files(traces.clone(), shape);
            let mut ids: Vec<_> = files.iter().flat_map(|f| f.trace_ids.clone()).collect();
            ids.sort();
            let mut expected: Vec<_> = traces.iter().map(|t| t.trace_id.clone()).collect();
            expected.sort();
            prop_assert_eq!(ids, expected);

            let mut reversed = traces.clone();
            reversed.reverse();
            prop_assert_eq!(&build_files(reversed, shape), &files);

            let mut grown = traces;
            grown.extend(make(1000, &extra));
            let grown_files = build_files(grown, shape);
            for service in services {
                let parts = |files: &[TraceFile]| files.iter().filter(|f| f.service.as_deref() == Some(service)).count();
                prop_assert!(parts(&grown_files) >= parts(&files));
            }
        }
    }
}
