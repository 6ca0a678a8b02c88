//! What an SQL engine reads for one project: a consistent snapshot of the store taken under its read lock.
//!
//! Each segment that may hold rows of the project in the time window comes with its Parquet file *opened
//! at snapshot time* (retention unlinks a dropped segment's files only after removing it from the state,
//! under the write lock, so every file of the snapshot is open before it can be deleted, and an open file
//! stays readable) and the project's rows in the window, as ascending runs of row numbers from the
//! segment's in-memory indexes. The project's traces not yet sealed (memtables) come as Arrow record
//! batches of the same schema, built by the segment writer's own batch builder.
//!
//! Rows older than the retention cutoff are left out, as ListTraces leaves them out. The engine is still
//! expected to check `project_id` and `time` of every row it reads: the snapshot narrows the reads, the
//! check is what guarantees the scoping.

use crate::error::StoreError;
use crate::plan::FilterField;
use crate::segment::{self, BatchBuilder, SegmentFile, BATCH_ROWS};
use crate::store::Store;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use cts_model::Trace;
use std::fs::File;
use std::ops::{Range, RangeInclusive};
use std::path::PathBuf;

/// The Arrow schema of segments and of [`SqlSources::unsealed`]: one column per trace field, `user`
/// flattened into `user_*` columns (see `FORMAT.md`).
pub fn segment_schema() -> SchemaRef {
    segment::schema()
}

/// A project's traces as an SQL engine reads them (see the module docs).
#[derive(Debug)]
pub struct SqlSources {
    /// Segments holding rows of the project in the window, oldest first.
    pub segments: Vec<SegmentSource>,
    /// The project's unsealed traces in the window, in batches of the segment schema (no order).
    pub unsealed: Vec<RecordBatch>,
    /// Traces older than this (UTC ms) are hidden: now − retention when the snapshot was taken.
    pub retention_cutoff_ms: i64,
}

/// One segment's Parquet file and the rows of the snapshot's project and window in it.
#[derive(Debug)]
pub struct SegmentSource {
    /// Opened while the segment was part of the store.
    pub file: SegmentFile,
    /// Where the file was (for error messages; it may be gone by the time it is read).
    pub path: PathBuf,
    /// The oldest and newest `time` of the segment's rows (every project's).
    pub time_range: (i64, i64),
    /// The project's rows in the window, as ascending, non-adjacent runs of row numbers.
    pub rows: Vec<Range<usize>>,
}

impl SegmentSource {
    /// How many rows the runs hold.
    pub fn row_count(&self) -> usize {
        self.rows.iter().map(ExactSizeIterator::len).sum()
    }
}

impl Store {
    /// The segments and unsealed traces of `project_id` whose `time` lies in `window` (inclusive) and
    /// after the retention cutoff (see [`SqlSources`]).
    pub fn sql_sources(&self, project_id: &str, window: RangeInclusive<i64>) -> Result<SqlSources, StoreError> {
        let retention_cutoff_ms = cts_model::now_ms().saturating_sub(self.shared().config.retention_ms);
        let from = (*window.start()).max(retention_cutoff_ms);
        let to = *window.end();
        let in_window = |time: i64| time >= from && time <= to;
        let state = self.shared().state.read();
        let mut segments = Vec::new();
        if from <= to {
            for segment in state.segments.values() {
                let (min_time, max_time) = segment.time_range();
                if max_time < from || min_time > to {
                    continue;
                }
                let window_rows = segment.first_row_at(from)..segment.first_row_at(to.saturating_add(1));
                let project_rows = segment.indexes().field(FilterField::Project).rows(project_id);
                let rows = runs(project_rows, window_rows);
                if rows.is_empty() {
                    continue;
                }
                let file = File::open(&segment.path)
                    .and_then(SegmentFile::new)
                    .map_err(|e| StoreError::io(&segment.path, e))?;
                segments.push(SegmentSource {
                    file,
                    path: segment.path.clone(),
                    time_range: (min_time, max_time),
                    rows,
                });
            }
        }
        let memtables = std::iter::once(&state.memtable).chain(state.sealing.iter().map(|memtable| &**memtable));
        let unsealed_traces: Vec<&Trace> = memtables
            .flat_map(|memtable| {
                let rows = memtable.indexes().field(FilterField::Project).rows(project_id);
                rows.iter().map(|&row| memtable.trace(row))
            })
            .filter(|trace| in_window(trace.time))
            .collect();
        let mut builder = BatchBuilder::new();
        let unsealed = unsealed_traces.chunks(BATCH_ROWS).map(|chunk| builder.build(chunk)).collect();
        Ok(SqlSources { segments, unsealed, retention_cutoff_ms })
    }
}

