use super::*;
use cts_model::{TraceType, UserInfo};
use cts_store::StoreConfig;
use proptest::prelude::*;

const NOW: i64 = 1_800_000_000_000;

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn parse(list: &[(&str, &str)]) -> Result<ListTraces, QueryError> {
    ListTraces::parse("p1", &pairs(list), NOW)
}

#[test]
fn defaults_are_system_traces_of_the_last_hour_ten_per_page() {
    let query = parse(&[]).unwrap();
    let query = query.query();
    assert_eq!((query.data, query.limit, query.from_ms, query.to_ms), (false, 10, NOW - 3_600_000, NOW));
    assert_eq!(query.project_id, "p1");
    assert_eq!(query.filters, Filters::default());
}

#[test]
fn invalid_parameters_are_refused_naming_the_parameter() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("limit", "0")], "limit"),
        (&[("limit", "201")], "limit"),
        (&[("limit", "ten")], "limit"),
        (&[("limit", "-1")], "limit"),
        (&[("trace_type", "System")], "trace_type"),
        (&[("from", "10"), ("to", "9")], "from"),
        (&[("from", "yesterday")], "from"),
        (&[("to", "1.5")], "to"),
        (&[("trace_rating", "fatal")], "trace_rating"),
        (&[("tracker_name", "mytracker")], "tracker_name"),
        (&[("user", "a"), ("user", "b")], "user"),
        (&[("ignore_case", "yes")], "ignore_case"),
        (&[("q", "\"unclosed phrase")], "q"),
        (&[("q", "a b c d e f g h i")], "q"),
    ];
    for (list, name) in cases {
        match parse(list) {
            Err(QueryError::InvalidParameter { name: got, .. }) => assert_eq!(got, *name, "{list:?}"),
            other => panic!("{list:?}: expected an invalid {name}, got {other:?}"),
        }
    }
}

#[test]
fn valid_parameters_become_the_store_query() {
    let query = parse(&[
        ("trace_type", "data"),
        ("limit", "200"),
        ("from", "5"),
        ("to", "5"),
        ("tracker_name", "obs-tracker"),
        ("service_type", "OBS"),
        ("user", "alice"),
        ("resource_id", "r1"),
        ("resource_name", "bucket"),
        ("resource_type", "object"),
        ("trace_name", "getObject"),
        ("trace_rating", "warning"),
        ("access_key_id", "AK"),
        ("enterprise_project_id", "0"),
        ("some_future_parameter", "x"),
        ("resource_url", ""),
    ])
    .unwrap();
    let expected = TraceQuery {
        project_id: "p1".into(),
        data: true,
        tracker_name: Some("obs-tracker".into()),
        from_ms: 5,
        to_ms: 5,
        filters: Filters {
            service_type: Some("OBS".into()),
            user: Some("alice".into()),
            resource_id: Some("r1".into()),
            resource_name: Some("bucket".into()),
            resource_type: Some("object".into()),
            trace_name: Some("getObject".into()),
            trace_rating: Some(TraceRating::Warning),
            access_key_id: Some("AK".into()),
            enterprise_project_id: Some("0".into()),
            trace_id: None,
            ignore_case: false,
            text: Vec::new(),
        },
        after: None,
        limit: 200,
    };
    assert_eq!(query.query(), &expected);
    assert_eq!(parse(&[("tracker_name", "system")]).unwrap().query().tracker_name, None);
}

#[test]
fn a_trailing_asterisk_asks_for_a_prefix_unless_escaped() {
    let cases = [
        ("order-2026*", Pattern::prefix("order-2026")),
        ("*", Pattern::prefix("")),
        ("order-2026", Pattern::from("order-2026")),
        ("a*b", Pattern::from("a*b")),
        ("five\\*", Pattern::from("five*")),
    ];
    for (value, expected) in cases {
        let query = parse(&[("resource_name", value), ("user", value)]).unwrap();
        assert_eq!(query.query().filters.resource_name.as_ref(), Some(&expected), "{value}");
        assert_eq!(query.query().filters.user.as_ref(), Some(&expected), "{value}");
    }
}

