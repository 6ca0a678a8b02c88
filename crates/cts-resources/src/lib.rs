//! The resources a project configures, persisted in the data directory:
//! trackers (one management tracker, `system`, which every project has from
//! the start, and up to [`MAX_DATA_TRACKERS`] data trackers) and their tags.
//!
//! - [`tracker`]: the tracker record as CTS answers it, the CreateTracker /
//!   UpdateTracker body ([`TrackerRequest`]) and its validation.
//! - [`tags`]: resource tags and their validation.
//! - [`Resources`]: the per-project store, `<data_dir>/resources/state.json`.
//!
//! No HTTP types: `cts-server` parses requests into these values and maps
//! each [`ResourceError`] to its HTTP status and CTS error code.

mod error;
mod resources;
pub mod tags;
pub mod tracker;

pub use error::ResourceError;
pub use resources::{ProjectScope, Quota, Resources, MAX_NOTIFICATIONS};
pub use tags::{Tag, TagRequest, TagsRequest, TRACKER_RESOURCE_TYPE};
pub use tracker::{Tracker, TrackerRequest, TrackerStatus, TrackerType, MAX_DATA_TRACKERS, SYSTEM_TRACKER_NAME};
