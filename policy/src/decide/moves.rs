//! Deciding a rename or a hard link by what it takes out of the rules' reach.
//!
//! Rules name paths, but a file keeps its content when it gets a new name: `ln /etc/shadow
//! /tmp/x` or `mv /etc /etc2` would make guarded content reachable under a name no rule covers.
//! So a move (or link) from `from` to `to` is decided by the rules that guard `from` and would not
//! guard `to`: the strictest of them names the decision. Every non-allow file and integrity rule
//! counts here whatever access or process it is limited to, because once the content has an
//! unguarded name every process reaches it for every access.

use super::{Cand, Combiner, Decision, Verdict, WorkloadView};
use crate::paths::normalize;

/// The literal part of a glob, before its first wildcard, and whether that is the whole glob
/// (an exact path): what a directory must contain, or lie inside, for the glob to match below it.
pub(super) fn scope(glob: &str) -> Scope {
    match glob.find(['*', '?', '[', '{', '\\']) {
        Some(end) => Scope {
            literal: glob[..end].into(),
            exact: false,
        },
        None => Scope {
            literal: glob.into(),
            exact: true,
        },
    }
}

#[derive(Debug, Clone)]
pub(super) struct Scope {
    literal: Box<str>,
    exact: bool,
}

/// Whether a glob with literal part `scope` can match something at or below directory `dir`
/// (normalised, no trailing `/`). Errs towards yes: `/etc/*.conf` is taken to reach into
/// `/etc/nginx`, and a glob that starts with a wildcard (`**/id_rsa`) reaches everywhere.
fn reaches_below(scope: &str, dir: &str, exact: bool) -> bool {
    let below = |s: &str| {
        s.len() > dir.len() && s.starts_with(dir) && (dir == "/" || s.as_bytes()[dir.len()] == b'/')
    };
    if exact {
        return scope == dir || below(scope);
    }
    // The directory part of the literal prefix: "/etc/ng" of `/etc/ng*x` is "/etc/".
    let scope_dir = &scope[..scope.rfind('/').map_or(0, |i| i + 1)];
    scope == dir || below(scope) || dir.starts_with(scope_dir)
}

impl WorkloadView {
    /// Decides giving the file or directory at `from` the name `to` (rename, or a hard link when
    /// `from_is_dir` is false). Allow when nothing guarding `from` is lost.
    pub fn decide_move<'v>(&'v self, from: &str, to: &str, from_is_dir: bool) -> Decision<'v> {
        let (Some(from), Some(to)) = (normalize(from), normalize(to)) else {
            return self.decision(None);
        };
        let mut comb = Combiner::default();
        comb.reset(self.policies.len());
        let to_guards = self.guards(&to);
        for c in self.guards(&from) {
            if !to_guards
                .iter()
                .any(|t| (t.policy, t.rule) == (c.policy, c.rule))
            {
                comb.add(c);
            }
        }
        if from_is_dir {
            for (scopes, entries) in [
                (&self.file_scopes, &self.file_entries),
                (&self.integrity_scopes, &self.integrity_entries),
            ] {
                for (s, owner) in scopes {
                    let Some(e) = entries.get(*owner as usize) else {
                        continue;
                    };
                    if e.verdict != Verdict::Allow && reaches_below(&s.literal, &from, s.exact) {
                        comb.add(Cand {
                            policy: e.policy,
                            rule: e.rule,
                            verdict: e.verdict,
                            specificity: u32::try_from(s.literal.len()).unwrap_or(u32::MAX),
                            severity: e.severity,
                        });
                    }
                }
            }
        }
        self.decision(comb.finish())
    }

    /// The non-allow rules whose globs match `path`, whatever access or process they name.
    fn guards(&self, path: &str) -> Vec<Cand> {
        let mut out = Vec::new();
        let mut hits = Vec::new();
        for (index, entries) in [
            (&self.files, &self.file_entries),
            (&self.integrity, &self.integrity_entries),
        ] {
            index.for_each_match(path, &mut hits, |owner, spec| {
                if let Some(e) = entries.get(owner as usize)
                    && e.verdict != Verdict::Allow
                {
                    out.push(Cand {
                        policy: e.policy,
                        rule: e.rule,
                        verdict: e.verdict,
                        specificity: spec,
                        severity: e.severity,
                    });
                }
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_and_reach() {
        let lit = |g: &str| {
            let s = scope(g);
            (s.literal.to_string(), s.exact)
        };
        assert_eq!(lit("/etc/**"), ("/etc/".into(), false));
        assert_eq!(lit("/etc/passwd"), ("/etc/passwd".into(), true));
        assert_eq!(lit("**/id_rsa"), ("".into(), false));
        // A rule inside the directory, or the directory inside the rule.
        assert!(reaches_below("/etc/", "/etc", false));
        assert!(reaches_below("/etc/nginx/", "/etc", false));
        assert!(reaches_below("/etc/", "/etc/nginx", false));
        assert!(reaches_below("/etc/passwd", "/etc", true));
        assert!(reaches_below("", "/home", false));
        // Unrelated trees, and a name that only shares a prefix.
        assert!(!reaches_below("/etc/", "/usr", false));
        assert!(!reaches_below("/etc/passwd", "/etcetera", true));
        assert!(!reaches_below("/etc/passwd", "/etc/nginx", true));
        assert!(!reaches_below("/srv/data/", "/srv/dat", false));
    }
}
