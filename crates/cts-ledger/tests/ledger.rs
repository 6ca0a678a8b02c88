//! The ledger behind a real store: proofs against signed checkpoints, tiles, entry bundles,
//! recovery, retention, and what verification names.

use cts_ledger::merkle::{self, Hash, HashSource};
use cts_ledger::*;
use cts_model::Trace;
use cts_store::{AppendLog, Store, StoreConfig};
use std::path::Path;
use std::sync::Arc;

fn trace(project: &str, i: u64) -> Trace {
    let now = cts_model::now_ms();
    serde_json::from_value(serde_json::json!({
        "trace_id": format!("00000000-0000-4000-8000-{i:012}"),
        "trace_name": "createOrder", "trace_rating": "normal", "trace_type": "ApiCall",
        "service_type": "marketplace", "resource_type": "Order", "project_id": project,
        "read_only": false, "time": now - 100_000 + i as i64, "record_time": now,
        "request": "{\"orderId\":\"CS1\",\"amount\":3}", "user": {"name": "alice", "id": "u\u{e9}\n1"}
    }))
    .unwrap()
}

fn open(dir: &Path, retention_ms: Option<i64>) -> (Arc<Ledger>, Store) {
    let ledger = Arc::new(Ledger::open(LedgerConfig::new(dir)).unwrap());
    let mut config = StoreConfig::new(dir);
    if let Some(retention_ms) = retention_ms {
        config.retention_ms = retention_ms;
    }
    let store = Store::open_with_log(config, Some(ledger.clone() as Arc<dyn AppendLog>)).unwrap();
    (ledger, store)
}

fn verifiers(ledger: &Ledger) -> Vec<NoteVerifier> {
    ledger.verifier_keys().lines().map(|key| NoteVerifier::parse(key).unwrap()).collect()
}

/// Leaf hashes as a hash source (computing each subtree from the leaves).
struct Leaves(Vec<Hash>);

impl HashSource for Leaves {
    fn subtree(&self, level: u32, index: u64) -> Result<Hash, LedgerError> {
        let start = (index << level) as usize;
        let mut hashes = self.0[start..start + (1 << level)].to_vec();
        while hashes.len() > 1 {
            hashes = hashes.chunks(2).map(|pair| merkle::node_hash(&pair[0], &pair[1])).collect();
        }
        Ok(hashes[0])
    }
}

#[test]
fn every_trace_is_proven_against_signed_checkpoints_and_the_tiles_rebuild_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, store) = open(dir.path(), None);
    let p1: Vec<Trace> = (0..600).map(|i| trace("p1", i)).collect();
    for batch in p1.chunks(100) {
        store.append_blocking(batch.to_vec()).unwrap();
    }
    store.append_blocking((0..10).map(|i| trace("p2", i)).collect()).unwrap();
    assert_eq!(ledger.checkpoint_all().unwrap(), 2);
    assert_eq!(ledger.checkpoint_all().unwrap(), 0, "nothing grew");
    let first = Checkpoint::open(&ledger.latest_checkpoint("p1").unwrap(), &verifiers(&ledger)).unwrap();
    assert_eq!((first.origin.as_str(), first.size), ("cts/p1", 600));
    for i in [0, 255, 256, 511, 599] {
        let proof = ledger.inclusion_proof("p1", &p1[i].trace_id, None).unwrap();
        let stored = store.get("p1", &p1[i].trace_id).unwrap().unwrap();
        assert_eq!(proof.leaf_index, i as u64, "acknowledgement order");
        let leaf = merkle::leaf_hash(&trace_leaf_data(&stored));
        assert!(merkle::verify_inclusion(&leaf, proof.leaf_index, proof.tree_size, &proof.hashes, &first.root));
    }
    store.append_blocking((600..700).map(|i| trace("p1", i)).collect()).unwrap();
    assert!(ledger.inclusion_proof("p1", &trace("p1", 650).trace_id, None).is_err(), "not yet checkpointed");
    ledger.checkpoint_all().unwrap();
    let second = Checkpoint::open(&ledger.latest_checkpoint("p1").unwrap(), &verifiers(&ledger)).unwrap();
    let proof = ledger.consistency_proof("p1", first.size, second.size).unwrap();
    assert!(merkle::verify_consistency(first.size, second.size, &first.root, &second.root, &proof));
    assert!(ledger.consistency_proof("p1", 1, 701).is_err());

    // The hash tiles give every leaf, and the level-1 tile the roots of the full level-0 tiles.
    let mut leaves = Vec::new();
    for (index, width) in [(0, 256), (1, 256), (2, 700 - 512)] {
        let tile = ledger.hash_tile("p1", 0, index, width).unwrap();
        leaves.extend(tile.chunks(32).map(|hash| Hash::try_from(hash).unwrap()));
    }
    assert_eq!(merkle::root(&Leaves(leaves.clone()), 700).unwrap(), second.root);
    let level_one = ledger.hash_tile("p1", 1, 0, 2).unwrap();
    assert_eq!(level_one[..32], Leaves(leaves.clone()).subtree(8, 0).unwrap());
    assert!(ledger.hash_tile("p1", 0, 2, 256).is_err(), "the third tile is partial");
    // An entry bundle holds each trace's leaf data, length-prefixed.
    let bundle = ledger.entry_bundle("p1", 2, 188, |id| Ok(store.get("p1", id).unwrap())).unwrap();
    let mut rest = &bundle[..];
    for expected in &leaves[512..] {
        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        assert_eq!(merkle::leaf_hash(&rest[2..2 + len]), *expected);
        rest = &rest[2 + len..];
    }
    assert!(rest.is_empty());
    drop(store);
    let report = verify_data_dir(dir.path(), None).unwrap();
    assert_eq!(report.summary(), "710 traces, 3 checkpoints: all valid");
}

