//! The file ledger as its writer holds it: the open file, how much of it is durable, and the
//! chain head that the next record links to.
//!
//! Recovery makes one at open, the writer owns it and advances it after each durable batch,
//! and rotation swaps the file inside it; none of them needs another to see it.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::files;
use super::head::ChainHead;

/// The file and the chain as of the last durable record. Fields are visible to `rotate.rs`,
/// which swaps the file under the writer.
pub(super) struct LedgerFile {
    pub(super) path: PathBuf,
    /// `None` after a failure until the next batch reopens it.
    pub(super) file: Option<File>,
    /// Only a regular file can (and must) be truncated after a failed batch.
    pub(super) regular: bool,
    /// Length of the file up to the last durable record.
    pub(super) len: u64,
    /// Durable records in the file and the last one's `hash`: what the writer hands its
    /// witness.
    pub(super) chain: ChainHead,
    /// A batch failed: bytes past `len` may be on disk and must go before anything is written.
    pub(super) dirty: bool,
}

// === impl LedgerFile ===

impl LedgerFile {
    pub(super) fn new(
        path: &Path,
        file: File,
        regular: bool,
        len: u64,
        records: u64,
        head: String,
    ) -> LedgerFile {
        LedgerFile {
            path: path.to_path_buf(),
            file: Some(file),
            regular,
            len,
            chain: ChainHead { records, head },
            dirty: false,
        }
    }

    /// The descriptor to write to, reopening after a failure. A descriptor whose fsync failed is
    /// never reused: after that the kernel may have dropped the dirty pages and a retried fsync
    /// can report success for data that is gone.
    pub(super) fn file(&mut self) -> io::Result<&mut File> {
        if self.file.is_none() {
            if self.dirty {
                self.truncate()?;
            }
            self.file = Some(files::open_append(&self.path)?);
        }
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("audit file not open"))
    }

    /// Cuts the file back to the last durable record, so the unacknowledged records of a failed
    /// batch cannot end up between two acknowledged ones.
    fn truncate(&mut self) -> io::Result<()> {
        match files::truncate(&self.path, self.len) {
            Ok(()) => {}
            // A device such as /dev/full cannot be truncated and holds no chain to protect.
            Err(error) if !self.regular => {
                tracing::debug!(%error, "cannot truncate non-regular audit file; ignored");
            }
            Err(error) => return Err(error),
        }
        self.dirty = false;
        Ok(())
    }
}
