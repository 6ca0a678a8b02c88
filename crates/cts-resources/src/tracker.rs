//! Trackers: the stored record (serialized field for field as the SDK's
//! `TrackerResponseBody` reads it), the body of CreateTracker/UpdateTracker,
//! and the rules both must follow.

use crate::error::ResourceError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The name of the management tracker, the only one of its type.
pub const SYSTEM_TRACKER_NAME: &str = "system";
/// The most data trackers a project may have.
pub const MAX_DATA_TRACKERS: usize = 100;
/// The only cloud service agency CTS knows.
pub const CTS_AGENCY_NAME: &str = "cts_admin_trust";
/// The storage periods (days) a trace bucket may have; 0 keeps objects forever.
pub const BUCKET_LIFECYCLES: [u32; 6] = [0, 30, 60, 90, 180, 1095];

/// Management (`system`, exactly one per project) or data (OBS object operations, up to 100).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackerType {
    System,
    Data,
}

impl TrackerType {
    pub fn as_str(self) -> &'static str {
        match self {
            TrackerType::System => "system",
            TrackerType::Data => "data",
        }
    }
}

impl FromStr for TrackerType {
    type Err = ResourceError;

    fn from_str(value: &str) -> Result<TrackerType, ResourceError> {
        match value {
            "system" => Ok(TrackerType::System),
            "data" => Ok(TrackerType::Data),
            other => Err(ResourceError::InvalidTrackerType(other.to_owned())),
        }
    }
}

impl fmt::Display for TrackerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a tracker records. `error` is set by trace file delivery (never by a request): the tracker is
/// enabled but its files cannot be delivered; [`Tracker::detail`] says why, and delivery sets it back to
/// `enabled` once files go through again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackerStatus {
    Enabled,
    Disabled,
    Error,
}

/// Why delivery put a tracker in `error`, as CTS names it in [`Tracker::detail`].
pub mod delivery_detail {
    /// The bucket refuses these credentials, or the object store cannot be reached.
    pub const BUCKET_POLICY_ERROR: &str = "bucketPolicyError";
    /// The bucket does not exist (and the tracker does not create it).
    pub const NO_BUCKET: &str = "noBucket";
    /// Trace file encryption is on but no master key for the tracker's `kms_id` is configured (cts's own).
    pub const KMS_KEY_ERROR: &str = "kmsKeyError";
}

impl FromStr for TrackerStatus {
    type Err = ResourceError;

    fn from_str(value: &str) -> Result<TrackerStatus, ResourceError> {
        match value {
            "enabled" => Ok(TrackerStatus::Enabled),
            "disabled" => Ok(TrackerStatus::Disabled),
            other => Err(ResourceError::InvalidStatus(other.to_owned())),
        }
    }
}

/// A tracker as stored and answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracker {
    /// A UUID.
    pub id: String,
    /// Creation time, UTC milliseconds.
    pub create_time: i64,
    pub domain_id: String,
    pub project_id: String,
    pub tracker_type: TrackerType,
    pub tracker_name: String,
    pub status: TrackerStatus,
    /// Only with status `error`: why (see [`delivery_detail`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agency_name: Option<String>,
    /// Management tracker only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_organization_tracker: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub management_event_selector: Option<ManagementEventSelector>,
    pub lts: Lts,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub obs_info: Option<ObsInfo>,
    /// Management tracker only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_support_trace_files_encryption: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_id: Option<String>,
    /// Management tracker only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_support_validate: Option<bool>,
    /// Data trackers only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_bucket: Option<DataBucket>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagementEventSelector {
    /// Services whose traces are not delivered; only `KMS` is supported.
    pub exclude_service: Vec<String>,
}

/// Trace analysis in the log service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lts {
    pub is_lts_enabled: bool,
}

/// Where trace files are delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObsInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket_name: Option<String>,
    pub file_prefix_name: String,
    pub is_obs_created: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket_lifecycle: Option<u32>,
    pub compress_type: CompressType,
    pub is_sort_by_service: bool,
}

