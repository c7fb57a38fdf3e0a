//! The register as one self-contained HTML page: inline CSS, no scripts, no external
//! assets, so it can be mailed, archived and printed as it is. Everything from the rules is
//! escaped: a reason or a comment is text, never markup.

use std::fmt::Write as _;

use super::{
    binding_words, lawful_basis_words, lookup_words, special_text, Citation, Cited, Disclosure,
    Register, RouteEntry, Row, TypeEntry, SAFEGUARDS,
};

/// The style sheet: readable on screen, and on paper one recipient type per page.
const STYLE: &str = r#"
:root { --ink: #1b1b1b; --muted: #5a5a5a; --rule: #c9c9c9; --band: #f3f3f1;
  --always: #1d6b3a; --condition: #8a5a00; --derived: #1f4e8c; --row_filter: #5b3a8c; --refused: #a31d1d; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0 auto; max-width: 64rem; padding: 2rem 2.5rem 4rem; color: var(--ink);
  font: 16px/1.5 "Segoe UI", "Helvetica Neue", Arial, "Liberation Sans", sans-serif; }
h1 { font-size: 2rem; margin: 0 0 .25rem; }
h2 { font-size: 1.5rem; margin: 0 0 .75rem; padding-bottom: .3rem; border-bottom: 3px solid var(--ink); }
h3 { font-size: 1.15rem; margin: 2rem 0 .5rem; }
h4 { font-size: 1rem; margin: 1.25rem 0 .4rem; }
p { margin: .4rem 0; }
code, .path, .cel, .doc, .where { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; }
.lead { font-size: 1.1rem; color: var(--muted); margin-bottom: 1rem; }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: 1rem 0;
  padding: .75rem 1rem; background: var(--band); border-left: 4px solid var(--ink); }
