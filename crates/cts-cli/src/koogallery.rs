//! `cts koogallery serve`: the KooGallery marketplace as a service of its own, reporting every operation to a cts
//! endpoint through `cts_reporter::Reporter` (the demo runs the same wiring in process, see [`start`]).
//!
//! Two-stage configuration, as in `config.rs`: raw values from flags, `KOOGALLERY_*` environment variables and a
//! TOML file ([`RawKooGallerySettings`]), validated once into [`KooGalleryConfig`]. Every setting has the same name in
//! all three (`--cts-endpoint`, `KOOGALLERY_CTS_ENDPOINT`, `cts_endpoint`); flags win over variables, variables over
//! the file.

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use cts_client::Credentials;
use cts_koogallery::{AppState, Clock, KooGallery};
use cts_reporter::{Reporter, ReporterConfig};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[derive(Debug, Args)]
pub struct KooGalleryArgs {
    #[command(subcommand)]
    command: KooGalleryCommand,
}

#[derive(Debug, Subcommand)]
enum KooGalleryCommand {
    /// Run the KooGallery marketplace API, reporting every operation to cts, until Ctrl-C or SIGTERM.
    Serve(RawKooGallerySettings),
}

/// The settings of `cts koogallery serve`, as given.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKooGallerySettings {
    /// Where the marketplace keeps its state (journal and snapshots).
    #[arg(long, env = "KOOGALLERY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The address the marketplace API listens on.
    #[arg(long, env = "KOOGALLERY_LISTEN")]
    pub listen: Option<String>,
    /// The cts API the traces go to: `http://host:port`.
    #[arg(long, env = "KOOGALLERY_CTS_ENDPOINT")]
    pub cts_endpoint: Option<String>,
    /// The access key traces are signed with (a `reporter`-role key: `cts admin key create`).
    #[arg(long, env = "KOOGALLERY_CTS_ACCESS_KEY")]
    pub cts_access_key: Option<String>,
    #[arg(long, env = "KOOGALLERY_CTS_SECRET_KEY", hide_env_values = true)]
    pub cts_secret_key: Option<String>,
    /// The cts project the traces belong to (the access key's project).
    #[arg(long, env = "KOOGALLERY_CTS_PROJECT_ID")]
    pub cts_project_id: Option<String>,
    /// Where traces wait while cts is unreachable (default `<data-dir>/spool`).
    #[arg(long, env = "KOOGALLERY_SPOOL_DIR")]
    pub spool_dir: Option<PathBuf>,
    /// A proxy (IP address) whose `X-Forwarded-For` names the client; repeat the flag, or separate with commas.
    #[arg(long, env = "KOOGALLERY_TRUSTED_PROXY", value_delimiter = ',')]
    #[serde(default)]
    pub trusted_proxy: Vec<String>,
    /// The `X-Admin-Token` of the untraced `/v1/admin/*` routes (accounts, users, products); 16 characters or more.
    #[arg(long, env = "KOOGALLERY_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// A TOML file with any of these settings as keys.
    #[arg(long, env = "KOOGALLERY_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
}

/// The validated configuration of `cts koogallery serve`.
#[derive(Debug, Clone)]
pub struct KooGalleryConfig {
    pub service: ServiceConfig,
    pub reporter: ReporterConfig,
}

/// What the marketplace service itself needs, wherever it runs.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub trusted_proxies: Vec<IpAddr>,
    pub admin_token: String,
}

pub const DEFAULT_DATA_DIR: &str = "koogallery-data";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8090";
pub const DEFAULT_CTS_ENDPOINT: &str = "http://127.0.0.1:8080";
const MIN_ADMIN_TOKEN_CHARS: usize = 16;
/// How long stopping may take to deliver what is pending; the rest stays in the spool for the next start.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(10);
/// How often the platform's due actions (payment confirmation, expiry, renewal) run.
const TICK_PERIOD: Duration = Duration::from_secs(1);

