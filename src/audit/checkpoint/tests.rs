use std::time::Duration;

use super::super::record::tests::record;
use super::super::{verify_files, AuditLog, Options};
use super::*;

/// A key pair in `dir`: (config for `audit` in `dir`, public key).
fn setup(dir: &Path, every: u64) -> (PathBuf, Config, PublicKey) {
    let (private, public) = generate().unwrap();
    std::fs::write(dir.join("checkpoint.key"), private).unwrap();
    let audit = dir.join("audit.jsonl");
    let config = Config {
        key: dir.join("checkpoint.key"),
        path: dir.join("audit.jsonl.checkpoints"),
        every,
        interval: Duration::from_secs(3600),
    };
    (audit, config, public)
}

fn options(config: &Config) -> Options {
    Options {
        checkpoints: Some(config.clone()),
    }
}

fn checkpoints(config: &Config) -> Vec<Checkpoint> {
    std::fs::read_to_string(&config.path)
        .unwrap()
        .lines()
        .map(|l| Checkpoint::parse(l.as_bytes()).unwrap())
        .collect()
}

async fn write(path: &Path, config: &Config, from: usize, n: usize) {
    let (log, _) = AuditLog::open_with(path, &options(config)).unwrap();
    for i in from..from + n {
        log.append(record(i)).await.unwrap();
    }
    log.close().await;
}

#[test]
fn the_signed_message_is_the_documented_bytes() {
    let head = "ab".repeat(32);
    let m = message(1000, &head, "2026-12-01T12:45:20.123Z");
    let text =
        format!("need-to-know audit checkpoint v1\n1000\n{head}\n2026-12-01T12:45:20.123Z\n");
    assert_eq!(m, text.as_bytes());
}

#[test]
fn parse_refuses_every_malformed_value() {
    let ok = r#"{"head":"HEAD","sig":"SIG","size":3,"ts":"2026-12-01T12:45:20.123Z"}"#
        .replace("HEAD", &"a".repeat(64))
        .replace("SIG", &"b".repeat(128));
    assert!(Checkpoint::parse(ok.as_bytes()).is_ok());
    for bad in [
        ok.replace(":3,", ":0,"),
        ok.replace(":3,", ":-1,"),
        ok.replace(&"a".repeat(64), &"A".repeat(64)),
        ok.replace(&"b".repeat(128), &"b".repeat(127)),
        ok.replace("12:45:20", "12:45\\n20"),
        ok.replace("{", r#"{"extra":1,"#),
        ok.replace(r#","size":3"#, ""),
    ] {
        assert!(Checkpoint::parse(bad.as_bytes()).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn every_n_records_and_on_close_each_signed_and_matching() {
    let dir = tempfile::tempdir().unwrap();
    let (path, config, public) = setup(dir.path(), 3);
    write(&path, &config, 0, 7).await;
    let written = checkpoints(&config);
    // One append a batch here: after records 3 and 6, then the tail on close.
    let sizes: Vec<u64> = written.iter().map(|c| c.size).collect();
    assert_eq!(sizes, [3, 6, 7]);
    assert!(written.iter().all(|c| c.signed_by(&public)));
    assert_eq!(
        written[2].head,
        verify_files(std::slice::from_ref(&path)).unwrap().head
    );
    let w = verify(&[path], &config.path, &public).unwrap();
    assert_eq!((w.checkpoints, w.records, w.unwitnessed()), (3, 7, 0));
}

#[tokio::test]
async fn the_interval_witnesses_an_idle_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut config, _) = setup(dir.path(), 1000);
    config.interval = Duration::from_millis(50);
    let (log, _) = AuditLog::open_with(&path, &options(&config)).unwrap();
    log.append(record(0)).await.unwrap();
    let mut sizes = Vec::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        sizes = checkpoints(&config).iter().map(|c| c.size).collect();
        if !sizes.is_empty() {
            break;
        }
    }
    assert_eq!(sizes, [1], "no checkpoint within 2 s of an idle record");
    log.close().await;
    assert_eq!(
        checkpoints(&config).len(),
        1,
        "nothing new to witness on close"
    );
}

#[tokio::test]
async fn size_counts_across_restarts_and_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let (path, config, public) = setup(dir.path(), 2);
    write(&path, &config, 0, 3).await;
    let (log, _) = AuditLog::open_with(&path, &options(&config)).unwrap();
    log.append(record(3)).await.unwrap();
    let old = log.rotate().await.unwrap();
    log.append(record(4)).await.unwrap();
    log.close().await;
    // Restart on the rotated-to file: the base comes from the last checkpoint.
    write(&path, &config, 5, 2).await;
    let files = [old, path];
    let total = verify_files(&files).unwrap();
    // 4 records, then a rotation record and 3 more.
    assert_eq!(total.records, 8);
    let w = verify(&files, &config.path, &public).unwrap();
    assert_eq!(w.records, 8);
    assert_eq!(w.last.as_ref().map(|c| c.size), Some(8));
    assert_eq!(w.last.map(|c| c.head), Some(total.head));
    // The current file alone cannot be placed in the chain.
    let e = verify(&files[1..], &config.path, &public).unwrap_err();
    assert!(matches!(e, CheckpointError::NotFromStart { .. }), "{e}");
}

#[tokio::test]
async fn a_replaced_or_cut_ledger_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let (path, config, _) = setup(dir.path(), 2);
    write(&path, &config, 0, 4).await;
    let text = std::fs::read_to_string(&path).unwrap();
    let first_two: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, first_two).unwrap();
    let e = AuditLog::open_with(&path, &options(&config)).unwrap_err();
    assert!(e.to_string().contains("is not in"), "{e}");
    std::fs::remove_file(&path).unwrap();
    assert!(AuditLog::open_with(&path, &options(&config)).is_err());
}

