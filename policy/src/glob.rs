//! Path globs: `*` and `?` stay within one path segment (`literal_separator`), `**` spans
//! segments, `{a,b}` and `[abc]` work as in a shell.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use globset::{Candidate, GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};

use crate::model::At;

/// A glob checked for the things that would make it never match a normalised path.
pub(crate) fn check_path_glob(g: &At<String>) -> Result<globset::Glob, (String, String)> {
    let s = g.value.as_str();
    if s.is_empty() {
        return Err((
            "empty path glob".into(),
            "write an absolute path such as `/etc/passwd` or `/etc/**`".into(),
        ));
    }
    if !(s.starts_with('/') || s.starts_with("**")) {
        return Err((
            format!("path glob `{s}` is not absolute"),
            format!(
                "paths are matched after normalisation to absolute form; write `/{s}` or `**/{s}`"
            ),
        ));
    }
    if s.len() > 1 && s.ends_with('/') {
        return Err((
            format!("path glob `{s}` ends with `/`, which no normalised path does"),
            format!(
                "write `{}` for the directory itself or `{s}**` for what is inside",
                s.trim_end_matches('/')
            ),
        ));
    }
    if s.split('/').any(|seg| seg == "." || seg == "..") {
        return Err((
            format!("path glob `{s}` contains `.` or `..`, which no normalised path does"),
            "write the path without `.` and `..` segments".into(),
        ));
    }
    build(s).map_err(|e| {
        (
            format!("invalid glob `{s}`: {}", e.kind()),
            "check brackets and braces; `*` matches within one directory, `**` across directories"
                .into(),
        )
    })
}

pub(crate) fn build(s: &str) -> Result<globset::Glob, globset::Error> {
    GlobBuilder::new(s)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
}

/// A glob for names that are not paths (namespaces, pod names, images): `*` matches anything.
pub(crate) fn build_name(s: &str) -> Result<GlobMatcher, globset::Error> {
    GlobBuilder::new(s)
        .literal_separator(false)
        .build()
        .map(|g| g.compile_matcher())
}

