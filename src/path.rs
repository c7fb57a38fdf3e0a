//! Field paths in rule form. (placeholder: being written)
use std::fmt;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// An object key.
    Key(String),
    /// Every element of an array (`[]`).
    Each,
}

/// A parsed path such as `tenant.access_needs[].description` or `[].id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath {
    segments: Vec<Segment>,
}

#[derive(Debug, thiserror::Error)]
#[error("malformed path {path:?}: {reason}")]
pub struct PathError {
    pub path: String,
    pub reason: &'static str,
}

impl FieldPath {
    pub fn parse(_text: &str) -> Result<Self, PathError> {
        todo!()
    }
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, _f: &mut fmt::Formatter<'_>) -> fmt::Result {
        todo!()
    }
}
