//! The write-ahead log: framing, the sink the writer thread writes to, and recovery.
//!
//! One WAL file per memtable generation, `wal/<generation:020>.wal`. A file is a sequence of records
//! `[u32 LE payload length][u32 LE crc32c(payload)][payload]`, the payload being the byte
//! [`BINARY_PAYLOAD`] then the trace's binary record (see [`crate::record`], the sidecar's encoding).
//! Payloads of WAL files written before the binary records are the trace's JSON (`serde_json` of
//! [`cts_model::Trace`], always starting with `{`) and still replay. Recovery keeps every complete record and truncates the file
//! at the first bad one (zero or oversized length, short read, CRC mismatch): that is a write torn by a
//! crash, and its append was never acknowledged.

use crate::error::StoreError;
use crate::record::{decode_whole, encode_trace};
use cts_model::Trace;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Bytes of the record header (length and CRC).
pub(crate) const HEADER_LEN: usize = 8;
/// Records longer than this are treated as corrupt (a trace is at most ~200 KiB of JSON).
pub(crate) const MAX_RECORD_LEN: usize = 16 << 20;
/// The first byte of a payload holding a binary record.
const BINARY_PAYLOAD: u8 = 1;
/// Where the binary record starts in a framed record written by [`encode_record`].
pub(crate) const RECORD_START: usize = HEADER_LEN + 1;
/// The first byte of a payload holding JSON (WAL files written before the binary records).
const JSON_PAYLOAD: u8 = b'{';

/// Where the writer thread puts WAL bytes. The file implementation is the only one outside tests;
/// tests substitute failing sinks to check that a failed write or fsync fails the append.
pub(crate) trait WalSink: Send {
    /// The sink's length in bytes (where the next append lands).
    fn len(&mut self) -> io::Result<u64>;
    /// Appends `parts`, back to back.
    fn append(&mut self, parts: &[&[u8]]) -> io::Result<()>;
    /// Makes everything appended so far durable.
    fn sync(&mut self) -> io::Result<()>;
    /// Cuts the sink back to `len` bytes: what a failed append may have written goes.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
}

