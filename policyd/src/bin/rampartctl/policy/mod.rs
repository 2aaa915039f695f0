//! `rampartctl policy …`: lint, explain and test policy files offline, with the same policy
//! crate rampartd uses, so what they say is what the node would decide.

pub mod explain;
pub mod lint;
pub mod probe;
pub mod test;

use std::path::{Path, PathBuf};

use rampart_policy::{Diagnostic, Error, Policy, Snapshot};

/// Why a set of policy paths could not be loaded.
pub enum LoadFailure {
    /// Problems in the text, each with its place.
    Invalid(Vec<Diagnostic>),
    /// A file or directory that cannot be read: `(path, message)`.
    Io(Vec<(String, String)>),
}

/// Loads every path (a file, or a directory of `*.yaml`/`*.yml` as rampartd reads it) and
/// checks the set as one snapshot (names unique across files). All problems are reported
/// together, not just the first file's.
pub fn load(paths: &[PathBuf]) -> Result<(Vec<Policy>, Snapshot), LoadFailure> {
    let mut policies = Vec::new();
    let mut diags = Vec::new();
    let mut io = Vec::new();
    for path in paths {
        match load_path(path) {
            Ok(p) => policies.extend(p),
            Err(Error::Invalid(d)) => diags.extend(d),
            Err(e) => io.push((path.display().to_string(), e.to_string())),
        }
    }
    if !io.is_empty() {
        return Err(LoadFailure::Io(io));
    }
    if !diags.is_empty() {
        return Err(LoadFailure::Invalid(diags));
    }
    match Snapshot::new(policies.clone()) {
        Ok(s) => Ok((policies, s)),
        Err(e) => Err(LoadFailure::Invalid(e.diagnostics().to_vec())),
    }
}

fn load_path(path: &Path) -> Result<Vec<Policy>, Error> {
    if path.is_dir() {
        rampart_policy::load_dir(path)
    } else {
        rampart_policy::load_file(path)
    }
}

/// `file:line:column: error: message` and an indented hint line, as compilers print them.
pub fn render_diagnostic(d: &Diagnostic) -> String {
    render(d, "error")
}

/// `file:line:column: <level>: message`, and the hint on its own line.
pub fn render(d: &Diagnostic, level: &str) -> String {
    let mut s = format!("{}:{}:{}: {level}: {}", d.file, d.line, d.column, d.message);
    if let Some(h) = &d.hint {
        s.push_str(&format!("\n  hint: {h}"));
    }
    s
}

pub fn diagnostic_json(d: &Diagnostic) -> serde_json::Value {
    serde_json::json!({
        "file": d.file,
        "line": d.line,
        "column": d.column,
        "message": d.message,
        "hint": d.hint,
    })
}

impl LoadFailure {
    /// For commands that need valid policies: every problem, one per line, ready for stderr.
    pub fn report(&self) -> String {
        match self {
            LoadFailure::Invalid(d) => d
                .iter()
                .map(render_diagnostic)
                .collect::<Vec<_>>()
                .join("\n"),
            LoadFailure::Io(e) => e
                .iter()
                .map(|(p, m)| format!("{p}: error: {m}"))
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}
