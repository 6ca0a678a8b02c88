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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{notification, trace};
    use cts_model::{TraceRating, TraceType, UserInfo};
    use proptest::prelude::*;
    use serde_json::json;

    /// Customized on marketplace/Order/createOrder, users alice (team-a) or bob (team-b), filter
    /// `code = 201 AND trace_rating != warning`.
    fn base() -> serde_json::Value {
        json!({
            "operations": [{"service_type": "marketplace", "resource_type": "Order", "trace_names": ["createOrder", "cancelOrder"]}],
            "notify_user_list": [{"user_group": "team-a", "user_list": ["alice"]}, {"user_group": "team-b", "user_list": ["bob"]}],
            "filter": {"condition": "AND", "is_support_filter": true, "rule": ["code = 201", "trace_rating != warning"]},
        })
    }

    fn with(changes: serde_json::Value) -> serde_json::Value {
        let mut fields = base();
        for (key, value) in changes.as_object().unwrap() {
            fields[key] = value.clone();
        }
        fields
    }

    fn filter(condition: &str, rules: &[&str]) -> serde_json::Value {
        json!({"filter": {"condition": condition, "is_support_filter": true, "rule": rules}})
    }

    #[test]
    fn fires_exactly_when_operation_user_and_filter_match() {
        type Change = fn(&mut Trace);
        let unchanged: Change = |_| {};
        let cases: Vec<(&str, serde_json::Value, Change, bool)> = vec![
            ("everything matches", base(), unchanged, true),
            ("a second listed trace name", base(), |t| t.trace_name = "cancelOrder".into(), true),
            ("disabled", with(json!({"status": "disabled"})), unchanged, false),
            ("another project's trace", base(), |t| t.project_id = "p2".into(), false),
            ("trace name not listed", base(), |t| t.trace_name = "renewOrder".into(), false),
            ("resource type differs", base(), |t| t.resource_type = "Resource".into(), false),
            ("service type differs", base(), |t| t.service_type = "marketplace-provider".into(), false),
            (
                "complete matches any operation",
                with(json!({"operation_type": "complete", "operations": []})),
                |t| t.service_type = "CTS".into(),
                true,
            ),
            ("complete still filters", with(json!({"operation_type": "complete"})), |t| t.code = None, false),
            ("user in the second group", base(), |t| t.user.as_mut().unwrap().name = Some("bob".into()), true),
            ("user in no group", base(), |t| t.user.as_mut().unwrap().name = Some("mallory".into()), false),
            ("group name is not a user", base(), |t| t.user.as_mut().unwrap().name = Some("team-a".into()), false),
            ("trace without a user", base(), |t| t.user = None, false),
            ("no user list: anyone", with(json!({"notify_user_list": []})), |t| t.user = None, true),
            ("AND: one rule fails", base(), |t| t.code = Some("400".into()), false),
            ("AND: the != rule fails", base(), |t| t.trace_rating = TraceRating::Warning, false),
            (
                "filter off",
                with(json!({"filter": {"condition": "AND", "is_support_filter": false, "rule": ["code = 999"]}})),
                unchanged,
                true,
            ),
            ("OR: one rule holds", with(filter("OR", &["code = 404", "api_version = v1"])), unchanged, true),
            ("OR: no rule holds", with(filter("OR", &["code = 404", "api_version = v2"])), unchanged, false),
            ("OR: a != rule holds", with(filter("OR", &["code = 404", "api_version != v2"])), unchanged, true),
            ("an unreadable stored rule is skipped", with(filter("AND", &["bogus", "code = 201"])), unchanged, true),
        ];
        for (name, fields, change, fires) in cases {
            let mut t = trace(0);
            change(&mut t);
            assert_eq!(Rule::new(notification(fields)).matches(&t), fires, "{name}");
        }
    }

    #[test]
    fn each_field_compares_with_equals_and_not_equals_and_a_missing_field_equals_nothing() {
        type Set = fn(&mut Trace, Option<&str>);
        let fields: [(&str, &str, Set); 6] = [
            ("api_version", "v1", |t, v| t.api_version = v.map(str::to_owned)),
            ("code", "201", |t, v| t.code = v.map(str::to_owned)),
            ("resource_id", "o-1", |t, v| t.resource_id = v.map(str::to_owned)),
            ("resource_name", "order-1", |t, v| t.resource_name = v.map(str::to_owned)),
            ("trace_rating", "warning", |t, v| t.trace_rating = v.map_or(TraceRating::Normal, |v| v.parse().unwrap())),
            ("trace_type", "SystemAction", |t, v| t.trace_type = v.map_or(TraceType::ApiCall, |v| v.parse().unwrap())),
        ];
        for (field, value, set) in fields {
            let optional = !matches!(field, "trace_rating" | "trace_type");
            for (trace_value, operator, fires) in
                [(Some(value), "=", true), (Some(value), "!=", false), (None, "=", false), (None, "!=", true)]
            {
                let mut t = trace(0);
                set(&mut t, trace_value);
                let fields = json!({"operation_type": "complete", "filter": {"condition": "AND", "is_support_filter": true, "rule": [format!("{field} {operator} {value}")]}});
                let case = format!("{field} {operator} {value} on {trace_value:?}");
                if trace_value.is_none() && !optional {
                    // Always present: the default value differs from the compared one.
                    assert_eq!(Rule::new(notification(fields)).matches(&t), operator == "!=", "{case}");
                } else {
                    assert_eq!(Rule::new(notification(fields)).matches(&t), fires, "{case}");
                }
            }
        }
    }

    const USERS: [&str; 4] = ["alice", "bob", "carol", "dave"];
    const CODES: [&str; 3] = ["200", "201", "404"];
    const RATINGS: [&str; 3] = ["normal", "warning", "incident"];

    /// The model: a field's value read from the trace's JSON document, not from its struct.
    fn model_value(trace: &Trace, field: &str) -> Option<String> {
        serde_json::to_value(trace).unwrap().get(field).and_then(|v| v.as_str()).map(str::to_owned)
    }

    proptest! {
        #[test]
        fn agrees_with_a_simple_model(
            user in proptest::option::of(0..USERS.len()),
            code in proptest::option::of(0..CODES.len()),
            rating in 0..RATINGS.len(),
            name_listed in any::<bool>(),
            groups in proptest::collection::vec(proptest::collection::vec(0..USERS.len(), 0..3), 0..3),
            rules in proptest::collection::vec((any::<bool>(), any::<bool>(), 0..3usize), 0..4),
            or in any::<bool>(),
            filter_on in any::<bool>(),
        ) {
            let mut t = trace(0);
            t.user = user.map(|u| UserInfo { name: Some(USERS[u].to_owned()), ..UserInfo::default() });
            t.code = code.map(|c| CODES[c].to_owned());
            t.trace_rating = RATINGS[rating].parse().unwrap();
            if !name_listed {
                t.trace_name = "queryOrderList".to_owned();
            }
            // A rule: on code (true) or trace_rating (false), negated or not, against value index.
            let texts: Vec<String> = rules
                .iter()
                .map(|&(on_code, negated, value)| {
                    let (field, value) = if on_code { ("code", CODES[value]) } else { ("trace_rating", RATINGS[value]) };
                    format!("{field} {} {value}", if negated { "!=" } else { "=" })
                })
                .collect();
            let user_list: Vec<serde_json::Value> = groups
                .iter()
                .enumerate()
                .map(|(i, members)| json!({"user_group": format!("g{i}"), "user_list": members.iter().map(|&m| USERS[m]).collect::<Vec<_>>()}))
                .collect();
            let rule = Rule::new(notification(json!({
                "operations": [{"service_type": "marketplace", "resource_type": "Order", "trace_names": ["createOrder"]}],
                "notify_user_list": user_list,
                "filter": {"condition": if or { "OR" } else { "AND" }, "is_support_filter": filter_on, "rule": texts},
            })));

            let members: Vec<&str> = groups.iter().flatten().map(|&m| USERS[m]).collect();
            let user_ok = groups.is_empty() || user.is_some_and(|u| members.contains(&USERS[u]));
            let results: Vec<bool> = rules
                .iter()
                .map(|&(on_code, negated, value)| {
                    let (field, value) = if on_code { ("code", CODES[value]) } else { ("trace_rating", RATINGS[value]) };
                    (model_value(&t, field).as_deref() == Some(value)) != negated
                })
                .collect();
            let filter_ok = !filter_on || if or { results.contains(&true) } else { !results.contains(&false) };
            prop_assert_eq!(rule.matches(&t), name_listed && user_ok && filter_ok);
        }
    }
}
