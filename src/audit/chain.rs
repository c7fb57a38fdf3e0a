//! The hash chain: the one implementation of hashing, sealing and checking a line.
//!
//! The writer seals, recovery at open and `audit verify` check, all through this file, so the
//! bytes we write and the bytes we accept can never drift apart.

use std::io::{self, BufRead, Read};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::canonical;

/// `prev_hash` of the first record of a file.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The longest line we read, newline excluded. Records are a few KB; the cap keeps a damaged or
/// hostile file (gigabytes without a newline) from being read into memory whole. The writer
/// refuses records that would exceed it, so every line we write can be read back.
pub(crate) const MAX_LINE: usize = 16 * 1024 * 1024;

/// Why a line does not extend the chain.
#[derive(Debug)]
pub(crate) enum Fault {
    /// Not JSON at all: at the end of the file this is a torn write, before it damage.
    Unparsable(String),
    /// Valid JSON that is not a correctly chained record in canonical form.
    Broken(String),
}

/// The whole, valid part of a file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scanned {
    pub records: u64,
    /// The last record's `hash`, or [`GENESIS_HASH`].
    pub head: String,
    /// Bytes up to the end of the last valid line.
    pub len: u64,
    /// What the first record says this file continues, when it is a rotation record.
    pub continues_from: Option<Continuation>,
}

/// What a rotation record (the first record of a file made by `AuditLog::rotate`) says about
/// the file before it. The link is only as good as the previous file: [`verify_files`] checks
/// it against that file's last hash and record count.
///
/// [`verify_files`]: super::verify_files
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continuation {
    /// The previous file's last `hash`, which this file's first record links to.
    pub prev_hash: String,
    /// The previous file's name when it was rotated (it may have been renamed since, so
    /// nothing checks it; it tells an operator which archive to look for).
    pub previous_file: String,
    /// How many records the previous file held when it was rotated.
    pub previous_records: u64,
}

/// `event` of the record that starts a rotated-to file.
pub(crate) const ROTATION_EVENT: &str = "rotation";

#[derive(Debug)]
pub(crate) enum ScanError {
    Io(io::Error),
    Broken {
        line: u64,
        reason: String,
    },
    /// The last line has no newline or is not JSON; `good` is everything before it.
    Torn {
        line: u64,
        good: Scanned,
    },
}

/// One line as read, before parsing.
pub(crate) enum Line {
    Eof,
    /// Newline-terminated; the buffer holds the content without the newline.
    Whole,
    /// Bytes at the end of the file with no newline after them.
    Unterminated,
    TooLong,
}

impl From<io::Error> for ScanError {
    fn from(e: io::Error) -> Self {
        ScanError::Io(e)
    }
}

