//! The segment schema: one column per trace field, with how to read it from and write it into a trace.
//!
//! `user` is flattened into `user_*` columns (`user_name` is `user.name`, `user_user_name` is
//! `user.user_name`, `user_domain_id` is `user.domain.id`, ...). Two booleans keep the shape of
//! the optional objects exact: `user_present` (the trace has a `user` object) and `user_domain_present`
//! (the user has a `domain` object). `user_invoked_by` is a list of strings and
//! `user_session_context` the JSON text of `user.session_context`.

use cts_model::{Trace, TraceRating, TraceType, UserInfo};
use std::borrow::Cow;

type TextGetter = for<'a> fn(&'a Trace) -> Option<Cow<'a, str>>;
/// Called only for non-null values.
type TextSetter = fn(&mut Trace, &str) -> Result<(), String>;

/// How a column's values are taken from and put into a trace.
pub(crate) enum Access {
    Int64 { get: fn(&Trace) -> i64, set: fn(&mut Trace, i64) },
    Bool { get: fn(&Trace) -> bool, set: fn(&mut Trace, bool) },
    Text { get: TextGetter, set: TextSetter, nullable: bool, storage: Storage },
    TextList { get: for<'a> fn(&'a Trace) -> Option<&'a [String]>, set: fn(&mut Trace, Vec<String>) },
}

/// How a text column is encoded in a segment's Parquet file (every column is zstd-compressed):
/// dictionaries for values repeated across rows (tens to a few thousand distinct per segment), plain
/// for the free-form and unique values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Storage {
    Dictionary,
    Plain,
}

pub(crate) struct Column {
    pub name: &'static str,
    pub access: Access,
}

fn user_mut(trace: &mut Trace) -> &mut UserInfo {
    trace.user.get_or_insert_with(UserInfo::default)
}

macro_rules! required_text {
    ($name:literal, $field:ident, storage: $storage:expr) => {
        Column {
            name: $name,
            access: Access::Text {
                get: |t| Some(Cow::Borrowed(t.$field.as_str())),
                set: |t, v| {
                    t.$field = v.to_owned();
                    Ok(())
                },
                nullable: false,
                storage: $storage,
            },
        }
    };
}

macro_rules! optional_text {
    ($name:literal, $field:ident, storage: $storage:expr) => {
        Column {
            name: $name,
            access: Access::Text {
                get: |t| t.$field.as_deref().map(Cow::Borrowed),
                set: |t, v| {
                    t.$field = Some(v.to_owned());
                    Ok(())
                },
                nullable: true,
                storage: $storage,
            },
        }
    };
}

macro_rules! user_text {
    ($name:literal, $field:ident, storage: $storage:expr) => {
        Column {
            name: $name,
            access: Access::Text {
                get: |t| t.user.as_ref()?.$field.as_deref().map(Cow::Borrowed),
                set: |t, v| {
                    user_mut(t).$field = Some(v.to_owned());
                    Ok(())
                },
                nullable: true,
                storage: $storage,
            },
        }
    };
}

macro_rules! domain_text {
    ($name:literal, $field:ident) => {
        Column {
            name: $name,
            access: Access::Text {
                get: |t| t.user.as_ref()?.domain.as_ref()?.$field.as_deref().map(Cow::Borrowed),
                set: |t, v| {
                    user_mut(t).domain.get_or_insert_default().$field = Some(v.to_owned());
                    Ok(())
                },
                nullable: true,
                storage: Storage::Dictionary,
            },
        }
    };
}

/// Index of `time` in [`COLUMNS`] (the first sort column).
pub(crate) const TIME_COLUMN: usize = 0;
/// Index of `trace_id` in [`COLUMNS`] (the second sort column).
pub(crate) const TRACE_ID_COLUMN: usize = 1;

