//! Store-level tests, and the trace and query generators the module tests share.

use crate::wal::{SinkFactory, WalSink};
use crate::*;
use cts_model::{Attributes, BaseUser, SessionContext, Trace, TraceRating, TraceType, UserInfo, UserType};
use std::io;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

/// The time the generated traces are spread behind (well inside the default retention).
pub(crate) static BASE_TIME: LazyLock<i64> = LazyLock::new(|| cts_model::now_ms() - 3_600_000);

/// A deterministic pseudo-random sequence (splitmix64).
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn pick<'a>(&mut self, values: &[&'a str]) -> &'a str {
        values[(self.next() % values.len() as u64) as usize]
    }

    pub(crate) fn maybe(&mut self, values: &[&str]) -> Option<String> {
        (!self.next().is_multiple_of(4)).then(|| self.pick(values).to_owned())
    }
}

pub(crate) const PROJECTS: &[&str] = &["p1", "p2"];
pub(crate) const TRACKERS: &[&str] = &["t1", "t2"];
pub(crate) const SERVICES: &[&str] = &["ECS", "OBS", "marketplace"];
pub(crate) const USERS: &[&str] = &["alice", "bob", "carol"];
pub(crate) const RESOURCE_IDS: &[&str] = &["r1", "r2", "r3"];
pub(crate) const RESOURCE_NAMES: &[&str] = &["web", "db"];
pub(crate) const RESOURCE_TYPES: &[&str] = &["Order", "Server"];
pub(crate) const TRACE_NAMES: &[&str] = &["createOrder", "deleteServer", "getObject"];
pub(crate) const ACCESS_KEYS: &[&str] = &["AK1", "AK2"];
pub(crate) const ENTERPRISE_PROJECTS: &[&str] = &["0", "ep1"];

/// A trace determined by `seed`: ids are unique per seed, every other field comes from a small pool
/// (so filters match often), and the optional objects take every shape.
pub(crate) fn make_trace(seed: u64) -> Trace {
    let mut rng = Rng::new(seed);
    let trace_type = TraceType::ALL[(rng.next() % 5) as usize];
    let user = (!rng.next().is_multiple_of(5)).then(|| UserInfo {
        id: rng.maybe(&["u1", "u2"]),
        name: rng.maybe(USERS),
        user_name: rng.maybe(&["alice@example.com"]),
        domain: (!rng.next().is_multiple_of(3))
            .then(|| BaseUser { id: rng.maybe(&["d1"]), name: rng.maybe(&["acme"]) }),
        account_id: rng.maybe(&["acc1"]),
        access_key_id: rng.maybe(ACCESS_KEYS),
        principal_urn: rng.maybe(&["iam::d1:user:alice"]),
        principal_id: rng.maybe(&["pid"]),
        principal_is_root_user: rng.maybe(&["true", "false"]),
        user_type: (rng.next().is_multiple_of(2)).then_some(UserType::User),
        invoked_by: match rng.next() % 3 {
            0 => None,
            1 => Some(Vec::new()),
            _ => Some(vec!["service.console".to_owned(), "x".to_owned()]),
        },
        session_context: match rng.next() % 3 {
            0 => None,
            1 => Some(SessionContext { attributes: None }),
            _ => Some(SessionContext {
                attributes: Some(Attributes {
                    created_at: rng.maybe(&["2026-01-01T00:00:00Z"]),
                    mfa_authenticated: None,
                }),
            }),
        },
    });
    Trace {
        trace_id: format!("{:08x}-0000-4000-8000-{:012x}", rng.next() as u32, seed),
        trace_name: rng.pick(TRACE_NAMES).to_owned(),
        trace_rating: TraceRating::ALL[(rng.next() % 3) as usize],
        trace_type,
        service_type: rng.pick(SERVICES).to_owned(),
        resource_type: rng.pick(RESOURCE_TYPES).to_owned(),
        resource_name: rng.maybe(RESOURCE_NAMES),
        resource_id: rng.maybe(RESOURCE_IDS),
        project_id: rng.pick(PROJECTS).to_owned(),
        resource_account_id: rng.maybe(&["acc1"]),
        read_only: rng.next().is_multiple_of(2),
        tracker_name: trace_type.is_data().then(|| rng.pick(TRACKERS).to_owned()),
        operation_id: rng.maybe(&["op1"]),
        source_ip: rng.maybe(&["203.0.113.7"]),
        request: rng.maybe(&["{\"a\":1}", "{\"order\":\"Ord-2026-7\"}", "{\"note\":\"Straße\"}"]),
        response: rng.maybe(&["{\"ok\":true}", "{\"error\":\"Denied\"}"]),
        code: rng.maybe(&["200", "404", "500"]),
        api_version: rng.maybe(&["v3"]),
        message: rng.maybe(&["done", "Order DENIED"]),
        time: *BASE_TIME + (rng.next() % 40) as i64 * 1000,
        record_time: *BASE_TIME + 100_000,
        request_id: rng.maybe(&["req-1"]),
        location_info: rng.maybe(&["here"]),
        endpoint: rng.maybe(&["https://example.com"]),
        resource_url: rng.maybe(&["https://example.com/r"]),
        enterprise_project_id: rng.maybe(ENTERPRISE_PROJECTS),
        user,
    }
}

