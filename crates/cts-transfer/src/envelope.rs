//! Envelope encryption of trace files: each file gets a fresh AES-256-GCM data key; the data key is wrapped
//! (AES-256-GCM) by the master key the tracker's `kms_id` names in the [`Keyring`].
//!
//! A sealed file is self-describing, so a downloaded copy decrypts with the keyring alone:
//!
//! ```text
//! CTS-ENVELOPE-1\n
//! {"alg":"AES-256-GCM","kms_id":"...","wrapped_key":"<base64: 12-byte nonce ‖ wrapped key ‖ tag>","nonce":"<base64>"}\n
//! <ciphertext ‖ 16-byte tag>
//! ```
//!
//! The header line is the data's associated data and the `kms_id` the wrapped key's, so neither can be swapped.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// The first line of every sealed file.
pub const MAGIC: &[u8] = b"CTS-ENVELOPE-1\n";
const ALGORITHM: &str = "AES-256-GCM";

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("reading the keyring {path}: {source}")]
    ReadKeyring { path: String, source: std::io::Error },
    #[error("keyring line {line}: {reason}")]
    InvalidKeyring { line: usize, reason: String },
    #[error("not an encrypted trace file")]
    NotSealed,
    #[error("the encrypted file's header is invalid: {0}")]
    InvalidHeader(String),
    #[error("no master key {0:?} in the keyring")]
    UnknownKey(String),
    #[error("decryption failed: wrong key, or the file was altered")]
    Decrypt,
}

/// Master keys by `kms_id`. The file form (`CTS_KEYRING`) has one key per line, `KMS_ID BASE64_OF_32_BYTES`;
/// blank lines and lines starting with `#` are ignored.
#[derive(Clone, Default)]
pub struct Keyring {
    keys: BTreeMap<String, [u8; 32]>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring").field("kms_ids", &self.keys.keys().collect::<Vec<_>>()).finish()
    }
}

impl Keyring {
    pub fn load(path: &Path) -> Result<Keyring, EnvelopeError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| EnvelopeError::ReadKeyring { path: path.display().to_string(), source })?;
        Keyring::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Keyring, EnvelopeError> {
        let mut keys = BTreeMap::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let invalid = |reason: &str| EnvelopeError::InvalidKeyring { line: index + 1, reason: reason.to_owned() };
            let (kms_id, key) = line.split_once(char::is_whitespace).ok_or_else(|| invalid("expected KMS_ID KEY"))?;
            let key = BASE64.decode(key.trim()).map_err(|_| invalid("the key is not base64"))?;
            let key: [u8; 32] = key.try_into().map_err(|_| invalid("the key must be 32 bytes"))?;
            if keys.insert(kms_id.to_owned(), key).is_some() {
                return Err(invalid("this kms_id appears twice"));
            }
        }
        Ok(Keyring { keys })
    }

    /// A keyring of the given keys.
    pub fn from_keys(keys: impl IntoIterator<Item = (String, [u8; 32])>) -> Keyring {
        Keyring { keys: keys.into_iter().collect() }
    }

    /// No keys: no keyring was configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn contains(&self, kms_id: &str) -> bool {
        self.keys.contains_key(kms_id)
    }

    /// Encrypts `plain` under a fresh data key wrapped by the master key `kms_id`.
    pub fn seal(&self, kms_id: &str, plain: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
        let master = self.keys.get(kms_id).ok_or_else(|| EnvelopeError::UnknownKey(kms_id.to_owned()))?;
        let mut data_key = [0u8; 32];
        let (mut key_nonce, mut nonce) = ([0u8; 12], [0u8; 12]);
        let mut rng = rand::thread_rng();
        rng.fill_bytes(&mut data_key);
        rng.fill_bytes(&mut key_nonce);
        rng.fill_bytes(&mut nonce);
        let wrapped = cipher(master)
            .encrypt(Nonce::from_slice(&key_nonce), Payload { msg: &data_key, aad: kms_id.as_bytes() })
            .expect("AES-GCM encrypts any message of this size");
        let header = Header {
            alg: ALGORITHM.to_owned(),
            kms_id: kms_id.to_owned(),
            wrapped_key: BASE64.encode([&key_nonce[..], &wrapped].concat()),
            nonce: BASE64.encode(nonce),
        };
        let header = serde_json::to_vec(&header).expect("the header serializes");
        let sealed = cipher(&data_key)
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad: &header })
            .expect("AES-GCM encrypts any trace file");
        Ok([MAGIC, &header, b"\n", &sealed].concat())
    }

    /// Decrypts a file [`Keyring::seal`] wrote.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
        let rest = sealed.strip_prefix(MAGIC).ok_or(EnvelopeError::NotSealed)?;
        let end = rest.iter().position(|&b| b == b'\n').ok_or_else(|| invalid_header("no header line"))?;
        let (header_bytes, ciphertext) = (&rest[..end], &rest[end + 1..]);
        let header: Header = serde_json::from_slice(header_bytes).map_err(|e| invalid_header(&e.to_string()))?;
        if header.alg != ALGORITHM {
            return Err(invalid_header(&format!("unknown algorithm {:?}", header.alg)));
        }
        let master = self.keys.get(&header.kms_id).ok_or_else(|| EnvelopeError::UnknownKey(header.kms_id.clone()))?;
        let wrapped = BASE64.decode(&header.wrapped_key).map_err(|_| invalid_header("wrapped_key is not base64"))?;
        let nonce = BASE64.decode(&header.nonce).map_err(|_| invalid_header("nonce is not base64"))?;
        if wrapped.len() != 12 + 32 + 16 || nonce.len() != 12 {
            return Err(invalid_header("wrong key or nonce length"));
        }
        let data_key = cipher(master)
            .decrypt(Nonce::from_slice(&wrapped[..12]), Payload { msg: &wrapped[12..], aad: header.kms_id.as_bytes() })
            .map_err(|_| EnvelopeError::Decrypt)?;
        let data_key: [u8; 32] = data_key.try_into().map_err(|_| EnvelopeError::Decrypt)?;
        cipher(&data_key)
            .decrypt(Nonce::from_slice(&nonce), Payload { msg: ciphertext, aad: header_bytes })
            .map_err(|_| EnvelopeError::Decrypt)
    }
}

