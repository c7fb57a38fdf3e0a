//! `audit verify` and `audit query`: reading a ledger without our writer.
//!
//! Both read line by line, so a large ledger never sits in memory whole.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::chain::{self, Continuation, Line, ScanError, GENESIS_HASH};
use super::error::Error;

/// A chain that checked out.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub records: u64,
    /// The last record's `hash` (64 zeros for an empty file): note it down, and a later verify
    /// that still contains it proves nothing before it was rewritten.
    pub head: String,
    /// Set when the first record is a rotation record: the chain began in an earlier file,
    /// whose last hash this is. Alone, a file cannot prove that link; [`verify_files`] with the
    /// earlier file does.
    pub continues_from: Option<Continuation>,
}

/// Why a ledger does not verify. The messages are written for the `audit verify` output and
/// name the first bad line, 1-based.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("line {line}: {reason}")]
    Broken { line: u64, reason: String },
    #[error(
        "line {line}: torn last line (no newline or unparsable): a write that never completed"
    )]
    Torn { line: u64 },
    #[error("cannot read audit file: {0}")]
    Io(#[from] io::Error),
    /// From [`verify_files`]: a file of the sequence is broken, torn or unreadable on its own.
    /// The inner error is part of the message rather than a `source`, so the one line
    /// `audit verify` prints is the whole verdict.
    #[error("{}: {error}", file.display())]
    InFile {
        file: PathBuf,
        error: Box<VerifyError>,
    },
    /// From [`verify_files`]: a file does not continue the one before it, so records between
    /// them may be missing (or a file was given out of order).
    #[error("{}: line {line}: {reason}", file.display())]
    Gap {
        file: PathBuf,
        line: u64,
        reason: String,
    },
}

// === impl VerifyError ===

impl VerifyError {
    /// True when a file could not be read, as opposed to read and found wrong: the CLI reports
    /// the first as a failure to run, the second as a verdict (exit 1).
    pub fn is_io(&self) -> bool {
        match self {
            VerifyError::Io(_) => true,
            VerifyError::InFile { error, .. } => error.is_io(),
            _ => false,
        }
    }
}

/// Checks the whole chain of the ledger at `path`: every line links to the one before, its
/// `hash` matches, and its bytes are exactly its JCS form. The first line links to 64 zeros,
/// unless it is a rotation record: then [`Verified::continues_from`] says where the chain came
/// from.
///
/// # Errors
///
/// The first broken line, or a torn last line (reported, not skipped: it may hide a cut).
pub fn verify(path: &Path) -> Result<Verified, VerifyError> {
    let file = File::open(path)?;
    match chain::scan(BufReader::new(file)) {
        Ok(good) => Ok(Verified {
            records: good.records,
            head: good.head,
            continues_from: good.continues_from,
        }),
        Err(ScanError::Io(e)) => Err(VerifyError::Io(e)),
        Err(ScanError::Broken { line, reason }) => Err(VerifyError::Broken { line, reason }),
        Err(ScanError::Torn { line, .. }) => Err(VerifyError::Torn { line }),
    }
}

/// Checks a sequence of rotated files, oldest first, as one chain: each file on its own as
/// [`verify`] does, and each file after the first must start with a rotation record whose
/// `prev_hash` is the previous file's last hash and whose `previous_records` is its record
/// count, so a record cut from the end of a file, or a file left out, is caught. The first file
/// may itself continue an earlier one (reported in `continues_from`, as for one file).
///
/// Returns the whole sequence: the total of records, the last file's head.
///
/// # Errors
///
/// The first fault in file order, naming the file: [`VerifyError::Gap`] for a broken link
/// between files (line 1 of the later file), [`VerifyError::InFile`] for anything else.
pub fn verify_files(paths: &[PathBuf]) -> Result<Verified, VerifyError> {
    verify_files_with(paths, |_, _| {})
}

/// [`verify_files`], calling `each` with every file that verified, in order, as it goes: what
/// `audit verify` prints per file, even when a later file breaks.
///
/// # Errors
///
/// As [`verify_files`].
pub fn verify_files_with(
    paths: &[PathBuf],
    mut each: impl FnMut(&Path, &Verified),
) -> Result<Verified, VerifyError> {
    let mut total: Option<Verified> = None;
    let mut previous: Option<(&Path, Verified)> = None;
    for path in paths {
        let in_file = |error| VerifyError::InFile {
            file: path.clone(),
            error: Box::new(error),
        };
        // The link is checked on the first line before the rest is read, so a gap is reported
        // ahead of a break further down the same file: the first fault in file order.
        if let Some((prev_path, prev)) = &previous {
            check_link(path, prev_path, prev).map_err(|e| match e {
                Link::Io(e) => in_file(VerifyError::Io(e)),
                Link::Gap(reason) => VerifyError::Gap {
                    file: path.clone(),
                    line: 1,
                    reason,
                },
                // A first line the link check cannot read is reported by `verify`, in its own
                // words (torn, not JSON, ...).
                Link::Unreadable => match verify(path) {
                    Err(e) => in_file(e),
                    Ok(_) => in_file(VerifyError::Broken {
                        line: 1,
                        reason: "no first record to link to the previous file".into(),
                    }),
                },
            })?;
        }
        let verified = verify(path).map_err(in_file)?;
        each(path, &verified);
        total = Some(match total {
            None => verified.clone(),
            Some(t) => Verified {
                records: t.records + verified.records,
                head: verified.head.clone(),
                continues_from: t.continues_from,
            },
        });
        previous = Some((path, verified));
    }
    Ok(total.unwrap_or_else(|| Verified {
        records: 0,
        head: GENESIS_HASH.to_owned(),
        continues_from: None,
    }))
}

