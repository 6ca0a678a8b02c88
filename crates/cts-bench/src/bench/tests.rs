use super::*;
use serde_json::Value;

const NOW_MS: i64 = 1_795_000_000_000;

fn chunk(seed: u64, count: usize, batch: usize) -> (Vec<Bytes>, ValueSampler, TimeSpan) {
    let mut generator = workload::Generator::new(seed, NOW_MS, count);
    let (mut sampler, mut span) = (ValueSampler::new(1), TimeSpan::new());
    let (bodies, _) = next_chunk(&mut generator, count, batch, &mut sampler, &mut span).unwrap();
    (bodies, sampler, span)
}

#[test]
fn chunks_hold_every_trace_in_batches_and_continue_the_workload() {
    let mut generator = workload::Generator::new(11, NOW_MS, 2_500);
    let (mut sampler, mut span) = (ValueSampler::new(100), TimeSpan::new());
    let (first, _) = next_chunk(&mut generator, 1_500, 1_000, &mut sampler, &mut span).unwrap();
    let (second, json_bytes) = next_chunk(&mut generator, 1_000, 1_000, &mut sampler, &mut span).unwrap();
    let traces = |bodies: &[Bytes]| -> Vec<Value> {
        bodies
            .iter()
            .flat_map(|body| serde_json::from_slice::<Value>(body).unwrap()["traces"].as_array().unwrap().clone())
            .collect()
    };
    assert_eq!(first.len(), 2, "1,000 + 500");
    let all: Vec<Value> = traces(&first).into_iter().chain(traces(&second)).collect();
    assert_eq!(all, workload::Generator::new(11, NOW_MS, 2_500).collect::<Vec<_>>());
    assert_eq!(json_bytes, traces(&second).iter().map(|t| serde_json::to_vec(t).unwrap().len() as u64).sum::<u64>());
    assert_eq!(sampler.values().pairs.len(), 25);
}

#[test]
fn the_workload_spans_nearly_seven_days() {
    let (_, _, span) = chunk(3, 2_000, 500);
    assert!((166.0..168.0).contains(&span.hours()), "{} hours", span.hours());
}

#[test]
fn copy_batches_and_gzip_files_hold_one_entry_per_trace() {
    let (bodies, _, _) = chunk(12, 300, 100);
    let mut gzip = GzipTraceFiles::counting(250);
    let (_, batches) = parse_and_encode(bodies, "p", &mut gzip).unwrap();
    assert_eq!(batches.len(), 3);
    for batch in &batches {
        let text = std::str::from_utf8(batch).unwrap();
        assert_eq!(text.matches('\n').count(), 100, "raw newlines only end rows");
    }
    let totals = gzip.finish().unwrap();
    assert_eq!(totals.files, 2);
    assert!(totals.bytes > 0);
}

fn outcome(kind: QueryKind, fingerprint: u64, not_matching_terms: bool) -> PageOutcome {
    PageOutcome { kind, fingerprint, not_matching_terms }
}

#[test]
fn agreement_compares_run_for_run_and_adds_up_over_checkpoints() {
    let cts = [
        outcome(QueryKind::Selective, 1, false),
        outcome(QueryKind::Selective, 2, false),
        outcome(QueryKind::TextRare, 3, true),
    ];
    let pg = [
        outcome(QueryKind::Selective, 1, false),
        outcome(QueryKind::Selective, 9, false),
        outcome(QueryKind::TextRare, 4, false),
    ];
    let mut tally = Vec::new();
    tally_agreement(&mut tally, &cts, Some(&pg));
    tally_agreement(&mut tally, &cts[..1], Some(&pg[..1]));
    let summary: Vec<(QueryKind, usize, usize, usize)> =
        tally.iter().map(|a| (a.kind, a.identical, a.compared, a.cts_pages_not_matching_terms)).collect();
    assert_eq!(summary, vec![(QueryKind::Selective, 2, 3, 0), (QueryKind::TextRare, 0, 1, 1)]);
}

#[test]
fn without_postgres_only_unfiltered_text_pages_are_counted() {
    let mut tally = Vec::new();
    tally_agreement(&mut tally, &[outcome(QueryKind::TextCommon, 1, true)], None);
    assert_eq!((tally[0].compared, tally[0].cts_pages_not_matching_terms), (0, 1));
}

/// Pages from a fixed list, as a server that ignores `q` would give them.
struct Unfiltered(Vec<Value>);

impl PageSource for Unfiltered {
    async fn page(&self, query: &ListQuery) -> anyhow::Result<Vec<Value>> {
        Ok(self.0.iter().take(query.limit).cloned().collect())
    }
}

#[tokio::test]
async fn pages_that_ignore_the_words_are_detected() {
    let source = Unfiltered(vec![serde_json::json!({"request": "{}", "response": "ok"})]);
    let values = QueryValues {
        pairs: vec![("u".into(), "createOrder".into())],
        access_keys: vec!["AK".into()],
        resource_ids: vec!["r".into()],
        rare_words: vec!["order-1".into()],
        common_words: vec!["ok".into()],
    };
    let window = Window { from_ms: 0, to_ms: 1 };
    let (latencies, pages) = time_pages(&source, &QueryKind::TEXT, &values, window, 3, 1).await.unwrap();
    assert_eq!(latencies.len(), 2);
    let flags: Vec<bool> = pages.iter().map(|p| p.not_matching_terms).collect();
    assert_eq!(flags, vec![true, true, true, false, false, false]);
}

#[tokio::test]
async fn repeated_calls_are_timed_after_the_warm_up() {
    let mut calls = 0;
    let (durations, last) = time_repeated(3, 2, || {
        calls += 1;
        let call = calls;
        async move { anyhow::Ok(call) }
    })
    .await
    .unwrap();
    assert_eq!((durations.len(), last), (3, 5));
}