/// Whether `bytes` is an encrypted trace file.
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    kms_id: String,
    wrapped_key: String,
    nonce: String,
}

fn cipher(key: &[u8; 32]) -> Aes256Gcm {
    Aes256Gcm::new(key.into())
}

fn invalid_header(reason: &str) -> EnvelopeError {
    EnvelopeError::InvalidHeader(reason.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring() -> Keyring {
        Keyring::from_keys([("key-a".to_owned(), [7u8; 32]), ("key-b".to_owned(), [9u8; 32])])
    }

    #[test]
    fn sealed_files_open_with_their_key_only() {
        let plain = b"{\"traces\":[]}";
        let sealed = keyring().seal("key-a", plain).unwrap();
        assert!(is_sealed(&sealed));
        assert!(!sealed.windows(plain.len()).any(|w| w == plain), "the plain text is not in the file");
        assert_eq!(keyring().open(&sealed).unwrap(), plain);

        let without_a = Keyring::from_keys([("key-b".to_owned(), [9u8; 32])]);
        assert!(matches!(without_a.open(&sealed), Err(EnvelopeError::UnknownKey(id)) if id == "key-a"));
        let wrong_a = Keyring::from_keys([("key-a".to_owned(), [8u8; 32])]);
        assert!(matches!(wrong_a.open(&sealed), Err(EnvelopeError::Decrypt)));
        assert!(matches!(keyring().open(plain), Err(EnvelopeError::NotSealed)));
        assert!(matches!(keyring().seal("key-c", plain), Err(EnvelopeError::UnknownKey(_))));
    }

    #[test]
    fn any_altered_byte_fails_decryption() {
        let sealed = keyring().seal("key-a", b"some trace file content").unwrap();
        for index in [MAGIC.len() + 10, sealed.len() - 1, sealed.len() - 20] {
            let mut altered = sealed.clone();
            altered[index] ^= 1;
            assert!(keyring().open(&altered).is_err(), "byte {index}");
        }
        // Naming the other key in the header breaks the wrapped key's binding.
        let text = String::from_utf8_lossy(&sealed).replace("\"kms_id\":\"key-a\"", "\"kms_id\":\"key-b\"");
        assert!(keyring().open(text.as_bytes()).is_err());
    }

    #[test]
    fn keyring_files_are_parsed_line_by_line() {
        let key = BASE64.encode([1u8; 32]);
        let keyring = Keyring::parse(&format!("# master keys\n\nkms-1 {key}\nkms-2\t{key}\n")).unwrap();
        assert!(keyring.contains("kms-1") && keyring.contains("kms-2") && !keyring.contains("kms-3"));
        let debug = format!("{keyring:?}");
        assert!(!debug.contains(&key), "keys never show in logs: {debug}");
        for (text, line) in [
            ("kms-1".to_owned(), 1),
            (format!("kms-1 {key}\nkms-2 not-base64!"), 2),
            (format!("kms-1 {}", BASE64.encode([1u8; 16])), 1),
            (format!("kms-1 {key}\nkms-1 {key}"), 2),
        ] {
            assert!(
                matches!(Keyring::parse(&text), Err(EnvelopeError::InvalidKeyring { line: l, .. }) if l == line),
                "{text}"
            );
        }
    }
}
