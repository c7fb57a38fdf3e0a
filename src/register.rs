//! The disclosure register: the loaded rules as a record of processing (UK GDPR Art. 30)
//! that a Data Protection Officer can read, print and file.
//!
//! It is made from the same [`Policy`] `serve` enforces, so it cannot describe rules that are
//! not the ones in force; the generation hash it prints names the exact rule files. The line
//! of each rule and the comment citing the privacy notice above it are the [`Site`]s the
//! loader kept from the same text it hashed, so they cannot belong to a file edited since.
//! Field paths get plain words from `rules/glossary.toml` ([`glossary`]).
//!
//! Beyond the recipients (Art. 30(1)(d)) it states the controller and retention from the
//! config, the categories of data subjects, the gateway's own safeguards, the privacy notices
//! cited (by title, from `rules/notices.toml`), which fields may hold special category data
//! (the glossary's `[special]`), and a [`matrix`] of who can see each field, by which route,
//! when.
//!
//! [`Register::build`] makes the model; [`html`], [`markdown`] and [`csv`] render it. None of
//! them prints or touches the clock: the caller passes the date, so the output is testable.

pub mod coverage;
pub mod csv;
pub use crate::rules::glossary;
pub mod html;
pub mod markdown;
pub mod matrix;

use std::time::SystemTime;

use crate::config::Controller;
use crate::path::{FieldPath, Segment};
use crate::routes::Takes;
use crate::rules::notices::{citation_parts, CitationPart, Notice, Notices};
use crate::rules::{LawfulBasis, Policy, Rate, Recipient, RecipientType, Route, Site};
use glossary::{Glossary, Special};
use matrix::MatrixRow;

/// An output format of `need-to-know register`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Html,
    Markdown,
    Csv,
}

/// Everything the register shows, in the order it shows it.
#[derive(Debug, Clone)]
pub struct Register {
    pub generated: SystemTime,
    /// [`Policy::generation`]: which rule files this describes.
    pub generation: String,
    /// `[controller]` of the config; `None`: not configured, and the register says so.
    pub controller: Option<Controller>,
    /// The privacy notices of `notices.toml`, as the rules cite them.
    pub notices: Vec<Notice>,
    pub types: Vec<TypeEntry>,
    /// Each disclosed field against each type, in the order of `types`.
    pub matrix: Vec<MatrixRow>,
}

/// What the gateway itself does for every recipient, whatever the rules (Art. 30(1)(g)):
/// only what the code enforces, so the register never promises more than is done.
pub const SAFEGUARDS: &[&str] = &[
    "Each recipient is identified (by an API key or a client certificate) before anything is sent; an unknown caller gets nothing.",
    "Each recipient type gets only the routes and fields its rules list: every other field is withheld, and a response that cannot be filtered safely is refused whole.",
    "Every disclosure and refusal is recorded, with the data subjects it concerns, in a hash-chained ledger that shows any later change to it.",
    "Requests are rate limited per recipient where the rules set a limit (below, per type).",
];

/// One recipient type: why it receives data, who it is, and what it receives.
#[derive(Debug, Clone)]
pub struct TypeEntry {
    pub name: String,
    pub purpose: String,
    pub purpose_citation: Citation,
    pub lawful_basis: LawfulBasis,
    pub lawful_basis_citation: Citation,
    /// `data_subjects` of the type file; empty when it does not say.
    pub data_subjects: Vec<String>,
    pub rate_limit: Option<Rate>,
    pub recipients: Vec<RecipientEntry>,
    pub routes: Vec<RouteEntry>,
}

/// One organisation; how it proves who it is, never the hashes that check it.
#[derive(Debug, Clone)]
pub struct RecipientEntry {
    pub id: String,
    pub name: String,
    pub identity: Vec<String>,
    /// Its own rate limit, when it overrides the type's.
    pub rate_limit: Option<Rate>,
    /// `[recipient.attributes]`, by name: what the rules may read of it.
    pub attributes: Vec<(String, String)>,
}

