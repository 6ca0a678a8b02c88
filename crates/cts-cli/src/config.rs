//! Two-stage configuration: raw values from flags, `CTS_*` environment
//! variables and a TOML file ([`RawSettings`]), validated once into
//! [`Config`]. Flags win over variables, variables over the file; every
//! setting has the same name in all three (`--data-dir`, `CTS_DATA_DIR`,
//! `data_dir`).

use anyhow::{bail, Context};
use clap::Args;
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
}

pub const DEFAULT_DATA_DIR: &str = "cts-data";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_RETENTION: &str = "7d";

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
        Ok(Config { data_dir: self.data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)), listen, retention })
    }
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
        ];
        for (settings, setting) in cases {
            let err = settings.resolve().unwrap_err().to_string();
            assert!(err.starts_with(setting), "{err}");
        }
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
