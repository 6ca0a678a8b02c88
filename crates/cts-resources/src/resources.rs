//! [`Resources`]: every project's trackers (with their tags) and key event
//! notifications, kept in memory and persisted as one JSON file,
//! `<data_dir>/resources/state.json`, which each change replaces atomically
//! before it is visible.

use crate::error::ResourceError;
use crate::notification::{Notification, NotificationRequest, MAX_NOTIFICATIONS};
use crate::tags::{self, Tag, TagsRequest};
use crate::tracker::{
    Lts, Tracker, TrackerRequest, TrackerStatus, TrackerType, MAX_DATA_TRACKERS, SYSTEM_TRACKER_NAME,
};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

const STATE_VERSION: u32 = 1;

/// The project an operation is about, as the caller's credentials name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectScope<'a> {
    pub project_id: &'a str,
    pub domain_id: &'a str,
}

/// One line of ListQuotas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quota {
    #[serde(rename = "type")]
    pub resource_type: &'static str,
    pub used: usize,
    pub quota: usize,
}

/// The content of `resources/state.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    version: u32,
    projects: BTreeMap<String, ProjectResources>,
}

/// One project's resources: the management tracker first, then the data
/// trackers in creation order; the notifications in creation order.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ProjectResources {
    trackers: Vec<StoredTracker>,
    /// Absent from state files written before notifications existed.
    #[serde(default)]
    notifications: Vec<Notification>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredTracker {
    #[serde(flatten)]
    tracker: Tracker,
    #[serde(default)]
    tags: Vec<Tag>,
}

impl ProjectResources {
    fn data_trackers(&self) -> impl Iterator<Item = &StoredTracker> {
        self.trackers.iter().filter(|stored| stored.tracker.tracker_type == TrackerType::Data)
    }

    fn find_mut(&mut self, tracker_type: TrackerType, name: &str) -> Option<&mut StoredTracker> {
        self.trackers
            .iter_mut()
            .find(|stored| stored.tracker.tracker_type == tracker_type && stored.tracker.tracker_name == name)
    }

    fn find_by_id_mut(&mut self, id: &str) -> Result<&mut StoredTracker, ResourceError> {
        self.trackers
            .iter_mut()
            .find(|stored| stored.tracker.id == id)
            .ok_or_else(|| ResourceError::TrackerIdNotFound(id.to_owned()))
    }

    fn notification_named(&self, name: &str) -> Option<&Notification> {
        self.notifications.iter().find(|notification| notification.notification_name == name)
    }
}

/// Every project's trackers. Reads are served from memory; each change is
/// made on a copy, written to disk (temporary file, fsync, rename, directory
/// fsync) and only then swapped in, so memory never runs ahead of the file.
#[derive(Debug)]
pub struct Resources {
    path: PathBuf,
    state: RwLock<State>,
}

impl Resources {
    /// Where the state lives in a data directory.
    pub fn state_path(data_dir: &Path) -> PathBuf {
        data_dir.join("resources").join("state.json")
    }

