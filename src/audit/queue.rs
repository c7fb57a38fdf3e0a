//! The queue between the request path and a ledger backend: what `AuditLog` sends, what a
//! backend's writer answers, and when.
//!
//! Both backends (the file writer thread and the PostgreSQL task) drain one bounded queue of
//! [`Msg`] and keep the same promise: a [`Job`]'s reply is sent only once its record is durable
//! (fdatasync'd, or committed), or with the error that kept it from being so; a reply sender
//! dropped unanswered means the writer stopped first, and the request waiting on it fails. No
//! record is ever acknowledged that a later read would not find.
//!
//! A backend also keeps the shared [`Stats`] current and reports at open where its chain
//! stands ([`Opened`]).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};

use tokio::sync::{mpsc, oneshot};

use super::chain;
use super::error::Error;

/// How many appends may wait for the writer before `append` itself waits: back-pressure, so a
/// stalled disk turns into slow requests rather than unbounded memory.
pub(super) const QUEUE_DEPTH: usize = 4096;

/// What the request path asks of a backend's writer; handled in queue order.
pub(super) enum Msg {
    Append(Job),
    /// Commit what was queued before, then start a new file (see `rotate.rs`); a backend
    /// without files answers [`Error::Unsupported`].
    Rotate(oneshot::Sender<Result<PathBuf, Error>>),
    /// Commit what was queued before, let go of the file or connection, reply, and exit.
    Close(oneshot::Sender<()>),
    /// The checkpoint interval passed: checkpoint any record not yet witnessed (the file
    /// ledger's; other backends ignore it).
    Tick,
}

/// One record to append, serialised by the caller, and where its outcome goes.
pub(super) struct Job {
    pub record: chain::Unsealed,
    pub reply: oneshot::Sender<Result<(), Error>>,
}

/// Queues the message `make` builds around a fresh reply channel and waits for the answer:
/// [`Error::WriterStopped`] when the writer is gone, or exits before answering.
pub(super) async fn request<T>(
    tx: &mpsc::Sender<Msg>,
    make: impl FnOnce(oneshot::Sender<T>) -> Msg,
) -> Result<T, Error> {
    let (reply, done) = oneshot::channel();
    tx.send(make(reply))
        .await
        .map_err(|_| Error::WriterStopped)?;
    // A dropped reply sender means the writer exited (closed, or died) before our message.
    done.await.map_err(|_| Error::WriterStopped)
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