/// A query determined by `seed`: random project, kind, tracker, filters (including values no trace
/// has) and window; no paging key.
pub(crate) fn make_query(seed: u64, limit: usize) -> TraceQuery {
    let mut rng = Rng::new(seed ^ 0xABCD);
    let ignore_case = rng.next().is_multiple_of(4);
    let mut sometimes = |values: &[&str]| (rng.next().is_multiple_of(3)).then(|| rng.pick(values).to_owned());
    let trace_rating = sometimes(&["normal", "warning", "incident"]).map(|r| r.parse().unwrap());
    // A pool value, a prefix of one (possibly empty), or either in upper case.
    let mut pattern = |values: &[&str]| -> Option<Pattern> {
        let value = rng.next().is_multiple_of(3).then(|| rng.pick(values))?;
        let shape = rng.next();
        let value = if shape.is_multiple_of(5) { value.to_uppercase() } else { value.to_owned() };
        Some(match shape % 3 {
            0 => Pattern::prefix(&value[..(shape as usize / 3) % (value.len() + 1)]),
            _ => Pattern::from(value),
        })
    };
    let filters = Filters {
        service_type: pattern(SERVICES),
        user: pattern(USERS),
        resource_id: pattern(&["r1", "r2", "nope"]),
        resource_name: pattern(RESOURCE_NAMES),
        resource_type: pattern(RESOURCE_TYPES),
        trace_name: pattern(TRACE_NAMES),
        trace_rating,
        access_key_id: pattern(ACCESS_KEYS),
        enterprise_project_id: pattern(ENTERPRISE_PROJECTS),
        trace_id: None,
        ignore_case,
        text: (0..rng.next() % 4 / 2)
            .map(|_| rng.pick(&["ord", "DENIED", "ok\"", "2026-7", "ß", "none"]).to_owned())
            .collect(),
    };
    let data = rng.next().is_multiple_of(2);
    let tracker_name = (data && rng.next().is_multiple_of(2)).then(|| rng.pick(TRACKERS).to_owned());
    let from_ms = *BASE_TIME + (rng.next() % 20) as i64 * 1000 - 10_000;
    let to_ms = from_ms + (rng.next() % 40) as i64 * 1000;
    TraceQuery {
        project_id: rng.pick(PROJECTS).to_owned(),
        data,
        tracker_name,
        from_ms,
        to_ms,
        filters,
        after: None,
        limit,
    }
}

