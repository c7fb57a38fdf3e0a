//! The disclosure register: the loaded rules as a record of processing (UK GDPR Art. 30)
//! that a Data Protection Officer can read, print and file.
//!
//! It is made from the same [`Policy`] `serve` enforces, so it cannot describe rules that are
//! not the ones in force; the generation hash it prints names the exact rule files. The line
//! of each rule and the comment citing the privacy notice above it are the [`Site`]s the
//! loader kept from the same text it hashed, so they cannot belong to a file edited since.
//! Field paths get plain words from `rules/glossary.toml` ([`glossary`]).
//!
//! [`Register::build`] makes the model; [`html`], [`markdown`] and [`csv`] render it. None of
//! them prints or touches the clock: the caller passes the date, so the output is testable.

pub mod coverage;
pub mod csv;
pub use crate::rules::glossary;
pub mod html;
pub mod markdown;

use std::time::SystemTime;

use crate::path::{FieldPath, Segment};
use crate::routes::Takes;
use crate::rules::{LawfulBasis, Policy, Rate, Recipient, RecipientType, Route, Site};
use glossary::Glossary;

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
    pub types: Vec<TypeEntry>,
}

/// One recipient type: why it receives data, who it is, and what it receives.
#[derive(Debug, Clone)]
pub struct TypeEntry {
    pub name: String,
    pub purpose: String,
    pub purpose_citation: String,
    pub lawful_basis: LawfulBasis,
    pub lawful_basis_citation: String,
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
    pub subjects: Vec<String>,
    /// The comment above `[[route]]`, if any: what the route is for.
    pub note: String,
    pub rows: Vec<Row>,
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
    pub citation: String,
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
    /// An `items` rule: the elements of this array that are kept.
    RowFilter { keep: String },
    /// `refuse`: nothing of the response when `condition` holds.
    Refused { reason: String, condition: String },
}

// === impl Register ===

impl Register {
    /// The register of `policy`, dated `generated`.
    pub fn build(policy: &Policy, glossary: &Glossary, generated: SystemTime) -> Register {
        Register {
            generated,
            generation: policy.generation().to_owned(),
            types: policy
                .types()
                .map(|kind| TypeEntry::build(policy, kind, glossary))
                .collect(),
        }
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
    fn build(policy: &Policy, kind: &RecipientType, glossary: &Glossary) -> TypeEntry {
        let recipients = policy
            .recipients()
            .iter()
            .filter(|r| r.kind.name == kind.name)
            .map(|r| RecipientEntry::new(r))
            .collect();
        TypeEntry {
            name: kind.name.clone(),
            purpose: kind.purpose.clone(),
            purpose_citation: citation(&kind.purpose_site),
            lawful_basis: kind.lawful_basis,
            lawful_basis_citation: citation(&kind.lawful_basis_site),
            rate_limit: kind.rate_limit,
            recipients,
            routes: kind
                .routes
                .iter()
                .map(|route| RouteEntry::build(route, glossary))
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
    fn build(route: &Route, glossary: &Glossary) -> RouteEntry {
        let file = route
            .site
            .file
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let row = |field: String, disclosure: Disclosure, site: &Site| Row {
            words: glossary.words_or_path(&field).to_owned(),
            field,
            disclosure,
            citation: citation(site),
            file: file.clone(),
            line: site.line,
        };
        let mut rows = Vec::new();
        let conditions = &route.plan.conditions();
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
            let keep = items.keep.source().to_owned();
            rows.push(row(
                items.path.to_string(),
                Disclosure::RowFilter { keep },
                site,
            ));
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
            subjects: route
                .plan
                .subjects()
                .iter()
                .map(ToString::to_string)
                .collect(),
            note: citation(&route.site),
            rows,
        }
    }
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
            Disclosure::RowFilter { .. } => {
                "Row filter: only the entries meeting the condition below are sent".to_owned()
            }
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
            Disclosure::RowFilter { keep } => Some(keep),
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
            Disclosure::RowFilter { keep } => format!("keep: {keep}"),
        }
    }
}

// === words ===

/// The comment above a rule as the register cites it; empty without one.
fn citation(site: &Site) -> String {
    site.comment.clone().unwrap_or_default()
}

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

// === shared by the renderers ===

/// `000_7c66653068035281.txt: "quote" ...` split into the notice documents it names and the
/// text: a renderer sets the document names apart so the quote reads as the main thing.
pub fn citation_parts(citation: &str) -> Vec<CitationPart<'_>> {
    let mut parts = Vec::new();
    let mut rest = citation;
    while let Some(end) = rest.find(".txt:") {
        let start = rest[..end]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .map_or(0, |i| i + 1);
        if start == end {
            parts.push(CitationPart::Text(&rest[..end + 5]));
        } else {
            if start > 0 {
                parts.push(CitationPart::Text(&rest[..start]));
            }
            parts.push(CitationPart::Document(&rest[start..end + 4]));
        }
        rest = &rest[end + 5..];
    }
    if !rest.is_empty() {
        parts.push(CitationPart::Text(rest));
    }
    parts
}

/// A piece of a citation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CitationPart<'a> {
    /// The notice document's name, without the colon after it.
    Document(&'a str),
    Text(&'a str),
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
        let register = Register::build(&policy, policy.glossary(), SystemTime::UNIX_EPOCH);
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
    fn citations_set_the_documents_apart() {
        let parts = citation_parts("000_ab.txt: \"one\"; 002_cd.txt: \"two\"");
        assert_eq!(
            parts,
            [
                CitationPart::Document("000_ab.txt"),
                CitationPart::Text(" \"one\"; "),
                CitationPart::Document("002_cd.txt"),
                CitationPart::Text(" \"two\""),
            ]
        );
        assert_eq!(
            citation_parts("no document"),
            [CitationPart::Text("no document")]
        );
    }

    #[test]
    fn rates_read_as_words() {
        let rate = Rate::parse("60/min");
        assert_eq!(rate_words(rate), "60 requests per minute");
        assert_eq!(rate_words(None), "none");
    }
}
