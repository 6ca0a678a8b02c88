//! Where trace files go: delivery windows and deterministic object names (see `LAYOUT.md`).
//!
//! A name depends only on the tracker, the service, the window and the part number, never on when the
//! delivery ran, so a retried window overwrites its files instead of adding new ones.

use chrono::{DateTime, Datelike, Utc};
use sha2::{Digest, Sha256};

/// A delivery window: the traces whose `time` is in `[start_ms, end_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Window {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Window {
    /// The window of length `length_ms` (aligned to the Unix epoch) that holds `time_ms`.
    pub fn containing(time_ms: i64, length_ms: i64) -> Window {
        let start_ms = time_ms.div_euclid(length_ms) * length_ms;
        Window { start_ms, end_ms: start_ms + length_ms }
    }

    /// The window of the same length that starts at `start_ms`.
    pub fn starting_at(start_ms: i64, length_ms: i64) -> Window {
        Window { start_ms, end_ms: start_ms + length_ms }
    }
}

/// The encodings a trace file can have, each with its file name ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `{"traces":[...]}`, gzip-compressed: `.json.gz`.
    Gzip,
    /// `{"traces":[...]}`: `.json`.
    Json,
    /// A Parquet file of the store's segment schema, zstd pages (`compress_type: parquet`, a cts extension):
    /// `.parquet`.
    Parquet,
}

impl Encoding {
    pub fn extension(self) -> &'static str {
        match self {
            Encoding::Gzip => ".json.gz",
            Encoding::Json => ".json",
            Encoding::Parquet => ".parquet",
        }
    }
}

/// The name ending of an encrypted file (after the encoding's).
pub const ENCRYPTED_EXTENSION: &str = ".enc";

/// Everything an object name depends on.
#[derive(Debug, Clone, Copy)]
pub struct FileName<'a> {
    pub region: &'a str,
    pub tracker_id: &'a str,
    pub tracker_name: &'a str,
    /// The tracker's `file_prefix_name` (may be empty).
    pub file_prefix: &'a str,
    /// The service directory; `None` when the tracker does not sort by service.
    pub service: Option<&'a str>,
    pub window: Window,
    /// Which part of a window's (service's) traces, from 0, when they are split across files.
    pub part: usize,
    pub encoding: Encoding,
    pub encrypted: bool,
}

impl FileName<'_> {
    /// `CloudTraces/{region}/{YYYY}/{M}/{D}/{tracker}/{Service}/{prefix}_CloudTrace_{region}_{YYYY-MM-DD}T{hh-mm-ss}Z_{16 hex}{ext}`
    /// (no `{Service}/` when the tracker does not sort by service; no `{prefix}_` when the prefix is empty), all
    /// dates those of the window's start in UTC.
    pub fn object_path(&self) -> String {
        let start = utc(self.window.start_ms);
        let mut path = format!(
            "CloudTraces/{}/{}/{}/{}/{}/",
            self.region,
            start.year(),
            start.month(),
            start.day(),
            self.tracker_name
        );
        if let Some(service) = self.service {
            path.push_str(service);
            path.push('/');
        }
        if !self.file_prefix.is_empty() {
            path.push_str(self.file_prefix);
            path.push('_');
        }
        path.push_str(&format!(
            "CloudTrace_{}_{}Z_{}{}",
            self.region,
            start.format("%Y-%m-%dT%H-%M-%S"),
            self.unique_suffix(),
            self.encoding.extension()
        ));
        if self.encrypted {
            path.push_str(ENCRYPTED_EXTENSION);
        }
        path
    }

    /// 16 hex digits that tell apart the files of one window: the tracker (two trackers may share a name over
    /// time), the service and the part.
    fn unique_suffix(&self) -> String {
        let mut hash = Sha256::new();
        for field in
            [self.tracker_id, self.service.unwrap_or(""), &self.window.start_ms.to_string(), &self.part.to_string()]
        {
            hash.update(field.as_bytes());
            hash.update([0]);
        }
        hex::encode(&hash.finalize()[..8])
    }
}

/// The directory of a tracker's digests, under its day directories (one stream per tracker, whatever its
/// services: see `LAYOUT.md`).
pub const DIGEST_DIRECTORY: &str = "Digest/CTS";

/// Everything a digest's object name depends on.
#[derive(Debug, Clone, Copy)]
pub struct DigestName<'a> {
    pub region: &'a str,
    pub tracker_name: &'a str,
    /// The tracker's `file_prefix_name` (may be empty).
    pub file_prefix: &'a str,
    /// The start of the digest period.
    pub period_start_ms: i64,
}

