//! The queries the benchmark times, in one shape both sides run: cts through
//! its HTTP API, PostgreSQL through SQL. [`QueryValues`] picks the filter
//! values and free-text words from the workload itself, so every selective
//! query finds a realistic handful of traces.

use serde::Serialize;
use serde_json::Value;
use std::hash::{Hash, Hasher};

/// A first page of management traces in a time window, with exact-match
/// filters and free-text terms (`q`).
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// ListTraces filter parameters (`user`, `trace_name`, ...) and their values.
    pub filters: Vec<(&'static str, String)>,
    /// Free-text terms: each must occur, case-insensitively, in request, response or message.
    pub terms: Vec<String>,
    pub from_ms: i64,
    pub to_ms: i64,
    pub limit: usize,
}

impl ListQuery {
    /// The query string pairs of the ListTraces request.
    pub fn http_params(&self) -> Vec<(&'static str, String)> {
        let mut params = vec![
            ("trace_type", "system".to_owned()),
            ("from", self.from_ms.to_string()),
            ("to", self.to_ms.to_string()),
            ("limit", self.limit.to_string()),
        ];
        params.extend(self.filters.iter().cloned());
        if !self.terms.is_empty() {
            params.push(("q", free_text_parameter(&self.terms)));
        }
        params
    }
}

/// The `q` parameter of terms: whitespace-separated, a term holding whitespace or quotes as a "quoted phrase".
pub fn free_text_parameter(terms: &[String]) -> String {
    let quoted: Vec<String> = terms
        .iter()
        .map(|term| {
            if term.contains(|c: char| c.is_whitespace() || c == '"') {
                format!("\"{}\"", term.replace('"', ""))
            } else {
                term.clone()
            }
        })
        .collect();
    quoted.join(" ")
}

/// Whether a trace (as ListTraces returns it) holds every term, case-insensitively, in request, response or message.
pub fn matches_terms(trace: &Value, terms: &[String]) -> bool {
    let texts: Vec<String> = ["request", "response", "message"]
        .iter()
        .filter_map(|field| trace[field].as_str())
        .map(str::to_lowercase)
        .collect();
    terms.iter().all(|term| {
        let term = term.to_lowercase();
        texts.iter().any(|text| text.contains(&term))
    })
}

/// The kinds of query timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryKind {
    /// `user` + `trace_name` over 7 days, a page of 10: one user's operations of one kind.
    Selective,
    /// `access_key_id` over 7 days, a page of 10: what one key did.
    AccessKey,
    /// `resource_id` over 7 days, a page of 10: what happened to one resource.
    Resource,
    /// No filter over 7 days, a page of 10: the console's first screen.
    Broad,
    /// No filter over 7 days, a page of 200 (the maximum).
    BroadMaxPage,
    /// Free text over 7 days, a page of 200: an order id that occurs in one trace.
    TextRare,
    /// Free text over 7 days, a page of 200: a product id (lower case) that occurs in thousands.
    TextCommon,
    /// Traces per operation per day over 7 days, through SQL.
    Aggregation,
}

impl QueryKind {
    /// Measured at every checkpoint.
    pub const SELECTIVE: [QueryKind; 3] = [QueryKind::Selective, QueryKind::AccessKey, QueryKind::Resource];
    pub const BROAD: [QueryKind; 2] = [QueryKind::Broad, QueryKind::BroadMaxPage];
    pub const TEXT: [QueryKind; 2] = [QueryKind::TextRare, QueryKind::TextCommon];