    /// Opens (or creates) the state under `data_dir` and gives each of
    /// `projects` that lacks one its management tracker.
    pub fn open(data_dir: &Path, projects: &[ProjectScope<'_>]) -> Result<Resources, ResourceError> {
        let path = Resources::state_path(data_dir);
        let state = match fs::read(&path) {
            Ok(bytes) => {
                let corrupt = |reason: String| ResourceError::Corrupt { path: path.clone(), reason };
                let state: State = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
                if state.version != STATE_VERSION {
                    return Err(corrupt(format!("unsupported version {}", state.version)));
                }
                state
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => State { version: STATE_VERSION, ..State::default() },
            Err(source) => return Err(ResourceError::Read { path, source }),
        };
        let resources = Resources { path, state: RwLock::new(state) };
        let missing: Vec<_> =
            projects.iter().filter(|p| !resources.state.read().projects.contains_key(p.project_id)).collect();
        for project in missing {
            resources.change(*project, |_| Ok(()))?;
        }
        Ok(resources)
    }

    /// CreateTracker: a data tracker (the management tracker always exists).
    pub fn create_tracker(
        &self,
        project: ProjectScope<'_>,
        request: &TrackerRequest,
    ) -> Result<Tracker, ResourceError> {
        let (tracker_type, tracker_name) = request.target()?;
        if tracker_type == TrackerType::System {
            return Err(ResourceError::ManagementTrackerExists);
        }
        let mut tracker = new_tracker(project, TrackerType::Data, tracker_name);
        request.apply_to(&mut tracker)?;
        self.change(project, |resources| {
            if resources.find_mut(TrackerType::Data, &tracker.tracker_name).is_some() {
                return Err(ResourceError::TrackerExists(tracker.tracker_name.clone()));
            }
            if resources.data_trackers().count() >= MAX_DATA_TRACKERS {
                return Err(ResourceError::QuotaExceeded { limit: MAX_DATA_TRACKERS });
            }
            resources.trackers.push(StoredTracker { tracker: tracker.clone(), tags: Vec::new() });
            Ok(tracker)
        })
    }

    /// UpdateTracker: changes exactly the fields `request` carries.
    pub fn update_tracker(
        &self,
        project: ProjectScope<'_>,
        request: &TrackerRequest,
    ) -> Result<Tracker, ResourceError> {
        let (tracker_type, tracker_name) = request.target()?;
        self.change(project, |resources| {
            let stored = resources.find_mut(tracker_type, &tracker_name).ok_or_else(|| {
                ResourceError::TrackerNotFound { tracker_type: tracker_type.as_str(), name: tracker_name.clone() }
            })?;
            let mut updated = stored.tracker.clone();
            request.apply_to(&mut updated)?;
            stored.tracker = updated.clone();
            Ok(updated)
        })
    }

    /// ListTrackers: the project's trackers, management tracker first, optionally
    /// only those of a name and/or a type.
    pub fn list_trackers(
        &self,
        project: ProjectScope<'_>,
        tracker_name: Option<&str>,
        tracker_type: Option<TrackerType>,
    ) -> Result<Vec<Tracker>, ResourceError> {
        self.read(project, |resources| {
            resources
                .trackers
                .iter()
                .map(|stored| &stored.tracker)
                .filter(|tracker| tracker_name.is_none_or(|name| tracker.tracker_name == name))
                .filter(|tracker| tracker_type.is_none_or(|tracker_type| tracker.tracker_type == tracker_type))
                .cloned()
                .collect()
        })
    }

    /// DeleteTracker: the data tracker named `tracker_name`, or every data
    /// tracker when no name is given. `tracker_type` defaults to data; the
    /// management tracker cannot be deleted. Returns how many were deleted.
    pub fn delete_trackers(
        &self,
        project: ProjectScope<'_>,
        tracker_name: Option<&str>,
        tracker_type: Option<TrackerType>,
    ) -> Result<usize, ResourceError> {
        if tracker_type == Some(TrackerType::System) {
            return Err(ResourceError::SystemTrackerNotDeletable);
        }
        self.change(project, |resources| {
            let before = resources.trackers.len();
            resources.trackers.retain(|stored| {
                stored.tracker.tracker_type != TrackerType::Data
                    || tracker_name.is_some_and(|name| stored.tracker.tracker_name != name)
            });
            match (before - resources.trackers.len(), tracker_name) {
                (0, Some(name)) => Err(ResourceError::TrackerNotFound { tracker_type: "data", name: name.to_owned() }),
                (deleted, _) => Ok(deleted),
            }
        })
    }

    /// BatchCreateResourceTags on the tracker with id `tracker_id`.
    pub fn add_tags(
        &self,
        project: ProjectScope<'_>,
        tracker_id: &str,
        request: &TagsRequest,
    ) -> Result<(), ResourceError> {
        let new = request.to_create()?;
        self.change(project, |resources| tags::merge(&mut resources.find_by_id_mut(tracker_id)?.tags, new))
    }

    /// BatchDeleteResourceTags on the tracker with id `tracker_id`; tags it does not carry are ignored.
    pub fn remove_tags(
        &self,
        project: ProjectScope<'_>,
        tracker_id: &str,
        request: &TagsRequest,
    ) -> Result<(), ResourceError> {
        request.check_count()?;
        self.change(project, |resources| {
            resources.find_by_id_mut(tracker_id)?.tags.retain(|tag| !request.deletes(tag));
            Ok(())
        })
    }

    /// The tags of the tracker with id `tracker_id`.
    pub fn tags(&self, project: ProjectScope<'_>, tracker_id: &str) -> Result<Vec<Tag>, ResourceError> {
        self.read(project, |resources| {
            resources
                .trackers
                .iter()
                .find(|stored| stored.tracker.id == tracker_id)
                .map(|stored| stored.tags.clone())
                .ok_or_else(|| ResourceError::TrackerIdNotFound(tracker_id.to_owned()))
        })?
    }

    /// CreateNotification: a new, enabled notification with a name unique in the project.
    pub fn create_notification(
        &self,
        project: ProjectScope<'_>,
        request: &NotificationRequest,
    ) -> Result<Notification, ResourceError> {
        let notification = request.to_new(project.project_id)?;
        self.change(project, |resources| {
            if resources.notification_named(&notification.notification_name).is_some() {
                return Err(ResourceError::NotificationNameExists(notification.notification_name.clone()));
            }
            if resources.notifications.len() >= MAX_NOTIFICATIONS {
                return Err(ResourceError::NotificationQuotaExceeded { limit: MAX_NOTIFICATIONS });
            }
            resources.notifications.push(notification.clone());
            Ok(notification)
        })
    }

    /// UpdateNotification: changes exactly the fields `request` carries on the
    /// notification its `notification_id` names.
    pub fn update_notification(
        &self,
        project: ProjectScope<'_>,
        request: &NotificationRequest,
    ) -> Result<Notification, ResourceError> {
        let id = request
            .notification_id
            .as_deref()
            .ok_or_else(|| ResourceError::invalid("notification_id", "is required"))?;
        self.change(project, |resources| {
            let index = resources
                .notifications
                .iter()
                .position(|notification| notification.notification_id == id)
                .ok_or_else(|| ResourceError::NotificationNotFound(id.to_owned()))?;
            let mut updated = resources.notifications[index].clone();
            request.apply_to(&mut updated)?;
            if resources.notification_named(&updated.notification_name).is_some_and(|other| other.notification_id != id)
            {
                return Err(ResourceError::NotificationNameExists(updated.notification_name));
            }
            resources.notifications[index] = updated.clone();
            Ok(updated)
        })
    }

    /// DeleteNotification: every notification of `ids`, or none when one of
    /// them is not a notification of the project. Returns how many were deleted.
    pub fn delete_notifications(&self, project: ProjectScope<'_>, ids: &[&str]) -> Result<usize, ResourceError> {
        self.change(project, |resources| {
            if let Some(missing) =
                ids.iter().find(|id| !resources.notifications.iter().any(|n| n.notification_id == **id))
            {
                return Err(ResourceError::NotificationNotFound((*missing).to_owned()));
            }
            let before = resources.notifications.len();
            resources.notifications.retain(|notification| !ids.contains(&notification.notification_id.as_str()));
            Ok(before - resources.notifications.len())
        })
    }

    /// ListNotifications: the project's notifications in creation order, or the one named `name`.
    pub fn list_notifications(
        &self,
        project: ProjectScope<'_>,
        name: Option<&str>,
    ) -> Result<Vec<Notification>, ResourceError> {
        self.read(project, |resources| {
            resources
                .notifications
                .iter()
                .filter(|notification| name.is_none_or(|name| notification.notification_name == name))
                .cloned()
                .collect()
        })
    }

    /// Every enabled notification of every project (what delivery matches traces against).
    pub fn enabled_notifications(&self) -> Vec<Notification> {
        let state = self.state.read();
        let all = state.projects.values().flat_map(|resources| &resources.notifications);
        all.filter(|n| n.status == crate::notification::NotificationStatus::Enabled).cloned().collect()
    }

    /// ListQuotas: trackers and notifications, used and allowed.
    pub fn quotas(&self, project: ProjectScope<'_>) -> Result<Vec<Quota>, ResourceError> {
        self.read(project, |resources| {
            let data = resources.data_trackers().count();
            vec![
                Quota { resource_type: "system_tracker", used: resources.trackers.len() - data, quota: 1 },
                Quota { resource_type: "data_tracker", used: data, quota: MAX_DATA_TRACKERS },
                Quota {
                    resource_type: "smn_notification",
                    used: resources.notifications.len(),
                    quota: MAX_NOTIFICATIONS,
                },
            ]
        })
    }

    /// The project's data trackers by name, each with whether it is enabled (none for a project never seen).
    pub fn data_trackers(&self, project_id: &str) -> Vec<(String, bool)> {
        let state = self.state.read();
        let Some(resources) = state.projects.get(project_id) else { return Vec::new() };
        resources
            .data_trackers()
            .map(|stored| (stored.tracker.tracker_name.clone(), stored.tracker.status == TrackerStatus::Enabled))
            .collect()
    }

    /// Every project's trackers, for the background work that acts on them (trace file delivery).
    pub fn all_trackers(&self) -> Vec<Tracker> {
        let state = self.state.read();
        state.projects.values().flat_map(|resources| resources.trackers.iter().map(|s| s.tracker.clone())).collect()
    }

    /// Records how delivery to the tracker's bucket went: `problem` `None` sets an `error` tracker back to
    /// `enabled`; `Some(detail)` sets an `enabled` (or differently failing) tracker to `error` with that detail.
    /// A disabled or deleted tracker is left alone. Returns whether anything changed.
    pub fn set_delivery_health(&self, tracker: &Tracker, problem: Option<&str>) -> Result<bool, ResourceError> {
        let project = ProjectScope { project_id: &tracker.project_id, domain_id: &tracker.domain_id };
        let wanted = match problem {
            None => (TrackerStatus::Enabled, None),
            Some(detail) => (TrackerStatus::Error, Some(detail.to_owned())),
        };
        let current = self.read(project, |resources| {
            resources
                .trackers
                .iter()
                .find(|s| s.tracker.id == tracker.id)
                .map(|s| (s.tracker.status, s.tracker.detail.clone()))
        })?;
        match current {
            None | Some((TrackerStatus::Disabled, _)) => return Ok(false),
            Some(current) if current == wanted => return Ok(false),
            Some(_) => {}
        }
        self.change(project, |resources| {
            let stored = resources.find_by_id_mut(&tracker.id)?;
            if stored.tracker.status == TrackerStatus::Disabled {
                return Ok(false);
            }
            (stored.tracker.status, stored.tracker.detail) = wanted;
            Ok(true)
        })
    }

    /// Runs `f` on the project's resources, creating them first if the project is new.
    fn read<T>(&self, project: ProjectScope<'_>, f: impl FnOnce(&ProjectResources) -> T) -> Result<T, ResourceError> {
        {
            let state = self.state.read();
            if let Some(resources) = state.projects.get(project.project_id) {
                return Ok(f(resources));
            }
        }
        self.change(project, |resources| Ok(f(resources)))
    }

    /// Runs `f` on a copy of the project's resources (created with the
    /// management tracker if the project is new); if it succeeds, persists the
    /// copy and makes it current.
    fn change<T>(
        &self,
        project: ProjectScope<'_>,
        f: impl FnOnce(&mut ProjectResources) -> Result<T, ResourceError>,
    ) -> Result<T, ResourceError> {
        let mut state = self.state.write();
        let mut next = state.clone();
        let resources = next.projects.entry(project.project_id.to_owned()).or_insert_with(|| ProjectResources {
            trackers: vec![StoredTracker {
                tracker: new_tracker(project, TrackerType::System, SYSTEM_TRACKER_NAME.to_owned()),
                tags: Vec::new(),
            }],
            notifications: Vec::new(),
        });
        let outcome = f(resources)?;
        let bytes = serde_json::to_vec_pretty(&next).expect("the state serializes");
        cts_durable::write_atomically(&self.path, &bytes)
            .map_err(|source| ResourceError::Write { path: self.path.clone(), source })?;
        *state = next;
        Ok(outcome)
    }
}

/// A tracker with nothing configured yet: enabled; the management tracker
/// with its switches off, a data tracker without its bucket (a request adds it).
fn new_tracker(project: ProjectScope<'_>, tracker_type: TrackerType, tracker_name: String) -> Tracker {
    let management = (tracker_type == TrackerType::System).then_some(false);
    Tracker {
        id: uuid::Uuid::new_v4().to_string(),
        create_time: cts_model::now_ms(),
        domain_id: project.domain_id.to_owned(),
        project_id: project.project_id.to_owned(),
        tracker_type,
        tracker_name,
        status: TrackerStatus::Enabled,
        detail: None,
        agency_name: None,
        is_organization_tracker: management,
        management_event_selector: None,
        lts: Lts { is_lts_enabled: false },
        obs_info: None,
        is_support_trace_files_encryption: management,
        kms_id: None,
        is_support_validate: management,
        data_bucket: None,
    }
}

#[cfg(test)]
mod tests;
