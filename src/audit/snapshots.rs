//! Rules snapshots beside the file ledger: `<audit path>.rules/<digest>.json`, the bytes a
//! record's `rules_snapshot` names by their SHA-256, so a report can describe a disclosure
//! from the rules it was made under after those rules have changed or gone.
//!
//! The ledger treats a snapshot as opaque bytes addressed by their digest (what they say is
//! `rules::snapshot`'s business). A snapshot is written before any record naming it can be
//! appended ([`super::AuditLog::keep_rules`]; `append` refuses a record naming one that was
//! not kept), and durably: a private temporary file, fsync'd, linked to its final name, the
//! directory fsync'd. It is never overwritten: the same digest is the same bytes, and a file
//! already under the name with other bytes is an error, not something to replace.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::files;

/// The directory beside `ledger` that holds its snapshots: `disclosures.jsonl.rules`.
pub fn dir_for(ledger: &Path) -> PathBuf {
    let mut name = ledger.as_os_str().to_owned();
    name.push(".rules");
    PathBuf::from(name)
}

/// The snapshot directories that may serve `files`: each file's own, and for a rotated file
/// (`disclosures.jsonl.20261201T134501Z`) the live ledger's, found by dropping trailing
/// extensions. Only those that exist, each once. Snapshots are checked against their digest
/// when read, so looking in more than one place cannot give a wrong one.
pub fn dirs_for(files: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for file in files {
        let mut at = file.clone();
        loop {
            let dir = dir_for(&at);
            if dir.is_dir() && !dirs.contains(&dir) {
                dirs.push(dir);
            }
            if at.extension().is_none() {
                break;
            }
            at.set_extension("");
        }
    }
    dirs
}

