//! `audit verify --checkpoints`: do the signed checkpoints agree with the files?
//!
//! This checks the checkpoints against the `hash` of each record as written; it does not check
//! the chain itself, so run [`verify_files`](crate::audit::verify_files) first (the CLI does).
//! Together: the chain proves each record follows the one before, and a checkpoint proves the
//! chain reached record `size` with that hash when the key holder signed it.

use std::fs::File;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

use super::super::chain::{self, Line, GENESIS_HASH};
use super::{Checkpoint, Link, PublicKey};

/// Checkpoints that agree with the files.
#[derive(Debug, Clone, PartialEq)]
pub struct Witnessed {
    pub checkpoints: u64,
    /// The newest checkpoint: compare it with the `audit_checkpoint` events of the log
    /// pipeline, which a thief of the ledger host cannot edit.
    pub last: Option<Checkpoint>,
    /// Records in the files, oldest first.
    pub records: u64,
}

impl Witnessed {
    /// Records after the last checkpoint: not yet witnessed, so a cut among them would not
    /// show here (only in the log pipeline, or at the next checkpoint).
    pub fn unwitnessed(&self) -> u64 {
        self.records - self.last.as_ref().map_or(0, |c| c.size)
    }
}

/// Why the checkpoints and the files disagree. Each names the checkpoint file's line.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot read {}: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: line {line}: {reason}", file.display())]
    Line {
        file: PathBuf,
        line: u64,
        reason: String,
    },
    #[error(
        "{}: continues a rotated file; checkpoints count records from the chain's first file, \
         so give every file from the one whose first prev_hash is 64 zeros",
        file.display()
    )]
    NotFromStart { file: PathBuf },
}

impl CheckpointError {
    /// A file could not be read, as opposed to read and found wrong.
    pub fn is_io(&self) -> bool {
        matches!(self, CheckpointError::Io { .. })
    }
}

/// Checks every line of `checkpoints`: its signature under `key`, that `size` rises line by
/// line, and that record `size` of `files` (oldest first) exists and has `head` as its hash.
///
/// # Errors
///
/// The first checkpoint line at fault, by line number: a bad signature (forged, edited, or
/// another key), a size out of order (lines reordered), a head that differs (the history was
/// rewritten), a size past the end (the tail was cut).
pub fn verify(
    files: &[PathBuf],
    checkpoints: &Path,
    key: &PublicKey,
) -> Result<Witnessed, CheckpointError> {
    if let Some(first) = files.first() {
        let io = |source| CheckpointError::Io {
            file: first.clone(),
            source,
        };
        if let Some(prev) = super::first_link(first).map_err(io)? {
            if prev != GENESIS_HASH {
                return Err(CheckpointError::NotFromStart {
                    file: first.clone(),
                });
            }
        }
    }
    let (signed, fault) = read_signed(checkpoints, key)?;
    let at = |line: u64, reason: String| CheckpointError::Line {
        file: checkpoints.to_path_buf(),
        line,
        reason,
    };

    // One pass over the records, meeting the checkpoints in order of size.
    let mut next = signed.iter().peekable();
    let mut records = 0u64;
    let mut buf = Vec::new();
    for file in files {
        let io = |source| CheckpointError::Io {
            file: file.clone(),
            source,
        };
        let mut r = BufReader::new(File::open(file).map_err(io)?);
        let mut line = 0u64;
        while let Line::Whole = chain::read_line(&mut r, &mut buf).map_err(io)? {
            line += 1;
            records += 1;
            let Some((ck_line, c)) = next.peek() else {
                continue;
            };
            if c.size != records {
                continue;
            }
            let hash = serde_json::from_slice::<Link>(&buf).map(|l| l.hash);
            match hash {
                Ok(hash) if hash == c.head => {}
                Ok(hash) => {
                    return Err(at(
                        *ck_line,
                        format!(
                            "signed head {} for record {}, but that record ({} line {line}) has \
                             hash {hash}: the history was rewritten",
                            c.head,
                            c.size,
                            file.display()
                        ),
                    ))
                }
                Err(_) => {
                    return Err(at(
                        *ck_line,
                        format!(
                            "record {} ({} line {line}) has no hash to compare",
                            c.size,
                            file.display()
                        ),
                    ))
                }
            }
            next.next();
        }
    }
    if let Some((ck_line, c)) = next.next() {
        return Err(at(
            *ck_line,
            format!(
                "signed record {}, but the files hold only {records} records: records were cut \
                 from the tail, or a newer file is missing",
                c.size
            ),
        ));
    }
    if let Some(fault) = fault {
        return Err(fault);
    }
    Ok(Witnessed {
        checkpoints: signed.len() as u64,
        last: signed.last().map(|(_, c)| c.clone()),
        records,
    })
}

/// The checkpoints up to the first bad line, each with its line number, and that line's fault.
/// The fault is returned rather than raised so that an earlier line's disagreement with the
/// files, found later, is reported first.
#[allow(clippy::type_complexity)]
fn read_signed(
    path: &Path,
    key: &PublicKey,
) -> Result<(Vec<(u64, Checkpoint)>, Option<CheckpointError>), CheckpointError> {
    let io = |source| CheckpointError::Io {
        file: path.to_path_buf(),
        source,
    };
    let at = |line: u64, reason: String| CheckpointError::Line {
        file: path.to_path_buf(),
        line,
        reason,
    };
    let mut r = BufReader::new(File::open(path).map_err(io)?);
    let mut buf = Vec::new();
    let mut signed: Vec<(u64, Checkpoint)> = Vec::new();
    let mut line = 0u64;
    loop {
        let kind = chain::read_line(&mut r, &mut buf).map_err(io)?;
        line += 1;
        let reason = match kind {
            Line::Eof => return Ok((signed, None)),
            Line::TooLong => "line too long".to_owned(),
            Line::Unterminated => {
                "torn last line (no newline): a checkpoint write that never completed".to_owned()
            }
            Line::Whole => match Checkpoint::parse(&buf) {
                Err(reason) => reason,
                Ok(c) if !c.signed_by(key) => format!(
                    "the signature of record {} does not verify with the public key: the line \
                     was forged or edited, or signed by another key",
                    c.size
                ),
                Ok(c) => match signed.last() {
                    Some((prev_line, prev)) if c.size <= prev.size => format!(
                        "size {} is not above line {prev_line}'s size {}: checkpoints are out \
                         of order",
                        c.size, prev.size
                    ),
                    _ => {
                        signed.push((line, c));
                        continue;
                    }
                },
            },
        };
        return Ok((signed, Some(at(line, reason))));
    }
}
