//! The DPO's view of the PostgreSQL ledger: verify every chain, query across chains, export one.
//!
//! All of it reads rows in pages by `seq`, so a large ledger never sits in memory whole, and
//! checks each row with the same [`chain::check_line`] the file verifier uses, with `seq` as the
//! line number: an exported chain is byte for byte the file it would have been.

use std::io::Write;

use serde_json::Value;
use tokio_postgres::Client;

use super::super::chain::{self, Fault, GENESIS_HASH};
use super::super::error::Error;

/// Rows fetched per round trip.
const PAGE: i64 = 5000;

/// The verdict on one chain.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainVerdict {
    pub chain: String,
    /// Rows that verified (all of them, or those before the broken one).
    pub records: u64,
    /// The last verified `hash`.
    pub head: String,
    /// The first broken row: its `seq` and why.
    pub broken: Option<(i64, String)>,
}

fn db(op: &'static str) -> impl Fn(tokio_postgres::Error) -> Error {
    move |e| Error::Postgres(format!("cannot {op}: {e}"))
}

/// The chain names, sorted.
///
/// # Errors
///
/// [`Error::Postgres`] when the query fails (no schema yet, no permission).
pub async fn chains(client: &Client) -> Result<Vec<String>, Error> {
    let rows = client
        .query(
            "SELECT DISTINCT chain FROM audit_ledger ORDER BY chain",
            &[],
        )
        .await
        .map_err(db("list the chains"))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Calls `each(seq, record, prev_hash, hash)` for every row of `chain_name` in `seq` order,
/// stopping when it returns `false`.
async fn each_row(
    client: &Client,
    chain_name: &str,
    mut each: impl FnMut(i64, &str, &str, &str) -> bool,
) -> Result<(), Error> {
    let mut after = 0i64;
    loop {
        let rows = client
            .query(
                "SELECT seq, record, prev_hash, hash FROM audit_ledger
                 WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                &[&chain_name, &after, &PAGE],
            )
            .await
            .map_err(db("read the chain"))?;
        for row in &rows {
            let seq: i64 = row.get(0);
            after = seq;
            if !each(seq, row.get(1), row.get(2), row.get(3)) {
                return Ok(());
            }
        }
        if (rows.len() as i64) < PAGE {
            return Ok(());
        }
    }
}

/// Checks one chain: `seq` runs 1, 2, 3 without a gap, every record links to the one before
/// and hashes to its `hash` in canonical form, and the `prev_hash`/`hash` columns agree with
/// the record.
///
/// # Errors
///
/// [`Error::Postgres`] when it cannot be read; a broken chain is a verdict, not an error.
pub async fn verify_chain(client: &Client, chain_name: &str) -> Result<ChainVerdict, Error> {
    let mut verdict = ChainVerdict {
        chain: chain_name.to_owned(),
        records: 0,
        head: GENESIS_HASH.to_owned(),
        broken: None,
    };
    each_row(client, chain_name, |seq, record, prev_col, hash_col| {
        let expected = verdict.records as i64 + 1;
        let fault = if seq != expected {
            Some(format!("seq {expected} is missing"))
        } else {
            match chain::check_line(record.as_bytes(), &verdict.head, seq as u64) {
                Err(Fault::Unparsable(e)) => Some(format!("not valid JSON ({e})")),
                Err(Fault::Broken(reason)) => Some(reason.replace(
                    &format!("line {}'s", seq - 1),
                    &format!("seq {}'s", seq - 1),
                )),
                Ok((hash, _)) if hash != hash_col || prev_col != verdict.head => {
                    Some("the prev_hash or hash column does not match the record".into())
                }
                Ok((hash, _)) => {
                    verdict.records += 1;
                    verdict.head = hash;
                    None
                }
            }
        };
        match fault {
            None => true,
            Some(reason) => {
                verdict.broken = Some((expected.min(seq), reason));
                false
            }
        }
    })
    .await?;
    Ok(verdict)
}

/// Every record whose `subjects` holds `subject`, from every chain, oldest first (by `ts`, then
/// chain and `seq`), as stored (one JSON object each).
///
/// Like the file's query it does not check the chain, so a subject access request can still be
/// answered from a ledger that fails to verify; a row that is not JSON is skipped with a warning.
///
/// # Errors
///
/// [`Error::Postgres`] when the query fails.
pub async fn query(client: &Client, subject: &str) -> Result<Vec<String>, Error> {
    // A record's text is RFC 8785, so the subject appears in it exactly as its JSON string;
    // the database narrows by that text, and the JSON is checked here.
    let needle = serde_json::to_string(subject)?;
    let rows = client
        .query(
            "SELECT chain, seq, record FROM audit_ledger WHERE strpos(record, $1) > 0
             ORDER BY ts, chain, seq",
            &[&needle],
        )
        .await
        .map_err(db("query the ledger"))?;
    let mut found = Vec::new();
    for row in rows {
        let record: String = row.get(2);
        let Ok(value) = serde_json::from_str::<Value>(&record) else {
            let chain_name: String = row.get(0);
            let seq: i64 = row.get(1);
            tracing::warn!(chain = %chain_name, seq, "audit query: skipped a row that is not JSON");
            continue;
        };
        let holds = value["subjects"]
            .as_array()
            .is_some_and(|s| s.iter().any(|v| v.as_str() == Some(subject)));
        if holds {
            found.push(record);
        }
    }
    Ok(found)
}

/// Calls `each(seq, record)` for every row of `chain_name` in `seq` order, a page at a time,
/// as stored (one JSON object each). Like [`query`] it does not check the chain.
///
/// # Errors
///
/// [`Error::Postgres`] when it cannot be read.
pub async fn each_record(
    client: &Client,
    chain_name: &str,
    mut each: impl FnMut(i64, &str),
) -> Result<(), Error> {
    each_row(client, chain_name, |seq, record, _, _| {
        each(seq, record);
        true
    })
    .await
}

/// Writes `chain_name` as the JSONL file it would have been (one row a line, in `seq` order):
/// `audit verify FILE` and any JCS + SHA-256 checker accept it unchanged. Returns the rows
/// written.
///
/// # Errors
///
/// [`Error::Postgres`] when it cannot be read, [`Error::Io`] when `out` fails.
pub async fn export(client: &Client, chain_name: &str, out: &mut dyn Write) -> Result<u64, Error> {
    let mut written = 0u64;
    let mut failed = None;
    each_row(client, chain_name, |_, record, _, _| {
        match out
            .write_all(record.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
        {
            Ok(()) => {
                written += 1;
                true
            }
            Err(e) => {
                failed = Some(e);
                false
            }
        }
    })
    .await?;
    if let Some(e) = failed {
        return Err(Error::Io {
            op: "write the export of",
            source: e,
        });
    }
    out.flush().map_err(Error::io("write the export of"))?;
    Ok(written)
}
