//! What a past disclosure needs to be described once its rules have changed: the snapshot of
//! a policy that `serve` keeps beside the ledger, and `audit report` reads instead of the rules.
//!
//! A record names its rules by `rules_generation` (a hash of the rule files) and, since the
//! files themselves are edited and gone, by `rules_snapshot`: the SHA-256 of this snapshot's
//! bytes. The bytes are the RFC 8785 (JCS) form of [`Snapshot`], so the digest is the same on
//! every machine and anyone can check a snapshot file against its name with `sha256sum`. The
//! record carries the digest inside the hash chain, so a snapshot cannot be swapped for
//! another without the report seeing that its bytes no longer hash to what the record says.
//!
//! It holds names, purposes and words, never a rule: it describes, it decides nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::glossary::Glossary;
use super::Policy;
use crate::audit::canonical;

/// A policy's descriptions, as a subject access report names them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// The `rules_generation` of the rules it was taken from.
    pub generation: String,
    /// By recipient id.
    pub recipients: BTreeMap<String, Organisation>,
    /// By recipient type.
    pub types: BTreeMap<String, Purpose>,
    /// `glossary.toml`: field path in rule form → plain words.
    pub glossary: BTreeMap<String, String>,
}

/// One recipient as the rules named it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Organisation {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// Why a recipient type receives data, and on what basis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Purpose {
    pub purpose: String,
    pub lawful_basis: String,
}

/// A snapshot's bytes and their SHA-256, as the ledger keeps them and records name them.
#[derive(Clone, PartialEq)]
pub struct Sealed {
    /// Lower-case hex SHA-256 of `bytes`: the snapshot's file name and `rules_snapshot`.
    pub digest: String,
    pub bytes: Vec<u8>,
}

// === impl Snapshot ===

impl Snapshot {
    /// The descriptions `policy` gives.
    pub fn of(policy: &Policy) -> Snapshot {
        let recipients = policy
            .recipients()
            .iter()
            .map(|r| {
                let organisation = Organisation {
                    name: r.name.clone(),
                    kind: r.kind.name.clone(),
                };
                (r.id.clone(), organisation)
            })
            .collect();
        let types = policy
            .types()
            .map(|t| {
                let purpose = Purpose {
                    purpose: t.purpose.clone(),
                    lawful_basis: t.lawful_basis.as_str().to_owned(),
                };
                (t.name.clone(), purpose)
            })
            .collect();
        let glossary = policy
            .glossary()
            .entries()
            .map(|(path, words)| (path.to_owned(), words.to_owned()))
            .collect();
        Snapshot {
            generation: policy.generation().to_owned(),
            recipients,
            types,
            glossary,
        }
    }

    /// Its canonical bytes and their digest.
    pub fn seal(&self) -> Sealed {
        let value = serde_json::to_value(self).expect("strings and maps always serialise");
        let bytes = canonical::to_vec(&value).expect("strings and maps always serialise");
        Sealed {
            digest: digest(&bytes),
            bytes,
        }
    }

    /// The snapshot in `bytes`, provided they hash to `expected` (a record's `rules_snapshot`).
    ///
    /// # Errors
    ///
    /// [`Unsealed::Mismatch`] when the bytes hash to anything else (altered, or another
    /// snapshot under its name), [`Unsealed::Invalid`] when they are not a snapshot.
    pub fn open(bytes: &[u8], expected: &str) -> Result<Snapshot, Unsealed> {
        let actual = digest(bytes);
        if actual != expected {
            return Err(Unsealed::Mismatch { actual });
        }
        serde_json::from_slice(bytes).map_err(|e| Unsealed::Invalid(e.to_string()))
    }

    /// Its glossary, to look words up as the rules' own glossary would.
    pub fn glossary(&self) -> Glossary {
        Glossary::from_fields(self.glossary.clone())
    }
}

/// Why snapshot bytes were not taken as the snapshot a record names.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Unsealed {
    #[error("its content hashes to {actual}, not to the digest the record names: it was altered")]
    Mismatch { actual: String },
    #[error("it is not a rules snapshot: {0}")]
    Invalid(String),
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed")
            .field("digest", &self.digest)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot {
            generation: "ab".repeat(32),
            recipients: BTreeMap::from([(
                "acme-repairs".to_owned(),
                Organisation {
                    name: "ACME Repairs Ltd".to_owned(),
                    kind: "repairs-contractor".to_owned(),
                },
            )]),
            types: BTreeMap::from([(
                "repairs-contractor".to_owned(),
                Purpose {
                    purpose: "Carry out repairs".to_owned(),
                    lawful_basis: "contract".to_owned(),
                },
            )]),
            glossary: BTreeMap::from([("tenant.phone".to_owned(), "telephone number".to_owned())]),
        }
    }

    #[test]
    fn sealing_is_canonical_and_opens_to_the_same_snapshot() {
        let sealed = snapshot().seal();
        assert_eq!(
            sealed,
            snapshot().seal(),
            "the same snapshot, the same bytes"
        );
        assert_eq!(sealed.digest, digest(&sealed.bytes));
        let text = String::from_utf8(sealed.bytes.clone()).expect("utf-8");
        assert!(text.starts_with("{\"generation\":"), "{text}");
        assert!(text.contains("\"type\":\"repairs-contractor\""), "{text}");
        let opened = Snapshot::open(&sealed.bytes, &sealed.digest).expect("opens");
        assert_eq!(opened, snapshot());
        assert_eq!(
            opened.glossary().words("[].tenant.phone"),
            Some("telephone number")
        );
    }

    #[test]
    fn altered_bytes_do_not_open() {
        let sealed = snapshot().seal();
        let altered = String::from_utf8(sealed.bytes.clone())
            .expect("utf-8")
            .replace("ACME Repairs Ltd", "Someone Else Ltd");
        let e = Snapshot::open(altered.as_bytes(), &sealed.digest).expect_err("altered");
        assert!(matches!(e, Unsealed::Mismatch { .. }), "{e}");
        let junk = b"{\"rules\":1}";
        let e = Snapshot::open(junk, &digest(junk)).expect_err("not a snapshot");
        assert!(matches!(e, Unsealed::Invalid(_)), "{e}");
    }
}
