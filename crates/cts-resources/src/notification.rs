//! Key event notifications: the stored record (serialized field for field as
//! the SDK's `NotificationsResponseBody` reads it), the body of
//! CreateNotification/UpdateNotification and every rule both must follow.
//!
//! Delivery (matching traces against operations, users and filter rules, and
//! publishing to the SMN topic) is not done here; the record keeps what it
//! needs, and [`FilterRule::parse`] reads a stored rule back.

use crate::error::ResourceError;
use crate::tracker::CTS_AGENCY_NAME;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The most key event notifications a project may have.
pub const MAX_NOTIFICATIONS: usize = 100;
/// The most rules a notification's filter may have.
pub const MAX_FILTER_RULES: usize = 6;
/// The most user groups, and the most users over all groups, a notification may name.
pub const MAX_USER_GROUPS: usize = 10;
pub const MAX_USERS: usize = 50;
/// The longest notification name, in characters.
pub const NOTIFICATION_NAME_MAX: usize = 64;

/// Every event of every service (`complete`), or only the listed operations (`customized`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperationType {
    Complete,
    Customized,
}

impl FromStr for OperationType {
    type Err = ResourceError;

    fn from_str(value: &str) -> Result<OperationType, ResourceError> {
        match value {
            "complete" => Ok(OperationType::Complete),
            "customized" => Ok(OperationType::Customized),
            _ => Err(ResourceError::invalid("operation_type", "must be complete or customized")),
        }
    }
}

/// Whether a notification is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationStatus {
    Enabled,
    Disabled,
}

impl FromStr for NotificationStatus {
    type Err = ResourceError;

    fn from_str(value: &str) -> Result<NotificationStatus, ResourceError> {
        match value {
            "enabled" => Ok(NotificationStatus::Enabled),
            "disabled" => Ok(NotificationStatus::Disabled),
            other => Err(ResourceError::InvalidStatus(other.to_owned())),
        }
    }
}

/// Where notifications go, told by the topic URN. CTS also knows `fun`
/// (FunctionGraph functions), which cts cannot call: such URNs are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationType {
    Smn,
}

impl NotificationType {
    /// The types ListNotifications accepts in its path: `smn`, and `fun`, which never has any.
    pub fn parse_listed(value: &str) -> Result<Option<NotificationType>, ResourceError> {
        match value {
            "smn" => Ok(Some(NotificationType::Smn)),
            "fun" => Ok(None),
            _ => Err(ResourceError::invalid("notification_type", "must be smn or fun")),
        }
    }
}

/// A key event notification as stored and answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// A UUID.
    pub notification_id: String,
    pub notification_name: String,
    pub operation_type: OperationType,
    /// The operations a `customized` notification is about.
    pub operations: Vec<Operations>,
    /// Only operations by these users (none: by anyone).
    pub notify_user_list: Vec<NotificationUsers>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agency_name: Option<String>,
    pub status: NotificationStatus,
    /// The SMN topic URN; required while the notification is enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<String>,
    pub notification_type: NotificationType,
    pub project_id: String,
    /// Creation time, UTC milliseconds.
    pub create_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
}

/// Operations of one resource type of one service (the SDK's `Operations`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operations {
    pub service_type: String,
    pub resource_type: String,
    pub trace_names: Vec<String>,
}

/// Users of one IAM group (the SDK's `NotificationUsers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationUsers {
    pub user_group: String,
    pub user_list: Vec<String>,
}

/// The advanced filter: the rules, combined by `condition`, apply while `is_support_filter` is on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    pub condition: Condition,
    pub is_support_filter: bool,
    /// Each `"field = value"` or `"field != value"`, normalized to one space around the operator.
    pub rule: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Condition {
    #[serde(rename = "AND")]
    And,
    #[serde(rename = "OR")]
    Or,
}

/// The trace fields a filter rule may test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleField {
    ApiVersion,
    Code,
    TraceRating,
    TraceType,
    ResourceId,
    ResourceName,
}