/// Every column of a segment, in file order. Integers are delta-encoded, booleans plain, text per its
/// [`Storage`].
pub(crate) static COLUMNS: &[Column] = &[
    Column { name: "time", access: Access::Int64 { get: |t| t.time, set: |t, v| t.time = v } },
    required_text!("trace_id", trace_id, storage: Storage::Plain),
    required_text!("project_id", project_id, storage: Storage::Dictionary),
    required_text!("trace_name", trace_name, storage: Storage::Dictionary),
    Column {
        name: "trace_rating",
        access: Access::Text {
            get: |t| Some(Cow::Borrowed(t.trace_rating.as_str())),
            set: |t, v| {
                t.trace_rating = v.parse::<TraceRating>()?;
                Ok(())
            },
            nullable: false,
            storage: Storage::Dictionary,
        },
    },
    Column {
        name: "trace_type",
        access: Access::Text {
            get: |t| Some(Cow::Borrowed(t.trace_type.as_str())),
            set: |t, v| {
                t.trace_type = v.parse::<TraceType>()?;
                Ok(())
            },
            nullable: false,
            storage: Storage::Dictionary,
        },
    },
    required_text!("service_type", service_type, storage: Storage::Dictionary),
    required_text!("resource_type", resource_type, storage: Storage::Dictionary),
    optional_text!("resource_name", resource_name, storage: Storage::Plain),
    optional_text!("resource_id", resource_id, storage: Storage::Plain),
    optional_text!("resource_account_id", resource_account_id, storage: Storage::Plain),
    Column { name: "read_only", access: Access::Bool { get: |t| t.read_only, set: |t, v| t.read_only = v } },
    optional_text!("tracker_name", tracker_name, storage: Storage::Dictionary),
    optional_text!("operation_id", operation_id, storage: Storage::Plain),
    optional_text!("source_ip", source_ip, storage: Storage::Plain),
    optional_text!("request", request, storage: Storage::Plain),
    optional_text!("response", response, storage: Storage::Plain),
    optional_text!("code", code, storage: Storage::Dictionary),
    optional_text!("api_version", api_version, storage: Storage::Dictionary),
    optional_text!("message", message, storage: Storage::Plain),
    Column { name: "record_time", access: Access::Int64 { get: |t| t.record_time, set: |t, v| t.record_time = v } },
    optional_text!("request_id", request_id, storage: Storage::Plain),
    optional_text!("location_info", location_info, storage: Storage::Dictionary),
    optional_text!("endpoint", endpoint, storage: Storage::Dictionary),
    optional_text!("resource_url", resource_url, storage: Storage::Plain),
    optional_text!("enterprise_project_id", enterprise_project_id, storage: Storage::Dictionary),
    Column {
        name: "user_present",
        access: Access::Bool {
            get: |t| t.user.is_some(),
            set: |t, present| {
                if present {
                    user_mut(t);
                }
            },
        },
    },
    user_text!("user_id", id, storage: Storage::Dictionary),
    user_text!("user_name", name, storage: Storage::Dictionary),
    user_text!("user_user_name", user_name, storage: Storage::Dictionary),
    Column {
        name: "user_domain_present",
        access: Access::Bool {
            get: |t| t.user.as_ref().is_some_and(|u| u.domain.is_some()),
            set: |t, present| {
                if present {
                    user_mut(t).domain.get_or_insert_default();
                }
            },
        },
    },
    domain_text!("user_domain_id", id),
    domain_text!("user_domain_name", name),
    user_text!("user_account_id", account_id, storage: Storage::Dictionary),
    user_text!("user_access_key_id", access_key_id, storage: Storage::Dictionary),
    user_text!("user_principal_urn", principal_urn, storage: Storage::Dictionary),
    user_text!("user_principal_id", principal_id, storage: Storage::Dictionary),
    user_text!("user_principal_is_root_user", principal_is_root_user, storage: Storage::Dictionary),
    Column {
        name: "user_type",
        access: Access::Text {
            get: |t| t.user.as_ref()?.user_type.map(|kind| Cow::Borrowed(kind.as_str())),
            set: |t, v| {
                user_mut(t).user_type = Some(v.parse()?);
                Ok(())
            },
            nullable: true,
            storage: Storage::Dictionary,
        },
    },
    Column {
        name: "user_invoked_by",
        access: Access::TextList {
            get: |t| t.user.as_ref()?.invoked_by.as_deref(),
            set: |t, v| user_mut(t).invoked_by = Some(v),
        },
    },
    Column {
        name: "user_session_context",
        access: Access::Text {
            get: |t| {
                let context = t.user.as_ref()?.session_context.as_ref()?;
                Some(Cow::Owned(serde_json::to_string(context).expect("a SessionContext always serialises")))
            },
            set: |t, v| {
                user_mut(t).session_context = Some(serde_json::from_str(v).map_err(|e| e.to_string())?);
                Ok(())
            },
            nullable: true,
            storage: Storage::Plain,
        },
    },
];

/// The trace every decoded row starts from; the columns then fill it in.
pub(crate) fn blank_trace() -> Trace {
    Trace {
        trace_id: String::new(),
        trace_name: String::new(),
        trace_rating: TraceRating::Normal,
        trace_type: TraceType::ApiCall,
        service_type: String::new(),
        resource_type: String::new(),
        resource_name: None,
        resource_id: None,
        project_id: String::new(),
        resource_account_id: None,
        read_only: false,
        tracker_name: None,
        operation_id: None,
        source_ip: None,
        request: None,
        response: None,
        code: None,
        api_version: None,
        message: None,
        time: 0,
        record_time: 0,
        request_id: None,
        location_info: None,
        endpoint: None,
        resource_url: None,
        enterprise_project_id: None,
        user: None,
    }
}
