//! Incoming traces: what a reporter may send, and the checks that turn it
//! into a [`Trace`] (or a [`ValidationError`] naming the field and the rule).

use crate::catalog::CATALOG;
use crate::error::ValidationError;
use crate::trace::{Attributes, BaseUser, SessionContext, Trace, TraceRating, TraceType, UserInfo};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Size limits of one trace.
pub mod limits {
    /// `request` and `response`, each (bytes of the JSON text).
    pub const BODY_MAX: usize = 64 * 1024;
    /// `message`.
    pub const MESSAGE_MAX: usize = 8 * 1024;
    /// Every other text field.
    pub const TEXT_MAX: usize = 1024;
    /// `trace_name`, `service_type`, `resource_type`.
    pub const NAME_MAX: usize = 64;
    /// Entries of `user.invoked_by`.
    pub const INVOKED_BY_MAX: usize = 16;
    /// How far in the future an event time may lie (clock skew), ms.
    pub const FUTURE_SKEW_MS: i64 = 24 * 3600 * 1000;
}

/// The milliseconds since the Unix epoch now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A trace as a reporter sends it. Server-owned fields (`record_time`,
/// `project_id`) are not accepted; `trace_id` is generated when absent;
/// `request`/`response` may be JSON strings or JSON documents.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceInput {
    pub trace_id: Option<String>,
    pub trace_name: Option<String>,
    pub trace_rating: Option<String>,
    pub trace_type: Option<String>,
    pub service_type: Option<String>,
    pub resource_type: Option<String>,
    pub resource_name: Option<String>,
    pub resource_id: Option<String>,
    pub resource_account_id: Option<String>,
    pub read_only: Option<bool>,
    pub tracker_name: Option<String>,
    pub operation_id: Option<String>,
    pub source_ip: Option<String>,
    pub request: Option<Value>,
    pub response: Option<Value>,
    pub code: Option<Value>,
    pub api_version: Option<String>,
    pub message: Option<String>,
    pub time: Option<i64>,
    pub request_id: Option<String>,
    pub location_info: Option<String>,
    pub endpoint: Option<String>,
    pub resource_url: Option<String>,
    pub enterprise_project_id: Option<String>,
    pub user: Option<UserInfo>,
}

impl TraceInput {
    /// Parses one trace from JSON, naming the problem on failure.
    pub fn from_json(json: &str) -> Result<TraceInput, ValidationError> {
        serde_json::from_str(json).map_err(|e| ValidationError::new("trace", e.to_string()))
    }

    /// Validates the input and completes it into the trace cts stores.
    pub fn into_trace(self, project_id: &str, record_time: i64) -> Result<Trace, ValidationError> {
        let trace_id = match self.trace_id {
            Some(id) => normalise_uuid(id)?,
            None => hyphenated(uuid::Uuid::new_v4()),
        };
        let trace_name = required("trace_name", self.trace_name)?;
        check_identifier("trace_name", &trace_name)?;
        let service_type = required("service_type", self.service_type)?;
        check_identifier("service_type", &service_type)?;
        let resource_type = required("resource_type", self.resource_type)?;
        check_identifier("resource_type", &resource_type)?;

        let trace_type = match self.trace_type {
            Some(t) => t.parse::<TraceType>().map_err(|e| ValidationError::new("trace_type", e))?,
            None => TraceType::ApiCall,
        };
        let code = self.code.map(parse_code).transpose()?;
        let trace_rating = match self.trace_rating {
            Some(r) => r.parse::<TraceRating>().map_err(|e| ValidationError::new("trace_rating", e))?,
            None => code.as_deref().map_or(TraceRating::Normal, |c| TraceRating::from_code(c.parse().unwrap_or(200))),
        };
        let tracker_name = match (trace_type.is_data(), self.tracker_name) {
            (true, None) => return Err(ValidationError::new("tracker_name", "is required for data traces")),
            (true, Some(name)) => Some(check_tracker_name(name)?),
            (false, None) => None,
            (false, Some(name)) if name == "system" => None,
            (false, Some(_)) => {
                return Err(ValidationError::new("tracker_name", "management traces belong to the system tracker"))
            }
        };
        let time = match self.time {
            Some(t) if t <= 0 => return Err(ValidationError::new("time", "must be a positive UTC millisecond time")),
            Some(t) if t > record_time + limits::FUTURE_SKEW_MS => {
                return Err(ValidationError::new("time", "lies more than a day in the future"))
            }
            Some(t) => t,
            None => record_time,
        };
        let source_ip = match self.source_ip {
            Some(ip) => {
                ip.parse::<std::net::IpAddr>()
                    .map_err(|_| ValidationError::new("source_ip", "must be an IPv4 or IPv6 address"))?;
                Some(ip)
            }
            None => None,
        };
        let read_only =
            self.read_only.unwrap_or_else(|| CATALOG.find(&service_type, &trace_name).is_some_and(|op| op.read_only));

        Ok(Trace {
            trace_id,
            trace_name,
            trace_rating,
            trace_type,
            service_type,
            resource_type,
            resource_name: text("resource_name", self.resource_name, limits::TEXT_MAX)?,
            resource_id: text("resource_id", self.resource_id, limits::TEXT_MAX)?,
            project_id: project_id.to_owned(),
            resource_account_id: text("resource_account_id", self.resource_account_id, limits::TEXT_MAX)?,
            read_only,
            tracker_name,
            operation_id: text("operation_id", self.operation_id, limits::TEXT_MAX)?,
            source_ip,
            request: body("request", self.request)?,
            response: body("response", self.response)?,
            code,
            api_version: text("api_version", self.api_version, limits::NAME_MAX)?,
            message: long_text("message", self.message, limits::MESSAGE_MAX)?,
            time,
            record_time,
            request_id: text("request_id", self.request_id, limits::TEXT_MAX)?,
            location_info: text("location_info", self.location_info, limits::TEXT_MAX)?,
            endpoint: text("endpoint", self.endpoint, limits::TEXT_MAX)?,
            resource_url: text("resource_url", self.resource_url, limits::TEXT_MAX)?,
            enterprise_project_id: text("enterprise_project_id", self.enterprise_project_id, limits::TEXT_MAX)?,
            user: self.user.map(check_user).transpose()?,
        })
    }
}