#[test]
fn free_text_is_split_into_words_and_quoted_phrases() {
    let cases: &[(&str, &[&str])] = &[
        ("denied", &["denied"]),
        ("  order-2026   Denied ", &["order-2026", "Denied"]),
        ("\"access denied\" ord", &["access denied", "ord"]),
        ("a\"b c\"", &["a", "b c"]),
        ("\"\"", &[]),
    ];
    for (q, terms) in cases {
        let query = parse(&[("q", q), ("ignore_case", "true")]).unwrap();
        assert_eq!(query.query().filters.text, *terms, "{q}");
        assert!(query.query().filters.ignore_case);
    }
    let longest = "x".repeat(MAX_TERM_CHARS);
    assert_eq!(parse(&[("q", &longest)]).unwrap().query().filters.text, std::slice::from_ref(&longest));
    assert!(parse(&[("q", &format!("{longest}x"))]).is_err());
}

#[test]
fn trace_id_overrides_the_other_filters_and_the_window() {
    let query = parse(&[("trace_id", "t-1"), ("user", "bob"), ("from", "1"), ("to", "2")]).unwrap();
    let query = query.query();
    assert_eq!(query.filters, Filters { trace_id: Some("t-1".into()), ..Filters::default() });
    assert_eq!((query.from_ms, query.to_ms), (i64::MIN, i64::MAX));
}

fn trace(seed: u64, time: i64) -> Trace {
    let pick = |values: &[&str], salt: u64| values[((seed / salt) % values.len() as u64) as usize].to_owned();
    Trace {
        trace_id: format!("00000000-0000-4000-8000-{seed:012x}"),
        trace_name: pick(&["createOrder", "cancelOrder"], 1),
        trace_rating: TraceRating::ALL[(seed % 3) as usize],
        trace_type: if seed.is_multiple_of(7) { TraceType::ObsApi } else { TraceType::ApiCall },
        service_type: "marketplace".into(),
        resource_type: "Order".into(),
        resource_name: None,
        resource_id: Some(pick(&["o1", "o2", "o3"], 2)),
        project_id: pick(&["p1", "p2"], 5),
        resource_account_id: None,
        read_only: false,
        tracker_name: seed.is_multiple_of(7).then(|| "obs".to_owned()),
        operation_id: None,
        source_ip: None,
        request: seed.is_multiple_of(3).then(|| format!("{{\"reason\":\"Access DENIED {seed}\"}}")),
        response: None,
        code: None,
        api_version: None,
        message: None,
        time,
        record_time: time,
        request_id: None,
        location_info: None,
        endpoint: None,
        resource_url: None,
        enterprise_project_id: None,
        user: Some(UserInfo { name: Some(pick(&["alice", "bob"], 3)), ..UserInfo::default() }),
    }
}

fn open_store(dir: &std::path::Path, memtable_max_traces: usize) -> Store {
    Store::open(StoreConfig { memtable_max_traces, ..StoreConfig::new(dir) }).unwrap()
}

#[test]
fn pages_carry_a_marker_until_the_last_and_an_unknown_marker_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path(), 1000);
    let now = cts_model::now_ms();
    let traces: Vec<Trace> =
        (1..=25).map(|i| trace(i * 10, now - 1000 * i as i64)).filter(|t| t.project_id == "p1").collect();
    store.append_blocking(traces.clone()).unwrap();
    let management: Vec<&Trace> = traces.iter().filter(|t| !t.is_data()).collect();
    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let mut list = vec![("limit".to_owned(), "4".to_owned())];
        list.extend(next.iter().map(|marker| ("next".to_owned(), marker.clone())));
        let page = ListTraces::parse("p1", &list, now).unwrap().run(&store).unwrap();
        assert_eq!(page.meta_data.count, page.traces.len());
        seen.extend(page.traces.iter().map(|t| t.trace_id.clone()));
        match page.meta_data.marker {
            Some(marker) => {
                assert_eq!(page.traces.len(), 4);
                assert_eq!(Some(&marker), page.traces.last().map(|t| &t.trace_id));
                next = Some(marker);
            }
            None => break,
        }
    }
    assert_eq!(seen, management.iter().map(|t| t.trace_id.clone()).collect::<Vec<_>>());
    let unknown = ListTraces::parse("p1", &pairs(&[("next", "nope")]), now).unwrap().run(&store);
    assert!(matches!(unknown, Err(QueryError::UnknownMarker(m)) if m == "nope"));
    let json = serde_json::to_value(ListTraces::parse("p2", &[], now).unwrap().run(&store).unwrap()).unwrap();
    assert_eq!(json, serde_json::json!({"traces": [], "meta_data": {"count": 0, "marker": null}}));
}

