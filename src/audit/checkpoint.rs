//! Signed checkpoints: what a plain hash chain cannot show, a cut tail or a rewritten history.
//!
//! Anyone who can write the audit file can drop its last records, or re-hash every record into
//! a new, consistent chain; both still verify. So every `every` records or `interval` (whichever
//! comes first) the writer, once a batch is durable, appends to the checkpoint file one line
//!
//! ```text
//! {"head":"<hash of record size>","sig":"<hex Ed25519 signature>","size":1000,"ts":"2026-12-01T12:45:20.123Z"}
//! ```
//!
//! fsyncs it, and logs `size`, `head`, `ts` (target `audit_checkpoint`) so the log pipeline
//! holds a second copy out of the ledger host's reach. Without the private key nobody can sign
//! a checkpoint for a rewritten chain, and a cut tail leaves a checkpoint pointing past the end.
//!
//! - `size` counts every record of the chain from its first file (the one whose first
//!   `prev_hash` is 64 zeros), across rotations: request, recovery and rotation records alike.
//!   Record `size` is the line at that 1-based position when the files are read oldest first.
//! - `sig` signs [`message`]: the ASCII bytes `need-to-know audit checkpoint v1\n`, then
//!   `size` in decimal, `head`, `ts`, each followed by `\n`. The prefix keeps the signature
//!   from meaning anything in another protocol that uses the same key.
//!
//! A checkpoint that cannot be written loses no record: the records are already durable and
//! their requests are answered. It is logged as an error, counted
//! (`need_to_know_audit_checkpoint_failures`), `/readyz` reports not ready until a checkpoint
//! succeeds again (so a load balancer drains the replica), and the next batch or tick retries.
//! A 503 would turn a durable record of a disclosure into a response that says none happened.
//! A rotation is the exception: it is refused unless the old file's end is checkpointed first,
//! since that checkpoint is how a restart counts the records of the files before.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::chain::{self, Line};
use super::error::Error;
use super::files::{self, parent_dir};
use super::head::{ChainHead, Witness};
use super::queue::Stats;
use super::record::now_rfc3339;

mod key;
pub mod note;
mod verify;

pub use key::{generate, KeyError, PublicKey, SigningKey};
pub use verify::{verify, CheckpointError, Witnessed};

/// The domain-separation prefix of every signed message.
pub const DOMAIN: &[u8] = b"need-to-know audit checkpoint v1\n";

/// `[audit] checkpoint_*` in the config.
#[derive(Debug, Clone)]
pub struct Config {
    /// The Ed25519 private key (PKCS#8).
    pub key: PathBuf,
    /// The checkpoint file, `<audit path>.checkpoints` by default.
    pub path: PathBuf,
    /// Records between checkpoints.
    pub every: u64,
    /// Longest time a durable record waits for its checkpoint.
    pub interval: Duration,
}

/// One line of the checkpoint file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub size: u64,
    pub head: String,
    pub ts: String,
    /// Lower-case hex of the 64-byte signature of [`message`].
    pub sig: String,
}

/// The bytes a checkpoint's signature covers.
pub fn message(size: u64, head: &str, ts: &str) -> Vec<u8> {
    let mut out = DOMAIN.to_vec();
    out.extend_from_slice(format!("{size}\n{head}\n{ts}\n").as_bytes());
    out
}

// === impl Checkpoint ===

impl Checkpoint {
    /// Signs `size` and `head` at the current time.
    pub fn sign(key: &SigningKey, size: u64, head: &str) -> Checkpoint {
        let ts = now_rfc3339();
        let sig = hex::encode(key.sign(&message(size, head, &ts)));
        Checkpoint {
            size,
            head: head.to_owned(),
            ts,
            sig,
        }
    }

    /// Parses one line (without its newline) and checks the shape of every value, so that
    /// [`message`] of a parsed checkpoint is unambiguous (no newline can hide in a value).
    ///
    /// # Errors
    ///
    /// What is wrong, for a message naming the line.
    pub fn parse(line: &[u8]) -> Result<Checkpoint, String> {
        let c: Checkpoint =
            serde_json::from_slice(line).map_err(|e| format!("not a checkpoint ({e})"))?;
        if c.size == 0 {
            return Err("size 0: a checkpoint witnesses at least one record".into());
        }
        if !is_hex(&c.head, 64) {
            return Err("head is not 64 lower-case hex digits".into());
        }
        if !is_hex(&c.sig, 128) {
            return Err("sig is not 128 lower-case hex digits".into());
        }
        if humantime::parse_rfc3339(&c.ts).is_err() {
            return Err("ts is not an RFC 3339 UTC time".into());
        }
        Ok(c)
    }

    /// True when `sig` is `key`'s signature of this checkpoint's values.
    pub fn signed_by(&self, key: &PublicKey) -> bool {
        match hex::decode(&self.sig) {
            Ok(sig) => key.verifies(&message(self.size, &self.head, &self.ts), &sig),
            Err(_) => false,
        }
    }

