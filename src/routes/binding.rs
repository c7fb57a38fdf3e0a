//! Bindings: query or path parameters the gateway sets, per recipient, before forwarding
//! (`[[route.bind]]`).
//!
//! A contractor's jobs are `/jobs?contractor=KBS`; the rules bind `query.contractor` to
//! `recipient.attributes.contractor_code`, so each contractor asks for its own jobs whatever
//! it sends. A bound parameter the request leaves out is added (after the request's own, in
//! the order the bindings are written); one it sends with the same value passes; any other
//! value is refused (403 `binding_mismatch`) before anything goes upstream. A bound path
//! parameter must hold the bound value. A binding whose value cannot be computed refuses the
//! same way: fail closed, never forward without the restriction.
//!
//! The value is CEL over `recipient` only (the loader refuses any other variable), so it is
//! the same on every request of one recipient, and conditions see it in `request.query` and
//! `request.params` like any parameter.

use std::collections::BTreeMap;
use std::fmt;

use crate::filter::cel::{EvalError, Expr, Functions};
use crate::filter::{Caller, Query};

use super::Error;

/// Which parameter a binding sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    /// `query.<name>`: the recipient may send it at most once, and only with the value.
    Query(String),
    /// `path.<name>`: a `{name}` of the route template.
    Path(String),
}

/// One `[[route.bind]]`.
#[derive(Debug)]
pub struct Binding {
    pub param: Param,
    /// CEL over `recipient`, giving a string.
    pub value: Expr,
}

/// The bindings of one route, with the CEL functions their values may call.
#[derive(Debug, Default)]
pub struct Bindings {
    list: Vec<Binding>,
    /// `None` only for [`Bindings::default`], which has no binding.
    functions: Option<Functions>,
}

// === impl Param ===

impl Param {
    /// Reads `query.<name>` or `path.<name>`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Param> {
        match text.split_once('.')? {
            ("query", name) => Some(Param::Query(name.to_owned())),
            ("path", name) => Some(Param::Path(name.to_owned())),
            _ => None,
        }
    }
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Param::Query(name) => write!(f, "query.{name}"),
            Param::Path(name) => write!(f, "path.{name}"),
        }
    }
}

// === impl Bindings ===

impl Bindings {
    /// The bindings of a route; `functions` are the route's CEL functions.
    pub fn new(list: Vec<Binding>, functions: Functions) -> Bindings {
        Bindings {
            list,
            functions: Some(functions),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Binding> {
        self.list.iter()
    }

    /// Whether a binding sets the query parameter `name`: the binding is what allows it.
    pub fn binds_query(&self, name: &str) -> bool {
        self.list
            .iter()
            .any(|b| matches!(&b.param, Param::Query(n) if n == name))
    }

    /// Each binding with its value for `caller`.
    pub fn values<'a>(
        &'a self,
        caller: Caller<'a>,
    ) -> impl Iterator<Item = (&'a Binding, Result<String, EvalError>)> + 'a {
        self.list.iter().map(move |binding| {
            let value = match &self.functions {
                Some(functions) => binding.value(caller, functions),
                None => Err(EvalError("no functions to evaluate with".to_owned())),
            };
            (binding, value)
        })
    }

    /// Sets every bound parameter on a granted request, or refuses it.
    ///
    /// # Errors
    ///
    /// [`Error::BindingMismatch`] when the request holds another value than the bound one,
    /// [`Error::BindingFailed`] when the value cannot be computed for `caller`.
    pub(super) fn apply(
        &self,
        caller: Caller<'_>,
        query: &mut Query,
        params: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        for (binding, value) in self.values(caller) {
            let value = value.map_err(|_| Error::BindingFailed(binding.param.to_string()))?;
            let mismatch = || Error::BindingMismatch(binding.param.to_string());
            match &binding.param {
                Param::Query(name) => {
                    if query.values(name).next().is_none() {
                        query.push(name, &value, false);
                    } else if !query.values(name).all(|v| v == value) {
                        return Err(mismatch());
                    }
                }
                Param::Path(name) => {
                    if params.get(name) != Some(&value) {
                        return Err(mismatch());
                    }
                }
            }
        }
        Ok(())
    }
}

// === impl Binding ===

impl Binding {
    /// The bound value for `caller`.
    ///
    /// # Errors
    ///
    /// CEL's error (a missing attribute), a value that is not a string, or an empty one: an
    /// empty filter restricts nothing (many housing APIs read `contractor=` as "any").
    pub fn value(&self, caller: Caller<'_>, functions: &Functions) -> Result<String, EvalError> {
        let mut scope = functions.root().new_inner_scope();
        scope.add_variable_as_val("recipient", caller.to_cel());
        match self.value.eval(&scope)? {
            ::cel::Value::String(s) if s.trim().is_empty() => Err(EvalError(
                "the binding gave an empty string, which restricts nothing".to_owned(),
            )),
            ::cel::Value::String(s) => Ok(s.to_string()),
            other => Err(EvalError(format!(
                "the binding gave {}, not a string",
                other.type_of()
            ))),
        }
    }
}
