//! The verifiable trace log (issue 5): one RFC 6962 Merkle log per project, whose leaves are the
//! RFC 8785 canonical JSON of each trace in acknowledgement order, C2SP signed checkpoints (Ed25519),
//! inclusion and consistency proofs, C2SP tlog-tiles, and the verification of a whole data directory
//! or of one trace offline.
//!
//! The store appends to the ledger through [`cts_store::AppendLog`] (implemented by [`Ledger`])
//! after its WAL fsync and before it acknowledges: a trace is acknowledged only once its leaf is
//! durable. No HTTP here; `cts-server` serves the API, `cts-cli` runs `cts verify`.

mod canonical_trace;
mod error;
mod frame;
mod jcs;
mod ledger;
mod log;
pub mod merkle;
mod note;
mod tiles;
mod verify;

pub use error::LedgerError;
pub use jcs::canonical_json;
pub use ledger::{
    hashes_to_base64, ledger_dir, read_expired_before, read_verifier_keys, trace_leaf_data, trace_leaf_hash,
    Checkpointer, InclusionProof, Ledger, LedgerConfig, DEFAULT_KEY_NAME, DEFAULT_ORIGIN_PREFIX,
};
pub use log::{LogEntryRecord, TILE_HEIGHT, TILE_WIDTH};
pub use note::{open_note, Checkpoint, NoteSigner, NoteVerifier};
pub use tiles::{encode_index, parse_tile_path, tile_path, TileRequest};
pub use verify::{verify_data_dir, verify_trace, DataDirReport, Finding};
