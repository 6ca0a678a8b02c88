//! Sealed segments: the traces of one memtable generation, rows sorted by (time, trace_id), in two
//! immutable files: a Parquet file (every field a column, for scans, SQL and interoperability; the
//! in-memory indexes are built from its filter columns at open) and its stored-traces sidecar (see
//! [`crate::stored`]), which point reads (result pages, `get`) use.
//!
//! Point reads never touch the Parquet file and free-text scans read only its text columns, page by
//! page (see [`crate::text_scan`]), so it is laid out for size: one row group per segment,
//! default-sized pages, every column zstd-compressed.

use crate::columns::{blank_trace, Access, Storage, COLUMNS, TIME_COLUMN, TRACE_ID_COLUMN};
use crate::error::StoreError;
use crate::ids::{IdHasher, IdKey};
use crate::memtable::{Candidate, Memtable};
use crate::plan::{block_may_hold, matches_text, FieldIndexes, FilterField, Plan};
use crate::stored::{stored_path, StoredTraces};
use crate::text_scan::TextColumns;
use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{ArrayRef, BooleanArray, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use cts_model::Trace;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::{KeyValue, PageIndexPolicy, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::reader::{ChunkReader, Length};
use parquet::schema::types::ColumnPath;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, OnceLock};

/// Rows per row group (a default-sized memtable makes one row group).
pub(crate) const ROW_GROUP_ROWS: usize = 65_536;
/// Rows per record batch while writing and while reading the index columns.
pub(crate) const BATCH_ROWS: usize = 8192;
/// zstd level of segment pages. Sealing shares the CPU with ingest, so the level stays cheap.
const ZSTD_LEVEL: i32 = 1;
/// Dictionaries larger than this fall back to plain encoding.
const DICTIONARY_PAGE_LIMIT: usize = 64 << 10;
/// The segment format version written to the `cts.format_version` key.
pub(crate) const FORMAT_VERSION: &str = "2";

/// Key-value metadata keys of a segment file.
pub(crate) mod meta_keys {
    pub const FORMAT_VERSION: &str = "cts.format_version";
    pub const GENERATION: &str = "cts.generation";
    pub const WAL_GENERATION: &str = "cts.wal_generation";
    pub const TRACE_COUNT: &str = "cts.trace_count";
    pub const MIN_TIME: &str = "cts.min_time";
    pub const MAX_TIME: &str = "cts.max_time";
    pub const SORT_ORDER: &str = "cts.sort_order";
}

/// The Arrow schema of a segment.
pub(crate) fn schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let fields: Vec<Field> = COLUMNS
            .iter()
            .map(|column| match column.access {
                Access::Int64 { .. } => Field::new(column.name, DataType::Int64, false),
                Access::Bool { .. } => Field::new(column.name, DataType::Boolean, false),
                Access::Text { nullable, .. } => Field::new(column.name, DataType::Utf8, nullable),
                Access::TextList { .. } => {
                    Field::new_list(column.name, Field::new_list_field(DataType::Utf8, true), true)
                }
            })
            .collect();
        Arc::new(Schema::new(fields))
    });
    SCHEMA.clone()
}

pub(crate) fn segment_path(segment_dir: &Path, generation: u64) -> PathBuf {
    segment_dir.join(format!("{generation:020}.parquet"))
}

