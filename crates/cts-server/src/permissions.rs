//! Which action each route performs and whose id its path names: the one table the
//! authentication layer checks a caller's role and scope against.

use axum::http::Method;
use cts_iam::Action;

/// Whose id the first segment after `/v3/` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The caller's project (almost every CTS call).
    Project,
    /// The caller's account (`ListTraceResources`, `CheckObsBuckets`).
    Domain,
}

/// The action and scope of the route `route` (axum's matched path, e.g. `/v3/{project_id}/traces`).
/// A route missing here needs the `iam:identities:manage` action: admins only, never silently open.
pub(crate) fn route_permission(method: &Method, route: &str) -> (Action, Scope) {
    let resource = route.strip_prefix("/v3/{project_id}/").unwrap_or(route);
    let project = |action| (action, Scope::Project);
    match (method.as_str(), resource) {
        ("POST", "traces") => project(Action::TraceCreate),
        ("GET", "traces") => project(Action::TraceList),
        ("GET", "traces/export") => project(Action::TraceExport),
        ("GET", "traces/histogram" | "traces/tail") => project(Action::TraceList),
        ("POST", "queries") => project(Action::TraceQuery),
        ("POST", "tracker") => project(Action::TrackerCreate),
        ("PUT", "tracker") => project(Action::TrackerUpdate),
        ("GET", "trackers" | "trackers/{tracker_name}/deliveries") => project(Action::TrackerList),
        ("DELETE", "trackers") => project(Action::TrackerDelete),
        ("POST", "notifications") => project(Action::NotificationCreate),
        ("PUT", "notifications") => project(Action::NotificationUpdate),
        ("DELETE", "notifications") => project(Action::NotificationDelete),
        ("GET", "notifications/{notification_type}") => project(Action::NotificationList),
        ("POST", "{resource_type}/{resource_id}/tags/create") => project(Action::TagCreate),
        ("DELETE", "{resource_type}/{resource_id}/tags/delete") => project(Action::TagDelete),
        ("GET", "quotas") => project(Action::QuotaGet),
        ("GET", "operations") => project(Action::OperationList),
        ("GET", "user-resources") => project(Action::ResourceList),
        ("GET", "resources") => (Action::ResourceList, Scope::Domain),
        ("POST", "checkbucket") => (Action::BucketCheck, Scope::Domain),
        ("GET", ledger) if ledger.starts_with("ledger/") => project(Action::LedgerGet),
        ("GET", "insights") => project(Action::TopicList),
        ("GET", smn) if smn.starts_with("/v2/{project_id}/notifications/") => project(Action::TopicList),
        (_, smn) if smn.starts_with("/v2/{project_id}/notifications/") => project(Action::TopicManage),
        _ => project(Action::IamManage),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sdk_call_maps_to_its_documented_action() {
        let cases = [
            ("GET", "/v3/{project_id}/traces", "cts:trace:list"),
            ("POST", "/v3/{project_id}/traces", "cts:trace:create"),
            ("GET", "/v3/{project_id}/traces/export", "cts:trace:export"),
            ("GET", "/v3/{project_id}/traces/tail", "cts:trace:list"),
            ("POST", "/v3/{project_id}/queries", "cts:trace:query"),
            ("POST", "/v3/{project_id}/tracker", "cts:tracker:create"),
            ("PUT", "/v3/{project_id}/tracker", "cts:tracker:update"),
            ("GET", "/v3/{project_id}/trackers", "cts:tracker:list"),
            ("GET", "/v3/{project_id}/trackers/{tracker_name}/deliveries", "cts:tracker:list"),
            ("DELETE", "/v3/{project_id}/trackers", "cts:tracker:delete"),
            ("GET", "/v3/{project_id}/notifications/{notification_type}", "cts:notification:list"),
            ("GET", "/v3/{project_id}/quotas", "cts:quota:get"),
            ("GET", "/v3/{project_id}/ledger/checkpoint", "cts:ledger:get"),
            ("GET", "/v3/{project_id}/resources", "cts:resource:list"),
            ("PATCH", "/v3/{project_id}/traces", "iam:identities:manage"),
            ("GET", "/v3/{project_id}/something-new", "iam:identities:manage"),
            ("POST", "/v2/{project_id}/notifications/topics", "smn:topic:manage"),
            ("GET", "/v2/{project_id}/notifications/topics", "smn:topic:list"),
            ("DELETE", "/v2/{project_id}/notifications/subscriptions/{subscription_urn}", "smn:topic:manage"),
            ("GET", "/v2/{project_id}/notifications/dead-letters", "smn:topic:list"),
            ("GET", "/v3/{project_id}/insights", "smn:topic:list"),
        ];
        for (method, route, action) in cases {
            let (got, _) = route_permission(&method.parse().unwrap(), route);
            assert_eq!(got.name(), action, "{method} {route}");
        }
    }
}
