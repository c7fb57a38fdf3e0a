//! `register`: the disclosure register of the shipped rules, in each format, names every
//! recipient type and every field those rules disclose, with the conditions, derivations and
//! refusals, and the HTML page is self-contained.

use std::path::Path;

use need_to_know::filter::cel::PseudonymKey;
use need_to_know::rules::{Policy, Secrets};

use crate::support::cli::{Cli, PSEUDONYM_KEY};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `need-to-know register --format FORMAT` in the repository, with the shipped config.
fn register(format: &str) -> String {
    Cli::new(["register", "--format", format])
        .in_repo()
        .pseudonym_key()
        .success()
        .stdout
}

fn shipped() -> Policy {
    let secrets = Secrets {
        pseudonym_key: Some(PseudonymKey::new(PSEUDONYM_KEY.as_bytes().to_vec()).expect("key")),
        pseudonym_key_env: None,
    };
    Policy::load_with(&root().join("rules"), &secrets).expect("shipped rules load")
}

/// Every path the shipped rules disclose: allow, `when` allow, derived fields.
fn disclosed_paths(policy: &Policy) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for kind in policy.types() {
        for route in &kind.routes {
            let paths = route
                .plan
                .allow()
                .iter()
                .chain(route.plan.conditions().when().iter().flat_map(|w| &w.allow))
                .chain(route.plan.conditions().derive().iter().map(|d| &d.field));
            for p in paths {
                out.push((kind.name.clone(), p.to_string()));
            }
        }
    }
    assert!(out.len() > 40, "the shipped rules disclose more than this");
    out
}

/// The same text as the HTML page shows it.
fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Every type and every disclosed path of the shipped rules appears in `text`; `show` is how
/// the format writes a path (escaped, with break opportunities, ...).
fn assert_names_everything(text: &str, show: impl Fn(&str) -> String, format: &str) {
    let policy = shipped();
    for kind in policy.types() {
        assert!(
            text.contains(&kind.name),
            "{format}: type {} missing",
            kind.name
        );
        for recipient in policy
            .recipients()
            .iter()
            .filter(|r| r.kind.name == kind.name)
        {
            assert!(
                text.contains(&recipient.id),
                "{format}: recipient {} missing",
                recipient.id
            );
        }
    }
    for (kind, path) in disclosed_paths(&policy) {
        assert!(
            text.contains(&show(&path)),
            "{format}: {kind} field {path} missing"
        );
    }
    for hash in policy.recipients().iter().filter_map(|r| r.api_key_sha256) {
        assert!(
            !text.contains(&hex(&hash)),
            "{format}: a key hash must never be in the register"
        );
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn html_names_every_type_field_condition_derivation_and_refusal() {
    let html = register("html");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<h1>Disclosure register</h1>"));
    // The generation hash covers the files' paths as loaded, so only its form is checked.
    let marker = "Rules generation</dt><dd><span class=\"hash\">";
    let at = html.find(marker).expect("the rules generation") + marker.len();
    let hash = html.get(at..at + 64).expect("a hash");
    assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{hash}");
    assert_names_everything(
        &html,
        |p| {
            html_escape(p)
                .replace('.', ".<wbr>")
                .replace("[]", "[]<wbr>")
        },
        "html",
    );
    // The conditional field with its reason and condition.
    let row = html
        .lines()
        .find(|l| l.contains("tenant.<wbr>caution_markers[]<wbr>.<wbr>instruction"))
        .expect("caution marker instruction row");
    assert!(row.contains("Only when:"), "{row}");
    assert!(
        row.contains("contractor assigned to an open job at this property"),
        "{row}"
    );
    assert!(
        row.contains("body.contractor_code == recipient.attributes.contractor_code"),
        "{row}"
    );
    // A derived field, a row filter, the research refusal.
    let row = html
        .lines()
        .find(|l| l.contains("[]<wbr>.<wbr>age_band"))
        .expect("age band row");
    assert!(row.contains("Derived:"), "{row}");
    assert!(row.contains("age_band(item.date_of_birth)"), "{row}");
    assert!(row.contains("date of birth"), "{row}");
    assert!(html.contains("Row filter:"));
    assert!(html
        .contains("Refused when:</span> the tenant has objected to research or withdrawn consent"));
    // Plain words: the lawful bases and the glossary.
    assert!(html.contains("Contract (UK GDPR Art. 6(1)(b))"));
    assert!(html.contains("Legal obligation (UK GDPR Art. 6(1)(c))"));
    assert!(html.contains("Legitimate interests (UK GDPR Art. 6(1)(f))"));
    assert!(html.contains("telephone number"));
    // Citations from the comments above the rules.
    assert!(html.contains("Caution indicators may be shared with contractors"));
    assert!(html.contains("Research data we receive is anonymised"));
    assert!(html
        .contains("necessary to meet the conditions set out in the contract/agreement with you"));
}

#[test]
fn html_is_self_contained_and_well_formed() {
    let html = register("html");
    // The only addresses are the notices', printed as text for a reader to follow.
    let notice_urls = [
        "https://www.example.org/privacy-notice/sharing-with-other-organisations",
        "https://www.example.org/privacy-notice/how-we-use-your-information",
    ];
    let mut rest = html.clone();
    for url in notice_urls {
        assert!(rest.contains(url), "{url}");
        rest = rest.replace(url, "");
    }
    assert!(
        !rest.contains("http://") && !rest.contains("https://"),
        "no external references"
    );
    assert!(
        !html.contains(" src=") && !html.contains("url(") && !html.contains("@import"),
        "no external assets"
    );
    assert!(
        !html.contains("<link") && !html.contains("<script"),
        "no stylesheet links or scripts"
    );
    assert!(html.contains("<style>") && html.contains("@media print"));
    for tag in [
        "html", "head", "body", "table", "thead", "tbody", "tr", "section", "dl", "ul", "ol",
    ] {
        let open =
            html.matches(&format!("<{tag}>")).count() + html.matches(&format!("<{tag} ")).count();
        let close = html.matches(&format!("</{tag}>")).count();
        assert_eq!(open, close, "<{tag}> opened {open} times, closed {close}");
    }
    assert!(
        html.matches("<table").count() >= 7 + 5,
        "a fields table per route, recipients per type"
    );
    assert!(html.trim_end().ends_with("</html>"));
}

#[test]
fn markdown_names_every_type_field_condition_derivation_and_refusal() {
    let md = register("md");
    assert!(md.starts_with("# Disclosure register\n"));
    assert_names_everything(&md, |p| format!("`{p}`"), "md");
    let row = md
        .lines()
        .find(|l| l.contains("`tenant.caution_markers[].instruction`"))
        .expect("caution marker instruction row");
    assert!(
        row.contains("Only when: contractor assigned to an open job at this property"),
        "{row}"
    );
    let row = md
        .lines()
        .find(|l| l.contains("`[].age_band`"))
        .expect("age band row");
    assert!(row.contains("Derived:"), "{row}");
    assert!(md.contains("Refused when: the tenant has objected to research or withdrawn consent"));
    // Every table row has as many cells as its header: no `|` from the rules split one. The
    // field tables have three columns, the recipients tables five (with their attributes).
    for line in md.lines().filter(|l| l.starts_with("| ")) {
        let cells = line.replace("\\|", "").matches('|').count();
        assert!(cells == 4 || cells == 6, "{line}");
    }
}

/// The fields of one CSV record; quoted fields may hold commas and doubled quotes.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        !quoted && field.is_empty() && record.is_empty(),
        "a torn record"
    );
    records
}

