use super::*;
use crate::{ProjectScope, Resources};
use proptest::prelude::*;
use serde_json::{json, Value};

const A: ProjectScope<'static> = ProjectScope { project_id: "project-a", domain_id: "domain-1" };
const B: ProjectScope<'static> = ProjectScope { project_id: "project-b", domain_id: "domain-1" };

fn topic(project_id: &str) -> String {
    format!("urn:smn:ap-southeast-3:{project_id}:key_events")
}

fn request(body: Value) -> NotificationRequest {
    serde_json::from_value(body).unwrap()
}

fn customized(name: &str) -> Value {
    json!({
        "notification_name": name,
        "operation_type": "customized",
        "operations": [{"service_type": "marketplace", "resource_type": "Order", "trace_names": ["createOrder"]}],
        "notify_user_list": [{"user_group": "buyers", "user_list": ["alice", "bob"]}],
        "topic_id": topic("project-a"),
        "filter": {"condition": "OR", "is_support_filter": true, "rule": ["code = 400", "trace_rating!=normal"]},
    })
}

/// `base` with the fields of `changes` set (a null removes the field).
fn with(mut base: Value, changes: Value) -> Value {
    for (key, value) in changes.as_object().unwrap() {
        match value {
            Value::Null => base.as_object_mut().unwrap().remove(key),
            _ => base.as_object_mut().unwrap().insert(key.clone(), value.clone()),
        };
    }
    base
}

#[test]
fn every_invalid_body_is_refused_with_the_field_it_breaks() {
    let many_rules: Vec<String> = (0..7).map(|i| format!("code = {i}")).collect();
    let many_groups: Vec<Value> = (0..11).map(|i| json!({"user_group": format!("g{i}"), "user_list": []})).collect();
    let many_users: Vec<String> = (0..51).map(|i| format!("u{i}")).collect();
    #[rustfmt::skip]
    let cases = [
        ("missing name", json!({"notification_name": null}), "notification_name"),
        ("empty name", json!({"notification_name": ""}), "notification_name"),
        ("name too long", json!({"notification_name": "n".repeat(65)}), "notification_name"),
        ("name with a dash", json!({"notification_name": "key-events"}), "notification_name"),
        ("name with a space", json!({"notification_name": "key events"}), "notification_name"),
        ("missing operation type", json!({"operation_type": null}), "operation_type"),
        ("bad operation type", json!({"operation_type": "partial"}), "operation_type"),
        ("customized without operations", json!({"operations": []}), "operations"),
        ("customized operations absent", json!({"operations": null}), "operations"),
        ("bad service type", json!({"operations": [{"service_type": "1x", "resource_type": "Order", "trace_names": ["a"]}]}), "operations"),
        ("no trace names", json!({"operations": [{"service_type": "CTS", "resource_type": "tracker", "trace_names": []}]}), "operations"),
        ("bad trace name", json!({"operations": [{"service_type": "CTS", "resource_type": "tracker", "trace_names": ["create tracker"]}]}), "operations"),
        ("11 user groups", json!({"notify_user_list": many_groups}), "notify_user_list"),
        ("51 users", json!({"notify_user_list": [{"user_group": "g", "user_list": many_users}]}), "notify_user_list"),
        ("empty user group", json!({"notify_user_list": [{"user_group": "", "user_list": ["a"]}]}), "notify_user_list"),
        ("empty user", json!({"notify_user_list": [{"user_group": "g", "user_list": [""]}]}), "notify_user_list"),
        ("no topic", json!({"topic_id": null}), "topic_id"),
        ("topic of another project", json!({"topic_id": topic("project-b")}), "topic_id"),
        ("topic not a URN", json!({"topic_id": "key_events"}), "topic_id"),
        ("topic with a bad region", json!({"topic_id": "urn:smn:AP_1:project-a:t"}), "topic_id"),
        ("topic with a bad name", json!({"topic_id": "urn:smn:ap-southeast-3:project-a:-t"}), "topic_id"),
        ("function URN", json!({"topic_id": "urn:fss:ap-southeast-3:project-a:function:default:f"}), "topic_id"),
        ("bad agency", json!({"agency_name": "admin"}), "agency_name"),
        ("status on create", json!({"status": "enabled"}), "status"),
        ("id on create", json!({"notification_id": "x"}), "notification_id"),
        ("bad condition", json!({"filter": {"condition": "XOR", "is_support_filter": true, "rule": ["code = 1"]}}), "filter.condition"),
        ("seven rules", json!({"filter": {"condition": "AND", "is_support_filter": true, "rule": many_rules}}), "filter.rule"),
        ("filter on without rules", json!({"filter": {"condition": "AND", "is_support_filter": true, "rule": []}}), "filter.rule"),
        ("rule on an unknown field", json!({"filter": {"is_support_filter": true, "rule": ["user = alice"]}}), "filter.rule"),
        ("rule without operator", json!({"filter": {"is_support_filter": true, "rule": ["code 400"]}}), "filter.rule"),
        ("rule with a bad rating", json!({"filter": {"is_support_filter": true, "rule": ["trace_rating = bad"]}}), "filter.rule"),
        ("rule with a data trace type", json!({"filter": {"is_support_filter": true, "rule": ["trace_type = ObsAPI"]}}), "filter.rule"),
        ("rule with a bad api version", json!({"filter": {"is_support_filter": true, "rule": ["api_version = v 3"]}}), "filter.rule"),
        ("rule with an empty value", json!({"filter": {"is_support_filter": true, "rule": ["resource_name = "]}}), "filter.rule"),
        ("rule with a long resource id", json!({"filter": {"is_support_filter": true, "rule": [format!("resource_id = {}", "i".repeat(351))]}}), "filter.rule"),
    ];
    for (case, changes, field) in cases {
        match request(with(customized("key_events"), changes)).to_new("project-a") {
            Err(ResourceError::InvalidField { field: actual, .. }) => assert_eq!(actual, field, "{case}"),
            other => panic!("{case}: {other:?}"),
        }
    }
}

