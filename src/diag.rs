//! Problems found in the config or rules, each pointing at a file and line.

use std::fmt;
use std::path::{Path, PathBuf};

/// How bad a problem is: errors stop `serve`; warnings are printed by `check` only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem, printed as `FILE:LINE: message` (or `FILE: message` when no line applies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based; 0 when the problem is about the file as a whole.
    pub line: usize,
    pub message: String,
    pub severity: Severity,
}

impl Diagnostic {
    pub fn error(file: &Path, line: usize, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_path_buf(),
            line,
            message: message.into(),
            severity: Severity::Error,
        }
    }

    pub fn warning(file: &Path, line: usize, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(file, line, message)
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if self.severity == Severity::Warning {
            write!(f, ": warning")?;
        }
        // toml's messages can run over several lines; keep one problem per line.
        let message = self.message.trim().replace('\n', "; ");
        write!(f, ": {message}")
    }
}

/// The 1-based line holding byte `offset` of `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_one_based() {
        let text = "a\nb\nc";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, 2), 2);
        assert_eq!(line_of(text, 4), 3);
        assert_eq!(line_of(text, 99), 3);
    }

    #[test]
    fn display_forms() {
        let d = Diagnostic::error(Path::new("rules/x.toml"), 3, "bad");
        assert_eq!(d.to_string(), "rules/x.toml:3: bad");
        let w = Diagnostic::warning(Path::new("rules/x.toml"), 0, "meh");
        assert_eq!(w.to_string(), "rules/x.toml: warning: meh");
    }
}
