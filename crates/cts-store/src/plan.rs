//! A query reduced to what every part of the store evaluates: the indexed field conditions and the
//! key window (time bounds, retention, paging key).

use crate::query::{Pattern, SortKey, TraceQuery};
use cts_model::{Trace, TraceType};
use std::borrow::Cow;
use std::collections::HashMap;

/// The value of the `Kind` condition for data traces.
pub(crate) const KIND_DATA: &str = "data";
/// The value of the `Kind` condition for management traces.
pub(crate) const KIND_MANAGEMENT: &str = "management";

/// A field every part of the store indexes (value -> rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FilterField {
    Project,
    /// Data vs management trace, derived from `trace_type`.
    Kind,
    TrackerName,
    ServiceType,
    User,
    ResourceId,
    ResourceName,
    ResourceType,
    TraceName,
    TraceRating,
    AccessKeyId,
    EnterpriseProjectId,
}

impl FilterField {
    pub(crate) const ALL: [FilterField; 12] = [
        FilterField::Project,
        FilterField::Kind,
        FilterField::TrackerName,
        FilterField::ServiceType,
        FilterField::User,
        FilterField::ResourceId,
        FilterField::ResourceName,
        FilterField::ResourceType,
        FilterField::TraceName,
        FilterField::TraceRating,
        FilterField::AccessKeyId,
        FilterField::EnterpriseProjectId,
    ];

    /// The value this field indexes for `trace` (`None`: the trace is not in any posting of the field).
    pub(crate) fn value_of(self, trace: &Trace) -> Option<&str> {
        match self {
            FilterField::Project => Some(&trace.project_id),
            FilterField::Kind => Some(kind_of(trace.trace_type)),
            FilterField::TrackerName => trace.tracker_name.as_deref(),
            FilterField::ServiceType => Some(&trace.service_type),
            FilterField::User => trace.user_name(),
            FilterField::ResourceId => trace.resource_id.as_deref(),
            FilterField::ResourceName => trace.resource_name.as_deref(),
            FilterField::ResourceType => Some(&trace.resource_type),
            FilterField::TraceName => Some(&trace.trace_name),
            FilterField::TraceRating => Some(trace.trace_rating.as_str()),
            FilterField::AccessKeyId => trace.access_key_id(),
            FilterField::EnterpriseProjectId => trace.enterprise_project_id.as_deref(),
        }
    }

    /// The segment column the field's values are read from.
    pub(crate) fn column(self) -> &'static str {
        match self {
            FilterField::Project => "project_id",
            FilterField::Kind => "trace_type",
            FilterField::TrackerName => "tracker_name",
            FilterField::ServiceType => "service_type",
            FilterField::User => "user_name",
            FilterField::ResourceId => "resource_id",
            FilterField::ResourceName => "resource_name",
            FilterField::ResourceType => "resource_type",
            FilterField::TraceName => "trace_name",
            FilterField::TraceRating => "trace_rating",
            FilterField::AccessKeyId => "user_access_key_id",
            FilterField::EnterpriseProjectId => "enterprise_project_id",
        }
    }

    /// The indexed value for a value read from [`FilterField::column`].
    pub(crate) fn value_from_column(self, column_value: &str) -> Option<&str> {
        match self {
            FilterField::Kind => column_value.parse::<TraceType>().ok().map(kind_of),
            _ => Some(column_value),
        }
    }
}

pub(crate) fn kind_of(trace_type: TraceType) -> &'static str {
    if trace_type.is_data() {
        KIND_DATA
    } else {
        KIND_MANAGEMENT
    }
}

/// Postings of one field: value -> row numbers in increasing order.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct FieldIndex {
    /// aHash under per-process random keys: several times cheaper than SipHash on short values
    /// (every trace indexes 12 of them), still keyed so values cannot be chosen to collide.
    postings: HashMap<Box<str>, Vec<u32>, ahash::RandomState>,
}

impl FieldIndex {
    /// Adds `row`, which must be greater than every row added before.
    pub(crate) fn add(&mut self, value: &str, row: u32) {
        match self.postings.get_mut(value) {
            Some(rows) => rows.push(row),
            None => {
                self.postings.insert(value.into(), vec![row]);
            }
        }
    }

    /// The rows holding `value`, ascending (empty when none).
    pub(crate) fn rows(&self, value: &str) -> &[u32] {
        self.postings.get(value).map_or(&[], Vec::as_slice)
    }

