use super::*;
use crate::record::RecordBuffer;
use crate::tests::make_trace;
use parquet::file::reader::{FileReader, SerializedFileReader};

/// Writes a segment of generation 7 (Parquet file at `path` and its sidecar).
fn write_sorted(path: &Path, count: u64) -> Vec<Trace> {
    let mut traces: Vec<Trace> = (0..count).map(make_trace).collect();
    traces.sort_by_key(crate::SortKey::of);
    let rows: Vec<&Trace> = traces.iter().collect();
    write_segment(path, &rows, 7).unwrap();
    let mut records = RecordBuffer::default();
    traces.iter().for_each(|trace| records.push_trace(trace));
    crate::stored::write_stored(&stored_path(path.parent().unwrap(), 7), &records.records()).unwrap();
    traces
}

#[test]
fn every_field_round_trips_through_a_segment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("7.parquet");
    let traces = write_sorted(&path, 700);
    assert_eq!(read_parquet_traces(&path).unwrap(), traces);
    let hasher = IdHasher::default();
    let (segment, keys) = Segment::open(&path, 7, &hasher).unwrap();
    let expected_keys: Vec<IdKey> = traces.iter().map(|t| hasher.key(&t.project_id, &t.trace_id)).collect();
    assert_eq!(keys, expected_keys);
    let all: Vec<u32> = (0..700).collect();
    assert_eq!(segment.fetch(&all).unwrap(), traces);
    let some = [0, 5, 6, 7, 300, 699];
    let fetched = segment.fetch(&some).unwrap();
    assert_eq!(fetched, some.iter().map(|&row| traces[row as usize].clone()).collect::<Vec<_>>());
    assert_eq!(segment.trace_id(300), traces[300].trace_id);
}

/// Sealing renumbers the memtable's indexes into row order instead of rebuilding them: they must be
/// exactly what opening the segment builds from its Parquet file.
#[test]
fn a_sealed_memtable_has_the_indexes_and_keys_its_segment_gets_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("7.parquet");
    let hasher = IdHasher::default();
    let mut memtable = Memtable::new(7);
    let traces: Vec<Trace> = (0..900).map(make_trace).collect();
    let keys: Vec<_> = traces.iter().map(|trace| hasher.key(&trace.project_id, &trace.trace_id)).collect();
    memtable.push_decoded(traces, &keys);
    let rows = memtable.sorted_rows();
    assert_ne!(rows, (0..900).collect::<Vec<u32>>(), "the insertion order must differ from the row order");
    let sorted: Vec<&Trace> = rows.iter().map(|&row| memtable.trace(row)).collect();
    write_segment(&path, &sorted, 7).unwrap();
    let sorted_records: Vec<&[u8]> = rows.iter().map(|&row| memtable.record(row)).collect();
    crate::stored::write_stored(&stored_path(dir.path(), 7), &sorted_records).unwrap();
    let (opened, opened_keys) = Segment::open(&path, 7, &hasher).unwrap();
    let (sealed, sealed_keys) = Segment::from_memtable(&path, &memtable, &rows).unwrap();
    assert_eq!(sealed_keys, opened_keys);
    assert_eq!(sealed.indexes, opened.indexes);
    assert_eq!(sealed.times, opened.times);
    assert_eq!((sealed.id_text, sealed.id_ends), (opened.id_text, opened.id_ends));
}