impl DigestName<'_> {
    /// `CloudTraces/{region}/{YYYY}/{M}/{D}/{tracker}/Digest/CTS/{prefix}_CloudTrace-Digest_{region}_{YYYY-MM-DD}T{hh-mm-ss}Z.json.gz`,
    /// the dates those of the period's start in UTC.
    pub fn object_path(&self) -> String {
        let start = utc(self.period_start_ms);
        let prefix = if self.file_prefix.is_empty() { String::new() } else { format!("{}_", self.file_prefix) };
        format!(
            "CloudTraces/{region}/{}/{}/{}/{}/{DIGEST_DIRECTORY}/{prefix}CloudTrace-Digest_{region}_{}Z.json.gz",
            start.year(),
            start.month(),
            start.day(),
            self.tracker_name,
            start.format("%Y-%m-%dT%H-%M-%S"),
            region = self.region,
        )
    }
}

/// What an object key under `CloudTraces/` says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectKey {
    pub region: String,
    pub day: chrono::NaiveDate,
    pub tracker_name: String,
    /// Whether it is in the tracker's digest directory.
    pub is_digest: bool,
    /// The time in the file name (a trace file's window start, a digest's period start), when it has one.
    pub time_ms: Option<i64>,
}

impl ObjectKey {
    /// Parses `[...prefix/]CloudTraces/{region}/{YYYY}/{M}/{D}/{tracker}/...`; `None` for any other key.
    pub fn parse(key: &str) -> Option<ObjectKey> {
        let start = if key.starts_with("CloudTraces/") { 0 } else { key.find("/CloudTraces/")? + 1 };
        let mut parts = key[start..].split('/').skip(1);
        let region = parts.next()?.to_owned();
        let (year, month, day) =
            (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?.parse().ok()?);
        let day = chrono::NaiveDate::from_ymd_opt(year, month, day)?;
        let tracker_name = parts.next()?.to_owned();
        let rest: Vec<&str> = parts.collect();
        let file = rest.last()?;
        let is_digest = rest.len() == 3 && rest[..2].join("/") == DIGEST_DIRECTORY;
        let time_ms = file.rfind(&format!("_{region}_")).and_then(|at| {
            let stamp = file.get(at + region.len() + 2..at + region.len() + 2 + 20)?;
            let time = chrono::NaiveDateTime::parse_from_str(stamp.strip_suffix('Z')?, "%Y-%m-%dT%H-%M-%S").ok()?;
            Some(time.and_utc().timestamp_millis())
        });
        Some(ObjectKey { region, day, tracker_name, is_digest, time_ms })
    }
}

/// The UTC day of a trace file of `tracker_name` (from its `{YYYY}/{M}/{D}` directories); `None` for any other
/// object.
pub fn file_day(path: &str, region: &str, tracker_name: &str) -> Option<chrono::NaiveDate> {
    let mut parts = path.split('/');
    let prefix = (parts.next()?, parts.next()?);
    if prefix != ("CloudTraces", region) {
        return None;
    }
    let (year, month, day) = (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?.parse().ok()?);
    (parts.next()? == tracker_name).then(|| chrono::NaiveDate::from_ymd_opt(year, month, day)).flatten()
}