/// One granted route and, field by field, what it discloses.
#[derive(Debug, Clone)]
pub struct RouteEntry {
    pub method: String,
    pub template: String,
    pub query: Vec<String>,
    /// Each bound parameter and the expression that sets it (`query.contractor`,
    /// `recipient.attributes.contractor_code`).
    pub bind: Vec<(String, String)>,
    /// Each `[[route.lookup]]`: its name and the upstream path it reads (never disclosed).
    pub lookups: Vec<(String, String)>,
    pub subjects: Vec<String>,
    /// The comment above `[[route]]`, if any: what the route is for.
    pub note: Citation,
    pub rows: Vec<Row>,
}

/// The comment above a rule, with each notice it cites resolved to its title.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Citation {
    /// The comment as written, ids and all.
    pub raw: String,
    pub parts: Vec<Cited>,
}

/// A piece of a [`Citation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cited {
    /// A notice: its title and version, or the id as written when no notice names it.
    Notice(String),
    Text(String),
}

/// One field or rule of a route.
#[derive(Debug, Clone)]
pub struct Row {
    /// The path in rule form; empty for a refusal, which is about the whole response.
    pub field: String,
    /// The glossary's words for `field`, or `field` itself.
    pub words: String,
    pub disclosure: Disclosure,
    /// The comment above the rule, citing the privacy notice.
    pub citation: Citation,
    /// The categories of special data the field may hold (the glossary's `[special]`).
    pub special: Vec<Special>,
    /// The reasons of the `items` rules that send only some entries of the list this field
    /// is in.
    pub only_entries: Vec<String>,
    /// Where the rule is written: the type file's name and the line.
    pub file: String,
    pub line: usize,
}

/// How a field reaches the recipient, or when nothing does.
#[derive(Debug, Clone)]
pub enum Disclosure {
    /// In the route's allow list.
    Always,
    /// In a `when` allow list: only when `condition` holds.
    Condition { reason: String, condition: String },
    /// Computed by `expression`; `what` says it in words.
    Derived { what: String, expression: String },
    /// An `items` rule: the elements of this array that are kept, `reason` in words.
    RowFilter {
        reason: Option<String>,
        keep: String,
    },
    /// `refuse`: nothing of the response when `condition` holds.
    Refused { reason: String, condition: String },
}

// === impl Register ===

impl Register {
    /// The register of `policy`, dated `generated`, for the `controller` of the config.
    pub fn build(
        policy: &Policy,
        glossary: &Glossary,
        controller: Option<&Controller>,
        generated: SystemTime,
    ) -> Register {
        let notices = policy.notices();
        let types: Vec<TypeEntry> = policy
            .types()
            .map(|kind| TypeEntry::build(policy, kind, glossary, notices))
            .collect();
        Register {
            generated,
            generation: policy.generation().to_owned(),
            controller: controller.cloned(),
            notices: notices.iter().cloned().collect(),
            matrix: matrix::build(&types, glossary),
            types,
        }
    }

    /// The fields that may hold special category data, each with the types that receive it.
    pub fn special_fields(&self) -> impl Iterator<Item = (&MatrixRow, Vec<&TypeEntry>)> {
        self.matrix
            .iter()
            .filter(|row| !row.special.is_empty())
            .map(|row| (row, row.receivers(&self.types).collect()))
    }

    /// The register in `format`.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Html => html::render(self),
            Format::Markdown => markdown::render(self),
            Format::Csv => csv::render(self),
        }
    }

    /// The generation date as a person reads it: `2026-03-01 09:30 UTC`.
    pub fn date(&self) -> String {
        let text = humantime::format_rfc3339_seconds(self.generated).to_string();
        // "2026-03-01T09:30:00Z": date and minutes are what a filed copy needs.
        match (text.get(..10), text.get(11..16)) {
            (Some(day), Some(time)) => format!("{day} {time} UTC"),
            _ => text,
        }
    }
}

// === impl TypeEntry ===