#[test]
fn a_valid_body_becomes_an_enabled_smn_notification_with_normalized_rules() {
    let notification = request(customized("关键_events_1")).to_new("project-a").unwrap();
    assert_eq!(notification.status, NotificationStatus::Enabled);
    assert_eq!(notification.notification_type, NotificationType::Smn);
    assert_eq!(notification.project_id, "project-a");
    assert_eq!(notification.filter.as_ref().unwrap().rule, ["code = 400", "trace_rating != normal"]);
    assert!(uuid::Uuid::parse_str(&notification.notification_id).is_ok());
    // A complete notification needs no operations, users or filter.
    let complete = json!({"notification_name": "all", "operation_type": "complete", "topic_id": topic("project-a")});
    let notification = request(complete).to_new("project-a").unwrap();
    assert!(notification.operations.is_empty() && notification.filter.is_none());
    let json = serde_json::to_value(&notification).unwrap();
    assert_eq!((json["notification_type"].as_str(), json["status"].as_str()), (Some("smn"), Some("enabled")));
}

#[test]
fn filter_rules_parse_and_print_back() {
    for (text, field, negated, value) in [
        ("code = 400", RuleField::Code, false, "400"),
        ("code=400", RuleField::Code, false, "400"),
        ("  trace_type   !=  ApiCall ", RuleField::TraceType, true, "ApiCall"),
        ("resource_name = a = b", RuleField::ResourceName, false, "a = b"),
        ("api_version = v3.0_beta-1", RuleField::ApiVersion, false, "v3.0_beta-1"),
        ("trace_rating = incident", RuleField::TraceRating, false, "incident"),
    ] {
        let rule = FilterRule::parse(text).unwrap();
        assert_eq!((rule.field, rule.negated, rule.value.as_str()), (field, negated, value), "{text}");
        assert_eq!(FilterRule::parse(&rule.to_string()).unwrap(), rule, "{text}");
    }
}

proptest! {
    /// The printed form of any valid rule reads back as the same rule.
    #[test]
    fn printed_rules_read_back(field in 0..6usize, negated: bool, value in "[a-zA-Z0-9_.-]{1,40}") {
        let field = RuleField::ALL[field];
        prop_assume!(field.check_value(&value).is_ok());
        let rule = FilterRule { field, negated, value };
        prop_assert_eq!(FilterRule::parse(&rule.to_string()).unwrap(), rule);
    }
}

#[test]
fn names_are_unique_per_project_and_the_101st_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let resources = Resources::open(dir.path(), &[A, B]).unwrap();
    resources.create_notification(A, &request(customized("n0"))).unwrap();
    assert!(matches!(
        resources.create_notification(A, &request(customized("n0"))),
        Err(ResourceError::NotificationNameExists(name)) if name == "n0"
    ));
    let in_b = with(customized("n0"), json!({"topic_id": topic("project-b")}));
    resources.create_notification(B, &request(in_b)).unwrap();
    for i in 1..MAX_NOTIFICATIONS {
        resources.create_notification(A, &request(customized(&format!("n{i}")))).unwrap();
    }
    assert!(matches!(
        resources.create_notification(A, &request(customized("n100"))),
        Err(ResourceError::NotificationQuotaExceeded { limit: 100 })
    ));
    let quotas = resources.quotas(A).unwrap();
    assert_eq!((quotas[2].resource_type, quotas[2].used, quotas[2].quota), ("smn_notification", 100, 100));
}

