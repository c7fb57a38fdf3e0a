//! Strict parsing of upstream bodies. (placeholder: being written)
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("malformed json: {0}")]
    Malformed(String),
    #[error("duplicate key in object")]
    DuplicateKey,
    #[error("nesting deeper than {0}")]
    TooDeep(usize),
}

/// Parses `bytes` as one JSON document, refusing duplicate keys at any depth and nesting
/// deeper than `max_depth`.
pub fn parse_strict(_bytes: &[u8], _max_depth: usize) -> Result<Value, Error> {
    todo!()
}
