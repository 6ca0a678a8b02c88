//! The engine against a simple model: the traces of two projects, some sealed into segments, some still in
//! the memtable, some older than the retention; each SELECT's answer compared with the same computation
//! done in Rust over the caller's retained traces. Then tenant scoping, refusals and every limit.

use cts_model::{Trace, TraceRating, TraceType, UserInfo, CATALOG};
use cts_sql::{QueryResult, SqlEngine, SqlError, SqlLimits};
use cts_store::{Store, StoreConfig};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

const DAY_MS: i64 = 86_400_000;
const RETENTION_MS: i64 = 7 * DAY_MS;
const MINE: &str = "project-mine";
const THEIRS: &str = "project-theirs";
const USERS: [&str; 4] = ["alice", "bob", "carol", "dave"];

/// A store holding both projects' traces, its directory, and the traces the caller (`MINE`) may see.
struct Fixture {
    store: Store,
    /// `MINE`'s traces within the retention: the model.
    visible: Vec<Trace>,
    _dir: tempfile::TempDir,
}

fn trace(seed: usize, project: &str, time: i64) -> Trace {
    let operations: Vec<_> = CATALOG.all().iter().filter(|op| op.service_type == "marketplace").collect();
    let operation = operations[seed % operations.len()];
    let user = USERS[(seed / 3) % USERS.len()];
    Trace {
        trace_id: format!("{project}-{seed:06}"),
        trace_name: operation.trace_name.to_owned(),
        trace_rating: TraceRating::ALL[(seed / 7) % 3],
        trace_type: TraceType::ApiCall,
        service_type: operation.service_type.to_owned(),
        resource_type: operation.resource_type.to_owned(),
        resource_name: Some(format!("order-{}", seed % 13)),
        resource_id: Some(format!("id-{}", seed % 17)),
        project_id: project.to_owned(),
        resource_account_id: None,
        read_only: operation.read_only,
        tracker_name: Some("system".to_owned()),
        operation_id: None,
        source_ip: Some(format!("10.0.0.{}", seed % 250)),
        request: Some(format!("{{\"n\":{seed}}}")),
        response: None,
        code: Some(if seed.is_multiple_of(5) { "403" } else { "200" }.to_owned()),
        api_version: None,
        message: None,
        time,
        record_time: time + 5,
        request_id: None,
        location_info: None,
        endpoint: None,
        resource_url: None,
        enterprise_project_id: None,
        user: Some(UserInfo {
            name: Some(user.to_owned()),
            access_key_id: Some(format!("AK-{user}")),
            invoked_by: seed.is_multiple_of(4).then(|| vec!["console".to_owned(), "sdk".to_owned()]),
            ..UserInfo::default()
        }),
    }
}

/// 600 traces per project over 9 days (the oldest beyond the 7-day retention), half sealed in three
/// segments, half unsealed; the other project's traces interleaved in time with the caller's.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig { retention_ms: RETENTION_MS, ..StoreConfig::new(dir.path()) };
    let store = Store::open(config).unwrap();
    let now = cts_model::now_ms();
    let mut all = Vec::new();
    for seed in 0..600 {
        let time = now - 9 * DAY_MS + (seed as i64) * (9 * DAY_MS / 600) + 1;
        all.push(trace(seed, MINE, time));
        all.push(trace(seed + 10_000, THEIRS, time + 1));
    }
    for (index, chunk) in all.chunks(200).enumerate() {
        store.append_blocking(chunk.to_vec()).unwrap();
        if index < 3 {
            store.flush().unwrap();
        }
    }
    let cutoff = cts_model::now_ms() - RETENTION_MS;
    let visible = all.into_iter().filter(|t| t.project_id == MINE && t.time >= cutoff + 60_000).collect();
    Fixture { store, visible, _dir: dir }
}

