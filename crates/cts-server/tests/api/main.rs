//! The HTTP API end to end: in-process with `oneshot` (`routes`) and over TCP
//! with `cts-client` (`client`); trackers, tags, quotas and operations (`trackers`); notifications,
//! trace and user resources (`notifications`); self-audit traces (`self_audit`); the version and
//! OpenAPI documents (`versions`).

mod client;
mod common;
mod console;
mod export;
mod ledger;
mod notifications;
mod roles;
mod routes;
mod self_audit;
mod trackers;
mod versions;
