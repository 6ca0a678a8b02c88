//! Stored traces: the row-store sidecar of a segment (`<generation>.traces`), which point reads use.
//!
//! Parquet keeps every field in its own column, which suits scans and SQL but makes reading one row
//! cost a page read, a codec and a dictionary page for each of the 41 columns. The sidecar keeps the
//! same rows, in the segment's row order, as compact binary records (see [`crate::record`]) grouped
//! into blocks of [`BLOCK_ROWS`] rows, each block compressed on its own with zstd and a dictionary
//! built from the segment's records. Fetching a row decompresses one small block.
//!
//! File layout (integers little-endian):
//!
//! ```text
//! "CTSTRC01"                               magic
//! dictionary                               zstd dictionary (may be empty: blocks then use none)
//! block 0 .. block n-1                     zstd frames, back to back
//! footer                                   u32 rows, u32 block_rows, u32 dictionary_len, u32 blocks,
//!                                          then per block: u64 end offset, u32 raw length, u32 crc32c
//!                                          of the compressed bytes
//! u32 footer length, u32 crc32c(footer), "CTSTRC01"
//! ```
//!
//! A block whose CRC does not match, that does not decompress to its raw length, or whose records do
//! not decode is reported as [`StoreError::Corrupt`], never returned.

use crate::error::StoreError;
use crate::record::{decode_whole, put_varint, take_varint};
use cts_model::Trace;
use std::cell::RefCell;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use zstd::zstd_safe::zstd_sys::ZSTD_EndDirective;
use zstd::zstd_safe::{self, CCtx, CDict, CParameter, DCtx, DDict, InBuffer, OutBuffer};

/// Rows per compressed block: a point read decompresses this many records.
pub(crate) const BLOCK_ROWS: usize = 16;
/// zstd level of the blocks.
const ZSTD_LEVEL: i32 = 1;
/// Upper bound on the size of the dictionary.
const DICTIONARY_BYTES: usize = 32 << 10;
/// The dictionary's content (whole records) fills this much; its header and tables take the rest.
const DICTIONARY_CONTENT_BYTES: usize = 30 << 10;
/// At most this many records (spread over the segment) give the dictionary its entropy tables.
const DICTIONARY_SAMPLES: usize = 512;
/// Segments with fewer rows get no dictionary (its tables need enough samples).
const DICTIONARY_MIN_ROWS: usize = 512;
const MAGIC: &[u8; 8] = b"CTSTRC01";
/// u32 footer length, u32 footer crc, magic.
const TRAILER_LEN: usize = 16;
/// u32 rows, u32 block_rows, u32 dictionary_len, u32 blocks.
const FOOTER_HEADER_LEN: usize = 16;
/// u64 end offset, u32 raw length, u32 crc.
const BLOCK_ENTRY_LEN: usize = 16;

pub(crate) fn stored_path(segment_dir: &Path, generation: u64) -> PathBuf {
    segment_dir.join(format!("{generation:020}.traces"))
}

/// Writes the sidecar of the binary `records` of a segment's rows (in row order) at `path` and fsyncs it.
pub(crate) fn write_stored(path: &Path, records: &[&[u8]]) -> Result<(), StoreError> {
    let record = |row: usize| records[row];
    let dictionary = build_dictionary(records.len(), &record);
    let io_error = |e: std::io::Error| StoreError::io(path, e);
    let prepared = (!dictionary.is_empty()).then(|| CDict::create(&dictionary, ZSTD_LEVEL));
    let mut compressor = BlockCompressor::new(prepared.as_ref()).map_err(|e| zstd_error(path, e))?;
    let mut out = Vec::with_capacity(records.iter().map(|record| record.len()).sum::<usize>() / 3);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&dictionary);
    let mut footer = Vec::new();
    let block_count = records.len().div_ceil(BLOCK_ROWS);
    for header in [records.len(), BLOCK_ROWS, dictionary.len(), block_count] {
        footer.extend_from_slice(
            &u32::try_from(header).map_err(|_| StoreError::corrupt(path, "too large"))?.to_le_bytes(),
        );
    }
    let mut raw = Vec::new();
    for block_start in (0..records.len()).step_by(BLOCK_ROWS) {
        raw.clear();
        for row in block_start..(block_start + BLOCK_ROWS).min(records.len()) {
            put_varint(&mut raw, record(row).len() as u64);
            raw.extend_from_slice(record(row));
        }
        let block_start = out.len();
        compressor.compress(&raw, &mut out).map_err(|e| zstd_error(path, e))?;
        footer.extend_from_slice(&(out.len() as u64).to_le_bytes());
        footer.extend_from_slice(&(raw.len() as u32).to_le_bytes());
        footer.extend_from_slice(&crc32c::crc32c(&out[block_start..]).to_le_bytes());
    }
    out.extend_from_slice(&footer);
    out.extend_from_slice(&(footer.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&footer).to_le_bytes());
    out.extend_from_slice(MAGIC);
    let mut file = File::create(path).map_err(io_error)?;
    file.write_all(&out).map_err(io_error)?;
    file.sync_all().map_err(io_error)
}