#[test]
fn csv_has_a_row_per_field_and_rule() {
    let csv = register("csv");
    let records = parse_csv(&csv);
    let header = &records[0];
    assert_eq!(
        header,
        &[
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
            "special_category"
        ]
    );
    for r in &records[1..] {
        assert_eq!(r.len(), header.len(), "{r:?}");
        assert!(
            ["always", "condition", "derived", "row_filter", "refused"].contains(&r[8].as_str()),
            "{r:?}"
        );
        assert!(
            !r[10].is_empty(),
            "every shipped rule cites the notice: {r:?}"
        );
    }
    let policy = shipped();
    for (kind, path) in disclosed_paths(&policy) {
        assert!(
            records[1..].iter().any(|r| r[0] == kind && r[6] == path),
            "csv: {kind} field {path} missing"
        );
    }
    let caution = records
        .iter()
        .find(|r| r[6] == "tenant.caution_markers[].instruction")
        .expect("caution marker instruction");
    assert_eq!(caution[8], "condition");
    assert!(caution[9].starts_with("contractor assigned to an open job at this property"));
    assert_eq!(caution[1], "acme-repairs brightfix northgate-gas");
    let age = records
        .iter()
        .find(|r| r[0] == "research-vendor" && r[6] == "[].age_band")
        .expect("age band");
    assert_eq!(age[8], "derived");
    assert!(age[9].contains("age_band(item.date_of_birth)"));
    let refusal = records
        .iter()
        .find(|r| r[0] == "research-vendor" && r[8] == "refused")
        .expect("research refusal");
    assert!(refusal[9].starts_with("the tenant has objected to research or withdrawn consent"));
    assert_eq!(refusal[3], "legitimate_interests");
    // The notice by title beside the citation as written; special categories by name.
    assert!(
        caution[10].starts_with("002_1225e6a6b6537e52.txt: "),
        "{caution:?}"
    );
    assert_eq!(
        caution[11],
        "Privacy notice: how we lawfully use your personal information"
    );
    assert_eq!(caution[12], "health criminal_offence sensitive");
    let phone = records
        .iter()
        .find(|r| r[0] == "police" && r[6] == "phone")
        .expect("police phone");
    assert_eq!(phone[12], "", "{phone:?}");
    let filter = records
        .iter()
        .find(|r| r[0] == "mailing-house" && r[8] == "row_filter")
        .expect("mailing filter");
    assert!(
        filter[9].starts_with("only current tenants who have not objected to mailings"),
        "{filter:?}"
    );
}

