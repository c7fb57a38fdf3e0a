//! `[[route.bind]]` compiled into [`Bindings`], each misuse an error at its line.
//!
//! A binding restricts what a recipient may ask for, so any doubt about one is a load error:
//! a parameter that is not `query.<name>` or `path.<name>`, a path parameter the template
//! does not have, a query parameter also listed in `query` (the binding is what allows it:
//! listed as well, it would read as free to choose), the same parameter bound twice, and a
//! value reading anything but `recipient` (it must be the same on every request, and is set
//! before there is a body).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::raw;
use super::site::Source;
use super::{query_name_is_valid, Loader, Recipient};
use crate::filter::cel::{Functions, VARIABLES};
use crate::routes::binding::{Binding, Param};
use crate::routes::{Bindings, Takes, Template};

impl Loader {
    /// Compiles a route's bindings; `None` when any is wrong (each reported).
    pub(super) fn bindings(
        &mut self,
        source: &Source,
        route: &raw::Route,
        template: Option<&Template>,
        query: &BTreeMap<String, Takes>,
        kind: &str,
    ) -> Option<Bindings> {
        let file = &source.path;
        let mut ok = true;
        let mut list = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for bind in &route.bind {
            let bind = bind.get_ref();
            let at = source.line(&bind.param);
            let text = bind.param.get_ref();
            let problem = match Param::parse(text) {
                None => Some(format!(
                    "bind param {text:?} must be \"query.<name>\" or \"path.<name>\""
                )),
                Some(Param::Query(name)) if !query_name_is_valid(&name) => {
                    Some(format!("bind param {text:?}: {name:?} is not a valid query parameter name"))
                }
                Some(Param::Query(name)) if query.contains_key(&name) => Some(format!(
                    "bind param {text:?}: {name:?} is also listed in query; the binding is what allows it, so take it out of query"
                )),
                Some(Param::Path(name)) if template.is_some_and(|t| !t.has_param(&name)) => {
                    Some(format!(
                        "bind param {text:?}: the route's path {:?} has no {{{name}}}",
                        template.map(Template::as_str).unwrap_or_default()
                    ))
                }
                Some(_) => seen.insert(text.clone(), at).map(|first| {
                    format!("bind param {text:?} is already bound at line {first}")
                }),
            };
            if let Some(problem) = problem {
                self.error(file, at, problem);
                ok = false;
            }
            let value = self.expr(source, "bind value", &bind.value, false);
            let Some(value) = value else {
                ok = false;
                continue;
            };
            let line = source.line(&bind.value);
            for name in VARIABLES.iter().filter(|&&v| v != "recipient") {
                if value.reads(name).any() {
                    self.error(
                        file,
                        line,
                        format!("bind value reads {name}: it may read only recipient, since it is set before forwarding and is the same on every request"),
                    );
                    ok = false;
                }
            }
            if value.uses().pseudonym && self.secrets.pseudonym_key.is_none() {
                self.error(
                    file,
                    line,
                    "bind value: pseudonym() needs a key, and none is set",
                );
                ok = false;
            }
            if let (true, Some(param)) = (ok, Param::parse(text)) {
                list.push(Binding { param, value });
            }
        }
        if !ok {
            return None;
        }
        if list.is_empty() {
            return Some(Bindings::default());
        }
        let functions = Functions::new(kind, self.secrets.pseudonym_key.as_ref());
        Some(Bindings::new(list, functions))
    }

    /// Evaluates every binding for every recipient of its type. A value reads nothing but
    /// the recipient, so what it gives here it gives on every request: an error (or a value
    /// that is not a string) would refuse all of that recipient's requests on the route, and
    /// is reported at the value's line instead, unless that line is already reported (an
    /// attribute the recipient lacks).
    pub(super) fn check_binding_values(&mut self, recipients: &[Arc<Recipient>]) {
        for recipient in recipients {
            for route in &recipient.kind.routes {
                let values = route.bind.values(recipient.caller());
                for ((binding, value), site) in values.zip(&route.rule_sites.bind) {
                    let Err(e) = value else { continue };
                    let reported = self
                        .diagnostics
                        .iter()
                        .any(|d| d.is_error() && d.line == site.line && *d.file == *site.file);
                    if !reported {
                        self.error(
                            &site.file,
                            site.line,
                            format!(
                                "bind value for {} cannot be computed for recipient {:?}: {}",
                                binding.param, recipient.id, e.0
                            ),
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a failed unwrap is a failed test
    use super::super::tests::problems;
    use crate::test_util::policy;

    /// A `/jobs/{job_id}` route allowing the query parameter `status`, then `binds`. After
    /// the header, the route starts on line 4 and `binds` on line 10: the first `param` is
    /// on line 11, its `value` on line 12.
    fn route(binds: &str) -> String {
        format!(
            "[[route]]\nmethod = \"GET\"\npath = \"/jobs/{{job_id}}\"\nquery = [\"status\"]\nsubjects_optional = true\nallow = [\"id\"]\n{binds}"
        )
    }

    fn bind(param: &str, value: &str) -> String {
        format!("[[route.bind]]\nparam = {param:?}\nvalue = {value:?}\n")
    }

    #[test]
    fn bindings_compile() {
        let p = policy(&route(&format!(
            "{}{}",
            bind("query.contractor", "recipient.attributes.contractor_code"),
            bind("path.job_id", "'J-' + recipient.id")
        )));
        let route = &p.recipient("acme-repairs").unwrap().kind.routes[0];
        let params: Vec<String> = route.bind.iter().map(|b| b.param.to_string()).collect();
        assert_eq!(params, ["query.contractor", "path.job_id"]);
    }

    #[test]
    fn every_misuse_is_an_error_at_its_line() {
        let cases = [
            (bind("contractor", "'x'"), "11: bind param \"contractor\" must be \"query.<name>\" or \"path.<name>\""),
            (bind("query.a b", "'x'"), "11: bind param \"query.a b\": \"a b\" is not a valid query parameter name"),
            (bind("query.status", "'x'"), "11: bind param \"query.status\": \"status\" is also listed in query"),
            (bind("path.id", "'x'"), "11: bind param \"path.id\": the route's path \"/jobs/{job_id}\" has no {id}"),
            (bind("query.c", "body.contractor"), "12: bind value reads body: it may read only recipient"),
            (bind("query.c", "request.path"), "12: bind value reads request"),
            (bind("query.c", "string(now)"), "12: bind value reads now"),
            (bind("query.c", "recipient.attributes.region"), "12: reads recipient.attributes.region, which recipient(s) \"acme-repairs\", \"brightfix\" of this type lack"),
            (bind("query.c", "recipient.id +"), "12: bind value: CEL syntax error"),
            (bind("query.c", "size(recipient.id)"), "12: bind value for query.c cannot be computed for recipient \"acme-repairs\": the binding gave int, not a string"),
            (bind("query.c", "recipient.attributes['region']"), "12: bind value for query.c cannot be computed for recipient \"acme-repairs\""),
            (format!("{}{}", bind("query.c", "'a'"), bind("query.c", "'b'")), "14: bind param \"query.c\" is already bound at line 11"),
        ];
        for (binds, expected) in cases {
            let got = problems(&route(&binds), None);
            assert_eq!(got.len(), 1, "{binds}: {got:?}");
            assert!(got[0].starts_with(expected), "{binds}: {got:?}");
        }
    }
}
