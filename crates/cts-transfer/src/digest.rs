//! Digest files: for trackers with `is_support_validate`, one per digest period (an hour by default), chained and
//! signed with the ledger's key, listing every trace file of the period with the SHA-256 of its stored bytes (see
//! `LAYOUT.md`, "Digest files").
//!
//! A digest is gzip-compressed RFC 8785 canonical JSON. Its signature is a C2SP signed-note signature (Ed25519, the
//! ledger's signing key, [`NoteSigner`]) over the canonical JSON of every other field followed by a newline, so
//! `cts_ledger::open_note` verifies it with the ledger's verifier keys and nothing else.

use cts_ledger::{canonical_json, open_note, NoteSigner, NoteVerifier};
use flate2::write::GzEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::io::{Read, Write};

/// The digest format version.
pub const DIGEST_VERSION: u32 = 1;
/// The em dash and space that start a signed note's signature line.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// A trace file as a digest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// The object key in the bucket.
    pub key: String,
    /// SHA-256 (hex) of the stored bytes (sealed bytes when encrypted).
    pub sha256: String,
    pub trace_count: usize,
}

/// A link to a digest: its key and the SHA-256 (hex) of its stored bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestLink {
    pub key: String,
    pub sha256: String,
}

/// The ledger checkpoint a digest carries: the project's latest signed checkpoint when the digest was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestCheckpoint {
    /// The signed note exactly as the ledger serves it.
    pub note: String,
    pub tree_size: u64,
}

/// Which tracker a digest is of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestTracker {
    pub id: String,
    pub name: String,
    pub project_id: String,
}

/// A digest's content (everything the signature covers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub version: u32,
    /// The period, `[start, end)`, as UTC RFC 3339 times (`2026-11-24T10:00:00Z`).
    pub digest_start_time: String,
    pub digest_end_time: String,
    pub region: String,
    pub tracker: DigestTracker,
    /// The trace files of the windows that start in the period, in key order.
    pub files: Vec<FileRecord>,
    /// The previous digest of the chain; `None` for the first.
    pub previous_digest: Option<DigestLink>,
    /// `None` when the project has no ledger log yet (no trace ever).
    pub checkpoint: Option<DigestCheckpoint>,
}

/// The signature of a digest: the signed-note signature line's key name, its key id (8 hex) and its base64 blob
/// (key id ‖ Ed25519 signature).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestSignature {
    pub key_name: String,
    pub key_id: String,
    pub value: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error("not a gzip-compressed digest: {0}")]
    Encoding(std::io::Error),
    #[error("not a digest: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the digest has no signature")]
    Unsigned,
    #[error("the signature does not verify: {0}")]
    Signature(cts_ledger::LedgerError),
    #[error("bad digest time {0:?}")]
    Time(String),
}