impl RawKooGallerySettings {
    /// Fills what flags and variables left unset from the config file, then validates.
    pub fn resolve(self) -> anyhow::Result<KooGalleryConfig> {
        let file = match &self.config {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("config file {}", path.display()))?
            }
            None => RawKooGallerySettings::default(),
        };
        let merged = RawKooGallerySettings {
            data_dir: self.data_dir.or(file.data_dir),
            listen: self.listen.or(file.listen),
            cts_endpoint: self.cts_endpoint.or(file.cts_endpoint),
            cts_access_key: self.cts_access_key.or(file.cts_access_key),
            cts_secret_key: self.cts_secret_key.or(file.cts_secret_key),
            cts_project_id: self.cts_project_id.or(file.cts_project_id),
            spool_dir: self.spool_dir.or(file.spool_dir),
            trusted_proxy: if self.trusted_proxy.is_empty() { file.trusted_proxy } else { self.trusted_proxy },
            admin_token: self.admin_token.or(file.admin_token),
            config: None,
        };
        merged.validate()
    }

    fn validate(self) -> anyhow::Result<KooGalleryConfig> {
        let listen_text = self.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen_text
            .parse()
            .with_context(|| format!("listen: {listen_text:?} is not a HOST:PORT address such as {DEFAULT_LISTEN}"))?;
        let trusted_proxies = self
            .trusted_proxy
            .iter()
            .map(|text| text.trim().parse().with_context(|| format!("trusted_proxy: {text:?} is not an IP address")))
            .collect::<anyhow::Result<_>>()?;
        let Some(admin_token) = self.admin_token else { bail!("admin_token: required") };
        if admin_token.chars().count() < MIN_ADMIN_TOKEN_CHARS {
            bail!("admin_token: needs at least {MIN_ADMIN_TOKEN_CHARS} characters");
        }
        let cts_endpoint = self.cts_endpoint.unwrap_or_else(|| DEFAULT_CTS_ENDPOINT.to_owned());
        if !(cts_endpoint.starts_with("http://") || cts_endpoint.starts_with("https://")) {
            bail!("cts_endpoint: {cts_endpoint:?} is not an http(s)://host:port URL");
        }
        let required = |setting: &str, value: Option<String>| match value.filter(|value| !value.is_empty()) {
            Some(value) => Ok(value),
            None => Err(anyhow::anyhow!("{setting}: required (a reporter key: cts admin key create)")),
        };
        let credentials = Credentials {
            access_key: required("cts_access_key", self.cts_access_key)?,
            secret_key: required("cts_secret_key", self.cts_secret_key)?,
            project_id: required("cts_project_id", self.cts_project_id)?,
        };
        let data_dir = self.data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let spool_dir = self.spool_dir.unwrap_or_else(|| data_dir.join("spool"));
        Ok(KooGalleryConfig {
            reporter: ReporterConfig::new(cts_endpoint, credentials, spool_dir),
            service: ServiceConfig { data_dir, listen, trusted_proxies, admin_token },
        })
    }
}

pub fn run(args: KooGalleryArgs) -> anyhow::Result<()> {
    match args.command {
        KooGalleryCommand::Serve(settings) => serve(settings.resolve()?),
    }
}

fn serve(config: KooGalleryConfig) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let reporter = Reporter::start(config.reporter).context("starting the reporter")?;
        let mut marketplace = start(&config.service, Clock::System, reporter).await?;
        marketplace.keep_time();
        println!("KooGallery listening on http://{}", marketplace.address);
        crate::serve::shutdown_signal().await;
        marketplace.stop().await
    })
}

/// A KooGallery service serving in this process, reporting through its [`Reporter`].
pub struct Marketplace {
    pub address: SocketAddr,
    pub kg: Arc<KooGallery>,
    pub reporter: Reporter,
    stop: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
    ticker: Option<JoinHandle<()>>,
}

/// Opens the marketplace in `config.data_dir` on `clock`, binds `config.listen` and serves in a task, every
/// operation traced to `reporter`.
pub async fn start(config: &ServiceConfig, clock: Clock, reporter: Reporter) -> anyhow::Result<Marketplace> {
    let sink: Arc<dyn cts_reporter::TraceSink> = Arc::new(reporter.clone());
    let kg = open_blocking(&config.data_dir, clock, sink.clone(), &config.admin_token).await?;
    let state = AppState { kg: kg.clone(), trace_sink: sink, trusted_proxies: config.trusted_proxies.clone() };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, data_dir = %config.data_dir.display(), "KooGallery serving");
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(cts_koogallery::serve(listener, state, async {
        let _ = stopped.await;
    }));
    Ok(Marketplace { address, kg, reporter, stop, server, ticker: None })
}

