//! The durable, hash-chained disclosure ledger: append, verify, query.
//!
//! Every disclosure decision becomes one JSON line in `audit.path` before the response leaves.
//! Each line carries `prev_hash` (the previous line's `hash`, 64 zeros for the first line) and
//! `hash`, the SHA-256 of the line without its `hash` key in RFC 8785 (JCS) form, so anyone can
//! check the file with a JCS library and `sha256sum`, without our code.
//!
//! # Layout
//!
//! - [`chain`]: hashing, sealing and the per-line check; the one implementation shared by the
//!   writer, recovery at open and [`verify`].
//! - [`recover`]: opening the file at start: create, continue the chain, move a torn tail aside.
//! - [`rotate`]: moving the file aside and continuing the chain in a new one.
//! - [`writer`]: the single writer thread with group commit.
//! - [`verify`](mod@verify): the `audit verify` and `audit query` commands' logic, for one file
//!   or a sequence of rotated files.
//! - [`checkpoint`]: signed checkpoints of the chain's size and head, for what a chain alone
//!   cannot show (a cut tail, a rewritten history); written by the writer, checked by verify.
//! - [`postgres`]: the second backend, one chain per replica in one PostgreSQL table, for
//!   several replicas; the same queue, chain and promises (`[audit] backend = "postgres"`).
//!
//! Rotation keeps one chain across files: the first record of a file made by
//! [`AuditLog::rotate`] is a rotation record (`"event": "rotation"`) whose `prev_hash` is the
//! previous file's last hash, and which states that file's name and record count. It is the
//! only record allowed to start a file with a `prev_hash` other than 64 zeros.
//!
//! Why one writer thread: the chain is a sequence, so exactly one owner may extend it or two
//! concurrent requests would both link to the same head and fork it. Blocking file I/O and
//! `fdatasync` run on a dedicated std thread so they never stall the async runtime, and records
//! queued while one fsync is in flight share the next one (group commit).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};

pub mod canonical;
mod chain;
pub mod checkpoint;
pub mod postgres;
mod recover;
mod rotate;
mod verify;
mod writer;

pub use chain::{Continuation, GENESIS_HASH};
pub use verify::{query, verify, verify_files, verify_files_with, Verified, VerifyError};

/// How many appends may wait for the writer before `append` itself waits: back-pressure, so a
/// stalled disk turns into slow requests rather than unbounded memory.
const QUEUE_DEPTH: usize = 4096;

/// The most bytes of a request path one record holds. A target may run to the 64 KiB of a
/// request head, and a refusal is recorded before anyone is identified: unbounded, every
/// 401 could write that much to the ledger's disk.
pub const MAX_PATH_BYTES: usize = 512;

/// The most bytes of a method one record holds: an extension method is a token of any length.
pub const MAX_METHOD_BYTES: usize = 32;

/// Ends a cut `path` or `method`, within its bound.
const CUT_MARK: char = '…';