impl RuleField {
    pub const ALL: [RuleField; 6] = [
        RuleField::ApiVersion,
        RuleField::Code,
        RuleField::TraceRating,
        RuleField::TraceType,
        RuleField::ResourceId,
        RuleField::ResourceName,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleField::ApiVersion => "api_version",
            RuleField::Code => "code",
            RuleField::TraceRating => "trace_rating",
            RuleField::TraceType => "trace_type",
            RuleField::ResourceId => "resource_id",
            RuleField::ResourceName => "resource_name",
        }
    }

    /// Why `value` cannot be compared with this field, if it cannot.
    fn check_value(self, value: &str) -> Result<(), String> {
        let length = value.chars().count();
        let within = |max: usize| {
            if (1..=max).contains(&length) {
                Ok(())
            } else {
                Err(format!("a {} value is 1-{max} characters", self.as_str()))
            }
        };
        match self {
            RuleField::ApiVersion => {
                within(64)?;
                if value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')) {
                    Ok(())
                } else {
                    Err("an api_version value is made of A-Z, a-z, 0-9, '_', '-', '.'".to_owned())
                }
            }
            RuleField::Code | RuleField::ResourceName => within(256),
            RuleField::ResourceId => within(350),
            RuleField::TraceRating => {
                value.parse::<cts_model::TraceRating>().map(drop).map_err(|e| format!("a trace_rating value {e}"))
            }
            RuleField::TraceType => match value {
                "ConsoleAction" | "ApiCall" | "SystemAction" => Ok(()),
                _ => Err("a trace_type value must be one of ConsoleAction, ApiCall, SystemAction".to_owned()),
            },
        }
    }
}

/// One filter rule, `field = value` or `field != value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterRule {
    pub field: RuleField,
    /// `!=` rather than `=`.
    pub negated: bool,
    pub value: String,
}

impl FilterRule {
    /// Reads a rule: a field, `=` or `!=`, and a value, with any spaces around the operator.
    pub fn parse(text: &str) -> Result<FilterRule, String> {
        let (left, negated, right) = match text.split_once("!=") {
            Some((left, right)) => (left, true, right),
            None => match text.split_once('=') {
                Some((left, right)) => (left, false, right),
                None => return Err(format!("rule {text:?} is not \"field = value\" or \"field != value\"")),
            },
        };
        let field_name = left.trim();
        let field = RuleField::ALL.into_iter().find(|field| field.as_str() == field_name).ok_or_else(|| {
            let fields: Vec<_> = RuleField::ALL.iter().map(|field| field.as_str()).collect();
            format!("rule {text:?}: the field must be one of {}", fields.join(", "))
        })?;
        let value = right.trim();
        field.check_value(value).map_err(|reason| format!("rule {text:?}: {reason}"))?;
        Ok(FilterRule { field, negated, value: value.to_owned() })
    }
}

impl fmt::Display for FilterRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.field.as_str(), if self.negated { "!=" } else { "=" }, self.value)
    }
}

/// The body of CreateNotification and UpdateNotification: every field
/// optional, so an update changes exactly the fields it carries (the filter
/// field by field, the lists as a whole). Enumerated values are kept as text
/// so that each bad value gets its own error.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationRequest {
    /// Update only: which notification.
    pub notification_id: Option<String>,
    pub notification_name: Option<String>,
    pub operation_type: Option<String>,
    pub agency_name: Option<String>,
    pub operations: Option<Vec<Operations>>,
    pub notify_user_list: Option<Vec<NotificationUsers>>,
    /// Update only.
    pub status: Option<String>,
    pub topic_id: Option<String>,
    pub filter: Option<FilterRequest>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterRequest {
    pub condition: Option<String>,
    pub is_support_filter: Option<bool>,
    pub rule: Option<Vec<String>>,
}

