use super::*;

#[test]
fn percentiles_use_the_nearest_rank() {
    let values: Vec<f64> = (1..=100).map(f64::from).collect();
    assert_eq!(percentile(&values, 0.50), 50.0);
    assert_eq!(percentile(&values, 0.99), 99.0);
    assert_eq!(percentile(&[7.0], 0.99), 7.0);
    assert_eq!(percentile(&[1.0, 2.0], 0.5), 1.0);
}

#[test]
fn latency_summarises_runs_and_page_sizes() {
    let durations: Vec<Duration> = (1..=10).rev().map(Duration::from_millis).collect();
    let latency = Latency::of(QueryKind::Broad, &durations, &[10, 10, 4]).unwrap();
    assert_eq!((latency.p50_ms, latency.p99_ms, latency.mean_page_traces), (5.0, 10.0, 8.0));
    assert!(Latency::of(QueryKind::Broad, &[], &[]).is_none());
    let freshness = Freshness::of(&durations).unwrap();
    assert_eq!((freshness.samples, freshness.p50_ms, freshness.max_ms), (10, 5.0, 10.0));
    assert!(Freshness::of(&[]).is_none());
}

#[test]
fn numbers_are_grouped_by_thousands() {
    for (value, text) in [(0.0, "0"), (999.0, "999"), (1000.0, "1,000"), (1234567.8, "1,234,568"), (-4321.0, "-4,321")]
    {
        assert_eq!(grouped(value), text);
    }
}

fn latency(kind: QueryKind, p50_ms: f64, p99_ms: f64) -> Latency {
    Latency { kind, runs: 10, p50_ms, p99_ms, mean_page_traces: 10.0 }
}

fn system(ingest: f64, queries: Vec<Latency>, bytes_per_trace: f64, rss: u64) -> SystemReport {
    SystemReport {
        ingest_seconds: 1.0,
        ingest_traces_per_second: ingest,
        queries,
        bytes_on_disk: (bytes_per_trace * 1_000.0) as u64,
        bytes_per_trace,
        peak_rss_bytes: Some(rss),
    }
}

fn selective(scale: f64) -> Vec<Latency> {
    QueryKind::SELECTIVE.iter().map(|&kind| latency(kind, scale, scale * 4.0)).collect()
}

/// cts: fast everywhere but the aggregation (its server lacks SQL) and the access-key p99.
fn report() -> BenchReport {
    let cts_queries = vec![
        latency(QueryKind::Broad, 1.0, 2.0),
        latency(QueryKind::BroadMaxPage, 5.0, 9.0),
        latency(QueryKind::TextRare, 10.0, 12.0),
        latency(QueryKind::TextCommon, 10.0, 30.0),
    ];
    let pg_queries = vec![
        latency(QueryKind::Broad, 2.0, 3.0),
        latency(QueryKind::BroadMaxPage, 6.0, 10.0),
        latency(QueryKind::TextRare, 500.0, 600.0),
        latency(QueryKind::TextCommon, 50.0, 60.0),
        latency(QueryKind::Aggregation, 4_000.0, 4_100.0),
    ];
    let mut late_cts = selective(1.5);
    late_cts[1].p99_ms = 25.0;
    let mut report = BenchReport {
        traces: 1_000,
        batch: 100,
        concurrency: 4,
        seed: 1,
        cores: 2,
        workload_json_bytes: 1_500_000,
        workload_span_hours: 167.0,
        parse_traces_per_second: 200_000.0,
        cts: system(100_000.0, cts_queries, 100.0, 500 << 20),
        cts_import: None,
        postgres: Some(system(4_000.0, pg_queries, 1_500.0, 1_100 << 20)),
        postgres_trigram: Some(TrigramReport {
            queries: vec![latency(QueryKind::TextRare, 2.0, 3.0)],
            index_bytes: 400_000,
            build_seconds: 3.0,
        }),
        checkpoints: vec![
            Checkpoint { traces: 100, cts: selective(1.0), postgres: selective(1.0) },
            Checkpoint { traces: 1_000, cts: late_cts, postgres: selective(3.0) },
        ],
        agreement: vec![PageAgreement {
            kind: QueryKind::TextRare,
            identical: 0,
            compared: 10,
            cts_pages_not_matching_terms: 10,
        }],
        aggregation_agrees: None,
        gzip_files: GzipTotals { files: 1, bytes: 150_000 },
        freshness: Some(Freshness { samples: 200, p50_ms: 1.0, p99_ms: 3.0, max_ms: 4.0 }),
        phases: vec![PhaseLoad {
            phase: "ingest into cts over HTTP".into(),
            wall_seconds: 10.0,
            cts_cpu_seconds: Some(15.0),
            postgres_cpu_seconds: Some(0.1),
            bench_cpu_seconds: Some(3.0),
            cts_written_bytes: Some(100 << 20),
        }],
        figures: Vec::new(),
    };
    report.figures = report.figures();
    report
}

