//! `[[route.scrub]]` compiled into [`Scrubs`], with every misuse reported at its line.
//!
//! A scrub rule narrows what an allow entry passes and never grants: a path the route does
//! not allow (nor any `when` or derived field) would scrub nothing, and a DPO who wrote it
//! likely believes the field is sent, so it is an error rather than a rule that quietly does
//! nothing. Paths may not be listed twice or lie inside one another, so each string has
//! exactly one set of patterns and one path to record.

use toml::Spanned;

use super::raw;
use super::site::Source;
use super::Loader;
use crate::filter::conditions::Conditions;
use crate::filter::scrub::{Pattern, Patterns, Scrubs};
use crate::path::FieldPath;

/// Compiles a route's scrub rules; `None` after reporting any problem.
pub(super) fn compile(
    loader: &mut Loader,
    source: &Source,
    rules: &[Spanned<raw::Scrub>],
    allow: &[FieldPath],
    conditions: &Conditions,
) -> Option<Scrubs> {
    let file = &source.path;
    let granted: Vec<&FieldPath> = allow
        .iter()
        .chain(conditions.when().iter().flat_map(|w| &w.allow))
        .chain(conditions.derive().iter().map(|d| &d.field))
        .collect();
    let known: Vec<&str> = Pattern::ALL.iter().map(|p| p.name()).collect();
    let known = known.join(", ");
    let mut ok = true;
    let mut entries: Vec<(FieldPath, Patterns, usize)> = Vec::new();
    for rule in rules {
        let rule = rule.get_ref();
        let empty = [
            (
                &rule.patterns,
                format!("scrub patterns is empty: name at least one of {known}"),
            ),
            (
                &rule.paths,
                "scrub paths is empty: name the allowed free-text fields to scrub".to_owned(),
            ),
        ];
        for (list, message) in empty
            .into_iter()
            .filter(|(list, _)| list.get_ref().is_empty())
        {
            loader.error(file, source.line(list), message);
            ok = false;
        }
        let mut patterns = Patterns::default();
        for name in rule.patterns.get_ref() {
            match Pattern::parse(name.get_ref()) {
                Some(p) => patterns.insert(p),
                None => {
                    let message =
                        format!("scrub pattern {:?} is not one of {known}", name.get_ref());
                    loader.error(file, source.line(name), message);
                    ok = false;
                }
            }
        }
        let Some(paths) = loader.paths(source, "scrub paths", rule.paths.get_ref()) else {
            ok = false;
            continue;
        };
        for (path, text) in paths.into_iter().zip(rule.paths.get_ref()) {
            let line = source.line(text);
            if !granted
                .iter()
                .any(|g| path.is_under(g) || g.is_under(&path))
            {
                loader.error(
                    file,
                    line,
                    format!("scrub path \"{path}\" is not allowed by the route (allow, when or derive): a scrub rule never grants a field"),
                );
                ok = false;
                continue;
            }
            let overlap = entries
                .iter()
                .find(|(other, _, _)| path.is_under(other) || other.is_under(&path));
            if let Some((other, _, at)) = overlap {
                loader.error(
                    file,
                    line,
                    format!("scrub path \"{path}\" overlaps the scrub path \"{other}\" at line {at}: give each field one scrub rule with all its patterns"),
                );
                ok = false;
                continue;
            }
            entries.push((path, patterns, line));
        }
    }
    ok.then(|| Scrubs::new(entries.into_iter().map(|(path, p, _)| (path, p))))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

    use crate::test_util::{load, policy};

    const ROUTE: &str = r#"
[[route]]
method = "GET"
path = "/jobs/{job_id}"
subjects = ["tenant.id"]
allow = ["description", "contacts[].description", "tenant.name"]

[[route.when]]
condition = "true"
reason = "r"
allow = ["notes"]
"#;

    /// The errors in the type file of loading `ROUTE` and then `scrub`, as `check` prints
    /// them.
    fn errors(scrub: &str) -> Vec<String> {
        match load(&format!("{ROUTE}{scrub}"), None) {
            Ok(_) => Vec::new(),
            Err(e) => {
                e.0.iter()
                    .map(ToString::to_string)
                    .filter(|e| e.contains("repairs-contractor.toml:"))
                    .collect()
            }
        }
    }

    #[test]
    fn allowed_paths_compile() {
        let policy = policy(&format!(
            "{ROUTE}\n[[route.scrub]]\npaths = [\"description\", \"contacts\", \"notes\"]\npatterns = [\"phone\", \"date\"]\n"
        ));
        let route = &policy.types().next().unwrap().routes[0];
        let paths: Vec<String> = route
            .plan
            .scrubs()
            .paths()
            .map(|(p, _)| p.to_string())
            .collect();
        assert_eq!(paths, ["description", "contacts", "notes"]);
    }

    #[test]
    fn misuse_is_an_error_at_its_line() {
        // `ROUTE` takes lines 4 to 14 of the file; the scrub rule starts at line 16.
        let got = errors(
            "\n[[route.scrub]]\npaths = [\"description\",\n  \"tenant.phone\"]\npatterns = [\"phone\",\n  \"telephone\"]\n",
        );
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].ends_with("repairs-contractor.toml:20: scrub pattern \"telephone\" is not one of phone, email, ni_number, postcode, date"), "{got:?}");
        assert!(got[1].ends_with("repairs-contractor.toml:18: scrub path \"tenant.phone\" is not allowed by the route (allow, when or derive): a scrub rule never grants a field"), "{got:?}");

        let got = errors("\n[[route.scrub]]\npaths = []\npatterns = []\n");
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].ends_with(":18: scrub patterns is empty: name at least one of phone, email, ni_number, postcode, date"), "{got:?}");
        assert!(
            got[1]
                .ends_with(":17: scrub paths is empty: name the allowed free-text fields to scrub"),
            "{got:?}"
        );

        let got = errors("\n[[route.scrub]]\npaths = [\"description\"]\n");
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].contains(":16: missing field `patterns`"), "{got:?}");

        let got = errors(
            "\n[[route.scrub]]\npaths = [\"contacts\"]\npatterns = [\"email\"]\n\n[[route.scrub]]\npaths = [\"contacts[].description\"]\npatterns = [\"phone\"]\n",
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].ends_with(":21: scrub path \"contacts[].description\" overlaps the scrub path \"contacts\" at line 17: give each field one scrub rule with all its patterns"), "{got:?}");

        let got =
            errors("\n[[route.scrub]]\npaths = [\"a..b\"]\npatterns = [\"email\"]\nextra = 1\n");
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].contains("unknown field `extra`"), "{got:?}");
    }
}