/// One fixture for the tests that only read (a minute of slack keeps the retention edge out of them).
static SHARED: LazyLock<Fixture> = LazyLock::new(fixture);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn query_with(store: &Store, limits: SqlLimits, statement: &str) -> Result<QueryResult, SqlError> {
    let engine = SqlEngine::new(store.clone(), limits).unwrap();
    runtime().block_on(engine.query(MINE, statement))
}

/// The statement's rows over the shared fixture, restricted to traces newer than its retention slack.
fn rows(statement: &str) -> Vec<Vec<Value>> {
    let cutoff = SHARED.visible.first().map_or(0, |t| t.time);
    let statement = statement.replace("$VISIBLE", &format!("time >= {cutoff}"));
    let result = query_with(&SHARED.store, SqlLimits::default(), &statement).unwrap_or_else(|e| panic!("{e}"));
    assert!(!result.truncated);
    result.rows
}

fn counted<K: Ord>(keys: impl Iterator<Item = K>) -> BTreeMap<K, i64> {
    let mut counts = BTreeMap::new();
    keys.for_each(|key| *counts.entry(key).or_insert(0) += 1);
    counts
}

#[test]
fn aggregations_filters_and_ordering_match_the_model() {
    let visible = &SHARED.visible;
    assert!(visible.len() > 400 && visible.len() < 600, "some traces are beyond the retention");

    assert_eq!(rows("SELECT count(*) FROM traces WHERE $VISIBLE"), [[json!(visible.len())]]);

    let by_name = counted(visible.iter().map(|t| t.trace_name.clone()));
    let expected: Vec<Vec<Value>> = by_name.iter().map(|(name, n)| vec![json!(name), json!(n)]).collect();
    let sql = "SELECT trace_name, count(*) AS n FROM traces WHERE $VISIBLE GROUP BY trace_name ORDER BY trace_name";
    assert_eq!(rows(sql), expected);

    let bobs: Vec<Vec<Value>> = visible
        .iter()
        .filter(|t| t.user_name() == Some("bob"))
        .map(|t| vec![json!(t.trace_id), json!(t.user.as_ref().unwrap().access_key_id)])
        .collect();
    let sql = "SELECT trace_id, user_access_key_id FROM traces WHERE user_name = 'bob' AND $VISIBLE ORDER BY trace_id";
    assert_eq!(rows(sql), bobs);

    let mut newest: Vec<&Trace> = visible.iter().collect();
    newest.sort_by_key(|t| std::cmp::Reverse((t.time, t.trace_id.clone())));
    let expected: Vec<Vec<Value>> = newest[..7].iter().map(|t| vec![json!(t.trace_id), json!(t.time)]).collect();
    assert_eq!(rows("SELECT trace_id, time FROM traces ORDER BY time DESC, trace_id DESC LIMIT 7"), expected);

    let by_day = counted(visible.iter().map(|t| t.time.div_euclid(DAY_MS)));
    let expected: Vec<Vec<Value>> = by_day.iter().map(|(day, n)| vec![json!(day), json!(n)]).collect();
    let sql = "SELECT time / 86400000 AS day, count(*) FROM traces WHERE $VISIBLE GROUP BY day ORDER BY day";
    assert_eq!(rows(sql), expected);

    let by_date = counted(visible.iter().map(|t| {
        let day = chrono::DateTime::from_timestamp_millis(t.time - t.time.rem_euclid(DAY_MS)).unwrap();
        day.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    }));
    let expected: Vec<Vec<Value>> = by_date.iter().map(|(day, n)| vec![json!(day), json!(n)]).collect();
    let sql = "SELECT date_trunc('day', to_timestamp_millis(time)) AS day, count(*) FROM traces WHERE $VISIBLE \
               GROUP BY day ORDER BY day";
    assert_eq!(rows(sql), expected);

    let failures = visible.iter().filter(|t| t.code.as_deref() == Some("403") && t.user_name() == Some("carol"));
    let sql = "SELECT count(*) FROM traces WHERE code = '403' AND user_name = 'carol' AND $VISIBLE";
    assert_eq!(rows(sql), [[json!(failures.count())]]);
}

