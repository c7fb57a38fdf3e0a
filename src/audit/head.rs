//! Where the file ledger's chain stands, as the writer hands it on after each durable batch,
//! and the hook it hands it to.
//!
//! Checkpoints witness the chain's size and head, which only the writer knows exactly, and a
//! checkpoint must follow the batch it witnesses (and precede a rotation) on the writer's
//! thread. So the writer calls a [`Witness`] with a [`ChainHead`]: it knows nothing of
//! checkpoints, and checkpoints see this value, never the writer's file or its state.

use std::io;

/// The chain as of the last durable record of the current file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ChainHead {
    /// Durable records in the current file, which a rotation record states as
    /// `previous_records`; a rotation starts the count again.
    pub(super) records: u64,
    /// `hash` of the last durable record.
    pub(super) head: String,
}

/// What the file writer calls, on its own thread, so that something can witness the chain
/// (checkpoints, `checkpoint.rs`).
pub(super) trait Witness: Send {
    /// A batch is durable and its appends answered: the witness may act on `now`.
    fn after_batch(&mut self, now: &ChainHead);

    /// On a tick, on close and before a rotation: witness every record of `now` not yet
    /// witnessed.
    ///
    /// # Errors
    ///
    /// The witness could not be written; before a rotation that refuses the rotation.
    fn flush(&mut self, now: &ChainHead) -> io::Result<()>;

    /// A rotation moved `records` records into an archived file; the next [`ChainHead`]
    /// counts from the new file's first record.
    fn rotated(&mut self, records: u64);
}