/// The text of the HTML page with its tags removed, so that tests read what a person reads.
fn visible(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&mdash;", "-")
        .replace("&amp;", "&")
}

#[test]
fn notices_are_named_by_title_not_by_file_id() {
    let html = register("html");
    let page = visible(&html);
    assert!(
        page.contains("Privacy notice: how we lawfully use your personal information \"Caution indicators may be shared with contractors"),
        "the title stands where the id was"
    );
    assert!(
        !html.contains("002_1225e6a6b6537e52.txt"),
        "no file id in the page"
    );
    assert!(
        !html.contains("000_7c66653068035281.txt"),
        "no file id in the page"
    );
    assert!(page.contains(
        "Privacy notice: sharing your information with other organisations (version not recorded)"
    ));
    let md = register("md");
    assert!(!md.contains("000_7c66653068035281.txt"));
    assert!(md.contains("Source: Privacy notice: sharing your information with other organisations: \"Provide contact details to contractors"));
}

#[test]
fn row_filters_are_said_in_words_with_the_rule_underneath() {
    let html = register("html");
    let row = html
        .lines()
        .find(|l| {
            l.contains("<span class=\"kind\">Row filter:</span>")
                && l.contains("tenant.<wbr>caution_markers")
        })
        .expect("caution marker row filter");
    assert!(
        row.contains("Row filter:</span> only markers the tenant has been told of, before their review date<span class=\"cel\">item.tenant_informed &amp;&amp; timestamp(item.review_by) &gt; now</span>"),
        "{row}"
    );
    // Bindings and lookups in words too.
    let page = visible(&html);
    assert!(page.contains("the query parameter contractor is set to the recipient's contractor_code (an attribute in recipients.toml)"));
    assert!(page.contains("Also reads GET /jobs from the housing system (as lookup.jobs) to decide; nothing of it is sent"));
    let md = register("md");
    assert!(md.contains("Row filter: only current tenants who have not objected to mailings or to non-essential sharing<br>`!('mailing'"));
}

#[test]
fn the_matrix_says_who_can_see_the_phone_number_by_which_route() {
    let html = register("html");
    let row = html
        .lines()
        .find(|l| l.starts_with("<tr><td><span class=\"words\">telephone number</span>"))
        .expect("phone row of the matrix");
    let page = visible(row);
    for path in ["[].phone", "phone", "tenant.phone"] {
        assert!(
            row.contains(&path.replace('.', ".<wbr>").replace("[]", "[]<wbr>")),
            "{path}: {row}"
        );
    }
    // One cell per type, in the register's order: council tax first, utility debt agent last.
    let cells: Vec<&str> = row.split("<td>").skip(2).collect();
    assert_eq!(cells.len(), 8, "{row}");
    assert!(
        visible(cells[0]).contains("Always GET /properties/{property_id}/occupants"),
        "{page}"
    );
    assert!(
        cells[1].contains("&mdash;"),
        "the mailing house never gets it: {page}"
    );
    let handler = visible(cells[3]);
    assert!(
        handler.contains("Always GET /tenants/{tenant_id}"),
        "{handler}"
    );
    assert!(
        handler.contains("Always GET /properties/{property_id}/occupants"),
        "{handler}"
    );
    let police = visible(cells[4]);
    assert!(
        police.contains(
            "Always GET /tenants/{tenant_id} refused whole when: a police request must carry"
        ),
        "{police}"
    );
    let repairs = visible(cells[5]);
    assert!(
        repairs.contains("GET /jobs/{job_id}") && !repairs.contains("GET /jobs "),
        "{repairs}"
    );
    let md = register("md");
    assert!(
        md.contains("  - Police: Always, by GET /tenants/{tenant\\_id}; refused whole when:"),
        "md"
    );
}