/// Writes `traces` (already sorted by (time, trace_id)) as a segment file at `path` and fsyncs it.
pub(crate) fn write_segment(path: &Path, traces: &[&Trace], generation: u64) -> Result<(), StoreError> {
    let (min_time, max_time) = match (traces.first(), traces.last()) {
        (Some(first), Some(last)) => (first.time, last.time),
        _ => return Err(StoreError::corrupt(path, "a segment needs at least one trace")),
    };
    let metadata = [
        (meta_keys::FORMAT_VERSION, FORMAT_VERSION.to_owned()),
        (meta_keys::GENERATION, generation.to_string()),
        (meta_keys::WAL_GENERATION, generation.to_string()),
        (meta_keys::TRACE_COUNT, traces.len().to_string()),
        (meta_keys::MIN_TIME, min_time.to_string()),
        (meta_keys::MAX_TIME, max_time.to_string()),
        (meta_keys::SORT_ORDER, "time ASC, trace_id ASC".to_owned()),
    ];
    let file = File::create(path).map_err(|e| StoreError::io(path, e))?;
    let file = write_rows(file, &metadata, traces).map_err(|e| StoreError::parquet(path, e))?;
    file.sync_all().map_err(|e| StoreError::io(path, e))
}

/// `traces` (sorted by (time, trace_id)) as a Parquet file of the segment schema, written as segments are (zstd
/// pages): what trackers deliver when they ask for Parquet trace files.
pub fn traces_to_parquet(traces: &[&Trace]) -> Vec<u8> {
    let metadata = [
        (meta_keys::FORMAT_VERSION, FORMAT_VERSION.to_owned()),
        (meta_keys::TRACE_COUNT, traces.len().to_string()),
        (meta_keys::SORT_ORDER, "time ASC, trace_id ASC".to_owned()),
    ];
    write_rows(Vec::new(), &metadata, traces).expect("writing Parquet to memory")
}

/// The traces of a Parquet file of the segment schema (a Parquet trace file, or a segment), in row order;
/// `origin` names it in errors.
pub fn traces_from_parquet(bytes: Bytes, origin: &Path) -> Result<Vec<Trace>, StoreError> {
    guard_parquet(origin, || {
        let metadata = load_metadata(&bytes, origin, PageIndexPolicy::Skip)?;
        decode_rows(bytes, metadata, origin)
    })
}

/// Runs a read of the Parquet file at `path` with the parquet crate, which panics on some malformed files
/// (assertions on inconsistent column metadata, arithmetic overflow on corrupt encodings, found by the
/// `segment_read` and `import_file` fuzz targets): such a panic is the file's corruption, an error.
pub(crate) fn guard_parquet<T>(path: &Path, read: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(read))
        .unwrap_or_else(|_| Err(StoreError::corrupt(path, "the Parquet reader failed on the file")))
}

/// Writes `traces` with the segment writer settings and key-value `metadata` to `out`.
fn write_rows<W: std::io::Write + Send>(
    out: W,
    metadata: &[(&str, String)],
    traces: &[&Trace],
) -> Result<W, parquet::errors::ParquetError> {
    let sorting = [TIME_COLUMN, TRACE_ID_COLUMN].map(|index| SortingColumn {
        column_idx: index as i32,
        descending: false,
        nulls_first: false,
    });
    let mut properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL).expect("a valid zstd level")))
        .set_dictionary_enabled(false)
        .set_dictionary_page_size_limit(DICTIONARY_PAGE_LIMIT)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_sorting_columns(Some(sorting.to_vec()))
        .set_key_value_metadata(Some(
            metadata.iter().map(|(key, value)| KeyValue::new((*key).to_owned(), value.clone())).collect(),
        ));
    for column in COLUMNS {
        let path = ColumnPath::from(column.name);
        properties = match column.access {
            Access::Int64 { .. } => properties.set_column_encoding(path, Encoding::DELTA_BINARY_PACKED),
            Access::Text { storage: Storage::Dictionary, .. } => properties.set_column_dictionary_enabled(path, true),
            // Min/max of free-form or random values prune nothing: only the sort key keeps them.
            Access::Text { storage: Storage::Plain, .. } if column.name != COLUMNS[TRACE_ID_COLUMN].name => {
                properties.set_column_statistics_enabled(path, EnabledStatistics::None)
            }
            Access::TextList { .. } => properties.set_column_statistics_enabled(path, EnabledStatistics::None),
            Access::Bool { .. } | Access::Text { storage: Storage::Plain, .. } => properties,
        };
    }
    let mut writer = ArrowWriter::try_new(out, schema(), Some(properties.build()))?;
    let mut batches = BatchBuilder::new();
    for chunk in traces.chunks(BATCH_ROWS) {
        writer.write(&batches.build(chunk))?;
    }
    writer.into_inner()
}