impl WalSink for File {
    fn len(&mut self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn append(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        let mut slices: Vec<io::IoSlice<'_>> = parts.iter().map(|part| io::IoSlice::new(part)).collect();
        let mut slices = &mut slices[..];
        while !slices.is_empty() {
            match self.write_vectored(slices) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => io::IoSlice::advance_slices(&mut slices, written),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.sync_data()
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        // Opened for appending: the next write lands at the new end.
        self.set_len(len)
    }
}

/// Whether a write failed for want of space (`ENOSPC`, or `EDQUOT` for a quota).
pub fn is_out_of_space(error: &io::Error) -> bool {
    const EDQUOT: i32 = 122;
    error.kind() == io::ErrorKind::StorageFull || error.raw_os_error() == Some(EDQUOT)
}

/// Opens the WAL file of a generation for appending (creating it if needed).
pub(crate) type SinkFactory = dyn Fn(&Path) -> io::Result<Box<dyn WalSink>> + Send + Sync;

pub(crate) fn open_file_sink(path: &Path) -> io::Result<Box<dyn WalSink>> {
    Ok(Box::new(OpenOptions::new().create(true).append(true).open(path)?))
}

pub(crate) fn wal_path(wal_dir: &Path, generation: u64) -> PathBuf {
    wal_dir.join(format!("{generation:020}.wal"))
}

/// A batch of traces framed as WAL records, encoded on the caller's thread.
#[derive(Debug, Default)]
pub(crate) struct EncodedBatch {
    pub bytes: Vec<u8>,
    /// End offset in `bytes` of each trace's record.
    pub ends: Vec<usize>,
}

impl EncodedBatch {
    #[cfg(test)]
    pub(crate) fn encode(traces: &[Trace]) -> EncodedBatch {
        let mut batch = EncodedBatch::with_room(traces.len());
        traces.iter().for_each(|trace| batch.push(trace));
        batch
    }

    /// An empty batch with room for about `traces` records.
    pub(crate) fn with_room(traces: usize) -> EncodedBatch {
        EncodedBatch { bytes: Vec::with_capacity(traces * 1024), ends: Vec::with_capacity(traces) }
    }

    /// Appends the record of `trace`.
    pub(crate) fn push(&mut self, trace: &Trace) {
        encode_record(trace, &mut self.bytes);
        self.ends.push(self.bytes.len());
    }

    /// Where the framed record of trace `index` lies in `bytes`.
    pub(crate) fn range(&self, index: usize) -> std::ops::Range<usize> {
        crate::record::range_of(&self.ends, index)
    }

    /// The framed record of trace `index`.
    pub(crate) fn record(&self, index: usize) -> &[u8] {
        &self.bytes[self.range(index)]
    }
}

/// Appends one framed record to `out`.
pub(crate) fn encode_record(trace: &Trace, out: &mut Vec<u8>) {
    let header_at = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    out.push(BINARY_PAYLOAD);
    encode_trace(trace, out);
    let payload = &out[header_at + HEADER_LEN..];
    let len = u32::try_from(payload.len()).expect("a trace's record is shorter than 4 GiB");
    let crc = crc32c::crc32c(payload);
    out[header_at..header_at + 4].copy_from_slice(&len.to_le_bytes());
    out[header_at + 4..header_at + HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
}

/// Reads every complete record of `path` and truncates (and fsyncs) the file after the last one.
pub(crate) fn recover(path: &Path) -> Result<Vec<Trace>, StoreError> {
    let mut file = OpenOptions::new().read(true).write(true).open(path).map_err(|e| StoreError::io(path, e))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(|e| StoreError::io(path, e))?;
    let (traces, valid_len) = decode_records(&bytes, path)?;
    let truncated_bytes = (bytes.len() - valid_len) as u64;
    if truncated_bytes > 0 {
        tracing::warn!(path = %path.display(), truncated_bytes, "truncating a torn WAL tail");
        file.set_len(valid_len as u64).map_err(|e| StoreError::io(path, e))?;
        file.sync_all().map_err(|e| StoreError::io(path, e))?;
    }
    Ok(traces)
}

/// Every complete record of `path`, leaving the file as it is (verification of a stopped store).
pub(crate) fn read_complete_records(path: &Path) -> Result<Vec<Trace>, StoreError> {
    let bytes = std::fs::read(path).map_err(|e| StoreError::io(path, e))?;
    decode_records(&bytes, path).map(|(traces, _)| traces)
}

/// Decodes the complete records at the start of `bytes`; returns them and the length they span.
/// A record with a valid CRC whose payload is not a trace is corruption, not a torn write.
fn decode_records(bytes: &[u8], path: &Path) -> Result<(Vec<Trace>, usize), StoreError> {
    let mut traces = Vec::new();
    let mut at = 0;
    while let Some(header) = bytes.get(at..at + HEADER_LEN) {
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        if len == 0 || len > MAX_RECORD_LEN {
            break;
        }
        let Some(payload) = bytes.get(at + HEADER_LEN..at + HEADER_LEN + len) else { break };
        if crc32c::crc32c(payload) != crc {
            break;
        }
        let trace = match payload[0] {
            BINARY_PAYLOAD => decode_whole(&payload[1..]),
            JSON_PAYLOAD => serde_json::from_slice(payload).map_err(|e| e.to_string()),
            other => Err(format!("unknown payload type {other}")),
        };
        let trace = trace
            .map_err(|reason| StoreError::corrupt(path, format!("record at byte {at} is not a trace: {reason}")))?;
        traces.push(trace);
        at += HEADER_LEN + len;
    }
    Ok((traces, at))
}

#[cfg(test)]
mod tests;