/// Lower-case hex SHA-256 of the JCS serialisation of `unhashed`, a record without its `hash`
/// key (but with `prev_hash`). This is the whole chain contract: what anyone checking the
/// ledger without our code reproduces.
pub(crate) fn hash_of(unhashed: &Map<String, Value>) -> Result<String, serde_json::Error> {
    let mut bytes = Vec::with_capacity(1024);
    canonical::write_object(&mut bytes, unhashed, |_, _| {})?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// Links `record` to `prev`, hashes it and appends its line (JCS + `'\n'`) to `out`.
/// Returns the new head. On error `out` is left as it was.
pub(crate) fn seal(
    record: Map<String, Value>,
    prev: &str,
    out: &mut Vec<u8>,
) -> Result<String, serde_json::Error> {
    Unsealed::new(record)?.seal(prev, out)
}

/// A record in its line's JCS form before it is linked: `prev_hash` and `hash` hold 64-zero
/// placeholders, which [`Unsealed::seal`] overwrites in place.
///
/// Serialising is the costly part of sealing, and it does not depend on the chain, so it is
/// done here, in the appending request's own task; the one writer then only links and hashes.
/// Both hashes are 64 hex digits, so the placeholders have the final length, and the bytes
/// hashed (the record without its `hash` member) are the line with that member cut out.
#[derive(Debug)]
pub(crate) struct Unsealed {
    bytes: Vec<u8>,
    /// Where the value of `prev_hash` starts.
    prev_at: usize,
    /// Where the value of `hash` starts.
    hash_at: usize,
    /// The bytes of the `hash` member and one comma next to it: what the hash does not cover.
    cut: std::ops::Range<usize>,
    ts: String,
}

impl Unsealed {
    /// Serialises `record` (any `hash` or `prev_hash` in it is replaced).
    pub(crate) fn new(mut record: Map<String, Value>) -> Result<Unsealed, serde_json::Error> {
        let placeholder = Value::String(GENESIS_HASH.to_owned());
        record.insert("hash".into(), placeholder.clone());
        record.insert("prev_hash".into(), placeholder);
        let ts = record
            .get("ts")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut bytes = Vec::with_capacity(1024);
        // Member starts in order, so the member after `hash` (there is always `prev_hash`)
        // bounds it.
        let mut starts: Vec<usize> = Vec::with_capacity(record.len());
        let (mut prev_at, mut hash_member) = (None, None);
        canonical::write_object(&mut bytes, &record, |key, at| {
            if key == "hash" {
                hash_member = Some(starts.len());
            }
            if key == "prev_hash" {
                prev_at = Some(at + "\"prev_hash\":\"".len());
            }
            starts.push(at);
        })?;
        let (Some(prev_at), Some(index)) = (prev_at, hash_member) else {
            return Err(encode_error("record lost its chain fields"));
        };
        let start = starts[index];
        let hash_at = start + "\"hash\":\"".len();
        // `"hash":"<64>",` when a member follows (always: `prev_hash` sorts after it).
        let cut = match starts.get(index + 1) {
            Some(next) => start..*next,
            None => start - 1..bytes.len() - 1,
        };
        if bytes.len() > MAX_LINE {
            return Err(encode_error("record longer than the 16 MiB line limit"));
        }
        Ok(Unsealed {
            bytes,
            prev_at,
            hash_at,
            cut,
            ts,
        })
    }

    /// The record's `ts`, for a ledger that stores it beside the line.
    pub(crate) fn ts(&self) -> &str {
        &self.ts
    }

    /// Links the record to `prev`, hashes it and appends its line (with `'\n'`) to `out`.
    /// Returns the record's hash, the new head.
    pub(crate) fn seal(
        mut self,
        prev: &str,
        out: &mut Vec<u8>,
    ) -> Result<String, serde_json::Error> {
        if prev.len() != GENESIS_HASH.len() || !prev.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(encode_error("the chain head is not a 64-digit hash"));
        }
        self.bytes[self.prev_at..self.prev_at + prev.len()].copy_from_slice(prev.as_bytes());
        let mut hasher = Sha256::new();
        hasher.update(&self.bytes[..self.cut.start]);
        hasher.update(&self.bytes[self.cut.end..]);
        let hash = hex::encode(hasher.finalize());
        self.bytes[self.hash_at..self.hash_at + hash.len()].copy_from_slice(hash.as_bytes());
        out.extend_from_slice(&self.bytes);
        out.push(b'\n');
        Ok(hash)
    }
}

fn encode_error(message: &str) -> serde_json::Error {
    serde_json::Error::io(io::Error::other(message.to_owned()))
}

/// The continuation a record states, if it is a well-formed rotation record: `event` is
/// `"rotation"`, `prev_hash` is 64 lower-case hex digits, and `previous_file` and
/// `previous_records` are present with their types. Anything less is not a rotation record, so
/// a first line cannot claim a non-zero `prev_hash` by setting `event` alone.
pub(crate) fn continuation(record: &Map<String, Value>) -> Option<Continuation> {
    if record.get("event").and_then(Value::as_str) != Some(ROTATION_EVENT) {
        return None;
    }
    let prev_hash = record.get("prev_hash").and_then(Value::as_str)?;
    let is_hash = prev_hash.len() == 64
        && prev_hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !is_hash {
        return None;
    }
    Some(Continuation {
        prev_hash: prev_hash.to_owned(),
        previous_file: record.get("previous_file")?.as_str()?.to_owned(),
        previous_records: record.get("previous_records")?.as_u64()?,
    })
}