    /// Every value with its rows (ascending), in no particular order.
    pub(crate) fn values(&self) -> impl Iterator<Item = (&str, &[u32])> {
        self.postings.iter().map(|(value, rows)| (&**value, rows.as_slice()))
    }

    pub(crate) fn shrink_to_fit(&mut self) {
        self.postings.values_mut().for_each(Vec::shrink_to_fit);
        self.postings.shrink_to_fit();
    }

    /// The same postings with every row renumbered to `new_row[row]` (a permutation), each list
    /// ascending again.
    fn renumbered(&self, new_row: &[u32]) -> FieldIndex {
        let postings = self
            .postings
            .iter()
            .map(|(value, rows)| {
                let mut renumbered: Vec<u32> = rows.iter().map(|&row| new_row[row as usize]).collect();
                renumbered.sort_unstable();
                (value.clone(), renumbered)
            })
            .collect();
        FieldIndex { postings }
    }
}

/// One index per [`FilterField`].
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct FieldIndexes([FieldIndex; FilterField::ALL.len()]);

impl FieldIndexes {
    pub(crate) fn field(&self, field: FilterField) -> &FieldIndex {
        &self.0[field as usize]
    }

    pub(crate) fn field_mut(&mut self, field: FilterField) -> &mut FieldIndex {
        &mut self.0[field as usize]
    }

    /// Indexes every field of `trace` at `row`.
    pub(crate) fn add_trace(&mut self, trace: &Trace, row: u32) {
        for field in FilterField::ALL {
            if let Some(value) = field.value_of(trace) {
                self.field_mut(field).add(value, row);
            }
        }
    }

    /// The rows of each condition, smallest first: an exact condition's posting list, or the union of the
    /// posting lists of every value a prefix or case-insensitive condition accepts.
    pub(crate) fn postings<'a>(&'a self, plan: &Plan<'_>) -> Vec<Cow<'a, [u32]>> {
        let mut lists: Vec<Cow<'a, [u32]>> = plan
            .conditions
            .iter()
            .map(|condition| {
                let index = self.field(condition.field);
                match &condition.test {
                    ValueTest::Exact(value) => Cow::Borrowed(index.rows(value)),
                    _ => {
                        let mut rows: Vec<u32> = index
                            .values()
                            .filter(|(value, _)| condition.test.accepts(value))
                            .flat_map(|(_, rows)| rows.iter().copied())
                            .collect();
                        rows.sort_unstable();
                        Cow::Owned(rows)
                    }
                }
            })
            .collect();
        lists.sort_by_key(|rows| rows.len());
        lists
    }

    pub(crate) fn shrink_to_fit(&mut self) {
        self.0.iter_mut().for_each(FieldIndex::shrink_to_fit);
    }

    /// The indexes with every row renumbered to `new_row[row]` (a permutation of the rows): a
    /// memtable's indexes in its segment's row order, without hashing any value again.
    pub(crate) fn renumbered(&self, new_row: &[u32]) -> FieldIndexes {
        FieldIndexes(self.0.each_ref().map(|index| index.renumbered(new_row)))
    }
}

