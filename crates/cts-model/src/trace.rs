//! The stored and returned trace record, field for field as CTS v3 lists it.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A recorded trace, exactly as `ListTraces` returns it.
///
/// Absent optional fields are omitted from the JSON (the SDK reads a missing
/// key as `None`). `request` and `response` are JSON documents carried as
/// strings, as in CTS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    pub trace_id: String,
    pub trace_name: String,
    pub trace_rating: TraceRating,
    pub trace_type: TraceType,
    pub service_type: String,
    pub resource_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    pub project_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_account_id: Option<String>,
    pub read_only: bool,
    /// The data tracker a data trace belongs to; `None` for management traces
    /// (which belong to the `system` tracker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracker_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the operation happened, UTC milliseconds.
    pub time: i64,
    /// When cts recorded the trace, UTC milliseconds (set by the server).
    pub record_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location_info: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enterprise_project_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserInfo>,
}

impl Trace {
    /// `true` for data traces (OBS object operations recorded by a data tracker).
    pub fn is_data(&self) -> bool {
        self.trace_type.is_data()
    }

    /// The `user` ListTraces filter matches this name.
    pub fn user_name(&self) -> Option<&str> {
        self.user.as_ref().and_then(|u| u.name.as_deref())
    }

    pub fn access_key_id(&self) -> Option<&str> {
        self.user.as_ref().and_then(|u| u.access_key_id.as_deref())
    }
}

/// Who performed the operation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<BaseUser>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_urn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    /// `"true"` or `"false"`, a string as in CTS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_is_root_user: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub user_type: Option<UserType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoked_by: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_context: Option<SessionContext>,
}

/// The account (domain) a user belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseUser {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Attributes>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attributes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_authenticated: Option<String>,
}

/// Declares a string-valued enum with its wire names, `FromStr`, `Display`
/// and serde through those names.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name { $(#[serde(rename = $wire)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($wire => Ok($name::$variant),)+
                    _ => Err(format!(
                        "must be one of {}",
                        [$($wire),+].join(", ")
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// How serious the outcome was: normal (succeeded), warning (failed),
    /// incident (a failure with serious consequences).
    TraceRating { Normal = "normal", Warning = "warning", Incident = "incident" }
);

wire_enum!(
    /// How the operation was made. `ObsSDK` and `ObsAPI` are data traces.
    TraceType {
        ConsoleAction = "ConsoleAction",
        ApiCall = "ApiCall",
        SystemAction = "SystemAction",
        ObsSdk = "ObsSDK",
        ObsApi = "ObsAPI",
    }
);

wire_enum!(
    /// The kind of principal behind an operation.
    UserType { User = "User", AssumedAgency = "AssumedAgency", ExternalUser = "ExternalUser" }
);

impl TraceRating {
    /// The rating CTS gives an operation by its HTTP status: 2xx/3xx normal,
    /// 4xx warning, 5xx incident.
    pub fn from_code(code: u16) -> TraceRating {
        match code {
            500.. => TraceRating::Incident,
            400..=499 => TraceRating::Warning,
            _ => TraceRating::Normal,
        }
    }
}

impl TraceType {
    pub fn is_data(self) -> bool {
        matches!(self, TraceType::ObsSdk | TraceType::ObsApi)
    }
}
