//! YAML text → checked, compiled policies. One file may hold several documents (`---`).

use std::path::Path;
use std::sync::Arc;

use crate::compile::{self, CompiledPolicy};
use crate::error::{Diagnostic, Error, did_you_mean};
use crate::model::PolicyDoc;

/// A policy as loaded: the document as written, where it came from, and its compiled form.
#[derive(Debug, Clone)]
pub struct Policy {
    pub doc: PolicyDoc,
    /// The file name given to [`parse_str`] (or the path given to [`load_file`]).
    pub file: String,
    pub(crate) compiled: Arc<CompiledPolicy>,
}

impl Policy {
    pub fn name(&self) -> &str {
        &self.doc.metadata.name.value
    }

    /// What the policy says that rampart can't enforce as written (it loads, but these parts
    /// decide nothing): ingress rules limited to `processes`. The kernel decides ingress on
    /// each packet, which has no process, so such a rule never matches: a block or alert
    /// limited to processes refuses nothing, an allow limited to them excepts nothing.
    pub fn warnings(&self) -> Vec<Diagnostic> {
        self.doc
            .spec
            .value
            .network
            .iter()
            .filter(|r| {
                r.value.direction == crate::model::Direction::Ingress
                    && !r.value.processes.is_empty()
            })
            .map(|r| {
                let id = r
                    .value
                    .id
                    .as_ref()
                    .map(|i| format!(" `{}`", i.value))
                    .unwrap_or_default();
                let what = if r.value.action == crate::model::RuleAction::Allow {
                    "excepts nothing"
                } else {
                    "decides nothing"
                };
                Diagnostic::new(
                    &self.file,
                    r.line,
                    r.column,
                    format!("ingress rule{id} is limited to processes, so it {what}"),
                )
                .with_hint(
                    "ingress is decided in the kernel on each arriving packet, which names no \
                     process: remove `processes` to decide for the whole container \
                     (docs/enforcement.md)",
                )
            })
            .collect()
    }

    /// `file:line:column` of the policy's name, for messages that talk about the whole policy.
    pub fn location(&self) -> String {
        let n = &self.doc.metadata.name;
        format!("{}:{}:{}", self.file, n.line, n.column)
    }
}

/// Most a policy file may be; larger input is refused before parsing.
pub const MAX_FILE_BYTES: usize = 4 << 20;

/// Parses every document in `text`. `file` names the source in diagnostics.
///
/// Empty documents (a lone `---`, comments only) are skipped; a file with no policy at all is an
/// error, since an empty file in the policy directory is more likely a mistake than intended.
pub fn parse_str(file: &str, text: &str) -> Result<Vec<Policy>, Error> {
    if text.len() > MAX_FILE_BYTES {
        return Err(Error::Invalid(vec![
            Diagnostic::new(
                file,
                1,
                1,
                format!(
                    "file is {} bytes, over the {MAX_FILE_BYTES}-byte limit",
                    text.len()
                ),
            )
            .with_hint("split it into several files"),
        ]));
    }
    let options = serde_saphyr::options! { with_snippet: false };
    let docs: Vec<PolicyDoc> = serde_saphyr::from_multiple_with_options(text, options)
        .map_err(|e| Error::Invalid(vec![yaml_diagnostic(file, &e)]))?;
    let mut out = Vec::new();
    let mut diags = Vec::new();
    for doc in docs {
        match compile::compile(file, &doc) {
            Ok(c) => out.push(Policy {
                doc,
                file: file.to_owned(),
                compiled: Arc::new(c),
            }),
            Err(d) => diags.extend(d),
        }
    }
    if !diags.is_empty() {
        return Err(Error::Invalid(diags));
    }
    if out.is_empty() {
        return Err(Error::Invalid(vec![
            Diagnostic::new(file, 1, 1, "no policy in file").with_hint(format!(
                "a policy starts with `apiVersion: {}` and `kind: {}`",
                compile::API_VERSION,
                compile::KIND
            )),
        ]));
    }
    Ok(out)
}

/// A policy file's bytes as text. Not UTF-8 is an error at the first bad byte, by line and
/// column (the column counts characters, as YAML errors do).
pub fn decode<'a>(file: &str, bytes: &'a [u8]) -> Result<&'a str, Error> {
    std::str::from_utf8(bytes).map_err(|e| {
        let good = &bytes[..e.valid_up_to()];
        // The prefix is valid UTF-8 by definition.
        let good = std::str::from_utf8(good).unwrap_or_default();
        let line = good.matches('\n').count() + 1;
        let column = good.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        let byte = bytes[e.valid_up_to()];
        Error::Invalid(vec![
            Diagnostic::new(
                file,
                u32::try_from(line).unwrap_or(u32::MAX),
                u32::try_from(column).unwrap_or(u32::MAX),
                format!("not valid UTF-8 (byte 0x{byte:02x})"),
            )
            .with_hint("policy files are UTF-8 text: re-save the file as UTF-8"),
        ])
    })
}

