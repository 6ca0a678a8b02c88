use super::*;
use crate::tags::TagRequest;
use crate::tracker::{CompressType, DataEvent};
use serde_json::json;

const A: ProjectScope<'static> = ProjectScope { project_id: "project-a", domain_id: "domain-1" };
const B: ProjectScope<'static> = ProjectScope { project_id: "project-b", domain_id: "domain-1" };

fn request(body: serde_json::Value) -> TrackerRequest {
    serde_json::from_value(body).unwrap()
}

fn data_tracker(name: &str) -> TrackerRequest {
    request(json!({
        "tracker_type": "data",
        "tracker_name": name,
        "obs_info": {"bucket_name": "trace-files", "file_prefix_name": "pre", "bucket_lifecycle": 30},
        "data_bucket": {"data_bucket_name": "watched-bucket", "data_event": ["WRITE"]},
    }))
}

fn tags(pairs: &[(&str, Option<&str>)]) -> TagsRequest {
    TagsRequest {
        tags: pairs.iter().map(|(k, v)| TagRequest { key: k.to_string(), value: v.map(str::to_owned) }).collect(),
    }
}

fn names(trackers: &[Tracker]) -> Vec<&str> {
    trackers.iter().map(|t| t.tracker_name.as_str()).collect()
}

#[test]
fn every_project_starts_with_one_enabled_system_tracker() {
    let dir = tempfile::tempdir().unwrap();
    let resources = Resources::open(dir.path(), &[A]).unwrap();
    let trackers = resources.list_trackers(A, None, None).unwrap();
    assert_eq!(trackers.len(), 1);
    let system = &trackers[0];
    assert_eq!((system.tracker_type, system.tracker_name.as_str()), (TrackerType::System, "system"));
    assert_eq!(
        (system.status, system.domain_id.as_str(), system.project_id.as_str()),
        (TrackerStatus::Enabled, "domain-1", "project-a")
    );
    // A project first seen after opening gets its own.
    let b = resources.list_trackers(B, None, None).unwrap();
    assert_eq!(names(&b), ["system"]);
    assert_ne!(b[0].id, system.id);
    assert!(matches!(
        resources.create_tracker(A, &request(json!({"tracker_type": "system"}))),
        Err(ResourceError::ManagementTrackerExists)
    ));
    assert!(matches!(
        resources.delete_trackers(A, None, Some(TrackerType::System)),
        Err(ResourceError::SystemTrackerNotDeletable)
    ));
}

#[test]
fn trackers_and_tags_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let (before, tags_before) = {
        let resources = Resources::open(dir.path(), &[A]).unwrap();
        let created = resources.create_tracker(A, &data_tracker("orders")).unwrap();
        resources.create_tracker(A, &data_tracker("billing")).unwrap();
        resources
            .update_tracker(
                A,
                &request(json!({"tracker_type": "data", "tracker_name": "billing", "status": "disabled"})),
            )
            .unwrap();
        resources.add_tags(A, &created.id, &tags(&[("env", Some("prod")), ("team", None)])).unwrap();
        (resources.list_trackers(A, None, None).unwrap(), resources.tags(A, &created.id).unwrap())
    };
    let reopened = Resources::open(dir.path(), &[A]).unwrap();
    assert_eq!(reopened.list_trackers(A, None, None).unwrap(), before);
    assert_eq!(names(&before), ["system", "orders", "billing"]);
    assert_eq!(reopened.tags(A, &before[1].id).unwrap(), tags_before);
    assert_eq!(
        tags_before,
        [Tag { key: "env".into(), value: "prod".into() }, Tag { key: "team".into(), value: String::new() }]
    );
    assert!(!dir.path().join("resources/state.json.tmp").exists());
}

#[test]
fn a_corrupt_state_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = Resources::state_path(dir.path());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"{\"version\":1,\"projects\":").unwrap();
    assert!(matches!(Resources::open(dir.path(), &[A]), Err(ResourceError::Corrupt { .. })));
    std::fs::write(&path, b"{\"version\":9,\"projects\":{}}").unwrap();
    assert!(matches!(Resources::open(dir.path(), &[A]), Err(ResourceError::Corrupt { .. })));
}

#[test]
fn projects_do_not_see_or_change_each_others_trackers() {
    let dir = tempfile::tempdir().unwrap();
    let resources = Resources::open(dir.path(), &[A, B]).unwrap();
    let a_tracker = resources.create_tracker(A, &data_tracker("shared-name")).unwrap();
    assert_eq!(names(&resources.list_trackers(B, None, None).unwrap()), ["system"]);
    // The same name is free in B, and B's tracker is a different one.
    let b_tracker = resources.create_tracker(B, &data_tracker("shared-name")).unwrap();
    assert_ne!(a_tracker.id, b_tracker.id);
    assert!(matches!(
        resources.add_tags(B, &a_tracker.id, &tags(&[("k", None)])),
        Err(ResourceError::TrackerIdNotFound(_))
    ));
    resources.delete_trackers(B, None, None).unwrap();
    assert_eq!(resources.list_trackers(A, None, None).unwrap()[1], a_tracker);
    assert_eq!(resources.data_trackers("project-a"), [("shared-name".to_owned(), true)]);
    assert!(resources.data_trackers("project-b").is_empty());
}

