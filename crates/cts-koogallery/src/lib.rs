//! KooGallery, the marketplace whose operations cts records.
//!
//! - [`market`]: the domain core, a pure state machine ([`Marketplace`]): orders (pending payment → processing →
//!   completed, or canceled while unpaid; renewal and change orders), resources and their expiry lifecycle (grace
//!   period, frozen retention, release, auto-renewal), negotiated unsubscription inside the guarantee period, service
//!   supervision with its appeal rule, private offers, favorites, agreement sign records, accounts and users.
//! - [`journal`]: persistence, a journal of applied commands plus atomic snapshots.
//! - [`service`]: [`KooGallery`], the state behind a lock with its journal, sessions, clock and the platform's
//!   `SystemAction` traces.
//! - [`api`]: the REST API ([`app`]), each operation traced through `cts_reporter::ReporterLayer`.
//! - [`workload`]: the seeded buyers-and-sellers driver the demo runs.

pub mod api;
pub mod clock;
pub mod error;
pub mod journal;
pub mod market;
pub mod model;
pub mod service;
pub mod workload;

pub use api::{app, serve, ApiError, AppState};
pub use clock::Clock;
pub use error::{MarketError, ServiceError, StorageError};
pub use market::{Command, Marketplace, OrderFilter, Outcome, SystemEvent};
pub use service::{Caller, KooGallery};
