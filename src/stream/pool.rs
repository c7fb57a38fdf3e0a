//! The threads that filter streamed batches: one per core, started on first use.
//!
//! Filtering is CPU work, so it does not belong on the async runtime's workers. tokio's
//! blocking pool would run it, but spreads it over as many threads as happen to be free,
//! and each thread's allocator keeps its own pages: a 100 MiB export then grew the
//! gateway's resident memory by 81 MiB instead of about 25. A fixed set of threads, as many
//! as the machine has cores, bounds both the parallelism and the memory.

use std::panic::AssertUnwindSafe;
use std::sync::{mpsc, Arc, Mutex, OnceLock};

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// The queue of the filter threads; `None` when not one of them could be started.
static POOL: OnceLock<Option<mpsc::Sender<Job>>> = OnceLock::new();

/// Runs `work` on a filter thread; its result arrives on the receiver. The receiver fails
/// (is closed) if `work` panicked.
pub fn spawn<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> oneshot::Receiver<T> {
    let (tx, rx) = oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(work());
    });
    match POOL.get_or_init(start) {
        Some(queue) => {
            if let Err(mpsc::SendError(job)) = queue.send(job) {
                // The threads are gone (cannot happen while the process runs): do it here.
                job();
            }
        }
        // No thread could be started: tokio's blocking pool does the work instead.
        None => drop(tokio::task::spawn_blocking(job)),
    }
    rx
}

fn start() -> Option<mpsc::Sender<Job>> {
    let (tx, rx) = mpsc::channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut started = 0;
    for i in 0..cores.clamp(1, 16) {
        let rx = Arc::clone(&rx);
        let thread = std::thread::Builder::new()
            .name(format!("stream-filter-{i}"))
            .spawn(move || work(&rx));
        match thread {
            Ok(_) => started += 1,
            Err(e) => tracing::warn!(error = %e, "cannot start a stream filter thread"),
        }
    }
    (started > 0).then_some(tx)
}

/// One filter thread: takes jobs until the queue closes. A job that panics loses only its
/// own result (its receiver sees the sender dropped), not the thread.
fn work(queue: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        let job = match queue.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

    #[tokio::test]
    async fn results_arrive_and_a_panic_closes_only_its_own_receiver() {
        let panicked = super::spawn(|| -> u32 { panic!("a filter bug") });
        assert!(panicked.await.is_err());
        let results: Vec<_> = (0..8u32).map(|i| super::spawn(move || i * 2)).collect();
        for (i, rx) in results.into_iter().enumerate() {
            assert_eq!(rx.await.unwrap(), i as u32 * 2);
        }
    }
}