/// Reads and parses one file.
pub fn load_file(path: &Path) -> Result<Vec<Policy>, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    let file = path.display().to_string();
    parse_str(&file, decode(&file, &bytes)?)
}

/// Reads every `*.yaml` / `*.yml` file in `dir` (not recursive, hidden files skipped), in name
/// order, and reports the problems of all files together.
pub fn load_dir(dir: &Path) -> Result<Vec<Policy>, Error> {
    let rd = |source| Error::ReadDir {
        path: dir.to_owned(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(rd)? {
        let p = entry.map_err(rd)?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let yaml = p.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if yaml && !name.starts_with('.') && p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    let mut out = Vec::new();
    let mut diags = Vec::new();
    for f in files {
        match load_file(&f) {
            Ok(p) => out.extend(p),
            Err(Error::Invalid(d)) => diags.extend(d),
            Err(e) => return Err(e),
        }
    }
    if diags.is_empty() {
        Ok(out)
    } else {
        Err(Error::Invalid(diags))
    }
}

/// A YAML or shape error, with its place and a hint for the common cases.
fn yaml_diagnostic(file: &str, e: &serde_saphyr::Error) -> Diagnostic {
    let (line, column) = e
        .location()
        .map(|l| {
            (
                u32::try_from(l.line()).unwrap_or(0),
                u32::try_from(l.column()).unwrap_or(0),
            )
        })
        .unwrap_or((0, 0));
    let message = strip_location(&e.without_snippet().to_string());
    let d = Diagnostic::new(file, line, column, message.clone());
    match hint_for(&message) {
        Some(h) => d.with_hint(h),
        None => d,
    }
}

/// The YAML library puts the place in the text (`error: line N column M: ` before, or
/// ` at line N, column M` after); we print the place ourselves, in front.
fn strip_location(s: &str) -> String {
    let s = s.lines().next().unwrap_or("").trim();
    let mut s = s.strip_prefix("error: ").unwrap_or(s);
    if let Some(rest) = s.strip_prefix("line ")
        && let Some((_, msg)) = rest.split_once(": ")
    {
        s = msg;
    }
    if let Some(i) = s.rfind(" at line ")
        && s[i..].contains(", column ")
    {
        s = &s[..i];
    }
    s.to_owned()
}

/// "did you mean" for unknown fields and variants; a word about missing fields.
fn hint_for(msg: &str) -> Option<String> {
    for what in ["unknown field `", "unknown variant `"] {
        if let Some(rest) = msg.strip_prefix(what)
            && let Some((word, rest)) = rest.split_once('`')
        {
            let expected = rest
                .split_once("expected one of ")
                .or_else(|| rest.split_once("expected "))
                .map(|(_, list)| list)?;
            let candidates: Vec<&str> = expected
                .split([',', ' '])
                .map(|c| c.trim_matches(|c| c == '`' || c == ' '))
                .filter(|c| !c.is_empty() && *c != "or")
                .collect();
            // Without a close match the message's own list is the hint.
            return did_you_mean(word, candidates.iter().copied())
                .map(|m| format!("did you mean `{m}`?"));
        }
    }
    if msg.starts_with("missing field `") {
        return Some("add the field; docs/policy.md lists every field".into());
    }
    if msg.contains("expected sequence") {
        return Some("this field takes a list: write `[a, b]` or one `- item` per line".into());
    }
    if msg.contains("expected mapping") {
        return Some("this field takes a mapping: `key: value` lines or `{key: value}`".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_library_prefix() {
        assert_eq!(
            strip_location("error: line 9 column 5: unknown field `x`"),
            "unknown field `x`"
        );
        assert_eq!(strip_location("plain"), "plain");
        assert_eq!(
            strip_location("unknown field `x`, expected a at line 7, column 7"),
            "unknown field `x`, expected a"
        );
    }

    #[test]
    fn hints_for_typos() {
        assert_eq!(
            hint_for("unknown field `acess`, expected one of paths, access, action").as_deref(),
            Some("did you mean `access`?")
        );
        assert_eq!(
            hint_for("unknown variant `enforc`, expected one of `enforce`, `audit`, `learn`")
                .as_deref(),
            Some("did you mean `enforce`?")
        );
    }
}
