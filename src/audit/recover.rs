//! Opening the ledger at start: create it, or check it whole and continue its chain, moving a
//! torn last line aside first.
//!
//! Why the whole file is read: the writer links the next record to the head we hand it, so the
//! head must come from a chain we checked, not from a last line we trusted.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::chain::{self, ScanError, Scanned, GENESIS_HASH};
use super::error::Error;
use super::files;
use super::ledger_file::LedgerFile;
use super::queue::Opened;
use super::record::now_rfc3339;
use super::rotate;

/// Opens `path` for the writer and reports what was found.
pub(super) fn open(path: &Path) -> Result<(LedgerFile, Opened), Error> {
    rotate::finish_interrupted(path)?;
    let metadata = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return create(path),
        Err(e) => {
            return Err(Error::Io {
                op: "inspect",
                source: e,
            })
        }
    };
    if !metadata.is_file() {
        // Reading a device such as /dev/full would never end (endless zeros), and there is no
        // chain to continue on something that is not a file.
        tracing::warn!(
            path = %path.display(),
            "audit path is not a regular file; starting a fresh chain without reading it"
        );
        let file = files::open_append(path).map_err(Error::io("open"))?;
        return Ok(fresh(path, file, false));
    }
    let reader = File::open(path).map_err(Error::io("open"))?;
    match chain::scan(BufReader::new(reader)) {
        Ok(good) => {
            let file = files::open_append(path).map_err(Error::io("open"))?;
            tracing::info!(records = good.records, "audit chain continues");
            let opened = Opened {
                records: good.records,
                head: good.head.clone(),
                recovered_torn_tail: None,
            };
            Ok((
                LedgerFile::new(path, file, true, good.len, good.records, good.head),
                opened,
            ))
        }
        Err(ScanError::Io(e)) => Err(Error::Io {
            op: "read",
            source: e,
        }),
        Err(ScanError::Broken { line, reason }) => {
            tracing::error!(
                line,
                "audit file damaged before its tail; refusing to extend it"
            );
            Err(Error::Damaged { line, reason })
        }
        Err(ScanError::Torn { line, good }) => repair(path, line, good),
    }
}

/// A new, empty ledger. The parent directory is fsync'd too: without that a crash can lose the
/// file's directory entry, and with it every record we acknowledged.
fn create(path: &Path) -> Result<(LedgerFile, Opened), Error> {
    let dir = files::parent_dir(path);
    fs::create_dir_all(&dir).map_err(Error::io("create the directory of"))?;
    let file = files::create_append(path).map_err(Error::io("create"))?;
    file.sync_all().map_err(Error::io("sync"))?;
    files::sync_dir(&dir).map_err(Error::io("sync the directory of"))?;
    tracing::info!(path = %path.display(), "created audit file");
    Ok(fresh(path, file, true))
}

fn fresh(path: &Path, file: File, regular: bool) -> (LedgerFile, Opened) {
    let opened = Opened {
        records: 0,
        head: GENESIS_HASH.to_owned(),
        recovered_torn_tail: None,
    };
    (
        LedgerFile::new(path, file, regular, 0, 0, GENESIS_HASH.to_owned()),
        opened,
    )
}

/// Moves the torn tail after `good` aside and records that in the chain.
///
/// The order is what makes it safe to crash at any point: the side file is durable (data and
/// directory entry) before the main file is truncated, and the truncation is durable before the
/// recovery record links to the last whole record. The torn record was never acknowledged (its
/// fsync never returned), so dropping it from the chain loses nothing anyone was promised.
fn repair(path: &Path, line: u64, good: Scanned) -> Result<(LedgerFile, Opened), Error> {
    let mut main = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(Error::io("open"))?;
    let total = main.metadata().map_err(Error::io("inspect"))?.len();
    let torn_bytes = total.saturating_sub(good.len);
    main.seek(SeekFrom::Start(good.len))
        .map_err(Error::io("read"))?;

    let (side_path, mut side) =
        create_side_file(path).map_err(Error::io("create the side file of"))?;
    let copied = io::copy(&mut (&mut main).take(torn_bytes), &mut side)
        .map_err(Error::io("copy the torn tail of"))?;
    side.sync_all()
        .map_err(Error::io("sync the side file of"))?;
    files::sync_dir(&files::parent_dir(path)).map_err(Error::io("sync the directory of"))?;
    drop(side);

    main.set_len(good.len).map_err(Error::io("truncate"))?;
    main.sync_all().map_err(Error::io("sync"))?;
    drop(main);

    let side_name = side_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut record = Map::new();
    record.insert("ts".into(), Value::String(now_rfc3339()));
    record.insert("event".into(), Value::from("recovery"));
    record.insert("torn_bytes".into(), Value::from(copied));
    record.insert("side_file".into(), Value::String(side_name.clone()));
    let mut bytes = Vec::new();
    let head = chain::seal(record, &good.head, &mut bytes)?;
    let mut file = files::open_append(path).map_err(Error::io("open"))?;
    files::write_and_sync(&mut file, &bytes).map_err(Error::io("append the recovery record to"))?;

    tracing::warn!(
        line,
        torn_bytes = copied,
        side_file = %side_name,
        "moved the torn last line of the audit file aside and recorded the recovery"
    );
    let opened = Opened {
        records: good.records + 1,
        head: head.clone(),
        recovered_torn_tail: Some(side_path),
    };
    let len = good.len + bytes.len() as u64;
    Ok((
        LedgerFile::new(path, file, true, len, good.records + 1, head),
        opened,
    ))
}