impl TypeEntry {
    fn build(
        policy: &Policy,
        kind: &RecipientType,
        glossary: &Glossary,
        notices: &Notices,
    ) -> TypeEntry {
        let recipients = policy
            .recipients()
            .iter()
            .filter(|r| r.kind.name == kind.name)
            .map(|r| RecipientEntry::new(r))
            .collect();
        TypeEntry {
            name: kind.name.clone(),
            purpose: kind.purpose.clone(),
            purpose_citation: Citation::new(&kind.purpose_site, notices),
            lawful_basis: kind.lawful_basis,
            lawful_basis_citation: Citation::new(&kind.lawful_basis_site, notices),
            data_subjects: kind.data_subjects.clone(),
            rate_limit: kind.rate_limit,
            recipients,
            routes: kind
                .routes
                .iter()
                .map(|route| RouteEntry::build(route, glossary, notices))
                .collect(),
        }
    }

    /// The type's name as a heading: `repairs-contractor` reads "Repairs contractor".
    pub fn title(&self) -> String {
        let words = self.name.replace(['-', '_'], " ");
        let mut chars = words.chars();
        match chars.next() {
            Some(first) => first.to_uppercase().chain(chars).collect(),
            None => words,
        }
    }

    /// The type's rate limit as the register states it.
    /// The rate limit that applies to `recipient`: its own, else the type's.
    pub fn recipient_rate_text(&self, recipient: &RecipientEntry) -> String {
        match recipient.rate_limit {
            Some(rate) => rate_words(Some(rate)),
            None if self.rate_limit.is_none() => "none".to_owned(),
            None => format!("{} (the type's)", rate_words(self.rate_limit)),
        }
    }

    pub fn rate_text(&self) -> String {
        match self.rate_limit {
            Some(rate) => format!("{} for each recipient", rate_words(Some(rate))),
            None => "none".to_owned(),
        }
    }

    /// The data subjects as the register states them.
    pub fn data_subjects_text(&self) -> String {
        if self.data_subjects.is_empty() {
            "not stated in the rules (data_subjects in the type file)".to_owned()
        } else {
            self.data_subjects.join(", ")
        }
    }

    /// The ids of its recipients, in the order recipients.toml lists them.
    pub fn recipient_ids(&self) -> Vec<&str> {
        self.recipients.iter().map(|r| r.id.as_str()).collect()
    }
}

// === impl RecipientEntry ===

