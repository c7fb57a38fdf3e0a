//! The PostgreSQL ledger: the same chain as the file, one chain per replica, in one table.
//!
//! Each row is one record exactly as a file line holds it (`record`, the RFC 8785 text sealed
//! by [`chain::seal`]), with its chain name, its 1-based `seq` (the line number it would have in
//! the file), and `prev_hash` and `hash` copied out for reading. The primary key (chain, seq)
//! makes a fork impossible: two writers extending one chain both try the same `seq`, and the
//! second insert fails. On top of that a replica holds a session advisory lock on its chain, so
//! a second replica started with the same chain name refuses to start instead of failing later.
//!
//! The writer is a tokio task fed by the same queue as the file writer, so `AuditLog::append`
//! and `close` are unchanged. Group commit: it takes whatever is queued (up to [`MAX_BATCH`]),
//! chains it and commits it with one multi-row `INSERT`, a single statement and so a single
//! transaction, and replies to each append only after the commit returned. A commit that fails
//! or whose outcome is unknown (the connection dropped) fails every append in it (503); the
//! writer then reconnects with backoff and re-reads its chain's head, so rows that did commit
//! without an acknowledgement are linked to, never overwritten.
//!
//! [`read`] holds the DPO side: verify every chain, query across chains, export one as JSONL.
//! [`endpoint`] decides how the server is reached: the URL, `sslmode`, and TLS.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Statement};

use super::chain::{self, GENESIS_HASH};
use super::error::Error;
use super::queue::{Job, Msg, Opened, Stats};

pub mod endpoint;
pub mod read;

pub use endpoint::{Endpoint, SslMode};

/// Most records in one commit, as for the file: bounds the statement and the first's latency.
const MAX_BATCH: usize = 1024;

/// A commit that takes longer is treated as failed (outcome unknown): the connection is dropped
/// and the waiting requests get 503 rather than hang behind a partitioned database.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);

/// How often an idle writer checks the database, so `/readyz` follows it without traffic.
const PROBE_EVERY: Duration = Duration::from_secs(1);

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Bounds connecting and re-reading the head, so a writer never hangs on a half-open server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Namespace of our advisory locks (the first key of the two-key form): "ntk" in ASCII.
const LOCK_CLASS: i32 = 0x006e_746b;

/// The schema, in order. A version, once released, is never edited: add the next one.
const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    "CREATE TABLE audit_ledger (
        chain text NOT NULL,
        seq bigint NOT NULL CHECK (seq >= 1),
        ts text NOT NULL,
        record text NOT NULL,
        prev_hash text NOT NULL,
        hash text NOT NULL,
        CONSTRAINT audit_ledger_no_fork PRIMARY KEY (chain, seq)
    );
    CREATE INDEX audit_ledger_by_ts ON audit_ledger (ts, chain, seq);",
)];

const INSERT: &str = "INSERT INTO audit_ledger (chain, seq, ts, record, prev_hash, hash)
    SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[])";

const HEAD: &str =
    "SELECT seq, record, prev_hash, hash FROM audit_ledger WHERE chain = $1 ORDER BY seq DESC LIMIT 1";

/// Where to connect and which chain to extend.
#[derive(Clone, Debug)]
pub struct Target {
    pub endpoint: Endpoint,
    pub chain: String,
}

/// Connects within [`CONNECT_TIMEOUT`] unless the URL sets its own `connect_timeout`.
///
/// # Errors
///
/// [`Error::Postgres`] when the server cannot be reached or the TLS handshake fails.
pub async fn connect(endpoint: &Endpoint) -> Result<Client, Error> {
    endpoint.connect(CONNECT_TIMEOUT).await
}