#[test]
fn update_changes_only_the_fields_sent() {
    let dir = tempfile::tempdir().unwrap();
    let resources = Resources::open(dir.path(), &[A]).unwrap();
    let created = resources.create_tracker(A, &data_tracker("orders")).unwrap();
    let disabled = resources
        .update_tracker(A, &request(json!({"tracker_type": "data", "tracker_name": "orders", "status": "disabled"})))
        .unwrap();
    assert_eq!(disabled, Tracker { status: TrackerStatus::Disabled, ..created.clone() });
    // Nested objects too: only the sent fields of obs_info and data_bucket change.
    let updated = resources
        .update_tracker(
            A,
            &request(json!({
                "tracker_type": "data", "tracker_name": "orders",
                "obs_info": {"compress_type": "json"}, "data_bucket": {"data_event": ["READ", "WRITE"]},
            })),
        )
        .unwrap();
    let obs_info = updated.obs_info.as_ref().unwrap();
    assert_eq!(obs_info.bucket_name.as_deref(), Some("trace-files"));
    assert_eq!((obs_info.file_prefix_name.as_str(), obs_info.bucket_lifecycle), ("pre", Some(30)));
    assert_eq!(obs_info.compress_type, CompressType::Json);
    let data_bucket = updated.data_bucket.as_ref().unwrap();
    assert_eq!(
        (data_bucket.data_bucket_name.as_str(), data_bucket.data_event.as_slice()),
        ("watched-bucket", &[DataEvent::Read, DataEvent::Write][..])
    );
    assert_eq!(updated.status, TrackerStatus::Disabled);
}

#[test]
fn a_refused_change_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let resources = Resources::open(dir.path(), &[A]).unwrap();
    resources.create_tracker(A, &data_tracker("orders")).unwrap();
    let before = resources.list_trackers(A, None, None).unwrap();
    // The status is valid and read first; the bucket lifecycle is not.
    let refused = resources.update_tracker(
        A,
        &request(json!({
            "tracker_type": "data", "tracker_name": "orders", "status": "disabled", "obs_info": {"bucket_lifecycle": 7},
        })),
    );
    assert!(matches!(refused, Err(ResourceError::InvalidField { field: "obs_info.bucket_lifecycle", .. })));
    assert_eq!(resources.list_trackers(A, None, None).unwrap(), before);
    assert_eq!(Resources::open(dir.path(), &[A]).unwrap().list_trackers(A, None, None).unwrap(), before);
}

#[test]
fn data_trackers_are_capped_and_counted_in_quotas() {
    let dir = tempfile::tempdir().unwrap();
    let resources = Resources::open(dir.path(), &[A]).unwrap();
    for i in 0..MAX_DATA_TRACKERS {
        resources.create_tracker(A, &data_tracker(&format!("t{i}"))).unwrap();
    }
    assert!(matches!(
        resources.create_tracker(A, &data_tracker("one-more")),
        Err(ResourceError::QuotaExceeded { limit: 100 })
    ));
    assert!(matches!(resources.create_tracker(A, &data_tracker("t7")), Err(ResourceError::TrackerExists(_))));
    let used: Vec<_> = resources.quotas(A).unwrap().into_iter().map(|q| (q.resource_type, q.used, q.quota)).collect();
    assert_eq!(used, [("system_tracker", 1, 1), ("data_tracker", 100, 100), ("smn_notification", 0, 100)]);
    assert_eq!(resources.delete_trackers(A, Some("t7"), None).unwrap(), 1);
    assert!(matches!(
        resources.delete_trackers(A, Some("t7"), Some(TrackerType::Data)),
        Err(ResourceError::TrackerNotFound { .. })
    ));
    assert_eq!(resources.delete_trackers(A, None, None).unwrap(), 99);
    assert_eq!(resources.quotas(A).unwrap()[1].used, 0);
    assert_eq!(names(&resources.list_trackers(A, None, None).unwrap()), ["system"]);
}

#[test]
fn list_filters_by_name_and_type() {
    let dir = tempfile::tempdir().unwrap();
    let resources = Resources::open(dir.path(), &[A]).unwrap();
    resources.create_tracker(A, &data_tracker("orders")).unwrap();
    resources.create_tracker(A, &data_tracker("billing")).unwrap();
    let cases: [(Option<&str>, Option<TrackerType>, &[&str]); 5] = [
        (None, None, &["system", "orders", "billing"]),
        (None, Some(TrackerType::Data), &["orders", "billing"]),
        (Some("system"), None, &["system"]),
        (Some("billing"), Some(TrackerType::System), &[]),
        (Some("nothing"), None, &[]),
    ];
    for (name, tracker_type, expected) in cases {
        assert_eq!(
            names(&resources.list_trackers(A, name, tracker_type).unwrap()),
            expected,
            "{name:?} {tracker_type:?}"
        );
    }
}

