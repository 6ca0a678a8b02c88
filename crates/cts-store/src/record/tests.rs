use super::*;
use crate::tests::make_trace;

#[test]
fn a_record_round_trips_and_a_truncated_one_is_an_error() {
    for seed in 0..200 {
        let trace = make_trace(seed);
        let mut record = Vec::new();
        encode_trace(&trace, &mut record);
        assert_eq!(decode_whole(&record).unwrap(), trace);
        for cut in [0, 1, record.len() / 2, record.len() - 1] {
            assert!(decode_whole(&record[..cut]).is_err(), "seed {seed}, cut at {cut}");
        }
    }
}