#[test]
fn time_windows_across_sealed_and_unsealed_traces_match_the_model() {
    let visible = &SHARED.visible;
    let times: Vec<i64> = visible.iter().map(|t| t.time).collect();
    for (from, to) in [(0, times.len() - 1), (10, 20), (100, 400), (times.len() - 50, times.len() - 1), (3, 3)] {
        let (low, high) = (times[from], times[to]);
        let expected = times.iter().filter(|&&time| time >= low && time <= high).count();
        assert_eq!(
            rows(&format!("SELECT count(*) FROM traces WHERE time BETWEEN {low} AND {high}")),
            [[json!(expected)]]
        );
        let expected = times.iter().filter(|&&time| time > low && time < high).count();
        let sql = format!("SELECT count(*) FROM traces WHERE {low} < time AND time < {high}");
        assert_eq!(rows(&sql), [[json!(expected)]]);
    }
    assert_eq!(rows("SELECT count(*) FROM traces WHERE time > 9223372036854775806"), [[json!(0)]]);
}

#[test]
fn another_projects_rows_never_appear() {
    let visible = SHARED.visible.len();
    assert_eq!(rows(&format!("SELECT count(*) FROM traces WHERE project_id = '{THEIRS}'")), [[json!(0)]]);
    let sql = format!("SELECT count(*) FROM traces WHERE $VISIBLE AND (project_id = '{THEIRS}' OR 1 = 1)");
    assert_eq!(rows(&sql), [[json!(visible)]]);
    assert_eq!(rows("SELECT DISTINCT project_id FROM traces"), [[json!(MINE)]]);
    assert_eq!(rows(&format!("SELECT count(*) FROM traces WHERE trace_id LIKE '{THEIRS}%'")), [[json!(0)]]);
    let sql =
        "SELECT count(*) FROM traces a JOIN traces b ON a.trace_id = b.trace_id WHERE a.project_id <> b.project_id";
    assert_eq!(rows(sql), [[json!(0)]]);
    for other_table in ["information_schema.tables", "datafusion.public.other", "'/etc/passwd'", "\"/etc/hosts\""] {
        let error = query_with(&SHARED.store, SqlLimits::default(), &format!("SELECT * FROM {other_table}"));
        assert!(matches!(error, Err(SqlError::Invalid(_))), "{other_table}: {error:?}");
    }
}

#[test]
fn retention_hides_old_traces_even_from_a_query_asking_for_them() {
    let cutoff = cts_model::now_ms() - RETENTION_MS;
    let sql = format!("SELECT count(*) FROM traces WHERE time < {}", cutoff - 60_000);
    assert_eq!(rows(&sql), [[json!(0)]]);
    let oldest = rows("SELECT min(time) FROM traces");
    assert!(oldest[0][0].as_i64().unwrap() >= cutoff);
}

