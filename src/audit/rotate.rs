//! Rotation: the current file becomes `<path>.<UTC timestamp>` and a new file at `<path>`
//! continues the same chain, its first record a rotation record linking to the old file's last
//! hash.
//!
//! Why the new file is written first, as `<path>.next`, and then renamed into place: at every
//! point a crash leaves a state that `open` can finish or undo. Before the first rename
//! `<path>` is the whole old chain and `<path>.next` holds only the unacknowledged rotation
//! record, so it is removed; between the renames `<path>` is missing and `<path>.next` is
//! complete (fsync'd), so it is renamed into place. Writing the rotation record straight into a
//! fresh `<path>` would leave, after a crash mid-write, a file whose torn first line recovery
//! replaces with a chain from 64 zeros: the link to the old file would be lost.

use std::fs::{self, File};
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{Map, Value};

use super::chain::{self, ScanError, ROTATION_EVENT};
use super::error::Error;
use super::files::{self, parent_dir, sync_dir};
use super::head::ChainHead;
use super::ledger_file::LedgerFile;
use super::record::now_rfc3339;

/// Where the new file is prepared before it takes the ledger's name.
pub(super) fn next_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".next");
    PathBuf::from(name)
}

/// Moves the ledger aside and continues the chain in a new file; returns the rotated
/// file's path. Runs on the writer thread between two batches, so every record acknowledged
/// before it is in the old file and every later one in the new.
///
/// On an error before the new file took the ledger's name the writer carries on with the
/// old file as if nothing happened. An error syncing the directory afterwards is reported,
/// but the new file is already the ledger and the writer uses it.
pub(super) fn rotate(ledger: &mut LedgerFile) -> Result<PathBuf, Error> {
    if !ledger.regular {
        return Err(Error::NotRegular);
    }
    // A failed batch may have left bytes past the last durable record: cut them first, so
    // the rotated file ends with the record `previous_records` counts.
    ledger.file().map_err(Error::io("repair"))?;
    let dir = parent_dir(&ledger.path);
    let rotated = free_name(&ledger.path).map_err(Error::io("name the rotated copy of"))?;
    let previous_file = rotated
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();

    let mut record = Map::new();
    record.insert("ts".into(), Value::String(now_rfc3339()));
    record.insert("event".into(), Value::from(ROTATION_EVENT));
    record.insert("previous_file".into(), Value::String(previous_file));
    record.insert("previous_records".into(), Value::from(ledger.chain.records));
    let mut bytes = Vec::new();
    let head = chain::seal(record, &ledger.chain.head, &mut bytes)?;

    let next = next_path(&ledger.path);
    let file = create_next(&next, &bytes).map_err(Error::io("prepare the next file of"))?;
    sync_dir(&dir).map_err(Error::io("sync the directory of"))?;
    if let Err(source) = fs::rename(&ledger.path, &rotated) {
        discard(&next);
        return Err(Error::Io {
            op: "rename",
            source,
        });
    }
    if let Err(source) = fs::rename(&next, &ledger.path) {
        // Put the old file back so the writer carries on with it.
        match fs::rename(&rotated, &ledger.path) {
            Ok(()) => discard(&next),
            Err(error) => {
                // `<path>` is missing and `<path>.next` complete: appends fail (503) until
                // a restart, whose `open` finishes the rotation.
                tracing::error!(%error, "cannot move the audit file back after a failed rotation");
                ledger.file = None;
            }
        }
        return Err(Error::Io {
            op: "rotate",
            source,
        });
    }
    // From here the new file is the ledger, whatever else fails.
    let previous_records = ledger.chain.records;
    ledger.file = Some(file);
    ledger.len = bytes.len() as u64;
    ledger.chain = ChainHead { records: 1, head };
    ledger.dirty = false;
    sync_dir(&dir).map_err(Error::io("sync the directory of"))?;
    tracing::info!(
        rotated = %rotated.display(),
        previous_records,
        "rotated the audit file; the new file continues the chain"
    );
    Ok(rotated)
}

