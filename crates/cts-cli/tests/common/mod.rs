//! A real `cts serve` child process for the CLI's integration tests.

#![allow(dead_code)] // each test binary uses its own part

use cts_client::{Client, Credentials};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "CRASHTESTACCESSKEY01";
pub const SECRET_KEY: &str = "crash-test-secret-key-0123456789abcdefgh";
pub const PROJECT_ID: &str = "11112222333344445555666677778888";

pub struct Server {
    child: Child,
    pub endpoint: String,
}

impl Server {
    pub async fn start(data_dir: &Path) -> Server {
        Server::start_at(data_dir, free_port(), &[]).await
    }

    /// `cts serve` on `data_dir` at `127.0.0.1:port` with further flags.
    pub async fn start_at(data_dir: &Path, port: u16, flags: &[&str]) -> Server {
        let child = cts()
            .args(["serve", "--data-dir"])
            .arg(data_dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting cts serve");
        let server = Server { child, endpoint: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if server.client().health().await.is_ok() {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("cts serve did not become healthy");
    }

    pub fn client(&self) -> Client {
        let credentials =
            Credentials { access_key: ACCESS_KEY.into(), secret_key: SECRET_KEY.into(), project_id: PROJECT_ID.into() };
        Client::new(&self.endpoint, credentials).unwrap()
    }

    pub fn kill(mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }
}

/// A loopback port free at the time of the call.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Every trace matching `params`, through all pages of ListTraces.
pub async fn all_traces(client: &Client, params: &[(&str, String)]) -> Vec<cts_model::Trace> {
    let mut params: Vec<(&str, String)> = params.to_vec();
    params.push(("limit", "200".to_owned()));
    let mut traces = Vec::new();
    loop {
        let page = client.list_traces(&params).await.expect("ListTraces");
        traces.extend(page.traces);
        match page.meta_data.marker {
            Some(marker) => {
                params.retain(|(name, _)| *name != "next");
                params.push(("next", marker));
            }
            None => return traces,
        }
    }
}

/// The `cts` binary with the bootstrap identity of these tests.
pub fn cts() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cts"));
    command
        .env("CTS_ADMIN_ACCESS_KEY", ACCESS_KEY)
        .env("CTS_ADMIN_SECRET_KEY", SECRET_KEY)
        .env("CTS_PROJECT_ID", PROJECT_ID)
        .env("CTS_DOMAIN_ID", "99990000999900009999000099990000");
    command
}
