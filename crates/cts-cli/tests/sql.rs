//! `cts sql` as an operator runs it against a real `cts serve`: a table by default, the response body with
//! `--json`, CSV with `--csv`, a CTS error for a refused statement. A build without the `sql` feature serves
//! 501, which `cts sql` reports.

mod common;

use common::{cts, Server};
use serde_json::{json, Value};
use std::process::Output;

fn sql(server: &Server, data_dir: &std::path::Path, args: &[&str]) -> Output {
    cts().args(["sql", "--endpoint", &server.endpoint]).arg("--data-dir").arg(data_dir).args(args).output().unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "cts sql failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cts_sql_prints_a_table_json_csv_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let server = Server::start(&data_dir).await;
    let now = cts_model::now_ms();
    let traces: Vec<Value> = (0..30)
        .map(|i| {
            json!({"trace_name": if i % 3 == 0 { "createOrder" } else { "queryOrderList" }, "service_type": "marketplace",
                   "resource_type": "Order", "time": now - i, "user": {"name": "alice"}})
        })
        .collect();
    server.client().ingest(&traces).await.unwrap();
    let statement = "SELECT trace_name, count(*) AS n FROM traces WHERE service_type = 'marketplace' \
                     GROUP BY trace_name ORDER BY n DESC";

    if !cfg!(feature = "sql") {
        let output = sql(&server, &data_dir, &[statement]);
        assert!(!output.status.success());
        assert!(String::from_utf8_lossy(&output.stderr).contains("--features sql"));
        server.kill();
        return;
    }

    let table = stdout(&sql(&server, &data_dir, &[statement]));
    assert_eq!(table, "trace_name      n\n--------------  --\nqueryOrderList  20\ncreateOrder     10\n");

    let body: Value = serde_json::from_str(&stdout(&sql(&server, &data_dir, &["--json", statement]))).unwrap();
    assert_eq!(body["rows"], json!([["queryOrderList", 20], ["createOrder", 10]]));
    assert_eq!((body["row_count"].clone(), body["truncated"].clone()), (json!(2), json!(false)));

    let csv = stdout(&sql(&server, &data_dir, &["--csv", statement]));
    assert_eq!(csv, "trace_name,n\r\nqueryOrderList,20\r\ncreateOrder,10\r\n");

    let refused = sql(&server, &data_dir, &["DELETE FROM traces"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("CTS.0300") && stderr.contains("DELETE"), "{stderr}");
    server.kill();
}

#[test]
fn completions_know_the_sql_command() {
    let output = cts().args(["completions", "bash"]).output().unwrap();
    assert!(String::from_utf8(output.stdout).unwrap().contains("sql"));
}
