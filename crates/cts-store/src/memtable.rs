//! The recent traces, in memory: queryable as soon as their WAL write is durable.

use crate::ids::IdKey;
use crate::plan::{FieldIndexes, Plan};
use crate::query::SortKey;
use crate::record::RecordBuffer;
use crate::subscribe::CommitGroup;
use cts_model::Trace;
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

/// When the smallest posting list holds more than 1/`SCAN_RATIO` of the memtable, walking the
/// time order and checking each trace beats collecting and sorting the postings.
const SCAN_RATIO: usize = 8;
/// A new memtable reserves room for its traces up to this many (larger ones grow as they fill).
const MAX_RESERVED_ROWS: usize = 1 << 17;

/// The traces of one WAL generation, indexed by every filter field and by sort key.
#[derive(Debug)]
pub(crate) struct Memtable {
    pub generation: u64,
    /// Where each row's trace and binary record lie in `groups`.
    rows: Vec<RowRef>,
    /// The traces as they were added: a group commit's new traces, or a recovered WAL file's.
    groups: Vec<Group>,
    /// The identity key of each row (computed once, on the appending thread).
    keys: Vec<IdKey>,
    order: BTreeMap<SortKey, u32>,
    indexes: FieldIndexes,
    min_time: i64,
    max_time: i64,
}

/// Traces added together ([`Memtable::push_group`]). The traces are shared, not copied, with the
/// store's subscribers; the chunks are the bytes their binary records lie in (the sidecar is written
/// from these): the appends' encoded WAL records, or a recovered WAL file's records re-encoded.
#[derive(Debug)]
struct Group {
    traces: CommitGroup,
    chunks: Vec<Vec<u8>>,
}

/// Where a row lies: trace `index` of group `group`, its binary record at `start..end` of the
/// group's chunk `chunk`.
#[derive(Debug, Clone)]
struct RowRef {
    group: u32,
    index: u32,
    chunk: u32,
    start: u32,
    end: u32,
}

/// Where a trace's binary record lies among the chunks given with it to [`Memtable::push_group`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordAt {
    pub chunk: usize,
    pub range: Range<usize>,
}

/// A result candidate: its key and where it lives (`part` is the caller's index of the part).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Candidate<'a> {
    pub time: i64,
    pub trace_id: &'a str,
    pub part: usize,
    pub row: u32,
}

impl Candidate<'_> {
    /// Newest first: (time, trace_id) descending.
    pub(crate) fn newest_first(a: &Candidate<'_>, b: &Candidate<'_>) -> std::cmp::Ordering {
        (b.time, b.trace_id).cmp(&(a.time, a.trace_id))
    }
}

