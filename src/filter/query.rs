//! A granted request's query parameters, in the order they go upstream, and which of them
//! are lists.
//!
//! A route may let a parameter repeat (`query = ["StatusCode[]"]`): every value is
//! forwarded, in order, and a condition reads `request.query.StatusCode` as a list of strings,
//! even when only one value was sent, so a rule never has to guess which shape it gets. Any
//! other parameter is a string. Both the upstream target and CEL's `request.query` are built
//! from this one value.

use std::collections::{BTreeMap, BTreeSet};

use cel::common::types::{CelList, CelMap, CelMapKey, CelString};

use super::cel::Val;

/// The query of a granted request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Every parameter with its value, in the order forwarded; a list parameter once per
    /// value.
    pairs: Vec<(String, String)>,
    /// The parameters the route lets repeat.
    lists: BTreeSet<String>,
}

// === impl Query ===

impl Query {
    /// Adds a parameter after those already there; `list` when the route lets it repeat.
    pub fn push(&mut self, name: &str, value: &str, list: bool) {
        if list {
            self.lists.insert(name.to_owned());
        }
        self.pairs.push((name.to_owned(), value.to_owned()));
    }

    /// Every parameter with its value, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The values of `name`, in order.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// CEL's `request.query`: each parameter a string, or a list of strings when the route
    /// lets it repeat.
    pub fn to_cel(&self) -> Box<dyn Val + '_> {
        let mut grouped: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (name, value) in &self.pairs {
            grouped.entry(name).or_default().push(value);
        }
        let entries = grouped.into_iter().map(|(name, values)| {
            let value: Box<dyn Val + '_> = if self.lists.contains(name) {
                Box::new(CelList::from(
                    values
                        .into_iter()
                        .map(|v| Box::new(CelString::from(v)) as Box<dyn Val + '_>)
                        .collect::<Vec<_>>(),
                ))
            } else {
                // A parameter that may not repeat was refused if it did (400).
                Box::new(CelString::from(values.last().copied().unwrap_or_default()))
            };
            (CelMapKey::from(name), value)
        });
        Box::new(CelMap::from(
            entries.collect::<std::collections::HashMap<_, _>>(),
        ))
    }
}
