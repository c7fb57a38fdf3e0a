//! [`Plan`]: the compiled rules of one route, everything the filter needs to decide what of
//! an upstream body a recipient gets, and [`Caller`]: who is asking, as the rules see them.
//!
//! The plan is built once when the rules load and never changes after (but for the keys the
//! whole policy names, set once every route is loaded). Owning it here, rather than reading a
//! route of the rules, keeps the filter below the rules: the filter knows nothing of files,
//! recipients' credentials or route templates.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::cel;
use super::conditions::Conditions;
use super::lookup::Lookup;
use super::scrub::Scrubs;
use super::write::Write;
use crate::path::{FieldPath, KnownKeys, Segment};

/// The compiled rules of one route.
#[derive(Debug)]
pub struct Plan {
    /// The plain allow list, as written, for the register, `explain` and the stream shape.
    allow: Vec<FieldPath>,
    /// Paths in the upstream body naming the data subjects, for the audit.
    subjects: Vec<FieldPath>,
    /// Whether a response may disclose something while no `subjects` path names anyone; by
    /// default it is refused (502), since no subject access request could find it.
    subjects_optional: bool,
    /// `when`, `items`, `derive` and `refuse`, compiled, with the allow trees they make.
    conditions: Conditions,
    /// The upstream records the rules read as `lookup.<name>`, fetched after the response.
    lookups: Vec<Lookup>,
    /// `scrub`: free text in allowed fields cleared of phone numbers and the like.
    scrubs: Scrubs,
    /// `max_items`: the longest array answer sent; a longer one is refused, whole.
    max_items: Option<usize>,
    /// `accept` and `require` of a POST, PUT or PATCH route; `None` on a read.
    write: Option<Write>,
    /// Why the route's large array responses are always buffered; `None`: they stream,
    /// element by element. Decided here, when the rules load, so a request never guesses.
    buffered_because: Option<&'static str>,
}

/// Who a decision is made for, as the rules may read it (CEL `recipient`).
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub id: &'a str,
    /// The recipient type's name.
    pub kind: &'a str,
    pub name: &'a str,
    /// `recipient.attributes`: what `recipients.toml` says of this recipient for the rules,
    /// such as the contractor code the housing system files its jobs under.
    pub attributes: &'a BTreeMap<String, String>,
}

// === impl Caller ===

impl<'a> Caller<'a> {
    /// CEL's `recipient`, built here only, for the conditions and the bindings alike. A
    /// missing attribute is then a missing map key: CEL's error, which never grants.
    pub fn to_cel(&self) -> Box<dyn cel::Val + 'a> {
        let attributes = self
            .attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()));
        cel::record(vec![
            ("id", cel::string_val(self.id)),
            ("type", cel::string_val(self.kind)),
            ("name", cel::string_val(self.name)),
            ("attributes", cel::string_map(attributes)),
        ])
    }
}

// === impl Plan ===

impl Plan {
    pub fn new(
        allow: Vec<FieldPath>,
        subjects: Vec<FieldPath>,
        subjects_optional: bool,
        conditions: Conditions,
    ) -> Plan {
        let mut plan = Plan {
            allow,
            subjects,
            subjects_optional,
            conditions,
            lookups: Vec::new(),
            scrubs: Scrubs::default(),
            max_items: None,
            write: None,
            buffered_because: None,
        };
        plan.buffered_because = plan.why_buffered();
        plan
    }

    /// The plan with the route's `scrub` rules.
    pub fn with_scrubs(mut self, scrubs: Scrubs) -> Plan {
        self.scrubs = scrubs;
        self.buffered_because = self.why_buffered();
        self
    }

    pub fn scrubs(&self) -> &Scrubs {
        &self.scrubs
    }

    /// This plan with a cap on the elements of an array answer.
    pub fn with_max_items(mut self, max_items: Option<usize>) -> Plan {
        self.max_items = max_items;
        self
    }

    /// This plan with the write rules of a POST, PUT or PATCH route.
    pub fn with_write(mut self, write: Option<Write>) -> Plan {
        self.write = write;
        self.buffered_because = self.why_buffered();
        self
    }

    /// `accept` and `require`: `Some` exactly on a write route.
    pub fn write(&self) -> Option<&Write> {
        self.write.as_ref()
    }

    pub fn max_items(&self) -> Option<usize> {
        self.max_items
    }

    /// The cap `upstream` exceeds, when it is an array longer than `max_items`: counted as the
    /// upstream sent it, before any element is filtered out, so that the recipient's page
    /// size decides it and not what the rules happen to keep.
    pub fn too_many_items(&self, upstream: &serde_json::Value) -> Option<usize> {
        let max = self.max_items?;
        (upstream.as_array()?.len() > max).then_some(max)
    }