fn zstd_error(path: &Path, code: zstd_safe::ErrorCode) -> StoreError {
    StoreError::io(path, std::io::Error::other(zstd_safe::get_error_name(code)))
}

/// Compresses the blocks of one sidecar, each as its own zstd frame, with the segment's dictionary
/// prepared once. Each block is streamed in with its size left unknown: zstd then attaches the
/// prepared dictionary's tables instead of copying them for every block (a copy costs more than
/// compressing a block of a few KiB).
struct BlockCompressor<'d> {
    context: CCtx<'d>,
}

impl<'d> BlockCompressor<'d> {
    fn new(dictionary: Option<&'d CDict<'d>>) -> Result<Self, zstd_safe::ErrorCode> {
        let mut context = CCtx::create();
        context.set_parameter(CParameter::CompressionLevel(ZSTD_LEVEL))?;
        context.set_parameter(CParameter::ContentSizeFlag(false))?;
        if let Some(dictionary) = dictionary {
            context.ref_cdict(dictionary)?;
        }
        Ok(BlockCompressor { context })
    }

    /// Appends `raw` compressed as one frame to `out`.
    fn compress(&mut self, raw: &[u8], out: &mut Vec<u8>) -> Result<(), zstd_safe::ErrorCode> {
        let mut input = InBuffer::around(raw);
        let mut step = |input: &mut InBuffer<'_>, directive| {
            out.reserve(zstd_safe::compress_bound(raw.len()));
            let filled = out.len();
            self.context.compress_stream2(&mut OutBuffer::around_pos(out, filled), input, directive)
        };
        while input.pos < raw.len() {
            step(&mut input, ZSTD_EndDirective::ZSTD_e_continue)?;
        }
        while step(&mut InBuffer::around(&[]), ZSTD_EndDirective::ZSTD_e_end)? > 0 {}
        Ok(())
    }
}

/// The segment's dictionary, empty below [`DICTIONARY_MIN_ROWS`] rows or when zstd refuses (the blocks are
/// then compressed without one). Its content is whole records spread over the segment (repeated field
/// names, ids and values are what the blocks match against); its entropy tables are computed from up to
/// [`DICTIONARY_SAMPLES`] records spread over the segment. Picking content instead of training it (a
/// COVER search over the samples) costs a fraction of the time and compresses within ~2%.
fn build_dictionary<'a>(rows: usize, record: &impl Fn(usize) -> &'a [u8]) -> Vec<u8> {
    if rows < DICTIONARY_MIN_ROWS {
        return Vec::new();
    }
    let mut samples = Vec::new();
    let mut sizes = Vec::new();
    for row in (0..rows).step_by(rows.div_ceil(DICTIONARY_SAMPLES)) {
        samples.extend_from_slice(record(row));
        sizes.push(record(row).len());
    }
    let average_len = samples.len() / sizes.len();
    let content_records = (DICTIONARY_CONTENT_BYTES / average_len.max(1)).max(1);
    let mut content = Vec::with_capacity(DICTIONARY_CONTENT_BYTES + average_len);
    for row in (0..rows).step_by(rows.div_ceil(content_records)) {
        if content.len() + record(row).len() > DICTIONARY_CONTENT_BYTES {
            break;
        }
        content.extend_from_slice(record(row));
    }
    finalize_dictionary(&content, &samples, &sizes).unwrap_or_else(|error| {
        tracing::warn!(error, "building a stored-traces dictionary failed; compressing without one");
        Vec::new()
    })
}