async fn open_blocking(
    dir: &Path,
    clock: Clock,
    sink: Arc<dyn cts_reporter::TraceSink>,
    admin_token: &str,
) -> anyhow::Result<Arc<KooGallery>> {
    let (dir, admin_token) = (dir.to_owned(), admin_token.to_owned());
    let opened = tokio::task::spawn_blocking(move || {
        KooGallery::open(&dir, clock, sink, &admin_token)
            .with_context(|| format!("opening the marketplace in {}", dir.display()))
    });
    Ok(Arc::new(opened.await??))
}

impl Marketplace {
    /// Runs the platform's due actions every second from now on (a simulated clock first catches up with real time).
    pub fn keep_time(&mut self) {
        self.ticker.get_or_insert_with(|| self.kg.spawn_ticker(TICK_PERIOD));
    }

    /// Stops serving (requests in flight are answered), then delivers what the reporter holds, or spools it for the
    /// next start when cts does not take it in time.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        let served = self.server.await.context("the KooGallery server task failed")?;
        if let Some(ticker) = self.ticker {
            ticker.abort();
        }
        if let Err(error) = self.reporter.shutdown(SHUTDOWN_FLUSH).await {
            tracing::warn!(%error, "not every trace reached cts before stopping; the spool keeps the rest");
        }
        tracing::info!("KooGallery stopped");
        served.context("serving KooGallery")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete() -> RawKooGallerySettings {
        RawKooGallerySettings {
            cts_access_key: Some("AK".into()),
            cts_secret_key: Some("SK".into()),
            cts_project_id: Some("project".into()),
            admin_token: Some("a-long-enough-admin-token".into()),
            ..RawKooGallerySettings::default()
        }
    }

    #[test]
    fn defaults_apply_and_the_spool_lives_in_the_data_dir() {
        let config = complete().resolve().unwrap();
        assert_eq!(config.service.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(config.service.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.reporter.endpoint, DEFAULT_CTS_ENDPOINT);
        assert_eq!(config.reporter.spool_dir, PathBuf::from(DEFAULT_DATA_DIR).join("spool"));
        assert!(config.service.trusted_proxies.is_empty());
    }

    #[test]
    fn flags_win_over_the_config_file_and_proxies_repeat() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("koogallery.toml");
        std::fs::write(
            &file,
            "data_dir = \"/from/file\"\nlisten = \"0.0.0.0:9090\"\ntrusted_proxy = [\"10.0.0.1\"]\n\
             cts_endpoint = \"http://cts:8080\"\n",
        )
        .unwrap();
        let settings = RawKooGallerySettings {
            data_dir: Some("/from/flag".into()),
            trusted_proxy: vec!["127.0.0.1".into(), "::1".into()],
            config: Some(file),
            ..complete()
        };
        let config = settings.resolve().unwrap();
        assert_eq!(config.service.data_dir, PathBuf::from("/from/flag"));
        assert_eq!(config.service.listen.to_string(), "0.0.0.0:9090");
        assert_eq!(config.reporter.endpoint, "http://cts:8080");
        assert_eq!(config.reporter.spool_dir, PathBuf::from("/from/flag/spool"));
        let expected: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
        assert_eq!(config.service.trusted_proxies, expected);
    }

    #[test]
    fn invalid_or_missing_values_name_the_setting() {
        let cases = [
            (RawKooGallerySettings { listen: Some("localhost".into()), ..complete() }, "listen"),
            (RawKooGallerySettings { trusted_proxy: vec!["proxy.local".into()], ..complete() }, "trusted_proxy"),
            (RawKooGallerySettings { admin_token: None, ..complete() }, "admin_token"),
            (RawKooGallerySettings { admin_token: Some("short".into()), ..complete() }, "admin_token"),
            (RawKooGallerySettings { cts_endpoint: Some("cts:8080".into()), ..complete() }, "cts_endpoint"),
            (RawKooGallerySettings { cts_access_key: None, ..complete() }, "cts_access_key"),
            (RawKooGallerySettings { cts_secret_key: Some(String::new()), ..complete() }, "cts_secret_key"),
            (RawKooGallerySettings { cts_project_id: None, ..complete() }, "cts_project_id"),
        ];
        for (settings, setting) in cases {
            let error = settings.resolve().unwrap_err().to_string();
            assert!(error.starts_with(setting), "{setting}: {error}");
        }
    }
}