/// Builds the record batches of a segment. Rows are appended one trace at a time to every column's
/// builder: each trace (and the strings it points to) is read once, while it is in cache, instead of
/// once per column. Text builders start with the previous batch's byte count, so they rarely regrow.
pub(crate) struct BatchBuilder {
    /// Bytes of each text column in the previous batch (0 for the other columns).
    text_bytes: Vec<usize>,
}

/// One column's values while a batch is built.
enum ColumnBuilder {
    Int64(Vec<i64>),
    Bool(Vec<bool>),
    Text(StringBuilder),
    TextList(ListBuilder<StringBuilder>),
}

impl BatchBuilder {
    pub(crate) fn new() -> BatchBuilder {
        BatchBuilder { text_bytes: vec![0; COLUMNS.len()] }
    }

    pub(crate) fn build(&mut self, traces: &[&Trace]) -> RecordBatch {
        let rows = traces.len();
        let mut builders: Vec<ColumnBuilder> = COLUMNS
            .iter()
            .zip(&self.text_bytes)
            .map(|(column, &bytes)| match column.access {
                Access::Int64 { .. } => ColumnBuilder::Int64(Vec::with_capacity(rows)),
                Access::Bool { .. } => ColumnBuilder::Bool(Vec::with_capacity(rows)),
                Access::Text { .. } => ColumnBuilder::Text(StringBuilder::with_capacity(rows, bytes)),
                Access::TextList { .. } => ColumnBuilder::TextList(ListBuilder::new(StringBuilder::new())),
            })
            .collect();
        for trace in traces {
            for (column, builder) in COLUMNS.iter().zip(&mut builders) {
                match (&column.access, builder) {
                    (Access::Int64 { get, .. }, ColumnBuilder::Int64(values)) => values.push(get(trace)),
                    (Access::Bool { get, .. }, ColumnBuilder::Bool(values)) => values.push(get(trace)),
                    (Access::Text { get, .. }, ColumnBuilder::Text(values)) => values.append_option(get(trace)),
                    (Access::TextList { get, .. }, ColumnBuilder::TextList(lists)) => match get(trace) {
                        Some(items) => {
                            items.iter().for_each(|item| lists.values().append_value(item));
                            lists.append(true);
                        }
                        None => lists.append(false),
                    },
                    _ => unreachable!("each builder is made from its column's access"),
                }
            }
        }
        let arrays: Vec<ArrayRef> = builders
            .into_iter()
            .zip(&mut self.text_bytes)
            .map(|(builder, text_bytes)| -> ArrayRef {
                match builder {
                    ColumnBuilder::Int64(values) => Arc::new(Int64Array::from(values)),
                    ColumnBuilder::Bool(values) => Arc::new(BooleanArray::from(values)),
                    ColumnBuilder::Text(mut values) => {
                        *text_bytes = values.values_slice().len();
                        Arc::new(values.finish())
                    }
                    ColumnBuilder::TextList(mut lists) => Arc::new(lists.finish()),
                }
            })
            .collect();
        RecordBatch::try_new(schema(), arrays).expect("arrays built from the segment schema")
    }
}

/// A segment file shared by concurrent readers; reads are positional (`pread`), so readers never
/// disturb each other's file offset. The open file stays readable after retention unlinks it. A parquet
/// `ChunkReader`: SQL reads a snapshot's segments through it too.
#[derive(Debug, Clone)]
pub struct SegmentFile {
    file: Arc<File>,
    len: u64,
}

impl SegmentFile {
    /// `file` (its length read once) for positional reads.
    pub fn new(file: File) -> std::io::Result<SegmentFile> {
        let len = file.metadata()?.len();
        Ok(SegmentFile { file: Arc::new(file), len })
    }
}

