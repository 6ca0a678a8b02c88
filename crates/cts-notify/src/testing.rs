//! Helpers of this crate's unit tests.

use cts_model::{Trace, TraceRating, TraceType, UserInfo};
use cts_resources::notification::Notification;

pub const PROJECT: &str = "p1";

/// A marketplace `createOrder` by alice, answered 201, at `time_ms`.
pub fn trace(time_ms: i64) -> Trace {
    Trace {
        trace_id: uuid::Uuid::new_v4().to_string(),
        trace_name: "createOrder".to_owned(),
        trace_rating: TraceRating::Normal,
        trace_type: TraceType::ApiCall,
        service_type: "marketplace".to_owned(),
        resource_type: "Order".to_owned(),
        resource_name: Some("order-1".to_owned()),
        resource_id: Some("o-1".to_owned()),
        project_id: PROJECT.to_owned(),
        resource_account_id: None,
        read_only: false,
        tracker_name: None,
        operation_id: None,
        source_ip: None,
        request: None,
        response: None,
        code: Some("201".to_owned()),
        api_version: Some("v1".to_owned()),
        message: None,
        time: time_ms,
        record_time: time_ms,
        request_id: None,
        location_info: None,
        endpoint: None,
        resource_url: None,
        enterprise_project_id: None,
        user: Some(UserInfo { name: Some("alice".to_owned()), ..UserInfo::default() }),
    }
}

/// A notification of `PROJECT` made of `fields` over enabled, customized defaults with no operations, users or filter.
pub fn notification(fields: serde_json::Value) -> Notification {
    let mut document = serde_json::json!({
        "notification_id": "n-1",
        "notification_name": "test",
        "operation_type": "customized",
        "operations": [],
        "notify_user_list": [],
        "status": "enabled",
        "topic_id": "urn:smn:r:p1:t",
        "notification_type": "smn",
        "project_id": PROJECT,
        "create_time": 0,
    });
    for (key, value) in fields.as_object().expect("an object of fields") {
        document[key] = value.clone();
    }
    serde_json::from_value(document).expect("a notification")
}