#[test]
fn a_segment_is_plain_parquet_with_the_documented_columns_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("7.parquet");
    let traces = write_sorted(&path, 1000);
    let reader = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
    let metadata = reader.metadata();
    let names: Vec<&str> =
        metadata.file_metadata().schema_descr().root_schema().get_fields().iter().map(|f| f.name()).collect();
    let expected = "time trace_id project_id trace_name trace_rating trace_type service_type resource_type resource_name \
        resource_id resource_account_id read_only tracker_name operation_id source_ip request response code api_version \
        message record_time request_id location_info endpoint resource_url enterprise_project_id user_present user_id \
        user_name user_user_name user_domain_present user_domain_id user_domain_name user_account_id user_access_key_id \
        user_principal_urn user_principal_id user_principal_is_root_user user_type user_invoked_by user_session_context";
    assert_eq!(names, expected.split_whitespace().collect::<Vec<_>>());
    let key_values: std::collections::HashMap<&str, &str> = metadata
        .file_metadata()
        .key_value_metadata()
        .unwrap()
        .iter()
        .filter_map(|kv| Some((kv.key.as_str(), kv.value.as_deref()?)))
        .collect();
    assert_eq!(key_values[meta_keys::TRACE_COUNT], "1000");
    assert_eq!(key_values[meta_keys::MIN_TIME], traces[0].time.to_string());
    assert_eq!(key_values[meta_keys::MAX_TIME], traces[999].time.to_string());
    assert_eq!(key_values[meta_keys::GENERATION], "7");
    assert_eq!(key_values[meta_keys::FORMAT_VERSION], FORMAT_VERSION);
    let row_group = metadata.row_group(0);
    let time = row_group.column(TIME_COLUMN);
    let statistics = time.statistics().unwrap();
    assert_eq!(statistics.min_bytes_opt().unwrap(), traces[0].time.to_le_bytes());
    let dictionary_column = row_group.column(column_index("trace_name"));
    assert!(dictionary_column.dictionary_page_offset().is_some());
    assert!(row_group.column(TRACE_ID_COLUMN).dictionary_page_offset().is_none());
    // Laid out for size: every column compressed.
    assert!(row_group.columns().iter().all(|column| matches!(column.compression(), Compression::ZSTD(_))));
    let rows = reader.get_row_iter(None).unwrap().count();
    assert_eq!(rows, 1000);
}

#[test]
fn a_file_with_another_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("1.parquet");
    let schema = Arc::new(Schema::new(vec![Field::new("time", DataType::Int64, false)]));
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![1]))]).unwrap();
    let mut writer = ArrowWriter::try_new(File::create(&path).unwrap(), schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    assert!(matches!(Segment::open(&path, 1, &IdHasher::default()), Err(StoreError::Corrupt { .. })));
}

#[test]
fn parquet_trace_files_round_trip_in_memory_and_other_schemas_are_refused() {
    let traces: Vec<Trace> = (0..300).map(make_trace).collect();
    let rows: Vec<&Trace> = traces.iter().collect();
    let bytes = traces_to_parquet(&rows);
    assert!(bytes.starts_with(b"PAR1"));
    assert_eq!(bytes, traces_to_parquet(&rows), "the same traces give the same bytes");
    let origin = Path::new("file.parquet");
    assert_eq!(traces_from_parquet(Bytes::from(bytes.clone()), origin).unwrap(), traces);
    let compression =
        SerializedFileReader::new(Bytes::from(bytes)).unwrap().metadata().row_group(0).column(0).compression();
    assert!(matches!(compression, Compression::ZSTD(_)), "{compression:?}");

    let other = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
    let batch = RecordBatch::try_new(other.clone(), vec![Arc::new(Int64Array::from(vec![1]))]).unwrap();
    let mut writer = ArrowWriter::try_new(Vec::new(), other, None).unwrap();
    writer.write(&batch).unwrap();
    let foreign = Bytes::from(writer.into_inner().unwrap());
    assert!(matches!(traces_from_parquet(foreign, origin), Err(StoreError::Corrupt { .. })));
    assert!(traces_from_parquet(Bytes::from_static(b"not parquet"), origin).is_err());
}

/// Found by the `import_file` fuzz target: the parquet crate's decoder overflows (a panic with overflow checks)
/// on this file.
#[test]
fn a_parquet_file_that_overflows_the_decoder_is_an_error_not_a_panic() {
    let bytes = Bytes::from_static(include_bytes!("decoder_overflow.parquet"));
    let error = traces_from_parquet(bytes, Path::new("x.parquet")).unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { .. } | StoreError::Parquet { .. }), "{error}");
}

