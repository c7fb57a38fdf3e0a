//! Inclusion proofs for one data subject: each record about them, where it sits in the tree,
//! and the signed checkpoint it is proven against, checkable offline without the ledger.
//!
//! `audit prove` verifies the chain first (a proof of a broken ledger would prove nothing),
//! then signs a checkpoint of the whole verified chain and proves each of the subject's
//! records against it. The proof file is JSON:
//!
//! ```text
//! {"subject": "T-1", "records": [{"line": "<the record's line>", "index": 7,
//!   "proof": ["<base64 hash>", ...], "checkpoint": "<the signed note>"}]}
//! ```
//!
//! `index` is the 0-based leaf position (the record's place in the chain from its first
//! file), `proof` the RFC 6962 audit path from the leaf's sibling up. Anyone holding the
//! verifier key checks the note's signature, then hashes `line` as a leaf and walks `proof` to
//! the note's root: no other record is needed, so none is disclosed.

use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::checkpoint::note::{NoteError, Signed, Verifier};
use super::checkpoint::SigningKey;
use super::tree::{self, Hash};
use super::verify::{each_record, is_about, line_text, verify_files, VerifyError};
use super::Error;

/// What `audit prove` writes and `audit check-proof` reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proofs {
    pub subject: String,
    pub records: Vec<Proven>,
}

/// One record, proven.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proven {
    pub line: String,
    pub index: u64,
    pub proof: Vec<String>,
    pub checkpoint: String,
}

/// Why proofs cannot be made or do not hold.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    #[error("the chain does not verify: {0}")]
    Chain(#[from] VerifyError),
    #[error("the first file continues an earlier one: give every file from the chain's first")]
    NotFromStart,
    #[error(transparent)]
    Read(#[from] Error),
    #[error("the checkpoint of record {index}: {error}")]
    Note { index: u64, error: NoteError },
    #[error("record {index}: a proof hash is not 32 bytes of base64")]
    BadHash { index: u64 },
    #[error("record {index}: the line is not in the tree the checkpoint signs")]
    NotIncluded { index: u64 },
}

/// Proves every record of `files` (the chain from its first file, oldest first) whose
/// `subjects` holds `subject`, against a checkpoint of the whole chain signed now.
///
/// # Errors
///
/// [`ProofError::Chain`] or [`ProofError::NotFromStart`] when the files are not one whole,
/// verified chain; [`ProofError::Read`] when a file cannot be read.
pub fn prove(
    files: &[PathBuf],
    subject: &str,
    key: &SigningKey,
    verifier: &Verifier,
    origin: &str,
) -> Result<Proofs, ProofError> {
    let verified = verify_files(files)?;
    if verified.continues_from.is_some() {
        return Err(ProofError::NotFromStart);
    }
    // Records appended after the verify are left out: only verified lines are leaves.
    let size = verified.records;
    let mut leaves: Vec<Hash> = Vec::new();
    let mut found: Vec<(u64, String)> = Vec::new();
    for file in files {
        each_record(file, |line, bytes, value| {
            let index = leaves.len() as u64;
            if index >= size {
                return Ok(());
            }
            leaves.push(tree::leaf_hash(bytes));
            if is_about(value, subject) {
                found.push((index, line_text(line, bytes)?));
            }
            Ok(())
        })?;
    }
    let checkpoint =
        verifier.sign_checkpoint(key, origin, leaves.len() as u64, &tree::root(&leaves));
    let records = found
        .into_iter()
        .filter_map(|(index, line)| {
            let proof = tree::inclusion_proof(usize::try_from(index).ok()?, &leaves)?;
            Some(Proven {
                line,
                index,
                proof: proof.iter().map(|h| STANDARD.encode(h)).collect(),
                checkpoint: checkpoint.clone(),
            })
        })
        .collect();
    Ok(Proofs {
        subject: subject.to_owned(),
        records,
    })
}

/// Checks each record's checkpoint signature by `verifier`, then its inclusion; returns the
/// checkpoints, one per record.
///
/// # Errors
///
/// The first record that does not hold, by its index.
pub fn check(proofs: &Proofs, verifier: &Verifier) -> Result<Vec<Signed>, ProofError> {
    proofs
        .records
        .iter()
        .map(|r| {
            let index = r.index;
            let signed = verifier
                .open_checkpoint(&r.checkpoint)
                .map_err(|error| ProofError::Note { index, error })?;
            let path = r
                .proof
                .iter()
                .map(|h| {
                    STANDARD
                        .decode(h)
                        .ok()
                        .and_then(|b| Hash::try_from(b.as_slice()).ok())
                        .ok_or(ProofError::BadHash { index })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let leaf = tree::leaf_hash(r.line.as_bytes());
            if !tree::verify_inclusion(index, signed.size, &leaf, &path, &signed.root) {
                return Err(ProofError::NotIncluded { index });
            }
            Ok(signed)
        })
        .collect()
}
