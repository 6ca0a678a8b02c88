//! Store recovery (`cts_store::Store::open`) from a write-ahead log. The first byte picks the case:
//! - even: the rest is the WAL file, as it is. The store must open or refuse with an error, never panic, and
//!   what it opened must answer queries (or fail them with an error).
//! - odd: a WAL the store wrote itself, truncated and with bytes flipped where the rest says. Recovery must
//!   keep exactly a prefix of the appended traces (it truncates at the first bad record), and the store must
//!   go on: a trace appended after recovery is there, after the recovered ones, when it is opened again.
#![no_main]

use cts_fuzz::{all_traces, assert_json_round_trip, sample_traces, scratch_dir, store_config, PROJECT};
use cts_model::Trace;
use cts_store::Store;
use libfuzzer_sys::fuzz_target;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Traces appended (in three batches) to make the valid WAL.
const SAMPLES: usize = 8;

/// The WAL file of a fresh store's first generation.
fn wal_file(data_dir: &Path) -> PathBuf {
    data_dir.join("store/wal/00000000000000000001.wal")
}

/// The bytes of a WAL holding [`SAMPLES`] traces, written by the store.
fn valid_wal() -> &'static [u8] {
    static WAL: OnceLock<Vec<u8>> = OnceLock::new();
    WAL.get_or_init(|| {
        let dir = scratch_dir();
        let store = Store::open(store_config(dir.path())).expect("a store opens");
        let mut samples = sample_traces(SAMPLES);
        for batch in [samples.split_off(5), samples.split_off(2), samples].into_iter().rev() {
            store.append_blocking(batch).expect("samples are stored");
        }
        drop(store);
        std::fs::read(wal_file(dir.path())).expect("the store wrote its WAL")
    })
}

/// Every trace recovered in [`PROJECT`], oldest first, after checking each reads back from its JSON.
fn recovered(store: &Store) -> Vec<Trace> {
    let mut traces = all_traces(store, PROJECT, false).expect("a recovered WAL answers queries");
    traces.iter().for_each(assert_json_round_trip);
    traces.reverse();
    traces
}

fn open_raw(wal: &[u8]) {
    let dir = scratch_dir();
    std::fs::create_dir_all(dir.path().join("store/wal")).expect("the WAL directory");
    std::fs::write(wal_file(dir.path()), wal).expect("the WAL is written");
    let Ok(store) = Store::open(store_config(dir.path())) else { return };
    let _ = store.stats();
    for data in [false, true] {
        if let Ok(traces) = all_traces(&store, PROJECT, data) {
            traces.iter().for_each(assert_json_round_trip);
        }
    }
}

fn open_damaged(damage: &[u8]) {
    let mut wal = valid_wal().to_vec();
    let (cut, flips) = damage.split_at(damage.len().min(2));
    let cut = cut.iter().fold(0usize, |n, &b| n << 8 | usize::from(b));
    wal.truncate(cut.min(wal.len()));
    for flip in flips.chunks_exact(3) {
        let at = usize::from(u16::from_le_bytes([flip[0], flip[1]]));
        if let Some(byte) = wal.get_mut(at) {
            *byte ^= flip[2];
        }
    }
    let dir = scratch_dir();
    std::fs::create_dir_all(dir.path().join("store/wal")).expect("the WAL directory");
    std::fs::write(wal_file(dir.path()), &wal).expect("the WAL is written");

    let samples = sample_traces(SAMPLES + 1);
    let store = Store::open(store_config(dir.path())).expect("a damaged WAL is recovered, not refused");
    let kept = recovered(&store);
    assert_eq!(kept[..], samples[..kept.len()], "recovery kept something other than a prefix");
    let late = samples[SAMPLES].clone();
    store.append_blocking(vec![late.clone()]).expect("the recovered store takes appends");
    drop(store);
    let store = Store::open(store_config(dir.path())).expect("the store reopens");
    let mut expected = kept;
    expected.push(late);
    assert_eq!(recovered(&store), expected, "a trace appended after recovery was lost");
}

fuzz_target!(|data: &[u8]| {
    let Some((&case, rest)) = data.split_first() else { return };
    if case % 2 == 0 {
        open_raw(rest);
    } else {
        open_damaged(rest);
    }
});