/// `id` as a lowercase hyphenated UUID; an id already in that form is kept as it is.
fn normalise_uuid(id: String) -> Result<String, ValidationError> {
    let uuid = uuid::Uuid::try_parse(&id).map_err(|_| ValidationError::new("trace_id", "must be a UUID"))?;
    // The only 36-character form `try_parse` accepts is the hyphenated one.
    if id.len() == uuid::fmt::Hyphenated::LENGTH && !id.bytes().any(|b| b.is_ascii_uppercase()) {
        Ok(id)
    } else {
        Ok(hyphenated(uuid))
    }
}

fn hyphenated(uuid: uuid::Uuid) -> String {
    uuid.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()).to_owned()
}

fn required(field: &str, value: Option<String>) -> Result<String, ValidationError> {
    value.ok_or_else(|| ValidationError::new(field, "is required"))
}

/// `trace_name`, `service_type`, `resource_type`: 1-64 of `[A-Za-z0-9-_.]`,
/// starting with a letter.
pub fn is_valid_identifier(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= limits::NAME_MAX
        && value.starts_with(|c: char| c.is_ascii_alphabetic())
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn check_identifier(field: &str, value: &str) -> Result<(), ValidationError> {
    if is_valid_identifier(value) {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            "must be 1-64 characters of A-Z, a-z, 0-9, '-', '_', '.', starting with a letter",
        ))
    }
}

/// Tracker names: 1-32 of `[A-Za-z0-9-_]`, not starting with `_` or `-`.
pub fn is_valid_tracker_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && !name.starts_with(['_', '-'])
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

fn check_tracker_name(name: String) -> Result<String, ValidationError> {
    if is_valid_tracker_name(&name) {
        Ok(name)
    } else {
        Err(ValidationError::new(
            "tracker_name",
            "must be 1-32 characters of A-Z, a-z, 0-9, '-', '_', not starting with '-' or '_'",
        ))
    }
}

/// A single-line text field: at most `max` bytes, no control characters.
fn text(field: &str, value: Option<String>, max: usize) -> Result<Option<String>, ValidationError> {
    if let Some(v) = &value {
        check_text(field, v, max)?;
    }
    Ok(value)
}

fn check_text(field: &str, value: &str, max: usize) -> Result<(), ValidationError> {
    if value.len() > max {
        return Err(ValidationError::new(field, format!("exceeds {max} bytes")));
    }
    if has_control_char(value, |_| false) {
        return Err(ValidationError::new(field, "must not contain control characters"));
    }
    Ok(())
}

/// A multi-line text field: at most `max` bytes; tabs and line breaks are the
/// only control characters allowed.
fn long_text(field: &str, value: Option<String>, max: usize) -> Result<Option<String>, ValidationError> {
    if let Some(v) = &value {
        if v.len() > max {
            return Err(ValidationError::new(field, format!("exceeds {max} bytes")));
        }
        if has_control_char(v, |b| matches!(b, b'\n' | b'\r' | b'\t')) {
            return Err(ValidationError::new(
                field,
                "must not contain control characters other than tab and line breaks",
            ));
        }
    }
    Ok(value)
}

