//! Reading a snapshot ([`SqlSources`]) as DataFusion partitions, scoped to one project.
//!
//! Every batch, from a segment's Parquet file or from the unsealed traces, passes [`Scope::apply`]
//! before DataFusion sees it: rows whose `project_id` is not the caller's, or whose `time` is older
//! than the retention cutoff, are removed there, whatever the snapshot's row selection said. Only the
//! columns the query reads are decoded (plus `project_id` and `time` for that check), and only the
//! snapshot's rows of a segment (a Parquet row selection, pages skipped through the page index).
//! Segments are read on blocking threads, one at a time per partition.

use cts_store::{SegmentFile, SegmentSource, SqlSources, StoreError};
use datafusion::arrow::array::{Int64Array, RecordBatch, Scalar, StringArray};
use datafusion::arrow::compute::kernels::cmp::{eq, gt_eq};
use datafusion::arrow::compute::{and, filter_record_batch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchReceiverStream;
use datafusion::physical_plan::streaming::PartitionStream;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection};
use parquet::arrow::ProjectionMask;
use parquet::file::metadata::PageIndexPolicy;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc::Sender;

/// Batches a partition may read ahead of DataFusion.
const READ_AHEAD_BATCHES: usize = 2;

/// Which columns to read and the rows every batch is cut down to.
#[derive(Debug)]
pub(crate) struct Scope {
    /// Segment-schema indices read, ascending (the query's columns, `project_id` and `time`).
    read_columns: Vec<usize>,
    /// Positions in `read_columns` of `project_id` and `time`.
    project_at: usize,
    time_at: usize,
    /// Positions in `read_columns` of the query's columns, in the query's order.
    output: Vec<usize>,
    project_id: String,
    retention_cutoff_ms: i64,
}

impl Scope {
    /// The scope of a scan of `projection` (segment-schema indices; `None`: every column).
    pub(crate) fn new(project_id: &str, retention_cutoff_ms: i64, projection: Option<&[usize]>) -> Scope {
        let schema = cts_store::segment_schema();
        let wanted: Vec<usize> = projection.map_or_else(|| (0..schema.fields().len()).collect(), <[usize]>::to_vec);
        let index_of = |name: &str| schema.index_of(name).expect("a segment column");
        let (project_column, time_column) = (index_of("project_id"), index_of("time"));
        let mut read_columns: Vec<usize> = wanted.iter().copied().chain([project_column, time_column]).collect();
        read_columns.sort_unstable();
        read_columns.dedup();
        let position = |column: usize| read_columns.binary_search(&column).expect("a read column");
        Scope {
            project_at: position(project_column),
            time_at: position(time_column),
            output: wanted.iter().map(|&column| position(column)).collect(),
            read_columns,
            project_id: project_id.to_owned(),
            retention_cutoff_ms,
        }
    }

    /// `batch` (of the read columns) without the rows of other projects and expired rows, cut to the
    /// query's columns.
    fn apply(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let projects = batch.column(self.project_at);
        let times = batch.column(self.time_at);
        let project = Scalar::new(StringArray::from(vec![self.project_id.as_str()]));
        let cutoff = Scalar::new(Int64Array::from(vec![self.retention_cutoff_ms]));
        let keep = and(&eq(projects, &project)?, &gt_eq(times, &cutoff)?)?;
        let kept = if keep.true_count() == keep.len() { batch.clone() } else { filter_record_batch(batch, &keep)? };
        Ok(kept.project(&self.output)?)
    }
}

/// What one partition reads.
#[derive(Debug, Clone)]
enum Work {
    Segment(Arc<SegmentInput>),
    Unsealed(RecordBatch),
}

impl Work {
    fn rows(&self) -> usize {
        match self {
            Work::Segment(segment) => segment.rows.iter().map(ExactSizeIterator::len).sum(),
            Work::Unsealed(batch) => batch.num_rows(),
        }
    }
}

#[derive(Debug)]
struct SegmentInput {
    file: SegmentFile,
    path: PathBuf,
    rows: Vec<Range<usize>>,
}

/// One partition of a scan: its share of the snapshot.
#[derive(Debug)]
pub(crate) struct TracePartition {
    schema: SchemaRef,
    scope: Arc<Scope>,
    work: Vec<Work>,
    batch_rows: usize,
}

