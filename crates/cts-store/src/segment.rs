//! Sealed segments: immutable Parquet files of one memtable generation, rows sorted by
//! (time, trace_id), with in-memory indexes built when the segment is opened.
//!
//! Reading a few rows decompresses only the pages holding them: data pages hold at most
//! [`PAGE_ROWS`] rows, the offset index locates them, and the reader's metadata (footer and page
//! index) is parsed once at open and kept.

use crate::columns::{blank_trace, Access, Storage, COLUMNS, TIME_COLUMN, TRACE_ID_COLUMN};
use crate::error::StoreError;
use crate::ids::{IdHasher, IdKey};
use crate::memtable::Candidate;
use crate::plan::{FieldIndexes, FilterField, Plan};
use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use cts_model::Trace;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection, RowSelectionPolicy,
};
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
use std::sync::{Arc, LazyLock};

/// Rows per data page: small pages keep the cost of fetching one row low.
pub(crate) const PAGE_ROWS: usize = 128;
/// Rows per row group: a fetch opens only the row groups holding its rows, so it never walks the
/// page list of a whole segment.
pub(crate) const ROW_GROUP_ROWS: usize = 8192;
/// Rows per record batch while writing and while reading the index columns.
const BATCH_ROWS: usize = 8192;
/// zstd level of segment pages (sealing runs off the ingest path, so a good ratio is affordable).
const ZSTD_LEVEL: i32 = 6;
/// Dictionaries larger than this fall back to plain encoding.
const DICTIONARY_PAGE_LIMIT: usize = 64 << 10;
/// The segment format version written to the `cts.format_version` key.
pub(crate) const FORMAT_VERSION: &str = "1";

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
    let sorting = [TIME_COLUMN, TRACE_ID_COLUMN].map(|index| SortingColumn {
        column_idx: index as i32,
        descending: false,
        nulls_first: false,
    });
    let mut properties = WriterProperties::builder()
        .set_compression(Compression::UNCOMPRESSED)
        .set_dictionary_enabled(false)
        .set_dictionary_page_size_limit(DICTIONARY_PAGE_LIMIT)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_data_page_row_count_limit(PAGE_ROWS)
        .set_write_batch_size(PAGE_ROWS)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_sorting_columns(Some(sorting.to_vec()))
        .set_key_value_metadata(Some(metadata.into_iter().map(|(k, v)| KeyValue::new(k.to_owned(), v)).collect()));
    // Only the long free-form columns are compressed: every compressed column costs each read a codec.
    let zstd = Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL).expect("a valid zstd level"));
    for column in COLUMNS {
        let path = ColumnPath::from(column.name);
        properties = match column.access {
            Access::Int64 { .. } => properties.set_column_encoding(path, Encoding::DELTA_BINARY_PACKED),
            Access::Bool { .. } => properties,
            Access::Text { storage: Storage::Dictionary, .. } => properties.set_column_dictionary_enabled(path, true),
            Access::Text { storage: Storage::Zstd, .. } => properties.set_column_compression(path, zstd),
            Access::Text { storage: Storage::Plain, .. } | Access::TextList { .. } => properties,
        };
    }
    let file = File::create(path).map_err(|e| StoreError::io(path, e))?;
    let mut writer =
        ArrowWriter::try_new(file, schema(), Some(properties.build())).map_err(|e| StoreError::parquet(path, e))?;
    for chunk in traces.chunks(BATCH_ROWS) {
        writer.write(&to_record_batch(chunk)).map_err(|e| StoreError::parquet(path, e))?;
    }
    let file = writer.into_inner().map_err(|e| StoreError::parquet(path, e))?;
    file.sync_all().map_err(|e| StoreError::io(path, e))
}

