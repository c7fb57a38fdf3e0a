//! need-to-know's integration tests: the real gateway on 127.0.0.1 in front of a real
//! upstream, and the real binary for the command line.

mod support;

// Who is calling: API keys, 401s, the credential swap.
mod identity;
// Request-target hygiene, route and method grants, query allow-lists, repeatable parameters
// and bindings.
mod routes;
// What a recipient sees: the allow-list on the raw bytes, header allow-list, and every way
// an upstream response is refused.
mod filter;
// Conditional disclosure through the real server: when, items, derive, refuse, CEL errors.
mod conditions;
// Lookups: a second upstream record the rules read, fetched with the gateway's credential.
mod lookups;
// Writes: only the accepted body paths, requires before forwarding, bytes unchanged.
mod writes;
// The disclosure ledger: a record per request, the chain, 503 when it cannot be written.
mod audit;
// TLS and mutual TLS: certificate identity, refusals, an https upstream.
mod tls;
// Operating it: rate limits, admin endpoints and metrics, hot reload.
mod operations;
// Rate limits shared by two real gateway processes through a throw-away Redis; its outages.
mod limits_redis;
// The shipped rules/ against the sample housing API, type by type; citations in rules/.
mod policy;
// The binary: check, keygen, serve refusing to start, audit verify and query.
mod cli;
// Audit file rotation: a new file continues the chain; verify and query over several files.
mod audit_rotation;
// Inclusion proofs for a data subject (`audit prove`, `check-proof`), and their check by an
// independent Go implementation of C2SP notes and RFC 6962.
mod ledger_proofs;
// The disclosure register (Art. 30 view) from the shipped rules.
mod register;
// `audit fields`: the paths the upstream sent per route, from a ledger the gateway wrote.
mod audit_fields;
// `demo` from an empty directory: every command it prints runs as printed; its run directory.
mod demo;
// The subject access report and the register printed by headless Chromium, page by page.
mod print;
// Hostile requests: smuggling and malformed HTTP/1.1, path and query normalisation.
mod hostile;
// Signed audit checkpoints: keygen --checkpoint, every tamper case caught by verify, serve.
mod checkpoints;
// The PostgreSQL ledger: two gateway processes on one throw-away server, the DPO tools over
// every chain, an outage under load, a duplicate chain refused, a tampered row named.
mod ledger_postgres;
// Large array responses streamed element by element: same answer, audited, fail closed.
mod streaming;
// Hostile upstream JSON: JSONTestSuite's must-reject and implementation-defined documents, bombs.
mod hostile_json;
// Refusals before identity: bounded records, a per-address budget, summaries of the rest.
mod unauthenticated;
// Streamed exports hold their in-flight slot; a stream whose recipient stops taking it is cut.
mod stream_limits;