/// The snapshot split into at most `partitions` partitions of about the same number of rows, each
/// producing batches of `schema` (the projected schema of `scope`).
pub(crate) fn partitions(
    sources: SqlSources,
    scope: Scope,
    schema: SchemaRef,
    partitions: usize,
    batch_rows: usize,
) -> Result<Vec<Arc<dyn PartitionStream>>> {
    let mut work: Vec<Work> = sources.unsealed.into_iter().map(Work::Unsealed).collect();
    for SegmentSource { file, path, rows, .. } in sources.segments {
        work.push(Work::Segment(Arc::new(SegmentInput { file, path, rows })));
    }
    work.sort_by_key(|item| std::cmp::Reverse(item.rows()));
    let count = partitions.clamp(1, work.len().max(1));
    let mut shares: Vec<(usize, Vec<Work>)> = vec![(0, Vec::new()); count];
    for item in work {
        let lightest = shares.iter_mut().min_by_key(|(rows, _)| *rows).expect("at least one partition");
        lightest.0 += item.rows();
        lightest.1.push(item);
    }
    let scope = Arc::new(scope);
    Ok(shares
        .into_iter()
        .map(|(_, work)| {
            Arc::new(TracePartition { schema: schema.clone(), scope: scope.clone(), work, batch_rows })
                as Arc<dyn PartitionStream>
        })
        .collect())
}

impl PartitionStream for TracePartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _context: Arc<TaskContext>) -> SendableRecordBatchStream {
        let mut builder = RecordBatchReceiverStream::builder(self.schema.clone(), READ_AHEAD_BATCHES);
        let sender = builder.tx();
        let (work, scope, batch_rows) = (self.work.clone(), self.scope.clone(), self.batch_rows);
        builder.spawn_blocking(move || {
            // The Parquet reader panics on some malformed files: that is the file's corruption, an error.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_all(&work, &scope, batch_rows, &sender)))
                .unwrap_or_else(|_| Err(DataFusionError::Internal("reading a segment panicked".to_owned())))
        });
        builder.build()
    }
}

/// Sends every scoped batch of `work`; stops early, without error, when the query stopped listening.
fn read_all(work: &[Work], scope: &Scope, batch_rows: usize, sender: &Sender<Result<RecordBatch>>) -> Result<()> {
    let send = |batch: RecordBatch| -> Result<bool> {
        let scoped = scope.apply(&batch)?;
        Ok(scoped.num_rows() == 0 || sender.blocking_send(Ok(scoped)).is_ok())
    };
    for item in work {
        match item {
            Work::Unsealed(batch) => {
                if !send(batch.project(&scope.read_columns)?)? {
                    return Ok(());
                }
            }
            Work::Segment(segment) => {
                let parquet_error = |source| store_error(StoreError::Parquet { path: segment.path.clone(), source });
                let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
                let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(segment.file.clone(), options)
                    .map_err(parquet_error)?;
                if builder.schema().fields() != cts_store::segment_schema().fields() {
                    let reason = "the file's schema is not the segment schema".to_owned();
                    return Err(store_error(StoreError::Corrupt { path: segment.path.clone(), reason }));
                }
                let total_rows = usize::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
                let mask = ProjectionMask::roots(builder.parquet_schema(), scope.read_columns.iter().copied());
                let selection = RowSelection::from_consecutive_ranges(segment.rows.iter().cloned(), total_rows);
                let reader = builder
                    .with_projection(mask)
                    .with_row_selection(selection)
                    .with_batch_size(batch_rows)
                    .build()
                    .map_err(parquet_error)?;
                for batch in reader {
                    let batch = batch.map_err(|e| parquet_error(e.into()))?;
                    if !send(batch)? {
                        return Ok(());
                    }
                }
            }
        }
    }
    Ok(())
}

fn store_error(error: StoreError) -> DataFusionError {
    DataFusionError::External(Box::new(error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, AsArray};

    #[test]
    fn the_scope_drops_other_projects_and_expired_rows_and_keeps_the_query_columns() {
        let schema = cts_store::segment_schema();
        let trace_name = schema.index_of("trace_name").unwrap();
        let scope = Scope::new("mine", 100, Some(&[trace_name]));
        assert_eq!(scope.output.len(), 1);
        let read_schema = Arc::new(schema.project(&scope.read_columns).unwrap());
        let rows = [("mine", 100, "kept"), ("mine", 99, "expired"), ("theirs", 500, "other"), ("mine", 500, "too")];
        let column = |values: Vec<&str>| Arc::new(StringArray::from(values)) as Arc<dyn Array>;
        let arrays: Vec<Arc<dyn Array>> = scope
            .read_columns
            .iter()
            .map(|&index| match schema.field(index).name().as_str() {
                "time" => Arc::new(Int64Array::from(rows.map(|row| row.1).to_vec())) as Arc<dyn Array>,
                "project_id" => column(rows.map(|row| row.0).to_vec()),
                _ => column(rows.map(|row| row.2).to_vec()),
            })
            .collect();
        let batch = RecordBatch::try_new(read_schema, arrays).unwrap();
        let scoped = scope.apply(&batch).unwrap();
        assert_eq!(scoped.num_columns(), 1);
        let names: Vec<&str> = scoped.column(0).as_string::<i32>().iter().flatten().collect();
        assert_eq!(names, ["kept", "too"]);
    }
}
