//! Checkpoints as C2SP signed notes (tlog-checkpoint), which any transparency-log tool reads.
//!
//! A checkpoint note is
//!
//! ```text
//! housing.example/need-to-know/gw-1
//! 1000
//! <standard base64 of the 32-byte RFC 6962 root>
//!
//! — <key name> <base64(4-byte key hash || 64-byte Ed25519 signature)>
//! ```
//!
//! The signature covers the body: every byte before the blank line, its last newline
//! included. The key hash is the first 4 bytes of `SHA-256(name || 0x0A || 0x01 || public
//! key)`, and the verifier key, what an auditor holds, is `<name>+<hex key hash>+<base64(0x01
//! || public key)>`, the form `golang.org/x/mod/sumdb/note` reads.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};

use super::key::{PublicKey, SigningKey};
use crate::audit::tree::Hash;

/// The algorithm byte of an Ed25519 key in C2SP signed notes.
const ED25519: u8 = 0x01;

/// Why a note or verifier key is refused. Nothing is half-accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NoteError {
    #[error("a key name must be non-empty, without white space or '+'")]
    BadName,
    #[error("not a verifier key (<name>+<hex key hash>+<base64 key>)")]
    BadVerifier,
    #[error("not a signed note (body, blank line, signature lines)")]
    Malformed,
    #[error("no valid signature by {0}")]
    Unsigned(String),
    #[error("not a checkpoint body (origin, tree size, base64 root hash)")]
    BadCheckpoint,
}

/// Who signs checkpoints, as an auditor names and checks them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    hash: [u8; 4],
    key: PublicKey,
}

/// What a verified checkpoint states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

// === impl Verifier ===

impl Verifier {
    /// # Errors
    ///
    /// [`NoteError::BadName`] for a name a note cannot carry.
    pub fn new(name: &str, key: PublicKey) -> Result<Verifier, NoteError> {
        if name.is_empty() || name.contains('+') || name.chars().any(char::is_whitespace) {
            return Err(NoteError::BadName);
        }
        let mut h = Sha256::new();
        h.update(name.as_bytes());
        h.update([b'\n', ED25519]);
        h.update(key.bytes());
        let digest = h.finalize();
        Ok(Verifier {
            name: name.to_owned(),
            hash: [digest[0], digest[1], digest[2], digest[3]],
            key,
        })
    }

    /// Reads `<name>+<hex key hash>+<base64(0x01 || key)>`; the hash must match the key.
    ///
    /// # Errors
    ///
    /// [`NoteError::BadVerifier`] for anything else.
    pub fn parse(text: &str) -> Result<Verifier, NoteError> {
        let mut parts = text.trim().splitn(3, '+');
        let (Some(name), Some(hash), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::BadVerifier);
        };
        let key = STANDARD.decode(key).map_err(|_| NoteError::BadVerifier)?;
        let key: [u8; 32] = match key.as_slice() {
            [ED25519, rest @ ..] => rest.try_into().map_err(|_| NoteError::BadVerifier)?,
            _ => return Err(NoteError::BadVerifier),
        };
        let verifier =
            Verifier::new(name, PublicKey::from_bytes(key)).map_err(|_| NoteError::BadVerifier)?;
        if hash.len() != 8 || hex::encode(verifier.hash) != hash {
            return Err(NoteError::BadVerifier);
        }
        Ok(verifier)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key(&self) -> &PublicKey {
        &self.key
    }

    /// The checkpoint note for a tree of `size` leaves with `root`, signed by `key`, which
    /// must be this verifier's private half.
    pub fn sign_checkpoint(
        &self,
        key: &SigningKey,
        origin: &str,
        size: u64,
        root: &Hash,
    ) -> String {
        let body = format!("{origin}\n{size}\n{}\n", STANDARD.encode(root));
        let mut sig = self.hash.to_vec();
        sig.extend_from_slice(&key.sign(body.as_bytes()));
        format!("{body}\n\u{2014} {} {}\n", self.name, STANDARD.encode(sig))
    }

