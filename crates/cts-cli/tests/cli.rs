//! `cts import` and `cts traces` as an operator runs them: files in, a
//! server on the same data directory, queries out.

mod common;

use common::{cts, Server, PROJECT_ID};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::process::Output;

const USERS: [&str; 3] = ["alice", "bob", "carol"];
const NAMES: [&str; 3] = ["createOrder", "queryOrderList", "addFavorites"];

fn trace(i: usize, now: i64) -> Value {
    json!({
        "trace_id": uuid::Uuid::new_v4().to_string(),
        "trace_name": NAMES[i % 3],
        "service_type": "marketplace",
        "resource_type": if i % 3 == 2 { "Favorites" } else { "Order" },
        "time": now - 1000 * i as i64,
        "user": {"name": USERS[i % 4 % 3]},
    })
}

fn run(command: &mut std::process::Command) -> Output {
    let output = command.output().expect("running cts");
    assert!(output.status.success(), "cts failed: {}", String::from_utf8_lossy(&output.stderr));
    output
}

fn import(data_dir: &Path, files: &[&Path]) -> String {
    let output = run(cts().arg("import").arg("--data-dir").arg(data_dir).args(files));
    String::from_utf8(output.stdout).unwrap()
}

fn traces(server: &Server, data_dir: &Path, filters: &[&str]) -> Vec<Value> {
    let output = run(cts()
        .args(["traces", "--endpoint", &server.endpoint, "--from", "1d", "--all", "--json", "--limit", "37"])
        .arg("--data-dir")
        .arg(data_dir)
        .args(filters));
    String::from_utf8(output.stdout).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_traces_are_listed_by_cts_traces_with_filters() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let now = cts_model::now_ms();

    let lines: Vec<Value> = (0..300).map(|i| trace(i, now)).collect();
    let jsonl = dir.path().join("traces.jsonl");
    let mut file = std::fs::File::create(&jsonl).unwrap();
    for line in &lines {
        writeln!(file, "{line}").unwrap();
    }
    writeln!(file, "{}", json!({"trace_name": "9lives", "service_type": "marketplace", "resource_type": "Order"}))
        .unwrap();
    writeln!(file, "{{not json").unwrap();
    drop(file);
    // Full records, as ListTraces returns them or as delivered to OBS, in a gzipped CTS file.
    let records: Vec<Value> = (300..400)
        .map(|i| {
            let mut record = trace(i, now);
            record["project_id"] = json!(PROJECT_ID);
            record["record_time"] = json!(now - 5);
            record
        })
        .collect();
    let gz = dir.path().join("delivered.json.gz");
    let mut encoder = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::fast());
    encoder.write_all(json!({"traces": records}).to_string().as_bytes()).unwrap();
    encoder.finish().unwrap();

    let summary = import(&data_dir, &[&jsonl, &gz]);
    assert!(summary.contains("imported 402 traces (400 new, 0 already stored, 2 rejected)"), "{summary}");
    let again = import(&data_dir, &[&jsonl, &gz]);
    assert!(again.contains("imported 402 traces (0 new, 400 already stored, 2 rejected)"), "{again}");

    let server = Server::start(&data_dir).await;
    let all = traces(&server, &data_dir, &[]);
    let ids: HashSet<&str> = all.iter().map(|t| t["trace_id"].as_str().unwrap()).collect();
    assert_eq!((all.len(), ids.len()), (400, 400));
    assert!(all.iter().filter(|t| t["record_time"] == json!(now - 5)).count() == 100, "full records keep record_time");

    let sent: Vec<&Value> = lines.iter().chain(&records).collect();
    let expected = sent.iter().filter(|t| t["user"]["name"] == "alice" && t["trace_name"] == "createOrder").count();
    let filtered = traces(&server, &data_dir, &["--user", "alice", "--trace-name", "createOrder"]);
    assert_eq!(filtered.len(), expected);
    assert!(expected > 0);
    assert!(filtered.iter().all(|t| t["user"]["name"] == "alice" && t["trace_name"] == "createOrder"));

    let table = run(cts()
        // (service_type: not cts's own self-audit traces of the queries above.)
        .args([
            "traces",
            "--endpoint",
            &server.endpoint,
            "--from",
            "1d",
            "--limit",
            "5",
            "--service-type",
            "marketplace",
        ])
        .arg("--data-dir")
        .arg(&data_dir));
    let stdout = String::from_utf8(table.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 6, "a header and five rows:\n{stdout}");
    assert!(stdout.lines().nth(1).unwrap().contains(NAMES[0]), "newest first:\n{stdout}");
    assert!(String::from_utf8(table.stderr).unwrap().contains("more exist"));
    server.kill();
}

#[test]
fn completions_and_man_pages_cover_every_command() {
    let commands = ["serve", "import", "traces", "verify", "admin", "demo", "bench"];
    for shell in ["bash", "zsh", "fish"] {
        let script = String::from_utf8(run(cts().args(["completions", shell])).stdout).unwrap();
        for command in commands {
            assert!(script.contains(command), "{shell} completions lack {command}");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    run(cts().arg("man").arg("--out-dir").arg(dir.path()));
    for page in std::iter::once("cts".to_owned()).chain(commands.iter().map(|command| format!("cts-{command}"))) {
        let text = std::fs::read_to_string(dir.path().join(format!("{page}.1"))).unwrap();
        assert!(text.contains(".TH "), "{page}.1 is not a man page");
    }
}
