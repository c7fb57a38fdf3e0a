//! The single writer: owns the file and the chain head, commits records in groups.
//!
//! Group commit: the thread blocks for one message, then takes whatever else is queued (up to
//! [`MAX_BATCH`]), chains them, writes them with one `write` and one `fdatasync`, and only then
//! replies to each. While one fsync is in flight new records queue up and share the next, so the
//! disk sees one sync per batch instead of one per request, and every append still waits for its
//! own record to be durable.
//!
//! With checkpoints on, the writer hands its witness (`head.rs`) the chain head once a batch
//! is durable and answered, on this thread: it is the one place that knows it exactly.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use tokio::sync::mpsc;

use super::error::Error;
use super::files;
use super::head::Witness;
use super::ledger_file::LedgerFile;
use super::queue::{Job, Msg, Stats};
use super::rotate;

/// Most records in one commit: bounds the write size and the latency of the first in a batch.
const MAX_BATCH: usize = 1024;

/// Starts the writer thread.
pub(super) fn spawn(
    state: LedgerFile,
    witness: Option<Box<dyn Witness>>,
    rx: mpsc::Receiver<Msg>,
    stats: Arc<Stats>,
) -> Result<JoinHandle<()>, Error> {
    let writer = Writer {
        state,
        witness,
        stats,
        buf: Vec::new(),
    };
    thread::Builder::new()
        .name("audit-writer".into())
        .spawn(move || writer.run(rx))
        .map_err(Error::io("start the writer for"))
}

/// Starts the thread that sends [`Msg::Tick`] every `interval`. It holds only a weak sender,
/// so it never keeps the writer alive, and it stops once the writer is gone.
pub(super) fn spawn_ticker(
    tx: mpsc::WeakSender<Msg>,
    interval: std::time::Duration,
) -> Result<(), Error> {
    thread::Builder::new()
        .name("audit-checkpoint-tick".into())
        .spawn(move || loop {
            thread::sleep(interval);
            let Some(tx) = tx.upgrade() else { return };
            // A full queue means records are flowing, and batches check for checkpoints.
            if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(Msg::Tick) {
                return;
            }
        })
        .map(drop)
        .map_err(Error::io("start the checkpoint ticker for"))
}

struct Writer {
    state: LedgerFile,
    witness: Option<Box<dyn Witness>>,
    stats: Arc<Stats>,
    /// The batch being written, reused so steady state allocates nothing per batch.
    buf: Vec<u8>,
}

// === impl Writer ===