impl RecipientEntry {
    /// `name = value` for each attribute, or `none`.
    pub fn attributes_text(&self) -> String {
        if self.attributes.is_empty() {
            return "none".to_owned();
        }
        self.attributes
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn new(r: &Recipient) -> RecipientEntry {
        let mut identity = Vec::new();
        if r.api_key_sha256.is_some() {
            identity.push("API key".to_owned());
        }
        if r.cert_sha256.is_some() {
            identity.push("client certificate (pinned)".to_owned());
        }
        if let Some(san) = &r.cert_san {
            identity.push(format!("client certificate for {san}"));
        }
        RecipientEntry {
            id: r.id.clone(),
            name: r.name.clone(),
            identity,
            rate_limit: r.rate_limit,
            attributes: r
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

// === impl RouteEntry ===

impl RouteEntry {
    fn build(route: &Route, glossary: &Glossary, notices: &Notices) -> RouteEntry {
        let file = route
            .site
            .file
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let conditions = &route.plan.conditions();
        let only_entries = |field: &str| -> Vec<String> {
            let Ok(path) = FieldPath::parse(field) else {
                return Vec::new();
            };
            conditions
                .items()
                .iter()
                .filter(|i| path != i.path && path.is_under(&i.path))
                .map(|i| {
                    i.reason
                        .clone()
                        .unwrap_or_else(|| format!("keep: {}", i.keep.source()))
                })
                .collect()
        };
        // Only what is sent is flagged or limited: a row filter or refusal sends nothing itself.
        let row = |field: String, disclosure: Disclosure, site: &Site| {
            let sent = matches!(
                disclosure,
                Disclosure::Always | Disclosure::Condition { .. } | Disclosure::Derived { .. }
            );
            Row {
                words: glossary.words_or_path(&field).to_owned(),
                special: if sent {
                    glossary.special(&field)
                } else {
                    Vec::new()
                },
                only_entries: if sent {
                    only_entries(&field)
                } else {
                    Vec::new()
                },
                field,
                disclosure,
                citation: Citation::new(site, notices),
                file: file.clone(),
                line: site.line,
            }
        };
        let mut rows = Vec::new();
        let sites = &route.rule_sites;
        // In the order the gateway applies them: a refusal stops everything, row filters
        // drop entries, then the fields of what is left are sent.
        if let (Some(refuse), Some(site)) = (conditions.refuse(), &sites.refuse) {
            let disclosure = Disclosure::Refused {
                reason: refuse.reason.clone(),
                condition: refuse.condition.source().to_owned(),
            };
            let mut r = row(String::new(), disclosure, site);
            r.words = "the whole response".to_owned();
            rows.push(r);
        }
        for (items, site) in conditions.items().iter().zip(&sites.items) {
            let disclosure = Disclosure::RowFilter {
                reason: items.reason.clone(),
                keep: items.keep.source().to_owned(),
            };
            rows.push(row(items.path.to_string(), disclosure, site));
        }
        for (path, site) in route.plan.allow().iter().zip(&sites.allow) {
            rows.push(row(path.to_string(), Disclosure::Always, site));
        }
        for (when, site) in conditions.when().iter().zip(&sites.when) {
            for path in &when.allow {
                let disclosure = Disclosure::Condition {
                    reason: when.reason.clone(),
                    condition: when.condition.source().to_owned(),
                };
                rows.push(row(path.to_string(), disclosure, &site.rule));
            }
        }
        for (derive, site) in conditions.derive().iter().zip(&sites.derive) {
            let expression = derive.value.source().to_owned();
            let what = derived_what(&derive.field, &expression, route, glossary);
            rows.push(row(
                derive.field.to_string(),
                Disclosure::Derived { what, expression },
                site,
            ));
        }
        RouteEntry {
            method: route.method.to_string(),
            template: route.template.to_string(),
            query: route
                .query
                .iter()
                .map(|(name, takes)| match takes {
                    Takes::Once => name.clone(),
                    Takes::Repeated => format!("{name}[]"),
                })
                .collect(),
            bind: route
                .bind
                .iter()
                .map(|b| (b.param.to_string(), b.value.source().to_owned()))
                .collect(),
            lookups: route
                .plan
                .lookups()
                .iter()
                .map(|l| (l.name().to_owned(), l.template().to_owned()))
                .collect(),
            subjects: route
                .plan
                .subjects()
                .iter()
                .map(ToString::to_string)
                .collect(),
            note: Citation::new(&route.site, notices),
            rows,
        }
    }

    /// `GET /jobs/{job_id}`.
    pub fn name(&self) -> String {
        format!("{} {}", self.method, self.template)
    }
}

// === impl Row ===

impl Row {
    /// The special categories in words, `health (Art. 9), ...`; empty for none.
    pub fn special_text(&self) -> String {
        special_text(&self.special)
    }
}

/// Special categories in words, joined with commas.
pub fn special_text(special: &[Special]) -> String {
    special
        .iter()
        .map(|s| s.words())
        .collect::<Vec<_>>()
        .join(", ")
}

// === impl Citation ===

impl Citation {
    /// The comment above `site`, each notice id in it replaced by that notice's title.
    fn new(site: &Site, notices: &Notices) -> Citation {
        let raw = site.comment.clone().unwrap_or_default();
        let parts = citation_parts(&raw)
            .into_iter()
            .map(|part| match part {
                CitationPart::Document(id) => {
                    Cited::Notice(notices.get(id).map_or_else(|| id.to_owned(), Notice::label))
                }
                CitationPart::Text(text) => Cited::Text(text.to_owned()),
            })
            .collect();
        Citation { raw, parts }
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// As one line of text, the notices by title: for Markdown and the eye.
    pub fn text(&self) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Cited::Notice(label) => format!("{label}:"),
                Cited::Text(text) => text.clone(),
            })
            .collect()
    }

    /// The titles of the notices it cites, each once, in order.
    pub fn notices(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for part in &self.parts {
            if let Cited::Notice(label) = part {
                if !out.contains(&label.as_str()) {
                    out.push(label);
                }
            }
        }
        out
    }
}

/// A binding in words: "the query parameter contractor, set to the recipient's attribute
/// contractor_code"; any other expression is "computed for each recipient", shown beside it.
pub fn binding_words(param: &str, value: &str) -> String {
    let param = match param.split_once('.') {
        Some(("query", name)) => format!("the query parameter {name}"),
        Some(("path", name)) => format!("the path parameter {name}"),
        _ => param.to_owned(),
    };
    let value = match value.trim() {
        "recipient.id" => "the recipient's id".to_owned(),
        "recipient.name" => "the recipient's name".to_owned(),
        v => match v.strip_prefix("recipient.attributes.") {
            Some(name) if !name.contains(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) => {
                format!("the recipient's {name} (an attribute in recipients.toml)")
            }
            _ => "a value computed for each recipient".to_owned(),
        },
    };
    format!("{param} is set to {value}; a different value from the recipient is refused")
}

/// A lookup in words: what it reads, and that it is never disclosed.
pub fn lookup_words(name: &str, template: &str) -> String {
    format!("reads GET {template} from the housing system (as lookup.{name}) to decide; nothing of it is sent")
}

// === impl Disclosure ===

impl Disclosure {
    /// The machine-readable kind, as the CSV's `disclosure` column holds it.
    pub fn kind(&self) -> &'static str {
        match self {
            Disclosure::Always => "always",
            Disclosure::Condition { .. } => "condition",
            Disclosure::Derived { .. } => "derived",
            Disclosure::RowFilter { .. } => "row_filter",
            Disclosure::Refused { .. } => "refused",
        }
    }

    /// The heading of the "Disclosed" cell: `Always`, `Only when: <reason>`, ...
    pub fn summary(&self) -> String {
        match self {
            Disclosure::Always => "Always".to_owned(),
            Disclosure::Condition { reason, .. } => format!("Only when: {reason}"),
            Disclosure::Derived { what, .. } => format!("Derived: {what}"),
            Disclosure::RowFilter { reason, .. } => format!(
                "Row filter: {}",
                reason
                    .as_deref()
                    .unwrap_or("only the entries meeting the condition below are sent")
            ),
            Disclosure::Refused { reason, .. } => format!("Refused when: {reason}"),
        }
    }

    /// The rule's CEL text, if it has one: the exact condition or expression in force.
    pub fn expression(&self) -> Option<&str> {
        match self {
            Disclosure::Always => None,
            Disclosure::Condition { condition, .. } | Disclosure::Refused { condition, .. } => {
                Some(condition)
            }
            Disclosure::Derived { expression, .. } => Some(expression),
            Disclosure::RowFilter { keep, .. } => Some(keep),
        }
    }

    /// The reason or condition for the CSV's `condition_or_reason` column.
    pub fn condition_or_reason(&self) -> String {
        match self {
            Disclosure::Always => String::new(),
            Disclosure::Condition { reason, condition }
            | Disclosure::Refused { reason, condition } => {
                format!("{reason}; condition: {condition}")
            }
            Disclosure::Derived { expression, .. } => format!("value: {expression}"),
            Disclosure::RowFilter {
                reason: Some(reason),
                keep,
            } => format!("{reason}; keep: {keep}"),
            Disclosure::RowFilter { reason: None, keep } => format!("keep: {keep}"),
        }
    }
}

// === words ===

/// The lawful basis as a person (and the ICO) names it.
pub fn lawful_basis_words(basis: LawfulBasis) -> &'static str {
    match basis {
        LawfulBasis::Consent => "Consent (UK GDPR Art. 6(1)(a))",
        LawfulBasis::Contract => "Contract (UK GDPR Art. 6(1)(b))",
        LawfulBasis::LegalObligation => "Legal obligation (UK GDPR Art. 6(1)(c))",
        LawfulBasis::VitalInterests => "Vital interests (UK GDPR Art. 6(1)(d))",
        LawfulBasis::PublicTask => "Public task (UK GDPR Art. 6(1)(e))",
        LawfulBasis::LegitimateInterests => "Legitimate interests (UK GDPR Art. 6(1)(f))",
    }
}