/// Checks that `content` (one line, without its newline) is a record linked to `prev`, whose
/// `hash` matches, written in exactly its JCS form, so that any edit, even of white space or an
/// escape that leaves the parsed value unchanged, is caught. Returns the record's `hash` and,
/// for line 1, what it continues.
///
/// Line 1 links to `prev` ([`GENESIS_HASH`]) unless it is a rotation record: then its
/// `prev_hash` is the previous file's last hash, which only [`verify_files`] can check, so
/// here it is accepted and handed back. `line` (1-based) also names the previous line in a
/// message.
///
/// [`verify_files`]: super::verify_files
pub(crate) fn check_line(
    content: &[u8],
    prev: &str,
    line: u64,
) -> Result<(String, Option<Continuation>), Fault> {
    let value: Value =
        serde_json::from_slice(content).map_err(|e| Fault::Unparsable(e.to_string()))?;
    let canonical = canonical::to_vec(&value)
        .map_err(|e| Fault::Broken(format!("cannot be canonicalised: {e}")))?;
    let Value::Object(mut record) = value else {
        return Err(Fault::Broken("not a JSON object".into()));
    };
    let Some(Value::String(hash)) = record.remove("hash") else {
        return Err(Fault::Broken("no \"hash\" string".into()));
    };
    let continues = if line <= 1 {
        continuation(&record)
    } else {
        None
    };
    match record.get("prev_hash") {
        Some(Value::String(p)) if p == prev || continues.is_some() => {}
        Some(Value::String(_)) if line <= 1 => {
            return Err(Fault::Broken(
                "prev_hash of the first record is not 64 zeros, and it is not a rotation record"
                    .into(),
            ))
        }
        Some(Value::String(_)) => {
            return Err(Fault::Broken(format!(
                "prev_hash does not match line {}'s hash",
                line - 1
            )))
        }
        _ => return Err(Fault::Broken("no \"prev_hash\" string".into())),
    }
    let computed =
        hash_of(&record).map_err(|e| Fault::Broken(format!("cannot be canonicalised: {e}")))?;
    if computed != hash {
        return Err(Fault::Broken("hash does not match the record".into()));
    }
    if canonical != content {
        return Err(Fault::Broken(
            "not in canonical (RFC 8785) form: the bytes were edited".into(),
        ));
    }
    Ok((hash, continues))
}

/// Reads one line into `buf` (cleared first), at most [`MAX_LINE`] bytes plus the newline.
pub(crate) fn read_line<R: BufRead>(r: &mut R, buf: &mut Vec<u8>) -> io::Result<Line> {
    buf.clear();
    // Content plus newline fits in MAX_LINE + 1; filling that without a newline means too long.
    let cap = MAX_LINE + 1;
    let n = r.by_ref().take(cap as u64).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(Line::Eof);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        return Ok(Line::Whole);
    }
    if n >= cap {
        return Ok(Line::TooLong);
    }
    Ok(Line::Unterminated)
}