#[test]
fn one_trace_verifies_offline_and_a_modified_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, store) = open(dir.path(), None);
    store.append_blocking((0..37).map(|i| trace("p1", i)).collect()).unwrap();
    ledger.checkpoint_all().unwrap();
    let stored = store.get("p1", &trace("p1", 20).trace_id).unwrap().unwrap();
    let trace_json = serde_json::to_string_pretty(&stored).unwrap();
    let proof = ledger.inclusion_proof("p1", &stored.trace_id, None).unwrap().to_json().to_string();
    let note = ledger.latest_checkpoint("p1").unwrap();
    let key = ledger.verifier_keys();
    assert_eq!(verify_trace(&trace_json, &proof, &note, key.trim()).unwrap().size, 37);
    let modified = trace_json.replace("createOrder", "deleteOrder");
    assert!(verify_trace(&modified, &proof, &note, key.trim()).is_err());
    let other_key = NoteSigner::generate("cts").unwrap().verifier_key();
    assert!(verify_trace(&trace_json, &proof, &note, &other_key).is_err());
}

#[test]
fn traces_in_the_wal_that_missed_the_log_are_logged_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        // A store without its ledger: as if the process stopped between the WAL fsync and the log append.
        let store = Store::open(StoreConfig::new(dir.path())).unwrap();
        store.append_blocking((0..5).map(|i| trace("p1", i)).collect()).unwrap();
    }
    let (ledger, store) = open(dir.path(), None);
    assert_eq!(ledger.size("p1"), 5);
    assert_eq!(ledger.index_of("p1", &trace("p1", 3).trace_id).unwrap(), Some(3));
    drop(store);
    assert!(verify_data_dir(dir.path(), None).unwrap().is_valid());
}

#[test]
fn verification_names_inserted_removed_and_expired_traces() {
    let dir = tempfile::tempdir().unwrap();
    let hour = 3_600_000;
    let (ledger, store) = open(dir.path(), Some(hour));
    let now = cts_model::now_ms();
    let old: Vec<Trace> = (0..4).map(|i| Trace { time: now - 2 * hour, ..trace("p1", 100 + i) }).collect();
    store.append_blocking(old).unwrap();
    store.flush().unwrap();
    store.append_blocking((0..6).map(|i| trace("p1", i)).collect()).unwrap();
    ledger.checkpoint_all().unwrap();
    assert_eq!(store.enforce_retention(now).unwrap(), 4);
    drop(store);
    drop(ledger);
    let report = verify_data_dir(dir.path(), None).unwrap();
    assert_eq!(report.summary(), "6 traces, 1 checkpoints, 4 expired by retention: all valid");

    // Remove the third WAL record, and splice a trace in through a store without the ledger.
    let wal = std::fs::read_dir(dir.path().join("store/wal")).unwrap().next().unwrap().unwrap().path();
    let bytes = std::fs::read(&wal).unwrap();
    let mut records = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        records.push(&bytes[at..at + 8 + len]);
        at += 8 + len;
    }
    records.remove(2);
    std::fs::write(&wal, records.concat()).unwrap();
    let store = Store::open(StoreConfig { retention_ms: hour, ..StoreConfig::new(dir.path()) }).unwrap();
    store.append_blocking(vec![trace("p1", 999)]).unwrap();
    drop(store);
    let report = verify_data_dir(dir.path(), None).unwrap();
    let findings: Vec<String> = report.findings.iter().map(|f| f.to_string()).collect();
    assert_eq!(findings.len(), 2, "{findings:?}");
    assert!(findings[0].starts_with(&format!("inserted: trace {} of project p1 in ", trace("p1", 999).trace_id)));
    assert!(findings[0].ends_with(".wal is not in the log"));
    assert_eq!(
        findings[1],
        format!("removed: trace {} of project p1 (leaf 6) is in no store file", trace("p1", 2).trace_id)
    );
    assert_eq!(report.summary(), "5 traces, 1 checkpoints, 4 expired by retention: 2 problems");
}
