//! The rule files as written, with spans for line numbers.
//!
//! Every struct denies unknown fields: a misspelt key (`alow`) must be an error, never a
//! silently ignored line that changes what is disclosed.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipients {
    #[serde(default)]
    pub recipient: Vec<Spanned<Recipient>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    pub id: Spanned<String>,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    pub api_key_sha256: Option<Spanned<String>>,
    pub cert_sha256: Option<Spanned<String>>,
    pub cert_san: Option<Spanned<String>>,
    pub rate_limit: Option<Spanned<String>>,
    /// Strings only: a number or table here is a load error at its line.
    #[serde(default)]
    pub attributes: BTreeMap<String, Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientType {
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    pub purpose: Spanned<String>,
    pub lawful_basis: Spanned<String>,
    /// Whom the type's data is about, in words: "tenants", "household members".
    #[serde(default)]
    pub data_subjects: Vec<Spanned<String>>,
    pub rate_limit: Option<Spanned<String>>,
    pub max_in_flight: Option<Spanned<i64>>,
    #[serde(default)]
    pub route: Vec<Spanned<Route>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub method: Spanned<String>,
    pub path: Spanned<String>,
    #[serde(default)]
    pub query: Vec<Spanned<String>>,
    #[serde(default)]
    pub subjects: Vec<Spanned<String>>,
    #[serde(default)]
    pub subjects_optional: bool,
    /// The most elements an array answer may hold; a longer one is refused (400) so that the
    /// recipient pages with the route's query parameters.
    pub max_items: Option<Spanned<i64>>,
    #[serde(default)]
    pub allow: Vec<Spanned<String>>,
    #[serde(default)]
    pub when: Vec<Spanned<When>>,
    #[serde(default)]
    pub items: Vec<Spanned<Items>>,
    #[serde(default)]
    pub derive: Vec<Spanned<Derive>>,
    pub refuse: Option<Spanned<Refuse>>,
    #[serde(default)]
    pub lookup: Vec<Spanned<Lookup>>,
    #[serde(default)]
    pub scrub: Vec<Spanned<Scrub>>,
    #[serde(default)]
    pub bind: Vec<Spanned<Bind>>,
    /// On a POST, PUT or PATCH route: the request-body paths the recipient may send.
    pub accept: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub require: Vec<Spanned<Require>>,
}

/// A condition that must hold before a write is forwarded.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Require {
    pub condition: Spanned<String>,
    pub reason: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bind {
    /// `query.<name>` or `path.<name>`.
    pub param: Spanned<String>,
    /// CEL over `recipient`, giving the parameter's string value.
    pub value: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // parsed so that a rule using it is refused, not ignored
pub struct When {
    pub condition: Spanned<String>,
    pub reason: Spanned<String>,
    #[serde(default)]
    pub allow: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // parsed so that a rule using it is refused, not ignored
pub struct Items {
    pub path: Spanned<String>,
    pub keep: Spanned<String>,
    /// Which entries are kept, in plain words, for the register and the audit.
    pub reason: Option<Spanned<String>>,
    #[serde(default)]
    pub keep_empty: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // parsed so that a rule using it is refused, not ignored
pub struct Derive {
    pub field: Spanned<String>,
    pub value: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // parsed so that a rule using it is refused, not ignored
pub struct Refuse {
    pub condition: Spanned<String>,
    pub reason: Spanned<String>,
    /// What the recipient is answered: 403 (the default) or 404, so that "not yours" looks
    /// like "does not exist".
    pub status: Option<Spanned<i64>>,
}

/// A second upstream record the rules read as `lookup.<name>`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lookup {
    pub name: Spanned<String>,
    /// A path whose `{CEL}` placeholders are each filled in as one segment.
    pub path: Spanned<String>,
    /// Query parameter name -> CEL expression giving its value.
    #[serde(default)]
    pub query: std::collections::BTreeMap<String, Spanned<String>>,
}

/// Free text in allowed string fields, cleared of the named kinds of personal data.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scrub {
    pub paths: Spanned<Vec<Spanned<String>>>,
    pub patterns: Spanned<Vec<Spanned<String>>>,
}