/// The reference semantics of a query, written independently of the store's plan.
pub(crate) fn model_matches(query: &TraceQuery, trace: &Trace) -> bool {
    let f = &query.filters;
    let equal = |wanted: &Option<String>, actual: Option<&str>| wanted.as_deref().is_none_or(|w| Some(w) == actual);
    let fold = |text: &str| if f.ignore_case { text.to_lowercase() } else { text.to_owned() };
    let like = |wanted: &Option<Pattern>, actual: Option<&str>| match (wanted, actual) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(wanted), Some(actual)) => match wanted.prefix {
            true => fold(actual).starts_with(&fold(&wanted.value)),
            false => fold(actual) == fold(&wanted.value),
        },
    };
    let texts = [&trace.request, &trace.response, &trace.message];
    let has_text = |term: &String| {
        texts.iter().any(|text| text.as_ref().is_some_and(|text| text.to_lowercase().contains(&term.to_lowercase())))
    };
    trace.project_id == query.project_id
        && trace.trace_type.is_data() == query.data
        && equal(&query.tracker_name, trace.tracker_name.as_deref())
        && trace.time >= query.from_ms
        && trace.time <= query.to_ms
        && query.after.as_ref().is_none_or(|after| SortKey::of(trace) < *after)
        && like(&f.service_type, Some(&trace.service_type))
        && like(&f.user, trace.user.as_ref().and_then(|u| u.name.as_deref()))
        && like(&f.resource_id, trace.resource_id.as_deref())
        && like(&f.resource_name, trace.resource_name.as_deref())
        && like(&f.resource_type, Some(&trace.resource_type))
        && like(&f.trace_name, Some(&trace.trace_name))
        && f.trace_rating.is_none_or(|r| r == trace.trace_rating)
        && like(&f.access_key_id, trace.user.as_ref().and_then(|u| u.access_key_id.as_deref()))
        && like(&f.enterprise_project_id, trace.enterprise_project_id.as_deref())
        && equal(&f.trace_id, Some(&trace.trace_id))
        && f.text.iter().all(has_text)
}

pub(crate) fn model_query(traces: &[Trace], query: &TraceQuery) -> Vec<Trace> {
    let mut matching: Vec<Trace> = traces.iter().filter(|t| model_matches(query, t)).cloned().collect();
    matching.sort_by_key(|t| std::cmp::Reverse(SortKey::of(t)));
    matching.truncate(query.limit);
    matching
}

pub(crate) fn config(dir: &Path, memtable_max_traces: usize) -> StoreConfig {
    StoreConfig { memtable_max_traces, ..StoreConfig::new(dir) }
}

fn everything(project: &str, data: bool) -> TraceQuery {
    TraceQuery {
        project_id: project.to_owned(),
        data,
        tracker_name: None,
        from_ms: 0,
        to_ms: i64::MAX,
        filters: Filters::default(),
        after: None,
        limit: usize::MAX,
    }
}

/// Every trace of the store, per the model's order.
pub(crate) fn all_traces(store: &Store) -> Vec<Trace> {
    let mut all = Vec::new();
    for project in PROJECTS {
        for data in [false, true] {
            all.extend(store.query(&everything(project, data)).unwrap());
        }
    }
    all.sort_by_key(SortKey::of);
    all
}

fn sorted(mut traces: Vec<Trace>) -> Vec<Trace> {
    traces.sort_by_key(SortKey::of);
    traces
}

#[test]
fn appended_traces_are_queryable_at_once_and_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let traces: Vec<Trace> = (0..50).map(make_trace).collect();
    {
        let store = Store::open(config(dir.path(), 1000)).unwrap();
        let outcome = store.append_blocking(traces.clone()).unwrap();
        assert_eq!(outcome, AppendOutcome { stored: 50, duplicates: 0 });
        assert_eq!(all_traces(&store), sorted(traces.clone()));
    }
    let store = Store::open(config(dir.path(), 1000)).unwrap();
    assert_eq!(all_traces(&store), sorted(traces));
    assert_eq!(store.stats().memtable_traces, 50);
}

#[test]
fn async_append_works_inside_a_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path(), 1000)).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let outcome = runtime.block_on(store.append(vec![make_trace(1), make_trace(1)])).unwrap();
    assert_eq!(outcome, AppendOutcome { stored: 1, duplicates: 1 });
}