/// A zstd dictionary (header, entropy tables for the samples, then `content`) of at most
/// [`DICTIONARY_BYTES`].
fn finalize_dictionary(content: &[u8], samples: &[u8], sizes: &[usize]) -> Result<Vec<u8>, &'static str> {
    use zstd::zstd_safe::zstd_sys::{ZDICT_finalizeDictionary, ZDICT_getErrorName, ZDICT_isError, ZDICT_params_t};
    let mut dictionary = vec![0u8; DICTIONARY_BYTES];
    let parameters = ZDICT_params_t { compressionLevel: ZSTD_LEVEL, notificationLevel: 0, dictID: 0 };
    let sample_count = u32::try_from(sizes.len()).map_err(|_| "too many samples")?;
    // SAFETY: each pointer and length describes a live buffer of exactly that length (`sizes` holds
    // `sample_count` lengths summing to `samples.len()`); zstd writes at most `dictionary.len()` bytes
    // into `dictionary` and keeps no pointer after returning.
    let written = unsafe {
        ZDICT_finalizeDictionary(
            dictionary.as_mut_ptr().cast(),
            dictionary.len(),
            content.as_ptr().cast(),
            content.len(),
            samples.as_ptr().cast(),
            sizes.as_ptr(),
            sample_count,
            parameters,
        )
    };
    // SAFETY: plain functions on an integer; the error name is a static C string.
    if unsafe { ZDICT_isError(written) } != 0 {
        let name = unsafe { std::ffi::CStr::from_ptr(ZDICT_getErrorName(written)) };
        return Err(name.to_str().unwrap_or("zstd error"));
    }
    dictionary.truncate(written);
    Ok(dictionary)
}

/// Where a block lies and how to check it.
#[derive(Debug, Clone, Copy)]
struct BlockEntry {
    start: u64,
    end: u64,
    raw_len: u32,
    crc: u32,
}

thread_local! {
    /// One decompression context per thread, reused across blocks and segments.
    static DECOMPRESSOR: RefCell<(DCtx<'static>, Vec<u8>)> = RefCell::new((DCtx::create(), Vec::new()));
}

/// An open sidecar: its block index and dictionary, loaded at open; blocks are read on demand.
pub(crate) struct StoredTraces {
    path: PathBuf,
    file: File,
    len: u64,
    rows: usize,
    block_rows: usize,
    blocks: Vec<BlockEntry>,
    dictionary: Option<DDict<'static>>,
}

impl std::fmt::Debug for StoredTraces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredTraces").field("path", &self.path).field("rows", &self.rows).finish()
    }
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

impl StoredTraces {
    /// Opens a sidecar and checks its trailer, footer and block index.
    pub(crate) fn open(path: &Path) -> Result<StoredTraces, StoreError> {
        let file = File::open(path).map_err(|e| StoreError::io(path, e))?;
        let len = file.metadata().map_err(|e| StoreError::io(path, e))?.len();
        let corrupt = |reason: &str| StoreError::corrupt(path, reason);
        if len < (MAGIC.len() + FOOTER_HEADER_LEN + TRAILER_LEN) as u64 {
            return Err(corrupt("shorter than an empty stored-traces file"));
        }
        let read = |at: u64, size: usize| -> Result<Vec<u8>, StoreError> {
            let mut buffer = vec![0; size];
            file.read_exact_at(&mut buffer, at).map_err(|e| StoreError::io(path, e))?;
            Ok(buffer)
        };
        let trailer = read(len - TRAILER_LEN as u64, TRAILER_LEN)?;
        if &trailer[8..] != MAGIC || read(0, MAGIC.len())? != MAGIC {
            return Err(corrupt("bad magic"));
        }
        let footer_len = read_u32(&trailer, 0) as u64;
        if footer_len + (MAGIC.len() + TRAILER_LEN) as u64 > len || footer_len < FOOTER_HEADER_LEN as u64 {
            return Err(corrupt("bad footer length"));
        }
        let footer_start = len - TRAILER_LEN as u64 - footer_len;
        let footer = read(footer_start, footer_len as usize)?;
        if crc32c::crc32c(&footer) != read_u32(&trailer, 4) {
            return Err(corrupt("footer checksum mismatch"));
        }
        let [rows, block_rows, dictionary_len, block_count] = [0, 4, 8, 12].map(|at| read_u32(&footer, at) as usize);
        if block_rows == 0
            || block_count != rows.div_ceil(block_rows)
            || footer.len() != FOOTER_HEADER_LEN + block_count * BLOCK_ENTRY_LEN
        {
            return Err(corrupt("inconsistent footer"));
        }
        let mut blocks = Vec::with_capacity(block_count);
        let mut start = (MAGIC.len() + dictionary_len) as u64;
        for entry in footer[FOOTER_HEADER_LEN..].chunks_exact(BLOCK_ENTRY_LEN) {
            let end = u64::from_le_bytes(entry[..8].try_into().expect("8 bytes"));
            if end < start || end > footer_start {
                return Err(corrupt("block offsets out of order"));
            }
            blocks.push(BlockEntry { start, end, raw_len: read_u32(entry, 8), crc: read_u32(entry, 12) });
            start = end;
        }
        let dictionary = (dictionary_len > 0)
            .then(|| read(MAGIC.len() as u64, dictionary_len).map(|bytes| DDict::create(&bytes)))
            .transpose()?;
        Ok(StoredTraces { path: path.to_owned(), file, len, rows, block_rows, blocks, dictionary })
    }