/// One disclosure decision, before chaining; the pipeline fills it.
///
/// Serialised with `Option`s as `null` (not omitted) so every request record has the same keys
/// and a reader can tell "no recipient" from "field forgotten".
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Record {
    /// RFC 3339 UTC with milliseconds, as [`now_rfc3339`] makes it.
    pub ts: String,
    pub request_id: String,
    /// `None` for an unauthenticated request.
    pub recipient: Option<String>,
    pub recipient_type: Option<String>,
    pub method: String,
    /// The route template (`/jobs/{job_id}`); `None` when no route matched.
    pub route: Option<String>,
    pub path: String,
    pub status: u16,
    pub purpose: Option<String>,
    pub lawful_basis: Option<String>,
    /// The `when`/`refuse` reasons applied.
    pub reasons: Vec<String>,
    /// Data-subject ids, what `audit query --subject` searches.
    pub subjects: Vec<String>,
    pub disclosed: Vec<String>,
    pub withheld: Vec<String>,
    /// Extension fields (error code, rules generation, ...). A key here must not collide with a
    /// named field or with `prev_hash`/`hash`/`event`: `append` refuses such a record rather than
    /// let one value silently overwrite another in the chained line.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

// === impl Record ===

impl Record {
    /// Sets `path`, cut to [`MAX_PATH_BYTES`]: a longer one ends in `…` within the bound and
    /// the record says `"path_cut": true`.
    pub fn set_path(&mut self, path: &str) {
        self.path = self.bounded("path_cut", path, MAX_PATH_BYTES);
    }

    /// Sets `method`, cut to [`MAX_METHOD_BYTES`] as [`Record::set_path`] cuts a path
    /// (`"method_cut": true`).
    pub fn set_method(&mut self, method: &str) {
        self.method = self.bounded("method_cut", method, MAX_METHOD_BYTES);
    }

    /// `text` whole if it fits in `max` bytes, else its longest prefix that ends on a
    /// character boundary and leaves room for the mark; `flag` in `extra` says which.
    fn bounded(&mut self, flag: &str, text: &str, max: usize) -> String {
        if text.len() <= max {
            self.extra.remove(flag);
            return text.to_string();
        }
        let mut end = max - CUT_MARK.len_utf8();
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        self.extra.insert(flag.into(), Value::Bool(true));
        let mut cut = String::with_capacity(end + CUT_MARK.len_utf8());
        cut.push_str(&text[..end]);
        cut.push(CUT_MARK);
        cut
    }
}

/// Keys `Record::extra` may not use: the named fields, the chain fields, and `event`, which marks
/// the ledger's own records (recovery, rotation) that carry no request.
const RESERVED_KEYS: &[&str] = &[
    "ts",
    "request_id",
    "recipient",
    "recipient_type",
    "method",
    "route",
    "path",
    "status",
    "purpose",
    "lawful_basis",
    "reasons",
    "subjects",
    "disclosed",
    "withheld",
    "prev_hash",
    "hash",
    "event",
];

/// The current time in the `ts` format: RFC 3339, UTC, milliseconds
/// (`2026-12-01T12:45:20.123Z`), so lines sort and compare as text.
pub fn now_rfc3339() -> String {
    rfc3339(std::time::SystemTime::now())
}

/// `time` in the `ts` format.
pub fn rfc3339(time: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

/// Errors of the audit ledger. Any of them on `append` means the record is not durable and the
/// response must not be sent (the pipeline answers 503).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot {op} audit file: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// Found at open: damage before the tail, which only tampering or a disk fault explains, so
    /// the gateway refuses to start rather than extend a chain nobody can verify.
    #[error("audit file damaged at line {line}: {reason}")]
    Damaged { line: u64, reason: String },
    /// The batch holding this record failed to write or fsync; the record was rolled back.
    /// Shared by every append of the batch, hence the `Arc`.
    #[error("audit record not durable: {0}")]
    NotDurable(#[source] Arc<io::Error>),
    #[error("cannot serialise audit record: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("audit record extension field {0:?} collides with a record field")]
    ReservedKey(String),
    /// `rotate` on a path that is not a regular file (a device): there is nothing to rename.
    #[error("audit path is not a regular file, so it cannot be rotated")]
    NotRegular,
    /// Found at open: `<path>.next`, the new file of an unfinished rotation, holds records
    /// beyond its rotation record. Nothing should have been acknowledged there, so the gateway
    /// will not guess which file is the ledger.
    #[error(
        "{} holds records of an unfinished rotation; check it and move it aside",
        file.display()
    )]
    PendingRotation { file: PathBuf },
    /// Checkpoints are configured but cannot be kept: a bad key, a damaged checkpoint file,
    /// a last checkpoint the ledger does not contain, or a rotation whose checkpoint failed.
    #[error("audit checkpoints: {0}")]
    Checkpoint(String),
    /// PostgreSQL could not be reached, migrated or read at start.
    #[error("audit ledger (PostgreSQL): {0}")]
    Postgres(String),
    /// The batch holding this record was not committed to PostgreSQL (down, failed, timed out).
    #[error("audit record not committed: {0}")]
    Unavailable(String),
    /// Another live replica holds this chain's lock: two writers would fork it.
    #[error(
        "audit chain {chain:?} is in use by another running replica; give each replica its own [audit.postgres] chain"
    )]
    ChainInUse { chain: String },
    /// Appending would fork or rewrite the chain; the ledger refuses every append from now on.
    #[error("audit chain refused: {0}")]
    Forked(String),
    #[error("not supported by this audit backend: {0}")]
    Unsupported(&'static str),
    #[error("audit log is closed")]
    Closed,
    #[error("audit writer has stopped")]
    WriterStopped,
}