#[test]
fn a_crash_without_flush_or_drop_loses_no_acknowledged_trace() {
    let dir = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path(), 64)).unwrap();
    let traces: Vec<Trace> = (0..300).map(make_trace).collect();
    for chunk in traces.chunks(37) {
        store.append_blocking(chunk.to_vec()).unwrap();
    }
    // The files as a crash would leave them: copied while the store runs (sealing may be mid-way).
    copy_dir(&dir.path().join("store"), &crashed.path().join("store"));
    std::fs::remove_file(crashed.path().join("store/LOCK")).unwrap();
    let reopened = Store::open(config(crashed.path(), 64)).unwrap();
    assert_eq!(all_traces(&reopened), sorted(traces));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            // A file may vanish while copying (a WAL deleted after its segment): the crash happened later.
            let _ = std::fs::copy(entry.path(), target);
        }
    }
}

#[test]
fn retried_batches_never_duplicate_across_memtable_segments_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let traces: Vec<Trace> = (0..200).map(make_trace).collect();
    {
        let store = Store::open(config(dir.path(), 50)).unwrap();
        assert_eq!(store.append_blocking(traces[..120].to_vec()).unwrap().stored, 120);
        store.flush().unwrap();
        // Partly in segments, partly new, and repeated within the batch.
        let mut retry = traces[100..160].to_vec();
        retry.extend_from_slice(&traces[150..160]);
        assert_eq!(store.append_blocking(retry).unwrap(), AppendOutcome { stored: 40, duplicates: 30 });
    }
    let store = Store::open(config(dir.path(), 50)).unwrap();
    assert_eq!(store.append_blocking(traces.clone()).unwrap(), AppendOutcome { stored: 40, duplicates: 160 });
    assert_eq!(all_traces(&store), sorted(traces.clone()));
    store.flush().unwrap();
    let stats = store.stats();
    // The 120 sealed before the restart; the 40 recovered from the WAL, which this batch's 40 new
    // traces would have pushed past the memtable's 50, so the batch started a memtable of its own.
    assert_eq!((stats.segments, stats.memtable_traces), (3, 0));
    assert_eq!(store.append_blocking(traces.clone()).unwrap().duplicates, 200);
    for trace in &traces {
        assert_eq!(store.get(&trace.project_id, &trace.trace_id).unwrap().as_ref(), Some(trace));
    }
    let other_project = if traces[0].project_id == "p1" { "p2" } else { "p1" };
    assert_eq!(store.get(other_project, &traces[0].trace_id).unwrap(), None);
}

#[test]
fn the_same_trace_id_in_two_projects_is_two_traces() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path(), 1000)).unwrap();
    let first = make_trace(7);
    let second = Trace { project_id: if first.project_id == "p1" { "p2" } else { "p1" }.to_owned(), ..first.clone() };
    assert_eq!(store.append_blocking(vec![first, second]).unwrap().stored, 2);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
    /// Every filter and combination, across memtable, sealing memtables and segments, against the model.
    #[test]
    fn queries_match_the_model(count in 1u64..400, seal_every in 16usize..200, first_seed in 0u64..1000) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(config(dir.path(), seal_every)).unwrap();
        let traces: Vec<Trace> = (first_seed..first_seed + count).map(make_trace).collect();
        for chunk in traces.chunks(50) {
            store.append_blocking(chunk.to_vec()).unwrap();
        }
        for seed in 0..40 {
            let mut query = make_query(seed + first_seed, [1, 3, 10, 1000][(seed % 4) as usize]);
            proptest::prop_assert_eq!(store.query(&query).unwrap(), model_query(&traces, &query), "{:?}", query);
            // The same query by trace id, and after a paging key.
            let probe = &traces[(seed % count) as usize];
            query.filters.trace_id = Some(probe.trace_id.clone());
            proptest::prop_assert_eq!(store.query(&query).unwrap(), model_query(&traces, &query));
            query.filters.trace_id = None;
            query.after = Some(SortKey::of(probe));
            proptest::prop_assert_eq!(store.query(&query).unwrap(), model_query(&traces, &query));
        }
    }
}

