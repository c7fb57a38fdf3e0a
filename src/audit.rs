//! The durable, hash-chained disclosure ledger: append, verify, query.
//!
//! Every disclosure decision becomes one JSON line in `audit.path` before the response leaves.
//! Each line carries `prev_hash` (the previous line's `hash`, 64 zeros for the first line) and
//! `hash`, the SHA-256 of the line without its `hash` key in RFC 8785 (JCS) form, so anyone can
//! check the file with a JCS library and `sha256sum`, without our code.
//!
//! # Layout
//!
//! - [`record`](mod@record): the [`Record`] a request hands over, bounded, and the JSON object it
//!   becomes; [`error`](mod@error): the one [`Error`] every part of the ledger fails with.
//! - [`queue`]: what `AuditLog` sends a backend's writer and when the writer answers: only
//!   once the record is durable. Both backends serve it.
//! - [`chain`]: hashing, sealing and the per-line check; the one implementation shared by the
//!   writer, recovery at open and [`verify`].
//! - [`files`]: the file-system steps of the file ledger (create private, append, fsync a file
//!   or a directory, cut back), shared by recovery, rotation, the writer and checkpoints.
//! - [`head`]: the chain head the writer hands on after each durable batch, and the
//!   [`Witness`](head::Witness) hook it hands it to, so the writer knows nothing of checkpoints.
//! - [`ledger_file`]: the open file, its durable length and the chain head, as recovery makes
//!   it, the writer advances it and rotation swaps the file inside it.
//! - [`recover`]: opening the file at start: create, continue the chain, move a torn tail aside.
//! - [`rotate`]: moving the file aside and continuing the chain in a new one.
//! - [`writer`]: the single writer thread with group commit.
//! - [`verify`](mod@verify): the `audit verify` and `audit query` commands' logic, for one file
//!   or a sequence of rotated files.
//! - [`fields`]: the paths the upstream sent, per route, for `audit fields` (upstream drift).
//! - [`checkpoint`]: signed checkpoints of the chain's size and head, for what a chain alone
//!   cannot show (a cut tail, a rewritten history); written by the writer, checked by verify.
//! - [`snapshots`]: the rules snapshots kept beside the file ledger, which records name by
//!   digest (`rules_snapshot`) so a report can describe a disclosure after its rules changed.
//! - [`tree`]: the RFC 6962 Merkle tree over the file ledger's lines, beside the chain, for
//!   inclusion proofs a tenant can check; [`proof`]: `audit prove` and `audit check-proof`.
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

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use tokio::sync::mpsc;

pub mod canonical;
mod chain;
pub mod checkpoint;
mod error;
pub mod fields;
mod files;
mod head;
mod ledger_file;
pub mod postgres;
pub mod proof;
mod queue;
mod record;
mod recover;
mod rotate;
pub mod snapshots;
pub mod tree;
mod verify;
mod writer;

pub use chain::{Continuation, GENESIS_HASH};
pub use error::Error;
pub use queue::{Opened, Stats};
pub use record::{now_rfc3339, rfc3339, Record, MAX_METHOD_BYTES, MAX_PATH_BYTES};
pub use verify::{
    each_record, query, verify, verify_files, verify_files_with, Verified, VerifyError,
};

/// The record key naming the rules snapshot a decision is described by.
pub const RULES_SNAPSHOT: &str = "rules_snapshot";

use head::Witness;
use queue::{Job, Msg, QUEUE_DEPTH};
use record::to_map;

/// How the ledger is kept, beyond its path.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Signed checkpoints; off when `None`.
    pub checkpoints: Option<checkpoint::Config>,
}

/// Handle to the durable ledger; cheap to clone, shared by all requests.
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

struct Inner {
    tx: mpsc::Sender<Msg>,
    stats: Arc<Stats>,
    closed: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The PostgreSQL writer runs as a task instead of a thread.
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Where rules snapshots are written: beside a regular ledger file; `None` for a device
    /// or PostgreSQL, which keep none (their reports fall back to the config's rules).
    snapshots: Option<PathBuf>,
    /// The digests of the snapshots kept so far: the only ones a record may name.
    kept: Mutex<HashSet<String>>,
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
        let (ledger, opened) = recover::open(path)?;
        let ledger_regular = ledger.regular;
        let stats = Arc::new(Stats::default());
        let witness: Option<Box<dyn Witness>> = match &options.checkpoints {
            Some(config) => Some(Box::new(checkpoint::Checkpointer::open(
                config,
                path,
                ledger.regular,
                &ledger.chain,
                stats.clone(),
            )?)),
            None => None,
        };
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        if let Some(config) = &options.checkpoints {
            writer::spawn_ticker(tx.downgrade(), config.interval)?;
        }
        let thread = writer::spawn(ledger, witness, rx, stats.clone())?;
        let log = AuditLog {
            inner: Arc::new(Inner {
                tx,
                stats,
                closed: AtomicBool::new(false),
                thread: Mutex::new(Some(thread)),
                task: Mutex::new(None),
                snapshots: ledger_regular.then(|| snapshots::dir_for(path)),
                kept: Mutex::default(),
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
                snapshots: None,
                kept: Mutex::default(),
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
        if let Some(digest) = record.extra.get(RULES_SNAPSHOT).and_then(|d| d.as_str()) {
            if !self.kept().contains(digest) {
                return Err(Error::SnapshotNotKept(digest.to_owned()));
            }
        }
        // Serialised here, in the caller's task, so the writer thread only links and hashes.
        let record = chain::Unsealed::new(to_map(record)?)?;
        queue::request(&self.inner.tx, |reply| Msg::Append(Job { record, reply })).await?
    }

    /// Keeps the rules snapshot `bytes` under `digest` beside the ledger, durably, before any
    /// record naming it (in [`RULES_SNAPSHOT`]) may be appended; a digest already kept costs
    /// nothing. A ledger that keeps no snapshots (PostgreSQL, a device) only notes the digest.
    ///
    /// Blocking: one small file and two fsyncs, once per rules generation.
    ///
    /// # Errors
    ///
    /// [`Error::Snapshot`] when it cannot be written, or a file of its name holds other bytes.
    pub fn keep_rules(&self, digest: &str, bytes: &[u8]) -> Result<(), Error> {
        if self.kept().contains(digest) {
            return Ok(());
        }
        if let Some(dir) = &self.inner.snapshots {
            snapshots::keep(dir, digest, bytes).map_err(Error::Snapshot)?;
        }
        self.kept().insert(digest.to_owned());
        Ok(())
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.inner
            .kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
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
        queue::request(&self.inner.tx, Msg::Rotate).await?
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
        // Err means the writer is already gone; either way there is nothing left to wait on.
        let _ = queue::request(&self.inner.tx, Msg::Close).await;
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
