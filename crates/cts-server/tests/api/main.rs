//! The HTTP API end to end: in-process with `oneshot` (`routes`) and over TCP
//! with `cts-client` (`client`); trackers, tags, quotas and operations (`trackers`); notifications,
//! trace and user resources (`notifications`); self-audit traces (`self_audit`); the version and
//! OpenAPI documents (`versions`); the corpus of hostile requests (`hostile`); health, readiness and metrics
//! (`operations_endpoints`); rate limits (`limits`); console sessions, their audit and sign-in limits
//! (`console`, `console_sign_in`); redaction before storage (`redaction`); time, header and connection limits (`timeouts`);
//! prefix, case-insensitive and free-text search (`search`); SQL queries (`queries`).

mod client;
mod common;
mod console;
mod console_sign_in;
mod export;
mod hostile;
mod ledger;
mod limits;
mod notifications;
mod operations_endpoints;
mod queries;
mod redaction;
mod roles;
mod routes;
mod search;
mod self_audit;
mod timeouts;
mod trackers;
mod versions;