#[test]
fn retention_hides_old_traces_and_drops_whole_expired_segments() {
    let dir = tempfile::tempdir().unwrap();
    let hour = 3_600_000;
    let store = Store::open(StoreConfig { retention_ms: 10 * hour, ..config(dir.path(), 10_000) }).unwrap();
    let now = cts_model::now_ms();
    let at = |seed: u64, time: i64| Trace { time, project_id: "p1".into(), ..make_trace(seed) };
    let old: Vec<Trace> = (0..10).map(|i| at(i, now - 20 * hour + i as i64)).collect();
    let mixed: Vec<Trace> = (10..20).map(|i| at(i, now - 11 * hour + (i as i64 - 10) * hour + hour / 2)).collect();
    store.append_blocking(old).unwrap();
    store.flush().unwrap();
    store.append_blocking(mixed.clone()).unwrap();
    store.flush().unwrap();
    let visible: Vec<Trace> =
        [false, true].iter().flat_map(|&data| store.query(&everything("p1", data)).unwrap()).collect();
    assert_eq!(sorted(visible), sorted(mixed.iter().filter(|t| t.time >= now - 10 * hour).cloned().collect()));
    assert_eq!(store.stats().segments, 2);
    assert_eq!(store.enforce_retention(now).unwrap(), 10);
    assert_eq!(store.stats().segments, 1);
    // The mixed segment stays whole until its newest trace expires.
    assert_eq!(store.enforce_retention(now + 8 * hour).unwrap(), 0);
    assert_eq!(store.enforce_retention(now + 20 * hour).unwrap(), 10);
    assert_eq!(store.stats().traces, 0);
    drop(store);
    let store = Store::open(StoreConfig { retention_ms: 10 * hour, ..config(dir.path(), 10_000) }).unwrap();
    assert_eq!(store.stats().segments, 0);
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path(), 100)).unwrap();
    assert!(matches!(Store::open(config(dir.path(), 100)), Err(StoreError::Locked { .. })));
    drop(store);
    Store::open(config(dir.path(), 100)).unwrap();
}

#[test]
fn flush_seals_into_segments_that_survive_reopen_and_delete_their_wal() {
    let dir = tempfile::tempdir().unwrap();
    let traces: Vec<Trace> = (0..130).map(make_trace).collect();
    {
        let store = Store::open(config(dir.path(), 60)).unwrap();
        store.append_blocking(traces.clone()).unwrap();
        store.flush().unwrap();
        let stats = store.stats();
        assert_eq!((stats.traces, stats.memtable_traces), (130, 0));
        assert_eq!(all_traces(&store), sorted(traces.clone()));
    }
    let wal_files = std::fs::read_dir(dir.path().join("store/wal")).unwrap().count();
    assert_eq!(wal_files, 1, "only the fresh memtable's WAL file remains");
    let store = Store::open(config(dir.path(), 60)).unwrap();
    assert_eq!(all_traces(&store), sorted(traces));
}

/// A WAL sink whose writes succeed but whose fsyncs fail from the `fail_from`-th call on.
struct FailingSync {
    syncs: Arc<AtomicUsize>,
    fail_from: usize,
}

impl WalSink for FailingSync {
    fn len(&mut self) -> io::Result<u64> {
        Ok(0)
    }

    fn append(&mut self, _parts: &[&[u8]]) -> io::Result<()> {
        Ok(())
    }

    fn truncate(&mut self, _len: u64) -> io::Result<()> {
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        if self.syncs.fetch_add(1, Ordering::SeqCst) + 1 >= self.fail_from {
            Err(io::Error::other("injected fsync failure"))
        } else {
            Ok(())
        }
    }
}

#[test]
fn a_failed_fsync_fails_the_append_and_poisons_later_writes() {
    let dir = tempfile::tempdir().unwrap();
    let syncs = Arc::new(AtomicUsize::new(0));
    let factory: Arc<SinkFactory> = {
        let syncs = syncs.clone();
        Arc::new(move |_: &Path| Ok(Box::new(FailingSync { syncs: syncs.clone(), fail_from: 2 }) as Box<dyn WalSink>))
    };
    let store = Store::open_with_sink(config(dir.path(), 1000), factory, None).unwrap();
    store.append_blocking(vec![make_trace(1)]).unwrap();
    assert!(matches!(store.append_blocking(vec![make_trace(2)]), Err(StoreError::Io { .. })));
    assert!(matches!(store.append_blocking(vec![make_trace(3)]), Err(StoreError::Poisoned { .. })));
    assert!(matches!(store.flush(), Err(StoreError::Poisoned { .. })));
    assert_eq!(all_traces(&store), vec![make_trace(1)]);
}

