//! Free-text terms over a segment's text columns in its Parquet file.
//!
//! A free-text query with no selective condition reads most rows of a segment. Reading them from the
//! sidecar decompresses whole records, every field of every row; the Parquet file keeps `request`,
//! `response` and `message` in columns of their own, so a scan decompresses only those, page by page,
//! and searches each column's values as one buffer: ASCII-lowercased once, then a SIMD substring search
//! that jumps from one occurrence to the next row. Rows with non-ASCII text are checked one by one with
//! the same Unicode lowercase containment as everywhere else ([`contains_ignoring_case`]), so both ways
//! of reading a segment find the same rows.

use crate::error::StoreError;
use crate::plan::contains_ignoring_case;
use crate::segment::{column_index, guard_parquet, load_metadata, SegmentFile};
use arrow_array::cast::AsArray;
use arrow_array::{Array, StringArray};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder, RowSelection};
use parquet::arrow::ProjectionMask;
use parquet::file::metadata::PageIndexPolicy;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Rows from which a scan is split over two threads: each half then spans pages enough that the one
/// both decompress costs little.
const PARALLEL_ROWS: usize = 16_384;
/// The columns free text is searched in.
const TEXT_COLUMNS: [&str; 3] = ["request", "response", "message"];

/// A segment's Parquet file opened for text scans, with its page index: a read of some rows
/// decompresses only the pages that hold them.
pub(crate) struct TextColumns {
    path: PathBuf,
    file: SegmentFile,
    metadata: ArrowReaderMetadata,
    projection: ProjectionMask,
}

impl TextColumns {
    pub(crate) fn open(path: &Path) -> Result<TextColumns, StoreError> {
        guard_parquet(path, || {
            let file = File::open(path).and_then(SegmentFile::new).map_err(|e| StoreError::io(path, e))?;
            let metadata = load_metadata(&file, path, PageIndexPolicy::Optional)?;
            let projection = ProjectionMask::roots(metadata.parquet_schema(), TEXT_COLUMNS.map(column_index));
            Ok(TextColumns { path: path.to_owned(), file, metadata, projection })
        })
    }

    /// Of `rows` (ascending, distinct), those whose request, response or message holds every term
    /// (each lowercase; a term may be in any of the three), ascending. Many rows are read in two halves
    /// at once, on the calling thread and one more.
    pub(crate) fn rows_holding(&self, rows: &[u32], terms: &[String]) -> Result<Vec<u32>, StoreError> {
        if rows.len() < PARALLEL_ROWS {
            return self.read_rows_holding(rows, terms);
        }
        let (older, newer) = rows.split_at(rows.len() / 2);
        let (older, newer) = std::thread::scope(|scope| {
            let newer = scope.spawn(|| self.read_rows_holding(newer, terms));
            (self.read_rows_holding(older, terms), newer.join())
        });
        let mut holding = older?;
        holding.extend(newer.unwrap_or_else(|_| Err(StoreError::corrupt(&self.path, "the text scan failed")))?);
        Ok(holding)
    }

    /// [`TextColumns::rows_holding`] on the calling thread.
    fn read_rows_holding(&self, rows: &[u32], terms: &[String]) -> Result<Vec<u32>, StoreError> {
        let Some(&last) = rows.last() else { return Ok(Vec::new()) };
        let total_rows = self.metadata.metadata().file_metadata().num_rows() as usize;
        if last as usize >= total_rows {
            return Err(StoreError::corrupt(&self.path, format!("row {last} is past the file's {total_rows} rows")));
        }
        guard_parquet(&self.path, || {
            let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(self.file.clone(), self.metadata.clone())
                .with_projection(self.projection.clone())
                .with_row_selection(RowSelection::from_consecutive_ranges(runs(rows), total_rows))
                .with_batch_size(rows.len())
                .build()
                .map_err(|e| StoreError::parquet(&self.path, e))?;
            let mut holding = Vec::new();
            let mut done = 0;
            for batch in reader {
                let batch = batch.map_err(|e| StoreError::parquet(&self.path, e.into()))?;
                let batch_rows = &rows[done..done + batch.num_rows()];
                let texts = TEXT_COLUMNS.map(|name| batch.column_by_name(name).expect("projected").as_string::<i32>());
                let matched = rows_holding_every_term(&texts, terms);
                holding.extend(batch_rows.iter().zip(matched).filter(|(_, matched)| *matched).map(|(&row, _)| row));
                done += batch.num_rows();
            }
            if done != rows.len() {
                return Err(StoreError::corrupt(&self.path, format!("read {done} of {} selected rows", rows.len())));
            }
            Ok(holding)
        })
    }
}

/// Ascending distinct rows as ranges of consecutive rows.
fn runs(rows: &[u32]) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let mut index = 0;
    std::iter::from_fn(move || {
        let start = *rows.get(index)? as usize;
        let mut end = start + 1;
        index += 1;
        while rows.get(index).is_some_and(|&row| row as usize == end) {
            end += 1;
            index += 1;
        }
        Some(start..end)
    })
}