enum Link {
    Io(io::Error),
    Gap(String),
    /// The first line is missing or not a JSON object; `verify` says which.
    Unreadable,
}

/// Does the first record of `path` continue `prev` (the file at `prev_path`)?
fn check_link(path: &Path, prev_path: &Path, prev: &Verified) -> Result<(), Link> {
    let prev_name = prev_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let first = first_record(path).map_err(Link::Io)?;
    let Some(first) = first else {
        // An empty later file cannot be the product of a rotation, which always writes one.
        return match std::fs::metadata(path) {
            Ok(m) if m.len() == 0 => Err(Link::Gap(format!(
                "empty, so nothing links it to {prev_name}"
            ))),
            Ok(_) => Err(Link::Unreadable),
            Err(e) => Err(Link::Io(e)),
        };
    };
    let Some(c) = chain::continuation(&first) else {
        return Err(Link::Gap(format!(
            "not a rotation record, so the file does not continue {prev_name}"
        )));
    };
    if c.prev_hash != prev.head {
        return Err(Link::Gap(format!(
            "prev_hash is not the last hash of {prev_name}: records are missing between them, \
             or the files are out of order"
        )));
    }
    if c.previous_records != prev.records {
        return Err(Link::Gap(format!(
            "previous_records is {} but {prev_name} holds {} records",
            c.previous_records, prev.records
        )));
    }
    Ok(())
}

/// The first line of `path` as a JSON object, or `None` when it is missing, not whole, or not
/// an object (for `verify` to describe).
pub(super) fn first_record(path: &Path) -> io::Result<Option<Map<String, Value>>> {
    let mut r = BufReader::new(File::open(path)?);
    let mut buf = Vec::new();
    match chain::read_line(&mut r, &mut buf)? {
        Line::Whole => Ok(serde_json::from_slice(&buf).ok()),
        _ => Ok(None),
    }
}

/// Every line whose `subjects` array holds `subject`, as written (without `'\n'`), with its
/// line number (1-based), oldest first.
///
/// It does not check the chain (run [`verify`] for that), so a subject access request can still
/// be answered from a ledger that fails to verify. Records without `subjects` (recovery records)
/// are skipped, and so is a torn last line, which was never acknowledged.
///
/// # Errors
///
/// [`Error::Io`], or [`Error::Damaged`] for a line before the last that is not JSON.
pub fn query(path: &Path, subject: &str) -> Result<Vec<(u64, String)>, Error> {
    let mut found = Vec::new();
    each_record(path, |line, bytes, value| {
        if is_about(value, subject) {
            found.push((line, line_text(line, bytes)?));
        }
        Ok(())
    })?;
    tracing::debug!(records = found.len(), "audit query done");
    Ok(found)
}

/// A record's line as text. Parsed JSON is UTF-8, so this only fails on a bug; it says so
/// rather than panic.
pub(super) fn line_text(line: u64, bytes: &[u8]) -> Result<String, Error> {
    String::from_utf8(bytes.to_vec()).map_err(|_| Error::Damaged {
        line,
        reason: "not UTF-8".into(),
    })
}

/// Whether `record`'s `subjects` holds `subject`: what `audit query` and `audit prove` select.
pub(super) fn is_about(record: &Value, subject: &str) -> bool {
    record
        .get("subjects")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|s| s.as_str() == Some(subject)))
}