/// Whether `digest` can name a snapshot: 64 lower-case hex digits, and so never a path.
pub fn is_digest(digest: &str) -> bool {
    digest.len() == 64
        && digest
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The bytes of the snapshot `digest` names, from the first of `dirs` holding it; `None` when
/// none does (or `digest` is not one). Their hash is not checked here: the reader checks it.
///
/// # Errors
///
/// When a file exists but cannot be read.
pub fn read(dirs: &[PathBuf], digest: &str) -> io::Result<Option<Vec<u8>>> {
    if !is_digest(digest) {
        return Ok(None);
    }
    for dir in dirs {
        match fs::read(file_in(dir, digest)) {
            Ok(bytes) => return Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// Writes `bytes` as the snapshot `digest` in `dir`, durably, unless it is already there.
///
/// # Errors
///
/// When the directory or file cannot be created, written or synced, when `digest` is not a
/// digest, or when a file of that name holds other bytes.
pub(super) fn keep(dir: &Path, digest: &str, bytes: &[u8]) -> io::Result<()> {
    if !is_digest(digest) {
        return Err(io::Error::other("not a snapshot digest"));
    }
    let target = file_in(dir, digest);
    if same_bytes(&target, bytes)? {
        return Ok(());
    }
    if !dir.is_dir() {
        fs::create_dir_all(dir)?;
        files::sync_dir(&files::parent_dir(dir))?;
    }
    let temporary = dir.join(format!(".{digest}.{}.tmp", std::process::id()));
    let written = write_private(&temporary, bytes)
        .and_then(|()| publish(&temporary, &target, bytes))
        .and_then(|()| files::sync_dir(dir));
    // Gone after a link, or left by a failed write: either way not a snapshot.
    let _ = fs::remove_file(&temporary);
    written
}

fn file_in(dir: &Path, digest: &str) -> PathBuf {
    dir.join(format!("{digest}.json"))
}

/// Whether `path` holds exactly `bytes`; false when there is no such file.
///
/// # Errors
///
/// When it exists but cannot be read, or holds other bytes: a snapshot under the wrong name
/// is never overwritten, it is reported.
fn same_bytes(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    match fs::read(path) {
        Ok(existing) if existing == bytes => Ok(true),
        Ok(_) => Err(io::Error::other(format!(
            "{} exists with other content; move it aside (the report will flag records naming it)",
            path.display()
        ))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    files::private(&mut options);
    let mut file: File = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Gives the written file its name. A hard link never replaces an existing name, so two
/// writers of the same snapshot cannot clobber each other; on a file system without links,
/// a rename, which can only replace the same bytes since the name is their digest.
fn publish(temporary: &Path, target: &Path, bytes: &[u8]) -> io::Result<()> {
    match fs::hard_link(temporary, target) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => same_bytes(target, bytes).map(|_| ()),
        Err(_) => fs::rename(temporary, target),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn keeping_writes_once_and_leaves_no_temporary_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = dir_for(&tmp.path().join("audit.jsonl"));
        keep(&dir, DIGEST, b"{\"a\":1}").expect("kept");
        keep(&dir, DIGEST, b"{\"a\":1}").expect("the same bytes again: nothing to do");
        let names: Vec<_> = fs::read_dir(&dir)
            .expect("dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [format!("{DIGEST}.json")]);
        assert_eq!(
            read(std::slice::from_ref(&dir), DIGEST).expect("read"),
            Some(b"{\"a\":1}".to_vec())
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(file_in(&dir, DIGEST))
                .expect("meta")
                .permissions();
            assert_eq!(mode.mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn an_existing_snapshot_is_never_overwritten() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = dir_for(&tmp.path().join("audit.jsonl"));
        fs::create_dir(&dir).expect("dir");
        fs::write(file_in(&dir, DIGEST), b"altered").expect("write");
        let e = keep(&dir, DIGEST, b"{\"a\":1}").expect_err("other bytes under the name");
        assert!(e.to_string().contains("other content"), "{e}");
        assert_eq!(fs::read(file_in(&dir, DIGEST)).expect("read"), b"altered");
    }

    #[test]
    fn a_digest_that_is_not_one_never_becomes_a_path() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dirs = [tmp.path().to_path_buf()];
        fs::write(tmp.path().join("x.json"), b"{}").expect("write");
        assert_eq!(read(&dirs, "../x").expect("read"), None);
        assert_eq!(read(&dirs, "x").expect("read"), None);
        assert!(keep(tmp.path(), "../x", b"{}").is_err());
        assert!(!is_digest(&DIGEST.to_uppercase()));
    }

    /// The ordering the report relies on: a record naming a snapshot is refused until the
    /// snapshot is durable beside the ledger, and accepted after.
    #[tokio::test]
    async fn the_ledger_refuses_a_record_naming_a_snapshot_it_has_not_kept() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("audit.jsonl");
        let (log, _) = crate::audit::AuditLog::open(&path).expect("opens");
        let naming = |n| {
            let mut record = crate::audit::record::tests::record(n);
            record
                .extra
                .insert(crate::audit::RULES_SNAPSHOT.into(), DIGEST.into());
            record
        };
        let e = log.append(naming(1)).await.expect_err("not kept yet");
        assert!(
            matches!(&e, crate::audit::Error::SnapshotNotKept(d) if d == DIGEST),
            "{e}"
        );
        assert_eq!(
            fs::read_to_string(&path).expect("ledger"),
            "",
            "nothing appended"
        );
        log.keep_rules(DIGEST, b"{}").expect("kept");
        assert!(file_in(&dir_for(&path), DIGEST).is_file());
        log.append(naming(2)).await.expect("kept, so accepted");
        log.close().await;
    }

    #[tokio::test]
    async fn a_ledger_on_a_device_keeps_no_snapshot_file() {
        let path = Path::new("/dev/full");
        if !path.exists() {
            return;
        }
        let (log, _) = crate::audit::AuditLog::open(path).expect("opens");
        log.keep_rules(DIGEST, b"{}").expect("noted");
        assert!(!dir_for(path).exists());
        log.close().await;
    }

    #[test]
    fn a_rotated_file_finds_the_live_ledgers_snapshots() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let live = tmp.path().join("disclosures.jsonl");
        fs::create_dir(dir_for(&live)).expect("dir");
        let rotated = tmp.path().join("disclosures.jsonl.20261201T134501Z-1");
        assert_eq!(dirs_for(&[rotated, live.clone()]), [dir_for(&live)]);
        assert!(dirs_for(&[tmp.path().join("elsewhere.jsonl")]).is_empty());
    }
}
