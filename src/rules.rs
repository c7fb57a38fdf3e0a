//! `rules/` parsed and checked into an immutable [`Policy`].
//!
//! Parse, don't validate: the request path only ever sees a `Policy`, in which route templates
//! are compiled, paths parsed, key hashes decoded and rates parsed. Loading collects every
//! problem it finds (not just the first), each with its file and line, so `check` can print
//! them all and `serve` can refuse to start on any of them.
//!
//! Layout of the directory:
//! - `recipients.toml`: the organisations (`[[recipient]]`), their identity and type.
//! - `types/<type>.toml`: the policy of one recipient type: purpose, lawful basis, routes.
//! - `glossary.toml`, `notices.toml` (optional): plain words for field paths, and the privacy
//!   notices the comments cite, for the register ([`glossary`], [`notices`]).

mod attributes;
mod binding;
pub mod changes;
pub mod glossary;
pub mod notices;
mod raw;
mod scrub;
mod site;
pub mod snapshot;
pub mod write;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use toml::Spanned;

use crate::diag::{line_of, Diagnostic};
use crate::filter::cel::{Expr, Functions, PseudonymKey};
use crate::filter::conditions::{self, Conditions, Derive, Items, Refuse, When};
use crate::filter::lookup::{self, Lookup};
use crate::filter::{Caller, Plan};
use crate::path::{FieldPath, KnownKeys, Segment};
use crate::routes::{Bindings, Takes, Template};
use glossary::Glossary;
use notices::Notices;
use site::Source;
pub use site::{RuleSites, Site, WhenSite};

/// The checked policy the gateway serves; immutable once built.
#[derive(Debug)]
pub struct Policy {
    recipients: Vec<Arc<Recipient>>,
    types: BTreeMap<String, Arc<RecipientType>>,
    /// SHA-256 over the rule files' names and bytes: which rules a decision was made under.
    generation: String,
    warnings: Vec<Diagnostic>,
    glossary: Glossary,
    /// What the ledger keeps of these rules for describing their disclosures later.
    snapshot: snapshot::Sealed,
    notices: Notices,
}

/// One organisation that receives data.
pub struct Recipient {
    pub id: String,
    pub name: String,
    pub kind: Arc<RecipientType>,
    pub api_key_sha256: Option<[u8; 32]>,
    pub cert_sha256: Option<[u8; 32]>,
    pub cert_san: Option<String>,
    pub rate_limit: Option<Rate>,
    /// `[recipient.attributes]`: strings the rules read as `recipient.attributes.<name>`.
    pub attributes: BTreeMap<String, String>,
}

/// The policy of one recipient type.
#[derive(Debug)]
pub struct RecipientType {
    pub name: String,
    pub purpose: String,
    /// Where `purpose` is written, with the comment citing the privacy notice for it.
    pub purpose_site: Site,
    pub lawful_basis: LawfulBasis,
    pub lawful_basis_site: Site,
    /// `data_subjects`: whom the data is about (tenants, household members), in the type's
    /// own words; empty when the file does not say.
    pub data_subjects: Vec<String>,
    pub rate_limit: Option<Rate>,
    /// Concurrent requests each recipient of this type may have under way
    /// ([`crate::limits::in_flight`]); `None`: unbounded.
    pub max_in_flight: Option<u32>,
    pub routes: Vec<Route>,
}

/// One granted route of a type.
#[derive(Debug)]
pub struct Route {
    pub method: http::Method,
    pub template: Template,
    /// Query parameters the recipient may send, by name (`"StatusCode[]"` is `StatusCode`,
    /// [`Takes::Repeated`]); any other is refused with 400, but for those `bind` sets.
    pub query: BTreeMap<String, Takes>,
    /// `[[route.bind]]`: parameters the gateway sets for each recipient.
    pub bind: Bindings,
    /// The compiled rules: what of an upstream body the recipient gets.
    pub plan: Plan,
    /// Where `[[route]]` is written, with the comment above it: what the route is for.
    pub site: Site,
    /// Where each rule of `plan` is written, for the register and `check`.
    pub rule_sites: RuleSites,
}

impl crate::routes::Grant for Route {
    fn method(&self) -> &http::Method {
        &self.method
    }

    fn template(&self) -> &Template {
        &self.template
    }

    fn query(&self) -> &BTreeMap<String, Takes> {
        &self.query
    }

    fn bindings(&self) -> &Bindings {
        &self.bind
    }
}

/// The UK GDPR Art. 6 lawful bases a disclosure may rest on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LawfulBasis {
    Contract,
    LegalObligation,
    VitalInterests,
    PublicTask,
    LegitimateInterests,
    Consent,
}

/// `N/s`, `N/min` or `N/h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

/// Secrets the rules may use, read by the caller from the environment.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    pub pseudonym_key: Option<PseudonymKey>,
    /// The variable it was to be read from, for the message when it is missing.
    pub pseudonym_key_env: Option<String>,
}

