//! The checkpoint key pair: Ed25519 through `ring`, in the files `openssl` reads and writes.
//!
//! The private key is PKCS#8 (PEM `PRIVATE KEY`, or DER), as `keygen --checkpoint` and
//! `openssl genpkey -algorithm ed25519` write it. The public key is PEM SPKI (`PUBLIC KEY`),
//! as `openssl pkey -pubout` writes it, so an auditor can check a signature without our code.

use std::path::Path;

use ring::signature::{self, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{PrivatePkcs8KeyDer, SubjectPublicKeyInfoDer};

/// DER of an Ed25519 SubjectPublicKeyInfo before the 32 key bytes (RFC 8410 section 4): a
/// SEQUENCE holding the algorithm OID 1.3.101.112 and a 33-byte BIT STRING.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Why a key file cannot be used. Messages name the file, never a key byte.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not an Ed25519 private key in PKCS#8 (PEM \"PRIVATE KEY\" or DER)")]
    NotPrivate { path: String },
    #[error("{path} is not an Ed25519 public key in PEM SPKI (\"PUBLIC KEY\")")]
    NotPublic { path: String },
    #[error("the operating system's random source failed")]
    Random,
}

/// The writer's signing key. `Debug` is hand-written: the key never reaches a log.
pub struct SigningKey(Ed25519KeyPair);

/// A verifying key: the 32 bytes of an Ed25519 public key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey([u8; 32]);

// === impl SigningKey ===

impl SigningKey {
    /// Reads a PKCS#8 private key, PEM or DER.
    ///
    /// # Errors
    ///
    /// [`KeyError::Read`], or [`KeyError::NotPrivate`] for anything but an Ed25519 key.
    pub fn load(path: &Path) -> Result<SigningKey, KeyError> {
        let bytes = std::fs::read(path).map_err(|source| KeyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let not_private = || KeyError::NotPrivate {
            path: path.display().to_string(),
        };
        let der = if bytes.starts_with(b"-----") {
            PrivatePkcs8KeyDer::from_pem_slice(&bytes)
                .map_err(|_| not_private())?
                .secret_pkcs8_der()
                .to_vec()
        } else {
            bytes
        };
        // "maybe_unchecked" accepts PKCS#8 v1 (no public key inside), which openssl writes.
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
            .map(SigningKey)
            .map_err(|_| not_private())
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(self.0.sign(message).as_ref());
        out
    }

    pub fn public_key(&self) -> PublicKey {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.0.public_key().as_ref());
        PublicKey(out)
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").finish_non_exhaustive()
    }
}

// === impl PublicKey ===

impl PublicKey {
    /// Reads a PEM SPKI public key.
    ///
    /// # Errors
    ///
    /// [`KeyError::Read`], or [`KeyError::NotPublic`] for anything but an Ed25519 key.
    pub fn load(path: &Path) -> Result<PublicKey, KeyError> {
        let bytes = std::fs::read(path).map_err(|source| KeyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        PublicKey::from_pem(&bytes).ok_or_else(|| KeyError::NotPublic {
            path: path.display().to_string(),
        })
    }

    /// The key in a PEM `PUBLIC KEY` block, or `None` if it is not an Ed25519 SPKI.
    pub fn from_pem(pem: &[u8]) -> Option<PublicKey> {
        let spki = SubjectPublicKeyInfoDer::from_pem_slice(pem).ok()?;
        let key = spki.as_ref().strip_prefix(&SPKI_PREFIX)?;
        key.try_into().ok().map(PublicKey)
    }

    /// The key as PEM SPKI, what `keygen --checkpoint` writes.
    pub fn to_pem(&self) -> String {
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.0);
        pem_block("PUBLIC KEY", &der)
    }

    /// The 32 key bytes, as a C2SP verifier key carries them.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn from_bytes(bytes: [u8; 32]) -> PublicKey {
        PublicKey(bytes)
    }

    /// True when `sig` is this key's signature of `message`.
    pub fn verifies(&self, message: &[u8], sig: &[u8]) -> bool {
        UnparsedPublicKey::new(&signature::ED25519, &self.0)
            .verify(message, sig)
            .is_ok()
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", hex::encode(self.0))
    }
}

/// A fresh key pair: the private key as PEM PKCS#8 (v2, with the public key inside), the
/// public key as PEM SPKI.
///
/// # Errors
///
/// [`KeyError::Random`] when the system's random source fails.
pub fn generate() -> Result<(String, PublicKey), KeyError> {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyError::Random)?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| KeyError::Random)?;
    let public = SigningKey(pair).public_key();
    Ok((pem_block("PRIVATE KEY", pkcs8.as_ref()), public))
}

/// RFC 7468 text: base64 in 64-column lines between the labels. Written here (a few lines)
/// rather than adding a base64 crate for two call sites.
fn pem_block(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::with_capacity(der.len().div_ceil(3) * 4);
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn generated_pair_round_trips_through_pem_files() {
        let dir = tempfile::tempdir().unwrap();
        let (private, public) = generate().unwrap();
        std::fs::write(dir.path().join("k"), &private).unwrap();
        std::fs::write(dir.path().join("p"), public.to_pem()).unwrap();
        let key = SigningKey::load(&dir.path().join("k")).unwrap();
        let loaded = PublicKey::load(&dir.path().join("p")).unwrap();
        assert_eq!(key.public_key(), loaded);
        let sig = key.sign(b"m");
        assert!(loaded.verifies(b"m", &sig));
        assert!(!loaded.verifies(b"n", &sig));
        assert!(format!("{key:?}").len() < 40, "no key bytes in Debug");
    }

    /// RFC 8410 section 10.3's example public key, as openssl prints it.
    #[test]
    fn reads_the_rfc_8410_public_key() {
        let pem = b"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";
        let key = PublicKey::from_pem(pem).unwrap();
        assert_eq!(
            format!("{key:?}"),
            "PublicKey(19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1)"
        );
        assert_eq!(key.to_pem().as_bytes(), pem);
    }

    #[test]
    fn other_files_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-a-key");
        std::fs::write(
            &path,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let e = SigningKey::load(&path).unwrap_err().to_string();
        assert!(e.contains("not-a-key") && e.contains("PKCS#8"), "{e}");
        assert!(PublicKey::load(&path).is_err());
    }
}