impl Length for SegmentFile {
    fn len(&self) -> u64 {
        self.len
    }
}

impl ChunkReader for SegmentFile {
    type T = PositionedReader;

    fn get_read(&self, start: u64) -> parquet::errors::Result<PositionedReader> {
        Ok(PositionedReader { file: self.file.clone(), position: start })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let mut buffer = vec![0; length];
        self.file.read_exact_at(&mut buffer, start)?;
        Ok(Bytes::from(buffer))
    }
}

/// A reader of a [`SegmentFile`] from a position onward.
pub struct PositionedReader {
    file: Arc<File>,
    position: u64,
}

impl Read for PositionedReader {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.file.read_at(buffer, self.position)?;
        self.position += read as u64;
        Ok(read)
    }
}

/// An open segment: its stored-traces sidecar and the in-memory indexes of its rows.
pub(crate) struct Segment {
    pub generation: u64,
    /// The Parquet file.
    pub path: PathBuf,
    parquet_bytes: u64,
    stored: StoredTraces,
    /// `time` of each row (ascending).
    times: Vec<i64>,
    /// The trace ids of all rows, concatenated; `id_ends[row]` is where row's id ends.
    id_text: String,
    id_ends: Vec<u32>,
    indexes: FieldIndexes,
    /// The Parquet file opened for free-text scans, at the first one.
    text_columns: OnceLock<TextColumns>,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment").field("path", &self.path).field("rows", &self.len()).finish()
    }
}

/// Opens a segment's Parquet file for reading, checking its schema.
fn open_parquet(path: &Path) -> Result<(SegmentFile, ArrowReaderMetadata), StoreError> {
    let file = File::open(path).and_then(SegmentFile::new).map_err(|e| StoreError::io(path, e))?;
    let metadata = load_metadata(&file, path, PageIndexPolicy::Skip)?;
    Ok((file, metadata))
}

/// Reads a Parquet file's metadata (with its page index or not), checking its schema is the segment schema.
pub(crate) fn load_metadata(
    reader: &impl ChunkReader,
    path: &Path,
    page_index: PageIndexPolicy,
) -> Result<ArrowReaderMetadata, StoreError> {
    let options = ArrowReaderOptions::new().with_page_index_policy(page_index);
    let metadata = ArrowReaderMetadata::load(reader, options).map_err(|e| StoreError::parquet(path, e))?;
    if metadata.schema().fields() != schema().fields() {
        return Err(StoreError::corrupt(path, "the file's schema is not the segment schema"));
    }
    Ok(metadata)
}

/// Every row of a segment's Parquet file, in row order (rebuilding a sidecar, tests).
pub(crate) fn read_parquet_traces(path: &Path) -> Result<Vec<Trace>, StoreError> {
    guard_parquet(path, || {
        let (file, metadata) = open_parquet(path)?;
        decode_rows(file, metadata, path)
    })
}

/// Every row of a Parquet file of the segment schema as traces.
fn decode_rows(
    reader: impl ChunkReader + 'static,
    metadata: ArrowReaderMetadata,
    path: &Path,
) -> Result<Vec<Trace>, StoreError> {
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(reader, metadata)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| StoreError::parquet(path, e))?;
    let mut traces = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| StoreError::parquet(path, e.into()))?;
        decode_batch(&batch, &mut traces).map_err(|reason| StoreError::corrupt(path, reason))?;
    }
    Ok(traces)
}

impl Segment {
    fn empty(generation: u64, path: &Path, parquet_bytes: u64, stored: StoredTraces) -> Segment {
        Segment {
            generation,
            path: path.to_owned(),
            parquet_bytes,
            stored,
            times: Vec::new(),
            id_text: String::new(),
            id_ends: Vec::new(),
            indexes: FieldIndexes::default(),
            text_columns: OnceLock::new(),
        }
    }