/// For each row of the arrays (one per text column, same length): whether every term occurs in one of
/// its texts. Each column is lowercased once for all terms.
fn rows_holding_every_term(texts: &[&StringArray], terms: &[String]) -> Vec<bool> {
    let rows = texts.first().map_or(0, |array| array.len());
    let mut holds = vec![vec![false; rows]; terms.len()];
    let mut lowered = Vec::new();
    for array in texts {
        let column = LoweredColumn::new(array, &mut lowered);
        terms.iter().zip(&mut holds).for_each(|(term, holds)| column.mark_rows_containing(term, holds));
    }
    (0..rows).map(|row| holds.iter().all(|holds| holds[row])).collect()
}

/// One text column's values as a single ASCII-lowercased buffer, and which rows are not ASCII.
struct LoweredColumn<'a> {
    array: &'a StringArray,
    /// Where each row's text starts in `lowered` (one more entry: where the last ends).
    offsets: Vec<usize>,
    lowered: &'a [u8],
    /// `None` when every row is ASCII.
    ascii_rows: Option<Vec<bool>>,
}

impl<'a> LoweredColumn<'a> {
    /// Lowercases `array`'s values into `scratch`.
    fn new(array: &'a StringArray, scratch: &'a mut Vec<u8>) -> LoweredColumn<'a> {
        let raw = array.value_offsets();
        let offsets: Vec<usize> = raw.iter().map(|&offset| (offset - raw[0]) as usize).collect();
        let values = &array.values()[raw[0] as usize..raw[array.len()] as usize];
        let ascii_rows = (!values.is_ascii())
            .then(|| offsets.windows(2).map(|bounds| values[bounds[0]..bounds[1]].is_ascii()).collect());
        scratch.clear();
        scratch.extend(values.iter().map(u8::to_ascii_lowercase));
        LoweredColumn { array, offsets, lowered: scratch, ascii_rows }
    }

    fn is_ascii(&self, row: usize) -> bool {
        self.ascii_rows.as_ref().is_none_or(|ascii| ascii[row])
    }

    /// Sets `holds[row]` for each row whose text contains `term` (lowercase) without regard to case.
    fn mark_rows_containing(&self, term: &str, holds: &mut [bool]) {
        let array = self.array;
        if term.is_empty() {
            (0..array.len()).filter(|&row| array.is_valid(row)).for_each(|row| holds[row] = true);
            return;
        }
        let finder = memchr::memmem::Finder::new(term.as_bytes());
        let mut from = 0;
        while let Some(found) = finder.find(&self.lowered[from..]) {
            let at = from + found;
            // The row whose text holds byte `at`: the last one starting at or before it (empty rows start
            // where the next one does, so they are never it).
            let row = self.offsets.partition_point(|&offset| offset <= at) - 1;
            let row_end = self.offsets[row + 1];
            if at + term.len() <= row_end && self.is_ascii(row) {
                holds[row] = true;
            }
            // Any later occurrence in this row ends later still: a row is done after its first.
            from = row_end;
        }
        if self.ascii_rows.is_some() {
            for (row, holds) in holds.iter_mut().enumerate() {
                if !*holds && !self.is_ascii(row) && array.is_valid(row) {
                    *holds = contains_ignoring_case(array.value(row), term);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{lowercase, matches_text};
    use cts_model::Trace;
    use proptest::prelude::*;

    /// Texts mixing ASCII cases with characters whose lowercase differs in length or is ASCII.
    fn text() -> impl Strategy<Value = Option<String>> {
        let chars = vec!['a', 'A', 'b', 'k', 'K', 'i', 'I', ' ', 'ß', 'ẞ', '\u{212A}', 'İ', 'é', 'É'];
        proptest::option::of(
            proptest::collection::vec(prop::sample::select(chars), 0..10).prop_map(|chars| chars.into_iter().collect()),
        )
    }

    fn trace_with(texts: &[Option<String>; 3]) -> Trace {
        let [request, response, message] = texts.clone();
        Trace { request, response, message, ..crate::columns::blank_trace() }
    }

    proptest! {
        /// The column scan finds exactly the rows whose trace the memtable's check accepts.
        #[test]
        fn column_scan_agrees_with_matching_each_trace(
            rows in proptest::collection::vec([text(), text(), text()], 0..12),
            terms in proptest::collection::vec("[aAbkKiI ßéÉİ\u{212A}]{0,3}", 1..3),
        ) {
            let terms: Vec<String> = terms.iter().map(|term| lowercase(term).into_owned()).collect();
            let columns: Vec<StringArray> =
                (0..3).map(|column| rows.iter().map(|texts| texts[column].as_deref()).collect()).collect();
            let arrays: Vec<&StringArray> = columns.iter().collect();
            let expected: Vec<bool> = rows.iter().map(|texts| matches_text(&terms, &trace_with(texts))).collect();
            prop_assert_eq!(rows_holding_every_term(&arrays, &terms), expected);
        }
    }

    #[test]
    fn an_occurrence_across_two_rows_is_no_match_and_does_not_hide_the_next() {
        let array = StringArray::from(vec![Some("xa"), None, Some("aa"), Some("A")]);
        let mut holds = vec![false; 4];
        LoweredColumn::new(&array, &mut Vec::new()).mark_rows_containing("aa", &mut holds);
        assert_eq!(holds, [false, false, true, false]);
    }

    #[test]
    fn consecutive_rows_become_runs() {
        let ranges: Vec<_> = runs(&[0, 1, 2, 5, 7, 8]).collect();
        assert_eq!(ranges, [0..3, 5..6, 7..9]);
    }
}
