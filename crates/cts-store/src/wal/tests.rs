use super::*;
use crate::tests::make_trace;

fn encoded_file(traces: &[Trace]) -> (Vec<u8>, Vec<usize>) {
    let batch = EncodedBatch::encode(traces);
    (batch.bytes, batch.ends)
}

#[test]
fn records_round_trip() {
    let traces: Vec<Trace> = (0..5).map(make_trace).collect();
    let (bytes, ends) = encoded_file(&traces);
    let (decoded, len) = decode_records(&bytes, Path::new("test.wal")).unwrap();
    assert_eq!(decoded, traces);
    assert_eq!(len, bytes.len());
    assert_eq!(*ends.last().unwrap(), bytes.len());
}

#[test]
fn recovery_keeps_every_complete_record_for_every_cut_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("1.wal");
    let traces: Vec<Trace> = (0..3).map(make_trace).collect();
    let (bytes, ends) = encoded_file(&traces);
    for cut in 0..=bytes.len() {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let complete = ends.iter().filter(|&&end| end <= cut).count();
        let recovered = recover(&path).unwrap();
        assert_eq!(recovered, traces[..complete], "cut at {cut}");
        let kept = if complete == 0 { 0 } else { ends[complete - 1] };
        assert_eq!(std::fs::metadata(&path).unwrap().len(), kept as u64, "cut at {cut}");
    }
}

#[test]
fn recovery_truncates_a_record_with_a_bad_crc_or_length_and_everything_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("1.wal");
    let traces: Vec<Trace> = (0..3).map(make_trace).collect();
    let (bytes, ends) = encoded_file(&traces);
    let second = ends[0];
    let damages: [(&str, usize, u8); 4] = [
        ("payload byte", second + HEADER_LEN + 3, 0x55),
        ("crc byte", second + 4, 0x01),
        ("length set to zero", second, 0),
        ("length too large", second + 3, 0x7f),
    ];
    for (name, offset, value) in damages {
        let mut damaged = bytes.clone();
        if value == 0 {
            damaged[offset..offset + 4].fill(0);
        } else {
            damaged[offset] ^= value;
        }
        std::fs::write(&path, &damaged).unwrap();
        assert_eq!(recover(&path).unwrap(), traces[..1], "{name}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), second as u64, "{name}");
    }
}

/// Frames `payload` as a WAL record with a valid CRC.
fn framed(payload: &[u8]) -> Vec<u8> {
    let mut bytes = (payload.len() as u32).to_le_bytes().to_vec();
    bytes.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

#[test]
fn a_valid_record_that_is_not_a_trace_is_corruption_not_a_torn_tail() {
    let mut record = vec![BINARY_PAYLOAD];
    encode_trace(&make_trace(1), &mut record);
    let payloads: [(&str, Vec<u8>); 4] = [
        ("JSON that is not a trace", b"{\"not\":\"a trace\"}".to_vec()),
        ("truncated binary record", record[..record.len() - 1].to_vec()),
        ("binary record with trailing bytes", [record.as_slice(), &[0]].concat()),
        ("unknown payload type", [&[7u8][..], &record[1..]].concat()),
    ];
    for (name, payload) in payloads {
        let decoded = decode_records(&framed(&payload), Path::new("x.wal"));
        assert!(matches!(decoded, Err(StoreError::Corrupt { .. })), "{name}");
    }
}

/// WAL files written before the binary records hold JSON payloads: they replay, also mixed with
/// binary records after an upgrade.
#[test]
fn json_records_of_older_wal_files_still_replay() {
    let traces: Vec<Trace> = (0..4).map(make_trace).collect();
    let mut bytes = Vec::new();
    for trace in &traces[..2] {
        bytes.extend_from_slice(&framed(&serde_json::to_vec(trace).unwrap()));
    }
    bytes.extend_from_slice(&EncodedBatch::encode(&traces[2..]).bytes);
    let (decoded, len) = decode_records(&bytes, Path::new("x.wal")).unwrap();
    assert_eq!(decoded, traces);
    assert_eq!(len, bytes.len());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    #[test]
    fn recovery_after_random_garbage_or_cuts_keeps_the_complete_prefix(
        count in 1usize..6,
        cut_back in 0usize..400,
        garbage in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
    ) {
        let traces: Vec<Trace> = (0..count as u64).map(make_trace).collect();
        let (bytes, ends) = encoded_file(&traces);
        let cut = bytes.len().saturating_sub(cut_back);
        let mut file = bytes[..cut].to_vec();
        file.extend_from_slice(&garbage);
        let (decoded, _) = decode_records(&file, Path::new("x.wal")).unwrap_or_default();
        let complete = ends.iter().filter(|&&end| end <= cut).count();
        // Garbage may only ever be read as a record if it forms a valid CRC; it never hides a complete one.
        proptest::prop_assert!(decoded.len() >= complete);
        proptest::prop_assert_eq!(&decoded[..complete], &traces[..complete]);
    }
}
