//! Verifying delivered trace files against their digests, in a bucket or a downloaded copy (any [`ObjectStore`]:
//! `cts verify --bucket` reads the S3-compatible store, `--dir` a `LocalFileSystem` over the copy).
//!
//! Every digest's signature is checked with the ledger's verifier keys, every chain link (the previous digest
//! exists and has the SHA-256 the link names), every listed file's SHA-256; files present in a tracker's
//! directories for a period some digest covers but listed in none are **added**. Keys are the bucket's: a copy
//! keeps them relative to its root. Hashes are of the stored bytes, so encrypted files verify without a key; with
//! a keyring, encrypted files are also decrypted and their traces counted against the digest.

use crate::digest::{sha256_hex, Digest, FileRecord};
use crate::envelope::Keyring;
use crate::layout::{ObjectKey, ENCRYPTED_EXTENSION};
use crate::trace_file::read_traces;
use cts_ledger::NoteVerifier;
use futures_util::{StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

/// How many objects are read at once.
const CONCURRENT_READS: usize = 8;

/// Something that makes the bucket fail verification, named by object key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// A listed file whose stored bytes have another SHA-256 than its digest says.
    Altered { key: String, digest: String, expected_sha256: String, actual_sha256: String },
    /// A listed file that is not there.
    Missing { key: String, digest: String },
    /// A file in a tracker's directories, in a period a digest covers, that no digest lists.
    Added { key: String },
    /// A digest that does not open: altered (its signature does not verify), unsigned or not a digest.
    InvalidDigest { key: String, reason: String },
    /// A digest whose previous digest is missing (and it is not the oldest digest left) or has other bytes.
    BrokenChain { key: String, previous: String, reason: String },
    /// With a keyring: an encrypted file (with the listed bytes) that does not decrypt or read.
    Undecryptable { key: String, reason: String },
    /// With a keyring: an encrypted file that holds another number of traces than its digest lists.
    TraceCount { key: String, listed: usize, found: usize },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Altered { key, digest, expected_sha256, actual_sha256 } => {
                write!(f, "altered: {key} (SHA-256 {actual_sha256}, but {digest} lists {expected_sha256})")
            }
            Problem::Missing { key, digest } => write!(f, "missing: {key} (listed in {digest})"),
            Problem::Added { key } => write!(f, "added: {key} (in a digested period, listed in no digest)"),
            Problem::InvalidDigest { key, reason } => write!(f, "invalid digest: {key}: {reason}"),
            Problem::BrokenChain { key, previous, reason } => {
                write!(f, "broken chain: {key} links to {previous}, which {reason}")
            }
            Problem::Undecryptable { key, reason } => write!(f, "undecryptable: {key}: {reason}"),
            Problem::TraceCount { key, listed, found } => {
                write!(f, "trace count: {key} holds {found} traces, its digest lists {listed}")
            }
        }
    }
}

/// What verification found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BucketReport {
    /// Digests that opened with a trusted key.
    pub digests_valid: usize,
    /// Chains: digests with no previous digest, or whose previous digest is gone because it was the oldest (see
    /// `chains_starting_after_missing`).
    pub chains: usize,
    /// Files listed in valid digests and found with the listed SHA-256.
    pub files_valid: usize,
    /// Of those, encrypted files decrypted with the keyring and holding the listed number of traces.
    pub files_decrypted: usize,
    pub traces_listed: usize,
    /// Files in periods no digest covers (trackers without validation, or before it was on): not checked.
    pub files_not_covered: usize,
    /// Oldest digests of a stream whose previous digest is missing, as after `bucket_lifecycle` expired it (or
    /// someone deleted the oldest digests: indistinguishable).
    pub chains_starting_after_missing: Vec<String>,
    pub problems: Vec<Problem>,
}