    /// Opens a segment (its Parquet file at `path` and the sidecar next to it), checks them and builds
    /// its indexes from the Parquet filter columns. Also returns the identity key of each row, for the
    /// store's global id map.
    pub(crate) fn open(path: &Path, generation: u64, hasher: &IdHasher) -> Result<(Segment, Vec<IdKey>), StoreError> {
        let (file, metadata) = guard_parquet(path, || open_parquet(path))?;
        let stored = StoredTraces::open(&stored_path(path.parent().unwrap_or(Path::new(".")), generation))?;
        let mut segment = Segment::empty(generation, path, file.len, stored);
        let keys = guard_parquet(path, || segment.load_indexes(file, metadata, hasher))?;
        segment.check_rows()?;
        Ok((segment, keys))
    }

    /// The segment just written from `memtable`, whose rows in segment order are `rows` (see
    /// [`Memtable::sorted_rows`]): its indexes are the memtable's, renumbered, instead of being read
    /// back or rebuilt. Also returns the identity key of each row.
    pub(crate) fn from_memtable(
        path: &Path,
        memtable: &Memtable,
        rows: &[u32],
    ) -> Result<(Segment, Vec<IdKey>), StoreError> {
        let generation = memtable.generation;
        let parquet_bytes = std::fs::metadata(path).map_err(|e| StoreError::io(path, e))?.len();
        let stored = StoredTraces::open(&stored_path(path.parent().unwrap_or(Path::new(".")), generation))?;
        let mut segment = Segment::empty(generation, path, parquet_bytes, stored);
        let mut segment_row = vec![0; rows.len()];
        let mut keys = Vec::with_capacity(rows.len());
        for (segment_index, &row) in rows.iter().enumerate() {
            let trace = memtable.trace(row);
            segment.push_key(trace.time, &trace.trace_id)?;
            keys.push(memtable.key(row));
            segment_row[row as usize] = segment_index as u32;
        }
        segment.indexes = memtable.indexes().renumbered(&segment_row);
        segment.check_rows()?;
        Ok((segment, keys))
    }

    fn push_key(&mut self, time: i64, trace_id: &str) -> Result<(), StoreError> {
        self.times.push(time);
        self.id_text.push_str(trace_id);
        let end = u32::try_from(self.id_text.len())
            .map_err(|_| StoreError::corrupt(&self.path, "the trace ids of a segment exceed 4 GiB"))?;
        self.id_ends.push(end);
        Ok(())
    }

    /// The sidecar must hold the segment's rows, which must be in time order.
    fn check_rows(&mut self) -> Result<(), StoreError> {
        if self.stored.len() != self.times.len() {
            let reason = format!("{} rows in the Parquet file, {} in the sidecar", self.times.len(), self.stored.len());
            return Err(StoreError::corrupt(self.stored.path(), reason));
        }
        if self.times.windows(2).any(|pair| pair[0] > pair[1]) {
            return Err(StoreError::corrupt(&self.path, "rows are not sorted by time"));
        }
        self.id_text.shrink_to_fit();
        Ok(())
    }

