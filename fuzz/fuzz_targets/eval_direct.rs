//! Arbitrary expression text and JSON: wherever `cel::Direct` answers the expression, as a
//! condition or as a derived value, the CEL interpreter gives the same answer
//! (`filter::eval::compare`, which the gateway's debug builds also check on every call).
//!
//! The input is the expression up to the first newline, then a JSON value bound as `body`;
//! its `item` member (or, without one, the value itself) is bound as `item`, its `header`
//! member, when a string, is the request's `x-disclosure-reference`, and objects holding
//! `"dropped": true` are read as rows an item filter took out.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use need_to_know::filter::eval;
use serde_json::Value;

/// Longer expressions add nothing the short ones do not, and only slow the parser.
const MAX_EXPRESSION: usize = 512;

fuzz_target!(|data: &[u8]| {
    let Some(newline) = data.iter().position(|b| *b == b'\n') else {
        return;
    };
    let (expression, json) = (&data[..newline], &data[newline + 1..]);
    if expression.len() > MAX_EXPRESSION {
        return;
    }
    let Ok(source) = std::str::from_utf8(expression) else {
        return;
    };
    let Ok(body) = serde_json::from_slice::<Value>(json) else {
        return;
    };
    let item = body.get("item").unwrap_or(&body);
    let headers: Vec<(&'static str, String)> = match body.get("header") {
        Some(Value::String(h)) => vec![("x-disclosure-reference", h.clone())],
        _ => Vec::new(),
    };
    let params = common::job_params();
    let request = common::job_request(&params, &headers);
    if let Err(why) = eval::compare(source, &request, &body, item) {
        panic!("{why}");
    }
});