impl NotificationRequest {
    /// The notification CreateNotification makes of this body in `project_id`.
    pub(crate) fn to_new(&self, project_id: &str) -> Result<Notification, ResourceError> {
        if self.notification_id.is_some() {
            return Err(ResourceError::invalid("notification_id", "is chosen by cts, not by CreateNotification"));
        }
        if self.status.is_some() {
            return Err(ResourceError::invalid(
                "status",
                "is set by UpdateNotification; a new notification is enabled",
            ));
        }
        let required = |field: &'static str, value: &Option<String>| {
            value.clone().ok_or_else(|| ResourceError::invalid(field, "is required"))
        };
        let mut notification = Notification {
            notification_id: uuid::Uuid::new_v4().to_string(),
            notification_name: required("notification_name", &self.notification_name)?,
            operation_type: required("operation_type", &self.operation_type)?.parse()?,
            operations: Vec::new(),
            notify_user_list: Vec::new(),
            agency_name: None,
            status: NotificationStatus::Enabled,
            topic_id: None,
            notification_type: NotificationType::Smn,
            project_id: project_id.to_owned(),
            create_time: cts_model::now_ms(),
            filter: None,
        };
        self.apply_to(&mut notification)?;
        Ok(notification)
    }

    /// Applies every field this request carries (but `notification_id`) to
    /// `notification`, then checks that the result is a consistent notification.
    pub(crate) fn apply_to(&self, notification: &mut Notification) -> Result<(), ResourceError> {
        if let Some(name) = &self.notification_name {
            notification.notification_name = check_notification_name(name)?.to_owned();
        }
        if let Some(operation_type) = &self.operation_type {
            notification.operation_type = operation_type.parse()?;
        }
        if let Some(agency_name) = &self.agency_name {
            if agency_name != CTS_AGENCY_NAME {
                return Err(ResourceError::invalid("agency_name", format!("must be {CTS_AGENCY_NAME}")));
            }
            notification.agency_name = Some(agency_name.clone());
        }
        if let Some(operations) = &self.operations {
            notification.operations = check_operations(operations)?.to_vec();
        }
        if let Some(users) = &self.notify_user_list {
            notification.notify_user_list = check_users(users)?.to_vec();
        }
        if let Some(status) = &self.status {
            notification.status = status.parse()?;
        }
        if let Some(topic_id) = &self.topic_id {
            notification.topic_id = Some(check_topic_id(topic_id, &notification.project_id)?.to_owned());
        }
        if let Some(filter) = &self.filter {
            notification.filter = Some(filter.merged_into(notification.filter.take())?);
        }
        check_consistency(notification)
    }
}

impl FilterRequest {
    /// The filter after this request: the fields it carries replace those of `current`.
    fn merged_into(&self, current: Option<Filter>) -> Result<Filter, ResourceError> {
        let mut filter =
            current.unwrap_or(Filter { condition: Condition::And, is_support_filter: false, rule: vec![] });
        if let Some(condition) = &self.condition {
            filter.condition = match condition.as_str() {
                "AND" => Condition::And,
                "OR" => Condition::Or,
                _ => return Err(ResourceError::invalid("filter.condition", "must be AND or OR")),
            };
        }
        if let Some(enabled) = self.is_support_filter {
            filter.is_support_filter = enabled;
        }
        if let Some(rules) = &self.rule {
            if rules.len() > MAX_FILTER_RULES {
                return Err(ResourceError::invalid(
                    "filter.rule",
                    format!("has {} rules; a filter has at most {MAX_FILTER_RULES}", rules.len()),
                ));
            }
            filter.rule = rules
                .iter()
                .map(|rule| FilterRule::parse(rule).map(|rule| rule.to_string()))
                .collect::<Result<_, _>>()
                .map_err(|reason| ResourceError::invalid("filter.rule", reason))?;
        }
        Ok(filter)
    }
}

/// Notification names: 1-64 letters (any script), digits and `_`.
pub fn check_notification_name(name: &str) -> Result<&str, ResourceError> {
    let length = name.chars().count();
    if (1..=NOTIFICATION_NAME_MAX).contains(&length) && name.chars().all(|c| c.is_alphanumeric() || c == '_') {
        Ok(name)
    } else {
        Err(ResourceError::invalid(
            "notification_name",
            format!("{name:?} is invalid: it must be 1-{NOTIFICATION_NAME_MAX} letters, digits and '_'"),
        ))
    }
}

