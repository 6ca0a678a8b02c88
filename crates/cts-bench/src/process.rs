//! The `cts` executable as a child process: `cts serve` on a free loopback
//! port (started, awaited on `/health`, stopped with SIGTERM) and `cts import`
//! timed to completion. Children never outlive the benchmark.

use anyhow::{bail, Context};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The bootstrap identity the benchmark gives `cts`.
#[derive(Debug, Clone)]
pub struct Identity {
    pub access_key: String,
    pub secret_key: String,
    pub project_id: String,
    pub domain_id: String,
}

impl Identity {
    pub fn bench() -> Identity {
        Identity {
            access_key: "CTSBENCHACCESSKEY001".to_owned(),
            secret_key: "ctsBenchSecretKey0000000000000000000001".to_owned(),
            project_id: "0b5c7d1e2f3a4b5c6d7e8f9a0b1c2d3e".to_owned(),
            domain_id: "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d".to_owned(),
        }
    }

    /// The access key pair and project a client signs with.
    pub fn credentials(&self) -> cts_client::Credentials {
        cts_client::Credentials {
            access_key: self.access_key.clone(),
            secret_key: self.secret_key.clone(),
            project_id: self.project_id.clone(),
        }
    }

    fn apply(&self, command: &mut Command) {
        command
            .env("CTS_ADMIN_ACCESS_KEY", &self.access_key)
            .env("CTS_ADMIN_SECRET_KEY", &self.secret_key)
            .env("CTS_PROJECT_ID", &self.project_id)
            .env("CTS_DOMAIN_ID", &self.domain_id);
    }
}

/// A running `cts serve`.
pub struct Server {
    child: Child,
    log: PathBuf,
    pub endpoint: String,
}

impl Server {
    /// Starts `cts serve` on a free 127.0.0.1 port with `data_dir` and the
    /// further environment `settings` (`CTS_*` variables), and waits until
    /// `/health` answers 200 (or fails after `ready_timeout`).
    pub fn start(
        binary: &Path,
        data_dir: &Path,
        log: &Path,
        identity: &Identity,
        settings: &[(&str, String)],
        ready_timeout: Duration,
    ) -> anyhow::Result<Server> {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
        let mut command = Command::new(binary);
        command.arg("serve").arg("--data-dir").arg(data_dir).arg("--listen").arg(address.to_string());
        identity.apply(&mut command);
        command.envs(settings.iter().map(|(name, value)| (name, value)));
        let child = spawn_logged(&mut command, log)?;
        let mut server = Server { child, log: log.to_owned(), endpoint: format!("http://{address}") };
        let deadline = Instant::now() + ready_timeout;
        loop {
            if let Some(status) = server.child.try_wait()? {
                bail!("cts serve exited with {status} before it was ready:\n{}", log_tail(&server.log));
            }
            if health_ok(address) {
                return Ok(server);
            }
            if Instant::now() > deadline {
                bail!("cts serve was not ready within {ready_timeout:?}:\n{}", log_tail(&server.log));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (graceful shutdown: cts seals its memtable) and waits for the exit.
    pub fn stop(mut self, timeout: Duration) -> anyhow::Result<()> {
        signal(self.child.id(), "TERM")?;
        let status = wait_with_timeout(&mut self.child, timeout)
            .with_context(|| format!("cts serve did not stop after SIGTERM:\n{}", log_tail(&self.log)))?;
        if !status.success() {
            bail!("cts serve exited with {status} on SIGTERM:\n{}", log_tail(&self.log));
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Only when `stop` was not reached: never leave a server behind.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `cts import --data-dir DIR FILE` to completion; returns its wall time.
pub fn import(
    binary: &Path,
    data_dir: &Path,
    file: &Path,
    log: &Path,
    identity: &Identity,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let mut command = Command::new(binary);
    command.arg("import").arg("--data-dir").arg(data_dir).arg("--project-id").arg(&identity.project_id).arg(file);
    identity.apply(&mut command);
    let started = Instant::now();
    let mut child = spawn_logged(&mut command, log)?;
    let status = match wait_with_timeout(&mut child, timeout) {
        Ok(status) => status,
        Err(error) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(error.context(format!("cts import:\n{}", log_tail(log))));
        }
    };
    let elapsed = started.elapsed();
    if !status.success() {
        bail!("cts import exited with {status}:\n{}", log_tail(log));
    }
    Ok(elapsed)
}

fn spawn_logged(command: &mut Command, log: &Path) -> anyhow::Result<Child> {
    let file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    command
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()
        .with_context(|| format!("starting {:?}", command.get_program()))
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> anyhow::Result<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            bail!("process {} still running after {timeout:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends a signal to one process by id.
fn signal(pid: u32, name: &str) -> anyhow::Result<()> {
    let status = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status().context("running kill")?;
    if !status.success() {
        bail!("kill -{name} {pid} failed with {status}");
    }
    Ok(())
}

/// A loopback port nobody listens on right now.
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

/// `GET /health` answers 200.
fn health_ok(address: SocketAddr) -> bool {
    let probe = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(&address, Duration::from_millis(500))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head)?;
        Ok(head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.0 200"))
    };
    probe().unwrap_or(false)
}

/// The last lines of a child's log, for error messages.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Bytes of all files under `path`.
pub fn dir_bytes(path: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            total += dir_bytes(&entry.path())?;
        } else if kind.is_file() {
            total += entry.metadata()?.len();
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_bytes_sums_files_at_every_depth() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("top"), [0u8; 10]).unwrap();
        std::fs::write(dir.path().join("a/b/deep"), [0u8; 32]).unwrap();
        assert_eq!(dir_bytes(dir.path()).unwrap(), 42);
    }

    #[test]
    fn health_probe_reads_the_status_line() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let address = listener.local_addr().unwrap();
        let answer = std::thread::spawn(move || {
            for status in ["503 Service Unavailable", "200 OK"] {
                let (mut stream, _) = listener.accept().unwrap();
                let mut request = [0u8; 256];
                let _ = stream.read(&mut request).unwrap();
                stream.write_all(format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n").as_bytes()).unwrap();
            }
        });
        assert!(!health_ok(address));
        assert!(health_ok(address));
        answer.join().unwrap();
    }
}
