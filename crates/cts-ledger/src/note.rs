//! C2SP signed notes with Ed25519 keys, and the C2SP tlog-checkpoint body they carry.
//!
//! - Verifier key: `<name>+<8 hex key id>+<base64(0x01 ‖ public key)>`; signing key (the form Go's
//!   `golang.org/x/mod/sumdb/note` uses): `PRIVATE+KEY+<name>+<8 hex key id>+<base64(0x01 ‖ seed)>`.
//! - Key id: the first 4 bytes of `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)`.
//! - Note: the body (non-empty lines, each ending in a newline), a blank line, then one line per
//!   signature `— <name> <base64(key id ‖ Ed25519 signature of the body)>`.
//! - Checkpoint body: origin line, decimal tree size, base64 root hash.

use crate::error::LedgerError;
use crate::merkle::Hash;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::{Signer, Verifier};
use sha2::{Digest, Sha256};

/// The algorithm byte of Ed25519 in signed-note keys.
const ED25519: u8 = 0x01;
const SIGNATURE_PREFIX: &str = "\u{2014} ";

fn key_id(name: &str, public_key: &ed25519_dalek::VerifyingKey) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', ED25519]);
    hasher.update(public_key.as_bytes());
    let digest = hasher.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// A key name: non-empty, no whitespace, no `+` (signed-note rules).
fn check_name(name: &str) -> Result<(), LedgerError> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '+') {
        return Err(LedgerError::invalid("key name", format!("{name:?} must be non-empty, without spaces or '+'")));
    }
    Ok(())
}

/// Splits `<name>+<hex id>+<base64(0x01 ‖ 32 bytes)>` and checks the algorithm and length.
fn parse_key_fields<'a>(what: &'static str, text: &'a str) -> Result<(&'a str, [u8; 4], [u8; 32]), LedgerError> {
    let mut fields = text.trim().splitn(3, '+');
    let (Some(name), Some(id), Some(key)) = (fields.next(), fields.next(), fields.next()) else {
        return Err(LedgerError::invalid(what, "expected <name>+<key id>+<key>"));
    };
    check_name(name)?;
    let id: [u8; 4] = (id.len() == 8)
        .then(|| u32::from_str_radix(id, 16).ok())
        .flatten()
        .map(u32::to_be_bytes)
        .ok_or_else(|| LedgerError::invalid(what, "the key id is not 8 hex digits"))?;
    let bytes = BASE64.decode(key).map_err(|e| LedgerError::invalid(what, e.to_string()))?;
    match bytes.split_first() {
        Some((&ED25519, key)) if key.len() == 32 => Ok((name, id, key.try_into().expect("32 bytes"))),
        _ => Err(LedgerError::invalid(what, "not an Ed25519 key")),
    }
}

/// An Ed25519 note signer.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    key: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteSigner").field("verifier", &self.verifier_key()).finish()
    }
}

impl NoteSigner {
    /// A new random key.
    pub fn generate(name: &str) -> Result<NoteSigner, LedgerError> {
        check_name(name)?;
        let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        Ok(NoteSigner { name: name.to_owned(), key })
    }

    /// Parses `PRIVATE+KEY+<name>+<key id>+<base64(0x01 ‖ seed)>`.
    pub fn parse(text: &str) -> Result<NoteSigner, LedgerError> {
        let rest = text
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| LedgerError::invalid("signing key", "does not start with PRIVATE+KEY+"))?;
        let (name, id, seed) = parse_key_fields("signing key", rest)?;
        let signer = NoteSigner { name: name.to_owned(), key: ed25519_dalek::SigningKey::from_bytes(&seed) };
        if signer.key_id() != id {
            return Err(LedgerError::invalid("signing key", "the key id does not match the key"));
        }
        Ok(signer)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> [u8; 4] {
        key_id(&self.name, &self.key.verifying_key())
    }