    fn load_indexes(
        &mut self,
        file: SegmentFile,
        metadata: ArrowReaderMetadata,
        hasher: &IdHasher,
    ) -> Result<Vec<IdKey>, StoreError> {
        let field_columns = FilterField::ALL.map(|field| column_index(field.column()));
        let projection = ProjectionMask::roots(
            metadata.parquet_schema(),
            [TIME_COLUMN, TRACE_ID_COLUMN].into_iter().chain(field_columns),
        );
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, metadata)
            .with_projection(projection)
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(|e| StoreError::parquet(&self.path, e))?;
        let project_column = column_index(FilterField::Project.column());
        let mut keys = Vec::new();
        for batch in reader {
            let batch = batch.map_err(|e| StoreError::parquet(&self.path, e.into()))?;
            let named = |index: usize| batch.column_by_name(COLUMNS[index].name).expect("projected column");
            let times = named(TIME_COLUMN).as_primitive::<Int64Type>();
            let trace_ids = named(TRACE_ID_COLUMN).as_string::<i32>();
            let projects = named(project_column).as_string::<i32>();
            let first_row = self.times.len();
            for row in 0..batch.num_rows() {
                self.push_key(times.value(row), trace_ids.value(row))?;
                keys.push(hasher.key(projects.value(row), trace_ids.value(row)));
            }
            for (field, &index) in FilterField::ALL.iter().zip(&field_columns) {
                let values = named(index).as_string::<i32>();
                let field_index = self.indexes.field_mut(*field);
                for (offset, value) in values.iter().enumerate() {
                    if let Some(value) = value.and_then(|v| field.value_from_column(v)) {
                        field_index.add(value, (first_row + offset) as u32);
                    }
                }
            }
        }
        self.indexes.shrink_to_fit();
        Ok(keys)
    }

    pub(crate) fn len(&self) -> usize {
        self.times.len()
    }

    pub(crate) fn time_range(&self) -> (i64, i64) {
        (self.times.first().copied().unwrap_or(i64::MAX), self.times.last().copied().unwrap_or(i64::MIN))
    }

    /// Bytes of the Parquet file and of the sidecar.
    pub(crate) fn file_sizes(&self) -> (u64, u64) {
        (self.parquet_bytes, self.stored.file_size())
    }

    /// The segment's files: the Parquet file first (retention deletes it first: a sidecar left alone
    /// by a crash is deleted at open).
    pub(crate) fn paths(&self) -> [&Path; 2] {
        [&self.path, self.stored.path()]
    }

    pub(crate) fn indexes(&self) -> &FieldIndexes {
        &self.indexes
    }

    /// The first row whose time is `time_ms` or later (rows are in time order).
    pub(crate) fn first_row_at(&self, time_ms: i64) -> usize {
        self.times.partition_point(|&time| time < time_ms)
    }

    pub(crate) fn trace_id(&self, row: u32) -> &str {
        let row = row as usize;
        let start = if row == 0 { 0 } else { self.id_ends[row - 1] as usize };
        &self.id_text[start..self.id_ends[row] as usize]
    }

    /// The time of a row.
    pub(crate) fn time(&self, row: u32) -> i64 {
        self.times[row as usize]
    }

    /// The rows that satisfy the plan, newest first: [`Segment::indexed_rows`], and when the plan has text
    /// terms, those whose texts hold them (see [`TextMatches`]).
    pub(crate) fn matching_rows<'s>(
        &'s self,
        plan: &Plan<'_>,
    ) -> Box<dyn Iterator<Item = Result<u32, StoreError>> + 's> {
        let rows = self.indexed_rows(plan);
        if plan.text.is_empty() {
            return Box::new(rows.map(Ok));
        }
        Box::new(TextMatches {
            segment: self,
            terms: plan.text.clone(),
            rows,
            chunk_rows: TEXT_FIRST_CHUNK_ROWS,
            ready: Vec::new(),
            failed: false,
        })
    }

    /// The rows in the plan's key window that satisfy its conditions, newest first: the postings of
    /// the conditions are intersected, smallest first, within the row range of the window (rows are
    /// in key order). A condition whose posting holds every row of the segment is true of each row
    /// and is skipped.
    fn indexed_rows<'s>(&'s self, plan: &Plan<'_>) -> Box<dyn Iterator<Item = u32> + 's> {
        let first = self.times.partition_point(|&time| time < plan.from_ms);
        let upper = (plan.upper.time, plan.upper.trace_id.as_str());
        let end = partition_rows(self.len(), |row| (self.times[row as usize], self.trace_id(row)) < upper);
        if first >= end {
            return Box::new(std::iter::empty());
        }
        let mut postings = self.indexes.postings(plan);
        postings.retain(|rows| rows.len() < self.len());
        if postings.is_empty() {
            return Box::new((first as u32..end as u32).rev());
        }
        let smallest = postings.remove(0);
        let from = smallest.partition_point(|&row| (row as usize) < first);
        let to = smallest.partition_point(|&row| (row as usize) < end);
        Box::new(
            (from..to)
                .rev()
                .map(move |index| smallest[index])
                .filter(move |row| postings.iter().all(|rows| rows.binary_search(row).is_ok())),
        )
    }

    /// Appends up to `plan.limit` newest matching candidates ([`Segment::matching_rows`]).
    pub(crate) fn candidates<'a>(
        &'a self,
        plan: &Plan<'_>,
        part: usize,
        out: &mut Vec<Candidate<'a>>,
    ) -> Result<(), StoreError> {
        for row in self.matching_rows(plan).take(plan.limit) {
            let row = row?;
            out.push(Candidate { time: self.time(row), trace_id: self.trace_id(row), part, row });
        }
        Ok(())
    }

    /// The traces of `rows` (ascending, distinct), from the sidecar, each checked to be the row the Parquet
    /// file indexes (same time and trace id): a sidecar that disagrees with its Parquet file is corrupt, or a
    /// point read and a listing would disagree (found by the `segment_read` fuzz target).
    pub(crate) fn fetch(&self, rows: &[u32]) -> Result<Vec<Trace>, StoreError> {
        Ok(self.fetch_where(rows, &|_| true)?.into_iter().flatten().collect())
    }

    /// [`Segment::fetch`], with `None` for the rows of blocks `block_may_match` rejects (undecoded).
    fn fetch_where(
        &self,
        rows: &[u32],
        block_may_match: &dyn Fn(&[u8]) -> bool,
    ) -> Result<Vec<Option<Trace>>, StoreError> {
        let traces = self.stored.fetch_where(rows, block_may_match)?;
        let indexed =
            |row: u32, trace: &Trace| trace.time == self.times[row as usize] && trace.trace_id == self.trace_id(row);
        let disagreeing = rows.iter().zip(&traces).find_map(|(&row, trace)| match trace {
            Some(trace) if !indexed(row, trace) => Some(row),
            _ => None,
        });
        match disagreeing {
            Some(row) => {
                Err(StoreError::corrupt(self.stored.path(), format!("row {row} is not the Parquet file's row {row}")))
            }
            None => Ok(traces),
        }
    }
}

