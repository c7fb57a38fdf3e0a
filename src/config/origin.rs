//! Where each setting in effect was written: a line of `need-to-know.toml`, or the
//! environment variable that overrides it.
//!
//! Most problems with the settings are only found after the file has been parsed and the
//! environment layered over it (a size that does not parse, a limit out of range, two keys
//! that contradict each other), and the `config` crate that does the layering keeps no spans.
//! So the file is parsed once more with spans, into a dotted key -> line index, and the
//! overrides are named by the key they set: a problem about `limits.max_depth` is then
//! reported at that key's line, or at `NEED_TO_KNOW__LIMITS__MAX_DEPTH` when that variable
//! set it, which is where the operator has to go to fix it.

use std::collections::BTreeMap;
use std::path::Path;

use toml::de::{DeTable, DeValue};

use crate::diag::{line_of, Diagnostic};

/// Where one setting was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A 1-based line of the config file; 0 when nothing in the file or the environment
    /// holds the key or its table (a default), so the file as a whole is meant.
    File(usize),
    /// The environment variable that overrides the file, e.g. `NEED_TO_KNOW__SERVER__LISTEN`.
    Env(String),
}

/// The origin of every key in the file and the environment, looked up by dotted key.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    lines: KeyLines,
    /// Dotted key -> the variable that sets it, as the `config` crate maps one to the other.
    env: BTreeMap<String, String>,
}

/// Dotted key -> 1-based line of the key, for every key of a TOML document: table headers
/// (`[server.tls]` gives `server` and `server.tls`), dotted keys (`a.b = 1` gives `a` and
/// `a.b`), keys inside inline tables, and array elements by index (`recipient[1].id`).
///
/// A key written in quotes with a dot inside (`"a.b" = 1`) is indistinguishable from the
/// dotted key; the settings have no such keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyLines(BTreeMap<String, usize>);

// === impl Origin ===

impl Origin {
    /// An error placed here: `FILE:LINE: message`, or `VARIABLE: message` for an override.
    pub fn error(&self, file: &Path, message: impl Into<String>) -> Diagnostic {
        match self {
            Origin::File(line) => Diagnostic::error(file, *line, message),
            Origin::Env(var) => Diagnostic::error(Path::new(var), 0, message),
        }
    }

    /// A warning placed here, as [`Origin::error`].
    pub fn warning(&self, file: &Path, message: impl Into<String>) -> Diagnostic {
        match self {
            Origin::File(line) => Diagnostic::warning(file, *line, message),
            Origin::Env(var) => Diagnostic::warning(Path::new(var), 0, message),
        }
    }
}

// === impl Origins ===

impl Origins {
    /// The index of `text` (the config file, already known to parse) and of the overrides
    /// in `env`: every variable named `{prefix}__SECTION__KEY`.
    pub fn new<'a>(text: &str, prefix: &str, env: impl IntoIterator<Item = &'a String>) -> Origins {
        let env = env
            .into_iter()
            .filter_map(|var| Some((env_key(prefix, var)?, var.clone())))
            .collect();
        Origins {
            lines: KeyLines::parse(text),
            env,
        }
    }

    /// Where `key` (dotted, `limits.max_depth`) was written: the variable that overrides it,
    /// else its line; a key written nowhere (a default, or a required key left out) is
    /// placed at its nearest written table, `[limits]`, and failing that at the whole file.
    pub fn of(&self, key: &str) -> Origin {
        let mut key = key;
        loop {
            if let Some(var) = self.env.get(key) {
                return Origin::Env(var.clone());
            }
            if let Some(line) = self.lines.line(key) {
                return Origin::File(line);
            }
            match key.rsplit_once('.') {
                Some((table, _)) => key = table,
                None => return Origin::File(0),
            }
        }
    }
}

/// The dotted key a variable overrides, as `config::Environment` with `prefix`, separators
/// `__` and no case conversion derives it: `NEED_TO_KNOW__LIMITS__MAX_DEPTH` ->
/// `limits.max_depth`. `None` for a variable without the prefix.
fn env_key(prefix: &str, var: &str) -> Option<String> {
    let var = var.to_lowercase();
    let rest = var.strip_prefix(&format!("{prefix}__").to_lowercase())?;
    Some(rest.replace("__", "."))
}

// === impl KeyLines ===

impl KeyLines {
    /// The index of `text`; empty when it is not TOML (the parse that reports that error
    /// runs first, so this never has to).
    pub fn parse(text: &str) -> KeyLines {
        let mut lines = BTreeMap::new();
        if let Ok(document) = DeTable::parse(text) {
            index_table(text, "", document.get_ref(), &mut lines);
        }
        KeyLines(lines)
    }

    /// The line of `key`, if the document writes it.
    pub fn line(&self, key: &str) -> Option<usize> {
        self.0.get(key).copied()
    }
}

fn index_table(text: &str, prefix: &str, table: &DeTable<'_>, lines: &mut BTreeMap<String, usize>) {
    for (name, value) in table.iter() {
        let key = if prefix.is_empty() {
            name.get_ref().to_string()
        } else {
            format!("{prefix}.{}", name.get_ref())
        };
        lines.insert(key.clone(), line_of(text, name.span().start));
        index_value(text, &key, value.get_ref(), lines);
    }
}