/// `<path>.torn-<unix-millis>`, with `-1`, `-2`... if that exists (two recoveries in one ms).
fn create_side_file(path: &Path) -> io::Result<(PathBuf, File)> {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let mut last = None;
    for n in 0..100u32 {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".torn-{millis}"));
        if n > 0 {
            name.push(format!("-{n}"));
        }
        let side = PathBuf::from(name);
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        files::private(&mut options);
        match options.open(&side) {
            Ok(file) => return Ok((side, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free side file name")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::super::record::tests::record;
    use super::super::{verify, AuditLog, VerifyError};
    use super::*;

    async fn write(path: &Path, n: usize) -> Opened {
        let (log, opened) = AuditLog::open(path).unwrap();
        for i in 0..n {
            log.append(record(i)).await.unwrap();
        }
        log.close().await;
        opened
    }

    fn lines(path: &Path) -> Vec<String> {
        let text = fs::read_to_string(path).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    #[tokio::test]
    async fn creates_parent_dirs_and_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/audit.jsonl");
        let opened = write(&path, 1).await;
        assert_eq!(opened.records, 0);
        assert_eq!(opened.head, GENESIS_HASH);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[tokio::test]
    async fn reopen_continues_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        write(&path, 3).await;
        let head = verify(&path).unwrap().head;
        let opened = write(&path, 2).await;
        assert_eq!(opened.records, 3);
        assert_eq!(opened.head, head);
        let fourth: Value = serde_json::from_str(&lines(&path)[3]).unwrap();
        assert_eq!(fourth["prev_hash"], Value::String(head));
        assert_eq!(verify(&path).unwrap().records, 5);
    }

    #[tokio::test]
    async fn every_cut_in_the_last_line_recovers_or_continues() {
        let dir = tempfile::tempdir().unwrap();
        let pristine = dir.path().join("pristine.jsonl");
        write(&pristine, 3).await;
        let bytes = fs::read(&pristine).unwrap();
        let whole = verify(&pristine).unwrap();
        let last_start = bytes[..bytes.len() - 1]
            .iter()
            .rposition(|b| *b == b'\n')
            .unwrap()
            + 1;
        let two = chain::scan(&bytes[..last_start]).unwrap();

        for cut in last_start..=bytes.len() {
            let case = dir.path().join(format!("cut-{cut}"));
            fs::create_dir(&case).unwrap();
            let path = case.join("audit.jsonl");
            fs::write(&path, &bytes[..cut]).unwrap();
            let (log, opened) = AuditLog::open(&path).unwrap();
            log.close().await;
            let after = verify(&path).unwrap();
            if cut == last_start || cut == bytes.len() {
                // The cut fell on a line end: nothing torn, the chain just continues.
                assert_eq!(opened.recovered_torn_tail, None, "cut {cut}");
                let expect = if cut == last_start {
                    &two.head
                } else {
                    &whole.head
                };
                assert_eq!(&opened.head, expect);
                assert_eq!(fs::read(&path).unwrap(), &bytes[..cut]);
                continue;
            }
            let side = opened.recovered_torn_tail.clone().unwrap();
            assert_eq!(
                fs::read(&side).unwrap(),
                &bytes[last_start..cut],
                "cut {cut}"
            );
            assert_eq!(
                opened.records, 3,
                "two whole records and the recovery record"
            );
            assert_eq!(after.records, 3);
            assert_eq!(after.head, opened.head);
            let file = fs::read(&path).unwrap();
            assert_eq!(
                &file[..last_start],
                &bytes[..last_start],
                "whole records kept"
            );
            let rec: Value = serde_json::from_str(&lines(&path)[2]).unwrap();
            assert_eq!(rec["event"], "recovery");
            assert_eq!(rec["torn_bytes"], (cut - last_start) as u64);
            let name = side.file_name().unwrap().to_str().unwrap();
            assert_eq!(rec["side_file"], name);
            assert!(name.starts_with("audit.jsonl.torn-"));
            assert_eq!(rec["prev_hash"], Value::String(two.head.clone()));
        }
    }

    #[tokio::test]
    async fn unparsable_terminated_last_line_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        write(&path, 2).await;
        let mut bytes = fs::read(&path).unwrap();
        bytes.extend(b"\0\0\0\0\n");
        fs::write(&path, &bytes).unwrap();
        let opened = write(&path, 1).await;
        assert_eq!(opened.records, 3);
        assert_eq!(
            fs::read(opened.recovered_torn_tail.unwrap()).unwrap(),
            b"\0\0\0\0\n"
        );
        assert_eq!(verify(&path).unwrap().records, 4);
    }

    #[tokio::test]
    async fn damage_before_the_tail_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        write(&path, 5).await;
        let mut bytes = fs::read(&path).unwrap();
        let line2 = bytes.iter().position(|b| *b == b'\n').unwrap() + 1;
        // Inside "request_id":"req-1" of line 2: still JSON, so only the hash can tell.
        let at = line2 + lines(&path)[1].find("req-1").unwrap() + 4;
        bytes[at] = b'9';
        fs::write(&path, &bytes).unwrap();

        let err = AuditLog::open(&path).err().unwrap();
        assert!(matches!(err, Error::Damaged { line: 2, .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "audit file damaged at line 2: hash does not match the record"
        );
        let err = verify(&path).unwrap_err();
        assert!(matches!(err, VerifyError::Broken { line: 2, .. }));
        assert_eq!(err.to_string(), "line 2: hash does not match the record");
        // Refusing must not have touched the file.
        assert_eq!(fs::read(&path).unwrap(), bytes);

        bytes[line2] = b'x'; // line 2 no longer JSON: still damage, not a torn tail
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            AuditLog::open(&path),
            Err(Error::Damaged { line: 2, .. })
        ));
    }
}
