//! Reports a service's operations to cts as traces.
//!
//! The contract between a service and the reporter:
//! - the service's handlers put an [`OperationContext`] in each response's extensions (who did it, on which
//!   resource); the reporter's layer turns the request, that context and the response into a [`TraceInput`];
//! - every trace, from the layer or from the service's own system actions, goes to a [`TraceSink`], which must
//!   never block or fail the operation it records.
//!
//! The delivery half: [`Reporter`] is the [`TraceSink`] that sends traces to cts in batches, retries while cts
//! is unreachable, keeps what it cannot send yet in a bounded spool on disk that survives restarts, and replays
//! it with the same trace ids, so each trace is stored once.

pub mod layer;
/// Redaction is the model's ([`cts_model::redact`]); the reporter applies it before traces leave the process.
pub use cts_model::redact;

pub use layer::{LayerConfig, ReporterLayer, RouteError, RouteTable, TimeSource};
pub use redact::Redactor;

use cts_model::{TraceInput, TraceType, UserInfo};

mod batch;
mod client;
mod config;
mod delivery;
mod spool;
mod stats;

pub use client::{FlushError, Reporter, ReporterError};
pub use config::{ConfigError, ReporterConfig, MAX_BATCH_BYTES, MAX_BATCH_TRACES};
pub use spool::SpoolError;
pub use stats::{DropReason, ReporterStats};

/// What a handler tells the reporter about the operation it just served, as a response extension.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperationContext {
    /// The authenticated caller; `None` when authentication failed (the trace then has no `user`).
    pub user: Option<UserInfo>,
    pub resource_id: Option<String>,
    pub resource_name: Option<String>,
    /// Overrides how the operation was made (by default from the client: a browser gives `ConsoleAction`, any other
    /// client `ApiCall`).
    pub trace_type: Option<TraceType>,
}

/// Where traces go. Implementations return at once: delivery happens in the background.
pub trait TraceSink: Send + Sync + 'static {
    fn submit(&self, trace: TraceInput);
}