/// `<path>.<UTC timestamp>` (`audit.jsonl.20261201T134501Z`), with `-1`, `-2`... if that
/// exists (two rotations in one second): a rename would silently replace an archived file.
fn free_name(path: &Path) -> io::Result<PathBuf> {
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .replace(['-', ':'], "");
    for n in 0..100u32 {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".{stamp}"));
        if n > 0 {
            name.push(format!("-{n}"));
        }
        let candidate = PathBuf::from(name);
        match fs::symlink_metadata(&candidate) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(candidate),
            Err(e) => return Err(e),
            Ok(_) => {}
        }
    }
    Err(io::Error::other("no free name for the rotated file"))
}

/// Writes the new file with its rotation record, durably, and returns it open for appending.
/// A `<path>.next` left by an earlier failed attempt holds nothing acknowledged: replaced.
fn create_next(next: &Path, bytes: &[u8]) -> io::Result<File> {
    match fs::remove_file(next) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = files::create_append(next)?;
    if let Err(e) = files::write_and_sync(&mut file, bytes) {
        drop(file);
        discard(next);
        return Err(e);
    }
    Ok(file)
}

fn discard(next: &Path) {
    if let Err(error) = fs::remove_file(next) {
        tracing::warn!(%error, "cannot remove the unused next audit file");
    }
}