fn to_record_batch(traces: &[&Trace]) -> RecordBatch {
    let arrays: Vec<ArrayRef> = COLUMNS
        .iter()
        .map(|column| -> ArrayRef {
            match column.access {
                Access::Int64 { get, .. } => Arc::new(Int64Array::from_iter_values(traces.iter().map(|t| get(t)))),
                Access::Bool { get, .. } => Arc::new(BooleanArray::from_iter(traces.iter().map(|t| Some(get(t))))),
                Access::Text { get, .. } => Arc::new(StringArray::from_iter(traces.iter().map(|t| get(t)))),
                Access::TextList { get, .. } => {
                    let mut builder = ListBuilder::new(StringBuilder::new());
                    for trace in traces {
                        match get(trace) {
                            Some(items) => {
                                items.iter().for_each(|item| builder.values().append_value(item));
                                builder.append(true);
                            }
                            None => builder.append(false),
                        }
                    }
                    Arc::new(builder.finish())
                }
            }
        })
        .collect();
    RecordBatch::try_new(schema(), arrays).expect("arrays built from the segment schema")
}

/// A segment file shared by concurrent readers; reads are positional (`pread`), so readers never
/// disturb each other's file offset. The open file stays readable after retention unlinks it.
#[derive(Clone)]
struct SegmentFile {
    file: Arc<File>,
    len: u64,
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

struct PositionedReader {
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

/// An open segment: its cached reader metadata and the in-memory indexes of its rows.
pub(crate) struct Segment {
    pub generation: u64,
    pub path: PathBuf,
    file: SegmentFile,
    metadata: ArrowReaderMetadata,
    /// `time` of each row (ascending).
    times: Vec<i64>,
    /// The trace ids of all rows, concatenated; `id_ends[row]` is where row's id ends.
    id_text: String,
    id_ends: Vec<u32>,
    indexes: FieldIndexes,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment").field("path", &self.path).field("rows", &self.len()).finish()
    }
}

impl Segment {
    /// Opens a segment file, checks its schema and builds its indexes. Also returns the identity key of
    /// each row, for the store's global id map.
    pub(crate) fn open(path: &Path, generation: u64, hasher: &IdHasher) -> Result<(Segment, Vec<IdKey>), StoreError> {
        let file = File::open(path).map_err(|e| StoreError::io(path, e))?;
        let len = file.metadata().map_err(|e| StoreError::io(path, e))?.len();
        let file = SegmentFile { file: Arc::new(file), len };
        let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required);
        let metadata = ArrowReaderMetadata::load(&file, options).map_err(|e| StoreError::parquet(path, e))?;
        if metadata.schema().fields() != schema().fields() {
            return Err(StoreError::corrupt(path, "the file's schema is not the segment schema"));
        }
        let mut segment = Segment {
            generation,
            path: path.to_owned(),
            file,
            metadata,
            times: Vec::new(),
            id_text: String::new(),
            id_ends: Vec::new(),
            indexes: FieldIndexes::default(),
        };
        let keys = segment.load_indexes(hasher)?;
        Ok((segment, keys))
    }

    fn load_indexes(&mut self, hasher: &IdHasher) -> Result<Vec<IdKey>, StoreError> {
        let field_columns = FilterField::ALL.map(|field| column_index(field.column()));
        let projection = ProjectionMask::roots(
            self.metadata.parquet_schema(),
            [TIME_COLUMN, TRACE_ID_COLUMN].into_iter().chain(field_columns),
        );
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(self.file.clone(), self.metadata.clone())
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
                self.times.push(times.value(row));
                self.id_text.push_str(trace_ids.value(row));
                self.id_ends.push(
                    u32::try_from(self.id_text.len())
                        .map_err(|_| StoreError::corrupt(&self.path, "the trace ids of a segment exceed 4 GiB"))?,
                );
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
        if self.times.windows(2).any(|pair| pair[0] > pair[1]) {
            return Err(StoreError::corrupt(&self.path, "rows are not sorted by time"));
        }
        self.indexes.shrink_to_fit();
        self.id_text.shrink_to_fit();
        Ok(keys)
    }

    pub(crate) fn len(&self) -> usize {
        self.times.len()
    }