/// Candidate rows tested for text terms at once, first: a common term fills a page from few rows.
const TEXT_FIRST_CHUNK_ROWS: usize = 256;
/// The fewest rows of a dense chunk: about a Parquet page of the `response` column.
const TEXT_DENSE_CHUNK_ROWS: usize = 4096;
/// Each further chunk doubles, up to a row group: a Parquet page (thousands of rows) holding the rows of two
/// chunks is decompressed for each.
const TEXT_MAX_CHUNK_ROWS: usize = ROW_GROUP_ROWS;
/// Candidate rows spread over at most this many times their number of rows are dense: their texts are read
/// from the Parquet text columns, whose pages hold little else. Sparser ones are read from the sidecar,
/// a block of [`crate::stored::BLOCK_ROWS`] rows each.
const DENSE_SPAN_RATIO: usize = 16;

/// The rows of `rows` (newest first) whose texts hold every text term, newest first, tested a chunk of
/// rows at a time.
struct TextMatches<'s, I> {
    segment: &'s Segment,
    terms: Vec<String>,
    rows: I,
    /// Rows in the next chunk.
    chunk_rows: usize,
    /// Matching rows of the chunk read last, ascending (the next is popped from the end).
    ready: Vec<u32>,
    failed: bool,
}

impl<I: Iterator<Item = u32>> Iterator for TextMatches<'_, I> {
    type Item = Result<u32, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(row) = self.ready.pop() {
                return Some(Ok(row));
            }
            if self.failed {
                return None;
            }
            let mut chunk: Vec<u32> = self.rows.by_ref().take(self.chunk_rows).collect();
            let (Some(&newest), Some(&oldest)) = (chunk.first(), chunk.last()) else { return None };
            // Dense rows are read from the Parquet text columns, sparse ones from the sidecar.
            let dense = ((newest - oldest) as usize) < chunk.len() * DENSE_SPAN_RATIO;
            if dense && chunk.len() < TEXT_DENSE_CHUNK_ROWS {
                chunk.extend(self.rows.by_ref().take(TEXT_DENSE_CHUNK_ROWS - chunk.len()));
                self.chunk_rows = TEXT_DENSE_CHUNK_ROWS;
            }
            self.chunk_rows = (self.chunk_rows * 2).min(TEXT_MAX_CHUNK_ROWS);
            chunk.reverse();
            let holding = match dense {
                true => self.segment.text_columns().and_then(|columns| columns.rows_holding(&chunk, &self.terms)),
                false => self.segment.sidecar_rows_holding(&chunk, &self.terms),
            };
            match holding {
                Ok(rows) => self.ready = rows,
                Err(error) => {
                    self.failed = true;
                    return Some(Err(error));
                }
            }
        }
    }
}