/// How specific a glob is: the length of its literal prefix. `/etc/nginx/**` (11) beats
/// `/etc/**` (5); an exact path beats any glob that matches it.
pub(crate) fn specificity(s: &str) -> u32 {
    let prefix = s.find(['*', '?', '[', '{', '\\']).unwrap_or(s.len() + 1);
    u32::try_from(prefix).unwrap_or(u32::MAX)
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a, extendable: the hash of every directory prefix of a path comes out of one pass.
/// Keys are written by the operator; attacker-controlled paths only look up, so they cannot
/// degrade the table.
fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The map's keys are already FNV hashes.
#[derive(Default, Clone, Copy)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; stay correct for anything else.
        self.0 = fnv(self.0 ^ FNV_OFFSET, bytes);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// (owner, specificity) of one glob.
type Owner = (u32, u32);

/// FNV hash of the key → (key, node); a vector for the rare collisions.
type Nodes = HashMap<u64, Vec<(Box<str>, Node)>, BuildHasherDefault<Prehashed>>;

#[derive(Debug, Clone, Default)]
struct Node {
    /// Globs that are this exact path.
    exact: Vec<Owner>,
    /// `<key>**`: everything below this directory (the key ends in `/`).
    under: Vec<Owner>,
    /// Any other glob whose literal part starts with this directory, matched as a set.
    set: Option<(GlobSet, Vec<Owner>)>,
}

/// Many path globs matched at once, each mapped back to an owner (a rule).
///
/// A path can only match a glob whose literal directory prefix is one of the path's own
/// directory prefixes, so the index is a hash table keyed by those prefixes: a decision costs
/// one hash pass over the path, a probe per component, and a small glob set for the rare globs
/// with wildcards in the middle. Exact paths and `dir/**` (most policy globs) never touch a
/// regex.
#[derive(Debug, Clone, Default)]
pub(crate) struct PathIndex {
    nodes: Nodes,
    /// False when every glob is an exact path: one lookup then answers.
    has_dirs: bool,
}

impl PathIndex {
    pub(crate) fn empty() -> Self {
        PathIndex::default()
    }

    fn node_mut(&mut self, key: &str) -> &mut Node {
        let bucket = self
            .nodes
            .entry(fnv(FNV_OFFSET, key.as_bytes()))
            .or_default();
        let i = match bucket.iter().position(|(k, _)| &**k == key) {
            Some(i) => i,
            None => {
                bucket.push((key.into(), Node::default()));
                bucket.len() - 1
            }
        };
        &mut bucket[i].1
    }

    fn node(&self, hash: u64, key: &str) -> Option<&Node> {
        self.nodes
            .get(&hash)?
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, n)| n)
    }

    /// `globs` are (checked glob, owner, specificity).
    pub(crate) fn new(globs: &[(globset::Glob, u32, u32)]) -> Result<Self, globset::Error> {
        let mut index = PathIndex::default();
        let mut sets: Vec<(&str, GlobSetBuilder, Vec<Owner>)> = Vec::new();
        for (g, owner, spec) in globs {
            let s = g.glob();
            let o = (*owner, *spec);
            match s.find(['*', '?', '[', '{', '\\']) {
                None => index.node_mut(s).exact.push(o),
                Some(i) if i + 2 == s.len() && s.ends_with("/**") => {
                    index.has_dirs = true;
                    index.node_mut(&s[..i]).under.push(o);
                }
                Some(i) => {
                    index.has_dirs = true;
                    let dir = s[..i].rfind('/').map_or("", |j| &s[..=j]);
                    let at = match sets.iter().position(|(d, _, _)| *d == dir) {
                        Some(at) => at,
                        None => {
                            sets.push((dir, GlobSetBuilder::new(), Vec::new()));
                            sets.len() - 1
                        }
                    };
                    sets[at].1.add(g.clone());
                    sets[at].2.push(o);
                }
            }
        }
        for (dir, b, owners) in sets {
            index.node_mut(dir).set = Some((b.build()?, owners));
        }
        Ok(index)
    }

    /// Calls `f(owner, specificity)` for each glob that matches the normalised `path`.
    pub(crate) fn for_each_match(
        &self,
        path: &str,
        hits: &mut Vec<usize>,
        mut f: impl FnMut(u32, u32),
    ) {
        if self.nodes.is_empty() {
            return;
        }
        if !self.has_dirs {
            if let Some(n) = self.node(fnv(FNV_OFFSET, path.as_bytes()), path) {
                n.exact.iter().for_each(|&(o, s)| f(o, s));
            }
            return;
        }
        let mut dir = |hash: u64, key: &str| {
            let Some(n) = self.node(hash, key) else {
                return;
            };
            n.under.iter().for_each(|&(o, s)| f(o, s));
            if let Some((set, owners)) = &n.set {
                set.matches_candidate_into(&Candidate::new(path), hits);
                for &i in hits.iter() {
                    if let Some(&(o, s)) = owners.get(i) {
                        f(o, s);
                    }
                }
            }
        };
        dir(FNV_OFFSET, "");
        // Every prefix ending in `/`: "/", "/etc/", "/etc/nginx/" for /etc/nginx/x. The root
        // itself is one too (globset's `/**` and `/*` match "/").
        let bytes = path.as_bytes();
        let mut h = FNV_OFFSET;
        for (i, b) in bytes.iter().enumerate() {
            h = fnv(h, std::slice::from_ref(b));
            if *b == b'/' && (i + 1 < bytes.len() || bytes.len() == 1) {
                dir(h, &path[..=i]);
            }
        }
        if let Some(n) = self.node(h, path) {
            n.exact.iter().for_each(|&(o, s)| f(o, s));
        }
    }
}

/// "Does any of these globs match": for process qualifiers and allow-lists.
#[derive(Debug, Clone, Default)]
pub(crate) struct PathSet(PathIndex);