    pub(crate) fn time_range(&self) -> (i64, i64) {
        (self.times.first().copied().unwrap_or(i64::MAX), self.times.last().copied().unwrap_or(i64::MIN))
    }

    pub(crate) fn file_size(&self) -> u64 {
        self.file.len
    }

    pub(crate) fn trace_id(&self, row: u32) -> &str {
        let row = row as usize;
        let start = if row == 0 { 0 } else { self.id_ends[row - 1] as usize };
        &self.id_text[start..self.id_ends[row] as usize]
    }

    /// Appends up to `plan.limit` newest matching candidates: the postings of the conditions are
    /// intersected, smallest first, within the row range of the key window (rows are in key order).
    pub(crate) fn candidates<'a>(&'a self, plan: &Plan<'_>, part: usize, out: &mut Vec<Candidate<'a>>) {
        let first = self.times.partition_point(|&time| time < plan.from_ms);
        let upper = (plan.upper.time, plan.upper.trace_id.as_str());
        let end = partition_rows(self.len(), |row| (self.times[row as usize], self.trace_id(row)) < upper);
        if first >= end {
            return;
        }
        let candidate =
            |row: u32| Candidate { time: self.times[row as usize], trace_id: self.trace_id(row), part, row };
        let postings = self.indexes.postings(plan);
        match postings.split_first() {
            Some((smallest, others)) => {
                let from = smallest.partition_point(|&row| (row as usize) < first);
                let to = smallest.partition_point(|&row| (row as usize) < end);
                let matching = smallest[from..to]
                    .iter()
                    .rev()
                    .filter(|row| others.iter().all(|rows| rows.binary_search(row).is_ok()))
                    .take(plan.limit);
                out.extend(matching.map(|&row| candidate(row)));
            }
            None => out.extend((first as u32..end as u32).rev().take(plan.limit).map(candidate)),
        }
    }

    /// Reads the traces of `rows` (ascending, distinct), opening only the row groups that hold them and
    /// decompressing only the pages that hold them.
    pub(crate) fn fetch(&self, rows: &[u32]) -> Result<Vec<Trace>, StoreError> {
        let row_group_rows = self.metadata.metadata().row_groups().first().map_or(1, |g| g.num_rows() as usize).max(1);
        let mut row_groups: Vec<usize> = Vec::new();
        let mut ranges: Vec<std::ops::Range<usize>> = Vec::new();
        for &row in rows {
            let row = row as usize;
            let group = row / row_group_rows;
            if row_groups.last() != Some(&group) {
                row_groups.push(group);
            }
            // Positions count only the rows of the selected row groups.
            let position = (row_groups.len() - 1) * row_group_rows + row % row_group_rows;
            match ranges.last_mut() {
                Some(range) if range.end == position => range.end += 1,
                _ => ranges.push(position..position + 1),
            }
        }
        let selected_rows: usize =
            row_groups.iter().map(|&g| self.metadata.metadata().row_group(g).num_rows() as usize).sum();
        let selection = RowSelection::from_consecutive_ranges(ranges.into_iter(), selected_rows);
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(self.file.clone(), self.metadata.clone())
            .with_row_groups(row_groups)
            .with_row_selection(selection)
            .with_row_selection_policy(RowSelectionPolicy::Selectors)
            .with_batch_size(rows.len().max(1))
            .build()
            .map_err(|e| StoreError::parquet(&self.path, e))?;
        let mut traces = Vec::with_capacity(rows.len());
        for batch in reader {
            let batch = batch.map_err(|e| StoreError::parquet(&self.path, e.into()))?;
            decode_batch(&batch, &mut traces).map_err(|reason| StoreError::corrupt(&self.path, reason))?;
        }
        if traces.len() != rows.len() {
            return Err(StoreError::corrupt(&self.path, format!("read {} rows, wanted {}", traces.len(), rows.len())));
        }
        Ok(traces)
    }
}

fn column_index(name: &str) -> usize {
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