impl Writer {
    /// Runs until `close` or until every `AuditLog` handle is dropped. Nothing here panics; if
    /// it ever did, the dropped reply senders turn every waiting append into `WriterStopped`.
    fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut msgs = Vec::with_capacity(MAX_BATCH);
        loop {
            msgs.clear();
            if rx.blocking_recv_many(&mut msgs, MAX_BATCH) == 0 {
                tracing::debug!("audit writer: every handle dropped");
                return;
            }
            let mut jobs = Vec::with_capacity(msgs.len());
            let mut closes = Vec::new();
            let mut tick = false;
            for msg in msgs.drain(..) {
                match msg {
                    // Records queued after a close are dropped unwritten: their appends see
                    // `WriterStopped`, never a false acknowledgement.
                    Msg::Append(job) if closes.is_empty() => jobs.push(job),
                    Msg::Append(_) => {}
                    // A rotation splits the batch: what was queued before it is committed to
                    // the old file, what comes after goes to the new one.
                    Msg::Rotate(reply) if closes.is_empty() => {
                        self.commit(std::mem::take(&mut jobs));
                        let _ = reply.send(self.rotate());
                    }
                    Msg::Rotate(reply) => {
                        let _ = reply.send(Err(Error::Closed));
                    }
                    Msg::Close(ack) => closes.push(ack),
                    Msg::Tick => tick = true,
                }
            }
            self.commit(jobs);
            if tick || !closes.is_empty() {
                // Failures are logged and counted inside; the next tick or batch retries.
                if let Some(w) = &mut self.witness {
                    let _ = w.flush(&self.state.chain);
                }
            }
            if !closes.is_empty() {
                self.state.file = None;
                for ack in closes {
                    let _ = ack.send(());
                }
                return;
            }
        }
    }

    /// Chains, writes and syncs one batch, then answers every job in it.
    fn commit(&mut self, jobs: Vec<Job>) {
        self.buf.clear();
        let mut head = self.state.chain.head.clone();
        let mut waiting = Vec::with_capacity(jobs.len());
        for Job { record, reply } in jobs {
            match record.seal(&head, &mut self.buf) {
                Ok(hash) => {
                    head = hash;
                    waiting.push(reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(Error::Encode(e)));
                }
            }
        }
        if waiting.is_empty() {
            return;
        }
        let result = self
            .state
            .file()
            .and_then(|file| files::write_and_sync(file, &self.buf));
        match result {
            Ok(()) => {
                self.state.chain.head = head;
                self.state.len += self.buf.len() as u64;
                let n = waiting.len() as u64;
                self.state.chain.records += n;
                self.stats.records_written.fetch_add(n, Ordering::Relaxed);
                self.stats.batches.fetch_add(1, Ordering::Relaxed);
                tracing::trace!(records = n, bytes = self.buf.len(), "audit batch durable");
                for reply in waiting {
                    let _ = reply.send(Ok(()));
                }
                // After the replies: a checkpoint's fsync never delays the requests it follows.
                if let Some(w) = &mut self.witness {
                    w.after_batch(&self.state.chain);
                }
            }
            Err(error) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    records = waiting.len(),
                    bytes = self.buf.len(),
                    %error,
                    "audit batch not durable; rolled back to the last durable record"
                );
                // Answer first: the requests can fail fast while we clean up.
                let shared = Arc::new(error);
                for reply in waiting {
                    let _ = reply.send(Err(Error::NotDurable(shared.clone())));
                }
                self.roll_back();
            }
        }
    }

    /// Rotates, checkpointing the old file's end first: a restart counts the records of the
    /// files before from that checkpoint (its head is what the new file's first record links
    /// to), so without it the rotation is refused and the old file stays the ledger.
    fn rotate(&mut self) -> Result<PathBuf, Error> {
        let (records, head) = (self.state.chain.records, self.state.chain.head.clone());
        if let Some(w) = &mut self.witness {
            w.flush(&self.state.chain).map_err(|e| {
                Error::Checkpoint(format!(
                    "rotation refused: the old file's end cannot be checkpointed ({e})"
                ))
            })?;
        }
        let result = rotate::rotate(&mut self.state);
        // The new file took the ledger's name, even if a later step of `rotate` failed.
        if self.state.chain.head != head {
            if let Some(w) = &mut self.witness {
                w.rotated(records);
            }
        }
        result
    }

    /// Forgets the descriptor and cuts the file back; the head was never advanced. If the
    /// truncate fails the file stays closed and the next batch tries again before writing.
    fn roll_back(&mut self) {
        self.state.file = None;
        self.state.dirty = true;
        if let Err(error) = self.state.file() {
            tracing::warn!(%error, "cannot reopen the audit file yet; the next batch retries");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use std::io::Write;
    use std::path::Path;

    use tokio::sync::oneshot;

    use super::super::chain;
    use super::super::record::tests::record;
    use super::super::{query, verify, AuditLog, GENESIS_HASH};
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_appends_share_fsyncs_and_keep_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let (log, _) = AuditLog::open(&path).unwrap();
        let n = 200;
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let log = log.clone();
                tokio::spawn(async move { log.append(record(i)).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let stats = log.stats();
        log.close().await;

        let verified = verify(&path).unwrap();
        assert_eq!(verified.records, n as u64);
        assert_eq!(stats.records_written.load(Ordering::Relaxed), n as u64);
        let batches = stats.batches.load(Ordering::Relaxed);
        assert!(batches < n as u64, "no group commit: {batches} batches");
        assert_eq!(stats.failures.load(Ordering::Relaxed), 0);
        // Every request is there exactly once.
        let mut ids: Vec<String> = ["S0", "S1", "S2"]
            .iter()
            .flat_map(|s| query(&path, s).unwrap())
            .map(|(_, l)| {
                serde_json::from_str::<serde_json::Value>(&l).unwrap()["request_id"].to_string()
            })
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }

    #[tokio::test]
    async fn full_disk_fails_every_append_without_panicking() {
        let path = Path::new("/dev/full");
        if !path.exists() {
            return;
        }
        let (log, opened) = AuditLog::open(path).unwrap();
        assert_eq!(opened.records, 0);
        assert_eq!(opened.head, GENESIS_HASH);
        let stats = log.stats();
        for i in 0..3 {
            let err = log.append(record(i)).await.unwrap_err();
            assert!(matches!(err, Error::NotDurable(_)), "{err}");
            assert_eq!(stats.failures.load(Ordering::Relaxed), i as u64 + 1);
        }
        assert_eq!(stats.records_written.load(Ordering::Relaxed), 0);
        log.close().await;
    }

    #[tokio::test]
    async fn failed_batch_rolls_back_and_next_batch_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let (log, _) = AuditLog::open(&path).unwrap();
        log.append(record(0)).await.unwrap();
        log.close().await;
        let durable = std::fs::read(&path).unwrap();
        let head = chain::scan(&durable[..]).unwrap().head;

        // What a failed batch leaves: part of a record past the durable end.
        let mut file = files::open_append(&path).unwrap();
        file.write_all(b"{\"half\":").unwrap();
        assert!(verify(&path).is_err());
        let mut writer = Writer {
            state: LedgerFile::new(&path, file, true, durable.len() as u64, 1, head),
            witness: None,
            stats: Arc::new(Stats::default()),
            buf: Vec::new(),
        };
        writer.roll_back();
        assert_eq!(std::fs::read(&path).unwrap(), durable);

        // The next batch goes through the fresh descriptor and links to the durable head.
        let (reply, done) = oneshot::channel();
        let record =
            chain::Unsealed::new(super::super::record::to_map(record(1)).unwrap()).unwrap();
        writer.commit(vec![Job { record, reply }]);
        done.await.unwrap().unwrap();
        assert_eq!(verify(&path).unwrap().records, 2);
    }

    #[tokio::test]
    async fn append_after_close_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let (log, _) = AuditLog::open(&path).unwrap();
        log.append(record(0)).await.unwrap();
        log.close().await;
        log.close().await;
        assert!(matches!(log.append(record(1)).await, Err(Error::Closed)));
        assert_eq!(verify(&path).unwrap().records, 1);
    }
}
