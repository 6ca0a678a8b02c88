//! Two-stage configuration: raw values from flags, `CTS_*` environment
//! variables and a TOML file ([`RawSettings`]), validated once into
//! [`Config`]. Flags win over variables, variables over the file; every
//! setting has the same name in all three (`--data-dir`, `CTS_DATA_DIR`,
//! `data_dir`).

use anyhow::{bail, Context};
use clap::Args;
use cts_model::redact::Redactor;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Settings shared by the commands that run or open a store.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    /// Where cts keeps its data (store, identities, keys).
    #[arg(long, env = "CTS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The address the API listens on.
    #[arg(long, env = "CTS_LISTEN")]
    pub listen: Option<String>,
    /// How long traces stay queryable (`7d`, `365d`, `12h`).
    #[arg(long, env = "CTS_RETENTION")]
    pub retention: Option<String>,
    /// The S3-compatible object store (trace file transfer, CheckObsBuckets): `http(s)://host[:port]`.
    #[arg(long, env = "CTS_OBS_ENDPOINT")]
    pub obs_endpoint: Option<String>,
    /// The object store's region (as its SigV4 signatures name it).
    #[arg(long, env = "CTS_OBS_REGION")]
    pub obs_region: Option<String>,
    #[arg(long, env = "CTS_OBS_ACCESS_KEY")]
    pub obs_access_key: Option<String>,
    #[arg(long, env = "CTS_OBS_SECRET_KEY", hide_env_values = true)]
    pub obs_secret_key: Option<String>,
    /// `true`: path-style addressing (`endpoint/bucket/key`, Garage, MinIO); `false` (default): virtual-hosted.
    #[arg(long, env = "CTS_OBS_PATH_STYLE")]
    pub obs_path_style: Option<bool>,
    /// The region named in trace file paths and SMN topic URNs (default `ap-southeast-3`).
    #[arg(long, env = "CTS_REGION")]
    pub region: Option<String>,
    /// How often trackers deliver trace files, and the length of a delivery window (`5m` default).
    #[arg(long, env = "CTS_TRANSFER_INTERVAL")]
    pub transfer_interval: Option<String>,
    /// A file of master keys for trace file encryption, one `KMS_ID BASE64_KEY` per line.
    #[arg(long, env = "CTS_KEYRING")]
    pub keyring: Option<PathBuf>,
    /// Trackers with `is_lts_enabled` stream each trace as an RFC 5424 message to this syslog collector
    /// (`host:port`, TCP).
    #[arg(long, env = "CTS_SIEM_SYSLOG")]
    pub siem_syslog: Option<String>,
    /// ... and/or as JSON lines POSTed to this endpoint (`http(s)://...`).
    #[arg(long, env = "CTS_SIEM_HTTP")]
    pub siem_http: Option<String>,
    /// The SMTP relay of email subscriptions: `smtp://host[:port]`.
    #[arg(long, env = "CTS_SMTP_URL")]
    pub smtp_url: Option<String>,
    /// A notification still undelivered this long after it was matched is dead-lettered (`24h` default).
    #[arg(long, env = "CTS_DEAD_LETTER_AFTER")]
    pub dead_letter_after: Option<String>,
    /// Serve HTTPS with this PEM certificate chain (leaf first); needs `tls_key`.
    #[arg(long, env = "CTS_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `tls_cert`.
    #[arg(long, env = "CTS_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Requests per second one access key may send (a burst of twice that; `500` default).
    #[arg(long, env = "CTS_RATE_LIMIT_KEY")]
    pub rate_limit_key: Option<u32>,
    /// Requests per second one project may send with all its keys (`2000` default).
    #[arg(long, env = "CTS_RATE_LIMIT_PROJECT")]
    pub rate_limit_project: Option<u32>,
    /// Secret names whose values are redacted from request, response and message before storage, comma-separated:
    /// `+otp,pan` adds to the defaults (password, token, secret, card numbers, ...), `otp,pan` replaces them, `off`
    /// stores traces as sent. Card numbers are masked unless `off`.
    #[arg(long, env = "CTS_REDACT_KEYS")]
    pub redact_keys: Option<String>,
    /// The longest a request may take to get its response started (`60s` default); longer gets 503 CTS.0503.
    #[arg(long, env = "CTS_REQUEST_TIMEOUT")]
    pub request_timeout: Option<String>,
    /// The longest a client may take to send a request's headers, and again its body (`15s` default); a body
    /// slower than that gets 408 CTS.0408.
    #[arg(long, env = "CTS_READ_TIMEOUT")]
    pub read_timeout: Option<String>,
    /// Connections served at once (`1024` default); more wait to be accepted.
    #[arg(long, env = "CTS_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// The longest an SQL query (`POST .../queries`, `cts sql`) may run (`30s` default); longer fails naming the limit.
    #[arg(long, env = "CTS_SQL_TIMEOUT")]
    pub sql_timeout: Option<String>,
    /// The memory one SQL query may use (`512MiB` default; bytes or KiB/MiB/GiB); more fails naming the limit.
    #[arg(long, env = "CTS_SQL_MEMORY")]
    pub sql_memory: Option<String>,
    /// The most rows an SQL query returns (`10000` default); the rest are cut and the answer says so.
    #[arg(long, env = "CTS_SQL_MAX_ROWS")]
    pub sql_max_rows: Option<usize>,
    /// A TOML file with any of these settings as keys.
    #[arg(long, env = "CTS_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
}

