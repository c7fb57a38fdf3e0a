//! The register as Markdown, for a wiki or a pull request: the same sections and tables as
//! the HTML page. Cell text is escaped so a `|` in a reason cannot split a table row and a
//! `<` cannot become markup where the Markdown is rendered.

use std::fmt::Write as _;

use super::{
    binding_words, lawful_basis_words, lookup_words, special_text, RecipientEntry, Register,
    RouteEntry, TypeEntry, SAFEGUARDS,
};

pub fn render(register: &Register) -> String {
    let mut out = String::new();
    out.push_str("# Disclosure register\n\n");
    out.push_str(
        "Who receives tenants' personal data through the gateway, why, on what lawful basis, \
         and exactly which fields (UK GDPR Art. 30 record of processing: recipients). Any \
         field not listed for a route is withheld.\n\n",
    );
    let _ = writeln!(out, "- Generated: {}", text(&register.date()));
    let _ = writeln!(
        out,
        "- Rules generation: `{}`\n",
        code(&register.generation)
    );
    controller(&mut out, register);
    out.push_str("## Contents\n\n");
    for (i, kind) in register.types.iter().enumerate() {
        let _ = writeln!(
            out,
            "{}. [{}](#{}): {}",
            i + 1,
            text(&kind.title()),
            slug(&kind.title()),
            text(&kind.purpose)
        );
    }
    out.push('\n');
    for kind in &register.types {
        type_section(&mut out, kind);
    }
    index(&mut out, register);
    out
}

/// The controller and the safeguards: what the record says before each recipient type.
fn controller(out: &mut String, register: &Register) {
    out.push_str("## Controller\n\n");
    match &register.controller {
        Some(c) => {
            let _ = writeln!(out, "- **Controller:** {}", text(&c.name));
            let _ = writeln!(out, "- **Contact:** {}", text(&c.contact));
            let _ = writeln!(
                out,
                "- **Data Protection Officer:** {}",
                text(&c.dpo_contact)
            );
            let _ = writeln!(out, "- **Retention:** {}\n", text(&c.retention));
        }
        None => out.push_str(
            "**The controller is not configured.** Add a `[controller]` section (name, \
             contact, dpo\\_contact, retention) to the config.\n\n",
        ),
    }
    out.push_str("## Safeguards the gateway applies to every recipient\n\n");
    for safeguard in SAFEGUARDS {
        let _ = writeln!(out, "- {}", text(safeguard));
    }
    out.push('\n');
}

/// Across all types, after them: the special category fields, the field matrix, the notices.
fn index(out: &mut String, register: &Register) {
    out.push_str("## Special category data disclosed\n\n");
    let mut any = false;
    for (row, receivers) in register.special_fields() {
        any = true;
        let names: Vec<String> = receivers.iter().map(|k| text(&k.title())).collect();
        let _ = writeln!(
            out,
            "- **{}** (special category: {}): {}",
            text(&row.words),
            text(&special_text(&row.special)),
            names.join(", ")
        );
    }
    if !any {
        out.push_str("No disclosed field is marked special in the glossary.\n");
    }
    out.push_str("\n## Who can see each field\n\n");
    for row in &register.matrix {
        let paths: Vec<String> = row.paths.iter().map(|p| format!("`{}`", code(p))).collect();
        let special = if row.special.is_empty() {
            String::new()
        } else {
            format!(" (special category: {})", text(&special_text(&row.special)))
        };
        let _ = writeln!(
            out,
            "- **{}**{special} {}",
            text(&row.words),
            paths.join(", ")
        );
        for (kind, cell) in register.types.iter().zip(&row.cells) {
            for access in cell {
                let _ = writeln!(out, "  - {}: {}", text(&kind.title()), text(&access.text()));
            }
        }
    }
    out.push_str("\n## Privacy notices cited\n\n");
    if register.notices.is_empty() {
        out.push_str(
            "No notices are listed in rules/notices.toml: citations show the ids the rules use.\n",
        );
    }
    for notice in &register.notices {
        let version = notice.version.as_deref().unwrap_or("version not recorded");
        let _ = writeln!(
            out,
            "- {} ({}), <{}>",
            text(&notice.title),
            text(version),
            notice.url.replace(['<', '>', ' '], "")
        );
    }
    out.push('\n');
}