    /// The line as written: RFC 8785 (keys sorted) and a newline.
    fn to_line(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = serde_json_canonicalizer::to_vec(self)?;
        out.push(b'\n');
        Ok(out)
    }
}

fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The writer's side: owns the checkpoint file, decides when the next one is due.
pub(super) struct Checkpointer {
    key: SigningKey,
    path: PathBuf,
    every: u64,
    /// `None` after a failure until the next attempt reopens it.
    file: Option<File>,
    /// Length of the file up to its last whole checkpoint; a failed write is cut back to it.
    len: u64,
    /// Records of the chain in the files before the current one.
    base: u64,
    /// `size` of the last checkpoint written (0: none yet).
    witnessed: u64,
    stats: Arc<Stats>,
}

// === impl Checkpointer ===

impl Checkpointer {
    /// Opens (creating) the checkpoint file and finds where the chain stands, from the last
    /// checkpoint and the ledger at `ledger` as `recover` left it (`at`, in a file that is
    /// `regular` or a device). A torn last checkpoint line (a crash mid-write) is cut off.
    ///
    /// # Errors
    ///
    /// [`Error::Checkpoint`] when the key cannot be used, the file is damaged before its tail,
    /// a first checkpoint cannot count the rotated files before the ledger (one is missing),
    /// or the last checkpoint is not in the ledger (the file was replaced, cut or rewritten
    /// while the gateway was down): the gateway refuses to start rather than sign a chain that
    /// contradicts its own witness.
    pub(super) fn open(
        config: &Config,
        ledger: &Path,
        regular: bool,
        at: &ChainHead,
        stats: Arc<Stats>,
    ) -> Result<Checkpointer, Error> {
        let problem = |m: String| Error::Checkpoint(m);
        let key = SigningKey::load(&config.key).map_err(|e| problem(e.to_string()))?;
        if config.every == 0 {
            return Err(problem("checkpoint_every must be at least 1".into()));
        }
        if !regular {
            return Err(problem(
                "checkpoints need the audit path to be a regular file".into(),
            ));
        }
        let (len, last) = read_tail(&config.path)?;
        let (base, witnessed) = match &last {
            // The first checkpoint of this chain: count what came before from the files.
            None => (records_before(ledger)?, 0),
            Some(c) => (locate(ledger, c)?, c.size),
        };
        let mut options = OpenOptions::new();
        options.append(true).create(true);
        let file = options.open(&config.path).map_err(Error::io("open"))?;
        tracing::info!(
            witnessed,
            records = base + at.records,
            "audit checkpoints continue"
        );
        Ok(Checkpointer {
            key,
            path: config.path.clone(),
            every: config.every,
            file: Some(file),
            len,
            base,
            witnessed,
            stats,
        })
    }

    /// Records of the whole chain, across rotations, as of `now`.
    fn size(&self, now: &ChainHead) -> u64 {
        self.base + now.records
    }

    fn checkpoint(&mut self, now: &ChainHead) -> io::Result<()> {
        let size = self.size(now);
        let c = Checkpoint::sign(&self.key, size, &now.head);
        match self.write(&c) {
            Ok(()) => {
                self.witnessed = size;
                self.stats.checkpoints.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .checkpoint_failing
                    .store(false, Ordering::Relaxed);
                tracing::info!(
                    target: "audit_checkpoint",
                    size,
                    head = c.head.as_str(),
                    ts = c.ts.as_str(),
                    "audit checkpoint"
                );
                Ok(())
            }
            Err(error) => {
                self.stats
                    .checkpoint_failures
                    .fetch_add(1, Ordering::Relaxed);
                self.stats.checkpoint_failing.store(true, Ordering::Relaxed);
                tracing::error!(
                    size,
                    %error,
                    "audit checkpoint not written; the records are durable, the next batch retries"
                );
                Err(error)
            }
        }
    }

    fn write(&mut self, c: &Checkpoint) -> io::Result<()> {
        let line = c.to_line().map_err(io::Error::other)?;
        if self.file.is_none() {
            // A failed write may have left part of a line: cut back to the last whole one, so
            // the next checkpoint never follows garbage.
            files::truncate(&self.path, self.len)?;
            self.file = Some(files::open_append(&self.path)?);
        }
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("checkpoint file not open"))?;
        let result = files::write_and_sync(file, &line);
        match result {
            Ok(()) => {
                self.len += line.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Never reuse a descriptor whose fsync failed (see writer.rs).
                self.file = None;
                Err(e)
            }
        }
    }
}

// === impl Witness for Checkpointer ===

impl Witness for Checkpointer {
    /// After a durable batch: a checkpoint when `every` records are unwitnessed.
    fn after_batch(&mut self, now: &ChainHead) {
        if self.size(now) - self.witnessed >= self.every {
            let _ = self.checkpoint(now);
        }
    }

    /// On a tick, on close and before a rotation: a checkpoint when any record is unwitnessed.
    ///
    /// # Errors
    ///
    /// The write failed (already logged and counted).
    fn flush(&mut self, now: &ChainHead) -> io::Result<()> {
        if self.size(now) > self.witnessed {
            return self.checkpoint(now);
        }
        Ok(())
    }