    pub fn label(self) -> &'static str {
        match self {
            QueryKind::Selective => "user+trace_name, 10",
            QueryKind::AccessKey => "access_key_id, 10",
            QueryKind::Resource => "resource_id, 10",
            QueryKind::Broad => "broad first page, 10",
            QueryKind::BroadMaxPage => "broad first page, 200",
            QueryKind::TextRare => "free text, rare word, 200",
            QueryKind::TextCommon => "free text, common word, 200",
            QueryKind::Aggregation => "SQL traces per operation per day",
        }
    }

    /// The page of this kind for the `index`-th run, cycling through the
    /// workload's values; `None` for the aggregation (not a page).
    pub fn query(self, index: usize, values: &QueryValues, from_ms: i64, to_ms: i64) -> Option<ListQuery> {
        let pick = |list: &[String]| list[index % list.len()].clone();
        let (filters, terms, limit) = match self {
            QueryKind::Selective => {
                let (user, trace_name) = &values.pairs[index % values.pairs.len()];
                (vec![("user", user.clone()), ("trace_name", trace_name.clone())], Vec::new(), 10)
            }
            QueryKind::AccessKey => (vec![("access_key_id", pick(&values.access_keys))], Vec::new(), 10),
            QueryKind::Resource => (vec![("resource_id", pick(&values.resource_ids))], Vec::new(), 10),
            QueryKind::Broad => (Vec::new(), Vec::new(), 10),
            QueryKind::BroadMaxPage => (Vec::new(), Vec::new(), 200),
            QueryKind::TextRare => (Vec::new(), vec![pick(&values.rare_words)], 200),
            QueryKind::TextCommon => (Vec::new(), vec![pick(&values.common_words)], 200),
            QueryKind::Aggregation => return None,
        };
        Some(ListQuery { filters, terms, from_ms, to_ms, limit })
    }
}

/// Filter values and words that occur in the workload.
#[derive(Debug, Clone, Default)]
pub struct QueryValues {
    /// (user name, trace name).
    pub pairs: Vec<(String, String)>,
    pub access_keys: Vec<String>,
    pub resource_ids: Vec<String>,
    /// Order ids `createOrder` answered with: each in one trace's response.
    pub rare_words: Vec<String>,
    /// Product ids in lower case (matching is case-insensitive): in thousands of requests and responses at 10M.
    pub common_words: Vec<String>,
}

impl QueryValues {
    /// `count` values of each kind spread evenly over what was gathered (all of it when fewer).
    pub fn spread(&self, count: usize) -> QueryValues {
        fn even<T: Clone>(items: &[T], count: usize) -> Vec<T> {
            let step = (items.len() / count.max(1)).max(1);
            items.iter().step_by(step).take(count).cloned().collect()
        }
        QueryValues {
            pairs: even(&self.pairs, count),
            access_keys: even(&self.access_keys, count),
            resource_ids: even(&self.resource_ids, count),
            rare_words: even(&self.rare_words, count),
            common_words: even(&self.common_words, count),
        }
    }

    /// Whether every kind has at least one value.
    pub fn complete(&self) -> bool {
        !(self.pairs.is_empty()
            || self.access_keys.is_empty()
            || self.resource_ids.is_empty()
            || self.rare_words.is_empty()
            || self.common_words.is_empty())
    }
}

/// Gathers [`QueryValues`] from every `stride`-th generated trace (and every
/// `createOrder` among them for the words).
pub struct ValueSampler {
    stride: usize,
    seen: usize,
    values: QueryValues,
}

impl ValueSampler {
    pub fn new(stride: usize) -> ValueSampler {
        ValueSampler { stride: stride.max(1), seen: 0, values: QueryValues::default() }
    }

    pub fn observe(&mut self, trace: &Value) {
        self.seen += 1;
        if !(self.seen - 1).is_multiple_of(self.stride) {
            return;
        }
        let text = |value: &Value| value.as_str().map(str::to_owned);
        let values = &mut self.values;
        if let (Some(user), Some(name)) = (text(&trace["user"]["name"]), text(&trace["trace_name"])) {
            values.pairs.push((user, name));
        }
        values.access_keys.extend(text(&trace["user"]["access_key_id"]));
        values.resource_ids.extend(text(&trace["resource_id"]));
        if trace["trace_name"] == "createOrder" {
            values.rare_words.extend(text(&trace["resource_id"]));
            let request: Value =
                trace["request"].as_str().and_then(|r| serde_json::from_str(r).ok()).unwrap_or_default();
            values.common_words.extend(request["product_id"].as_str().map(str::to_lowercase));
        }
    }

    pub fn values(&self) -> &QueryValues {
        &self.values
    }
}