/// The reference: every matching trace of the model, newest first.
fn model_page(model: &[Trace], request: &ListTraces, after: Option<&SortKey>) -> Vec<Trace> {
    let q = request.query();
    let mut matching: Vec<Trace> = model
        .iter()
        .filter(|t| {
            t.project_id == q.project_id
                && t.is_data() == q.data
                && t.time >= q.from_ms
                && t.time <= q.to_ms
                && model_like(q, q.filters.user.as_ref(), t.user_name())
                && model_like(q, q.filters.trace_name.as_ref(), Some(&t.trace_name))
                && q.filters.text.iter().all(|term| {
                    t.request.as_ref().is_some_and(|text| text.to_lowercase().contains(&term.to_lowercase()))
                })
                && after.is_none_or(|a| SortKey::of(t) < *a)
        })
        .cloned()
        .collect();
    matching.sort_by_key(|t| std::cmp::Reverse(SortKey::of(t)));
    matching.truncate(q.limit);
    matching
}

/// Whether `value` matches `pattern` as the query asks (prefix, case).
fn model_like(q: &TraceQuery, pattern: Option<&Pattern>, value: Option<&str>) -> bool {
    let fold = |text: &str| if q.filters.ignore_case { text.to_lowercase() } else { text.to_owned() };
    match (pattern, value) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(pattern), Some(value)) if pattern.prefix => fold(value).starts_with(&fold(&pattern.value)),
        (Some(pattern), Some(value)) => fold(value) == fold(&pattern.value),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Paging while traces arrive (some newer, some older than the page being read, with equal times
    /// to exercise the trace_id tie-break) never skips or repeats a trace and matches the model page by page.
    #[test]
    fn paging_is_stable_while_traces_arrive(
        initial in 0u64..120,
        limit in 1usize..8,
        filter in 0u8..7,
        arrivals in proptest::collection::vec(0u64..6, 1..40),
        seal_every in 10usize..60,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path(), seal_every);
        let now = cts_model::now_ms();
        let time_of = |seed: u64| now - 1_000_000 + (seed * 7919 % 50) as i64 * 1000;
        let mut model: Vec<Trace> = (0..initial).map(|seed| trace(seed, time_of(seed))).collect();
        store.append_blocking(model.clone()).unwrap();
        let mut list = pairs(&[("limit", &limit.to_string()), ("from", &(now - 2_000_000).to_string()), ("to", &now.to_string())]);
        match filter {
            1 => list.push(("user".into(), "alice".into())),
            2 => list.push(("trace_name".into(), "cancelOrder".into())),
            3 => list.push(("trace_type".into(), "data".into())),
            4 => list.push(("trace_name".into(), "cancel*".into())),
            5 => list.extend(pairs(&[("user", "ALICE"), ("ignore_case", "true")])),
            6 => list.push(("q".into(), "denied".into())),
            _ => {}
        }
        let mut next_seed = 1000;
        let mut seen: Vec<Trace> = Vec::new();
        let mut marker: Option<String> = None;
        let mut arrivals = arrivals.into_iter();
        loop {
            let mut request = list.clone();
            request.extend(marker.iter().map(|m| ("next".to_owned(), m.clone())));
            let request = ListTraces::parse("p1", &request, now).unwrap();
            let after = seen.last().map(SortKey::of);
            let expected = model_page(&model, &request, after.as_ref());
            let page = request.run(&store).unwrap();
            prop_assert_eq!(&page.traces, &expected);
            seen.extend(page.traces);
            marker = page.meta_data.marker;
            if marker.is_none() {
                break;
            }
            let batch: Vec<Trace> = (0..arrivals.next().unwrap_or(0))
                .map(|_| { next_seed += 1; trace(next_seed, time_of(next_seed)) })
                .collect();
            store.append_blocking(batch.clone()).unwrap();
            model.extend(batch);
        }
        let keys: Vec<SortKey> = seen.iter().map(SortKey::of).collect();
        prop_assert!(keys.windows(2).all(|pair| pair[0] > pair[1]), "strictly newest first, no repeats");
        // Nothing that existed at the start and matches was skipped.
        let first_request = ListTraces::parse("p1", &list, now).unwrap();
        let all_initial = model_page(&model[..initial as usize], &ListTraces { query: TraceQuery { limit: usize::MAX, ..first_request.query().clone() }, marker: None }, None);
        for trace in all_initial {
            prop_assert!(seen.contains(&trace), "skipped {}", trace.trace_id);
        }
    }
}