/// How a condition tests a field's value.
#[derive(Debug, Clone)]
pub(crate) enum ValueTest<'q> {
    Exact(&'q str),
    Prefix(&'q str),
    /// Equal once both are lowercased; holds the lowercased value.
    ExactIgnoringCase(Cow<'q, str>),
    /// Starts with it once both are lowercased; holds the lowercased value.
    PrefixIgnoringCase(Cow<'q, str>),
}

impl<'q> ValueTest<'q> {
    fn new(pattern: &'q Pattern, ignore_case: bool) -> ValueTest<'q> {
        match (pattern.prefix, ignore_case) {
            (false, false) => ValueTest::Exact(&pattern.value),
            (true, false) => ValueTest::Prefix(&pattern.value),
            (false, true) => ValueTest::ExactIgnoringCase(lowercase(&pattern.value)),
            (true, true) => ValueTest::PrefixIgnoringCase(lowercase(&pattern.value)),
        }
    }

    pub(crate) fn accepts(&self, value: &str) -> bool {
        match self {
            ValueTest::Exact(wanted) => value == *wanted,
            ValueTest::Prefix(wanted) => value.starts_with(*wanted),
            ValueTest::ExactIgnoringCase(wanted) => lowercase(value) == *wanted,
            ValueTest::PrefixIgnoringCase(wanted) => lowercase(value).starts_with(&**wanted),
        }
    }
}

/// `text` in Unicode lowercase, borrowed when it has no uppercase letter (ASCII checked byte by byte).
pub(crate) fn lowercase(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        match text.bytes().any(|byte| byte.is_ascii_uppercase()) {
            true => Cow::Owned(text.to_ascii_lowercase()),
            false => Cow::Borrowed(text),
        }
    } else {
        Cow::Owned(text.to_lowercase())
    }
}

/// Whether `haystack`, lowercased, contains `needle` (already lowercase): without allocating when the
/// haystack is ASCII.
pub(crate) fn contains_ignoring_case(haystack: &str, needle: &str) -> bool {
    match haystack.is_ascii() {
        true => contains_ignoring_ascii_case(haystack.as_bytes(), needle.as_bytes()),
        false => haystack.to_lowercase().contains(needle),
    }
}

/// Whether `haystack` holds `needle` (lowercase) with ASCII letters compared without regard to case.
fn contains_ignoring_ascii_case(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else { return true };
    let Some(last_start) = haystack.len().checked_sub(needle.len()) else { return false };
    let upper = first.to_ascii_uppercase();
    let mut from = 0;
    while from <= last_start {
        let Some(offset) = memchr::memchr2(first, upper, &haystack[from..=last_start]) else { return false };
        let start = from + offset;
        if haystack[start + 1..start + needle.len()].eq_ignore_ascii_case(rest) {
            return true;
        }
        from = start + 1;
    }
    false
}

/// The only characters beyond ASCII whose lowercase holds an ASCII letter: KELVIN SIGN (`k`) and LATIN
/// CAPITAL LETTER I WITH DOT ABOVE (`i` and a combining dot), in UTF-8.
const LOWERCASE_TO_ASCII: [&[u8]; 2] = [b"\xE2\x84\xAA", b"\xC4\xB0"];

/// Whether the stored records `block` may hold a trace whose texts contain every term (lowercase): `false`
/// only when some ASCII term occurs nowhere in the block's bytes, in any case, and no character in it
/// lowercases to ASCII. The records keep strings as UTF-8 bytes, so a block without a term's bytes has no
/// trace with the term; skipping it saves decoding its records.
pub(crate) fn block_may_hold(terms: &[String], block: &[u8]) -> bool {
    if terms.iter().any(|term| !term.is_ascii())
        || LOWERCASE_TO_ASCII.iter().any(|bytes| memchr::memmem::find(block, bytes).is_some())
    {
        return true;
    }
    terms.iter().all(|term| contains_ignoring_ascii_case(block, term.as_bytes()))
}

/// One indexed field condition.
#[derive(Debug, Clone)]
pub(crate) struct Condition<'q> {
    pub field: FilterField,
    pub test: ValueTest<'q>,
}

/// A query as the parts of the store evaluate it.
#[derive(Debug)]
pub(crate) struct Plan<'q> {
    /// Indexed field conditions, all of which must hold.
    pub conditions: Vec<Condition<'q>>,
    /// Free-text terms, lowercased: each must occur in the request, response or message.
    pub text: Vec<String>,
    /// Inclusive lower time bound (the query's, raised to the retention cutoff).
    pub from_ms: i64,
    /// Keys must be strictly below this one (the query's `to` and `after`, whichever is lower).
    pub upper: SortKey,
    pub trace_id: Option<&'q str>,
    pub limit: usize,
}

impl<'q> Plan<'q> {
    pub(crate) fn new(query: &'q TraceQuery, retention_cutoff_ms: i64) -> Plan<'q> {
        let filters = &query.filters;
        let kind = if query.data { KIND_DATA } else { KIND_MANAGEMENT };
        let exact = |field, value| Condition { field, test: ValueTest::Exact(value) };
        let mut conditions =
            vec![exact(FilterField::Project, query.project_id.as_str()), exact(FilterField::Kind, kind)];
        conditions.extend(query.tracker_name.as_deref().map(|name| exact(FilterField::TrackerName, name)));
        conditions.extend(filters.trace_rating.map(|rating| exact(FilterField::TraceRating, rating.as_str())));
        let patterns = [
            (FilterField::ServiceType, &filters.service_type),
            (FilterField::User, &filters.user),
            (FilterField::ResourceId, &filters.resource_id),
            (FilterField::ResourceName, &filters.resource_name),
            (FilterField::ResourceType, &filters.resource_type),
            (FilterField::TraceName, &filters.trace_name),
            (FilterField::AccessKeyId, &filters.access_key_id),
            (FilterField::EnterpriseProjectId, &filters.enterprise_project_id),
        ];
        conditions.extend(patterns.into_iter().filter_map(|(field, pattern)| {
            Some(Condition { field, test: ValueTest::new(pattern.as_ref()?, filters.ignore_case) })
        }));
        let to_bound = SortKey { time: query.to_ms.saturating_add(1), trace_id: String::new() };
        let upper = match &query.after {
            Some(after) if *after < to_bound => after.clone(),
            _ => to_bound,
        };
        Plan {
            conditions,
            text: filters.text.iter().map(|term| lowercase(term).into_owned()).collect(),
            from_ms: query.from_ms.max(retention_cutoff_ms),
            upper,
            trace_id: filters.trace_id.as_deref(),
            limit: query.limit,
        }
    }

    /// `true` when no trace can match (empty window or zero limit).
    pub(crate) fn is_empty(&self) -> bool {
        self.limit == 0 || (self.upper.time, self.upper.trace_id.as_str()) <= (self.from_ms, "")
    }

    /// `true` when a part whose times span [min, max] may hold a result.
    pub(crate) fn overlaps(&self, min_time: i64, max_time: i64) -> bool {
        max_time >= self.from_ms && min_time <= self.upper.time
    }

    /// `true` when the key (time, trace_id) lies in the window.
    pub(crate) fn admits_key(&self, time: i64, trace_id: &str) -> bool {
        time >= self.from_ms && (time, trace_id) < (self.upper.time, self.upper.trace_id.as_str())
    }

    /// `true` when `trace` satisfies every condition and lies in the window.
    pub(crate) fn matches(&self, trace: &Trace) -> bool {
        self.admits_key(trace.time, &trace.trace_id) && self.matches_fields(trace)
    }

    /// `true` when `trace` satisfies every condition, the trace id and the text terms, whatever its time.
    pub(crate) fn matches_fields(&self, trace: &Trace) -> bool {
        self.trace_id.is_none_or(|id| id == trace.trace_id)
            && self
                .conditions
                .iter()
                .all(|condition| condition.field.value_of(trace).is_some_and(|value| condition.test.accepts(value)))
            && self.matches_text(trace)
    }

    pub(crate) fn matches_text(&self, trace: &Trace) -> bool {
        matches_text(&self.text, trace)
    }
}

/// `true` when every term (lowercase) occurs in the trace's request, response or message.
pub(crate) fn matches_text(terms: &[String], trace: &Trace) -> bool {
    let texts = [trace.request.as_deref(), trace.response.as_deref(), trace.message.as_deref()];
    terms.iter().all(|term| texts.iter().flatten().any(|text| contains_ignoring_case(text, term)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Characters that stress case folding: ASCII letters, `ß`, KELVIN SIGN, dotted capital I, `ẞ`.
    fn text() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop::sample::select(vec!['a', 'B', 'k', 'K', 'i', 'I', 'ß', 'ẞ', '\u{212A}', 'İ', '"', ' ']),
            0..12,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    proptest! {
        /// The text search agrees with lowercasing both sides, and a block is never skipped when a text in it
        /// holds every term.
        #[test]
        fn text_search_is_lowercase_containment_and_the_block_filter_never_skips_a_match(
            haystack in text(),
            other in text(),
            terms in proptest::collection::vec(text(), 1..3),
        ) {
            let terms: Vec<String> = terms.iter().map(|term| lowercase(term).into_owned()).collect();
            for term in &terms {
                prop_assert_eq!(contains_ignoring_case(&haystack, term), haystack.to_lowercase().contains(term.as_str()));
            }
            let block = format!("{other}\u{1}{haystack}");
            if terms.iter().all(|term| haystack.to_lowercase().contains(term.as_str())) {
                prop_assert!(block_may_hold(&terms, block.as_bytes()));
            }
        }
    }

    #[test]
    fn a_block_without_an_ascii_term_is_skipped() {
        let terms = ["denied".to_owned()];
        assert!(!block_may_hold(&terms, br#"{"ok":true} order o-17"#));
        assert!(block_may_hold(&terms, br#"{"error":"Access DENIED"}"#));
        assert!(
            block_may_hold(&terms, "{\"note\":\"\u{212A}\"}".as_bytes()),
            "a Kelvin sign may lowercase into a term"
        );
        assert!(block_may_hold(&["straße".to_owned()], b"STRASSE"), "non-ASCII terms are never ruled out");
    }
}