/// Checks every line of a ledger from the start. A torn last line (no newline, or not JSON) is
/// reported as [`ScanError::Torn`] with the valid part before it, so that `verify` can report it
/// and `open` can move it aside; anything else wrong is [`ScanError::Broken`].
pub(crate) fn scan<R: BufRead>(mut r: R) -> Result<Scanned, ScanError> {
    let mut good = Scanned {
        records: 0,
        head: GENESIS_HASH.to_owned(),
        len: 0,
        continues_from: None,
    };
    let mut buf = Vec::new();
    let mut line = 0u64;
    loop {
        let kind = read_line(&mut r, &mut buf)?;
        line += 1;
        match kind {
            Line::Eof => return Ok(good),
            Line::Unterminated => return Err(ScanError::Torn { line, good }),
            Line::TooLong => {
                let reason = format!("longer than the {} MiB line limit", MAX_LINE >> 20);
                return Err(ScanError::Broken { line, reason });
            }
            Line::Whole => {}
        }
        match check_line(&buf, &good.head, line) {
            Ok((hash, continues)) => {
                if line == 1 {
                    good.continues_from = continues;
                }
                good.records += 1;
                good.head = hash;
                good.len += buf.len() as u64 + 1;
            }
            Err(Fault::Unparsable(_)) if r.fill_buf()?.is_empty() => {
                return Err(ScanError::Torn { line, good })
            }
            Err(Fault::Unparsable(e)) => {
                let reason = format!("not valid JSON ({e})");
                return Err(ScanError::Broken { line, reason });
            }
            Err(Fault::Broken(reason)) => return Err(ScanError::Broken { line, reason }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn sealed(n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut head = GENESIS_HASH.to_owned();
        for i in 0..n {
            let mut m = Map::new();
            m.insert("n".into(), Value::from(i));
            m.insert("b".into(), Value::from("caf\u{e9} \"q\"\n"));
            head = seal(m, &head, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn hash_is_sha256_of_jcs_without_hash_key() {
        let out = sealed(1);
        let line = std::str::from_utf8(&out).unwrap().trim_end();
        let mut v: Map<String, Value> = serde_json::from_str(line).unwrap();
        let hash = v.remove("hash").unwrap();
        // Keys sorted, no white space: recompute by hand from the documented form.
        let text = format!(r#"{{"b":"café \"q\"\n","n":0,"prev_hash":"{GENESIS_HASH}"}}"#);
        assert_eq!(serde_json_canonicalizer::to_string(&v).unwrap(), text);
        assert_eq!(hash, hex::encode(Sha256::digest(text.as_bytes())));
    }

    #[test]
    fn scan_accepts_what_seal_writes() {
        let out = sealed(4);
        let s = scan(&out[..]).unwrap();
        assert_eq!(s.records, 4);
        assert_eq!(s.len, out.len() as u64);
        assert_eq!(scan(&b""[..]).unwrap().head, GENESIS_HASH);
    }

    #[test]
    fn non_canonical_spacing_is_broken() {
        let out = sealed(1);
        let text = std::str::from_utf8(&out).unwrap().replacen(":", ": ", 1);
        let e = scan(text.as_bytes()).unwrap_err();
        assert!(
            matches!(e, ScanError::Broken { line: 1, ref reason } if reason.contains("canonical"))
        );
    }

    #[test]
    fn wrong_link_names_previous_line() {
        let mut out = sealed(2);
        out.extend(sealed(1)); // third line links to zeros, not line 2
        let e = scan(&out[..]).unwrap_err();
        assert!(
            matches!(e, ScanError::Broken { line: 3, ref reason } if reason == "prev_hash does not match line 2's hash"),
            "{e:?}"
        );
    }

    #[test]
    fn unparsable_middle_is_broken_and_last_is_torn() {
        let out = sealed(2);
        let mut bad = b"{not json\n".to_vec();
        bad.extend(&out);
        assert!(matches!(
            scan(&bad[..]),
            Err(ScanError::Broken { line: 1, .. })
        ));
        let mut torn = out.clone();
        torn.extend(b"{not json\n");
        let e = scan(&torn[..]).unwrap_err();
        assert!(matches!(e, ScanError::Torn { line: 3, ref good } if good.len == out.len() as u64));
    }

    #[test]
    fn overlong_line_is_refused_without_reading_it_whole() {
        let long = vec![b' '; MAX_LINE + 10];
        assert!(matches!(
            scan(&long[..]),
            Err(ScanError::Broken { line: 1, .. })
        ));
        let mut m = Map::new();
        m.insert("x".into(), Value::from(" ".repeat(MAX_LINE)));
        let mut out = b"kept".to_vec();
        assert!(seal(m, GENESIS_HASH, &mut out).is_err());
        assert_eq!(out, b"kept");
    }
}