#[test]
fn values_come_back_as_json_of_their_type() {
    let sample = SHARED.visible.iter().find(|t| t.user.as_ref().unwrap().invoked_by.is_some()).unwrap();
    let sql = format!(
        "SELECT trace_id, time, read_only, user_invoked_by, response, to_timestamp_millis(time) AS at, \
         time / 1000.0 AS seconds FROM traces WHERE trace_id = '{}'",
        sample.trace_id
    );
    let engine = SqlEngine::new(SHARED.store.clone(), SqlLimits::default()).unwrap();
    let result = runtime().block_on(engine.query(MINE, &sql)).unwrap();
    let types: Vec<&str> = result.columns.iter().map(|c| c.data_type.as_str()).collect();
    assert_eq!(types[..5], ["Utf8", "Int64", "Boolean", "List(Utf8)", "Utf8"]);
    let at = chrono::DateTime::from_timestamp_millis(sample.time).unwrap();
    assert_eq!(
        result.rows,
        [[
            json!(sample.trace_id),
            json!(sample.time),
            json!(sample.read_only),
            json!(["console", "sdk"]),
            Value::Null,
            json!(at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            json!(sample.time as f64 / 1000.0),
        ]]
    );
    let serialised = serde_json::to_value(&result).unwrap();
    assert_eq!(serialised["columns"][0], json!({"name": "trace_id", "type": "Utf8"}));
}

#[test]
fn anything_but_one_query_is_refused() {
    for statement in [
        "DROP TABLE traces",
        "DELETE FROM traces",
        "INSERT INTO traces (trace_id) VALUES ('x')",
        "UPDATE traces SET trace_name = 'x'",
        "CREATE TABLE copy AS SELECT * FROM traces",
        "CREATE VIEW v AS SELECT * FROM traces",
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
        "SET datafusion.execution.target_partitions = 1",
        "COPY traces TO '/tmp/traces.csv'",
        "COPY (SELECT 1) TO '/tmp/one.csv'",
        "SELECT 1; SELECT 2",
        "SELECT * INTO stolen FROM traces",
        "EXPLAIN SELECT * FROM traces",
    ] {
        match query_with(&SHARED.store, SqlLimits::default(), statement) {
            Err(SqlError::NotSelect(_)) => {}
            other => panic!("{statement}: {other:?}"),
        }
    }
    let error = query_with(&SHARED.store, SqlLimits::default(), "SELECT nope FROM traces").unwrap_err();
    assert!(matches!(&error, SqlError::Invalid(message) if message.contains("nope")), "{error}");
}

#[test]
fn rows_beyond_the_limit_are_cut_and_marked() {
    let limits = SqlLimits { max_rows: 5, ..SqlLimits::default() };
    let cut = query_with(&SHARED.store, limits, "SELECT trace_id FROM traces").unwrap();
    assert_eq!((cut.rows.len(), cut.truncated), (5, true));
    let exact = query_with(&SHARED.store, limits, "SELECT trace_id FROM traces LIMIT 5").unwrap();
    assert_eq!((exact.rows.len(), exact.truncated), (5, false));
}

#[test]
fn a_query_needing_more_memory_than_its_limit_fails_naming_the_limit() {
    let limits = SqlLimits { memory_bytes: cts_sql::MIN_MEMORY_BYTES, ..SqlLimits::default() };
    let sorted =
        "SELECT v, repeat('x', 1000) AS padding FROM generate_series(1, 200000) AS t(v) ORDER BY padding, v DESC";
    let error = query_with(&SHARED.store, limits, sorted).unwrap_err();
    assert!(matches!(error, SqlError::OutOfMemory { .. }), "{error:?}");
    assert_eq!(error.to_string(), "the query needs more memory than the SQL memory limit of 1 MiB");
    let paired = "SELECT a.request, b.request FROM traces a CROSS JOIN traces b ORDER BY 1, 2";
    let error = query_with(&SHARED.store, limits, paired).unwrap_err();
    assert!(matches!(error, SqlError::OutOfMemory { .. }), "{error:?}");
    assert!(query_with(&SHARED.store, SqlLimits::default(), &format!("{paired} LIMIT 3")).is_ok());
}

#[test]
fn a_query_running_past_its_time_limit_is_stopped_naming_the_limit() {
    let limits = SqlLimits { timeout: Duration::from_millis(200), ..SqlLimits::default() };
    let started = std::time::Instant::now();
    let endless = "SELECT count(*) FROM generate_series(1, 100000000000) AS t(v) WHERE v % 7 = 3";
    let error = query_with(&SHARED.store, limits, endless).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10), "stopped in {:?}", started.elapsed());
    assert_eq!(error.to_string(), "the query did not finish within the SQL time limit of 0.2 s");
}