impl BucketReport {
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn summary(&self) -> String {
        let counts = format!(
            "{} digests in {} chains, {} files ({} traces; {} decrypted) verified, {} files not covered by a digest",
            self.digests_valid,
            self.chains,
            self.files_valid,
            self.traces_listed,
            self.files_decrypted,
            self.files_not_covered
        );
        if self.is_valid() {
            return format!("valid: {counts}");
        }
        let count = |kind: fn(&Problem) -> bool| self.problems.iter().filter(|p| kind(p)).count();
        format!(
            "INVALID: {} altered, {} missing, {} added, {} invalid digests, {} broken chain links, {} undecryptable, {} \
             wrong trace counts; {counts}",
            count(|p| matches!(p, Problem::Altered { .. })),
            count(|p| matches!(p, Problem::Missing { .. })),
            count(|p| matches!(p, Problem::Added { .. })),
            count(|p| matches!(p, Problem::InvalidDigest { .. })),
            count(|p| matches!(p, Problem::BrokenChain { .. })),
            count(|p| matches!(p, Problem::Undecryptable { .. })),
            count(|p| matches!(p, Problem::TraceCount { .. })),
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("listing the objects: {0}")]
    List(object_store::Error),
    #[error("reading {key}: {source}")]
    Read { key: String, source: object_store::Error },
}

/// A digest as found: its stored bytes' SHA-256 and, when it opened, its content.
struct FoundDigest {
    key: ObjectKey,
    sha256: String,
    opened: Option<Digest>,
}

/// A tracker's digest stream: digests of one tracker name in one region.
type Stream = (String, String);

fn stream_of(key: &ObjectKey) -> Stream {
    (key.region.clone(), key.tracker_name.clone())
}

/// A downloaded copy of a bucket: the objects under `dir`, keyed by their paths relative to it.
pub fn local_copy(dir: &Path) -> Result<Arc<dyn ObjectStore>, VerifyError> {
    Ok(Arc::new(LocalFileSystem::new_with_prefix(dir).map_err(VerifyError::List)?))
}

/// Verifies every digest and trace file under the key prefix `prefix` (whole path segments; all of `objects`
/// when `None`) with `verifiers`; with `keyring`, encrypted files are decrypted and their traces counted too.
pub async fn verify_objects(
    objects: &dyn ObjectStore,
    prefix: Option<&str>,
    verifiers: &[NoteVerifier],
    keyring: Option<&Keyring>,
) -> Result<BucketReport, VerifyError> {
    let prefix = prefix.map(ObjectPath::from);
    let listed: Vec<_> = objects.list(prefix.as_ref()).try_collect().await.map_err(VerifyError::List)?;
    let keys: BTreeMap<String, ObjectKey> = listed
        .into_iter()
        .filter_map(|meta| {
            let key = meta.location.to_string();
            ObjectKey::parse(&key).map(|parsed| (key, parsed))
        })
        .collect();
    let mut report = BucketReport::default();

    let digest_keys: Vec<(&String, &ObjectKey)> = keys.iter().filter(|(_, parsed)| parsed.is_digest).collect();
    let bodies = read_each(digest_keys.iter().map(|(key, _)| key.as_str()), |key| async move {
        objects.get(&ObjectPath::from(key)).await?.bytes().await
    })
    .await?;
    let mut digests: BTreeMap<String, FoundDigest> = BTreeMap::new();
    for ((key, parsed), body) in digest_keys.into_iter().zip(bodies) {
        let opened = match Digest::open(&body, verifiers) {
            Ok(digest) => Some(digest),
            Err(error) => {
                report.problems.push(Problem::InvalidDigest { key: key.clone(), reason: error.to_string() });
                None
            }
        };
        digests.insert(key.clone(), FoundDigest { key: parsed.clone(), sha256: sha256_hex(&body), opened });
    }
    report.digests_valid = digests.values().filter(|found| found.opened.is_some()).count();
    check_chains(&digests, &mut report);

    // Every listed file, and the periods the valid digests cover per stream.
    let mut listed: BTreeMap<&str, (&FileRecord, &str)> = BTreeMap::new();
    let mut covered: BTreeMap<Stream, Vec<(i64, i64)>> = BTreeMap::new();
    for (key, found) in &digests {
        let Some(digest) = &found.opened else { continue };
        if let Ok(period) = digest.period_ms() {
            covered.entry(stream_of(&found.key)).or_default().push(period);
        }
        for file in &digest.files {
            listed.insert(&file.key, (file, key));
        }
    }
    let present: Vec<(&str, &FileRecord, &str)> = listed
        .iter()
        .filter(|(key, _)| keys.contains_key(**key))
        .map(|(key, (file, digest))| (*key, *file, *digest))
        .collect();
    for (key, (_, digest)) in &listed {
        if !keys.contains_key(*key) {
            report.problems.push(Problem::Missing { key: (*key).to_owned(), digest: (*digest).to_owned() });
        }
    }
    let checks = read_each(present.iter().map(|(key, _, _)| *key), |key| check_file(objects, key, keyring)).await?;
    for ((key, file, digest), FileCheck { sha256: actual, traces }) in present.into_iter().zip(checks) {
        if actual == file.sha256 {
            report.files_valid += 1;
            report.traces_listed += file.trace_count;
            match traces {
                Some(Ok(found)) if found == file.trace_count => report.files_decrypted += 1,
                Some(Ok(found)) => {
                    let listed = file.trace_count;
                    report.problems.push(Problem::TraceCount { key: key.to_owned(), listed, found });
                }
                Some(Err(reason)) => report.problems.push(Problem::Undecryptable { key: key.to_owned(), reason }),
                None => {}
            }
        } else {
            report.problems.push(Problem::Altered {
                key: key.to_owned(),
                digest: digest.to_owned(),
                expected_sha256: file.sha256.clone(),
                actual_sha256: actual,
            });
        }
    }

    // Files no digest lists: added when a digest covers their period, else not covered.
    for (key, parsed) in &keys {
        if parsed.is_digest || listed.contains_key(key.as_str()) {
            continue;
        }
        let periods = covered.get(&stream_of(parsed)).map(Vec::as_slice).unwrap_or_default();
        let (from, to) = match parsed.time_ms {
            Some(time) => (time, time + 1),
            None => {
                let day = parsed.day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc().timestamp_millis();
                (day, day + 86_400_000)
            }
        };
        if periods.iter().any(|(start, end)| *start < to && from < *end) {
            report.problems.push(Problem::Added { key: key.clone() });
        } else {
            report.files_not_covered += 1;
        }
    }
    Ok(report)
}

/// Checks every valid digest's link to its previous digest, and counts the chains.
fn check_chains(digests: &BTreeMap<String, FoundDigest>, report: &mut BucketReport) {
    // The oldest digest of each stream (by the time in its name).
    let mut oldest: BTreeMap<Stream, (i64, &str)> = BTreeMap::new();
    for (key, found) in digests {
        let time = found.key.time_ms.unwrap_or(i64::MIN);
        let entry = oldest.entry(stream_of(&found.key)).or_insert((time, key));
        if time < entry.0 {
            *entry = (time, key);
        }
    }
    let oldest: BTreeSet<&str> = oldest.into_values().map(|(_, key)| key).collect();
    for (key, found) in digests {
        let Some(digest) = &found.opened else { continue };
        let Some(previous) = &digest.previous_digest else {
            report.chains += 1;
            continue;
        };
        let broken = |reason: &str| Problem::BrokenChain {
            key: key.clone(),
            previous: previous.key.clone(),
            reason: reason.to_owned(),
        };
        match digests.get(&previous.key) {
            Some(linked) if linked.sha256 == previous.sha256 => {}
            Some(_) => report.problems.push(broken("has other bytes than the link's SHA-256")),
            None if oldest.contains(key.as_str()) => {
                report.chains += 1;
                report.chains_starting_after_missing.push(key.clone());
            }
            None => report.problems.push(broken("is missing")),
        }
    }
}

/// `read(key)` for each key, a few at a time; the results in key order.
async fn read_each<'a, T, Read>(
    keys: impl Iterator<Item = &'a str>,
    read: impl Fn(&'a str) -> Read,
) -> Result<Vec<T>, VerifyError>
where
    Read: Future<Output = Result<T, object_store::Error>>,
{
    futures_util::stream::iter(keys)
        .map(|key| {
            let reading = read(key);
            async move { reading.await.map_err(|source| VerifyError::Read { key: key.to_owned(), source }) }
        })
        .buffered(CONCURRENT_READS)
        .try_collect()
        .await
}

/// What reading a listed file found.
struct FileCheck {
    /// SHA-256 (hex) of the stored bytes.
    sha256: String,
    /// With a keyring, for an encrypted file: its number of traces once decrypted, or why it does not read.
    traces: Option<Result<usize, String>>,
}

/// Hashes a file; with a keyring, an encrypted one is also decrypted and its traces counted.
async fn check_file(
    objects: &dyn ObjectStore,
    key: &str,
    keyring: Option<&Keyring>,
) -> Result<FileCheck, object_store::Error> {
    let Some(keyring) = keyring.filter(|_| key.ends_with(ENCRYPTED_EXTENSION)) else {
        return Ok(FileCheck { sha256: stored_sha256(objects, key).await?, traces: None });
    };
    let sealed = objects.get(&ObjectPath::from(key)).await?.bytes().await?;
    let plain = keyring.open(&sealed).map_err(|e| e.to_string());
    let traces = plain.and_then(|plain| read_traces(&plain).map(|traces| traces.len()).map_err(|e| e.to_string()));
    Ok(FileCheck { sha256: sha256_hex(&sealed), traces: Some(traces) })
}

/// The SHA-256 (hex) of an object's stored bytes, hashed as they arrive.
async fn stored_sha256(objects: &dyn ObjectStore, key: &str) -> Result<String, object_store::Error> {
    let mut chunks = objects.get(&ObjectPath::from(key)).await?.into_stream();
    let mut hasher = Sha256::new();
    while let Some(chunk) = chunks.next().await {
        hasher.update(chunk?);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::{digest_time, DigestTracker, DIGEST_VERSION};
    use crate::layout::DigestName;
    use cts_ledger::NoteSigner;
    use object_store::memory::InMemory;

    /// 2026-11-04T09:00:00Z.
    const HOUR: i64 = 1_793_782_800_000;

    #[tokio::test]
    async fn with_a_keyring_a_sealed_file_holding_another_trace_count_than_listed_is_named() {
        let keyring = Keyring::from_keys([("k".to_owned(), [7; 32])]);
        let sealed = keyring.seal("k", br#"{"traces":[]}"#).unwrap();
        let file = "CloudTraces/r/2026/11/4/system/CTS/CloudTrace_r_2026-11-04T09-05-00Z_0123456789abcdef.json.enc";
        let signer = NoteSigner::generate("cts").unwrap();
        let digest = Digest {
            version: DIGEST_VERSION,
            digest_start_time: digest_time(HOUR),
            digest_end_time: digest_time(HOUR + 3_600_000),
            region: "r".into(),
            tracker: DigestTracker { id: "t".into(), name: "system".into(), project_id: "p".into() },
            files: vec![FileRecord { key: file.into(), sha256: sha256_hex(&sealed), trace_count: 2 }],
            previous_digest: None,
            checkpoint: None,
        };
        let name = DigestName { region: "r", tracker_name: "system", file_prefix: "", period_start_ms: HOUR };
        let store = InMemory::new();
        store.put(&ObjectPath::from(file), sealed.into()).await.unwrap();
        store.put(&ObjectPath::from(name.object_path()), digest.seal(&signer).into()).await.unwrap();
        let verifiers = [NoteVerifier::parse(&signer.verifier_key()).unwrap()];

        let hashes_only = verify_objects(&store, None, &verifiers, None).await.unwrap();
        assert!(hashes_only.is_valid() && hashes_only.files_valid == 1, "{hashes_only:?}");
        let counted = verify_objects(&store, None, &verifiers, Some(&keyring)).await.unwrap();
        assert_eq!(counted.problems, [Problem::TraceCount { key: file.into(), listed: 2, found: 0 }]);
        let in_another_prefix = verify_objects(&store, Some("CloudTraces/other"), &verifiers, None).await.unwrap();
        assert_eq!((in_another_prefix.digests_valid, in_another_prefix.files_valid), (0, 0));
    }
}
