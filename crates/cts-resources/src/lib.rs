//! The resources a project configures, persisted in the data directory:
//! trackers (one management tracker, `system`, which every project has from
//! the start, and up to [`MAX_DATA_TRACKERS`] data trackers) and their tags,
//! and key event notifications (up to [`MAX_NOTIFICATIONS`]).
//!
//! - [`tracker`]: the tracker record as CTS answers it, the CreateTracker /
//!   UpdateTracker body ([`TrackerRequest`]) and its validation.
//! - [`tags`]: resource tags and their validation.
//! - [`notification`]: key event notifications, the CreateNotification /
//!   UpdateNotification body ([`NotificationRequest`]) and its validation.
//! - [`Resources`]: the per-project store, `<data_dir>/resources/state.json`.
//!
//! No HTTP types: `cts-server` parses requests into these values and maps
//! each [`ResourceError`] to its HTTP status and CTS error code.

mod error;
pub mod notification;
mod resources;
pub mod tags;
pub mod tracker;

pub use error::ResourceError;
pub use notification::{Notification, NotificationRequest, NotificationType, MAX_NOTIFICATIONS};
pub use resources::{ProjectScope, Quota, Resources};
pub use tags::{Tag, TagRequest, TagsRequest, TRACKER_RESOURCE_TYPE};
pub use tracker::{Tracker, TrackerRequest, TrackerStatus, TrackerType, MAX_DATA_TRACKERS, SYSTEM_TRACKER_NAME};