/// `60/min` as "60 requests per minute" ([`Rate`]'s words); "none" without one.
pub fn rate_words(rate: Option<Rate>) -> String {
    rate.map_or_else(|| "none".to_owned(), |rate| rate.to_string())
}

/// What a derived field is, in words, for the functions the rules offer: "an age band,
/// computed from the date of birth, which is not itself disclosed". Any other expression is
/// "computed by the gateway", and the register shows its text beside it.
fn derived_what(field: &FieldPath, expression: &str, route: &Route, glossary: &Glossary) -> String {
    const OTHER: &str = "a value computed by the gateway";
    let Some((function, arg)) = single_call(expression) else {
        return OTHER.to_owned();
    };
    let made = match function {
        "age_band" => "an age band",
        "postcode_district" => "the postcode district",
        "pseudonym" => "a pseudonym (a stable code the recipient cannot reverse)",
        "mask" => "a masked form",
        _ => return OTHER.to_owned(),
    };
    let Some(from) = source_path(field, arg) else {
        return format!("{made}, computed by the gateway");
    };
    let from_text = from.to_string();
    let from_words = glossary.words_or_path(&from_text);
    let passed = route.plan.allow().iter().any(|a| from.is_under(a))
        || route
            .plan
            .conditions()
            .when()
            .iter()
            .flat_map(|w| &w.allow)
            .any(|a| from.is_under(a));
    let note = if passed {
        ""
    } else {
        ", which is not itself disclosed"
    };
    format!("{made}, computed from the {from_words}{note}")
}

