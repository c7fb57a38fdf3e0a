//! The ledger's one error type: what `append`, `open` and `rotate` of either backend can fail
//! with. A leaf, so that every part of the ledger can name its failures without reaching up.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

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
    /// The rules snapshot records of a new policy would name could not be kept beside the
    /// ledger, so that policy is not put in use.
    #[error("cannot keep the rules snapshot beside the audit file: {0}")]
    Snapshot(#[source] io::Error),
    /// A record names a rules snapshot the ledger was never given: appending it would leave
    /// a disclosure the report cannot describe.
    #[error("audit record names rules snapshot {0} that the ledger has not kept")]
    SnapshotNotKept(String),
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
