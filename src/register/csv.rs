//! The register as CSV, one row per (type, route, field or rule), for a spreadsheet or
//! another system's import: `citation` is the comment as written, `notice` the titles of the
//! notices it cites, `special_category` the glossary's categories (space-separated). Quoting follows RFC 4180: a field holding a comma, a quote or a
//! line break is quoted, and quotes inside are doubled.

use super::Register;

/// The header row; the contract of this format.
pub const COLUMNS: &[&str] = &[
    "type",
    "recipient_ids",
    "purpose",
    "lawful_basis",
    "method",
    "route",
    "field",
    "field_words",
    "disclosure",
    "condition_or_reason",
    "citation",
    "notice",
    "special_category",
];

pub fn render(register: &Register) -> String {
    let mut out = String::new();
    line(&mut out, COLUMNS.iter().copied());
    for kind in &register.types {
        let ids = kind.recipient_ids().join(" ");
        for route in &kind.routes {
            for row in &route.rows {
                let reason = row.disclosure.condition_or_reason();
                let notices = row.citation.notices().join("; ");
                let special: Vec<&str> = row.special.iter().map(|s| s.as_str()).collect();
                let special = special.join(" ");
                line(
                    &mut out,
                    [
                        kind.name.as_str(),
                        ids.as_str(),
                        kind.purpose.as_str(),
                        kind.lawful_basis.as_str(),
                        route.method.as_str(),
                        route.template.as_str(),
                        row.field.as_str(),
                        row.words.as_str(),
                        row.disclosure.kind(),
                        reason.as_str(),
                        row.citation.raw.as_str(),
                        notices.as_str(),
                        special.as_str(),
                    ],
                );
            }
        }
    }
    out
}

/// One record, ended by CRLF as RFC 4180 has it.
fn line<'a>(out: &mut String, fields: impl IntoIterator<Item = &'a str>) {
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&quote(field));
    }
    out.push_str("\r\n");
}

fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("a, b"), "\"a, b\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote("two\nlines"), "\"two\nlines\"");
    }
}