/// The rows of `sorted_rows` (ascending) inside `window`, as runs of consecutive row numbers.
fn runs(sorted_rows: &[u32], window: Range<usize>) -> Vec<Range<usize>> {
    let first = sorted_rows.partition_point(|&row| (row as usize) < window.start);
    let end = sorted_rows.partition_point(|&row| (row as usize) < window.end);
    let mut runs: Vec<Range<usize>> = Vec::new();
    for &row in &sorted_rows[first..end] {
        let row = row as usize;
        match runs.last_mut() {
            Some(run) if run.end == row => run.end += 1,
            _ => runs.push(row..row + 1),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreConfig;
    use arrow_array::cast::AsArray;
    use cts_model::{TraceRating, TraceType};

    #[test]
    fn runs_join_consecutive_rows_within_the_window() {
        assert_eq!(runs(&[0, 1, 2, 5, 6, 9], 0..10), vec![0..3, 5..7, 9..10]);
        assert_eq!(runs(&[0, 1, 2, 5, 6, 9], 2..6), vec![2..3, 5..6]);
        assert_eq!(runs(&[0, 1, 2], 3..10), Vec::<Range<usize>>::new());
        assert_eq!(runs(&[], 0..10), Vec::<Range<usize>>::new());
    }

    fn trace(project: &str, id: usize, time: i64) -> Trace {
        let mut trace = crate::columns::blank_trace();
        trace.trace_id = format!("{id:08}");
        trace.project_id = project.to_owned();
        trace.trace_name = "createTracker".to_owned();
        trace.trace_rating = TraceRating::Normal;
        trace.trace_type = TraceType::ApiCall;
        trace.service_type = "CTS".to_owned();
        trace.resource_type = "tracker".to_owned();
        trace.time = time;
        trace.record_time = time;
        trace
    }

    /// The project's rows of every source, with their times, sorted.
    fn snapshot_rows(sources: &SqlSources) -> Vec<(String, i64)> {
        let mut rows = Vec::new();
        let mut collect = |batch: &RecordBatch| {
            let times = batch.column_by_name("time").unwrap().as_primitive::<arrow_array::types::Int64Type>();
            let ids = batch.column_by_name("trace_id").unwrap().as_string::<i32>();
            rows.extend(ids.iter().zip(times.values()).map(|(id, &time)| (id.unwrap().to_owned(), time)));
        };
        for source in &sources.segments {
            let selection: Vec<usize> = source.rows.iter().flat_map(Clone::clone).collect();
            let bytes = bytes::Bytes::from(std::fs::read(&source.path).unwrap());
            let traces = crate::traces_from_parquet(bytes, &source.path).unwrap();
            let chosen: Vec<&Trace> = selection.iter().map(|&row| &traces[row]).collect();
            collect(&BatchBuilder::new().build(&chosen));
        }
        sources.unsealed.iter().for_each(&mut collect);
        rows.sort();
        rows
    }

    #[test]
    fn a_snapshot_holds_the_projects_rows_in_the_window_sealed_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig::new(dir.path())).unwrap();
        let now = cts_model::now_ms();
        let traces: Vec<Trace> =
            (0..40).map(|i| trace(if i % 3 == 0 { "b" } else { "a" }, i, now - 1000 * i as i64)).collect();
        store.append_blocking(traces[..30].to_vec()).unwrap();
        store.flush().unwrap();
        store.append_blocking(traces[30..].to_vec()).unwrap();
        let window = now - 25_000..=now - 5_000;
        let sources = store.sql_sources("a", window.clone()).unwrap();
        assert_eq!(sources.segments.len(), 1);
        assert!(!sources.unsealed.is_empty() || traces[30..].iter().all(|t| !window.contains(&t.time)));
        let expected: Vec<(String, i64)> = {
            let mut rows: Vec<_> = traces
                .iter()
                .filter(|t| t.project_id == "a" && window.contains(&t.time))
                .map(|t| (t.trace_id.clone(), t.time))
                .collect();
            rows.sort();
            rows
        };
        assert_eq!(snapshot_rows(&sources), expected);
        assert_eq!(sources.segments[0].row_count(), expected.len());
    }

    #[test]
    fn retention_hides_old_traces_and_segments_stay_readable_after_they_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig { retention_ms: 60_000, ..StoreConfig::new(dir.path()) };
        let store = Store::open(config).unwrap();
        let now = cts_model::now_ms();
        store.append_blocking(vec![trace("a", 1, now - 120_000), trace("a", 2, now - 100_000)]).unwrap();
        store.flush().unwrap();
        store.append_blocking(vec![trace("a", 3, now - 90_000), trace("a", 4, now)]).unwrap();
        let sources = store.sql_sources("a", i64::MIN..=i64::MAX).unwrap();
        assert!(sources.segments.is_empty(), "the only segment is older than the retention");
        assert_eq!(snapshot_rows(&sources), vec![("00000004".to_owned(), now)]);

        let wide = StoreConfig { retention_ms: 3_600_000, ..StoreConfig::new(dir.path()) };
        drop(store);
        let store = Store::open(wide).unwrap();
        let sources = store.sql_sources("a", i64::MIN..=i64::MAX).unwrap();
        assert_eq!(sources.segments.len(), 1);
        assert_eq!(store.enforce_retention(now + 4_000_000).unwrap(), 2);
        assert!(!sources.segments[0].path.exists(), "retention deleted the file");
        let head = parquet::file::reader::ChunkReader::get_bytes(&sources.segments[0].file, 0, 4).unwrap();
        assert_eq!(&head[..], b"PAR1", "the open file is still readable");
    }
}