impl Error {
    pub(crate) fn io(op: &'static str) -> impl FnOnce(io::Error) -> Error {
        move |source| Error::Io { op, source }
    }
}

/// Counters for metrics; the writer updates them, anyone may read them.
#[derive(Debug, Default)]
pub struct Stats {
    /// Records made durable by `append` (the recovery record written at open is not counted).
    pub records_written: AtomicU64,
    /// Successful group commits, i.e. fdatasyncs; `records_written / batches` is the batch size.
    pub batches: AtomicU64,
    /// Batches whose write or fsync failed (each failed every append waiting in it).
    pub failures: AtomicU64,
    /// Set by a backend that watches its store (PostgreSQL) while it cannot commit; `/readyz`
    /// reads it. Only meaningful when `probed` is set.
    pub unavailable: AtomicBool,
    /// The backend keeps `unavailable` current even without traffic.
    pub probed: AtomicBool,
    /// Signed checkpoints written.
    pub checkpoints: AtomicU64,
    /// Checkpoint writes that failed (the records were durable; the next batch retried).
    pub checkpoint_failures: AtomicU64,
    /// The last checkpoint write failed; `/readyz` reports it until one succeeds.
    pub checkpoint_failing: AtomicBool,
}

/// How the ledger is kept, beyond its path.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Signed checkpoints; off when `None`.
    pub checkpoints: Option<checkpoint::Config>,
}

/// What `open` found in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    /// Records in the file after open, including the recovery record if one was appended.
    pub records: u64,
    /// The chain head the next record links to: the last `hash`, or [`GENESIS_HASH`].
    pub head: String,
    /// The side file holding a torn last line that was moved aside, if there was one.
    pub recovered_torn_tail: Option<PathBuf>,
}

/// Handle to the durable ledger; cheap to clone, shared by all requests.
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

struct Inner {
    tx: mpsc::Sender<writer::Msg>,
    stats: Arc<Stats>,
    closed: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The PostgreSQL writer runs as a task instead of a thread.
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

// === impl AuditLog ===

impl AuditLog {
    /// Opens (creating if needed, with parent dirs) the JSONL file, recovers it, starts the
    /// writer.
    ///
    /// The whole file is read and checked so the chain continues from a head we verified. A torn
    /// last line (a write whose fsync never returned, so never acknowledged) is moved to
    /// `<path>.torn-<unix-millis>` and a recovery record says so. A path that is not a regular
    /// file (`/dev/full` in tests) is not read: a fresh chain starts, with a warning.
    ///
    /// # Errors
    ///
    /// [`Error::Damaged`] naming the 1-based line for damage before the tail; [`Error::Io`] when
    /// the file or its directory cannot be created, read, repaired or opened for append.
    pub fn open(path: &Path) -> Result<(AuditLog, Opened), Error> {
        Self::open_with(path, &Options::default())
    }