/// A WAL file on a disk with `room` bytes left: an append that does not fit writes what fits, then
/// fails with ENOSPC, as a real file system does.
struct FullDisk {
    file: std::fs::File,
    room: Arc<AtomicU64>,
}

impl WalSink for FullDisk {
    fn len(&mut self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn append(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        let bytes = parts.concat();
        let room = self.room.load(Ordering::SeqCst);
        let fits = bytes.len().min(room as usize);
        self.file.write_all(&bytes[..fits])?;
        self.room.fetch_sub(fits as u64, Ordering::SeqCst);
        if fits < bytes.len() {
            return Err(io::Error::from_raw_os_error(28));
        }
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        let freed = self.len()?.saturating_sub(len);
        self.file.set_len(len)?;
        self.room.fetch_add(freed, Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn a_full_disk_refuses_the_group_without_poisoning_and_recovers_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let room = Arc::new(AtomicU64::new(u64::MAX / 2));
    let factory: Arc<SinkFactory> = {
        let room = room.clone();
        Arc::new(move |path: &Path| {
            let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
            Ok(Box::new(FullDisk { file, room: room.clone() }) as Box<dyn WalSink>)
        })
    };
    let traces: Vec<Trace> = (0..4).map(make_trace).collect();
    let store = Store::open_with_sink(config(dir.path(), 1000), factory, None).unwrap();
    store.append_blocking(vec![traces[0].clone()]).unwrap();
    room.store(100, Ordering::SeqCst);
    for _ in 0..2 {
        let refused = store.append_blocking(traces[1..3].to_vec());
        assert!(matches!(refused, Err(StoreError::OutOfSpace { .. })), "{refused:?}");
    }
    assert_eq!(room.load(Ordering::SeqCst), 100, "the partial writes were cut back");
    assert_eq!(all_traces(&store), vec![traces[0].clone()]);
    room.store(u64::MAX / 2, Ordering::SeqCst);
    assert_eq!(store.append_blocking(traces[1..].to_vec()).unwrap().stored, 3);
    drop(store);
    let store = Store::open(config(dir.path(), 1000)).unwrap();
    assert_eq!(all_traces(&store), sorted(traces));
}

/// Which files of generation 1 a crash left behind, and which traces must then be stored.
struct CrashState {
    what: &'static str,
    parquet: bool,
    sidecar: bool,
    wal: bool,
    survives: bool,
}

#[test]
fn a_crash_at_any_step_of_sealing_or_retention_loses_and_duplicates_nothing() {
    let cases = [
        CrashState {
            what: "the sidecar renamed, the Parquet file not",
            parquet: false,
            sidecar: true,
            wal: true,
            survives: true,
        },
        CrashState {
            what: "the Parquet file renamed, the sidecar not",
            parquet: true,
            sidecar: false,
            wal: true,
            survives: true,
        },
        CrashState {
            what: "both renamed, the WAL not deleted",
            parquet: true,
            sidecar: true,
            wal: true,
            survives: true,
        },
        CrashState {
            what: "a segment without its sidecar (older format)",
            parquet: true,
            sidecar: false,
            wal: false,
            survives: true,
        },
        CrashState {
            what: "retention deleted the Parquet file only",
            parquet: false,
            sidecar: true,
            wal: false,
            survives: false,
        },
    ];
    let traces: Vec<Trace> = (0..700).map(make_trace).collect();
    let sealed = tempfile::tempdir().unwrap();
    let unsealed = tempfile::tempdir().unwrap();
    {
        let store = Store::open(config(sealed.path(), 100_000)).unwrap();
        store.append_blocking(traces.clone()).unwrap();
        copy_dir(&sealed.path().join("store"), &unsealed.path().join("store"));
        store.flush().unwrap();
    }
    for case in cases {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&sealed.path().join("store"), &dir.path().join("store"));
        std::fs::remove_file(dir.path().join("store/LOCK")).unwrap();
        if case.wal {
            let wal = |dir: &Path| dir.join("store/wal/00000000000000000001.wal");
            std::fs::copy(wal(unsealed.path()), wal(dir.path())).unwrap();
        }
        let segments = dir.path().join("store/segments");
        if !case.parquet {
            std::fs::remove_file(segments.join("00000000000000000001.parquet")).unwrap();
        }
        if !case.sidecar {
            std::fs::remove_file(segments.join("00000000000000000001.traces")).unwrap();
        }
        let expected = if case.survives { sorted(traces.clone()) } else { Vec::new() };
        for reopen in 0..2 {
            let store = Store::open(config(dir.path(), 100_000)).unwrap();
            store.flush().unwrap();
            assert_eq!(all_traces(&store), expected, "{}, open {reopen}", case.what);
            assert_eq!(store.stats().traces, expected.len() as u64, "{}, open {reopen}", case.what);
            let probe = &traces[123];
            let found = store.get(&probe.project_id, &probe.trace_id).unwrap();
            assert_eq!(found.as_ref(), case.survives.then_some(probe), "{}", case.what);
        }
        let wal_files = std::fs::read_dir(dir.path().join("store/wal")).unwrap().count();
        let segment_files = std::fs::read_dir(&segments).unwrap().count();
        assert_eq!(wal_files, 1, "{}: only the fresh memtable's WAL file remains", case.what);
        assert_eq!(segment_files, if case.survives { 2 } else { 0 }, "{}", case.what);
    }
}

#[test]
fn a_damaged_sidecar_block_is_reported_as_corruption_not_returned() {
    let dir = tempfile::tempdir().unwrap();
    let traces: Vec<Trace> = (0..300).map(make_trace).collect();
    {
        let store = Store::open(config(dir.path(), 100_000)).unwrap();
        store.append_blocking(traces.clone()).unwrap();
        store.flush().unwrap();
    }
    let sidecar = dir.path().join("store/segments/00000000000000000001.traces");
    let mut bytes = std::fs::read(&sidecar).unwrap();
    // A byte in the middle of the blocks (the sidecar of 300 rows has no dictionary).
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&sidecar, bytes).unwrap();
    let store = Store::open(config(dir.path(), 100_000)).unwrap();
    let fetched: Vec<_> = traces.iter().map(|t| store.get(&t.project_id, &t.trace_id)).collect();
    assert!(fetched.iter().any(|result| matches!(result, Err(StoreError::Corrupt { .. }))));
    assert!(fetched.iter().all(|result| match result {
        Ok(found) => found.as_ref().is_some_and(|trace| traces.contains(trace)),
        Err(error) => matches!(error, StoreError::Corrupt { .. }),
    }));
    let queries = PROJECTS.iter().flat_map(|project| [false, true].map(|data| everything(project, data)));
    let results: Vec<_> = queries.map(|query| store.query(&query)).collect();
    assert!(results.iter().any(|result| matches!(result, Err(StoreError::Corrupt { .. }))));
}

/// A WAL sink (in memory) whose fsyncs wait until the test opens its gate: a disk slower than ingest.
struct GatedSync {
    len: u64,
    gate: Arc<(parking_lot::Mutex<bool>, parking_lot::Condvar)>,
    syncing: Arc<AtomicUsize>,
}

impl WalSink for GatedSync {
    fn len(&mut self) -> io::Result<u64> {
        Ok(self.len)
    }

