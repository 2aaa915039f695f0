//! Alert message templates: `"File access to {path} by {container} container is prohibited"`.
//! Placeholders are checked when the policy is loaded, so a typo fails the load rather than
//! producing a literal `{pth}` in every alert.

use std::fmt::Write as _;

/// The placeholders a template may use.
pub const VARIABLES: &[&str] = &[
    "path",
    "access",
    "process",
    "container",
    "pod",
    "namespace",
    "image",
    "policy",
    "rule",
    "severity",
    "address",
    "port",
    "protocol",
    "syscall",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template(Vec<Part>);

impl Template {
    pub(crate) fn empty() -> Template {
        Template(Vec::new())
    }

    /// Errors are (message, hint, byte offset of the problem in `s`).
    pub(crate) fn parse(s: &str) -> Result<Template, (String, String, usize)> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = s.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|p| p.1) == Some('{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek().map(|p| p.1) == Some('}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let rest = &s[i + 1..];
                    let Some(end) = rest.find('}') else {
                        return Err((
                            "unclosed `{` in message template".into(),
                            "close it with `}`, or write `{{` for a literal brace".into(),
                            i,
                        ));
                    };
                    let name = rest[..end].trim();
                    let Some(idx) = VARIABLES.iter().position(|v| *v == name) else {
                        let mut hint = format!("known placeholders: {}", VARIABLES.join(", "));
                        if let Some(m) = crate::error::did_you_mean(name, VARIABLES.iter().copied())
                        {
                            hint = format!("did you mean `{{{m}}}`? {hint}");
                        }
                        return Err((
                            format!("unknown placeholder `{{{name}}}` in message template"),
                            hint,
                            i,
                        ));
                    };
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(Part::Var(idx));
                    for _ in 0..=end {
                        chars.next();
                    }
                }
                '}' => {
                    return Err((
                        "stray `}` in message template".into(),
                        "write `}}` for a literal brace".into(),
                        i,
                    ));
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template(parts))
    }

    /// `value(name)` gives each placeholder's text; an unknown value renders as `-`.
    pub(crate) fn render<'a>(&self, value: impl Fn(&str) -> Option<&'a str>) -> String {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Var(i) => {
                    let name = VARIABLES.get(*i).copied().unwrap_or("");
                    let _ = write!(out, "{}", value(name).unwrap_or("-"));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_placeholders_and_escapes() {
        let t = Template::parse("File {path} by {container} {{literal}}").unwrap();
        let s = t.render(|n| match n {
            "path" => Some("/etc/passwd"),
            "container" => Some("nginx"),
            _ => None,
        });
        assert_eq!(s, "File /etc/passwd by nginx {literal}");
    }

    #[test]
    fn rejects_unknown_and_unclosed() {
        let e = Template::parse("x {pth}").unwrap_err();
        assert!(e.0.contains("`{pth}`"), "{e:?}");
        assert!(e.1.contains("did you mean `{path}`"), "{e:?}");
        assert_eq!(e.2, 2);
        assert!(Template::parse("x {path").is_err());
        assert!(Template::parse("x } y").is_err());
    }
}
