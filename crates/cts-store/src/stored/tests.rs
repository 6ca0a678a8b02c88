use super::*;
use crate::tests::make_trace;

/// Writes the sidecar of `count` generated traces (sorted as a segment) and opens it.
fn written(dir: &Path, count: u64) -> (Vec<Trace>, StoredTraces) {
    let mut traces: Vec<Trace> = (0..count).map(make_trace).collect();
    traces.sort_by_key(crate::SortKey::of);
    let path = stored_path(dir, 7);
    let mut records = crate::record::RecordBuffer::default();
    traces.iter().for_each(|trace| records.push_trace(trace));
    write_stored(&path, &records.records()).unwrap();
    (traces, StoredTraces::open(&path).unwrap())
}

#[test]
fn every_field_round_trips_through_the_sidecar_with_and_without_a_dictionary() {
    for count in [1, BLOCK_ROWS as u64, 17, DICTIONARY_MIN_ROWS as u64 - 1, 1500] {
        let dir = tempfile::tempdir().unwrap();
        let (traces, stored) = written(dir.path(), count);
        assert_eq!(stored.len(), traces.len());
        assert_eq!(stored.dictionary.is_some(), count as usize >= DICTIONARY_MIN_ROWS, "{count} rows");
        let all: Vec<u32> = (0..count as u32).collect();
        assert_eq!(stored.fetch(&all).unwrap(), traces, "{count} rows");
        let some: Vec<u32> = all.iter().copied().filter(|row| row % 7 == 3 || *row + 1 == count as u32).collect();
        let expected: Vec<Trace> = some.iter().map(|&row| traces[row as usize].clone()).collect();
        assert_eq!(stored.fetch(&some).unwrap(), expected, "{count} rows");
    }
}

fn flip_byte(path: &Path, at: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at as usize] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_damaged_block_is_corruption_and_the_other_blocks_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let (traces, stored) = written(dir.path(), 1000);
    let damaged_block = 5;
    let entry = stored.blocks[damaged_block];
    flip_byte(stored.path(), (entry.start + entry.end) / 2);
    let stored = StoredTraces::open(stored.path()).unwrap();
    for row in 0..traces.len() as u32 {
        let fetched = stored.fetch(&[row]);
        if row as usize / BLOCK_ROWS == damaged_block {
            assert!(matches!(fetched, Err(StoreError::Corrupt { .. })), "row {row}: {fetched:?}");
        } else {
            assert_eq!(fetched.unwrap(), [traces[row as usize].clone()], "row {row}");
        }
    }
}

#[test]
fn a_damaged_footer_trailer_or_dictionary_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let (_, stored) = written(dir.path(), 1000);
    let path = stored.path().to_owned();
    let len = stored.file_size();
    let pristine = std::fs::read(&path).unwrap();
    // Footer, footer length, footer checksum, trailing and leading magic.
    for at in [len - 100, len - 16, len - 12, len - 3, 2] {
        flip_byte(&path, at);
        assert!(matches!(StoredTraces::open(&path), Err(StoreError::Corrupt { .. })), "byte {at}");
        std::fs::write(&path, &pristine).unwrap();
    }
    std::fs::write(&path, &pristine[..pristine.len() - 1]).unwrap();
    assert!(matches!(StoredTraces::open(&path), Err(StoreError::Corrupt { .. })));
}
