//! need-to-know: a data-minimisation gateway.
//!
//! A reverse proxy between a housing management system and the organisations that need a
//! slice of its data. Each recipient is identified, may call only the routes its type is
//! granted, and receives only the fields its purpose justifies; every disclosure is recorded
//! in a hash-chained audit log before the response leaves.
//!
//! # Layout
//!
//! One module per step of the request path, in the order a request meets them:
//!
//! - [`config`]: the gateway's settings (`need-to-know.toml` and environment overrides).
//! - [`rules`]: `rules/` parsed and checked into an immutable [`rules::Policy`].
//! - [`server`]: accepts connections and hands each request to the pipeline.
//! - [`connection`]: what a request knows of its connection: the peer's address, its
//!   certificate, and a way to close it.
//! - [`pipeline`]: the phases in order, and the one place errors become responses.
//! - [`tls`]: rustls server and upstream configs; the identity a client certificate carries.
//! - [`identity`]: who is calling (client certificate or API key).
//! - [`routes`]: request-target hygiene and route grants.
//! - [`limits`]: per-recipient rate limits behind one trait: governor, or shared in Redis.
//! - [`upstream`]: the hyper client to the housing system.
//! - [`json`]: the strict parser for upstream bodies (duplicate keys, depth).
//! - [`path`]: field paths in rule form (`tenant.access_needs[].description`).
//! - [`filter`]: the pure function from upstream JSON to what a recipient may see.
//! - [`stream`]: large array responses filtered element by element as they arrive.
//! - [`dry_run`]: a request decided without a network, for `explain`, `test` and `diff`.
//! - [`casebook`]: the DPO's policy test cases (`rules/tests/`), for `test`.
//! - [`audit`]: the durable, hash-chained disclosure ledger (a file, or PostgreSQL for several
//!   replicas); verify and query.
//! - [`register`]: the disclosure register (UK GDPR Art. 30 view) of the loaded rules.
//! - [`metrics`]: Prometheus metrics; [`admin`]: `/healthz`, `/readyz`, `/metrics`.
//! - [`certs`]: development certificates (rcgen) for `certs dev` and the tests.
//! - [`report`]: the subject access report (`audit report`).
//! - [`reload`]: hot reload of the rules (SIGHUP, file changes).
//! - [`cli`]: the command line.
//! - [`sample_api`]: an invented housing system to run against (`demo`, tests).

pub mod admin;
pub mod audit;
pub mod casebook;
pub mod certs;
pub mod cli;
pub mod config;
pub mod connection;
pub mod diag;
pub mod dry_run;
pub mod filter;
pub mod identity;
pub mod json;
pub mod limits;
pub mod metrics;
pub mod path;
pub mod pipeline;
pub mod register;
pub mod reload;
pub mod report;
pub mod routes;
pub mod rules;
pub mod sample_api;
pub mod server;
pub mod stream;
pub mod tls;
pub mod upstream;