    pub fn allow(&self) -> &[FieldPath] {
        &self.allow
    }

    pub fn subjects(&self) -> &[FieldPath] {
        &self.subjects
    }

    pub fn subjects_optional(&self) -> bool {
        self.subjects_optional
    }

    pub fn conditions(&self) -> &Conditions {
        &self.conditions
    }

    /// This plan with `lookups`, which its rules read as `lookup.<name>`.
    pub fn with_lookups(mut self, lookups: Vec<Lookup>) -> Plan {
        self.lookups = lookups;
        self.buffered_because = self.why_buffered();
        self
    }

    pub fn lookups(&self) -> &[Lookup] {
        &self.lookups
    }

    /// Whether large array responses stream element by element.
    pub fn streamable(&self) -> bool {
        self.buffered_because.is_none()
    }

    /// Why the route's responses are always buffered; `None` when they may stream.
    pub fn buffered_because(&self) -> Option<&'static str> {
        self.buffered_because
    }

    /// Puts the keys the whole policy names in use for this route's recorded paths.
    pub fn set_known_keys(&mut self, known: Arc<KnownKeys>) {
        self.conditions.set_known_keys(known);
    }

    /// A route streams only when every rule is about one element at a time: every path under
    /// `[]`, no `refuse` (a decision about the whole response) and no rule reading `body`.
    fn why_buffered(&self) -> Option<&'static str> {
        let c = &self.conditions;
        let array_rooted = |p: &FieldPath| p.segments().first() == Some(&Segment::Each);
        if self.allow.is_empty() {
            return Some("allows no field");
        }
        if c.refuse().is_some() {
            return Some("has a refuse rule, a decision about the whole response");
        }
        if self.write.is_some() {
            return Some("is a write, answered with the one record written");
        }
        if !self.lookups.is_empty() {
            return Some("has lookups, whose placeholders read the whole body");
        }
        let paths_ok = self.allow.iter().all(array_rooted)
            && self.subjects.iter().all(array_rooted)
            && c.when().iter().all(|w| w.allow.iter().all(array_rooted))
            && c.items().iter().all(|i| array_rooted(&i.path))
            && c.derive().iter().all(|d| array_rooted(&d.field))
            && self.scrubs.paths().all(|(p, _)| array_rooted(p));
        if !paths_ok {
            return Some("names a path outside the array's elements");
        }
        let reads_body = c.when().iter().any(|w| w.condition.uses().body)
            || c.items().iter().any(|i| i.keep.uses().body)
            || c.derive().iter().any(|d| d.value.uses().body);
        if reads_body {
            return Some("has a condition or derived value reading the whole body");
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a failed unwrap is a failed test
    use crate::test_util::policy;

    /// Whether the one route in `routes` streams, or why not.
    fn shape(routes: &str) -> Option<&'static str> {
        let policy = policy(routes);
        let kind = policy.types().next().unwrap();
        let route = &kind.routes[0];
        assert_eq!(
            route.plan.streamable(),
            route.plan.buffered_because().is_none()
        );
        route.plan.buffered_because()
    }

    const EXPORT: &str =
        "[[route]]\nmethod = \"GET\"\npath = \"/tenants\"\nsubjects = [\"[].id\"]\n";

    #[test]
    fn which_routes_stream() {
        let with = |rest: &str| shape(&format!("{EXPORT}{rest}"));
        assert_eq!(with("allow = [\"[].name\"]\n"), None);
        assert_eq!(
            with(
                "allow = [\"[].name\"]\n[[route.items]]\npath = \"[]\"\nkeep = \"item.consent == true\"\n\
                 [[route.derive]]\nfield = \"[].ref\"\nvalue = \"pseudonym(item.id)\"\n\
                 [[route.when]]\ncondition = \"recipient.id == 'x'\"\nreason = \"r\"\nallow = [\"[].phone\"]\n"
            ),
            None
        );
        assert!(with("allow = [\"[].name\", \"count\"]\n").is_some());
        assert!(with("allow = []\n").is_some());
        assert!(with(
            "allow = [\"[].name\"]\n[[route.when]]\ncondition = \"size(body) < 10\"\nreason = \"r\"\nallow = [\"[].phone\"]\n"
        )
        .is_some());
        assert!(with(
            "allow = [\"[].name\"]\n[[route.derive]]\nfield = \"[].n\"\nvalue = \"size(body)\"\n"
        )
        .is_some());
        assert!(with(
            "allow = [\"[].name\"]\n[route.refuse]\ncondition = \"false\"\nreason = \"r\"\n"
        )
        .is_some());
        assert!(shape(
            "[[route]]\nmethod = \"GET\"\npath = \"/jobs/{job_id}\"\nsubjects = [\"tenant.id\"]\nallow = [\"id\"]\n"
        )
        .is_some());
    }
}