    /// The signing key in text form (secret: keep it 0600).
    pub fn private_key_text(&self) -> String {
        let mut bytes = vec![ED25519];
        bytes.extend_from_slice(self.key.as_bytes());
        format!("PRIVATE+KEY+{}+{}+{}", self.name, hex_id(self.key_id()), BASE64.encode(bytes))
    }

    /// The verifier key `<name>+<key id>+<base64(0x01 ‖ public key)>`.
    pub fn verifier_key(&self) -> String {
        let mut bytes = vec![ED25519];
        bytes.extend_from_slice(self.key.verifying_key().as_bytes());
        format!("{}+{}+{}", self.name, hex_id(self.key_id()), BASE64.encode(bytes))
    }

    /// The signed note of `body` (which must end in a newline).
    pub fn sign(&self, body: &str) -> String {
        let signature = self.key.sign(body.as_bytes());
        let mut blob = self.key_id().to_vec();
        blob.extend_from_slice(&signature.to_bytes());
        format!("{body}\n{SIGNATURE_PREFIX}{} {}\n", self.name, BASE64.encode(blob))
    }
}

fn hex_id(id: [u8; 4]) -> String {
    format!("{:08x}", u32::from_be_bytes(id))
}

/// An Ed25519 note verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    id: [u8; 4],
    key: ed25519_dalek::VerifyingKey,
}

impl NoteVerifier {
    /// Parses `<name>+<key id>+<base64(0x01 ‖ public key)>`.
    pub fn parse(text: &str) -> Result<NoteVerifier, LedgerError> {
        let (name, id, key) = parse_key_fields("verifier key", text)?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&key)
            .map_err(|e| LedgerError::invalid("verifier key", e.to_string()))?;
        if key_id(name, &key) != id {
            return Err(LedgerError::invalid("verifier key", "the key id does not match the key"));
        }
        Ok(NoteVerifier { name: name.to_owned(), id, key })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Opens a signed note: returns its body once at least one signature is by one of `verifiers` and
/// every signature by a known key verifies (signatures by unknown keys are ignored).
pub fn open_note<'a>(note: &'a str, verifiers: &[NoteVerifier]) -> Result<&'a str, LedgerError> {
    let invalid = |reason: &str| LedgerError::invalid("signed note", reason);
    let split = note.find("\n\n").ok_or_else(|| invalid("no blank line before the signatures"))?;
    let (body, signatures) = (&note[..split + 1], &note[split + 2..]);
    if !signatures.ends_with('\n') {
        return Err(invalid("the signatures do not end in a newline"));
    }
    let mut verified = 0;
    for line in signatures.lines() {
        let line = line.strip_prefix(SIGNATURE_PREFIX).ok_or_else(|| invalid("a signature line lacks the dash"))?;
        let (name, blob) = line.split_once(' ').ok_or_else(|| invalid("a signature line lacks its signature"))?;
        let blob = BASE64.decode(blob).map_err(|_| invalid("a signature is not base64"))?;
        if blob.len() < 4 {
            return Err(invalid("a signature is too short"));
        }
        let Some(verifier) = verifiers.iter().find(|v| v.name == name && v.id[..] == blob[..4]) else { continue };
        let signature = ed25519_dalek::Signature::from_slice(&blob[4..]).map_err(|_| invalid("a bad signature"))?;
        verifier
            .key
            .verify(body.as_bytes(), &signature)
            .map_err(|_| invalid(&format!("the signature of {name} does not verify")))?;
        verified += 1;
    }
    if verified == 0 {
        return Err(invalid("no signature by a known key"));
    }
    Ok(body)
}