    pub(crate) fn len(&self) -> usize {
        self.rows
    }

    pub(crate) fn file_size(&self) -> u64 {
        self.len
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The traces of `rows` (ascending, distinct, each below [`StoredTraces::len`]): one block read and
    /// decompressed per distinct block.
    pub(crate) fn fetch(&self, rows: &[u32]) -> Result<Vec<Trace>, StoreError> {
        let traces = self.fetch_where(rows, &|_| true)?;
        Ok(traces.into_iter().flatten().collect())
    }

    /// The traces of `rows` (as [`StoredTraces::fetch`]), except that the records of a block whose
    /// decompressed bytes `block_may_match` rejects are not decoded: `None` for each of its rows.
    pub(crate) fn fetch_where(
        &self,
        rows: &[u32],
        block_may_match: &dyn Fn(&[u8]) -> bool,
    ) -> Result<Vec<Option<Trace>>, StoreError> {
        let mut traces = Vec::with_capacity(rows.len());
        let mut compressed = Vec::new();
        DECOMPRESSOR.with_borrow_mut(|(context, raw)| {
            let mut index = 0;
            while index < rows.len() {
                let block = rows[index] as usize / self.block_rows;
                let entry = *self.blocks.get(block).ok_or_else(|| self.corrupt(block, "row out of range"))?;
                compressed.resize((entry.end - entry.start) as usize, 0);
                self.file.read_exact_at(&mut compressed, entry.start).map_err(|e| StoreError::io(&self.path, e))?;
                if crc32c::crc32c(&compressed) != entry.crc {
                    return Err(self.corrupt(block, "checksum mismatch"));
                }
                raw.clear();
                raw.reserve(entry.raw_len as usize);
                let decompressed = match &self.dictionary {
                    Some(dictionary) => context.decompress_using_ddict(raw, &compressed, dictionary),
                    None => context.decompress(raw, &compressed),
                };
                if decompressed.is_err() || raw.len() != entry.raw_len as usize {
                    return Err(self.corrupt(block, "does not decompress"));
                }
                let in_block = rows[index..].iter().take_while(|&&row| row as usize / self.block_rows == block).count();
                if !block_may_match(raw) {
                    traces.extend(std::iter::repeat_n(None, in_block));
                    index += in_block;
                    continue;
                }
                let mut records: &[u8] = raw;
                let mut row_in_block = 0;
                for &row in &rows[index..index + in_block] {
                    let wanted = row as usize % self.block_rows;
                    let trace = loop {
                        let len = take_varint(&mut records).ok_or_else(|| self.corrupt(block, "truncated"))? as usize;
                        if records.len() < len {
                            return Err(self.corrupt(block, "truncated record"));
                        }
                        let (record, rest) = records.split_at(len);
                        records = rest;
                        row_in_block += 1;
                        if row_in_block - 1 == wanted {
                            break decode_whole(record).map_err(|reason| self.corrupt(block, &reason))?;
                        }
                    };
                    traces.push(Some(trace));
                }
                index += in_block;
            }
            Ok(traces)
        })
    }

    /// Every row, in row order (verification reads whole files).
    pub(crate) fn fetch_all(&self) -> Result<Vec<Trace>, StoreError> {
        let rows = u32::try_from(self.rows).map_err(|_| StoreError::corrupt(&self.path, "too many rows"))?;
        self.fetch(&(0..rows).collect::<Vec<_>>())
    }

    fn corrupt(&self, block: usize, reason: &str) -> StoreError {
        StoreError::corrupt(&self.path, format!("stored-traces block {block}: {reason}"))
    }
}

#[cfg(test)]
mod tests;