    /// The rotation moved `records` records into an archived file.
    fn rotated(&mut self, records: u64) {
        self.base += records;
    }
}

/// The length of the whole part of the checkpoint file and its last checkpoint, creating the
/// file (and its directory) if missing and cutting a torn last line.
fn read_tail(path: &Path) -> Result<(u64, Option<Checkpoint>), Error> {
    let damaged = |line: u64, reason: String| {
        Error::Checkpoint(format!("{} line {line}: {reason}", path.display()))
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let dir = parent_dir(path);
            fs::create_dir_all(&dir).map_err(Error::io("create the directory of"))?;
            return Ok((0, None));
        }
        Err(e) => return Err(Error::io("open")(e)),
    };
    let mut r = BufReader::new(file);
    let mut buf = Vec::new();
    let (mut len, mut last, mut line) = (0u64, None, 0u64);
    loop {
        let kind = chain::read_line(&mut r, &mut buf).map_err(Error::io("read"))?;
        line += 1;
        let torn = match kind {
            Line::Eof => return Ok((len, last)),
            Line::TooLong => return Err(damaged(line, "line too long".into())),
            // Each checkpoint is one write ending in its newline, so only a crash mid-write
            // leaves a line without one; a whole line that does not parse is damage.
            Line::Unterminated => true,
            Line::Whole => {
                let c = Checkpoint::parse(&buf).map_err(|reason| damaged(line, reason))?;
                len += buf.len() as u64 + 1;
                last = Some(c);
                false
            }
        };
        if torn {
            tracing::warn!(line, "cutting a torn last line from the checkpoint file");
            files::truncate(path, len).map_err(Error::io("repair"))?;
            return Ok((len, last));
        }
    }
}

/// Records of the chain in the files before `ledger`, for checkpoints turned on after a
/// rotation: each rotation record states the previous file's name and record count, back to
/// the file that starts at 64 zeros. Every one of those files must still be beside the ledger
/// under its rotated name; the counts are taken as stated (a wrong one shows at verify, where
/// no checkpoint would match).
fn records_before(ledger: &Path) -> Result<u64, Error> {
    let dir = parent_dir(ledger);
    let mut total = 0u64;
    let mut file = ledger.to_path_buf();
    // Bounded: a rotation record naming its own file (or a cycle) must not loop forever.
    for _ in 0..100_000 {
        let first = super::verify::first_record(&file).map_err(|e| {
            Error::Checkpoint(format!(
                "cannot count the records before {}: {} ({e})",
                ledger.display(),
                file.display()
            ))
        })?;
        let Some(c) = first.as_ref().and_then(chain::continuation) else {
            return Ok(total);
        };
        total = total.saturating_add(c.previous_records);
        // A bare file name, as rotation writes it: never a path out of the directory.
        if Path::new(&c.previous_file).file_name() != Some(c.previous_file.as_ref()) {
            return Err(Error::Checkpoint(format!(
                "{} names {:?} as the file before it, which is not a file name",
                file.display(),
                c.previous_file
            )));
        }
        file = dir.join(&c.previous_file);
    }
    Err(Error::Checkpoint(format!(
        "cannot count the records before {}: its rotation records loop",
        ledger.display()
    )))
}

/// The first record's `prev_hash`, or `None` for an empty ledger.
fn first_link(path: &Path) -> io::Result<Option<String>> {
    let mut r = BufReader::new(File::open(path)?);
    let mut buf = Vec::new();
    if !matches!(chain::read_line(&mut r, &mut buf)?, Line::Whole) {
        return Ok(None);
    }
    Ok(serde_json::from_slice::<Link>(&buf)
        .ok()
        .map(|l| l.prev_hash))
}

/// The two chain fields of a record; the rest is skipped unparsed.
#[derive(Deserialize)]
struct Link {
    hash: String,
    prev_hash: String,
}

/// Records of the chain before the current file, from where `last` sits in it: at line `i`
/// of the file, there are `last.size - i` before; or, when the file's first record links to
/// `last.head` (the rotation after that checkpoint), `last.size`.
fn locate(ledger: &Path, last: &Checkpoint) -> Result<u64, Error> {
    let mut r = BufReader::new(File::open(ledger).map_err(Error::io("open"))?);
    let mut buf = Vec::new();
    let mut line = 0u64;
    loop {
        if !matches!(
            chain::read_line(&mut r, &mut buf).map_err(Error::io("read"))?,
            Line::Whole
        ) {
            break;
        }
        line += 1;
        let Ok(link) = serde_json::from_slice::<Link>(&buf) else {
            continue;
        };
        if line == 1 && link.prev_hash == last.head {
            return Ok(last.size);
        }
        if link.hash == last.head && line <= last.size {
            return Ok(last.size - line);
        }
    }
    Err(Error::Checkpoint(format!(
        "the last checkpoint (record {}, head {}) is not in {}: the audit file was cut, \
         replaced or rewritten; run `audit verify` with --checkpoints",
        last.size,
        last.head,
        ledger.display()
    )))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests;
