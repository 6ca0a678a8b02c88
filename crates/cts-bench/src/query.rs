//! The ListTraces pages the benchmark times, in one shape both sides run:
//! cts through its HTTP API, PostgreSQL through SQL.

use serde::Serialize;
use std::hash::{Hash, Hasher};

/// A first page of management traces in a time window, with exact-match filters.
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// ListTraces filter parameters (`user`, `trace_name`, ...) and their values.
    pub filters: Vec<(&'static str, String)>,
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
        params
    }
}

/// The kinds of page timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryKind {
    /// `user` + `trace_name` over the last 7 days, a page of 10: one user's operations of one kind.
    Selective,
    /// No filter over the last 7 days, a page of 10: the console's first screen.
    Broad,
    /// No filter over the last 7 days, a page of 200 (the maximum).
    BroadMaxPage,
}

impl QueryKind {
    pub const ALL: [QueryKind; 3] = [QueryKind::Selective, QueryKind::Broad, QueryKind::BroadMaxPage];

    pub fn label(self) -> &'static str {
        match self {
            QueryKind::Selective => "selective (user+trace_name, 10)",
            QueryKind::Broad => "broad (no filter, 10)",
            QueryKind::BroadMaxPage => "broad (no filter, 200)",
        }
    }

    /// The query of this kind for the `index`-th run; selective runs cycle through `pairs`
    /// of (user name, trace name) that occur in the workload.
    pub fn query(self, index: usize, pairs: &[(String, String)], from_ms: i64, to_ms: i64) -> ListQuery {
        match self {
            QueryKind::Selective => {
                let (user, trace_name) = &pairs[index % pairs.len()];
                ListQuery {
                    filters: vec![("user", user.clone()), ("trace_name", trace_name.clone())],
                    from_ms,
                    to_ms,
                    limit: 10,
                }
            }
            QueryKind::Broad => ListQuery { filters: Vec::new(), from_ms, to_ms, limit: 10 },
            QueryKind::BroadMaxPage => ListQuery { filters: Vec::new(), from_ms, to_ms, limit: 200 },
        }
    }
}

/// A fingerprint of a page for comparing the two sides: the traces in order,
/// without `record_time` (each side stamps its own).
pub fn page_fingerprint(traces: &[serde_json::Value]) -> u64 {
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

    #[test]
    fn http_params_carry_the_window_the_page_size_and_the_filters() {
        let pairs = vec![("wei.wang".to_owned(), "createOrder".to_owned())];
        let params = QueryKind::Selective.query(3, &pairs, 100, 200).http_params();
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
        assert_eq!(QueryKind::BroadMaxPage.query(0, &pairs, 1, 2).http_params().len(), 4);
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