/// A C2SP tlog-checkpoint: the log's origin, its size and root hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The note body: `<origin>\n<size>\n<base64 root>\n`.
    pub fn body(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, BASE64.encode(self.root))
    }

    /// Parses a checkpoint body (extension lines after the root are allowed and ignored).
    pub fn parse_body(body: &str) -> Result<Checkpoint, LedgerError> {
        let invalid = |reason: &str| LedgerError::invalid("checkpoint", reason);
        let mut lines = body.lines();
        let origin = lines.next().filter(|o| !o.is_empty()).ok_or_else(|| invalid("no origin line"))?;
        let size = lines.next().ok_or_else(|| invalid("no size line"))?;
        if size.is_empty() || !size.bytes().all(|b| b.is_ascii_digit()) || (size.len() > 1 && size.starts_with('0')) {
            return Err(invalid("the size is not a decimal number"));
        }
        let size = size.parse().map_err(|_| invalid("the size is out of range"))?;
        let root = lines.next().ok_or_else(|| invalid("no root hash line"))?;
        let root = BASE64.decode(root).ok().and_then(|r| r.try_into().ok()).ok_or_else(|| invalid("bad root hash"))?;
        Ok(Checkpoint { origin: origin.to_owned(), size, root })
    }

    /// Opens a signed checkpoint note with `verifiers` and parses its body.
    pub fn open(note: &str, verifiers: &[NoteVerifier]) -> Result<Checkpoint, LedgerError> {
        Checkpoint::parse_body(open_note(note, verifiers)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_ids_follow_the_signed_note_rule() {
        let signer = NoteSigner::generate("cts").unwrap();
        let parsed = NoteSigner::parse(&signer.private_key_text()).unwrap();
        assert_eq!(parsed.verifier_key(), signer.verifier_key());
        let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
        let mut preimage = b"cts\n\x01".to_vec();
        preimage.extend_from_slice(&BASE64.decode(signer.verifier_key().splitn(3, '+').nth(2).unwrap()).unwrap()[1..]);
        assert_eq!(verifier.id[..], Sha256::digest(&preimage)[..4]);
        assert!(NoteVerifier::parse(&signer.verifier_key().replacen("cts+", "ctx+", 1)).is_err());
        assert!(NoteSigner::parse("cts+00000000+AAAA").is_err());
    }

    /// The example key of Go's note package documentation (PeterNeumann), whose verifier key and
    /// signatures are published.
    #[test]
    fn go_note_example_key_gives_the_published_verifier_and_signature() {
        let signer =
            NoteSigner::parse("PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")
                .unwrap();
        assert_eq!(signer.verifier_key(), "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW");
        let note = signer.sign(
            "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n",
        );
        assert!(note.ends_with("\n\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"));
        let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
        assert!(open_note(&note, &[verifier]).is_ok());
    }

    #[test]
    fn tampered_or_unsigned_notes_are_refused() {
        let signer = NoteSigner::generate("cts").unwrap();
        let other = NoteSigner::generate("cts").unwrap();
        let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
        let checkpoint = Checkpoint { origin: "cts/p1".into(), size: 5, root: [7; 32] };
        let note = signer.sign(&checkpoint.body());
        assert_eq!(Checkpoint::open(&note, std::slice::from_ref(&verifier)).unwrap(), checkpoint);
        let cases = [
            note.replacen("\n5\n", "\n6\n", 1),
            other.sign(&checkpoint.body()),
            note.replacen("\n\n", "\n", 1),
            checkpoint.body(),
        ];
        for case in cases {
            assert!(Checkpoint::open(&case, std::slice::from_ref(&verifier)).is_err(), "{case}");
        }
    }

    #[test]
    fn checkpoint_bodies_parse_strictly() {
        let root = BASE64.encode([1; 32]);
        assert!(Checkpoint::parse_body(&format!("cts/p\n10\n{root}\n")).is_ok());
        for bad in
            [format!("cts/p\n010\n{root}\n"), format!("cts/p\n-1\n{root}\n"), "cts/p\n1\nAAAA\n".into(), "\n1\n".into()]
        {
            assert!(Checkpoint::parse_body(&bad).is_err(), "{bad}");
        }
    }
}