/// The validated configuration every command works from.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub retention: Duration,
    /// `None` when no object store is configured.
    pub obs: Option<cts_obs::ObsConfig>,
    pub region: String,
    pub smtp_url: Option<String>,
    pub dead_letter_after: Duration,
    pub transfer_interval: Duration,
    /// Empty when no keyring is configured.
    pub keyring: cts_transfer::Keyring,
    /// `None` when neither a syslog collector nor an HTTP endpoint is configured.
    pub stream: Option<cts_transfer::StreamConfig>,
    /// `Some`: serve HTTPS.
    pub tls: Option<cts_server::TlsConfig>,
    pub rate_limits: cts_server::RateLimitConfig,
    /// `None`: redaction is off.
    pub redactor: Option<Redactor>,
    pub limits: cts_server::RequestLimits,
    pub sql: SqlSettings,
}

/// The limits of SQL queries (used by servers built with the `sql` feature).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlSettings {
    pub timeout: Duration,
    pub memory_bytes: usize,
    pub max_rows: usize,
}

impl Default for SqlSettings {
    /// The SQL engine's own defaults: 30 s, 512 MiB, 10,000 rows.
    fn default() -> Self {
        SqlSettings { timeout: Duration::from_secs(30), memory_bytes: 512 << 20, max_rows: 10_000 }
    }
}

/// The smallest `sql_memory`: the SQL engine needs some room to run at all.
const MIN_SQL_MEMORY_BYTES: usize = 1 << 20;

pub const DEFAULT_DATA_DIR: &str = "cts-data";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_RETENTION: &str = "7d";
/// KooGallery's AP-Singapore region: in trace file paths, SMN URNs, and the object store's default region.
pub const DEFAULT_REGION: &str = "ap-southeast-3";
/// CTS delivers trace files every 5 minutes.
pub const DEFAULT_TRANSFER_INTERVAL: &str = "5m";

impl RawSettings {
    /// Fills what flags and variables left unset from the config file, then validates.
    pub fn resolve(self) -> anyhow::Result<Config> {
        let file = match &self.config {
            Some(path) => RawSettings::from_file(path)?,
            None => RawSettings::default(),
        };
        let merged = RawSettings {
            data_dir: self.data_dir.or(file.data_dir),
            listen: self.listen.or(file.listen),
            retention: self.retention.or(file.retention),
            obs_endpoint: self.obs_endpoint.or(file.obs_endpoint),
            obs_region: self.obs_region.or(file.obs_region),
            obs_access_key: self.obs_access_key.or(file.obs_access_key),
            obs_secret_key: self.obs_secret_key.or(file.obs_secret_key),
            obs_path_style: self.obs_path_style.or(file.obs_path_style),
            region: self.region.or(file.region),
            smtp_url: self.smtp_url.or(file.smtp_url),
            dead_letter_after: self.dead_letter_after.or(file.dead_letter_after),
            transfer_interval: self.transfer_interval.or(file.transfer_interval),
            keyring: self.keyring.or(file.keyring),
            siem_syslog: self.siem_syslog.or(file.siem_syslog),
            siem_http: self.siem_http.or(file.siem_http),
            tls_cert: self.tls_cert.or(file.tls_cert),
            tls_key: self.tls_key.or(file.tls_key),
            rate_limit_key: self.rate_limit_key.or(file.rate_limit_key),
            rate_limit_project: self.rate_limit_project.or(file.rate_limit_project),
            redact_keys: self.redact_keys.or(file.redact_keys),
            request_timeout: self.request_timeout.or(file.request_timeout),
            read_timeout: self.read_timeout.or(file.read_timeout),
            max_connections: self.max_connections.or(file.max_connections),
            sql_timeout: self.sql_timeout.or(file.sql_timeout),
            sql_memory: self.sql_memory.or(file.sql_memory),
            sql_max_rows: self.sql_max_rows.or(file.sql_max_rows),
            config: None,
        };
        merged.validate()
    }

