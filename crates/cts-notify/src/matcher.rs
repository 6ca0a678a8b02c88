//! Whether a key event notification fires for a trace: the one predicate delivery applies to every
//! acknowledged trace.
//!
//! A notification fires when it is enabled, is about the trace's project, and
//! - its operations match: `complete` matches every trace; `customized` one whose
//!   (service_type, resource_type) entry lists the trace's `trace_name`;
//! - its users match: an empty `notify_user_list` means anyone, otherwise the trace's `user.name`
//!   must be in one of the groups' `user_list` (cts has no IAM groups to expand, so a group
//!   contributes exactly the users it lists);
//! - its filter matches, when `is_support_filter` is on: every rule (`AND`) or any rule (`OR`) holds.
//!   `field = value` is false and `field != value` true when the trace lacks the field.

use cts_model::Trace;
use cts_resources::notification::{Condition, FilterRule, Notification, NotificationStatus, OperationType, RuleField};

/// A notification made ready for matching: its filter rules parsed once.
#[derive(Debug, Clone)]
pub struct Rule {
    pub notification: Notification,
    /// The parsed filter rules, when the filter is on (rules that no longer parse are skipped with a log line).
    filter: Option<(Condition, Vec<FilterRule>)>,
}

impl Rule {
    pub fn new(notification: Notification) -> Rule {
        let filter = notification.filter.as_ref().filter(|filter| filter.is_support_filter).map(|filter| {
            let rules = filter
                .rule
                .iter()
                .filter_map(|text| {
                    FilterRule::parse(text)
                        .inspect_err(|reason| {
                            tracing::error!(notification = %notification.notification_id, %reason, "stored rule unreadable");
                        })
                        .ok()
                })
                .collect();
            (filter.condition, rules)
        });
        Rule { notification, filter }
    }

    /// Whether this notification fires for `trace`.
    pub fn matches(&self, trace: &Trace) -> bool {
        let notification = &self.notification;
        notification.status == NotificationStatus::Enabled
            && notification.project_id == trace.project_id
            && self.operation_matches(trace)
            && self.user_matches(trace)
            && self.filter_matches(trace)
    }

    fn operation_matches(&self, trace: &Trace) -> bool {
        match self.notification.operation_type {
            OperationType::Complete => true,
            OperationType::Customized => self.notification.operations.iter().any(|operations| {
                operations.service_type == trace.service_type
                    && operations.resource_type == trace.resource_type
                    && operations.trace_names.contains(&trace.trace_name)
            }),
        }
    }

    fn user_matches(&self, trace: &Trace) -> bool {
        let groups = &self.notification.notify_user_list;
        groups.is_empty()
            || trace
                .user_name()
                .is_some_and(|user| groups.iter().any(|group| group.user_list.iter().any(|u| u == user)))
    }

    fn filter_matches(&self, trace: &Trace) -> bool {
        let Some((condition, rules)) = &self.filter else { return true };
        let holds = |rule: &FilterRule| (field_value(trace, rule.field) == Some(rule.value.as_str())) != rule.negated;
        match condition {
            Condition::And => rules.iter().all(holds),
            Condition::Or => rules.iter().any(holds),
        }
    }
}

/// The value of a filterable field of a trace.
fn field_value(trace: &Trace, field: RuleField) -> Option<&str> {
    match field {
        RuleField::ApiVersion => trace.api_version.as_deref(),
        RuleField::Code => trace.code.as_deref(),
        RuleField::TraceRating => Some(trace.trace_rating.as_str()),
        RuleField::TraceType => Some(trace.trace_type.as_str()),
        RuleField::ResourceId => trace.resource_id.as_deref(),
        RuleField::ResourceName => trace.resource_name.as_deref(),
    }
}