    /// [`AuditLog::open`], with checkpoints when `options` ask for them: the checkpoint file is
    /// opened after recovery, and a thread ticks the writer every `interval` so that a record
    /// never waits longer than that for its checkpoint, even when no other record follows.
    ///
    /// # Errors
    ///
    /// As [`AuditLog::open`], and [`Error::Checkpoint`] when checkpoints cannot be kept.
    pub fn open_with(path: &Path, options: &Options) -> Result<(AuditLog, Opened), Error> {
        let (state, opened) = recover::open(path)?;
        let stats = Arc::new(Stats::default());
        let checkpoints = match &options.checkpoints {
            Some(config) => Some(checkpoint::Checkpointer::open(
                config,
                &state,
                stats.clone(),
            )?),
            None => None,
        };
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        if let Some(config) = &options.checkpoints {
            writer::spawn_ticker(tx.downgrade(), config.interval)?;
        }
        let thread = writer::spawn(state, checkpoints, rx, stats.clone())?;
        let log = AuditLog {
            inner: Arc::new(Inner {
                tx,
                stats,
                closed: AtomicBool::new(false),
                thread: Mutex::new(Some(thread)),
                task: Mutex::new(None),
            }),
        };
        Ok((log, opened))
    }

    /// Opens the PostgreSQL ledger: connects, runs the migrations, takes this chain's lock,
    /// continues from its last committed row, and starts the writer task. `append` then
    /// resolves once the record's row is committed.
    ///
    /// # Errors
    ///
    /// [`Error::Postgres`] when the database cannot be reached or migrated,
    /// [`Error::ChainInUse`] when another live replica writes this chain, [`Error::Damaged`]
    /// when the chain's last row does not verify.
    pub async fn open_postgres(target: postgres::Target) -> Result<(AuditLog, Opened), Error> {
        let stats = Arc::new(Stats::default());
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let (task, opened) = postgres::open(target, rx, stats.clone()).await?;
        let log = AuditLog {
            inner: Arc::new(Inner {
                tx,
                stats,
                closed: AtomicBool::new(false),
                thread: Mutex::new(None),
                task: Mutex::new(Some(task)),
            }),
        };
        Ok((log, opened))
    }

    /// Chains and appends `record`; resolves only once it is on disk (fdatasync'd).
    ///
    /// If the future is dropped after the record was queued, the record may still be written;
    /// it is simply never acknowledged to anyone.
    ///
    /// # Errors
    ///
    /// [`Error::NotDurable`] when its batch failed to write or sync, [`Error::ReservedKey`] or
    /// [`Error::Encode`] for a record that cannot be chained, [`Error::Closed`] after `close`,
    /// [`Error::WriterStopped`] if the writer thread is gone.
    pub async fn append(&self, record: Record) -> Result<(), Error> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        // Serialised here, in the caller's task, so the writer thread only links and hashes.
        let record = chain::Unsealed::new(to_map(record)?)?;
        let (reply, done) = oneshot::channel();
        self.inner
            .tx
            .send(writer::Msg::Append(writer::Job { record, reply }))
            .await
            .map_err(|_| Error::WriterStopped)?;
        // A dropped reply sender means the writer exited (closed, or died) before our record.
        done.await.map_err(|_| Error::WriterStopped)?
    }

