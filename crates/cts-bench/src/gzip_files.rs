//! What the same traces take as CTS trace files, the format transfer delivers
//! to object storage: a JSON array of traces per file, gzip level 6. Only the
//! compressed bytes are counted; nothing is written to disk.

use flate2::write::GzEncoder;
use flate2::Compression;
use serde::Serialize;
use std::io::{self, Write};

/// Traces per file (a busy project's file of a few minutes).
pub const TRACES_PER_FILE: usize = 10_000;
/// The gzip level of CTS trace files.
pub const LEVEL: u32 = 6;

/// A writer that keeps only the count of bytes written to it.
#[derive(Debug, Default)]
pub struct ByteCount(pub u64);

impl Write for ByteCount {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0 += bytes.len() as u64;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The totals of the files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GzipTotals {
    pub files: usize,
    pub bytes: u64,
}

/// Gzip JSON array files of `per_file` traces each, as traces arrive.
pub struct GzipTraceFiles<W: Write> {
    per_file: usize,
    new_sink: fn() -> W,
    open: Option<(GzEncoder<W>, usize)>,
    closed: Vec<W>,
}

impl GzipTraceFiles<ByteCount> {
    /// Files that are only counted.
    pub fn counting(per_file: usize) -> Self {
        GzipTraceFiles::new(per_file, ByteCount::default)
    }

    /// Closes the last file; the number of files and their compressed bytes.
    pub fn finish(self) -> io::Result<GzipTotals> {
        let files = self.finish_files()?;
        Ok(GzipTotals { files: files.len(), bytes: files.iter().map(|count| count.0).sum() })
    }
}

impl<W: Write> GzipTraceFiles<W> {
    /// Files written into sinks `new_sink` makes (one per file).
    pub fn new(per_file: usize, new_sink: fn() -> W) -> Self {
        GzipTraceFiles { per_file: per_file.max(1), new_sink, open: None, closed: Vec::new() }
    }

    /// Adds one trace (its JSON) to the current file, opening and closing files as they fill.
    pub fn add(&mut self, trace: &impl Serialize) -> io::Result<()> {
        let (encoder, count) = match &mut self.open {
            Some(open) => open,
            None => self.open.insert((GzEncoder::new((self.new_sink)(), Compression::new(LEVEL)), 0)),
        };
        encoder.write_all(if *count == 0 { b"[" } else { b"," })?;
        serde_json::to_writer(&mut *encoder, trace)?;
        *count += 1;
        if *count == self.per_file {
            self.close()?;
        }
        Ok(())
    }

    fn close(&mut self) -> io::Result<()> {
        if let Some((mut encoder, _)) = self.open.take() {
            encoder.write_all(b"]")?;
            self.closed.push(encoder.finish()?);
        }
        Ok(())
    }

    /// Closes the last file; every file's sink, in order.
    pub fn finish_files(mut self) -> io::Result<Vec<W>> {
        self.close()?;
        Ok(self.closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use serde_json::{json, Value};
    use std::io::Read;

    fn traces(count: usize) -> Vec<Value> {
        (0..count).map(|i| json!({"trace_id": format!("t{i}"), "request": "x".repeat(i % 50)})).collect()
    }

    #[test]
    fn files_are_gzip_json_arrays_of_the_traces_in_order() {
        let workload = traces(25);
        let mut files = GzipTraceFiles::new(10, Vec::new);
        for trace in &workload {
            files.add(trace).unwrap();
        }
        let files = files.finish_files().unwrap();
        let mut decoded = Vec::new();
        for file in &files {
            let mut text = String::new();
            GzDecoder::new(file.as_slice()).read_to_string(&mut text).unwrap();
            decoded.push(serde_json::from_str::<Vec<Value>>(&text).unwrap());
        }
        assert_eq!(decoded.iter().map(Vec::len).collect::<Vec<_>>(), vec![10, 10, 5]);
        assert_eq!(decoded.concat(), workload);
    }

    #[test]
    fn counting_gives_the_bytes_the_files_would_have() {
        let workload = traces(2_345);
        let (mut written, mut counted) = (GzipTraceFiles::new(1_000, Vec::new), GzipTraceFiles::counting(1_000));
        for trace in &workload {
            written.add(trace).unwrap();
            counted.add(trace).unwrap();
        }
        let written = written.finish_files().unwrap();
        let totals = counted.finish().unwrap();
        assert_eq!(totals, GzipTotals { files: 3, bytes: written.iter().map(|file| file.len() as u64).sum() });
        let raw: usize = workload.iter().map(|t| t.to_string().len()).sum();
        assert!(totals.bytes < raw as u64 / 5, "repetitive JSON compresses: {} of {raw}", totals.bytes);
    }

    #[test]
    fn no_traces_no_files() {
        assert_eq!(GzipTraceFiles::counting(10).finish().unwrap(), GzipTotals::default());
    }
}