    fn from_file(path: &Path) -> anyhow::Result<RawSettings> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("config file {}", path.display()))
    }

    fn validate(self) -> anyhow::Result<Config> {
        let listen_text = self.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen_text
            .parse()
            .with_context(|| format!("listen: {listen_text:?} is not a HOST:PORT address such as 127.0.0.1:8080"))?;
        let retention = parse_duration("retention", self.retention.as_deref().unwrap_or(DEFAULT_RETENTION))?;
        let obs = match self.obs_endpoint {
            None => None,
            Some(endpoint) => {
                let (Some(access_key), Some(secret_key)) = (self.obs_access_key, self.obs_secret_key) else {
                    bail!("obs_endpoint: obs_access_key and obs_secret_key are required with it");
                };
                let config = cts_obs::ObsConfig {
                    endpoint,
                    region: self.obs_region.unwrap_or_else(|| DEFAULT_REGION.to_owned()),
                    access_key,
                    secret_key,
                    path_style: self.obs_path_style.unwrap_or(false),
                };
                // Validated here, once, so a bad endpoint stops the start with the setting's name.
                cts_obs::Obs::new(config.clone()).context("obs_endpoint")?;
                Some(config)
            }
        };
        let dead_letter_after =
            parse_duration("dead_letter_after", self.dead_letter_after.as_deref().unwrap_or("24h"))?;
        let transfer_interval = parse_duration(
            "transfer_interval",
            self.transfer_interval.as_deref().unwrap_or(DEFAULT_TRANSFER_INTERVAL),
        )?;
        let keyring = match &self.keyring {
            Some(path) => cts_transfer::Keyring::load(path).context("keyring")?,
            None => cts_transfer::Keyring::default(),
        };
        let stream = (self.siem_syslog.is_some() || self.siem_http.is_some()).then(|| cts_transfer::StreamConfig {
            syslog: self.siem_syslog,
            http: self.siem_http,
            hostname: std::env::var("HOSTNAME").unwrap_or_else(|_| "cts".to_owned()),
        });
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(cts_server::TlsConfig::from_pem_files(cert, key).context("tls_cert")?),
            (None, None) => None,
            _ => bail!("tls_cert and tls_key go together: set both to serve HTTPS, or neither"),
        };
        let defaults = cts_server::RateLimitConfig::default();
        let per_second = |setting: &str, value: Option<u32>, default| match value {
            None => Ok(default),
            Some(value) => std::num::NonZeroU32::new(value).with_context(|| format!("{setting}: must be at least 1")),
        };
        let rate_limits = cts_server::RateLimitConfig {
            per_key: per_second("rate_limit_key", self.rate_limit_key, defaults.per_key)?,
            per_project: per_second("rate_limit_project", self.rate_limit_project, defaults.per_project)?,
        };
        let redactor = parse_redact_keys(self.redact_keys.as_deref())?;
        let default_limits = cts_server::RequestLimits::default();
        let timeout = |setting: &str, value: Option<&str>, default: Duration| match value {
            None => Ok(default),
            Some(text) => parse_duration(setting, text),
        };
        let limits = cts_server::RequestLimits {
            request_timeout: timeout(
                "request_timeout",
                self.request_timeout.as_deref(),
                default_limits.request_timeout,
            )?,
            read_timeout: timeout("read_timeout", self.read_timeout.as_deref(), default_limits.read_timeout)?,
            max_connections: match self.max_connections {
                None => default_limits.max_connections,
                Some(0) => bail!("max_connections: must be at least 1"),
                Some(max) => max,
            },
        };
        let default_sql = SqlSettings::default();
        let sql = SqlSettings {
            timeout: timeout("sql_timeout", self.sql_timeout.as_deref(), default_sql.timeout)?,
            memory_bytes: match self.sql_memory.as_deref() {
                None => default_sql.memory_bytes,
                Some(text) => parse_bytes("sql_memory", text, MIN_SQL_MEMORY_BYTES)?,
            },
            max_rows: match self.sql_max_rows {
                None => default_sql.max_rows,
                Some(0) => bail!("sql_max_rows: must be at least 1"),
                Some(rows) => rows,
            },
        };
        Ok(Config {
            limits,
            sql,
            tls,
            rate_limits,
            redactor,
            smtp_url: self.smtp_url,
            dead_letter_after,
            data_dir: self.data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            listen,
            retention,
            obs,
            region: self.region.unwrap_or_else(|| DEFAULT_REGION.to_owned()),
            transfer_interval,
            keyring,
            stream,
        })
    }
}