/// A fingerprint of a page for comparing the two sides: the traces in order,
/// without `record_time` (each side stamps its own).
pub fn page_fingerprint(traces: &[Value]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for trace in traces {
        let mut trace = trace.clone();
        if let Some(fields) = trace.as_object_mut() {
            fields.remove("record_time");
        }
        trace.to_string().hash(&mut hasher);
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values() -> QueryValues {
        QueryValues {
            pairs: vec![("wei.wang".to_owned(), "createOrder".to_owned())],
            access_keys: vec!["AK1".to_owned(), "AK2".to_owned()],
            resource_ids: vec!["r1".to_owned()],
            rare_words: vec!["order-1".to_owned()],
            common_words: vec!["offi1".to_owned()],
        }
    }

    #[test]
    fn http_params_carry_the_window_the_page_size_the_filters_and_the_words() {
        let params = QueryKind::Selective.query(3, &values(), 100, 200).unwrap().http_params();
        assert_eq!(
            params,
            vec![
                ("trace_type", "system".to_owned()),
                ("from", "100".to_owned()),
                ("to", "200".to_owned()),
                ("limit", "10".to_owned()),
                ("user", "wei.wang".to_owned()),
                ("trace_name", "createOrder".to_owned()),
            ]
        );
        assert_eq!(QueryKind::BroadMaxPage.query(0, &values(), 1, 2).unwrap().http_params().len(), 4);
        let access = QueryKind::AccessKey.query(1, &values(), 1, 2).unwrap();
        assert_eq!(access.filters, vec![("access_key_id", "AK2".to_owned())]);
        let text = QueryKind::TextRare.query(0, &values(), 1, 2).unwrap().http_params();
        assert_eq!(text.last(), Some(&("q", "order-1".to_owned())));
        assert_eq!(text[3], ("limit", "200".to_owned()));
        assert!(QueryKind::Aggregation.query(0, &values(), 1, 2).is_none());
    }

    #[test]
    fn terms_with_spaces_become_quoted_phrases() {
        let terms = vec!["order-1".to_owned(), "billing service".to_owned()];
        assert_eq!(free_text_parameter(&terms), "order-1 \"billing service\"");
    }

    #[test]
    fn term_matching_is_case_insensitive_over_request_response_and_message() {
        let trace = json!({"request": "{\"product_id\":\"OFFI42\"}", "response": "ok", "message": "Billing Late"});
        for (terms, expected) in [
            (vec!["offi42"], true),
            (vec!["billing late"], true),
            (vec!["offi42", "OK"], true),
            (vec!["offi42", "absent"], false),
            (vec!["trace_id"], false),
        ] {
            let terms: Vec<String> = terms.into_iter().map(str::to_owned).collect();
            assert_eq!(matches_terms(&trace, &terms), expected, "{terms:?}");
        }
        assert!(!matches_terms(&json!({"request": null}), &["x".to_owned()]));
    }

    #[test]
    fn the_sampler_takes_every_stride_th_trace_and_words_from_orders() {
        let order = |i: usize| {
            json!({"trace_name": "createOrder", "resource_id": format!("order-{i}"),
                "request": "{\"product_id\":\"OFFI7\"}", "user": {"name": format!("u{i}"), "access_key_id": "AK"}})
        };
        let mut sampler = ValueSampler::new(3);
        for i in 0..7 {
            sampler.observe(&order(i));
        }
        let values = sampler.values();
        assert_eq!(values.rare_words, vec!["order-0", "order-3", "order-6"]);
        assert_eq!(values.common_words, vec!["offi7"; 3]);
        assert_eq!(values.pairs[1], ("u3".to_owned(), "createOrder".to_owned()));
        assert!(values.complete());
        assert!(!QueryValues::default().complete());
        let spread = values.spread(2);
        assert_eq!(spread.rare_words, vec!["order-0", "order-3"]);
    }

    #[test]
    fn fingerprints_ignore_record_time_but_not_content_or_order() {
        let a = json!({"trace_id": "a", "time": 1, "record_time": 5});
        let b = json!({"trace_id": "b", "time": 2, "record_time": 6});
        let a_later = json!({"trace_id": "a", "time": 1, "record_time": 9});
        assert_eq!(page_fingerprint(&[a.clone(), b.clone()]), page_fingerprint(&[a_later, b.clone()]));
        assert_ne!(page_fingerprint(&[a.clone(), b.clone()]), page_fingerprint(&[b, a]));
    }
}