fn figure<'a>(report: &'a BenchReport, name: &str) -> &'a Figure {
    report.figures.iter().find(|f| f.figure == name).unwrap_or_else(|| panic!("no row {name}"))
}

#[test]
fn the_table_compares_each_figure_with_its_target() {
    let report = report();
    let ingest = figure(&report, "durable ingest, HTTP vs COPY (traces/s)");
    assert_eq!((ingest.ratio.as_str(), ingest.target.as_str(), ingest.met), ("25.00x", ">= 20x", Some(true)));
    let p50 = figure(&report, "user+trace_name, 10 p50");
    assert_eq!(
        (p50.cts.as_str(), p50.postgres.as_str(), p50.ratio.as_str(), p50.met),
        ("1.50 ms", "3.00 ms", "2.00x", Some(true))
    );
    assert_eq!(figure(&report, "access_key_id, 10 p99").met, Some(false), "25 ms is above 20 ms");
    assert_eq!(figure(&report, "free text, rare word, 200 p50, vs ILIKE").met, Some(true));
    assert_eq!(figure(&report, "free text, common word, 200 p50, vs ILIKE").met, Some(false), "5x is below 10x");
    let trigram = figure(&report, "free text, rare word, 200 p50, vs pg_trgm");
    assert_eq!((trigram.ratio.as_str(), trigram.met), ("0.20x", None));
    let common_trigram = figure(&report, "free text, common word, 200 p50, vs pg_trgm");
    assert_eq!(common_trigram.postgres, "-", "not measured");
    let bytes = figure(&report, "bytes per trace (PostgreSQL: table + indexes)");
    assert_eq!((bytes.ratio.as_str(), bytes.met), ("15.00x", Some(true)));
    let gzip = figure(&report, "bytes per trace vs gzip .json.gz (2nd column)");
    assert_eq!((gzip.postgres.as_str(), gzip.met), ("150", Some(true)));
    assert_eq!(figure(&report, "peak RSS serving (PostgreSQL: largest process)").met, Some(true));
    assert_eq!(figure(&report, "freshness, ack -> visible in ListTraces p99").met, Some(true));
}

#[test]
fn a_missing_aggregation_is_not_available_and_not_judged() {
    let report = report();
    let aggregation = figure(&report, "SQL traces per operation per day p50");
    assert_eq!(
        (aggregation.cts.as_str(), aggregation.postgres.as_str(), aggregation.ratio.as_str(), aggregation.met),
        ("n/a", "4000.00 ms", "-", None)
    );
}

#[test]
fn growth_compares_the_first_and_last_checkpoint() {
    let report = report();
    let growth = figure(&report, "growth 100 -> 1,000 traces: user+trace_name, 10 p50");
    assert_eq!((growth.cts.as_str(), growth.postgres.as_str(), growth.met), ("1.50x", "3.00x", Some(true)));
    let mut one_checkpoint = report.clone();
    one_checkpoint.checkpoints.remove(0);
    assert!(!one_checkpoint.figures().iter().any(|f| f.figure.starts_with("growth")));
}

#[test]
fn the_text_report_shows_the_table_the_ignored_words_and_the_bounds() {
    let text = report().to_string();
    assert!(text.contains("over 6.96 days of time"), "{text}");
    assert!(text.contains("the server ignores q="), "{text}");
    assert!(text.contains("SQL aggregation rows not compared"), "{text}");
    assert!(
        text.contains("ingest into cts over HTTP: 10.0 s, cores used of 2: cts serve 1.50, PostgreSQL 0.01, bench client 0.30; cts wrote 10.0 MiB/s -> CPU-bound"),
        "{text}"
    );
    let header = text.lines().find(|line| line.starts_with("figure")).unwrap();
    for column in ["cts", "PostgreSQL", "ratio", "target", "met?"] {
        assert!(header.contains(column));
    }
    assert!(text.lines().any(|line| line.starts_with("access_key_id, 10 p99") && line.ends_with("NO")), "{text}");
}

#[test]
fn the_json_report_carries_the_table() {
    let json = serde_json::to_value(report()).unwrap();
    let rows = json["figures"].as_array().unwrap();
    assert!(rows.iter().any(|row| row["figure"] == "durable ingest, HTTP vs COPY (traces/s)" && row["met"] == true));
    assert_eq!(json["checkpoints"][1]["traces"], 1_000);
}
