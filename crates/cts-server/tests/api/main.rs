//! The HTTP API end to end: in-process with `oneshot` (`routes`) and over TCP
//! with `cts-client` (`client`).

mod client;
mod common;
mod routes;
