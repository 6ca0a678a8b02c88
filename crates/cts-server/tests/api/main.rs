//! The HTTP API end to end: in-process with `oneshot` (`routes`) and over TCP
//! with `cts-client` (`client`); trackers, tags, quotas and operations (`trackers`).

mod client;
mod common;
mod ledger;
mod routes;
mod trackers;