fn index_value(text: &str, key: &str, value: &DeValue<'_>, lines: &mut BTreeMap<String, usize>) {
    match value {
        DeValue::Table(table) => index_table(text, key, table, lines),
        DeValue::Array(array) => {
            for (i, element) in array.iter().enumerate() {
                let key = format!("{key}[{i}]");
                lines.insert(key.clone(), line_of(text, element.span().start));
                index_value(text, &key, element.get_ref(), lines);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<(String, usize)> {
        KeyLines::parse(text).0.into_iter().collect()
    }

    fn owned(pairs: &[(&str, usize)]) -> Vec<(String, usize)> {
        pairs.iter().map(|(k, l)| (k.to_string(), *l)).collect()
    }

    #[test]
    fn nested_tables_give_each_key_its_line() {
        let text = "top = 1\n[server]\nlisten = \"x\"\n\n[server.tls]\ncert = \"c\"\n[limits]\nmax_depth = 0\n";
        assert_eq!(
            lines(text),
            owned(&[
                ("limits", 7),
                ("limits.max_depth", 8),
                ("server", 2),
                ("server.listen", 3),
                ("server.tls", 5),
                ("server.tls.cert", 6),
                ("top", 1),
            ])
        );
    }

    #[test]
    fn a_table_first_named_by_a_subtable_header_is_at_that_header() {
        let text = "[audit.postgres]\nchain = \"a\"\n[audit]\npath = \"p\"\n";
        let index = KeyLines::parse(text);
        assert_eq!(index.line("audit.postgres"), Some(1));
        assert_eq!(index.line("audit.postgres.chain"), Some(2));
        assert_eq!(index.line("audit.path"), Some(4));
    }

    #[test]
    fn arrays_of_tables_are_indexed_by_element() {
        let text = "[[recipient]]\nid = \"a\"\n\n[[recipient]]\nid = \"b\"\nname = \"B\"\n";
        let index = KeyLines::parse(text);
        assert_eq!(index.line("recipient[0].id"), Some(2));
        assert_eq!(index.line("recipient[1].id"), Some(5));
        assert_eq!(index.line("recipient[1].name"), Some(6));
        assert_eq!(index.line("recipient[2].id"), None);
    }

    #[test]
    fn dotted_keys_are_at_their_line() {
        let text = "server.listen = \"x\"\n[audit]\npath = \"p\"\n\npostgres.chain = \"c\"\n";
        let index = KeyLines::parse(text);
        assert_eq!(index.line("server"), Some(1));
        assert_eq!(index.line("server.listen"), Some(1));
        assert_eq!(index.line("audit.postgres"), Some(5));
        assert_eq!(index.line("audit.postgres.chain"), Some(5));
    }

    #[test]
    fn inline_tables_and_arrays_are_at_their_line() {
        let text =
            "[server]\ntls = { cert = \"c\",\n  key = \"k\" }\nports = [\n  1,\n  { n = 2 },\n]\n";
        let index = KeyLines::parse(text);
        assert_eq!(index.line("server.tls"), Some(2));
        assert_eq!(index.line("server.tls.cert"), Some(2));
        assert_eq!(index.line("server.tls.key"), Some(3));
        assert_eq!(index.line("server.ports[0]"), Some(5));
        assert_eq!(index.line("server.ports[1].n"), Some(6));
    }

    #[test]
    fn not_toml_gives_no_lines() {
        assert_eq!(KeyLines::parse("[server\n"), KeyLines::default());
    }

    #[test]
    fn an_override_wins_over_the_file_and_a_default_is_at_its_table() {
        let text = "[server]\nlisten = \"x\"\n[limits]\nmax_depth = 0\n";
        let env = [
            "NEED_TO_KNOW__SERVER__LISTEN".to_string(),
            "NEED_TO_KNOW_PSEUDONYM_KEY".to_string(),
            "OTHER__SERVER__IDLE_TIMEOUT".to_string(),
        ];
        let origins = Origins::new(text, "NEED_TO_KNOW", &env);
        let var = Origin::Env("NEED_TO_KNOW__SERVER__LISTEN".into());
        assert_eq!(origins.of("server.listen"), var);
        assert_eq!(origins.of("limits.max_depth"), Origin::File(4));
        assert_eq!(origins.of("limits.max_request_body"), Origin::File(3));
        assert_eq!(origins.of("server.idle_timeout"), Origin::File(1));
        assert_eq!(origins.of("upstream.url"), Origin::File(0));
    }

    #[test]
    fn variables_map_to_keys_as_the_config_crate_maps_them() {
        let key = |var: &str| env_key("NEED_TO_KNOW", var);
        assert_eq!(
            key("NEED_TO_KNOW__LIMITS__MAX_DEPTH").as_deref(),
            Some("limits.max_depth")
        );
        assert_eq!(
            key("NEED_TO_KNOW__AUDIT__POSTGRES__CHAIN").as_deref(),
            Some("audit.postgres.chain")
        );
        assert_eq!(key("NEED_TO_KNOW_PSEUDONYM_KEY"), None);
    }

    #[test]
    fn an_origin_places_a_diagnostic() {
        let file = Path::new("need-to-know.toml");
        let at_line = Origin::File(27).error(file, "limits.max_depth 0 must be between 1 and 512");
        assert_eq!(
            at_line.to_string(),
            "need-to-know.toml:27: limits.max_depth 0 must be between 1 and 512"
        );
        let var = Origin::Env("NEED_TO_KNOW__LIMITS__MAX_DEPTH".into());
        assert_eq!(
            var.warning(file, "deep").to_string(),
            "NEED_TO_KNOW__LIMITS__MAX_DEPTH: warning: deep"
        );
    }
}
