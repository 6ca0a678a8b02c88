//! Streaming to a real rsyslog (installed by `scripts/test.sh`), started on a loopback TCP port with a
//! configuration of the test's own that writes every received message, raw, to a file.

mod common;

use common::Fixture;
use cts_obs::{Obs, ObsConfig};
use cts_resources::TrackerStatus;
use cts_transfer::{Keyring, StreamConfig, TraceStream};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An rsyslogd of the test's own; killed when dropped.
struct Rsyslog {
    child: Child,
}

impl Rsyslog {
    fn start(dir: &Path, port: u16) -> Rsyslog {
        let config = dir.join("rsyslog.conf");
        std::fs::write(
            &config,
            format!(
                "global(workDirectory=\"{dir}\")\n\
                 module(load=\"imtcp\")\n\
                 template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n\
                 ruleset(name=\"cts\") {{ action(type=\"omfile\" file=\"{dir}/received.log\" template=\"raw\") }}\n\
                 input(type=\"imtcp\" port=\"{port}\" address=\"127.0.0.1\" ruleset=\"cts\")\n",
                dir = dir.display()
            ),
        )
        .unwrap();
        let binary = ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"]
            .into_iter()
            .find(|path| Path::new(path).exists())
            .expect("rsyslogd is not installed: run ./scripts/test.sh, which installs it");
        let child = Command::new(binary)
            .args(["-n", "-f"])
            .arg(&config)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .spawn()
            .expect("starting rsyslogd");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "rsyslogd did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Rsyslog { child }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The trace ids of the messages rsyslog wrote, with how often each came, once `expected` distinct ones arrived.
fn received(file: &PathBuf, expected: usize) -> BTreeMap<String, usize> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let mut ids = BTreeMap::new();
        for line in text.lines() {
            assert!(line.starts_with("<1") && line.contains(" cts - createOrder [cts@32473 trace_id=\""), "{line}");
            let json = &line[line.find('{').expect("a JSON body")..];
            let trace: serde_json::Value = serde_json::from_str(json).unwrap();
            *ids.entry(trace["trace_id"].as_str().unwrap().to_owned()).or_insert(0) += 1;
        }
        if ids.len() >= expected || Instant::now() > deadline {
            return ids;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_reach_rsyslog_at_least_once_after_it_comes_up() {
    let fixture = Fixture::new();
    fixture.configure(serde_json::json!({"is_lts_enabled": true}));
    let port = free_port();
    // Trace files are not configured (no obs_info): the object store is never contacted.
    let obs = Arc::new(
        Obs::new(ObsConfig {
            endpoint: "http://127.0.0.1:9".into(),
            region: "none".into(),
            access_key: "unused".into(),
            secret_key: "unused".into(),
            path_style: true,
        })
        .unwrap(),
    );
    let stream = TraceStream::new(StreamConfig {
        syslog: Some(format!("127.0.0.1:{port}")),
        http: None,
        hostname: "cts-test".into(),
    });
    let transfer = fixture.transfer(obs, Keyring::default()).with_stream(stream);

    transfer.run_cycle(fixture.at(0)).await.unwrap();
    let traces = fixture.append(500, 15).await;
    // The collector is down: nothing moves, the traces wait in the store.
    let report = transfer.run_cycle(fixture.at(3)).await.unwrap();
    assert_eq!((report.streams_failed, report.windows_streamed), (1, 0));
    let status = fixture.system_tracker().status;
    assert_eq!(status, TrackerStatus::Enabled, "a stream outage is retried, not a trace file error");

    let dir = tempfile::tempdir().unwrap();
    let _rsyslog = Rsyslog::start(dir.path(), port);
    let report = transfer.run_cycle(fixture.at(3)).await.unwrap();
    assert_eq!((report.streams_failed, report.windows_streamed, report.traces_streamed), (0, 3, 15));
    let ids = received(&dir.path().join("received.log"), traces.len());
    let mut expected: Vec<_> = traces.iter().map(|t| t.trace_id.clone()).collect();
    expected.sort();
    assert_eq!(ids.keys().cloned().collect::<Vec<_>>(), expected);
    assert_eq!(transfer.run_cycle(fixture.at(3)).await.unwrap().traces_streamed, 0, "a streamed window is not resent");
}