/// `name(arg)` with one argument and nothing around it.
fn single_call(expression: &str) -> Option<(&str, &str)> {
    let (name, rest) = expression.trim().split_once('(')?;
    let arg = rest.strip_suffix(')')?.trim();
    let plain = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
    };
    (plain(name) && plain(arg) && !arg.is_empty()).then_some((name.trim(), arg))
}

/// The upstream path an argument reads: `body.tenant.date_of_birth` is `tenant.date_of_birth`,
/// and `item.date_of_birth` for the field `[].age_band` is `[].date_of_birth`.
fn source_path(field: &FieldPath, arg: &str) -> Option<FieldPath> {
    if let Some(rest) = arg.strip_prefix("body.") {
        return FieldPath::parse(rest).ok();
    }
    let rest = arg.strip_prefix("item.")?;
    let segments = field.segments();
    let last_each = segments.iter().rposition(|s| *s == Segment::Each)?;
    let prefix = crate::path::render(&segments[..=last_each]);
    FieldPath::parse(&format!("{prefix}.{rest}")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_and_bindings_are_shown() {
        let policy = crate::test_util::policy(
            "[[route]]\nmethod = \"GET\"\npath = \"/jobs\"\nsubjects_optional = true\nallow = [\"[].id\"]\n\
             bind = [{ param = \"query.contractor\", value = \"recipient.attributes.contractor_code\" }]\n",
        );
        let register = Register::build(&policy, policy.glossary(), None, SystemTime::UNIX_EPOCH);
        for format in [Format::Html, Format::Markdown] {
            let text = register.render(format);
            assert!(text.contains("contractor_code = ACME"), "{text}");
            assert!(text.contains("contractor_code = BFX"), "{text}");
            assert!(
                text.contains("Set by the gateway for each recipient"),
                "{text}"
            );
            assert!(
                text.contains("recipient.attributes.contractor_code"),
                "{text}"
            );
        }
    }

    #[test]
    fn a_call_is_split_into_function_and_argument() {
        assert_eq!(
            single_call("age_band(item.date_of_birth)"),
            Some(("age_band", "item.date_of_birth"))
        );
        assert_eq!(single_call("a(b) + c(d)"), None);
        assert_eq!(single_call("size(body.x) > 2"), None);
    }

    #[test]
    fn item_arguments_read_the_element_of_the_derived_field() {
        let field = FieldPath::parse("[].age_band").expect("path");
        let from = source_path(&field, "item.date_of_birth").expect("from");
        assert_eq!(from.to_string(), "[].date_of_birth");
        let field = FieldPath::parse("tenant.age_band").expect("path");
        let from = source_path(&field, "body.tenant.date_of_birth").expect("from");
        assert_eq!(from.to_string(), "tenant.date_of_birth");
    }

    #[test]
    fn rates_read_as_words() {
        let rate = Rate::parse("60/min");
        assert_eq!(rate_words(rate), "60 requests per minute");
        assert_eq!(rate_words(None), "none");
    }
}
