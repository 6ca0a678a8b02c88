//! The project log against a plain list of leaves: roots, tiles, lookups, reopening, torn tails,
//! checkpoints.

use super::*;
use crate::merkle::leaf_hash;
use crate::note::NoteVerifier;

fn leaf(i: u64) -> Hash {
    leaf_hash(&i.to_le_bytes())
}

fn id(i: u64) -> String {
    format!("trace-{i}")
}

/// Appends leaves `range` in batches of `batch`.
fn append_range(log: &ProjectLog, range: std::ops::Range<u64>, batch: usize) {
    let items: Vec<(i64, Hash, String)> = range.map(|i| (i as i64, leaf(i), id(i))).collect();
    for chunk in items.chunks(batch) {
        let entries: Vec<(i64, Hash, &str)> = chunk.iter().map(|(t, h, i)| (*t, *h, i.as_str())).collect();
        let written = log.write(&entries).unwrap();
        log.publish(&entries, written);
    }
}

#[test]
fn withdrawn_leaves_leave_no_trace_in_the_file_or_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let log = ProjectLog::open(dir.path()).unwrap();
    append_range(&log, 0..5, 5);
    let file_len = || std::fs::metadata(dir.path().join("entries")).unwrap().len();
    let before = (log.size(), file_len());
    let (six, seven) = (id(6), id(7));
    let withdrawn = log.write(&[(6, leaf(6), six.as_str()), (7, leaf(7), seven.as_str())]).unwrap();
    assert!(file_len() > before.1);
    drop(withdrawn);
    log.withdraw().unwrap();
    assert_eq!((log.size(), file_len()), before);
    append_range(&log, 5..8, 3);
    drop(log);
    let reopened = ProjectLog::open(dir.path()).unwrap();
    assert_eq!(reopened.size(), 8);
    assert_eq!(reopened.index_of(&id(6)).unwrap(), Some(6));
}

/// The root of the leaves as RFC 6962 defines it, by recursion.
fn reference_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => merkle::empty_root(),
        1 => leaves[0],
        n => {
            let k = 1 << (63 - (n as u64 - 1).leading_zeros());
            merkle::node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
        }
    }
}

#[test]
fn roots_tiles_and_lookups_match_a_plain_list_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let total = 256 * 5 + 37;
    let leaves: Vec<Hash> = (0..total).map(leaf).collect();
    {
        let log = ProjectLog::open(dir.path()).unwrap();
        append_range(&log, 0..700, 97);
    }
    let log = ProjectLog::open(dir.path()).unwrap();
    append_range(&log, 700..total, 13);
    assert_eq!(log.size(), total);
    log.with_view(|view| {
        for size in [1, 2, 255, 256, 257, 512, 700, 1000, total] {
            assert_eq!(merkle::root(view, size)?, reference_root(&leaves[..size as usize]), "size {size}");
        }
        assert_eq!(view.hash_tile(0, 2, 256)?, leaves[512..768].to_vec());
        assert_eq!(view.hash_tile(0, 5, 37)?, leaves[1280..].to_vec());
        let level_one: Vec<Hash> = (0..5).map(|t| reference_root(&leaves[t * 256..(t + 1) * 256])).collect();
        assert_eq!(view.hash_tile(1, 0, 5)?, level_one);
        assert!(view.hash_tile(0, 5, 38).is_err());
        assert!(view.hash_tile(1, 0, 256).is_err());
        Ok(())
    })
    .unwrap();
    for i in (0..total).step_by(61) {
        assert_eq!(log.index_of(&id(i)).unwrap(), Some(i));
    }
    assert_eq!(log.index_of("missing").unwrap(), None);
}

#[test]
fn a_torn_entry_is_truncated_at_open_and_appends_continue_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = ProjectLog::open(dir.path()).unwrap();
    append_range(&log, 0..10, 10);
    drop(log);
    let path = dir.path().join("entries");
    let full = std::fs::metadata(&path).unwrap().len();
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(full - 3).unwrap();
    let log = ProjectLog::open(dir.path()).unwrap();
    assert_eq!(log.size(), 9);
    append_range(&log, 9..12, 1);
    drop(log);
    let (entries, torn) = read_entries_file(&path).unwrap();
    assert!(!torn);
    assert_eq!(entries.iter().map(|e| e.leaf_hash).collect::<Vec<_>>(), (0..12).map(leaf).collect::<Vec<_>>());
}

#[test]
fn checkpoints_are_signed_only_when_the_log_grew_and_must_be_extended_by_the_entries() {
    let dir = tempfile::tempdir().unwrap();
    let signer = NoteSigner::generate("test").unwrap();
    let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
    let log = ProjectLog::open(dir.path()).unwrap();
    assert_eq!(log.sign_checkpoint("cts/p", &signer).unwrap(), None, "an empty log has no checkpoint");
    append_range(&log, 0..300, 50);
    let first = log.sign_checkpoint("cts/p", &signer).unwrap().unwrap();
    assert_eq!(log.sign_checkpoint("cts/p", &signer).unwrap(), None);
    append_range(&log, 300..301, 1);
    let second = log.sign_checkpoint("cts/p", &signer).unwrap().unwrap();
    assert_eq!((first.size, second.size), (300, 301));
    let (_, note) = log.latest_checkpoint().unwrap();
    assert_eq!(Checkpoint::open(&note, &[verifier]).unwrap(), second);
    drop(log);
    let log = ProjectLog::open(dir.path()).unwrap();
    assert_eq!(log.latest_checkpoint().unwrap().0, second);
    drop(log);
    // Losing signed leaves (here: the last entry) is refused at open.
    let path = dir.path().join("entries");
    let (entries, _) = read_entries_file(&path).unwrap();
    let last_len = (crate::frame::HEADER_LEN + ENTRY_FIXED_LEN + entries[300].trace_id.len()) as u64;
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(file.metadata().unwrap().len() - last_len).unwrap();
    assert!(matches!(ProjectLog::open(dir.path()), Err(LedgerError::Corrupt { .. })));
}
