//! Trace transfer: trackers deliver their traces beyond cts, as trace files in an S3-compatible object store
//! (the CTS layout of `LAYOUT.md`, exactly once per window) and as a stream to a SIEM.
//!
//! - [`layout`]: delivery windows and the deterministic object names.
//! - [`trace_file`]: a window's traces cut into files (per service, split when large), gzip or plain JSON.
//! - [`envelope`]: envelope encryption (AES-256-GCM data keys wrapped by master keys from a [`Keyring`]).
//! - [`cursor`]: the durable per-tracker cursors.
//! - [`import`]: trace files read back into validated traces (`cts import`): JSON Lines, JSON, CTS `.json`,
//!   gzipped or not, and Parquet.
//! - [`digest`]: the hourly, chained digest files signed with the ledger's key (trackers with
//!   `is_support_validate`).
//! - [`history`]: the durable, bounded delivery history of each tracker ([`DeliveryHistory`]), which the engine
//!   records and the API reads.
//! - [`stream`]: traces as RFC 5424 syslog messages over TCP and/or JSON lines over HTTP, for trackers with
//!   `is_lts_enabled`.
//! - [`verify`]: checks a bucket (or a downloaded copy) against its digests: files altered, missing, added,
//!   digests invalid, chains broken (`cts verify --bucket` / `--dir`).
//! - [`Transfer`] (`engine`): the cycle that delivers, rewrites windows that gained late traces and sets each
//!   tracker's status (`error` with `bucketPolicyError` / `noBucket` / `kmsKeyError` while it cannot deliver).
//!
//! No HTTP server types: `cts serve` starts the engine; trackers come from `cts-resources`, traces from
//! `cts-store`, the object store from `cts-obs`.

pub mod cursor;
pub mod digest;
mod engine;
pub mod envelope;
mod error;
pub mod history;
pub mod import;
pub mod layout;
pub mod stream;
pub mod trace_file;
pub mod verify;

pub use engine::{CycleReport, Transfer, TransferConfig};
pub use envelope::{EnvelopeError, Keyring};
pub use error::TransferError;
pub use history::{Delivery, DeliveryFailure, DeliveryHistory, DeliveryOutcome, HISTORY_LIMIT};
pub use stream::{StreamConfig, TraceStream};