#[tokio::test]
async fn a_torn_checkpoint_line_is_cut_at_open_and_damage_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (path, config, public) = setup(dir.path(), 2);
    write(&path, &config, 0, 2).await;
    let whole = std::fs::read(&config.path).unwrap();
    let mut torn = whole.clone();
    torn.extend_from_slice(br#"{"head":"ab"#);
    std::fs::write(&config.path, &torn).unwrap();
    assert!(verify(std::slice::from_ref(&path), &config.path, &public).is_err());
    write(&path, &config, 2, 2).await;
    let w = verify(std::slice::from_ref(&path), &config.path, &public).unwrap();
    assert_eq!((w.checkpoints, w.records), (2, 4));

    let mut damaged = b"{}\n".to_vec();
    damaged.extend_from_slice(&whole);
    std::fs::write(&config.path, &damaged).unwrap();
    let e = AuditLog::open_with(&path, &options(&config)).unwrap_err();
    assert!(e.to_string().contains("line 1"), "{e}");
}

#[tokio::test]
async fn a_failed_checkpoint_is_counted_and_retried_without_losing_records() {
    let dir = tempfile::tempdir().unwrap();
    let (path, config, public) = setup(dir.path(), 1);
    write(&path, &config, 0, 1).await;
    let (ledger, _) = super::super::recover::open(&path).unwrap();
    let stats = Arc::new(Stats::default());
    let mut c =
        Checkpointer::open(&config, &path, ledger.regular, &ledger.chain, stats.clone()).unwrap();
    let mut now = ledger.chain.clone();
    // Nothing unwitnessed: no write.
    c.flush(&now).unwrap();
    // A full disk for the next write.
    c.file = Some(OpenOptions::new().append(true).open("/dev/full").unwrap());
    now.records += 1;
    now.head = "cd".repeat(32);
    c.after_batch(&now);
    assert_eq!(stats.checkpoint_failures.load(Ordering::Relaxed), 1);
    assert!(stats.checkpoint_failing.load(Ordering::Relaxed));
    assert_eq!(c.witnessed, 1);
    // The retry reopens the real file.
    c.flush(&now).unwrap();
    assert!(!stats.checkpoint_failing.load(Ordering::Relaxed));
    let written = checkpoints(&config);
    assert_eq!(written.len(), 2);
    assert!(written[1].signed_by(&public) && written[1].size == 2);
}

#[tokio::test]
async fn every_byte_flip_of_the_checkpoint_file_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (path, config, public) = setup(dir.path(), 2);
    write(&path, &config, 0, 5).await;
    let files = [path];
    let bytes = std::fs::read(&config.path).unwrap();
    verify(&files, &config.path, &public).unwrap();
    let flipped = dir.path().join("flipped");
    let mut accepted = Vec::new();
    for at in 0..bytes.len() {
        let mut changed = bytes.clone();
        changed[at] ^= 1;
        std::fs::write(&flipped, &changed).unwrap();
        if verify(&files, &flipped, &public).is_ok() {
            accepted.push(at);
        }
    }
    assert!(accepted.is_empty(), "flips accepted at {accepted:?}");
}

#[tokio::test]
async fn turned_on_after_rotations_counts_the_files_before() {
    let dir = tempfile::tempdir().unwrap();
    let (path, config, public) = setup(dir.path(), 1);
    let (log, _) = AuditLog::open(&path).unwrap();
    for i in 0..3 {
        log.append(record(i)).await.unwrap();
    }
    let old = log.rotate().await.unwrap();
    log.append(record(3)).await.unwrap();
    log.close().await;
    // 3 records, then a rotation record, one more, and now one with checkpoints on.
    write(&path, &config, 4, 1).await;
    let files = [old.clone(), path.clone()];
    let w = verify(&files, &config.path, &public).unwrap();
    assert_eq!(w.last.map(|c| c.size), Some(6));

    // Without the rotated file the count is unknown: refused, naming it.
    std::fs::remove_file(&config.path).unwrap();
    std::fs::rename(&old, dir.path().join("elsewhere")).unwrap();
    let e = AuditLog::open_with(&path, &options(&config)).unwrap_err();
    let name = old.file_name().unwrap().to_string_lossy().into_owned();
    assert!(e.to_string().contains(&name), "{e}");
}