impl Memtable {
    pub(crate) fn new(generation: u64) -> Memtable {
        Memtable {
            generation,
            rows: Vec::new(),
            groups: Vec::new(),
            keys: Vec::new(),
            order: BTreeMap::new(),
            indexes: FieldIndexes::default(),
            min_time: i64::MAX,
            max_time: i64::MIN,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub(crate) fn time_range(&self) -> (i64, i64) {
        (self.min_time, self.max_time)
    }

    /// Adds traces the caller has checked are new, with their identity keys, the bytes holding their
    /// binary records, and where each record lies (`records[i]` that of `traces[i]`); returns the row
    /// of the first (the others follow it).
    pub(crate) fn push_group(
        &mut self,
        traces: CommitGroup,
        keys: &[IdKey],
        chunks: Vec<Vec<u8>>,
        records: Vec<RecordAt>,
    ) -> u32 {
        assert!(traces.len() == keys.len() && traces.len() == records.len(), "one key and record per trace");
        let first = u32::try_from(self.rows.len()).expect("a memtable holds fewer than 2^32 traces");
        let group = u32::try_from(self.groups.len()).expect("fewer than 2^32 groups");
        let offset = |at: usize| u32::try_from(at).expect("a chunk is shorter than 4 GiB");
        for (index, ((trace, &key), record)) in traces.iter().zip(keys).zip(records).enumerate() {
            let row = first + index as u32;
            self.keys.push(key);
            self.rows.push(RowRef {
                group,
                index: index as u32,
                chunk: offset(record.chunk),
                start: offset(record.range.start),
                end: offset(record.range.end),
            });
            self.indexes.add_trace(trace, row);
            self.order.insert(SortKey::of(trace), row);
            self.min_time = self.min_time.min(trace.time);
            self.max_time = self.max_time.max(trace.time);
        }
        self.groups.push(Group { traces, chunks });
        first
    }

    /// [`Memtable::push_group`] for traces that arrive decoded (recovery): their binary records are
    /// encoded here (the writer has them encoded on the appending threads).
    pub(crate) fn push_decoded(&mut self, traces: Vec<Trace>, keys: &[IdKey]) -> u32 {
        let mut records = RecordBuffer::default();
        traces.iter().for_each(|trace| records.push_trace(trace));
        let at = (0..traces.len()).map(|index| RecordAt { chunk: 0, range: records.range(index) }).collect();
        self.push_group(Arc::new(traces), keys, vec![records.bytes], at)
    }

    pub(crate) fn trace(&self, row: u32) -> &Trace {
        let row = &self.rows[row as usize];
        &self.groups[row.group as usize].traces[row.index as usize]
    }

    /// The binary record of a row (see [`crate::record`]).
    pub(crate) fn record(&self, row: u32) -> &[u8] {
        let row = &self.rows[row as usize];
        &self.groups[row.group as usize].chunks[row.chunk as usize][row.start as usize..row.end as usize]
    }

    pub(crate) fn key(&self, row: u32) -> IdKey {
        self.keys[row as usize]
    }

    pub(crate) fn indexes(&self) -> &FieldIndexes {
        &self.indexes
    }

    /// The rows in (time, trace_id) order, as a segment stores them.
    pub(crate) fn sorted_rows(&self) -> Vec<u32> {
        self.order.values().copied().collect()
    }

    /// A memtable that will take up to `max_traces` (up to [`MAX_RESERVED_ROWS`] reserved up front:
    /// a memtable grows to a known size, and reserving once saves copying the traces at every doubling).
    pub(crate) fn with_room(generation: u64, max_traces: usize) -> Memtable {
        let mut memtable = Memtable::new(generation);
        let rows = max_traces.min(MAX_RESERVED_ROWS);
        memtable.rows.reserve_exact(rows);
        memtable.keys.reserve_exact(rows);
        memtable
    }

    /// The rows that satisfy `plan`, and whether they come newest first (else in row order). When
    /// the smallest posting list of its conditions is a small part of the memtable, its rows are
    /// checked; else the key order within the window is walked, newest first.
    pub(crate) fn matching_rows<'m>(&'m self, plan: &'m Plan<'_>) -> (Box<dyn Iterator<Item = u32> + 'm>, bool) {
        let smallest = self.indexes.postings(plan).into_iter().next().unwrap_or_default();
        if smallest.len() * SCAN_RATIO <= self.len() {
            let rows = (0..smallest.len()).map(move |index| smallest[index]);
            (Box::new(rows.filter(|&row| plan.matches(self.trace(row)))), false)
        } else {
            let lower = SortKey { time: plan.from_ms, trace_id: String::new() };
            let rows = self.order.range(lower..plan.upper.clone()).rev().map(|(_, &row)| row);
            (Box::new(rows.filter(|&row| plan.matches(self.trace(row)))), true)
        }
    }

    /// Appends up to `plan.limit` newest matching candidates ([`Memtable::matching_rows`]).
    pub(crate) fn candidates<'a>(&'a self, plan: &Plan<'_>, part: usize, out: &mut Vec<Candidate<'a>>) {
        let candidate = |row: u32| {
            let trace = self.trace(row);
            Candidate { time: trace.time, trace_id: &trace.trace_id, part, row }
        };
        let (rows, newest_first) = self.matching_rows(plan);
        if newest_first {
            out.extend(rows.take(plan.limit).map(candidate));
        } else {
            let start = out.len();
            out.extend(rows.map(candidate));
            out[start..].sort_unstable_by(Candidate::newest_first);
            out.truncate(start + plan.limit);
        }
    }
}
