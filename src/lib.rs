//! need-to-know: a data-minimisation gateway.
//!
//! A reverse proxy between a housing management system and the organisations that need a
//! slice of its data. Each recipient is identified, may call only the routes its type is
//! granted, and receives only the fields its purpose justifies; every disclosure is recorded
//! in a hash-chained audit log before the response leaves.
//!
//! # Layout
//!
//! The modules in groups. Within the crate each depends only on those before it in this
//! order: `path`, `json`, `diag`, `audit` → `filter` → `routes` → `rules` → `config` → `tls`,
//! `connection` → `metrics`, `identity`, `limits`, `upstream` → `rejection` → `stream` →
//! `pipeline`, `dry_run` → `server`, `admin`, `reload` → `cli` (`scripts/module-graph` checks
//! it). `docs/architecture.md` has the map and the request path.

// The request path.
pub(crate) mod connection;
pub mod identity;
pub mod limits;
pub mod pipeline;
pub mod rejection;
pub mod routes;
pub mod server;
pub mod stream;
pub mod upstream;

// The policy and the filter.
pub mod diag;
pub mod filter;
pub mod json;
pub mod path;
pub mod rules;

// The disclosure ledger.
pub mod audit;

// The Data Protection Officer's tools.
pub(crate) mod casebook;
pub mod dry_run;
pub mod register;
pub(crate) mod report;

// Operations.
pub mod admin;
pub mod certs;
pub mod cli;
pub mod config;
pub mod metrics;
pub mod reload;
pub mod tls;

// Development: an invented housing system to run against (`demo`, tests); the unit tests
// use it whatever the features.
#[cfg(any(feature = "demo", test))]
pub mod sample_api;

// What the unit tests share.
#[cfg(test)]
pub(crate) mod test_util;
