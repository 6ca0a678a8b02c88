//! Authorization: the roles a user can hold and the CTS actions each allows.
//!
//! Action names follow Huawei CTS's fine-grained policy actions (`cts:trace:list`, `cts:tracker:create`, ...).
//! A role is a fixed set of actions: `admin` (everything), `auditor` (read everything, change nothing) and
//! `reporter` (ingest traces only, for services that report operations).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including identities.
    Admin,
    /// Every read: traces, trackers, notifications, quotas, the ledger, exports.
    Auditor,
    /// Ingest traces, nothing else.
    Reporter,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Auditor, Role::Reporter];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Auditor => "auditor",
            Role::Reporter => "reporter",
        }
    }

    /// Whether holders of this role may perform `action`.
    pub fn allows(self, action: Action) -> bool {
        match self {
            Role::Admin => true,
            Role::Auditor => action.is_read(),
            Role::Reporter => action == Action::TraceCreate,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(text: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| format!("unknown role {text:?}: expected admin, auditor or reporter"))
    }
}

/// An operation of the API, as policies name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    TraceCreate,
    TraceList,
    TraceExport,
    /// SQL queries over the project's traces.
    TraceQuery,
    TrackerCreate,
    TrackerUpdate,
    TrackerDelete,
    TrackerList,
    NotificationCreate,
    NotificationUpdate,
    NotificationDelete,
    NotificationList,
    TagCreate,
    TagDelete,
    QuotaGet,
    OperationList,
    ResourceList,
    LedgerGet,
    /// SMN-style topics, subscriptions and dead letters: changes.
    TopicManage,
    /// SMN-style topics, subscriptions, dead letters and insights: reads.
    TopicList,
    /// CheckObsBuckets: whether cts may deliver to a bucket.
    BucketCheck,
    /// Domains, projects, users, access keys and roles.
    IamManage,
}

impl Action {
    /// The policy name, e.g. `cts:trace:list`.
    pub fn name(self) -> &'static str {
        match self {
            Action::TraceCreate => "cts:trace:create",
            Action::TraceList => "cts:trace:list",
            Action::TraceExport => "cts:trace:export",
            Action::TraceQuery => "cts:trace:query",
            Action::TrackerCreate => "cts:tracker:create",
            Action::TrackerUpdate => "cts:tracker:update",
            Action::TrackerDelete => "cts:tracker:delete",
            Action::TrackerList => "cts:tracker:list",
            Action::NotificationCreate => "cts:notification:create",
            Action::NotificationUpdate => "cts:notification:update",
            Action::NotificationDelete => "cts:notification:delete",
            Action::NotificationList => "cts:notification:list",
            Action::TagCreate => "cts:tag:create",
            Action::TagDelete => "cts:tag:delete",
            Action::QuotaGet => "cts:quota:get",
            Action::OperationList => "cts:operation:list",
            Action::ResourceList => "cts:resource:list",
            Action::LedgerGet => "cts:ledger:get",
            Action::TopicManage => "smn:topic:manage",
            Action::TopicList => "smn:topic:list",
            Action::BucketCheck => "cts:bucket:check",
            Action::IamManage => "iam:identities:manage",
        }
    }

    /// Reads change nothing.
    pub fn is_read(self) -> bool {
        matches!(
            self,
            Action::TraceList
                | Action::TraceExport
                | Action::TraceQuery
                | Action::TrackerList
                | Action::NotificationList
                | Action::QuotaGet
                | Action::OperationList
                | Action::ResourceList
                | Action::LedgerGet
                | Action::TopicList
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_ACTIONS: [Action; 22] = [
        Action::TraceCreate,
        Action::TraceList,
        Action::TraceExport,
        Action::TraceQuery,
        Action::TrackerCreate,
        Action::TrackerUpdate,
        Action::TrackerDelete,
        Action::TrackerList,
        Action::NotificationCreate,
        Action::NotificationUpdate,
        Action::NotificationDelete,
        Action::NotificationList,
        Action::TagCreate,
        Action::TagDelete,
        Action::QuotaGet,
        Action::OperationList,
        Action::ResourceList,
        Action::LedgerGet,
        Action::TopicManage,
        Action::TopicList,
        Action::BucketCheck,
        Action::IamManage,
    ];

    #[test]
    fn auditors_read_everything_and_change_nothing() {
        for action in ALL_ACTIONS {
            assert_eq!(Role::Auditor.allows(action), action.is_read(), "{action}");
            // Every read is a list/get/export/query by name; every change is not.
            let verb = action.name().rsplit(':').next().unwrap();
            assert_eq!(action.is_read(), matches!(verb, "list" | "get" | "export" | "query"), "{action}");
        }
    }

    #[test]
    fn reporters_only_ingest_and_admins_do_everything() {
        for action in ALL_ACTIONS {
            assert_eq!(Role::Reporter.allows(action), action == Action::TraceCreate, "{action}");
            assert!(Role::Admin.allows(action), "{action}");
        }
    }

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            assert_eq!(serde_json::to_value(role).unwrap(), role.as_str());
        }
        assert!("root".parse::<Role>().unwrap_err().contains("admin, auditor or reporter"));
    }
}
