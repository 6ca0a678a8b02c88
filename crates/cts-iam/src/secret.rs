//! Secrets at rest: the master key and ChaCha20-Poly1305 sealing of secret keys.
//!
//! The master key (32 bytes) comes from `CTS_MASTER_KEY` (base64) or from
//! `<data_dir>/iam/master.key` (base64, mode 0600, created at first start).
//! A sealed secret is `base64(nonce || ciphertext || tag)` with a random
//! 96-bit nonce; the associated data binds it to its purpose (e.g. the access
//! key id), so a sealed value copied elsewhere does not open.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use std::fmt;
use std::path::{Path, PathBuf};

const NONCE_LEN: usize = 12;
/// The environment variable that may carry the master key (base64).
pub const MASTER_KEY_ENV: &str = "CTS_MASTER_KEY";

/// Why the master key could not be had or a secret not be unsealed.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the master key is not 32 bytes of base64 ({source_name})")]
    InvalidMasterKey { source_name: String },
    #[error("no master key: {path} is missing and {MASTER_KEY_ENV} is not set, but the data dir holds sealed secrets")]
    MissingMasterKey { path: PathBuf },
    #[error("a sealed secret does not open with this master key (wrong key or damaged data)")]
    Unseal,
    #[error("cannot {action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
}

/// The 32-byte key that seals every secret cts keeps on disk.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// Decodes a base64 key; `source_name` says where it came from, for the error.
    pub fn from_base64(text: &str, source_name: &str) -> Result<MasterKey, SecretError> {
        let invalid = || SecretError::InvalidMasterKey { source_name: source_name.to_owned() };
        let bytes = BASE64.decode(text.trim()).map_err(|_| invalid())?;
        Ok(MasterKey(bytes.try_into().map_err(|_| invalid())?))
    }

    pub fn generate() -> MasterKey {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        MasterKey(key)
    }

    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0)
    }

    /// The path of the key file under a data dir.
    pub fn file_path(data_dir: &Path) -> PathBuf {
        data_dir.join("iam").join("master.key")
    }

    /// The key given in `from_env` (the value of `CTS_MASTER_KEY`), else the
    /// one in the key file, else `None`.
    pub fn find(data_dir: &Path, from_env: Option<&str>) -> Result<Option<MasterKey>, SecretError> {
        if let Some(text) = from_env {
            return MasterKey::from_base64(text, MASTER_KEY_ENV).map(Some);
        }
        let path = MasterKey::file_path(data_dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => MasterKey::from_base64(&text, &path.display().to_string()).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(SecretError::Io { action: "read", path, source }),
        }
    }

    /// Like [`MasterKey::find`], but a missing key is an error.
    pub fn load(data_dir: &Path, from_env: Option<&str>) -> Result<MasterKey, SecretError> {
        MasterKey::find(data_dir, from_env)?
            .ok_or_else(|| SecretError::MissingMasterKey { path: Self::file_path(data_dir) })
    }

    /// Generates a key and writes it to the key file (mode 0600).
    pub fn create_file(data_dir: &Path) -> Result<MasterKey, SecretError> {
        let key = MasterKey::generate();
        let path = MasterKey::file_path(data_dir);
        cts_durable::write_atomically(&path, format!("{}\n", key.to_base64()).as_bytes())
            .map_err(|source| SecretError::Io { action: "write", path, source })?;
        Ok(key)
    }

    /// Seals `secret`; `context` must be given again to open it.
    pub fn seal(&self, secret: &str, context: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher()
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: secret.as_bytes(), aad: context.as_bytes() })
            .expect("ChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        BASE64.encode(sealed)
    }

    /// Opens a value made by [`MasterKey::seal`] with the same `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<String, SecretError> {
        let bytes = BASE64.decode(sealed).map_err(|_| SecretError::Unseal)?;
        if bytes.len() < NONCE_LEN {
            return Err(SecretError::Unseal);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let plain = self
            .cipher()
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: context.as_bytes() })
            .map_err(|_| SecretError::Unseal)?;
        String::from_utf8(plain).map_err(|_| SecretError::Unseal)
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secret_opens_only_with_same_key_and_context() {
        let key = MasterKey::generate();
        let sealed = key.seal("s3cret", "AK1");
        assert!(!sealed.contains("s3cret"));
        assert_eq!(key.open(&sealed, "AK1").unwrap(), "s3cret");
        assert!(matches!(key.open(&sealed, "AK2"), Err(SecretError::Unseal)));
        assert!(matches!(MasterKey::generate().open(&sealed, "AK1"), Err(SecretError::Unseal)));
        assert!(matches!(key.open("AAAA", "AK1"), Err(SecretError::Unseal)));
        assert_ne!(key.seal("s3cret", "AK1"), sealed, "nonces are random");
    }

    #[test]
    fn master_key_base64_must_be_32_bytes() {
        let key = MasterKey::generate();
        assert!(MasterKey::from_base64(&key.to_base64(), "test").is_ok());
        assert!(MasterKey::from_base64(&BASE64.encode([0u8; 16]), "test").is_err());
        assert!(MasterKey::from_base64("not base64!", "test").is_err());
    }

    #[test]
    fn key_file_is_private_and_env_wins() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        assert!(MasterKey::find(dir.path(), None).unwrap().is_none());
        let created = MasterKey::create_file(dir.path()).unwrap();
        let mode = std::fs::metadata(MasterKey::file_path(dir.path())).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(MasterKey::load(dir.path(), None).unwrap().0, created.0);
        let other = MasterKey::generate();
        assert_eq!(MasterKey::load(dir.path(), Some(&other.to_base64())).unwrap().0, other.0);
    }
}