/// The redactor of the `redact_keys` setting: unset gives the defaults, `off` none, `+a,b` the defaults and `a`, `b`,
/// `a,b` only `a` and `b` (with card numbers).
fn parse_redact_keys(setting: Option<&str>) -> anyhow::Result<Option<Redactor>> {
    let Some(text) = setting.map(str::trim) else { return Ok(Some(Redactor::default())) };
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let (extend, list) = match text.strip_prefix('+') {
        Some(list) => (true, list),
        None => (false, text),
    };
    let names: Vec<&str> = list.split(',').map(str::trim).collect();
    if let Some(bad) =
        names.iter().find(|name| name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || "_-.".contains(c)))
    {
        bail!("redact_keys: {bad:?} is not a field name (letters, digits, `_`, `-`, `.`; `off` turns redaction off)");
    }
    Ok(Some(if extend { Redactor::with_extra_keys(names) } else { Redactor::new(names) }))
}

/// Parses a size: bytes, or a number with `KiB`, `MiB` or `GiB` (`512MiB`, `2 GiB`); at least `minimum`.
fn parse_bytes(setting: &str, text: &str, minimum: usize) -> anyhow::Result<usize> {
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let shift = match unit.trim() {
        "" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        _ => bail!("{setting}: {text:?} is not a size such as 512MiB, 2GiB or 1048576"),
    };
    let bytes = number
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .with_context(|| format!("{setting}: {text:?} is not a size such as 512MiB, 2GiB or 1048576"))?;
    if bytes < minimum {
        bail!("{setting}: must be at least {} MiB", minimum >> 20);
    }
    Ok(bytes)
}