/// Creates or upgrades the schema; safe to run from several replicas at once (a transaction
/// advisory lock serialises them).
///
/// # Errors
///
/// [`Error::Postgres`] when a statement fails (permissions, a newer unknown schema).
pub async fn migrate(client: &mut Client) -> Result<u32, Error> {
    let fail = |e: tokio_postgres::Error| Error::Postgres(format!("migration failed: {e}"));
    let tx = client.transaction().await.map_err(fail)?;
    tx.execute("SELECT pg_advisory_xact_lock($1, 0)", &[&LOCK_CLASS])
        .await
        .map_err(fail)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS need_to_know_migrations (
            version integer PRIMARY KEY,
            applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await
    .map_err(fail)?;
    let done: Vec<i32> = tx
        .query("SELECT version FROM need_to_know_migrations", &[])
        .await
        .map_err(fail)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut applied = 0;
    for (version, sql) in MIGRATIONS {
        if done.contains(version) {
            continue;
        }
        tx.batch_execute(sql).await.map_err(fail)?;
        tx.execute(
            "INSERT INTO need_to_know_migrations (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(fail)?;
        applied += 1;
    }
    tx.commit().await.map_err(fail)?;
    Ok(applied)
}

/// The chain's last committed row, checked: its record hashes to its `hash`, in canonical form.
struct Head {
    seq: i64,
    hash: String,
}

async fn read_head(client: &Client, chain_name: &str) -> Result<Head, Error> {
    let row = client
        .query_opt(HEAD, &[&chain_name])
        .await
        .map_err(|e| Error::Postgres(format!("cannot read the chain head: {e}")))?;
    let Some(row) = row else {
        return Ok(Head {
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
        });
    };
    let seq: i64 = row.get(0);
    let record: String = row.get(1);
    let prev_hash: String = row.get(2);
    let hash: String = row.get(3);
    let line = u64::try_from(seq).unwrap_or(0);
    let checked = chain::check_line(record.as_bytes(), &prev_hash, line);
    match checked {
        Ok((h, _)) if h == hash => Ok(Head { seq, hash }),
        _ => Err(Error::Damaged {
            line,
            reason: format!(
                "the last row of chain {chain_name:?} does not verify; run audit verify --postgres"
            ),
        }),
    }
}

/// Takes the chain's session lock: held as long as this connection lives.
async fn lock_chain(client: &Client, chain_name: &str) -> Result<(), Error> {
    let row = client
        .query_one(
            "SELECT pg_try_advisory_lock($1, hashtext($2))",
            &[&LOCK_CLASS, &chain_name],
        )
        .await
        .map_err(|e| Error::Postgres(format!("cannot lock the chain: {e}")))?;
    if row.get::<_, bool>(0) {
        Ok(())
    } else {
        Err(Error::ChainInUse {
            chain: chain_name.to_owned(),
        })
    }
}

/// Connects, migrates, locks the chain, reads its head, and starts the writer task.
///
/// # Errors
///
/// [`Error::Postgres`] when the database cannot be reached or migrated, [`Error::ChainInUse`]
/// when another live replica holds the chain, [`Error::Damaged`] when its last row is not sound.
pub(super) async fn open(
    target: Target,
    rx: mpsc::Receiver<Msg>,
    stats: Arc<Stats>,
) -> Result<(tokio::task::JoinHandle<()>, Opened), Error> {
    let mut client = connect(&target.endpoint).await?;
    let applied = migrate(&mut client).await?;
    if applied > 0 {
        tracing::info!(applied, "audit ledger schema migrated");
    }
    lock_chain(&client, &target.chain).await?;
    let head = read_head(&client, &target.chain).await?;
    let insert = prepare(&client).await?;
    let opened = Opened {
        records: u64::try_from(head.seq).unwrap_or(0),
        head: head.hash.clone(),
        recovered_torn_tail: None,
    };
    stats.probed.store(true, Ordering::Relaxed);
    let writer = Writer {
        target,
        conn: Some((Arc::new(client), insert)),
        seq: head.seq,
        head: head.hash,
        retry_at: Instant::now(),
        backoff: BACKOFF_MIN,
        fatal: None,
        stats,
    };
    Ok((tokio::spawn(writer.run(rx)), opened))
}

async fn prepare(client: &Client) -> Result<Statement, Error> {
    client
        .prepare(INSERT)
        .await
        .map_err(|e| Error::Postgres(format!("cannot prepare the insert: {e}")))
}

struct Writer {
    target: Target,
    /// `None` after a failure, until a reconnect succeeds.
    conn: Option<(Arc<Client>, Statement)>,
    /// The last committed row of our chain, and its hash.
    seq: i64,
    head: String,
    retry_at: Instant,
    backoff: Duration,
    /// Set when continuing would fork or rewrite the chain; every later append fails with it.
    fatal: Option<String>,
    stats: Arc<Stats>,
}

// === impl Writer ===

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut msgs = Vec::with_capacity(MAX_BATCH);
        loop {
            msgs.clear();
            let received = tokio::time::timeout(PROBE_EVERY, rx.recv_many(&mut msgs, MAX_BATCH));
            match received.await {
                Err(_idle) => {
                    self.probe().await;
                    continue;
                }
                Ok(0) => return,
                Ok(_) => {}
            }
            let mut jobs = Vec::with_capacity(msgs.len());
            let mut closes = Vec::new();
            for msg in msgs.drain(..) {
                match msg {
                    Msg::Append(job) if closes.is_empty() => jobs.push(job),
                    Msg::Append(_) => {}
                    Msg::Rotate(reply) => {
                        let _ = reply.send(Err(Error::Unsupported(
                            "rotation applies to the file ledger; PostgreSQL keeps one table",
                        )));
                    }
                    Msg::Close(ack) => closes.push(ack),
                    // Checkpoints are a file-ledger feature; serve refuses both together.
                    Msg::Tick => {}
                }
            }
            self.commit(jobs).await;
            if !closes.is_empty() {
                self.conn = None;
                for ack in closes {
                    let _ = ack.send(());
                }
                return;
            }
        }
    }

    fn set_available(&self, ok: bool) {
        self.stats.unavailable.store(!ok, Ordering::Relaxed);
    }

    /// An idle check, so readiness follows the database even without requests.
    async fn probe(&mut self) {
        if self.fatal.is_some() {
            return;
        }
        let alive = match &self.conn {
            Some((client, _)) if !client.is_closed() => {
                let ping = tokio::time::timeout(COMMIT_TIMEOUT, client.simple_query("SELECT 1"));
                matches!(ping.await, Ok(Ok(_)))
            }
            _ => false,
        };
        if alive {
            self.set_available(true);
            return;
        }
        self.conn = None;
        let _ = self.connection().await;
    }

    /// The live connection, reconnecting (no sooner than the backoff allows) after a failure.
    async fn connection(&mut self) -> Result<(Arc<Client>, Statement), Error> {
        if let Some(fatal) = &self.fatal {
            return Err(Error::Forked(fatal.clone()));
        }
        if let Some((client, insert)) = &self.conn {
            if !client.is_closed() {
                return Ok((client.clone(), insert.clone()));
            }
            self.conn = None;
        }
        if Instant::now() < self.retry_at {
            return Err(Error::Unavailable(
                "PostgreSQL is unreachable; reconnecting".into(),
            ));
        }
        let attempt = tokio::time::timeout(CONNECT_TIMEOUT, self.reconnect()).await;
        let attempt =
            attempt.unwrap_or_else(|_| Err(Error::Unavailable("reconnecting timed out".into())));
        match attempt {
            Ok(conn) => {
                self.backoff = BACKOFF_MIN;
                self.conn = Some(conn.clone());
                self.set_available(true);
                tracing::info!(chain = %self.target.chain, seq = self.seq, "audit ledger reconnected");
                Ok(conn)
            }
            Err(e) => {
                self.set_available(false);
                self.retry_at = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                if let Error::Forked(reason) = &e {
                    self.fatal = Some(reason.clone());
                }
                tracing::warn!(error = %e, retry_in_ms = self.backoff.as_millis() as u64, "audit ledger cannot reconnect");
                Err(e)
            }
        }
    }

    /// A new connection holding the chain lock, and the chain head re-read: a commit whose
    /// answer was lost may have landed, and the next record must link to it.
    async fn reconnect(&mut self) -> Result<(Arc<Client>, Statement), Error> {
        let client = connect(&self.target.endpoint).await?;
        lock_chain(&client, &self.target.chain).await?;
        let head = read_head(&client, &self.target.chain).await?;
        if head.seq < self.seq {
            return Err(Error::Forked(format!(
                "chain {:?} lost committed rows: the database ends at seq {}, this replica committed up to {}",
                self.target.chain, head.seq, self.seq
            )));
        }
        if head.seq == self.seq && head.hash != self.head {
            return Err(Error::Forked(format!(
                "chain {:?} seq {} was rewritten by another writer",
                self.target.chain, head.seq
            )));
        }
        if head.seq > self.seq {
            tracing::warn!(
                chain = %self.target.chain,
                rows = head.seq - self.seq,
                "rows of a commit whose answer was lost are in the ledger; their requests got 503"
            );
        }
        self.seq = head.seq;
        self.head = head.hash;
        let insert = prepare(&client).await?;
        Ok((Arc::new(client), insert))
    }

    /// Chains one batch, commits it in one statement, then answers every job in it.
    async fn commit(&mut self, jobs: Vec<Job>) {
        if jobs.is_empty() {
            return;
        }
        let mut head = self.head.clone();
        let mut seq = self.seq;
        let (mut seqs, mut tss, mut records, mut prevs, mut hashes) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut waiting = Vec::with_capacity(jobs.len());
        let mut buf = Vec::new();
        for Job { record, reply } in jobs {
            let ts = record.ts().to_owned();
            buf.clear();
            match record.seal(&head, &mut buf) {
                Ok(hash) => {
                    buf.pop(); // the newline: a row holds the line without it
                    let Ok(line) = String::from_utf8(buf.clone()) else {
                        let _ = reply.send(Err(Error::Unavailable("record is not UTF-8".into())));
                        continue;
                    };
                    seq += 1;
                    seqs.push(seq);
                    tss.push(ts);
                    records.push(line);
                    prevs.push(std::mem::replace(&mut head, hash.clone()));
                    hashes.push(hash);
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
        let n = waiting.len() as u64;
        let result = match self.connection().await {
            Err(e) => Err(e),
            Ok((client, insert)) => {
                let chain_name = &self.target.chain;
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] =
                    [chain_name, &seqs, &tss, &records, &prevs, &hashes];
                match tokio::time::timeout(COMMIT_TIMEOUT, client.execute(&insert, &params)).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                        let reason = format!(
                            "chain {:?} seq {} is already taken by another writer: is a second replica running with this chain name? refusing to append",
                            chain_name,
                            self.seq + 1
                        );
                        self.fatal = Some(reason.clone());
                        Err(Error::Forked(reason))
                    }
                    Ok(Err(e)) => Err(Error::Unavailable(format!("commit failed: {e}"))),
                    Err(_) => Err(Error::Unavailable("commit timed out".into())),
                }
            }
        };
        match result {
            Ok(()) => {
                self.seq = seq;
                self.head = head;
                self.set_available(true);
                self.stats.records_written.fetch_add(n, Ordering::Relaxed);
                self.stats.batches.fetch_add(1, Ordering::Relaxed);
                tracing::trace!(records = n, "audit batch committed");
                for reply in waiting {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(error) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                self.set_available(false);
                tracing::error!(records = n, %error, "audit batch not committed");
                // The outcome may be unknown: forget the connection so the next batch
                // reconnects and re-reads the head instead of guessing.
                self.conn = None;
                for reply in waiting {
                    let _ = reply.send(Err(match &error {
                        Error::Forked(r) => Error::Forked(r.clone()),
                        other => Error::Unavailable(other.to_string()),
                    }));
                }
            }
        }
    }
}
