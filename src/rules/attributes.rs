//! `[recipient.attributes]`: strings `recipients.toml` says of a recipient for the rules to
//! read (`recipient.attributes.contractor_code`), and the check that every recipient of a
//! type has each attribute its routes' rules read by name.
//!
//! A missing attribute is an evaluation error at request time, which never grants; the
//! check makes it a load error instead, so a DPO learns of the gap from `check`, not from a
//! contractor who suddenly sees less (or, for a binding, is refused outright).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use toml::Spanned;

use super::site::Source;
use super::{Loader, Recipient};
use crate::filter::cel::Expr;

/// A rule that reads `recipient.attributes.<name>`, noted while its type file loads.
pub(super) struct AttributeRead {
    /// The type file, which is also where every recipient of the type finds its type.
    file: Arc<Path>,
    line: usize,
    name: String,
}

impl Loader {
    /// Notes each attribute `expr`, written at `line` of `source`, reads by name.
    pub(super) fn note_attribute_reads(&mut self, source: &Source, line: usize, expr: &Expr) {
        let reads = expr.reads("recipient");
        for name in reads.selected_under("attributes") {
            self.attribute_reads.push(AttributeRead {
                file: Arc::clone(&source.path),
                line,
                name: name.to_owned(),
            });
        }
    }

    /// One recipient's attributes. A name must be a CEL identifier, or no rule could select
    /// it; a value that is not a string is refused by the parser already, at its line.
    pub(super) fn attributes(
        &mut self,
        source: &Source,
        raw: &BTreeMap<String, Spanned<String>>,
        ok: &mut bool,
    ) -> BTreeMap<String, String> {
        let mut attributes = BTreeMap::new();
        for (name, value) in raw {
            let mut bytes = name.bytes();
            let identifier = bytes
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !identifier {
                self.error(
                    &source.path,
                    source.line(value),
                    format!("attribute name {name:?} may hold only letters, digits and '_', and not start with a digit"),
                );
                *ok = false;
                continue;
            }
            attributes.insert(name.clone(), value.get_ref().clone());
        }
        attributes
    }

    /// An error at every rule that reads an attribute some recipient of its type lacks.
    pub(super) fn check_attribute_reads(&mut self, recipients: &[Arc<Recipient>]) {
        for read in std::mem::take(&mut self.attribute_reads) {
            let lacking: Vec<&str> = recipients
                .iter()
                .filter(|r| *r.kind.purpose_site.file == *read.file)
                .filter(|r| !r.attributes.contains_key(&read.name))
                .map(|r| r.id.as_str())
                .collect();
            if lacking.is_empty() {
                continue;
            }
            self.error(
                &read.file,
                read.line,
                format!(
                    "reads recipient.attributes.{}, which recipient(s) {} of this type lack: set it in recipients.toml, or the rule errs (and never grants) for them",
                    read.name,
                    lacking
                        .iter()
                        .map(|id| format!("{id:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a failed unwrap is a failed test
    use super::super::tests::{write_rules, RECIPIENT, TYPE};
    use super::super::Policy;

    /// Every error of loading `type_text` and `recipients`, as `check` prints them.
    fn problems(type_text: &str, recipients: &str) -> Vec<String> {
        let dir = write_rules(type_text, recipients);
        match Policy::load(dir.path()) {
            Ok(_) => Vec::new(),
            Err(e) => {
                e.0.iter()
                    .filter(|d| d.is_error())
                    .map(ToString::to_string)
                    .collect()
            }
        }
    }

    #[test]
    fn attributes_load_as_strings() {
        let dir = write_rules(
            TYPE,
            &format!("{RECIPIENT}[recipient.attributes]\ncontractor_code = \"KBS\"\n"),
        );
        let policy = Policy::load(dir.path()).unwrap();
        let acme = policy.recipient("acme").unwrap();
        assert_eq!(acme.attributes["contractor_code"], "KBS");
        assert_eq!(acme.caller().attributes["contractor_code"], "KBS");
    }

    #[test]
    fn a_value_that_is_not_a_string_or_a_bad_name_is_an_error_at_its_line() {
        // RECIPIENT is five lines; the table is line 6, the first attribute line 7.
        let got = problems(
            TYPE,
            &format!("{RECIPIENT}[recipient.attributes]\ncontractor_code = 3\n"),
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].contains("recipients.toml:7:"), "{got:?}");
        let got = problems(
            TYPE,
            &format!("{RECIPIENT}[recipient.attributes]\nok = \"a\"\n\"2-x\" = \"b\"\n"),
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].contains("recipients.toml:8: attribute name \"2-x\""),
            "{got:?}"
        );
    }

    #[test]
    fn check_reports_a_rule_reading_an_attribute_a_recipient_of_its_type_lacks() {
        let rules = format!(
            "{TYPE}\n[[route.when]]\ncondition = \"recipient.attributes.region == 'north'\"\nreason = \"r\"\nallow = [\"x\"]\n\n\
             [[route.derive]]\nfield = \"code\"\nvalue = \"has(recipient.attributes.code) ? recipient.attributes.code : ''\"\n"
        );
        // TYPE is nine lines; the condition is on line 12, the derived value on line 18.
        let got = problems(&rules, RECIPIENT);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            got[0].contains("repairs.toml:12: reads recipient.attributes.region, which recipient(s) \"acme\" of this type lack"),
            "{got:?}"
        );
        assert!(
            got[1].contains("repairs.toml:18: reads recipient.attributes.code"),
            "{got:?}"
        );
        let every =
            format!("{RECIPIENT}[recipient.attributes]\nregion = \"north\"\ncode = \"A\"\n");
        assert_eq!(problems(&rules, &every), Vec::<String>::new());
    }
}