/// SHA-256 of `bytes` in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A UTC time in milliseconds as the digest writes it.
pub fn digest_time(time_ms: i64) -> String {
    let time = chrono::DateTime::from_timestamp_millis(time_ms).unwrap_or_default();
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Digest {
    /// The period `[start_ms, end_ms)`.
    pub fn period_ms(&self) -> Result<(i64, i64), DigestError> {
        let parse = |text: &str| {
            chrono::DateTime::parse_from_rfc3339(text)
                .map(|time| time.timestamp_millis())
                .map_err(|_| DigestError::Time(text.to_owned()))
        };
        Ok((parse(&self.digest_start_time)?, parse(&self.digest_end_time)?))
    }

    /// The stored bytes: gzip (no time in the header) of the canonical JSON of the digest and its signature.
    pub fn seal(&self, signer: &NoteSigner) -> Vec<u8> {
        let content = serde_json::to_value(self).expect("a digest serializes");
        let body = signed_body(&content);
        let note = signer.sign(&body);
        let line = note[body.len() + 1..].trim_end_matches('\n');
        let value = line
            .strip_prefix(SIGNATURE_PREFIX)
            .and_then(|rest| rest.split_once(' '))
            .map(|(_, value)| value.to_owned())
            .expect("a signed note ends in its signature line");
        let signature = DigestSignature {
            key_name: signer.name().to_owned(),
            key_id: format!("{:08x}", u32::from_be_bytes(signer.key_id())),
            value,
        };
        let mut signed = content;
        signed
            .as_object_mut()
            .expect("a digest is an object")
            .insert("signature".into(), serde_json::to_value(signature).expect("a signature serializes"));
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(&canonical_json(&signed)).expect("writing to memory");
        encoder.finish().expect("writing to memory")
    }

    /// Reads stored digest bytes and checks the signature with `verifiers` (the ledger's verifier keys).
    pub fn open(bytes: &[u8], verifiers: &[NoteVerifier]) -> Result<Digest, DigestError> {
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(bytes).read_to_end(&mut json).map_err(DigestError::Encoding)?;
        let mut content: serde_json::Value = serde_json::from_slice(&json)?;
        let signature =
            content.as_object_mut().and_then(|fields| fields.remove("signature")).ok_or(DigestError::Unsigned)?;
        let signature: DigestSignature = serde_json::from_value(signature)?;
        let body = signed_body(&content);
        let note = format!("{body}\n{SIGNATURE_PREFIX}{} {}\n", signature.key_name, signature.value);
        open_note(&note, verifiers).map_err(DigestError::Signature)?;
        Ok(serde_json::from_value(content)?)
    }
}

/// The signed-note body of a digest's content: its canonical JSON (one line: RFC 8785 escapes newlines) and a
/// newline.
fn signed_body(content: &serde_json::Value) -> String {
    let mut body = String::from_utf8(canonical_json(content)).expect("canonical JSON is UTF-8");
    body.push('\n');
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn base64_decode(text: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.decode(text).unwrap()
    }

    fn digest() -> Digest {
        Digest {
            version: DIGEST_VERSION,
            digest_start_time: digest_time(1_793_782_800_000),
            digest_end_time: digest_time(1_793_786_400_000),
            region: "ap-southeast-3".into(),
            tracker: DigestTracker { id: "t-1".into(), name: "system".into(), project_id: "p1".into() },
            files: vec![FileRecord { key: "CloudTraces/a.json.gz".into(), sha256: sha256_hex(b"a"), trace_count: 3 }],
            previous_digest: Some(DigestLink { key: "CloudTraces/d0.json.gz".into(), sha256: sha256_hex(b"d0") }),
            checkpoint: Some(DigestCheckpoint { note: "cts/p1\n3\nAAAA\n\n\u{2014} cts xyz\n".into(), tree_size: 3 }),
        }
    }

    fn gunzip(bytes: &[u8]) -> serde_json::Value {
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(bytes).read_to_end(&mut json).unwrap();
        serde_json::from_slice(&json).unwrap()
    }

    fn gzip(value: &serde_json::Value) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(value.to_string().as_bytes()).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn sealed_digests_are_deterministic_and_open_with_the_ledger_key() {
        let signer = NoteSigner::generate("cts").unwrap();
        let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
        let sealed = digest().seal(&signer);
        assert_eq!(sealed, digest().seal(&signer), "the same digest gives the same bytes");
        assert_eq!(Digest::open(&sealed, &[verifier]).unwrap(), digest());
        assert_eq!(digest().period_ms().unwrap(), (1_793_782_800_000, 1_793_786_400_000));
        let signature = &gunzip(&sealed)["signature"];
        assert_eq!(signature["key_name"], "cts");
        assert_eq!(base64_decode(signature["value"].as_str().unwrap())[..4], signer.key_id());
    }

    #[test]
    fn any_change_or_another_key_breaks_the_signature() {
        let signer = NoteSigner::generate("cts").unwrap();
        let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
        let sealed = gunzip(&digest().seal(&signer));
        let changes: [fn(&mut serde_json::Value); 5] = [
            |d| d["files"][0]["sha256"] = sha256_hex(b"b").into(),
            |d| d["files"][0]["trace_count"] = 4.into(),
            |d| d["previous_digest"] = serde_json::Value::Null,
            |d| d["extra"] = "field".into(),
            |d| d["signature"]["key_name"] = "other".into(),
        ];
        for change in changes {
            let mut altered = sealed.clone();
            change(&mut altered);
            let opened = Digest::open(&gzip(&altered), std::slice::from_ref(&verifier));
            assert!(matches!(opened, Err(DigestError::Signature(_))), "{altered}: {opened:?}");
        }
        let other = NoteSigner::generate("cts").unwrap();
        assert!(Digest::open(&digest().seal(&other), std::slice::from_ref(&verifier)).is_err());
        let mut unsigned = sealed;
        unsigned.as_object_mut().unwrap().remove("signature");
        assert!(matches!(Digest::open(&gzip(&unsigned), &[verifier]), Err(DigestError::Unsigned)));
    }
}
