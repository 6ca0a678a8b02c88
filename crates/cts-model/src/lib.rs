//! The CTS v3 trace record and everything that can be said about one trace
//! without storage or HTTP: its fields (serialising to exactly the JSON the
//! Huawei Cloud SDK's `Traces` model reads), the validation of incoming traces,
//! the derived fields (rating, read-only flag), the error codes, and the
//! catalog of operations cts knows.

mod catalog;
mod error;
pub mod redact;
mod trace;
mod validate;

pub use catalog::{
    Operation, OperationCatalog, CATALOG, CTS_SERVICE, MARKETPLACE_PROVIDER_SERVICE, MARKETPLACE_SERVICE,
};
pub use error::{ErrorCode, ValidationError};
pub use trace::{Attributes, BaseUser, SessionContext, Trace, TraceRating, TraceType, UserInfo, UserType};
pub use validate::{is_valid_identifier, is_valid_tracker_name, limits, now_ms, TraceInput};