impl PathSet {
    pub(crate) fn new<'a>(globs: impl IntoIterator<Item = &'a globset::Glob>) -> Self {
        let g: Vec<_> = globs.into_iter().map(|g| (g.clone(), 0, 0)).collect();
        // Checked globs always build; an empty set (matches nothing) is the fallback.
        PathSet(PathIndex::new(&g).unwrap_or_default())
    }

    /// `path` must be normalised; "" (unknown) matches nothing.
    pub(crate) fn is_match(&self, path: &str) -> bool {
        if path.is_empty() {
            return false;
        }
        let mut hit = false;
        self.0
            .for_each_match(path, &mut Vec::new(), |_, _| hit = true);
        hit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(glob: &str, path: &str) -> bool {
        build(glob).unwrap().compile_matcher().is_match(path)
    }

    #[test]
    fn star_stays_in_segment() {
        assert!(m("/etc/*", "/etc/passwd"));
        assert!(!m("/etc/*", "/etc/nginx/nginx.conf"));
        assert!(m("/etc/**", "/etc/nginx/nginx.conf"));
        assert!(!m("/etc/**", "/etcetera"));
        assert!(!m("/etc*/passwd", "/etc/x/passwd"));
        assert!(m("**/id_rsa", "/home/u/.ssh/id_rsa"));
        assert!(m("/home/**/id_rsa", "/home/u/.ssh/id_rsa"));
        // `dir/**` is what is inside, not the directory itself.
        assert!(!m("/etc/**", "/etc"));
    }

    fn index_matches(globs: &[&str], path: &str) -> Vec<u32> {
        let g: Vec<_> = globs
            .iter()
            .enumerate()
            .map(|(i, s)| (build(s).unwrap(), i as u32, specificity(s)))
            .collect();
        let idx = PathIndex::new(&g).unwrap();
        let mut out = Vec::new();
        idx.for_each_match(path, &mut Vec::new(), |o, _| out.push(o));
        out.sort_unstable();
        out
    }

    #[test]
    fn index_agrees_with_globset() {
        let globs = [
            "/etc/**",
            "/etc/passwd",
            "/etc/nginx/**",
            "/home/*/.ssh/id_*",
            "**/id_rsa",
            "/opt/*/bin/tool",
            "/usr/lib/**/*.so",
            "/**",
            "/etc/pass?d",
            "/var/{log,tmp}/**",
        ];
        let paths = [
            "/etc/passwd",
            "/etc",
            "/etcetera",
            "/etc/nginx/nginx.conf",
            "/home/u/.ssh/id_ed25519",
            "/root/.ssh/id_rsa",
            "/opt/x/bin/tool",
            "/opt/x/y/bin/tool",
            "/usr/lib/x86_64/libc.so",
            "/usr/lib/libc.so",
            "/var/log/syslog",
            "/var/run/x",
            "/",
        ];
        for p in paths {
            let want: Vec<u32> = globs
                .iter()
                .enumerate()
                .filter(|(_, g)| m(g, p))
                .map(|(i, _)| i as u32)
                .collect();
            assert_eq!(index_matches(&globs, p), want, "{p}");
        }
    }

    #[test]
    fn specificity_is_literal_prefix() {
        assert!(specificity("/etc/nginx/**") > specificity("/etc/**"));
        assert!(specificity("/etc/passwd") > specificity("/etc/passwd*"));
    }

    #[test]
    fn checks_reject_unmatchable_globs() {
        let at = |s: &str| At::new(s.to_string(), 1, 1);
        assert!(check_path_glob(&at("etc/**")).is_err());
        assert!(check_path_glob(&at("/etc/")).is_err());
        assert!(check_path_glob(&at("/etc/../x")).is_err());
        assert!(check_path_glob(&at("/etc/[")).is_err());
        assert!(check_path_glob(&at("/etc/**")).is_ok());
        assert!(check_path_glob(&at("**/id_rsa")).is_ok());
    }
}