#[test]
fn tags_are_added_replaced_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let resources = Resources::open(dir.path(), &[A]).unwrap();
    let id = resources.list_trackers(A, None, None).unwrap()[0].id.clone();
    resources.add_tags(A, &id, &tags(&[("env", Some("dev")), ("team", Some("a")), ("tier", Some("1"))])).unwrap();
    resources.add_tags(A, &id, &tags(&[("env", Some("prod"))])).unwrap();
    resources.remove_tags(A, &id, &tags(&[("team", Some("other")), ("tier", None), ("absent", None)])).unwrap();
    let expected = [Tag { key: "env".into(), value: "prod".into() }, Tag { key: "team".into(), value: "a".into() }];
    assert_eq!(resources.tags(A, &id).unwrap(), expected);
    assert!(matches!(
        resources.remove_tags(A, "no-such-id", &tags(&[("env", None)])),
        Err(ResourceError::TrackerIdNotFound(_))
    ));
}

#[test]
fn delivery_health_moves_enabled_trackers_to_error_and_back_but_never_touches_disabled_ones() {
    let dir = tempfile::tempdir().unwrap();
    let resources = Resources::open(dir.path(), &[A]).unwrap();
    let tracker = resources.create_tracker(A, &data_tracker("t1")).unwrap();
    let status = |resources: &Resources| {
        let tracker = resources.list_trackers(A, Some("t1"), None).unwrap().remove(0);
        (tracker.status, tracker.detail)
    };

    assert!(resources.set_delivery_health(&tracker, Some("noBucket")).unwrap());
    assert_eq!(status(&resources), (TrackerStatus::Error, Some("noBucket".into())));
    assert!(!resources.set_delivery_health(&tracker, Some("noBucket")).unwrap(), "unchanged: no write");
    let listed = serde_json::to_value(resources.list_trackers(A, Some("t1"), None).unwrap()).unwrap();
    assert_eq!((listed[0]["status"].as_str(), listed[0]["detail"].as_str()), (Some("error"), Some("noBucket")));
    // The error survives reopening, and delivery recovering sets it back.
    let resources = Resources::open(dir.path(), &[A]).unwrap();
    assert_eq!(status(&resources), (TrackerStatus::Error, Some("noBucket".into())));
    assert!(resources.set_delivery_health(&tracker, None).unwrap());
    assert_eq!(status(&resources), (TrackerStatus::Enabled, None));

    // A user's status wins: disabling clears the detail, and delivery leaves a disabled tracker alone.
    resources.set_delivery_health(&tracker, Some("bucketPolicyError")).unwrap();
    let disable = request(json!({"tracker_type": "data", "tracker_name": "t1", "status": "disabled"}));
    resources.update_tracker(A, &disable).unwrap();
    assert_eq!(status(&resources), (TrackerStatus::Disabled, None));
    assert!(!resources.set_delivery_health(&tracker, Some("noBucket")).unwrap());
    assert!(!resources.set_delivery_health(&tracker, None).unwrap());
    assert_eq!(status(&resources), (TrackerStatus::Disabled, None));
    // Nobody may set error through the API.
    let error = request(json!({"tracker_type": "data", "tracker_name": "t1", "status": "error"}));
    assert!(matches!(resources.update_tracker(A, &error), Err(ResourceError::InvalidStatus(_))));
    assert_eq!(resources.all_trackers().len(), 2);
}

#[test]
fn compress_type_takes_the_cts_values_and_the_parquet_extension() {
    let dir = tempfile::tempdir().unwrap();
    let resources = Resources::open(dir.path(), &[A]).unwrap();
    resources.create_tracker(A, &data_tracker("orders")).unwrap();
    let cases = [
        ("gzip", Some(CompressType::Gzip)),
        ("json", Some(CompressType::Json)),
        ("parquet", Some(CompressType::Parquet)),
        ("zip", None),
        ("PARQUET", None),
    ];
    for (value, expected) in cases {
        let body = json!({"tracker_type": "data", "tracker_name": "orders", "obs_info": {"compress_type": value}});
        let updated = resources.update_tracker(A, &request(body));
        match expected {
            Some(compress_type) => assert_eq!(updated.unwrap().obs_info.unwrap().compress_type, compress_type),
            None => assert!(
                matches!(updated, Err(ResourceError::InvalidField { field: "obs_info.compress_type", .. })),
                "{value}"
            ),
        }
    }
    let reopened = Resources::open(dir.path(), &[A]).unwrap().list_trackers(A, Some("orders"), None).unwrap();
    assert_eq!(reopened[0].obs_info.as_ref().unwrap().compress_type, CompressType::Parquet, "the last accepted value");
}