/// Parses `7d`, `365d`, `12h`, `90m`, `30s` (and humantime forms like `1week`).
pub fn parse_duration(setting: &str, text: &str) -> anyhow::Result<Duration> {
    let duration = humantime::parse_duration(text)
        .with_context(|| format!("{setting}: {text:?} is not a duration such as 7d, 365d or 12h"))?;
    if duration.is_zero() {
        bail!("{setting}: must be longer than zero");
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(data_dir: Option<&str>, listen: Option<&str>, retention: Option<&str>) -> RawSettings {
        RawSettings {
            data_dir: data_dir.map(PathBuf::from),
            listen: listen.map(str::to_owned),
            retention: retention.map(str::to_owned),
            ..RawSettings::default()
        }
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let config = RawSettings::default().resolve().unwrap();
        assert_eq!(config.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.retention, Duration::from_secs(7 * 86400));
        assert_eq!((config.region.as_str(), config.transfer_interval), (DEFAULT_REGION, Duration::from_secs(300)));
    }

    #[test]
    fn flags_win_over_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cts.toml");
        std::fs::write(&file, "data_dir = \"/from/file\"\nlisten = \"0.0.0.0:9000\"\nretention = \"30d\"\n").unwrap();
        let mut settings = raw(Some("/from/flag"), None, None);
        settings.config = Some(file);
        let config = settings.resolve().unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/from/flag"));
        assert_eq!(config.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(config.retention, Duration::from_secs(30 * 86400));
    }

    #[test]
    fn invalid_values_name_the_setting() {
        let cases = [
            (raw(None, Some("localhost"), None), "listen"),
            (raw(None, None, Some("forever")), "retention"),
            (raw(None, None, Some("0d")), "retention"),
            (RawSettings { transfer_interval: Some("often".into()), ..raw(None, None, None) }, "transfer_interval"),
            (RawSettings { keyring: Some("/no/such/keyring".into()), ..raw(None, None, None) }, "keyring"),
            (
                RawSettings { obs_endpoint: Some("http://127.0.0.1:3900".into()), ..raw(None, None, None) },
                "obs_endpoint",
            ),
            (
                RawSettings {
                    obs_endpoint: Some("127.0.0.1:3900".into()),
                    obs_access_key: Some("AK".into()),
                    obs_secret_key: Some("SK".into()),
                    ..raw(None, None, None)
                },
                "obs_endpoint",
            ),
            (RawSettings { tls_key: Some("key.pem".into()), ..raw(None, None, None) }, "tls_cert and tls_key"),
            (
                RawSettings {
                    tls_cert: Some("/no/such/cert.pem".into()),
                    tls_key: Some("/no/such/key.pem".into()),
                    ..raw(None, None, None)
                },
                "tls_cert",
            ),
            (RawSettings { rate_limit_key: Some(0), ..raw(None, None, None) }, "rate_limit_key"),
            (RawSettings { rate_limit_project: Some(0), ..raw(None, None, None) }, "rate_limit_project"),
            (RawSettings { redact_keys: Some("otp,,pan".into()), ..raw(None, None, None) }, "redact_keys"),
            (RawSettings { request_timeout: Some("soon".into()), ..raw(None, None, None) }, "request_timeout"),
            (RawSettings { read_timeout: Some("0s".into()), ..raw(None, None, None) }, "read_timeout"),
            (RawSettings { max_connections: Some(0), ..raw(None, None, None) }, "max_connections"),
            (RawSettings { sql_timeout: Some("0s".into()), ..raw(None, None, None) }, "sql_timeout"),
            (RawSettings { sql_memory: Some("lots".into()), ..raw(None, None, None) }, "sql_memory"),
            (RawSettings { sql_memory: Some("512KiB".into()), ..raw(None, None, None) }, "sql_memory"),
            (RawSettings { sql_memory: Some("99999999999GiB".into()), ..raw(None, None, None) }, "sql_memory"),
            (RawSettings { sql_max_rows: Some(0), ..raw(None, None, None) }, "sql_max_rows"),
            (RawSettings { redact_keys: Some("+a b".into()), ..raw(None, None, None) }, "redact_keys"),
        ];
        for (settings, setting) in cases {
            let err = settings.resolve().unwrap_err().to_string();
            assert!(err.starts_with(setting), "{err}");
        }
    }

    #[test]
    fn sql_limits_read_durations_sizes_and_counts() {
        let config = RawSettings::default().resolve().unwrap();
        assert_eq!(config.sql, SqlSettings::default());
        let settings = RawSettings {
            sql_timeout: Some("2m".into()),
            sql_memory: Some("2GiB".into()),
            sql_max_rows: Some(50),
            ..RawSettings::default()
        };
        let sql = settings.resolve().unwrap().sql;
        assert_eq!(sql, SqlSettings { timeout: Duration::from_secs(120), memory_bytes: 2 << 30, max_rows: 50 });
        for (text, bytes) in [("1048576", 1 << 20), ("64 MiB", 64 << 20), ("4096KiB", 4 << 20)] {
            assert_eq!(parse_bytes("sql_memory", text, 1 << 20).unwrap(), bytes, "{text}");
        }
    }

    #[test]
    fn redact_keys_extend_replace_or_turn_off_the_defaults() {
        let keys = |setting: Option<&str>| parse_redact_keys(setting).unwrap().map(|r| r.secret_keys().to_vec());
        let defaults = Redactor::default().secret_keys().to_vec();
        assert_eq!(keys(None), Some(defaults.clone()));
        assert_eq!(keys(Some("off")), None);
        assert_eq!(keys(Some("OTP, pan_number")), Some(vec!["otp".to_owned(), "pannumber".to_owned()]));
        let extended = keys(Some("+otp")).unwrap();
        assert!(extended.contains(&"otp".to_owned()) && defaults.iter().all(|key| extended.contains(key)));
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cts.toml");
        std::fs::write(&file, "data-dir = \"x\"\n").unwrap();
        let settings = RawSettings { config: Some(file), ..RawSettings::default() };
        assert!(format!("{:#}", settings.resolve().unwrap_err()).contains("unknown field"));
    }
}
