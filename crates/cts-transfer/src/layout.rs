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
}

impl Encoding {
    pub fn extension(self) -> &'static str {
        match self {
            Encoding::Gzip => ".json.gz",
            Encoding::Json => ".json",
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

    fn name(service: Option<&'static str>, prefix: &'static str, part: usize) -> FileName<'static> {
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
        let path = name(Some("marketplace"), "audit", 0).object_path();
        let (directory, file) = path.rsplit_once('/').unwrap();
        assert_eq!(directory, "CloudTraces/ap-southeast-3/2026/11/4/system/marketplace");
        let fixed = "audit_CloudTrace_ap-southeast-3_2026-11-04T09-05-00Z_";
        assert!(file.starts_with(fixed) && file.ends_with(".json.gz"), "{file}");
        let suffix = &file[fixed.len()..file.len() - ".json.gz".len()];
        assert!(suffix.len() == 16 && suffix.bytes().all(|b| b.is_ascii_hexdigit()), "{suffix}");

        let unsorted = name(None, "", 0).object_path();
        assert!(unsorted.starts_with("CloudTraces/ap-southeast-3/2026/11/4/system/CloudTrace_ap-southeast-3_"));
        let encrypted = FileName { encrypted: true, encoding: Encoding::Json, ..name(None, "", 0) }.object_path();
        assert!(encrypted.ends_with(".json.enc"), "{encrypted}");
    }

    #[test]
    fn file_days_are_read_from_a_trackers_paths_only() {
        let path = name(Some("marketplace"), "p", 0).object_path();
        assert_eq!(file_day(&path, "ap-southeast-3", "system"), chrono::NaiveDate::from_ymd_opt(2026, 11, 4));
        assert_eq!(file_day(&path, "ap-southeast-3", "other"), None);
        assert_eq!(file_day(&path, "eu-west-0", "system"), None);
        assert_eq!(file_day("CloudTraces/ap-southeast-3/2026/13/4/system/x", "ap-southeast-3", "system"), None);
        assert_eq!(file_day("notes.txt", "ap-southeast-3", "system"), None);
    }

    #[test]
    fn names_are_deterministic_and_distinct_per_service_part_window_and_tracker() {
        let base = name(Some("marketplace"), "p", 0);
        assert_eq!(base.object_path(), name(Some("marketplace"), "p", 0).object_path(), "a retry overwrites");
        let others = [
            name(Some("CTS"), "p", 0),
            name(Some("marketplace"), "p", 1),
            FileName { window: Window::starting_at(base.window.end_ms, 300_000), ..base },
            FileName { tracker_id: "another-tracker-with-the-same-name", ..base },
        ];
        for other in others {
            assert_ne!(base.object_path(), other.object_path());
        }
    }
}