/// The rules could not be loaded; every problem, errors and warnings both.
#[derive(Debug, thiserror::Error)]
#[error("{} problem(s) in the rules", .0.iter().filter(|d| d.is_error()).count())]
pub struct Error(pub Vec<Diagnostic>);

// === impl Policy ===

impl Policy {
    /// Loads and checks `dir`.
    ///
    /// # Errors
    ///
    /// Every problem found, when at least one is an error (warnings alone do not fail).
    pub fn load(dir: &Path) -> Result<Policy, Error> {
        Self::load_with(dir, &Secrets::default())
    }

    /// [`Policy::load`] with the secrets the rules may use.
    ///
    /// # Errors
    ///
    /// As [`Policy::load`].
    pub fn load_with(dir: &Path, secrets: &Secrets) -> Result<Policy, Error> {
        let mut loader = Loader {
            secrets: secrets.clone(),
            ..Loader::default()
        };
        let policy = loader.load(dir);
        if loader.diagnostics.iter().any(Diagnostic::is_error) {
            return Err(Error(loader.diagnostics));
        }
        let mut policy = policy.ok_or_else(|| Error(loader.diagnostics.clone()))?;
        policy.warnings = loader.diagnostics;
        Ok(policy)
    }

    pub fn recipients(&self) -> &[Arc<Recipient>] {
        &self.recipients
    }

    pub fn types(&self) -> impl Iterator<Item = &Arc<RecipientType>> {
        self.types.values()
    }

    pub fn recipient(&self, id: &str) -> Option<&Arc<Recipient>> {
        self.recipients.iter().find(|r| r.id == id)
    }

    pub fn generation(&self) -> &str {
        &self.generation
    }

    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// The rules' descriptions as the ledger keeps them; records name its digest.
    pub fn snapshot(&self) -> &snapshot::Sealed {
        &self.snapshot
    }

    /// `glossary.toml`'s words for the field paths (empty without the file).
    pub fn glossary(&self) -> &Glossary {
        &self.glossary
    }

    /// `notices.toml`'s privacy notices (empty without the file).
    pub fn notices(&self) -> &Notices {
        &self.notices
    }
}

/// A query parameter name a rule may list, bind or look up with: letters, digits, `_`, `-`
/// and `.`, which a target carries verbatim.
fn query_name_is_valid(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// Every key the rules of `types` and the glossary name.
fn known_keys(types: &[RecipientType], glossary: &Glossary) -> KnownKeys {
    let mut known = KnownKeys::default();
    for route in types.iter().flat_map(|t| &t.routes) {
        for path in route.plan.allow().iter().chain(route.plan.subjects()) {
            known.add_path(path);
        }
        route.plan.conditions().name_keys(&mut known);
        for lookup in route.plan.lookups() {
            lookup.name_keys(&mut known);
        }
        for (path, _) in route.plan.scrubs().paths() {
            known.add_path(path);
        }
    }
    for path in glossary.paths() {
        if let Ok(path) = FieldPath::parse(path) {
            known.add_path(&path);
        }
    }
    known
}

// === impl Recipient ===

/// Hand-written so that key and certificate hashes never reach a log line.
impl Recipient {
    /// The recipient as the rules see it: no credentials.
    pub fn caller(&self) -> Caller<'_> {
        Caller {
            id: &self.id,
            kind: &self.kind.name,
            name: &self.name,
            attributes: &self.attributes,
        }
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recipient")
            .field("id", &self.id)
            .field("type", &self.kind.name)
            .finish_non_exhaustive()
    }
}

// === impl LawfulBasis ===

impl LawfulBasis {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "contract" => LawfulBasis::Contract,
            "legal_obligation" => LawfulBasis::LegalObligation,
            "vital_interests" => LawfulBasis::VitalInterests,
            "public_task" => LawfulBasis::PublicTask,
            "legitimate_interests" => LawfulBasis::LegitimateInterests,
            "consent" => LawfulBasis::Consent,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LawfulBasis::Contract => "contract",
            LawfulBasis::LegalObligation => "legal_obligation",
            LawfulBasis::VitalInterests => "vital_interests",
            LawfulBasis::PublicTask => "public_task",
            LawfulBasis::LegitimateInterests => "legitimate_interests",
            LawfulBasis::Consent => "consent",
        }
    }
}

impl fmt::Display for LawfulBasis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl Rate ===

impl Rate {
    pub fn parse(text: &str) -> Option<Rate> {
        let (count, unit) = text.trim().split_once('/')?;
        let count: u32 = count.trim().parse().ok().filter(|&n| n > 0)?;
        let per = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return None,
        };
        Some(Rate { count, per })
    }

    /// Requests an hour, to compare rates written in different units.
    pub fn per_hour(self) -> f64 {
        f64::from(self.count) * 3600.0 / self.per.as_secs_f64().max(1e-9)
    }
}

