//! The file-system steps the file ledger's promises rest on: which directory to sync, how a
//! ledger file is created, appended to, made durable and cut back. A leaf: recovery, rotation,
//! the writer and checkpoints all use these, and nothing here knows about the chain.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The directory holding `path` (`.` for a bare file name).
pub(super) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Makes the directory's entries durable: without it a crash can lose a file just created or
/// renamed, and with it every record acknowledged there.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Ledger files hold personal data: readable by the gateway's user only.
pub(super) fn private(options: &mut OpenOptions) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = options;
}

/// Creates a new, private ledger file for appending; fails if `path` exists, so nothing
/// already written is ever taken over.
pub(super) fn create_append(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.append(true).create_new(true);
    private(&mut options);
    options.open(path)
}

/// Opens the ledger for appending: `O_APPEND` makes every write land at the end even if the
/// descriptor's offset is stale.
pub(super) fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().append(true).open(path)
}

/// One write and one fdatasync: the record is durable once this returns `Ok`.
pub(super) fn write_and_sync(file: &mut File, bytes: &[u8]) -> io::Result<()> {
    file.write_all(bytes)?;
    file.sync_data()
}

/// Cuts the file at `path` back to `len` bytes, durably: what a failed or torn write left past
/// the last whole line goes before anything else is appended.
pub(super) fn truncate(path: &Path, len: u64) -> io::Result<()> {
    let file = OpenOptions::new().write(true).open(path)?;
    file.set_len(len)?;
    file.sync_all()
}