fn utc(time_ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(time_ms).unwrap_or(DateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_of(service: Option<&'static str>, prefix: &'static str, part: usize) -> FileName<'static> {
        FileName {
            region: "ap-southeast-3",
            tracker_id: "0b4c6c27-0b1f-4cc1-9f7e-2f2b1c1f3f10",
            tracker_name: "system",
            file_prefix: prefix,
            service,
            // 2026-11-04T09:05:00Z, a 5-minute window.
            window: Window::containing(1_793_783_100_000 + 42_000, 300_000),
            part,
            encoding: Encoding::Gzip,
            encrypted: false,
        }
    }

    #[test]
    fn windows_are_aligned_to_the_epoch() {
        assert_eq!(Window::containing(1_000, 300), Window { start_ms: 900, end_ms: 1_200 });
        assert_eq!(Window::containing(1_200, 300), Window { start_ms: 1_200, end_ms: 1_500 });
        assert_eq!(Window::containing(-1, 300), Window { start_ms: -300, end_ms: 0 });
        assert_eq!(Window::starting_at(900, 300), Window::containing(1_199, 300));
    }

    #[test]
    fn object_paths_follow_the_cts_layout() {
        let path = name_of(Some("marketplace"), "audit", 0).object_path();
        let (directory, file) = path.rsplit_once('/').unwrap();
        assert_eq!(directory, "CloudTraces/ap-southeast-3/2026/11/4/system/marketplace");
        let fixed = "audit_CloudTrace_ap-southeast-3_2026-11-04T09-05-00Z_";
        assert!(file.starts_with(fixed) && file.ends_with(".json.gz"), "{file}");
        let suffix = &file[fixed.len()..file.len() - ".json.gz".len()];
        assert!(suffix.len() == 16 && suffix.bytes().all(|b| b.is_ascii_hexdigit()), "{suffix}");

        let unsorted = name_of(None, "", 0).object_path();
        assert!(unsorted.starts_with("CloudTraces/ap-southeast-3/2026/11/4/system/CloudTrace_ap-southeast-3_"));
        let encrypted = FileName { encrypted: true, encoding: Encoding::Json, ..name_of(None, "", 0) }.object_path();
        assert!(encrypted.ends_with(".json.enc"), "{encrypted}");
    }

    #[test]
    fn file_days_are_read_from_a_trackers_paths_only() {
        let path = name_of(Some("marketplace"), "p", 0).object_path();
        assert_eq!(file_day(&path, "ap-southeast-3", "system"), chrono::NaiveDate::from_ymd_opt(2026, 11, 4));
        assert_eq!(file_day(&path, "ap-southeast-3", "other"), None);
        assert_eq!(file_day(&path, "eu-west-0", "system"), None);
        assert_eq!(file_day("CloudTraces/ap-southeast-3/2026/13/4/system/x", "ap-southeast-3", "system"), None);
        assert_eq!(file_day("notes.txt", "ap-southeast-3", "system"), None);
    }

    #[test]
    fn digest_names_follow_the_layout_and_parse_back() {
        let name = DigestName {
            region: "ap-southeast-3",
            tracker_name: "system",
            file_prefix: "audit",
            period_start_ms: 1_793_782_800_000,
        };
        let path = name.object_path();
        assert_eq!(
            path,
            "CloudTraces/ap-southeast-3/2026/11/4/system/Digest/CTS/audit_CloudTrace-Digest_ap-southeast-3_2026-11-04T09-00-00Z.json.gz"
        );
        let parsed = ObjectKey::parse(&path).unwrap();
        assert_eq!((parsed.is_digest, parsed.time_ms), (true, Some(1_793_782_800_000)));
        let unprefixed = DigestName { file_prefix: "", ..name }.object_path();
        assert!(unprefixed.contains("/Digest/CTS/CloudTrace-Digest_"), "{unprefixed}");

        let file = name_of(Some("CTS"), "audit", 0).object_path();
        let parsed = ObjectKey::parse(&format!("copy/{file}")).unwrap();
        let expected = ObjectKey {
            region: "ap-southeast-3".into(),
            day: chrono::NaiveDate::from_ymd_opt(2026, 11, 4).unwrap(),
            tracker_name: "system".into(),
            is_digest: false,
            time_ms: Some(1_793_783_100_000),
        };
        assert_eq!(parsed, expected, "a trace file in a service directory named like the digest service");
        let stray = ObjectKey::parse("CloudTraces/ap-southeast-3/2026/11/4/system/CTS/evil.json").unwrap();
        assert_eq!((stray.is_digest, stray.time_ms), (false, None));
        assert_eq!(ObjectKey::parse("CloudTraces/ap-southeast-3/2026/11/x/system/a"), None);
        assert_eq!(ObjectKey::parse("elsewhere/a.json"), None);
    }

    #[test]
    fn names_are_deterministic_and_distinct_per_service_part_window_and_tracker() {
        let base = name_of(Some("marketplace"), "p", 0);
        assert_eq!(base.object_path(), name_of(Some("marketplace"), "p", 0).object_path(), "a retry overwrites");
        let others = [
            name_of(Some("CTS"), "p", 0),
            name_of(Some("marketplace"), "p", 1),
            FileName { window: Window::starting_at(base.window.end_ms, 300_000), ..base },
            FileName { tracker_id: "another-tracker-with-the-same-name", ..base },
        ];
        for other in others {
            assert_ne!(base.object_path(), other.object_path());
        }
    }
}