/// Operations are checked for form, not against the operation catalog: any
/// service may report to cts through the ingest API, so a notification may
/// name operations of services cts has not seen yet.
fn check_operations(operations: &[Operations]) -> Result<&[Operations], ResourceError> {
    let invalid = |reason: String| Err(ResourceError::invalid("operations", reason));
    for operation in operations {
        for (field, value) in [("service_type", &operation.service_type), ("resource_type", &operation.resource_type)] {
            if !cts_model::is_valid_identifier(value) {
                return invalid(format!(
                    "{field} {value:?} must be 1-64 characters of A-Z, a-z, 0-9, '-', '_', '.', starting with a letter"
                ));
            }
        }
        if operation.trace_names.is_empty() {
            return invalid(format!("{}/{} lists no trace_names", operation.service_type, operation.resource_type));
        }
        if let Some(name) = operation.trace_names.iter().find(|name| !cts_model::is_valid_identifier(name)) {
            return invalid(format!("trace name {name:?} must be 1-64 characters of A-Z, a-z, 0-9, '-', '_', '.'"));
        }
    }
    Ok(operations)
}

fn check_users(groups: &[NotificationUsers]) -> Result<&[NotificationUsers], ResourceError> {
    let invalid = |reason: String| Err(ResourceError::invalid("notify_user_list", reason));
    if groups.len() > MAX_USER_GROUPS {
        return invalid(format!("names {} user groups; at most {MAX_USER_GROUPS}", groups.len()));
    }
    let users: usize = groups.iter().map(|group| group.user_list.len()).sum();
    if users > MAX_USERS {
        return invalid(format!("names {users} users; at most {MAX_USERS}"));
    }
    let bad_name = |name: &str| name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control);
    for group in groups {
        if bad_name(&group.user_group) {
            return invalid(format!("user_group {:?} must be 1-64 printable characters", group.user_group));
        }
        if let Some(user) = group.user_list.iter().find(|user| bad_name(user)) {
            return invalid(format!("user {user:?} must be 1-64 printable characters"));
        }
    }
    Ok(groups)
}

/// An SMN topic URN of the caller's project: `urn:smn:{region}:{project_id}:{topic name}`.
pub fn check_topic_id<'a>(topic_id: &'a str, project_id: &str) -> Result<&'a str, ResourceError> {
    let invalid = |reason: &str| Err(ResourceError::invalid("topic_id", format!("{topic_id:?} {reason}")));
    let parts: Vec<&str> = topic_id.split(':').collect();
    match parts.as_slice() {
        ["urn", "fss", ..] => invalid("is a FunctionGraph function; cts notifies SMN topics only"),
        ["urn", "smn", region, topic_project, name] => {
            let region_valid = !region.is_empty()
                && region.len() <= 64
                && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            let name_valid = !name.is_empty()
                && name.len() <= 255
                && name.starts_with(|c: char| c.is_ascii_alphanumeric())
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
            if !region_valid {
                invalid("has an invalid region")
            } else if *topic_project != project_id {
                invalid("is not a topic of this project")
            } else if !name_valid {
                invalid("has an invalid topic name (1-255 of A-Z, a-z, 0-9, '-', '_')")
            } else {
                Ok(topic_id)
            }
        }
        _ => invalid("is not an SMN topic URN (urn:smn:{region}:{project_id}:{name})"),
    }
}

/// The rules that span fields, checked on the notification an operation would leave.
fn check_consistency(notification: &Notification) -> Result<(), ResourceError> {
    if notification.operation_type == OperationType::Customized && notification.operations.is_empty() {
        return Err(ResourceError::invalid("operations", "are required when operation_type is customized"));
    }
    if notification.status == NotificationStatus::Enabled && notification.topic_id.is_none() {
        return Err(ResourceError::invalid("topic_id", "is required while the notification is enabled"));
    }
    if let Some(filter) = &notification.filter {
        if filter.is_support_filter && filter.rule.is_empty() {
            return Err(ResourceError::invalid("filter.rule", "needs at least one rule when is_support_filter is on"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