    fn append(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        self.len += parts.iter().map(|part| part.len() as u64).sum::<u64>();
        Ok(())
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.len = len;
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.syncing.fetch_add(1, Ordering::SeqCst);
        let (open, opened) = &*self.gate;
        let mut open = open.lock();
        while !*open {
            opened.wait(&mut open);
        }
        Ok(())
    }
}

#[test]
fn appends_wait_for_room_in_the_queue_while_the_disk_is_slow_and_all_complete_once_it_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new((parking_lot::Mutex::new(false), parking_lot::Condvar::new()));
    let syncing = Arc::new(AtomicUsize::new(0));
    let factory: Arc<SinkFactory> = {
        let (gate, syncing) = (gate.clone(), syncing.clone());
        Arc::new(move |_: &Path| {
            Ok(Box::new(GatedSync { len: 0, gate: gate.clone(), syncing: syncing.clone() }) as Box<dyn WalSink>)
        })
    };
    let config = StoreConfig { max_queued_traces: 10, ..config(dir.path(), 1000) };
    let store = Store::open_with_sink(config, factory, None).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let batch = |from: u64, count: u64| (from..from + count).map(make_trace).collect::<Vec<_>>();
    runtime.block_on(async {
        // The writer takes the first append and waits in its fsync.
        let first = tokio::spawn({
            let store = store.clone();
            let traces = batch(0, 10);
            async move { store.append(traces).await }
        });
        while syncing.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        // The second fills the queue; the third waits for room.
        let second = tokio::spawn({
            let store = store.clone();
            let traces = batch(10, 10);
            async move { store.append(traces).await }
        });
        while store.stats().queued_traces < 10 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let third = tokio::spawn({
            let store = store.clone();
            let traces = batch(20, 1);
            async move { store.append(traces).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(store.stats().queued_traces, 10, "the queue holds no more than its bound");
        assert!(!third.is_finished() && !second.is_finished() && !first.is_finished());

        *gate.0.lock() = true;
        gate.1.notify_all();
        for append in [first, second, third] {
            append.await.unwrap().unwrap();
        }
    });
    assert_eq!(store.stats().queued_traces, 0);
    assert_eq!(all_traces(&store), sorted(batch(0, 21)));
}

/// Prefix, case-insensitive and free-text conditions, alone and combined, over segments and the memtable:
/// each query finds what the model finds, and finds something (so the comparison means something).
#[test]
fn search_modes_match_the_model_and_find_traces() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path(), 64)).unwrap();
    let traces: Vec<Trace> = (0..400).map(make_trace).collect();
    for chunk in traces.chunks(50) {
        store.append_blocking(chunk.to_vec()).unwrap();
    }
    let text = |terms: &[&str]| terms.iter().map(|term| term.to_string()).collect::<Vec<_>>();
    let searches = [
        Filters { trace_name: Some(Pattern::prefix("create")), ..Filters::default() },
        Filters { trace_name: Some(Pattern::prefix("")), ..Filters::default() },
        Filters { user: Some("ALICE".into()), ignore_case: true, ..Filters::default() },
        Filters { resource_type: Some(Pattern::prefix("ord")), ignore_case: true, ..Filters::default() },
        Filters { text: text(&["denied"]), ..Filters::default() },
        Filters { text: text(&["ORD-2026", "ok\""]), ..Filters::default() },
        Filters { text: text(&["STRASSE"]), ..Filters::default() },
        Filters { text: text(&["straße"]), user: Some(Pattern::prefix("b")), ..Filters::default() },
    ];
    for filters in searches {
        let empty_expected = filters.text == ["STRASSE"];
        for data in [false, true] {
            let query = TraceQuery { filters: filters.clone(), ..everything("p1", data) };
            let expected = model_query(&traces, &query);
            assert_eq!(store.query(&query).unwrap(), expected, "{query:?}");
            if !data {
                assert_eq!(expected.is_empty(), empty_expected, "{query:?} should find traces");
            }
            // Paged ten at a time, the same traces.
            let mut paged = Vec::new();
            let mut page = TraceQuery { limit: 10, ..query.clone() };
            loop {
                let traces = store.query(&page).unwrap();
                paged.extend(traces.iter().cloned());
                match traces.last() {
                    Some(last) if traces.len() == 10 => page.after = Some(SortKey::of(last)),
                    _ => break,
                }
            }
            assert_eq!(paged, expected);
        }
    }
}