    /// Checks `note`'s signature by this key, then reads its body as a checkpoint.
    ///
    /// # Errors
    ///
    /// [`NoteError::Malformed`], [`NoteError::Unsigned`] when no signature line is this key's
    /// valid signature, [`NoteError::BadCheckpoint`] for a signed body that is no checkpoint.
    pub fn open_checkpoint(&self, note: &str) -> Result<Signed, NoteError> {
        let split = note.rfind("\n\n").ok_or(NoteError::Malformed)?;
        let (body, signatures) = (&note[..=split], &note[split + 2..]);
        if !signatures.ends_with('\n') {
            return Err(NoteError::Malformed);
        }
        let mut signed = false;
        for line in signatures.lines() {
            let rest = line.strip_prefix("\u{2014} ").ok_or(NoteError::Malformed)?;
            let (name, sig) = rest.split_once(' ').ok_or(NoteError::Malformed)?;
            let sig = STANDARD.decode(sig).map_err(|_| NoteError::Malformed)?;
            if name == self.name
                && sig.len() == 68
                && sig[..4] == self.hash
                && self.key.verifies(body.as_bytes(), &sig[4..])
            {
                signed = true;
            }
        }
        if !signed {
            return Err(NoteError::Unsigned(self.name.clone()));
        }
        parse_checkpoint(body)
    }
}

impl fmt::Display for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut key = vec![ED25519];
        key.extend_from_slice(self.key.bytes());
        write!(
            f,
            "{}+{}+{}",
            self.name,
            hex::encode(self.hash),
            STANDARD.encode(key)
        )
    }
}

/// Origin, decimal size without leading zeros, base64 root; extension lines are allowed.
fn parse_checkpoint(body: &str) -> Result<Signed, NoteError> {
    let mut lines = body.lines();
    let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next()) else {
        return Err(NoteError::BadCheckpoint);
    };
    if origin.is_empty()
        || size.is_empty()
        || !size.bytes().all(|b| b.is_ascii_digit())
        || (size.len() > 1 && size.starts_with('0'))
    {
        return Err(NoteError::BadCheckpoint);
    }
    let size = size.parse().map_err(|_| NoteError::BadCheckpoint)?;
    let root = STANDARD
        .decode(root)
        .ok()
        .and_then(|r| Hash::try_from(r.as_slice()).ok())
        .ok_or(NoteError::BadCheckpoint)?;
    Ok(Signed {
        origin: origin.to_owned(),
        size,
        root,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    /// The verifier key of the example in `golang.org/x/mod/sumdb/note`'s documentation
    /// (C2SP signed-note's own example uses the same key).
    const PETER: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";

    #[test]
    fn the_published_example_key_parses_and_prints_back() {
        let v = Verifier::parse(PETER).unwrap();
        assert_eq!(v.name(), "PeterNeumann");
        assert_eq!(v.to_string(), PETER);
        // Its key hash is what the published key says: a changed name changes it.
        let renamed = Verifier::new("PeterNeuman", v.key().clone()).unwrap();
        assert_ne!(renamed.to_string()[12..20], PETER[13..21]);
    }

    #[test]
    fn the_published_example_note_verifies() {
        let v = Verifier::parse(PETER).unwrap();
        let note = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n\
                    \n\
                    \u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
        // Not a checkpoint body, but the signature is checked first and holds.
        assert_eq!(v.open_checkpoint(note), Err(NoteError::BadCheckpoint));
        let forged = note.replace("cryptography", "cryptographY");
        assert_eq!(
            v.open_checkpoint(&forged),
            Err(NoteError::Unsigned("PeterNeumann".into()))
        );
    }

    #[test]
    fn a_signed_checkpoint_opens_and_any_change_refuses_it() {
        let (pem, _) = super::super::generate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k"), pem).unwrap();
        let key = SigningKey::load(&dir.path().join("k")).unwrap();
        let v = Verifier::new("gw-1", key.public_key()).unwrap();
        let root = [7u8; 32];
        let note = v.sign_checkpoint(&key, "housing.example/gw-1", 42, &root);
        assert!(note.starts_with("housing.example/gw-1\n42\nBwcH"));
        assert!(note.contains("\n\n\u{2014} gw-1 "));
        let signed = v.open_checkpoint(&note).unwrap();
        assert_eq!(
            (signed.origin.as_str(), signed.size, signed.root),
            ("housing.example/gw-1", 42, root)
        );
        assert_eq!(Verifier::parse(&v.to_string()).unwrap(), v);
        for bent in [
            note.replace("\n42\n", "\n43\n"),
            note.replace("BwcH", "BwcI"),
        ] {
            assert!(matches!(
                v.open_checkpoint(&bent),
                Err(NoteError::Unsigned(_))
            ));
        }
        let other = Verifier::new("gw-2", key.public_key()).unwrap();
        assert!(other.open_checkpoint(&note).is_err());
        assert_eq!(
            Verifier::new("a b", key.public_key()),
            Err(NoteError::BadName)
        );
    }
}