#[test]
fn an_update_changes_only_the_fields_it_carries() {
    let dir = tempfile::tempdir().unwrap();
    let resources = Resources::open(dir.path(), &[A]).unwrap();
    let created = resources.create_notification(A, &request(customized("orders"))).unwrap();
    let id = created.notification_id.clone();
    let updated = resources
        .update_notification(
            A,
            &request(json!({"notification_id": id, "status": "disabled", "filter": {"condition": "AND"}})),
        )
        .unwrap();
    let mut expected = created.clone();
    expected.status = NotificationStatus::Disabled;
    expected.filter.as_mut().unwrap().condition = Condition::And;
    assert_eq!(updated, expected);
    let renamed = resources
        .update_notification(
            A,
            &request(json!({"notification_id": id, "notification_name": "orders_v2", "status": "enabled"})),
        )
        .unwrap();
    assert_eq!((renamed.notification_name.as_str(), renamed.status), ("orders_v2", NotificationStatus::Enabled));
    assert_eq!((renamed.create_time, &renamed.operations), (created.create_time, &created.operations));
    // Refused updates change nothing.
    resources.create_notification(A, &request(customized("other"))).unwrap();
    for (body, expected) in [
        (json!({"notification_id": id, "notification_name": "other"}), "exists"),
        (json!({"notification_id": id, "status": "paused"}), "status"),
        (json!({"notification_id": id, "operations": []}), "operations"),
        (json!({"notification_name": "x"}), "notification_id"),
        (json!({"notification_id": "unknown", "status": "disabled"}), "not found"),
    ] {
        let error = resources.update_notification(A, &request(body)).unwrap_err();
        let matched = match expected {
            "exists" => matches!(error, ResourceError::NotificationNameExists(_)),
            "status" => matches!(error, ResourceError::InvalidStatus(_)),
            "not found" => matches!(error, ResourceError::NotificationNotFound(_)),
            field => matches!(error, ResourceError::InvalidField { field: f, .. } if f == field),
        };
        assert!(matched, "{expected}: {error:?}");
    }
    assert_eq!(resources.list_notifications(A, Some("orders_v2")).unwrap(), [renamed]);
}

#[test]
fn projects_never_see_or_change_each_others_notifications() {
    let dir = tempfile::tempdir().unwrap();
    let resources = Resources::open(dir.path(), &[A, B]).unwrap();
    let a = resources.create_notification(A, &request(customized("orders"))).unwrap();
    let update = request(json!({"notification_id": a.notification_id, "status": "disabled"}));
    assert!(matches!(resources.update_notification(B, &update), Err(ResourceError::NotificationNotFound(_))));
    assert!(matches!(
        resources.delete_notifications(B, &[&a.notification_id]),
        Err(ResourceError::NotificationNotFound(_))
    ));
    assert!(resources.list_notifications(B, None).unwrap().is_empty());
    assert_eq!(resources.list_notifications(A, None).unwrap(), [a]);
}

#[test]
fn deletes_are_all_or_nothing_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<String> = {
        let resources = Resources::open(dir.path(), &[A]).unwrap();
        let ids = (0..3)
            .map(|i| resources.create_notification(A, &request(customized(&format!("n{i}")))).unwrap().notification_id)
            .collect::<Vec<_>>();
        assert!(matches!(
            resources.delete_notifications(A, &[&ids[0], "missing"]),
            Err(ResourceError::NotificationNotFound(id)) if id == "missing"
        ));
        assert_eq!(resources.delete_notifications(A, &[&ids[0], &ids[2]]).unwrap(), 2);
        ids
    };
    let reopened = Resources::open(dir.path(), &[A]).unwrap();
    let left = reopened.list_notifications(A, None).unwrap();
    assert_eq!(left.iter().map(|n| &n.notification_id).collect::<Vec<_>>(), [&ids[1]]);
    assert_eq!(left[0].filter.as_ref().unwrap().rule, ["code = 400", "trace_rating != normal"]);
}

#[test]
fn state_files_written_before_notifications_still_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = Resources::state_path(dir.path());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, br#"{"version":1,"projects":{"project-a":{"trackers":[]}}}"#).unwrap();
    let resources = Resources::open(dir.path(), &[A]).unwrap();
    assert!(resources.list_notifications(A, None).unwrap().is_empty());
}