/// In words: `60/min` is "60 requests per minute".
impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let noun = if self.count == 1 {
            "request"
        } else {
            "requests"
        };
        write!(f, "{} {noun} per ", self.count)?;
        match self.per.as_secs() {
            1 => f.write_str("second"),
            60 => f.write_str("minute"),
            3600 => f.write_str("hour"),
            s => write!(f, "{s} seconds"),
        }
    }
}

// === the loader ===

/// Collects diagnostics while building the policy, so one run reports everything.
#[derive(Default)]
struct Loader {
    diagnostics: Vec<Diagnostic>,
    hasher: Sha256,
    secrets: Secrets,
    /// The rules directory as given: files are hashed by their names below it, so the
    /// generation is the same however the directory was named (`rules`, `./rules`, an
    /// absolute path, from another working directory).
    root: PathBuf,
    /// The lookups the route being loaded declares: an expression may read only those.
    lookup_names: BTreeSet<String>,
    /// Rules reading `recipient.attributes.<name>`, checked once the recipients are loaded.
    attribute_reads: Vec<attributes::AttributeRead>,
    /// Each notice a type file's comments cite, with where, checked once the notices are
    /// loaded.
    citations: Vec<(Arc<Path>, usize, String)>,
}

impl Loader {
    fn error(&mut self, file: &Path, line: usize, message: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::error(file, line, message));
    }

    fn read(&mut self, path: PathBuf) -> Option<Source> {
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let name = path.strip_prefix(&self.root).unwrap_or(&path);
                let name: Vec<String> = name
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                self.hasher.update(name.join("/").as_bytes());
                self.hasher.update([0]);
                self.hasher.update(text.as_bytes());
                self.hasher.update([0]);
                Some(Source {
                    path: Arc::from(path),
                    text,
                })
            }
            Err(e) => {
                self.error(&path, 0, format!("cannot read: {e}"));
                None
            }
        }
    }

    fn parse<T: serde::de::DeserializeOwned>(&mut self, source: &Source) -> Option<T> {
        match toml::from_str::<T>(&source.text) {
            Ok(v) => Some(v),
            Err(e) => {
                let line = e
                    .span()
                    .map(|s| line_of(&source.text, s.start))
                    .unwrap_or(0);
                self.error(&source.path, line, e.message().to_string());
                None
            }
        }
    }

    fn load(&mut self, dir: &Path) -> Option<Policy> {
        self.root = dir.to_path_buf();
        let types_dir = dir.join("types");
        let mut type_files: Vec<PathBuf> = match std::fs::read_dir(&types_dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect(),
            Err(e) => {
                self.error(
                    &types_dir,
                    0,
                    format!("cannot read the types directory: {e}"),
                );
                Vec::new()
            }
        };
        type_files.sort();
        let mut loaded = Vec::new();
        for path in type_files {
            if let Some(kind) = self.load_type(path) {
                loaded.push(kind);
            }
        }
        let glossary = self.load_glossary(dir);
        let notices = self.load_notices(dir);
        let known = Arc::new(known_keys(&loaded, &glossary));
        let mut types = BTreeMap::new();
        for mut kind in loaded {
            for route in &mut kind.routes {
                route.plan.set_known_keys(Arc::clone(&known));
            }
            types.insert(kind.name.clone(), Arc::new(kind));
        }
        let recipients = self.load_recipients(&dir.join("recipients.toml"), &types);
        if let Some(recipients) = &recipients {
            self.check_attribute_reads(recipients);
            self.check_binding_values(recipients);
        }
        let generation = hex::encode(std::mem::take(&mut self.hasher).finalize());
        let mut policy = Policy {
            recipients: recipients?,
            types,
            generation,
            warnings: Vec::new(),
            glossary,
            notices,
            snapshot: snapshot::Sealed {
                digest: String::new(),
                bytes: Vec::new(),
            },
        };
        policy.snapshot = snapshot::Snapshot::of(&policy).seal();
        Some(policy)
    }

    /// `notices.toml`, when there is one, and then a warning for each citation of a notice it
    /// does not name. Without the file citations are not checked: the register shows their
    /// ids as written.
    fn load_notices(&mut self, dir: &Path) -> Notices {
        let Some(source) = self.read_optional(dir, notices::FILE) else {
            return Notices::default();
        };
        let (notices, problems) = Notices::parse(&source.path, &source.text);
        self.diagnostics.extend(problems);
        for (file, line, id) in std::mem::take(&mut self.citations) {
            self.diagnostics
                .extend(notices.check_citation(&file, line, &id));
        }
        notices
    }

    /// `glossary.toml`, when there is one: its paths name keys too ([`KnownKeys`]).
    fn load_glossary(&mut self, dir: &Path) -> Glossary {
        let Some(source) = self.read_optional(dir, glossary::FILE) else {
            return Glossary::default();
        };
        match Glossary::parse(&source.path, &source.text) {
            Ok(glossary) => glossary,
            Err(e) => {
                self.diagnostics.push(e.to_diagnostic());
                Glossary::default()
            }
        }
    }

    /// `dir/name` read (and hashed) when it exists; `None` when it does not, or cannot be
    /// read (an error then).
    fn read_optional(&mut self, dir: &Path, name: &str) -> Option<Source> {
        let path = dir.join(name);
        path.exists().then(|| self.read(path)).flatten()
    }

    fn load_type(&mut self, path: PathBuf) -> Option<RecipientType> {
        let source = self.read(path)?;
        let raw: raw::RecipientType = self.parse(&source)?;
        let file = source.path.clone();
        for (line, id) in notices::citations(&source.text) {
            self.citations.push((Arc::clone(&file), line, id));
        }
        let data_subjects = self.data_subjects(&source, &raw.data_subjects);
        let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned());
        if stem.as_deref() != Some(raw.kind.get_ref().as_str()) {
            self.error(
                &file,
                source.line(&raw.kind),
                format!(
                    "type {:?} must be in a file named {}.toml",
                    raw.kind.get_ref(),
                    raw.kind.get_ref()
                ),
            );
        }
        let lawful_basis = LawfulBasis::parse(raw.lawful_basis.get_ref());
        if lawful_basis.is_none() {
            self.error(
                &file,
                source.line(&raw.lawful_basis),
                format!(
                    "lawful_basis {:?} is not one of contract, legal_obligation, vital_interests, public_task, legitimate_interests, consent",
                    raw.lawful_basis.get_ref()
                ),
            );
        }
        if raw.purpose.get_ref().trim().is_empty() {
            self.error(&file, source.line(&raw.purpose), "purpose is empty");
        }
        let rate_limit = raw.rate_limit.as_ref().and_then(|r| self.rate(&source, r));
        let max_in_flight = raw.max_in_flight.as_ref().and_then(|n| {
            let value = u32::try_from(*n.get_ref()).ok().filter(|v| *v > 0);
            if value.is_none() {
                self.error(
                    &file,
                    source.line(n),
                    format!(
                        "max_in_flight {} is not a whole number of requests of at least 1",
                        n.get_ref()
                    ),
                );
            }
            value
        });
        let mut routes = Vec::new();
        let mut seen: HashMap<(String, String), usize> = HashMap::new();
        for raw_route in &raw.route {
            let Some(route) = self.route(&source, raw_route, raw.kind.get_ref()) else {
                continue;
            };
            let line = route.site.line;
            let key = (route.method.to_string(), route.template.shape());
            if let Some(first) = seen.insert(key, line) {
                self.error(
                    &file,
                    line,
                    format!(
                        "route {} {} is already granted at line {first}",
                        route.method, route.template
                    ),
                );
                continue;
            }
            routes.push(route);
        }
        Some(RecipientType {
            name: raw.kind.into_inner(),
            purpose_site: source.site(&raw.purpose),
            purpose: raw.purpose.into_inner(),
            lawful_basis_site: source.site(&raw.lawful_basis),
            lawful_basis: lawful_basis?,
            data_subjects,
            rate_limit,
            max_in_flight,
            routes,
        })
    }

    fn rate(&mut self, source: &Source, text: &Spanned<String>) -> Option<Rate> {
        let rate = Rate::parse(text.get_ref());
        if rate.is_none() {
            self.error(
                &source.path,
                source.line(text),
                format!(
                    "rate_limit {:?} is not a rate such as \"60/min\" (per s, min or h)",
                    text.get_ref()
                ),
            );
        }
        rate
    }

    fn paths(
        &mut self,
        source: &Source,
        key: &str,
        list: &[Spanned<String>],
    ) -> Option<Vec<FieldPath>> {
        let mut ok = true;
        let mut paths = Vec::new();
        for entry in list {
            match FieldPath::parse(entry.get_ref()) {
                Ok(p) => paths.push(p),
                Err(e) => {
                    self.error(&source.path, source.line(entry), format!("{key}: {e}"));
                    ok = false;
                }
            }
        }
        ok.then_some(paths)
    }

    fn route(
        &mut self,
        source: &Source,
        spanned: &Spanned<raw::Route>,
        kind: &str,
    ) -> Option<Route> {
        let file = &source.path;
        let site = source.site(spanned);
        let line = site.line;
        let raw = spanned.get_ref();
        let method = match raw.method.get_ref().as_str() {
            m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE") => {
                http::Method::from_bytes(m.as_bytes()).ok()
            }
            other => {
                self.error(
                    file,
                    source.line(&raw.method),
                    format!("method {other:?} is not one of GET, POST, PUT, PATCH, DELETE"),
                );
                None
            }
        };
        let template = match Template::parse(raw.path.get_ref()) {
            Ok(t) => Some(t),
            Err(e) => {
                self.error(file, source.line(&raw.path), e.to_string());
                None
            }
        };
        let mut query = BTreeMap::new();
        for q in &raw.query {
            let text = q.get_ref();
            let (name, takes) = match text.strip_suffix("[]") {
                Some(name) => (name, Takes::Repeated),
                None => (text.as_str(), Takes::Once),
            };
            if !query_name_is_valid(name) {
                self.error(
                    file,
                    source.line(q),
                    format!("query parameter name {text:?} is not valid"),
                );
            } else if query.insert(name.to_owned(), takes).is_some() {
                self.error(
                    file,
                    source.line(q),
                    format!("query parameter {name:?} is listed twice"),
                );
            }
        }
        let subjects = self.paths(source, "subjects", &raw.subjects);
        if raw.subjects.is_empty() && !raw.subjects_optional {
            self.diagnostics.push(Diagnostic::warning(
                file,
                line,
                "route names no subjects: a response that discloses anything is refused (502), since no subject access request could find it; set subjects_optional = true if its data names no person",
            ));
        }
        let max_items = match &raw.max_items {
            None => Some(None),
            Some(n) => match usize::try_from(*n.get_ref()) {
                Ok(n) if n > 0 => Some(Some(n)),
                _ => {
                    self.error(
                        file,
                        source.line(n),
                        format!(
                            "max_items {} must be a whole number of at least 1",
                            n.get_ref()
                        ),
                    );
                    None
                }
            },
        };
        let allow_paths = self.paths(source, "allow", &raw.allow);
        if raw.allow.is_empty() {
            self.diagnostics.push(Diagnostic::warning(
                file,
                line,
                "route allows no fields: recipients get an empty body",
            ));
        }
        let allow_paths = allow_paths?;
        let lookups = self.lookups(source, raw);
        let conditions = self.conditions(source, raw, kind, &allow_paths);
        let scrubs = conditions
            .as_ref()
            .and_then(|c| scrub::compile(self, source, &raw.scrub, &allow_paths, c));
        let bind = self.bindings(source, raw, template.as_ref(), &query, kind);
        let write = write::compile(self, source, spanned, method.as_ref(), lookups.as_deref());
        Some(Route {
            method: method?,
            template: template?,
            query,
            bind: bind?,
            plan: Plan::new(allow_paths, subjects?, raw.subjects_optional, conditions?)
                .with_lookups(lookups?)
                .with_scrubs(scrubs?)
                .with_max_items(max_items?)
                .with_write(write?),
            site,
            rule_sites: source.rule_sites(raw),
        })
    }

    /// Compiles `when`, `items`, `derive` and `refuse`, reporting every problem.
    fn conditions(
        &mut self,
        source: &Source,
        raw: &raw::Route,
        kind: &str,
        allow: &[FieldPath],
    ) -> Option<Conditions> {
        let file = &source.path;
        let site = |at: usize, what: &str| format!("{}:{at} {what}", file.display());
        let mut ok = true;
        let mut uses_pseudonym: Option<usize> = None;
        let mut when = Vec::new();
        if raw.when.len() > conditions::MAX_WHENS {
            self.error(
                file,
                source.line(&raw.when[conditions::MAX_WHENS]),
                format!(
                    "a route may have at most {} when rules",
                    conditions::MAX_WHENS
                ),
            );
            ok = false;
        }
        for w in &raw.when {
            let at = source.line(w);
            let w = w.get_ref();
            let condition = self.expr(source, "when condition", &w.condition, false);
            let reason = self.reason(source, &w.reason);
            let paths = self.paths(source, "when allow", &w.allow);
            if w.allow.is_empty() {
                self.diagnostics
                    .push(Diagnostic::warning(file, at, "when rule allows no fields"));
            }
            if let Some(paths) = &paths {
                for (p, text) in paths.iter().zip(&w.allow) {
                    if let Some(a) = allow.iter().find(|a| p.is_under(a)) {
                        self.diagnostics.push(Diagnostic::warning(
                            file,
                            source.line(text),
                            format!("when allow \"{p}\" is already granted by allow \"{a}\": the condition changes nothing for it"),
                        ));
                    }
                }
            }
            match (condition, reason, paths) {
                (Some(condition), Some(reason), Some(paths)) => {
                    if condition.uses().pseudonym {
                        uses_pseudonym.get_or_insert(source.line(&w.condition));
                    }
                    when.push(When {
                        condition,
                        reason,
                        allow: paths,
                        site: site(at, "when"),
                    });
                }
                _ => ok = false,
            }
        }
        let mut items = Vec::new();
        for i in &raw.items {
            let at = source.line(i);
            let i = i.get_ref();
            let path = self.paths(source, "items path", std::slice::from_ref(&i.path));
            let keep = self.expr(source, "items keep", &i.keep, true);
            let reason = match &i.reason {
                Some(text) => self.reason(source, text).map(Some),
                None => {
                    self.diagnostics.push(Diagnostic::warning(
                        file,
                        at,
                        "items rule has no reason: add reason = \"...\" saying in plain words which entries are sent, for the register",
                    ));
                    Some(None)
                }
            };
            match (path.and_then(|mut p| p.pop()), keep, reason) {
                (Some(path), Some(keep), Some(reason)) => {
                    if keep.uses().pseudonym {
                        uses_pseudonym.get_or_insert(source.line(&i.keep));
                    }
                    items.push(Items {
                        path,
                        keep,
                        reason,
                        keep_empty: i.keep_empty,
                        site: site(at, "items"),
                    });
                }
                _ => ok = false,
            }
        }
        // An element's fate must not depend on elements that are not sent: an items rule may
        // read `body`, but not where any items rule filters (its own array included).
        let compiled = items.len() == raw.items.len();
        for (rule, raw_rule) in items.iter().zip(&raw.items).filter(|_| compiled) {
            let reads = rule.keep.body_reads();
            for other in &items {
                let root = other.path.segments() == [Segment::Each];
                let segments: &[Segment] = if root { &[] } else { other.path.segments() };
                if reads.reaches(segments) {
                    self.error(
                        file,
                        source.line(&raw_rule.get_ref().keep),
                        format!(
                            "items keep reads body where the items rule on \"{}\" filters: whether an element is kept would depend on elements that are not sent; read item, or fields no items rule filters",
                            other.path
                        ),
                    );
                    ok = false;
                    break;
                }
            }
        }
        let mut derive = Vec::new();
        let when_paths: Vec<&FieldPath> = when.iter().flat_map(|w| &w.allow).collect();
        for d in &raw.derive {
            let at = source.line(d);
            let d = d.get_ref();
            let field = self
                .paths(source, "derive field", std::slice::from_ref(&d.field))
                .and_then(|mut p| p.pop());
            let field = field.filter(|f| {
                let ends_with_key = matches!(f.segments().last(), Some(Segment::Key(_)));
                if !ends_with_key {
                    self.error(
                        file,
                        source.line(&d.field),
                        format!("derive field \"{f}\" must end with a key, not []"),
                    );
                }
                ends_with_key
            });
            let item = field
                .as_ref()
                .is_some_and(|f| f.segments().contains(&Segment::Each));
            let value = self.expr(source, "derive value", &d.value, item);
            if let Some(f) = &field {
                let overlap = allow
                    .iter()
                    .chain(when_paths.iter().copied())
                    .find(|a| f.is_under(a) || a.is_under(f));
                if let Some(a) = overlap {
                    self.diagnostics.push(Diagnostic::warning(
                        file,
                        source.line(&d.field),
                        format!("derived field \"{f}\" overlaps the allowed path \"{a}\": an upstream value there is replaced by the derived one"),
                    ));
                }
            }
            // A derived value is sent: one computed from a lookup would send what the rules
            // promise a lookup never discloses.
            let value = value.filter(|v| {
                let reads_lookup = !v.lookups().is_empty();
                if reads_lookup {
                    self.error(
                        file,
                        source.line(&d.value),
                        "a derived value may not read lookup: what a lookup answers is never sent (use it in a when, items or refuse condition)",
                    );
                }
                !reads_lookup
            });
            match (field, value) {
                (Some(field), Some(value)) => {
                    if value.uses().pseudonym {
                        uses_pseudonym.get_or_insert(source.line(&d.value));
                    }
                    derive.push(Derive {
                        field,
                        value,
                        site: site(at, "derive"),
                    });
                }
                _ => ok = false,
            }
        }
        let mut refuse = None;
        if let Some(r) = &raw.refuse {
            let at = source.line(r);
            let r = r.get_ref();
            let condition = self.expr(source, "refuse condition", &r.condition, false);
            let reason = self.reason(source, &r.reason);
            let status = match &r.status {
                None => Some(403),
                Some(s) => {
                    let status = u16::try_from(*s.get_ref())
                        .ok()
                        .filter(|s| conditions::REFUSE_STATUSES.contains(s));
                    if status.is_none() {
                        self.error(
                            file,
                            source.line(s),
                            format!("refuse status {} must be 403 or 404", s.get_ref()),
                        );
                    }
                    status
                }
            };
            match (condition, reason, status) {
                (Some(condition), Some(reason), Some(status)) => {
                    if condition.uses().pseudonym {
                        uses_pseudonym.get_or_insert(source.line(&r.condition));
                    }
                    refuse = Some(Refuse {
                        condition,
                        reason,
                        status,
                        site: site(at, "refuse"),
                    });
                }
                _ => ok = false,
            }
        }
        if let (Some(at), None) = (uses_pseudonym, &self.secrets.pseudonym_key) {
            let hint = match &self.secrets.pseudonym_key_env {
                Some(name) => format!("the environment variable {name} is not set"),
                None => "set rules.pseudonym_key_env in the config and that environment variable"
                    .to_owned(),
            };
            self.error(
                file,
                at,
                format!(
                    "pseudonym() needs a key of at least {} bytes: {hint}",
                    crate::filter::cel::MIN_KEY_BYTES
                ),
            );
            ok = false;
        }
        if !ok {
            return None;
        }
        let functions = Functions::new(kind, self.secrets.pseudonym_key.as_ref());
        Some(Conditions::new(
            allow, when, items, derive, refuse, functions,
        ))
    }

    /// Compiles the route's `[[route.lookup]]`s, and notes their names for [`Self::expr`].
    fn lookups(&mut self, source: &Source, raw: &raw::Route) -> Option<Vec<Lookup>> {
        let file = &source.path;
        let mut ok = true;
        self.lookup_names.clear();
        if let Some(extra) = raw.lookup.get(lookup::MAX_LOOKUPS) {
            self.error(
                file,
                source.line(extra),
                format!("a route may have at most {} lookups", lookup::MAX_LOOKUPS),
            );
            ok = false;
        }
        let mut lookups = Vec::new();
        for l in &raw.lookup {
            let l = l.get_ref();
            let name = l.name.get_ref();
            let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid {
                self.error(
                    file,
                    source.line(&l.name),
                    format!("lookup name {name:?} must be letters, digits and _, as CEL reads lookup.<name>"),
                );
                ok = false;
            } else if !self.lookup_names.insert(name.clone()) {
                self.error(
                    file,
                    source.line(&l.name),
                    format!("lookup {name:?} is declared twice"),
                );
                ok = false;
            }
            let mut query = Vec::new();
            for (param, text) in &l.query {
                if !query_name_is_valid(param) {
                    self.error(
                        file,
                        source.line(text),
                        format!("lookup query parameter name {param:?} is not valid"),
                    );
                    ok = false;
                }
                let expr = self.expr(source, "lookup query", text, false);
                match expr.map(|e| lookup::check_placeholder(&e).map(|()| e)) {
                    Some(Ok(e)) => query.push((param.clone(), e)),
                    Some(Err(why)) => {
                        self.error(file, source.line(text), format!("lookup query: {why}"));
                        ok = false;
                    }
                    None => ok = false,
                }
            }
            match Lookup::new(name, l.path.get_ref(), query) {
                Ok(compiled) => {
                    if compiled.uses_pseudonym() && self.secrets.pseudonym_key.is_none() {
                        self.error(
                            file,
                            source.line(&l.path),
                            "pseudonym() needs a pseudonym key, and none is set",
                        );
                        ok = false;
                    }
                    lookups.push(compiled);
                }
                Err(errors) => {
                    for e in errors {
                        self.error(file, source.line(&l.path), e);
                    }
                    ok = false;
                }
            }
        }
        ok.then_some(lookups)
    }

    /// Compiles one CEL expression; problems are reported at their line in the file.
    fn expr(
        &mut self,
        source: &Source,
        what: &str,
        text: &Spanned<String>,
        item: bool,
    ) -> Option<Expr> {
        match Expr::compile(text.get_ref(), item) {
            Ok(e) => {
                let undeclared: Vec<String> = e
                    .lookups()
                    .difference(&self.lookup_names)
                    .cloned()
                    .collect();
                for name in &undeclared {
                    self.error(
                        &source.path,
                        source.line(text),
                        format!("{what}: the route has no lookup {name:?} (declare it in [[route.lookup]])"),
                    );
                }
                self.note_attribute_reads(source, source.line(text), &e);
                undeclared.is_empty().then_some(e)
            }
            Err(errors) => {
                let start = source.line(text);
                // A multi-line string whose first line is empty: TOML drops that newline.
                let raw = source.text.get(text.span()).unwrap_or_default();
                let skipped = usize::from(
                    raw.starts_with("'''\n")
                        || raw.starts_with("\"\"\"\n")
                        || raw.starts_with("'''\r\n")
                        || raw.starts_with("\"\"\"\r\n"),
                );
                for e in errors {
                    self.error(
                        &source.path,
                        start + skipped + e.line - 1,
                        format!("{what}: {}", e.message),
                    );
                }
                None
            }
        }
    }

    fn reason(&mut self, source: &Source, text: &Spanned<String>) -> Option<String> {
        let reason = text.get_ref().trim();
        if reason.is_empty() {
            self.error(
                &source.path,
                source.line(text),
                "reason is empty: the audit records it",
            );
            return None;
        }
        Some(reason.to_owned())
    }

    /// `data_subjects`: each a non-empty phrase, none twice.
    fn data_subjects(&mut self, source: &Source, list: &[Spanned<String>]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for entry in list {
            let text = entry.get_ref().trim();
            if text.is_empty() {
                self.error(
                    &source.path,
                    source.line(entry),
                    "data_subjects entry is empty",
                );
            } else if out.iter().any(|s| s == text) {
                self.error(
                    &source.path,
                    source.line(entry),
                    format!("data_subjects lists {text:?} twice"),
                );
            } else {
                out.push(text.to_owned());
            }
        }
        out
    }

    fn load_recipients(
        &mut self,
        path: &Path,
        types: &BTreeMap<String, Arc<RecipientType>>,
    ) -> Option<Vec<Arc<Recipient>>> {
        let source = self.read(path.to_path_buf())?;
        let raw: raw::Recipients = self.parse(&source)?;
        let file = &source.path;
        let mut recipients = Vec::new();
        let mut ids: HashMap<String, usize> = HashMap::new();
        let mut keys: HashMap<[u8; 32], usize> = HashMap::new();
        let mut certs: HashMap<[u8; 32], usize> = HashMap::new();
        let mut sans: HashMap<String, usize> = HashMap::new();
        for entry in &raw.recipient {
            let line = source.line(entry);
            let r = entry.get_ref();
            let mut ok = true;
            let id = r.id.get_ref();
            if id.is_empty()
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            {
                self.error(
                    file,
                    source.line(&r.id),
                    format!("recipient id {id:?} may hold only letters, digits, '-', '_' and '.'"),
                );
                ok = false;
            }
            if let Some(first) = ids.insert(id.clone(), line) {
                self.error(
                    file,
                    source.line(&r.id),
                    format!("recipient {id:?} is already defined at line {first}"),
                );
                ok = false;
            }
            let kind = types.get(r.kind.get_ref()).cloned();
            if kind.is_none() {
                self.error(
                    file,
                    source.line(&r.kind),
                    format!(
                        "recipient {id:?} has type {:?}, but there is no types/{}.toml (or it has errors)",
                        r.kind.get_ref(),
                        r.kind.get_ref()
                    ),
                );
            }
            let api_key_sha256 = self.digest(
                &source,
                "api_key_sha256",
                r.api_key_sha256.as_ref(),
                &mut keys,
                line,
                &mut ok,
            );
            let cert_sha256 = self.digest(
                &source,
                "cert_sha256",
                r.cert_sha256.as_ref(),
                &mut certs,
                line,
                &mut ok,
            );
            if let Some(san) = &r.cert_san {
                let name = san.get_ref().to_ascii_lowercase();
                if name.is_empty() || name.contains(char::is_whitespace) {
                    self.error(
                        file,
                        source.line(san),
                        format!("cert_san {:?} is not a DNS name", san.get_ref()),
                    );
                    ok = false;
                } else if let Some(first) = sans.insert(name, line) {
                    self.error(
                        file,
                        source.line(san),
                        format!("cert_san is already used by the recipient at line {first}"),
                    );
                    ok = false;
                }
            }
            if r.api_key_sha256.is_none() && r.cert_sha256.is_none() && r.cert_san.is_none() {
                self.error(file, line, format!("recipient {id:?} has no identity: set api_key_sha256, cert_sha256 or cert_san"));
                ok = false;
            }
            let rate_limit = r.rate_limit.as_ref().and_then(|t| self.rate(&source, t));
            if r.rate_limit.is_some() && rate_limit.is_none() {
                ok = false;
            }
            let attributes = self.attributes(&source, &r.attributes, &mut ok);
            let (Some(kind), true) = (kind, ok) else {
                continue;
            };
            recipients.push(Arc::new(Recipient {
                id: id.clone(),
                name: r.name.clone(),
                kind,
                api_key_sha256,
                cert_sha256,
                cert_san: r
                    .cert_san
                    .as_ref()
                    .map(|s| s.get_ref().to_ascii_lowercase()),
                rate_limit,
                attributes,
            }));
        }
        Some(recipients)
    }

    /// Decodes a hex SHA-256 and checks that no other recipient holds the same one.
    fn digest(
        &mut self,
        source: &Source,
        key: &str,
        text: Option<&Spanned<String>>,
        seen: &mut HashMap<[u8; 32], usize>,
        line: usize,
        ok: &mut bool,
    ) -> Option<[u8; 32]> {
        let text = text?;
        let at = source.line(text);
        let mut bytes = [0u8; 32];
        if hex::decode_to_slice(text.get_ref().to_ascii_lowercase(), &mut bytes).is_err() {
            self.error(
                &source.path,
                at,
                format!("{key} must be 64 hexadecimal digits (a SHA-256)"),
            );
            *ok = false;
            return None;
        }
        if let Some(first) = seen.insert(bytes, line) {
            self.error(
                &source.path,
                at,
                format!("{key} is the same as the recipient's at line {first}: each recipient needs its own"),
            );
            *ok = false;
            return None;
        }
        Some(bytes)
    }
}

#[cfg(test)]
mod tests;
