//! `sample-api`: the invented housing API alone, as an upstream for `serve`, so the TLS and
//! `serve` walk-throughs can be followed without a housing management system.
//!
//! Its data is made for today (the caution markers' review dates move with it) and is the
//! same data `demo` serves; no real person is in it.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;

use crate::cli::serve::shutdown_signal;
use crate::sample_api::{self, Date, SampleData};

/// Where the shipped `need-to-know.toml` expects its upstream: `url` without the `/api` base.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Serves the sample API on `listen` under `/api` until Ctrl-C or SIGTERM. With `token_env`,
/// every request must carry `Authorization: Bearer` and that variable's value, as the
/// gateway sends it with `[upstream] credential_env`.
pub fn run(listen: SocketAddr, token_env: Option<&str>) -> anyhow::Result<u8> {
    let token = match token_env {
        Some(name) => Some(
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .with_context(|| format!("the environment variable {name} is not set"))?,
        ),
        None => None,
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let data = Arc::new(SampleData::generate(Date::today()));
        println!("sample housing API on http://{addr}/api (Ctrl-C stops it)");
        match token_env {
            Some(name) => println!("requests must carry Authorization: Bearer ${name}"),
            None => println!("no credential asked for (--token-env VAR asks for one)"),
        }
        sample_api::serve(listener, data, "/api", token, shutdown_signal()).await;
        Ok(0)
    })
}