/// Called by `open` before it reads `<path>`: finishes or undoes a rotation a crash
/// interrupted (see the module docs).
///
/// # Errors
///
/// [`Error::PendingRotation`] when `<path>` exists and `<path>.next` holds more than a rotation
/// record: records nobody should have acknowledged there, which an operator must look at.
pub(super) fn finish_interrupted(path: &Path) -> Result<(), Error> {
    let next = next_path(path);
    match fs::symlink_metadata(&next) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(Error::Io {
                op: "inspect",
                source,
            })
        }
    }
    let dir = parent_dir(path);
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Crashed between the renames: the old file is rotated, the new one complete.
            fs::rename(&next, path).map_err(Error::io("finish the rotation of"))?;
            sync_dir(&dir).map_err(Error::io("sync the directory of"))?;
            tracing::warn!("finished an audit file rotation interrupted by a crash");
            Ok(())
        }
        Err(source) => Err(Error::Io {
            op: "inspect",
            source,
        }),
        Ok(_) => {
            // Crashed before the first rename: `<path>` still holds the whole chain.
            let file = File::open(&next).map_err(Error::io("read the next file of"))?;
            let only_rotation_record = match chain::scan(BufReader::new(file)) {
                Ok(s) => s.records == 0 || (s.records == 1 && s.continues_from.is_some()),
                Err(ScanError::Torn { good, .. }) => good.records == 0,
                Err(_) => false,
            };
            if !only_rotation_record {
                return Err(Error::PendingRotation { file: next });
            }
            fs::remove_file(&next).map_err(Error::io("remove the next file of"))?;
            sync_dir(&dir).map_err(Error::io("sync the directory of"))?;
            tracing::warn!("removed the new file of an audit rotation that never took effect");
            Ok(())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use std::collections::BTreeMap;

    use super::super::record::tests::record;
    use super::super::{verify, verify_files, AuditLog, VerifyError, GENESIS_HASH};
    use super::*;

    fn lines(path: &Path) -> Vec<String> {
        let text = fs::read_to_string(path).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    fn first(path: &Path) -> Map<String, Value> {
        serde_json::from_str(&lines(path)[0]).unwrap()
    }

    /// `n` records, a rotation, `m` records; returns (dir, rotated, current).
    async fn rotated(n: usize, m: usize) -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let (log, _) = AuditLog::open(&path).unwrap();
        for i in 0..n {
            log.append(record(i)).await.unwrap();
        }
        let old = log.rotate().await.unwrap();
        for i in n..n + m {
            log.append(record(i)).await.unwrap();
        }
        log.close().await;
        (dir, old, path)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn rotate_under_concurrent_appends_splits_one_chain_in_two() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let (log, _) = AuditLog::open(&path).unwrap();
        let n = 300;
        let mut tasks = Vec::new();
        let mut rotation = None;
        for i in 0..n {
            let appender = log.clone();
            tasks.push(tokio::spawn(
                async move { appender.append(record(i)).await },
            ));
            if i == n / 2 {
                let rotator = log.clone();
                rotation = Some(tokio::spawn(async move { rotator.rotate().await }));
            }
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let old = rotation.unwrap().await.unwrap().unwrap();
        log.close().await;

        let name = old.file_name().unwrap().to_str().unwrap();
        // audit.jsonl.20261201T134501Z
        let stamp = name.strip_prefix("audit.jsonl.").unwrap();
        assert_eq!(stamp.len(), 16, "{name}");
        assert!(stamp.ends_with('Z') && &stamp[8..9] == "T", "{name}");
        assert!(!next_path(&path).exists());

        let a = verify(&old).unwrap();
        let b = verify(&path).unwrap();
        assert_eq!(a.continues_from, None);
        let link = b.continues_from.clone().unwrap();
        assert_eq!(link.prev_hash, a.head);
        assert_eq!(link.previous_records, a.records);
        assert_eq!(link.previous_file, name);
        let rotation = first(&path);
        assert_eq!(rotation["event"], "rotation");
        assert_eq!(rotation["prev_hash"], Value::String(a.head.clone()));

        // Every request in exactly one file, plus the rotation record.
        assert_eq!(a.records + b.records, n as u64 + 1);
        let mut seen = BTreeMap::new();
        for file in [&old, &path] {
            for line in lines(file) {
                let v: Value = serde_json::from_str(&line).unwrap();
                if let Some(id) = v["request_id"].as_str() {
                    *seen.entry(id.to_owned()).or_insert(0) += 1;
                }
            }
        }
        assert_eq!(seen.len(), n);
        assert!(seen.values().all(|c| *c == 1));

        let all = verify_files(&[old.clone(), path.clone()]).unwrap();
        assert_eq!(all.records, n as u64 + 1);
        assert_eq!(all.head, b.head);
        assert_eq!(all.continues_from, None);
    }

    #[tokio::test]
    async fn appends_before_the_rotate_stay_in_the_old_file() {
        let (_dir, old, path) = rotated(3, 2).await;
        assert_eq!(verify(&old).unwrap().records, 3);
        assert_eq!(verify(&path).unwrap().records, 3, "rotation record + 2");
        let ids: Vec<String> = lines(&path)[1..]
            .iter()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["request_id"].to_string())
            .collect();
        assert_eq!(ids, ["\"req-3\"", "\"req-4\""]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[tokio::test]
    async fn a_rotated_file_alone_reports_what_it_continues() {
        let (_dir, old, path) = rotated(2, 1).await;
        let v = verify(&path).unwrap();
        let c = v.continues_from.unwrap();
        assert_eq!(c.prev_hash, verify(&old).unwrap().head);
        assert_eq!(c.previous_records, 2);
        // The first file of a sequence may itself continue an earlier one.
        let tail = verify_files(std::slice::from_ref(&path)).unwrap();
        assert_eq!(tail.continues_from.unwrap().prev_hash, c.prev_hash);
    }

    #[tokio::test]
    async fn rotating_an_empty_file_links_to_zeros() {
        let (_dir, old, path) = rotated(0, 1).await;
        assert_eq!(verify(&old).unwrap().records, 0);
        let c = verify(&path).unwrap().continues_from.unwrap();
        assert_eq!(c.prev_hash, GENESIS_HASH);
        assert_eq!(c.previous_records, 0);
        assert_eq!(verify_files(&[old, path]).unwrap().records, 2);
    }

    #[tokio::test]
    async fn open_after_rotate_continues_the_new_file() {
        let (_dir, old, path) = rotated(2, 0).await;
        let head = verify(&path).unwrap().head;
        let (log, opened) = AuditLog::open(&path).unwrap();
        assert_eq!(opened.records, 1);
        assert_eq!(opened.head, head);
        log.append(record(9)).await.unwrap();
        // A second rotation: three files, one chain.
        let middle = log.rotate().await.unwrap();
        assert_ne!(middle, old);
        log.append(record(10)).await.unwrap();
        log.close().await;
        assert_eq!(
            middle,
            path.with_file_name(first(&path)["previous_file"].as_str().unwrap())
        );
        let all = verify_files(&[old.clone(), middle.clone(), path.clone()]).unwrap();
        assert_eq!(all.records, 2 + 2 + 2);
        // Leaving the middle file out is a gap.
        let err = verify_files(&[old, path.clone()]).unwrap_err();
        assert!(
            matches!(&err, VerifyError::Gap { file, line: 1, .. } if file == &path),
            "{err}"
        );
    }

    #[tokio::test]
    async fn two_rotations_in_one_second_get_distinct_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let (log, _) = AuditLog::open(&path).unwrap();
        let mut names = Vec::new();
        for i in 0..3 {
            log.append(record(i)).await.unwrap();
            names.push(log.rotate().await.unwrap());
        }
        log.close().await;
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 3);
        // The counter suffix does not sort across seconds; the chain itself gives the order:
        // each file names the one before.
        let mut ordered = vec![path];
        while let Some(Value::String(prev)) = first(&ordered[0]).get("previous_file") {
            ordered.insert(0, dir.path().join(prev));
        }
        assert_eq!(ordered.len(), 4);
        assert_eq!(verify_files(&ordered).unwrap().records, 1 + 2 + 2 + 1);
    }

    #[tokio::test]
    async fn a_cut_last_line_of_the_old_file_is_a_gap_naming_the_new_file() {
        let (_dir, old, path) = rotated(3, 1).await;
        let l = lines(&old);
        fs::write(&old, format!("{}\n{}\n", l[0], l[1])).unwrap();
        assert_eq!(
            verify(&old).unwrap().records,
            2,
            "the cut file verifies alone"
        );
        let err = verify_files(&[old.clone(), path.clone()]).unwrap_err();
        assert!(matches!(&err, VerifyError::Gap { file, line: 1, .. } if file == &path));
        let name = old.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: line 1: prev_hash is not the last hash of {name}: records are missing \
                 between them, or the files are out of order",
                path.display()
            )
        );
        // Out of order is caught the same way.
        let (_dir, old, path) = rotated(1, 1).await;
        assert!(matches!(
            verify_files(&[path.clone(), old.clone()]),
            Err(VerifyError::Gap { file, .. }) if file == old
        ));
    }

    #[tokio::test]
    async fn a_changed_rotation_record_is_caught() {
        let (_dir, old, path) = rotated(2, 1).await;
        let pristine = fs::read_to_string(&path).unwrap();
        let l = lines(&path);

        // Edited in place: the link check names the file before the hash check would.
        let other = "1".repeat(64);
        let head = verify(&old).unwrap().head;
        fs::write(&path, pristine.replacen(&head, &other, 1)).unwrap();
        assert!(matches!(
            verify(&path),
            Err(VerifyError::Broken { line: 1, .. })
        ));
        let err = verify_files(&[old.clone(), path.clone()]).unwrap_err();
        assert!(
            matches!(&err, VerifyError::Gap { file, line: 1, .. } if file == &path),
            "{err}"
        );

        // Re-sealed so the file verifies alone: still not the old file's head.
        let mut forged = first(&path);
        forged.remove("hash");
        let mut bytes = Vec::new();
        let new_head = chain::seal(forged, &other, &mut bytes).unwrap();
        let rest: Vec<String> = l[1..]
            .iter()
            .map(|line| {
                let mut m: Map<String, Value> = serde_json::from_str(line).unwrap();
                m.remove("hash");
                let mut out = Vec::new();
                chain::seal(m, &new_head, &mut out).unwrap();
                String::from_utf8(out).unwrap()
            })
            .collect();
        bytes.extend(rest.concat().into_bytes());
        fs::write(&path, &bytes).unwrap();
        assert!(verify(&path).is_ok());
        assert!(matches!(
            verify_files(&[old.clone(), path.clone()]),
            Err(VerifyError::Gap { file, line: 1, .. }) if file == path
        ));

        // A wrong count is named too.
        fs::write(&path, &pristine).unwrap();
        let mut counted = first(&path);
        counted.remove("hash");
        counted.insert("previous_records".into(), Value::from(5));
        let mut bytes = Vec::new();
        let prev = counted["prev_hash"].as_str().unwrap().to_owned();
        chain::seal(counted, &prev, &mut bytes).unwrap();
        fs::write(&path, &bytes).unwrap();
        let err = verify_files(&[old.clone(), path.clone()]).unwrap_err();
        let name = old.file_name().unwrap().to_str().unwrap();
        assert!(
            err.to_string().ends_with(&format!(
                "line 1: previous_records is 5 but {name} holds 2 records"
            )),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_break_inside_a_later_file_names_that_file_and_line() {
        let (_dir, old, path) = rotated(1, 3).await;
        let mut l = lines(&path);
        l[2] = l[2].replacen("req-2", "req-7", 1);
        fs::write(&path, l.join("\n") + "\n").unwrap();
        let err = verify_files(&[old, path.clone()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: line 3: hash does not match the record", path.display())
        );
        assert!(!err.is_io());
        let err = verify_files(&[path.with_file_name("missing")]).unwrap_err();
        assert!(err.is_io(), "{err}");
    }

    #[test]
    fn only_a_rotation_record_may_start_a_file_with_a_non_zero_link() {
        let prev = "ab".repeat(32);
        let seal_one = |fields: &[(&str, Value)]| {
            let mut m = Map::new();
            for (k, v) in fields {
                m.insert((*k).into(), v.clone());
            }
            let mut out = Vec::new();
            chain::seal(m, &prev, &mut out).unwrap();
            out
        };
        let plain = seal_one(&[("request_id", Value::from("r"))]);
        assert!(matches!(
            chain::scan(&plain[..]),
            Err(ScanError::Broken { line: 1, ref reason }) if reason.contains("not a rotation record")
        ));
        // `event` alone does not make one.
        let bare = seal_one(&[("event", Value::from("rotation"))]);
        assert!(chain::scan(&bare[..]).is_err());
        let full = seal_one(&[
            ("event", Value::from("rotation")),
            ("previous_file", Value::from("a")),
            ("previous_records", Value::from(4)),
        ]);
        let s = chain::scan(&full[..]).unwrap();
        assert_eq!(s.continues_from.unwrap().prev_hash, prev);
        // Not at line 1, a rotation record is an ordinary link: it must match the line before.
        let mut two = full.clone();
        two.extend(&full);
        assert!(matches!(
            chain::scan(&two[..]),
            Err(ScanError::Broken { line: 2, .. })
        ));
    }

    #[tokio::test]
    async fn open_finishes_a_rotation_interrupted_between_the_renames() {
        let (_dir, old, path) = rotated(2, 0).await;
        // As if the crash came after the first rename: the new file is still `.next`.
        fs::rename(&path, next_path(&path)).unwrap();
        let (log, opened) = AuditLog::open(&path).unwrap();
        log.append(record(5)).await.unwrap();
        log.close().await;
        assert_eq!(opened.records, 1);
        assert!(!next_path(&path).exists());
        assert_eq!(verify_files(&[old, path]).unwrap().records, 2 + 2);
    }

    #[tokio::test]
    async fn open_undoes_a_rotation_that_never_took_effect() {
        let (_dir, old, path) = rotated(2, 0).await;
        // As if the crash came before the first rename: the old file is still the ledger.
        fs::rename(&path, next_path(&path)).unwrap();
        fs::rename(&old, &path).unwrap();
        let (log, opened) = AuditLog::open(&path).unwrap();
        log.close().await;
        assert_eq!(opened.records, 2);
        assert!(!next_path(&path).exists());

        // A `.next` with records beyond its rotation record is left for an operator.
        let (_dir, old, path) = rotated(2, 1).await;
        fs::rename(&path, next_path(&path)).unwrap();
        fs::rename(&old, &path).unwrap();
        let err = AuditLog::open(&path).err().unwrap();
        assert!(matches!(err, Error::PendingRotation { .. }), "{err}");
        assert!(next_path(&path).exists());
    }

    #[tokio::test]
    async fn rotate_after_close_is_refused_and_a_device_cannot_rotate() {
        let (_dir, _old, path) = rotated(1, 0).await;
        let (log, _) = AuditLog::open(&path).unwrap();
        log.close().await;
        assert!(matches!(log.rotate().await, Err(Error::Closed)));
        let full = Path::new("/dev/full");
        if full.exists() {
            let (log, _) = AuditLog::open(full).unwrap();
            assert!(matches!(log.rotate().await, Err(Error::NotRegular)));
            log.close().await;
        }
    }
}