impl Segment {
    /// Of `rows` (ascending, distinct), those whose texts hold every term (lowercase), ascending, from the
    /// sidecar: only the blocks whose bytes may hold every term are decoded.
    fn sidecar_rows_holding(&self, rows: &[u32], terms: &[String]) -> Result<Vec<u32>, StoreError> {
        let traces = self.fetch_where(rows, &|block| block_may_hold(terms, block))?;
        Ok(rows
            .iter()
            .zip(traces)
            .filter(|(_, trace)| trace.as_ref().is_some_and(|trace| matches_text(terms, trace)))
            .map(|(&row, _)| row)
            .collect())
    }

    fn text_columns(&self) -> Result<&TextColumns, StoreError> {
        if let Some(columns) = self.text_columns.get() {
            return Ok(columns);
        }
        let columns = TextColumns::open(&self.path)?;
        Ok(self.text_columns.get_or_init(|| columns))
    }
}

pub(crate) fn column_index(name: &str) -> usize {
    COLUMNS.iter().position(|column| column.name == name).expect("a segment column")
}

/// The first row in `0..len` for which `below` is false (`below` must be true then false).
fn partition_rows(len: usize, below: impl Fn(u32) -> bool) -> usize {
    let (mut low, mut high) = (0, len);
    while low < high {
        let middle = low + (high - low) / 2;
        if below(middle as u32) {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    low
}

/// Decodes the rows of a batch read with the full segment schema.
fn decode_batch(batch: &RecordBatch, out: &mut Vec<Trace>) -> Result<(), String> {
    let start = out.len();
    out.extend((0..batch.num_rows()).map(|_| blank_trace()));
    let traces = &mut out[start..];
    for (column, array) in COLUMNS.iter().zip(batch.columns()) {
        match column.access {
            Access::Int64 { set, .. } => {
                let values = array.as_primitive::<Int64Type>();
                traces.iter_mut().zip(values.values()).for_each(|(trace, &value)| set(trace, value));
            }
            Access::Bool { set, .. } => {
                let values = array.as_boolean();
                traces.iter_mut().zip(values.values()).for_each(|(trace, value)| set(trace, value));
            }
            Access::Text { set, .. } => {
                for (trace, value) in traces.iter_mut().zip(array.as_string::<i32>()) {
                    if let Some(value) = value {
                        set(trace, value).map_err(|reason| format!("column {}: {reason}", column.name))?;
                    }
                }
            }
            Access::TextList { set, .. } => {
                for (trace, list) in traces.iter_mut().zip(array.as_list::<i32>().iter()) {
                    if let Some(list) = list {
                        set(
                            trace,
                            list.as_string::<i32>().iter().map(|item| item.unwrap_or_default().to_owned()).collect(),
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