#[test]
fn special_category_fields_are_flagged_in_the_summary_the_matrix_and_the_routes() {
    let html = register("html");
    let summary = html
        .split("<section class=\"index\" id=\"special\">")
        .nth(1)
        .and_then(|s| s.split("</section>").next())
        .expect("the special category section");
    let line = summary
        .lines()
        .find(|l| l.contains("communication needs (description)"))
        .expect("communication needs in the summary");
    assert!(
        line.contains("health (Art. 9)") && line.contains("Out of hours call handler"),
        "{line}"
    );
    assert!(!summary.contains("telephone number"), "{summary}");
    let marker = html
        .lines()
        .find(|l| {
            l.contains("<tr class=\"condition\">")
                && l.contains("caution_markers[]<wbr>.<wbr>instruction")
        })
        .expect("the route table row");
    assert!(marker.contains("<span class=\"special\">Special category: health (Art. 9), criminal offence data (Art. 10)"), "{marker}");
    let matrix = html
        .lines()
        .find(|l| l.starts_with("<tr><td><span class=\"words\">caution marker (category)</span>"))
        .expect("matrix row");
    assert!(
        matrix.contains("<span class=\"special\">health (Art. 9)"),
        "{matrix}"
    );
    let md = register("md");
    assert!(
        md.contains("- **communication needs (description)** (special category: health (Art. 9)")
    );
}

#[test]
fn the_controller_and_retention_head_the_register_or_their_absence_is_said() {
    let html = register("html");
    let page = visible(&html);
    assert!(
        page.contains("Controller Lincoln Homes Ltd (an example housing provider)"),
        "{page}"
    );
    assert!(page.contains(
        "Data Protection Officer Data Protection Officer, at the same address; dpo@example.org"
    ));
    assert!(page.contains(
        "Retention Disclosure records are kept for six years after the tenancy ends, then deleted."
    ));
    assert!(page.contains("Safeguards the gateway applies to every recipient"));
    assert!(
        page.contains("Data subjects tenants, former tenants"),
        "police: {page}"
    );
    let md = register("md");
    assert!(md.contains("- **Controller:** Lincoln Homes Ltd (an example housing provider)"));
    // Without [controller], a visible note.
    let dir = tempfile::tempdir().expect("tempdir");
    crate::support::copy_dir(&root().join("rules"), &dir.path().join("rules"));
    let config = std::fs::read_to_string(root().join("need-to-know.toml")).expect("config");
    let at = config
        .find("[controller]")
        .expect("the shipped config has one");
    let end = config[at..].find("\n\n").map_or(config.len(), |e| at + e);
    let without = format!("{}{}", &config[..at], &config[end..]);
    std::fs::write(dir.path().join("need-to-know.toml"), without).expect("config");
    let out = Cli::new(["register"])
        .current_dir(dir.path())
        .pseudonym_key()
        .success();
    assert!(
        out.stdout.contains("The controller is not configured."),
        "{out}"
    );
}

#[test]
fn the_shipped_glossary_covers_every_disclosed_path() {
    let policy = shipped();
    let glossary = need_to_know::register::glossary::load(&root().join("rules")).expect("glossary");
    let missing = need_to_know::register::coverage::missing(&policy, &glossary);
    assert!(missing.is_empty(), "no plain words for: {missing:?}");
    assert_eq!(
        glossary.words("tenant.phone"),
        Some("tenant's telephone number")
    );
    assert_eq!(glossary.words("[].age_band"), Some("age band"));
}

#[test]
fn missing_glossary_entries_are_named_by_file_and_line() {
    let policy = shipped();
    let empty = need_to_know::register::glossary::Glossary::default();
    let missing = need_to_know::register::coverage::missing(&policy, &empty);
    let file = root().join("rules/types/repairs-contractor.toml");
    let text = std::fs::read_to_string(&file).expect("read");
    let (_, line, _) = missing
        .iter()
        .find(|(f, _, p)| {
            f.ends_with("repairs-contractor.toml") && p == "tenant.caution_markers[].instruction"
        })
        .expect("the when allow entry is missing");
    let at = text.lines().nth(line - 1).expect("line");
    assert!(
        at.contains("\"tenant.caution_markers[].instruction\""),
        "line {line}: {at}"
    );
}

#[test]
fn writes_to_a_file_and_refuses_rules_with_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("register.html");
    Cli::new(["register", "--output"])
        .arg(&out)
        .in_repo()
        .pseudonym_key()
        .success();
    assert!(std::fs::read_to_string(&out)
        .expect("written")
        .contains("Disclosure register"));
    // Rules with an error do not load: no register, the config code, the error's FILE:LINE.
    let broken = tempfile::tempdir().expect("tempdir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate::support::copy_dir(&root.join("rules"), &broken.path().join("rules"));
    std::fs::copy(
        root.join("need-to-know.toml"),
        broken.path().join("need-to-know.toml"),
    )
    .expect("config");
    let police = broken.path().join("rules/types/police.toml");
    let text = std::fs::read_to_string(&police).expect("police");
    std::fs::write(&police, text.replacen("allow = [", "alow = [", 1)).expect("write");
    let out = Cli::new(["register"])
        .current_dir(broken.path())
        .pseudonym_key()
        .expect(64);
    assert!(out.stdout.is_empty(), "{out}");
    assert!(out.stderr.contains("rules/types/police.toml:"), "{out}");
}