    /// Moves the file to `<path>.<UTC timestamp>` (`audit.jsonl.20261201T134501Z`, with `-1`...
    /// if taken) and continues the chain in a new file at `<path>`, whose first record is a
    /// rotation record linking to the old file's last hash. Returns the rotated file's path, to
    /// archive it.
    ///
    /// It goes through the writer like an append, so it is ordered with them: appends queued
    /// before it land in the old file, later ones in the new, and the chain never forks. The
    /// rotated file is complete and no longer written to when this returns.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when a file cannot be written or renamed (the old file stays the ledger,
    /// unless only the final directory sync failed), [`Error::NotRegular`] for a device,
    /// [`Error::Closed`] after `close`, [`Error::WriterStopped`] if the writer thread is gone.
    pub async fn rotate(&self) -> Result<PathBuf, Error> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let (reply, done) = oneshot::channel();
        self.inner
            .tx
            .send(writer::Msg::Rotate(reply))
            .await
            .map_err(|_| Error::WriterStopped)?;
        done.await.map_err(|_| Error::WriterStopped)?
    }

    /// The writer's counters, for metrics.
    pub fn stats(&self) -> Arc<Stats> {
        self.inner.stats.clone()
    }

    /// Writes nothing more, waits for in-flight records to be durable, stops the writer thread.
    ///
    /// Records queued before the call are committed; appends started after it get
    /// [`Error::Closed`] (or [`Error::WriterStopped`] if they raced past the check). Calling it
    /// twice is harmless.
    pub async fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        let (ack, acked) = oneshot::channel();
        if self.inner.tx.send(writer::Msg::Close(ack)).await.is_ok() {
            // Err means the writer is already gone; either way there is nothing left to wait on.
            let _ = acked.await;
        }
        let thread = match self.inner.thread.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        let task = match self.inner.task.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(task) = task {
            if task.await.is_err() {
                tracing::error!("audit writer task panicked");
            }
        }
        if let Some(thread) = thread {
            match tokio::task::spawn_blocking(move || thread.join()).await {
                Ok(Ok(())) => tracing::debug!("audit writer stopped"),
                Ok(Err(_)) => tracing::error!("audit writer thread panicked"),
                Err(error) => tracing::error!(%error, "cannot join audit writer thread"),
            }
        }
    }
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("stats", &self.inner.stats)
            .field("closed", &self.inner.closed)
            .finish_non_exhaustive()
    }
}