impl Default for ObsInfo {
    /// What CTS assumes for the fields a request leaves out.
    fn default() -> ObsInfo {
        ObsInfo {
            bucket_name: None,
            file_prefix_name: String::new(),
            is_obs_created: false,
            bucket_lifecycle: None,
            compress_type: CompressType::Gzip,
            is_sort_by_service: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CompressType {
    Gzip,
    Json,
    /// A cts extension: Parquet trace files (zstd), for DuckDB, Spark or pandas.
    Parquet,
}

/// The bucket a data tracker watches and the operations it records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataBucket {
    pub data_bucket_name: String,
    pub data_event: Vec<DataEvent>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DataEvent {
    Write,
    Read,
}

/// The body of CreateTracker and UpdateTracker: every field optional, so an
/// update changes exactly the fields it carries (nested objects field by field).
/// Enumerated values are kept as text so that each bad value gets its own error.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackerRequest {
    pub tracker_type: Option<String>,
    pub tracker_name: Option<String>,
    pub status: Option<String>,
    pub agency_name: Option<String>,
    pub is_organization_tracker: Option<bool>,
    pub management_event_selector: Option<ManagementEventSelector>,
    pub is_lts_enabled: Option<bool>,
    pub obs_info: Option<ObsInfoRequest>,
    pub is_support_trace_files_encryption: Option<bool>,
    pub kms_id: Option<String>,
    pub is_support_validate: Option<bool>,
    pub data_bucket: Option<DataBucketRequest>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObsInfoRequest {
    pub bucket_name: Option<String>,
    pub file_prefix_name: Option<String>,
    pub is_obs_created: Option<bool>,
    pub bucket_lifecycle: Option<u32>,
    pub compress_type: Option<String>,
    pub is_sort_by_service: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataBucketRequest {
    pub data_bucket_name: Option<String>,
    pub data_event: Option<Vec<String>>,
}

impl TrackerRequest {
    /// The tracker this request is about: its type (required) and name (for
    /// the management tracker, absent or `system`; for a data tracker, required).
    pub(crate) fn target(&self) -> Result<(TrackerType, String), ResourceError> {
        let tracker_type = match &self.tracker_type {
            Some(value) => value.parse::<TrackerType>()?,
            None => return Err(ResourceError::invalid("tracker_type", "is required")),
        };
        let name = match (tracker_type, &self.tracker_name) {
            (TrackerType::System, None) => SYSTEM_TRACKER_NAME.to_owned(),
            (TrackerType::System, Some(name)) if name == SYSTEM_TRACKER_NAME => name.clone(),
            (TrackerType::System, Some(name)) => return Err(ResourceError::ManagementTrackerName(name.clone())),
            (TrackerType::Data, None) => return Err(ResourceError::invalid("tracker_name", "is required")),
            (TrackerType::Data, Some(name)) if name == SYSTEM_TRACKER_NAME => {
                return Err(ResourceError::DataTrackerNamedSystem)
            }
            (TrackerType::Data, Some(name)) => check_tracker_name(name)?.to_owned(),
        };
        Ok((tracker_type, name))
    }

    /// Applies every field this request carries to `tracker` (whose type the
    /// request names), then checks that the result is a consistent tracker.
    pub(crate) fn apply_to(&self, tracker: &mut Tracker) -> Result<(), ResourceError> {
        let management = tracker.tracker_type == TrackerType::System;
        if let Some(status) = &self.status {
            tracker.status = status.parse()?;
            tracker.detail = None;
        }
        if let Some(agency_name) = &self.agency_name {
            if agency_name != CTS_AGENCY_NAME {
                return Err(ResourceError::invalid("agency_name", format!("must be {CTS_AGENCY_NAME}")));
            }
            tracker.agency_name = Some(agency_name.clone());
        }
        if let Some(selector) = &self.management_event_selector {
            if let Some(service) = selector.exclude_service.iter().find(|service| *service != "KMS") {
                return Err(ResourceError::invalid(
                    "management_event_selector.exclude_service",
                    format!("{service:?} cannot be excluded: only KMS can"),
                ));
            }
            tracker.management_event_selector = Some(selector.clone());
        }
        if let Some(enabled) = self.is_lts_enabled {
            tracker.lts.is_lts_enabled = enabled;
        }
        if let Some(obs_info) = &self.obs_info {
            obs_info.apply_to(tracker.obs_info.get_or_insert_with(ObsInfo::default))?;
        }
        for (field, value, target) in [
            ("is_organization_tracker", self.is_organization_tracker, &mut tracker.is_organization_tracker),
            (
                "is_support_trace_files_encryption",
                self.is_support_trace_files_encryption,
                &mut tracker.is_support_trace_files_encryption,
            ),
            ("is_support_validate", self.is_support_validate, &mut tracker.is_support_validate),
        ] {
            if let Some(value) = value {
                if !management {
                    return Err(ResourceError::invalid(field, "applies to the management tracker only"));
                }
                *target = Some(value);
            }
        }
        if let Some(kms_id) = &self.kms_id {
            if !management {
                return Err(ResourceError::invalid("kms_id", "applies to the management tracker only"));
            }
            if kms_id.is_empty() || kms_id.len() > 128 || !kms_id.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ResourceError::invalid("kms_id", "must be 1-128 printable characters"));
            }
            tracker.kms_id = Some(kms_id.clone());
        }
        if let Some(data_bucket) = &self.data_bucket {
            if management {
                return Err(ResourceError::DataBucketOnManagementTracker);
            }
            tracker.data_bucket = Some(data_bucket.merged_into(tracker.data_bucket.take())?);
        }
        check_consistency(tracker)
    }
}

impl ObsInfoRequest {
    fn apply_to(&self, obs_info: &mut ObsInfo) -> Result<(), ResourceError> {
        if let Some(bucket_name) = &self.bucket_name {
            obs_info.bucket_name = Some(check_bucket_name("obs_info.bucket_name", bucket_name)?.to_owned());
        }
        if let Some(prefix) = &self.file_prefix_name {
            let valid = prefix.len() <= 64
                && prefix.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
            if !valid {
                return Err(ResourceError::InvalidFilePrefix(prefix.clone()));
            }
            obs_info.file_prefix_name = prefix.clone();
        }
        if let Some(created) = self.is_obs_created {
            obs_info.is_obs_created = created;
        }
        if let Some(days) = self.bucket_lifecycle {
            if !BUCKET_LIFECYCLES.contains(&days) {
                return Err(ResourceError::invalid(
                    "obs_info.bucket_lifecycle",
                    format!("must be one of {BUCKET_LIFECYCLES:?} (days)"),
                ));
            }
            obs_info.bucket_lifecycle = Some(days);
        }
        if let Some(compress_type) = &self.compress_type {
            obs_info.compress_type = match compress_type.as_str() {
                "gzip" => CompressType::Gzip,
                "json" => CompressType::Json,
                "parquet" => CompressType::Parquet,
                _ => return Err(ResourceError::invalid("obs_info.compress_type", "must be gzip, json or parquet")),
            };
        }
        if let Some(sort) = self.is_sort_by_service {
            obs_info.is_sort_by_service = sort;
        }
        Ok(())
    }
}

impl DataBucketRequest {
    /// The data bucket after this request: the bucket is set once, at creation; the events may change.
    fn merged_into(&self, current: Option<DataBucket>) -> Result<DataBucket, ResourceError> {
        let data_bucket_name = match (&self.data_bucket_name, current.as_ref()) {
            (Some(name), Some(current)) if *name != current.data_bucket_name => {
                return Err(ResourceError::invalid(
                    "data_bucket.data_bucket_name",
                    "cannot be changed once the tracker is created",
                ))
            }
            (Some(name), _) => check_bucket_name("data_bucket.data_bucket_name", name)?.to_owned(),
            (None, Some(current)) => current.data_bucket_name.clone(),
            (None, None) => return Err(ResourceError::invalid("data_bucket.data_bucket_name", "is required")),
        };
        let data_event = match (&self.data_event, current) {
            (Some(events), _) => parse_data_events(events)?,
            (None, Some(current)) => current.data_event,
            (None, None) => return Err(ResourceError::invalid("data_bucket.data_event", "is required")),
        };
        Ok(DataBucket { data_bucket_name, data_event })
    }
}

/// `WRITE` and/or `READ`, each at most once.
fn parse_data_events(events: &[String]) -> Result<Vec<DataEvent>, ResourceError> {
    let invalid = || ResourceError::invalid("data_bucket.data_event", "must be a non-empty subset of [WRITE, READ]");
    let mut parsed = Vec::with_capacity(events.len());
    for event in events {
        let event = match event.as_str() {
            "WRITE" => DataEvent::Write,
            "READ" => DataEvent::Read,
            _ => return Err(invalid()),
        };
        if parsed.contains(&event) {
            return Err(invalid());
        }
        parsed.push(event);
    }
    if parsed.is_empty() {
        return Err(invalid());
    }
    Ok(parsed)
}

/// The rules that span fields, checked on the tracker an operation would leave.
fn check_consistency(tracker: &Tracker) -> Result<(), ResourceError> {
    if tracker.is_support_trace_files_encryption == Some(true) && tracker.kms_id.is_none() {
        return Err(ResourceError::invalid("kms_id", "is required when is_support_trace_files_encryption is true"));
    }
    if tracker.tracker_type == TrackerType::Data && tracker.data_bucket.is_none() {
        return Err(ResourceError::invalid("data_bucket", "is required for data trackers"));
    }
    Ok(())
}

/// Tracker names: 1-32 of `[A-Za-z0-9-_]`, not starting with `_` or `-`.
pub fn check_tracker_name(name: &str) -> Result<&str, ResourceError> {
    if cts_model::is_valid_tracker_name(name) {
        Ok(name)
    } else {
        Err(ResourceError::InvalidTrackerName(name.to_owned()))
    }
}

/// OBS (S3) bucket names: 3-63 of `[a-z0-9.-]`, starting and ending with a
/// letter or digit, no `..`, `.-` or `-.`, not formatted as an IPv4 address.
pub fn check_bucket_name<'a>(field: &'static str, name: &'a str) -> Result<&'a str, ResourceError> {
    let bytes = name.as_bytes();
    let edge = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let valid = (3..=63).contains(&bytes.len())
        && bytes.iter().all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.'))
        && edge(bytes.first())
        && edge(bytes.last())
        && !["..", ".-", "-."].iter().any(|pair| name.contains(pair))
        && name.parse::<std::net::Ipv4Addr>().is_err();
    if valid {
        Ok(name)
    } else {
        Err(ResourceError::InvalidBucketName { field, name: name.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_the_s3_rules() {
        let cases = [
            ("abc", true),
            ("my-bucket.logs-2024", true),
            (&"a".repeat(63), true),
            ("ab", false),
            (&"a".repeat(64), false),
            ("My-bucket", false),
            ("-bucket", false),
            ("bucket-", false),
            ("bucket.", false),
            ("buc..ket", false),
            ("buc.-ket", false),
            ("buc-.ket", false),
            ("192.168.1.1", false),
            ("192.168.1.1a", true),
            ("bucket_name", false),
        ];
        for (name, valid) in cases {
            assert_eq!(check_bucket_name("bucket", name).is_ok(), valid, "{name}");
        }
    }

    #[test]
    fn tracker_names() {
        let cases = [
            ("t", true),
            ("Tracker_1-b", true),
            ("0abc", true),
            (&"a".repeat(32), true),
            ("", false),
            (&"a".repeat(33), false),
            ("_t", false),
            ("-t", false),
            ("t.1", false),
            ("tr acker", false),
            ("trackér", false),
        ];
        for (name, valid) in cases {
            assert_eq!(check_tracker_name(name).is_ok(), valid, "{name}");
        }
    }

    #[test]
    fn data_events_are_a_non_empty_subset_without_repeats() {
        let events = |list: &[&str]| parse_data_events(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(events(&["READ", "WRITE"]).unwrap(), [DataEvent::Read, DataEvent::Write]);
        assert_eq!(events(&["WRITE"]).unwrap(), [DataEvent::Write]);
        for bad in [&[][..], &["READ", "READ"], &["read"], &["DELETE"]] {
            assert!(events(bad).is_err(), "{bad:?}");
        }
    }
}