.meta dt { font-weight: 600; }
.meta dd { margin: 0; overflow-wrap: anywhere; }
.hash { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .85rem; }
.key { margin: 1rem 0 2rem; }
.key li { margin: .2rem 0; }
nav ol { padding-left: 1.5rem; }
nav li { margin: .3rem 0; }
nav .purpose { color: var(--muted); }
a { color: #1f4e8c; }
section.type, section.index { margin-top: 3rem; }
.facts { display: grid; grid-template-columns: 11rem 1fr; gap: .6rem 1rem; margin: 0 0 1rem; }
.facts dt { font-weight: 600; }
.facts dd { margin: 0; }
.cite { display: block; font-size: .85rem; color: var(--muted); margin-top: .15rem; }
.doc { font-size: .75rem; color: var(--muted); background: var(--band); padding: 0 .25rem;
  border-radius: 3px; white-space: nowrap; }
.where { display: block; font-size: .75rem; color: var(--muted); margin-top: .3rem; }
table { width: 100%; border-collapse: collapse; margin: .5rem 0 1rem; font-size: .92rem; }
th, td { text-align: left; vertical-align: top; padding: .45rem .6rem; border-bottom: 1px solid var(--rule); }
thead th { background: var(--ink); color: #fff; font-weight: 600; }
table.fields th:nth-child(1) { width: 24%; }
table.fields th:nth-child(2) { width: 36%; }
tbody tr:nth-child(even) td { background: #fafaf8; }
.words { font-weight: 600; }
.path { display: block; font-size: .78rem; color: var(--muted); overflow-wrap: break-word; }
td.source { background: #fff !important; border-left: 1px solid var(--rule); }
.cel { display: block; font-size: .78rem; color: var(--muted); margin-top: .25rem;
  white-space: pre-wrap; overflow-wrap: anywhere; }
.kind { font-weight: 700; }
tr.always td:first-child { border-left: 5px solid var(--always); }
tr.condition td:first-child { border-left: 5px solid var(--condition); }
tr.derived td:first-child { border-left: 5px solid var(--derived); }
tr.row_filter td:first-child { border-left: 5px solid var(--row_filter); }
tr.refused td:first-child { border-left: 5px solid var(--refused); }
tr.always .kind { color: var(--always); }
tr.condition .kind { color: var(--condition); }
tr.derived .kind { color: var(--derived); }
tr.row_filter .kind { color: var(--row_filter); }
tr.refused .kind { color: var(--refused); }
.route-facts { margin: 0 0 .5rem; padding: 0; list-style: none; color: var(--muted); font-size: .92rem; }
.withheld { font-size: .9rem; color: var(--muted); font-style: italic; }
.special { display: inline-block; font-size: .72rem; font-weight: 700; color: #fff; background: var(--refused);
  padding: 0 .3rem; border-radius: 3px; margin: .15rem 0; }
.note { padding: .5rem 1rem; border-left: 4px solid var(--refused); background: #fbeaea; }
table.matrix { font-size: .8rem; table-layout: fixed; width: 100%; }
table.matrix td { overflow-wrap: anywhere; }
table.matrix td, table.matrix th { padding: .3rem .35rem; }
table.matrix th:first-child { width: 16%; }
.acc { margin: 0 0 .3rem; }
.acc .kind { font-weight: 700; }
.acc.always .kind { color: var(--always); }
.acc.condition .kind { color: var(--condition); }
.acc.derived .kind { color: var(--derived); }
.via, .limit { display: block; color: var(--muted); font-size: .72rem; }
.none { color: var(--rule); }
footer { margin-top: 3rem; padding-top: .5rem; border-top: 1px solid var(--rule); color: var(--muted); font-size: .85rem; }
@media print {
  @page { size: A4; margin: 14mm 12mm;
    @bottom-right { content: "Page " counter(page) " of " counter(pages); font-size: 8pt; color: #5a5a5a; } }
  /* The matrix has a column per recipient type: a landscape page of its own keeps them all. */
  @page wide { size: A4 landscape; }
  section#matrix { page: wide; break-before: page; }
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  a { color: inherit; text-decoration: none; }
  section.type, section#special { break-before: page; page-break-before: always; margin-top: 0; }
  h2, h3, h4 { break-after: avoid; page-break-after: avoid; }
  tr, .facts, .meta { break-inside: avoid; page-break-inside: avoid; }
  thead { display: table-header-group; }
  thead th { background: #e6e6e6; color: var(--ink); }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"#;

/// The whole page.
pub fn render(register: &Register) -> String {
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en-GB\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(
        out,
        "<title>Disclosure register, {}</title>",
        escape(&register.date())
    );
    let _ = writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>");
    header(&mut out, register);
    contents(&mut out, register);
    for kind in &register.types {
        type_section(&mut out, kind);
    }
    // Across all types, after them: the tables above are the record, these its index.
    special_section(&mut out, register);
    matrix_section(&mut out, register);
    notices_section(&mut out, register);
    let _ = writeln!(
        out,
        "<footer>Made by <code>need-to-know register</code> from the rules in force \
         (generation <span class=\"hash\">{}</span>). Any field not listed for a route is \
         withheld from the recipient.</footer>",
        escape(&register.generation)
    );
    out.push_str("</body>\n</html>\n");
    out
}

fn header(out: &mut String, register: &Register) {
    out.push_str("<header>\n<h1>Disclosure register</h1>\n");
    out.push_str(
        "<p class=\"lead\">Who receives tenants' personal data through the gateway, why, on \
         what lawful basis, and exactly which fields (UK GDPR Art. 30 record of processing: \
         recipients).</p>\n",
    );
    let _ = writeln!(
        out,
        "<dl class=\"meta\"><dt>Generated</dt><dd>{}</dd>\
         <dt>Rules generation</dt><dd><span class=\"hash\">{}</span></dd>\
         <dt>Recipient types</dt><dd>{}</dd></dl>",
        escape(&register.date()),
        escape(&register.generation),
        register.types.len()
    );
    controller(out, register);
    out.push_str("<h4>Safeguards the gateway applies to every recipient</h4>\n<ul>\n");
    for safeguard in SAFEGUARDS {
        let _ = writeln!(out, "<li>{}</li>", escape(safeguard));
    }
    out.push_str("</ul>\n");
    out.push_str(
        "<div class=\"key\"><h4>How to read the tables</h4><ul>\
         <li><span class=\"kind\" style=\"color:#a31d1d\">Refused when</span>: nothing at all is sent while the condition holds.</li>\
         <li><span class=\"kind\" style=\"color:#5b3a8c\">Row filter</span>: only the entries of a list that meet the condition are sent.</li>\
         <li><span class=\"kind\" style=\"color:#1d6b3a\">Always</span>: sent with every response to this route.</li>\
         <li><span class=\"kind\" style=\"color:#8a5a00\">Only when</span>: sent only while the stated condition holds.</li>\
         <li><span class=\"kind\" style=\"color:#1f4e8c\">Derived</span>: a value computed by the gateway and sent in place of the data it comes from.</li>\
         <li><span class=\"special\">Special category</span>: the field may hold special \
         category data (UK GDPR Art. 9), criminal offence data (Art. 10) or data handled with \
         the same care.</li>\
         <li>Anything not listed is withheld. The <em>Source</em> column quotes the privacy \
         notice each rule rests on; the small grey text is the rule itself, as the gateway \
         enforces it.</li></ul></div>\n</header>\n",
    );
}

/// The controller and retention from the config, or a note that they are not configured.
fn controller(out: &mut String, register: &Register) {
    let Some(c) = &register.controller else {
        out.push_str(
            "<p class=\"note\"><strong>The controller is not configured.</strong> Add a \
             <code>[controller]</code> section (name, contact, dpo_contact, retention) to the \
             config so that this record names who is answerable for the data.</p>\n",
        );
        return;
    };
    let _ = writeln!(
        out,
        "<h4>Controller</h4>\n<dl class=\"meta controller\"><dt>Controller</dt><dd>{}</dd>\
         <dt>Contact</dt><dd>{}</dd><dt>Data Protection Officer</dt><dd>{}</dd>\
         <dt>Retention</dt><dd>{}</dd></dl>",
        escape(&c.name),
        escape(&c.contact),
        escape(&c.dpo_contact),
        escape(&c.retention)
    );
}

/// The fields that may hold special category data, and who receives them.
fn special_section(out: &mut String, register: &Register) {
    out.push_str(
        "<section class=\"index\" id=\"special\">\n<h2>Special category data disclosed</h2>\n",
    );
    let mut any = false;
    for (row, receivers) in register.special_fields() {
        if !any {
            out.push_str("<ul>\n");
            any = true;
        }
        let names: Vec<String> = receivers.iter().map(|k| escape(&k.title())).collect();
        let _ = writeln!(
            out,
            "<li><span class=\"words\">{}</span> <span class=\"special\">{}</span>: {}</li>",
            escape(&row.words),
            escape(&special_text(&row.special)),
            names.join(", ")
        );
    }
    if any {
        out.push_str("</ul>\n");
    } else {
        out.push_str("<p>No disclosed field is marked special in the glossary.</p>\n");
    }
    out.push_str("</section>\n");
}

/// Every disclosed field against every recipient type.
fn matrix_section(out: &mut String, register: &Register) {
    out.push_str(
        "<section class=\"index\" id=\"matrix\">\n<h2>Who can see each field</h2>\n\
         <p>Each disclosed field, each recipient type that can see it, by which route and \
         when. A blank cell: that type never receives the field.</p>\n\
         <table class=\"matrix\">\n<thead><tr><th>Field</th>",
    );
    for kind in &register.types {
        let _ = write!(out, "<th>{}</th>", escape(&kind.title()));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &register.matrix {
        let paths: Vec<String> = row.paths.iter().map(|p| breakable_path(p)).collect();
        let special = if row.special.is_empty() {
            String::new()
        } else {
            format!(
                "<br><span class=\"special\">{}</span>",
                escape(&special_text(&row.special))
            )
        };
        let _ = write!(
            out,
            "<tr><td><span class=\"words\">{}</span>{special}<span class=\"path\">{}</span></td>",
            escape(&row.words),
            paths.join(", ")
        );
        for cell in &row.cells {
            out.push_str("<td>");
            if cell.is_empty() {
                out.push_str("<span class=\"none\">&mdash;</span>");
            }
            for access in cell {
                let limits: String = access
                    .limits
                    .iter()
                    .map(|l| format!("<span class=\"limit\">{}</span>", escape(l)))
                    .collect();
                let _ = write!(
                    out,
                    "<div class=\"acc {}\"><span class=\"kind\">{}</span><span class=\"via\">{}</span>{limits}</div>",
                    access.kind,
                    escape(&access.how),
                    escape(&access.route)
                );
            }
            out.push_str("</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

/// The privacy notices the rules cite.
fn notices_section(out: &mut String, register: &Register) {
    out.push_str("<section class=\"index\" id=\"notices\">\n<h2>Privacy notices cited</h2>\n");
    if register.notices.is_empty() {
        out.push_str(
            "<p>No notices are listed in <code>rules/notices.toml</code>: citations show the \
             ids the rules use.</p>\n</section>\n",
        );
        return;
    }
    out.push_str("<ul>\n");
    for notice in &register.notices {
        let version = notice.version.as_deref().unwrap_or("version not recorded");
        let _ = writeln!(
            out,
            "<li><span class=\"words\">{}</span> ({}), <span class=\"path\">{}</span></li>",
            escape(&notice.title),
            escape(version),
            escape(&notice.url)
        );
    }
    out.push_str("</ul>\n</section>\n");
}

fn contents(out: &mut String, register: &Register) {
    out.push_str("<nav aria-label=\"Contents\">\n<h2>Contents</h2>\n<ol>\n");
    for kind in &register.types {
        let count = kind.recipients.len();
        let _ = writeln!(
            out,
            "<li><a href=\"#{}\">{}</a>: {count} recipient{}, {} route{}<br><span class=\"purpose\">{}</span></li>",
            anchor(&kind.name),
            escape(&kind.title()),
            plural(count),
            kind.routes.len(),
            plural(kind.routes.len()),
            escape(&kind.purpose)
        );
    }
    out.push_str(
        "<li><a href=\"#special\">Special category data disclosed</a></li>\n\
         <li><a href=\"#matrix\">Who can see each field</a></li>\n\
         <li><a href=\"#notices\">Privacy notices cited</a></li>\n",
    );
    out.push_str("</ol>\n</nav>\n");
}

fn type_section(out: &mut String, kind: &TypeEntry) {
    let _ = writeln!(
        out,
        "<section class=\"type\" id=\"{}\">\n<h2>{} <code class=\"type-id\" style=\"font-size:.9rem;font-weight:400\">{}</code></h2>",
        anchor(&kind.name),
        escape(&kind.title()),
        escape(&kind.name)
    );
    out.push_str("<dl class=\"facts\">\n");
    let _ = writeln!(
        out,
        "<dt>Purpose</dt><dd>{}{}</dd>",
        escape(&kind.purpose),
        cite(&kind.purpose_citation)
    );
    let _ = writeln!(
        out,
        "<dt>Lawful basis</dt><dd>{}{}</dd>",
        escape(lawful_basis_words(kind.lawful_basis)),
        cite(&kind.lawful_basis_citation)
    );
    let _ = writeln!(
        out,
        "<dt>Data subjects</dt><dd>{}</dd>",
        escape(&kind.data_subjects_text())
    );
    let _ = writeln!(
        out,
        "<dt>Rate limit</dt><dd>{}</dd>",
        escape(&kind.rate_text())
    );
    out.push_str("</dl>\n<h3>Recipients</h3>\n");
    if kind.recipients.is_empty() {
        out.push_str("<p>No recipient of this type is configured.</p>\n");
    } else {
        out.push_str(
            "<table class=\"recipients\">\n<thead><tr><th>Organisation</th><th>Id</th>\
             <th>Identified by</th><th>Rate limit</th><th>Attributes</th></tr></thead>\n<tbody>\n",
        );
        for r in &kind.recipients {
            let rate = kind.recipient_rate_text(r);
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&r.name),
                escape(&r.id),
                escape(&r.identity.join(", ")),
                escape(&rate),
                escape(&r.attributes_text())
            );
        }
        out.push_str("</tbody>\n</table>\n");
    }
    for route in &kind.routes {
        route_section(out, route);
    }
    out.push_str("</section>\n");
}

fn route_section(out: &mut String, route: &RouteEntry) {
    let _ = writeln!(
        out,
        "<h3><code>{} {}</code></h3>",
        escape(&route.method),
        escape(&route.template)
    );
    if !route.note.is_empty() {
        let _ = writeln!(out, "<p>{}</p>", citation_html(&route.note));
    }
    let query = if route.query.is_empty() {
        "none".to_owned()
    } else {
        route
            .query
            .iter()
            .map(|q| format!("<code>{}</code>", escape(q)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let subjects = if route.subjects.is_empty() {
        "not recorded".to_owned()
    } else {
        route
            .subjects
            .iter()
            .map(|s| format!("<code>{}</code>", escape(s)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let bind: String = route
        .bind
        .iter()
        .map(|(param, value)| {
            format!(
                "<li>Set by the gateway for each recipient: {}<span class=\"cel\">{} = {}</span></li>",
                escape(&binding_words(param, value)),
                escape(param),
                escape(value)
            )
        })
        .collect();
    let lookups: String = route
        .lookups
        .iter()
        .map(|(name, template)| format!("<li>Also {}</li>", escape(&lookup_words(name, template))))
        .collect();
    let _ = writeln!(
        out,
        "<ul class=\"route-facts\"><li>Query parameters allowed: {query}</li>{bind}{lookups}\
         <li>Data subjects recorded in the audit by: {subjects}</li></ul>"
    );
    out.push_str(
        "<table class=\"fields\">\n<thead><tr><th>Field</th><th>Disclosed</th><th>Source</th></tr></thead>\n<tbody>\n",
    );
    // Entries written under one comment share one Source cell: the quote is read once, and
    // the fields it covers are seen together.
    let mut i = 0;
    while i < route.rows.len() {
        let row = &route.rows[i];
        let span = route.rows[i..]
            .iter()
            .take_while(|r| r.citation == row.citation && r.line == row.line)
            .count();
        for (k, r) in route.rows[i..i + span].iter().enumerate() {
            field_row(out, r, (k == 0).then_some(span));
        }
        i += span;
    }
    out.push_str("</tbody>\n</table>\n");
    out.push_str("<p class=\"withheld\">Every other field of the response is withheld.</p>\n");
}

/// One field's row; `source_rows` is how many rows its Source cell spans (`None`: the cell
/// of a row above covers it).
fn field_row(out: &mut String, row: &Row, source_rows: Option<usize>) {
    let path = if row.field.is_empty() {
        String::new()
    } else {
        format!("<span class=\"path\">{}</span>", breakable_path(&row.field))
    };
    let special = if row.special.is_empty() {
        String::new()
    } else {
        format!(
            "<br><span class=\"special\">Special category: {}</span>",
            escape(&row.special_text())
        )
    };
    let (label, rest) = match &row.disclosure {
        Disclosure::Always => ("Always", String::new()),
        Disclosure::Condition { reason, .. } => ("Only when:", reason.clone()),
        Disclosure::Derived { what, .. } => ("Derived:", what.clone()),
        Disclosure::RowFilter { reason, .. } => (
            "Row filter:",
            reason
                .clone()
                .unwrap_or_else(|| "only the entries meeting this condition are sent".to_owned()),
        ),
        Disclosure::Refused { reason, .. } => ("Refused when:", reason.clone()),
    };
    let rule = row
        .disclosure
        .expression()
        .map(|e| format!("<span class=\"cel\">{}</span>", escape(e)))
        .unwrap_or_default();
    let source = match source_rows {
        None => String::new(),
        Some(rows) => {
            let citation = if row.citation.is_empty() {
                "<em>no citation in the rules file</em>".to_owned()
            } else {
                citation_html(&row.citation)
            };
            let rowspan = if rows > 1 {
                format!(" rowspan=\"{rows}\"")
            } else {
                String::new()
            };
            format!(
                "<td class=\"source\"{rowspan}>{citation}<span class=\"where\">{}, line {}</span></td>",
                escape(&row.file),
                row.line
            )
        }
    };
    let _ = writeln!(
        out,
        "<tr class=\"{}\"><td><span class=\"words\">{}</span>{special}{path}</td>\
         <td><span class=\"kind\">{label}</span> {}{rule}</td>{source}</tr>",
        row.disclosure.kind(),
        escape(&row.words),
        escape(&rest),
    );
}

/// A path escaped, with a break opportunity after each `.` and `[]`, so a long path wraps
/// between its keys rather than inside one.
fn breakable_path(path: &str) -> String {
    escape(path).replace('.', ".<wbr>").replace("[]", "[]<wbr>")
}

/// A citation under a fact, or nothing when there is none.
fn cite(citation: &Citation) -> String {
    if citation.is_empty() {
        return String::new();
    }
    format!("<span class=\"cite\">{}</span>", citation_html(citation))
}

/// The citation with the notices' titles set apart from the quoted text.
fn citation_html(citation: &Citation) -> String {
    citation
        .parts
        .iter()
        .map(|part| match part {
            Cited::Notice(title) => format!("<span class=\"doc\">{}</span>", escape(title)),
            Cited::Text(text) => escape(text),
        })
        .collect()
}

/// Text made safe for element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An element id from a type name: letters, digits, `-` and `_` kept, anything else `-`.
fn anchor(name: &str) -> String {
    let id: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("type-{id}")
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }

    #[test]
    fn anchors_are_plain() {
        assert_eq!(anchor("repairs-contractor"), "type-repairs-contractor");
        assert_eq!(anchor("a b\"c"), "type-a-b-c");
    }
}