/// Whether `text` holds a control character ([`char::is_control`]: U+0000 to
/// U+001F and U+007F to U+009F) other than the ASCII ones `allowed` admits.
/// In UTF-8 those are the bytes below 0x20, 0x7F, and 0xC2 followed by 0x80
/// to 0x9F; a branch-free pass over the bytes clears almost every text.
fn has_control_char(text: &str, allowed: fn(u8) -> bool) -> bool {
    const C1_LEAD: u8 = 0xC2;
    let bytes = text.as_bytes();
    let suspect = bytes.iter().fold(false, |found, &b| found | (b < 0x20) | (b == 0x7F) | (b == C1_LEAD));
    suspect
        && bytes.iter().enumerate().any(|(i, &b)| match b {
            0..=0x1F => !allowed(b),
            0x7F => true,
            // A lead byte in valid UTF-8, so a continuation byte follows.
            C1_LEAD => bytes[i + 1] < 0xA0,
            _ => false,
        })
}

/// `request`/`response`: a JSON document, sent either as a string (as CTS
/// returns it) or inline; stored as a string of at most 64 KiB.
fn body(field: &str, value: Option<Value>) -> Result<Option<String>, ValidationError> {
    let text = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s,
        Some(doc) => doc.to_string(),
    };
    if text.len() > limits::BODY_MAX {
        return Err(ValidationError::new(field, format!("exceeds {} bytes", limits::BODY_MAX)));
    }
    if text.contains('\0') {
        return Err(ValidationError::new(field, "must not contain NUL characters"));
    }
    Ok(Some(text))
}

/// `code`: an HTTP status 100-599, sent as a string (as CTS returns it) or a number.
fn parse_code(value: Value) -> Result<String, ValidationError> {
    let status = match &value {
        Value::String(s) if s.len() == 3 => s.parse::<u16>().ok(),
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        _ => None,
    };
    match (status, value) {
        // Three characters that parse to 100-599 are three digits: the text is the status as it is.
        (Some(100..=599), Value::String(text)) => Ok(text),
        (Some(code @ 100..=599), _) => Ok(code.to_string()),
        _ => Err(ValidationError::new("code", "must be an HTTP status code from 100 to 599")),
    }
}

fn check_user(user: UserInfo) -> Result<UserInfo, ValidationError> {
    let UserInfo {
        id,
        name,
        user_name,
        domain,
        account_id,
        access_key_id,
        principal_urn,
        principal_id,
        principal_is_root_user,
        user_type,
        invoked_by,
        session_context,
    } = user;
    if let Some(flag) = &principal_is_root_user {
        if flag != "true" && flag != "false" {
            return Err(ValidationError::new("user.principal_is_root_user", "must be \"true\" or \"false\""));
        }
    }
    if let Some(list) = &invoked_by {
        if list.len() > limits::INVOKED_BY_MAX {
            return Err(ValidationError::new(
                "user.invoked_by",
                format!("has more than {} entries", limits::INVOKED_BY_MAX),
            ));
        }
        for entry in list {
            check_text("user.invoked_by", entry, limits::TEXT_MAX)?;
        }
    }
    let domain = domain
        .map(|d| {
            Ok::<_, ValidationError>(BaseUser {
                id: text("user.domain.id", d.id, limits::TEXT_MAX)?,
                name: text("user.domain.name", d.name, limits::TEXT_MAX)?,
            })
        })
        .transpose()?;
    let session_context = session_context
        .map(|s| {
            let attributes = s
                .attributes
                .map(|a| {
                    Ok::<_, ValidationError>(Attributes {
                        created_at: text("user.session_context.attributes.created_at", a.created_at, limits::NAME_MAX)?,
                        mfa_authenticated: text(
                            "user.session_context.attributes.mfa_authenticated",
                            a.mfa_authenticated,
                            limits::NAME_MAX,
                        )?,
                    })
                })
                .transpose()?;
            Ok::<_, ValidationError>(SessionContext { attributes })
        })
        .transpose()?;
    Ok(UserInfo {
        id: text("user.id", id, limits::TEXT_MAX)?,
        name: text("user.name", name, limits::TEXT_MAX)?,
        user_name: text("user.user_name", user_name, limits::TEXT_MAX)?,
        domain,
        account_id: text("user.account_id", account_id, limits::TEXT_MAX)?,
        access_key_id: text("user.access_key_id", access_key_id, limits::TEXT_MAX)?,
        principal_urn: text("user.principal_urn", principal_urn, limits::TEXT_MAX)?,
        principal_id: text("user.principal_id", principal_id, limits::TEXT_MAX)?,
        principal_is_root_user,
        user_type,
        invoked_by,
        session_context,
    })
}

#[cfg(test)]
mod tests;