/// Found by the `segment_read` fuzz target: this segment file (without its sidecar, so the store rebuilds it)
/// has a column chunk whose metadata makes the parquet crate assert "column start and length should not be
/// negative".
#[test]
fn a_segment_whose_column_start_is_negative_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let segments = dir.path().join("store/segments");
    std::fs::create_dir_all(&segments).unwrap();
    std::fs::write(segment_path(&segments, 1), include_bytes!("negative_column_start.parquet")).unwrap();
    assert!(read_parquet_traces(&segment_path(&segments, 1)).is_err());
    let error = crate::Store::open(crate::StoreConfig::new(dir.path())).err().expect("the store refuses the segment");
    assert!(matches!(error, StoreError::Corrupt { .. } | StoreError::Parquet { .. }), "{error}");
}

/// Found by the `segment_read` fuzz target: a segment whose sidecar rows are not the rows its Parquet file
/// indexes (each file valid on its own) listed a trace that a point read by its id did not find. Reads of such
/// rows are refused as corrupt.
#[test]
fn a_sidecar_that_disagrees_with_its_parquet_file_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{:020}.parquet", 1));
    std::fs::write(&path, include_bytes!("sidecar_disagrees.parquet")).unwrap();
    std::fs::write(stored_path(dir.path(), 1), include_bytes!("sidecar_disagrees.traces")).unwrap();
    let (segment, _) = Segment::open(&path, 1, &IdHasher::default()).unwrap();
    let all: Vec<u32> = (0..segment.len() as u32).collect();
    let error = segment.fetch(&all).unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
}

/// Found by the `segment_read` fuzz target (after the move to Arrow 59): the Arrow schema embedded in this
/// segment's metadata declares a list without a child, on which arrow-ipc panics ("expect a large list to have
/// one child") while the parquet crate reads it.
#[test]
fn a_segment_whose_arrow_schema_lacks_a_list_child_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let segments = dir.path().join("store/segments");
    std::fs::create_dir_all(&segments).unwrap();
    std::fs::write(segment_path(&segments, 1), include_bytes!("arrow_schema_without_list_child.parquet")).unwrap();
    assert!(read_parquet_traces(&segment_path(&segments, 1)).is_err());
    let error = crate::Store::open(crate::StoreConfig::new(dir.path())).err().expect("the store refuses the segment");
    assert!(matches!(error, StoreError::Corrupt { .. } | StoreError::Parquet { .. }), "{error}");
}

/// Free text is tested on the Parquet text columns for dense rows and on the sidecar for sparse ones: on
/// the same rows, both find the rows whose traces hold every term, and some.
#[test]
fn parquet_text_columns_and_the_sidecar_find_the_same_text_matches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("7.parquet");
    let traces = write_sorted(&path, 40_000);
    let (segment, _) = Segment::open(&path, 7, &IdHasher::default()).unwrap();
    // Enough rows to be read in two halves at once, and fewer.
    let every_row: Vec<u32> = (0..40_000).collect();
    let every_third: Vec<u32> = (0..40_000).step_by(3).collect();
    for terms in [vec!["denied"], vec!["ord-2026", "ok"], vec!["straße"], vec!["order denied"], vec!["absent"]] {
        let terms: Vec<String> = terms.into_iter().map(str::to_owned).collect();
        for rows in [&every_row, &every_third] {
            let expected: Vec<u32> =
                rows.iter().copied().filter(|&row| matches_text(&terms, &traces[row as usize])).collect();
            assert_eq!(expected.is_empty(), terms == ["absent"], "{terms:?}");
            assert_eq!(segment.text_columns().unwrap().rows_holding(rows, &terms).unwrap(), expected, "{terms:?}");
            let from_sidecar = segment.sidecar_rows_holding(rows, &terms).unwrap();
            assert_eq!(from_sidecar, expected, "{terms:?}");
        }
    }
}