/// Calls `each(line, bytes, record)` for every record of the ledger at `path`, oldest first:
/// its 1-based line number, the line as written (without `'\n'`) and the line parsed. One
/// line is in memory at a time, so `audit query` and `audit fields` read a ledger of any size.
///
/// Like [`query`] it does not check the chain, and skips a torn last line, which was never
/// acknowledged.
///
/// # Errors
///
/// [`Error::Io`], [`Error::Damaged`] for a line before the last that is not JSON, or whatever
/// `each` returns.
pub fn each_record(
    path: &Path,
    mut each: impl FnMut(u64, &[u8], &Value) -> Result<(), Error>,
) -> Result<(), Error> {
    let file = File::open(path).map_err(Error::io("open"))?;
    let mut r = BufReader::new(file);
    let mut buf = Vec::new();
    let mut line = 0u64;
    loop {
        let kind = chain::read_line(&mut r, &mut buf).map_err(Error::io("read"))?;
        line += 1;
        match kind {
            Line::Eof => return Ok(()),
            Line::Whole => {}
            Line::Unterminated => {
                tracing::warn!(line, "audit read: skipped a torn last line");
                return Ok(());
            }
            Line::TooLong => {
                let reason = format!("longer than the {} MiB line limit", chain::MAX_LINE >> 20);
                return Err(Error::Damaged { line, reason });
            }
        }
        let value: Value = match serde_json::from_slice(&buf) {
            Ok(v) => v,
            Err(_) if r.fill_buf().map_err(Error::io("read"))?.is_empty() => {
                tracing::warn!(line, "audit read: skipped a torn last line");
                return Ok(());
            }
            Err(e) => {
                let reason = format!("not valid JSON ({e})");
                return Err(Error::Damaged { line, reason });
            }
        };
        each(line, &buf, &value)?;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::super::record::tests::record;
    use super::super::AuditLog;
    use super::*;

    async fn ledger(n: usize) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let (log, _) = AuditLog::open(&path).unwrap();
        for i in 0..n {
            log.append(record(i)).await.unwrap();
        }
        log.close().await;
        (dir, path)
    }

    #[tokio::test]
    async fn empty_file_verifies_with_zero_records() {
        let (_dir, path) = ledger(0).await;
        let v = verify(&path).unwrap();
        assert_eq!(v.records, 0);
        assert_eq!(v.head, chain::GENESIS_HASH);
    }

    #[tokio::test]
    async fn every_single_byte_change_is_detected() {
        let (_dir, path) = ledger(3).await;
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(verify(&path).unwrap().records, 3);
        let mutated = path.with_extension("mutated");
        // Each position gets a few replacements: a neighbour, a quote, a newline, a digit.
        for at in 0..bytes.len() {
            for replacement in [bytes[at] ^ 1, b'"', b'\n', b'7', b' '] {
                if replacement == bytes[at] {
                    continue;
                }
                let mut changed = bytes.clone();
                changed[at] = replacement;
                std::fs::write(&mutated, &changed).unwrap();
                let result = verify(&mutated);
                assert!(
                    matches!(
                        result,
                        Err(VerifyError::Broken { .. } | VerifyError::Torn { .. })
                    ),
                    "byte {at} -> {replacement:#x} accepted: {result:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn messages_name_the_line() {
        let (_dir, path) = ledger(3).await;
        let bytes = std::fs::read(&path).unwrap();
        let mut no_newline = bytes.clone();
        no_newline.pop();
        std::fs::write(&path, &no_newline).unwrap();
        assert_eq!(
            verify(&path).unwrap_err().to_string(),
            "line 3: torn last line (no newline or unparsable): a write that never completed"
        );

        // Swap lines 2 and 3: line 2 now links to line 2's original hash.
        let text = String::from_utf8(bytes).unwrap();
        let l: Vec<&str> = text.lines().collect();
        std::fs::write(&path, format!("{}\n{}\n{}\n", l[0], l[2], l[1])).unwrap();
        assert_eq!(
            verify(&path).unwrap_err().to_string(),
            "line 2: prev_hash does not match line 1's hash"
        );
    }

    #[tokio::test]
    async fn query_returns_matching_lines_oldest_first() {
        let (_dir, path) = ledger(7).await;
        let lines = query(&path, "S1").unwrap();
        let ids: Vec<String> = lines
            .iter()
            .map(|(_, l)| serde_json::from_str::<Value>(l).unwrap()["request_id"].to_string())
            .collect();
        assert_eq!(ids, ["\"req-1\"", "\"req-4\""]);
        let file = std::fs::read_to_string(&path).unwrap();
        for (number, line) in &lines {
            assert!(!line.ends_with('\n'));
            let at = usize::try_from(*number).unwrap() - 1;
            assert_eq!(
                file.lines().nth(at),
                Some(line.as_str()),
                "as written, at its line"
            );
        }
        assert!(query(&path, "nobody").unwrap().is_empty());
        // A substring of a subject is not a match.
        assert!(query(&path, "S").unwrap().is_empty());
    }

    #[tokio::test]
    async fn query_skips_recovery_records_and_torn_tail() {
        let (_dir, path) = ledger(3).await;
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend(b"{\"subjects\":[\"S0\"");
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(query(&path, "S0").unwrap().len(), 1);
        let (log, opened) = AuditLog::open(&path).unwrap();
        log.close().await;
        assert!(opened.recovered_torn_tail.is_some());
        assert_eq!(query(&path, "S0").unwrap().len(), 1);
    }
}