#[test]
fn statements_longer_than_the_limit_are_refused_before_parsing() {
    let limits = SqlLimits { max_statement_bytes: 20, ..SqlLimits::default() };
    let error = query_with(&SHARED.store, limits, "SELECT count(*) FROM traces").unwrap_err();
    assert!(matches!(error, SqlError::TooLong { limit: 20 }), "{error:?}");
}

#[test]
fn queries_beyond_the_concurrency_limit_wait_their_turn() {
    let limits = SqlLimits { max_concurrent: 1, ..SqlLimits::default() };
    let engine = SqlEngine::new(SHARED.store.clone(), limits).unwrap();
    let results = runtime().block_on(async {
        let queries = (0..4).map(|_| engine.query(MINE, "SELECT count(*) FROM traces WHERE user_name = 'dave'"));
        futures_util::future::join_all(queries).await
    });
    let expected = SHARED.visible.iter().filter(|t| t.user_name() == Some("dave")).count();
    for result in results {
        let rows = result.unwrap().rows;
        assert!(rows[0][0].as_i64().unwrap() >= expected as i64);
    }
}

/// A random conjunction of filters as SQL and as a predicate on traces.
#[derive(Debug, Clone)]
struct Filter {
    user: Option<&'static str>,
    rating: Option<TraceRating>,
    code: Option<&'static str>,
    resource: Option<usize>,
    window: Option<(usize, usize)>,
}

fn filter() -> impl Strategy<Value = Filter> {
    (
        proptest::option::of(proptest::sample::select(USERS.to_vec())),
        proptest::option::of(proptest::sample::select(TraceRating::ALL.to_vec())),
        proptest::option::of(proptest::sample::select(vec!["200", "403"])),
        proptest::option::of(0usize..13),
        proptest::option::of((0usize..400, 0usize..200)),
    )
        .prop_map(|(user, rating, code, resource, window)| Filter { user, rating, code, resource, window })
}

impl Filter {
    fn bounds(&self, times: &[i64]) -> Option<(i64, i64)> {
        self.window.map(|(start, length)| (times[start], times[(start + length).min(times.len() - 1)]))
    }

    fn sql(&self, times: &[i64]) -> String {
        let mut conditions = vec![format!("time >= {}", times[0])];
        conditions.extend(self.user.map(|user| format!("user_name = '{user}'")));
        conditions.extend(self.rating.map(|rating| format!("trace_rating = '{}'", rating.as_str())));
        conditions.extend(self.code.map(|code| format!("code = '{code}'")));
        conditions.extend(self.resource.map(|n| format!("resource_name = 'order-{n}'")));
        conditions.extend(self.bounds(times).map(|(low, high)| format!("time BETWEEN {low} AND {high}")));
        format!("SELECT trace_id FROM traces WHERE {} ORDER BY trace_id", conditions.join(" AND "))
    }

    fn matches(&self, trace: &Trace, times: &[i64]) -> bool {
        self.user.is_none_or(|user| trace.user_name() == Some(user))
            && self.rating.is_none_or(|rating| trace.trace_rating == rating)
            && self.code.is_none_or(|code| trace.code.as_deref() == Some(code))
            && self.resource.is_none_or(|n| trace.resource_name.as_deref() == Some(&format!("order-{n}")))
            && self.bounds(times).is_none_or(|(low, high)| trace.time >= low && trace.time <= high)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_filters_select_what_the_model_selects(filter in filter()) {
        let visible = &SHARED.visible;
        let times: Vec<i64> = visible.iter().map(|t| t.time).collect();
        let mut expected: Vec<Vec<Value>> =
            visible.iter().filter(|t| filter.matches(t, &times)).map(|t| vec![json!(t.trace_id)]).collect();
        expected.sort_by(|a, b| a[0].as_str().cmp(&b[0].as_str()));
        prop_assert_eq!(rows(&filter.sql(&times)), expected);
    }
}