fn type_section(out: &mut String, kind: &TypeEntry) {
    let _ = writeln!(out, "## {}\n", text(&kind.title()));
    let _ = writeln!(out, "Type: `{}`\n", code(&kind.name));
    let _ = writeln!(out, "- **Purpose:** {}", text(&kind.purpose));
    if !kind.purpose_citation.is_empty() {
        let _ = writeln!(out, "  - Source: {}", text(&kind.purpose_citation.text()));
    }
    let _ = writeln!(
        out,
        "- **Lawful basis:** {}",
        text(lawful_basis_words(kind.lawful_basis))
    );
    if !kind.lawful_basis_citation.is_empty() {
        let _ = writeln!(
            out,
            "  - Source: {}",
            text(&kind.lawful_basis_citation.text())
        );
    }
    let _ = writeln!(
        out,
        "- **Data subjects:** {}",
        text(&kind.data_subjects_text())
    );
    let _ = writeln!(out, "- **Rate limit:** {}\n", text(&kind.rate_text()));
    out.push_str("### Recipients\n\n");
    if kind.recipients.is_empty() {
        out.push_str("No recipient of this type is configured.\n\n");
    } else {
        out.push_str(
            "| Organisation | Id | Identified by | Rate limit | Attributes |\n|---|---|---|---|---|\n",
        );
        for r in &kind.recipients {
            let rate = kind.recipient_rate_text(r);
            let _ = writeln!(
                out,
                "| {} | `{}` | {} | {} | {} |",
                cell(&r.name),
                code(&r.id),
                cell(&r.identity.join(", ")),
                cell(&rate),
                attributes(r)
            );
        }
        out.push('\n');
    }
    for route in &kind.routes {
        route_section(out, route);
    }
}

/// A recipient's attributes, each as code (their names hold `_`), or `none`.
fn attributes(r: &RecipientEntry) -> String {
    if r.attributes.is_empty() {
        return "none".to_owned();
    }
    r.attributes
        .iter()
        .map(|(k, v)| format!("`{}`", code(&format!("{k} = {v}"))))
        .collect::<Vec<_>>()
        .join(", ")
}

fn route_section(out: &mut String, route: &RouteEntry) {
    let _ = writeln!(
        out,
        "### `{} {}`\n",
        code(&route.method),
        code(&route.template)
    );
    if !route.note.is_empty() {
        let _ = writeln!(out, "{}\n", text(&route.note.text()));
    }
    let list = |items: &[String], none: &str| {
        if items.is_empty() {
            none.to_owned()
        } else {
            items
                .iter()
                .map(|q| format!("`{}`", code(q)))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let _ = writeln!(
        out,
        "- Query parameters allowed: {}",
        list(&route.query, "none")
    );
    for (param, value) in &route.bind {
        let _ = writeln!(
            out,
            "- Set by the gateway for each recipient: {} (`{}` = `{}`)",
            text(&binding_words(param, value)),
            code(param),
            code(value)
        );
    }
    for (name, template) in &route.lookups {
        let _ = writeln!(out, "- Also {}", text(&lookup_words(name, template)));
    }
    let _ = writeln!(
        out,
        "- Data subjects recorded in the audit by: {}\n",
        list(&route.subjects, "not recorded")
    );
    out.push_str("| Field | Disclosed | Source |\n|---|---|---|\n");
    for row in &route.rows {
        let field = if row.field.is_empty() {
            cell(&row.words)
        } else if row.special.is_empty() {
            format!("{}<br>`{}`", cell(&row.words), code(&row.field))
        } else {
            format!(
                "{}<br>**Special category:** {}<br>`{}`",
                cell(&row.words),
                cell(&row.special_text()),
                code(&row.field)
            )
        };
        let rule = row
            .disclosure
            .expression()
            .map(|e| format!("<br>`{}`", code(e)))
            .unwrap_or_default();
        let source = if row.citation.is_empty() {
            "*no citation in the rules file*".to_owned()
        } else {
            cell(&row.citation.text())
        };
        let _ = writeln!(
            out,
            "| {field} | {}{rule} | {source} ({}, line {}) |",
            cell(&row.disclosure.summary()),
            cell(&row.file),
            row.line
        );
    }
    out.push_str("\nEvery other field of the response is withheld.\n\n");
}

/// Running text: what Markdown or HTML would otherwise interpret is escaped.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '|' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A table cell: running text, on one line.
fn cell(s: &str) -> String {
    text(s)
}

/// Inside backticks nothing is interpreted except the backtick itself and, in a table, `|`:
/// backticks become `'`, `|` is escaped, and the text stays on one line.
fn code(s: &str) -> String {
    s.replace('`', "'")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

/// The heading anchor most renderers make: lower case, spaces to `-`, punctuation dropped.
fn slug(title: &str) -> String {
    title
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_cannot_break_the_table() {
        assert_eq!(cell("a | b\nc"), "a \\| b c");
        assert_eq!(code("x || y"), "x \\|\\| y");
        assert_eq!(text("<b>"), "&lt;b&gt;");
    }
}