/// Turns a record into the JSON object that will be chained, refusing extension keys that would
/// overwrite a named field (serde's `flatten` would let the later one win silently).
fn to_map(record: Record) -> Result<Map<String, Value>, Error> {
    if let Some(key) = record
        .extra
        .keys()
        .find(|k| RESERVED_KEYS.contains(&k.as_str()))
    {
        return Err(Error::ReservedKey(key.clone()));
    }
    // Built by moving each field in, not through `serde_json::to_value`, which would clone
    // every string of the record (each disclosed and withheld path) once more per request.
    // The same keys and values as the derived `Serialize` gives: a test holds the two equal.
    // Destructured whole, so a new field is a compile error here until it is added.
    let Record {
        ts,
        request_id,
        recipient,
        recipient_type,
        method,
        route,
        path,
        status,
        purpose,
        lawful_basis,
        reasons,
        subjects,
        disclosed,
        withheld,
        extra,
    } = record;
    debug_assert!(
        path.len() <= MAX_PATH_BYTES && method.len() <= MAX_METHOD_BYTES,
        "a record's path and method are set through set_path and set_method"
    );
    let text = |v: Option<String>| v.map_or(Value::Null, Value::String);
    let list = |v: Vec<String>| Value::Array(v.into_iter().map(Value::String).collect());
    let mut map = extra;
    map.insert("ts".into(), Value::String(ts));
    map.insert("request_id".into(), Value::String(request_id));
    map.insert("recipient".into(), text(recipient));
    map.insert("recipient_type".into(), text(recipient_type));
    map.insert("method".into(), Value::String(method));
    map.insert("route".into(), text(route));
    map.insert("path".into(), Value::String(path));
    map.insert("status".into(), Value::from(status));
    map.insert("purpose".into(), text(purpose));
    map.insert("lawful_basis".into(), text(lawful_basis));
    map.insert("reasons".into(), list(reasons));
    map.insert("subjects".into(), list(subjects));
    map.insert("disclosed".into(), list(disclosed));
    map.insert("withheld".into(), list(withheld));
    Ok(map)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
pub(crate) mod tests {
    use super::*;

    /// A request record for subject `S{n % 3}`, distinct per `n`.
    pub(crate) fn record(n: usize) -> Record {
        Record {
            ts: now_rfc3339(),
            request_id: format!("req-{n}"),
            recipient: Some("acme-repairs".into()),
            recipient_type: Some("contractor".into()),
            method: "GET".into(),
            route: Some("/jobs/{job_id}".into()),
            path: format!("/jobs/J{n}"),
            status: 200,
            purpose: Some("repair".into()),
            lawful_basis: Some("contract".into()),
            reasons: vec![],
            subjects: vec![format!("S{}", n % 3)],
            disclosed: vec!["job.id".into(), "tenant.name".into()],
            withheld: vec!["tenant.phone".into()],
            extra: Map::new(),
        }
    }

    #[test]
    fn reserved_keys_cover_every_named_field() {
        let map = to_map(record(0)).unwrap();
        for key in map.keys() {
            assert!(RESERVED_KEYS.contains(&key.as_str()), "{key} not reserved");
        }
        assert_eq!(map.len() + 3, RESERVED_KEYS.len());
    }

    #[test]
    fn extension_fields_are_flattened_and_collisions_refused() {
        let mut r = record(1);
        r.extra
            .insert("error".into(), Value::from("upstream_timeout"));
        let map = to_map(r.clone()).unwrap();
        assert_eq!(map["error"], "upstream_timeout");
        assert_eq!(map["recipient_type"], "contractor");

        r.extra.insert("hash".into(), Value::from("forged"));
        assert!(matches!(to_map(r), Err(Error::ReservedKey(k)) if k == "hash"));
    }

    #[test]
    fn none_serialises_as_null() {
        let mut r = record(2);
        r.recipient = None;
        r.route = None;
        let map = to_map(r).unwrap();
        assert_eq!(map["recipient"], Value::Null);
        assert_eq!(map["route"], Value::Null);
    }

    /// `to_map` builds by hand exactly what the derived `Serialize` gives, for full and
    /// empty records, with extension fields of any JSON type.
    #[test]
    fn to_map_is_what_serde_serialises() {
        let mut full = record(7);
        full.reasons = vec!["r1".into(), "r2 \"quoted\"".into()];
        full.extra
            .insert("error".into(), Value::from("upstream_timeout"));
        full.extra
            .insert("rules_generation".into(), Value::from("ab12"));
        full.extra.insert(
            "segment".into(),
            serde_json::json!({"n": 3, "of": [1, 2.5, null]}),
        );
        let mut empty = record(0);
        empty.recipient = None;
        empty.recipient_type = None;
        empty.route = None;
        empty.purpose = None;
        empty.lawful_basis = None;
        empty.subjects.clear();
        empty.disclosed.clear();
        empty.withheld.clear();
        for r in [full, empty] {
            let Value::Object(expected) = serde_json::to_value(&r).unwrap() else {
                panic!("a record serialises to an object");
            };
            assert_eq!(to_map(r).unwrap(), expected);
        }
    }

    #[test]
    fn a_long_path_or_method_is_cut_on_a_character_boundary_and_marked() {
        let mut r = record(3);
        r.set_path("/jobs/J-1");
        assert_eq!(r.path, "/jobs/J-1");
        assert!(r.extra.get("path_cut").is_none());
        // Two-byte characters, so the cut must step back off the middle of one.
        let long = format!("/{}", "é".repeat(600));
        r.set_path(&long);
        assert!(r.path.len() <= MAX_PATH_BYTES, "{}", r.path.len());
        assert!(r.path.len() >= MAX_PATH_BYTES - 4);
        assert!(r.path.ends_with('…'));
        assert!(long.starts_with(r.path.trim_end_matches('…')));
        assert_eq!(r.extra["path_cut"], true);
        // Exactly the bound is not cut; set again, the mark goes with the cut.
        r.set_path(&"a".repeat(MAX_PATH_BYTES));
        assert_eq!(r.path.len(), MAX_PATH_BYTES);
        assert!(r.extra.get("path_cut").is_none());
        r.set_method(&"X".repeat(1000));
        assert_eq!(r.method.len(), MAX_METHOD_BYTES);
        assert!(r.method.ends_with('…'));
        assert_eq!(r.extra["method_cut"], true);
        assert!(to_map(r).is_ok());
    }

    #[test]
    fn timestamp_format() {
        let ts = now_rfc3339();
        // 2026-12-01T12:45:20.123Z
        assert_eq!(ts.len(), 24, "{ts}");
        assert!(ts.ends_with('Z'));
        assert_eq!(&ts[19..20], ".");
    }
}
