//! Path normalisation before matching, so that `/etc/../etc/passwd`, `//etc///passwd` and
//! `/etc/./passwd` cannot slip past a rule on `/etc/**`.
//!
//! This is lexical only: symlinks and the process's working directory are the caller's to
//! resolve (inside the container's root), because only the caller can see the filesystem.

use std::borrow::Cow;

/// The lexically normal form of an absolute path, or `None` for a relative or empty one.
///
/// A relative path is never matched as if it were absolute: `etc/passwd` could mean anything
/// depending on the working directory, so callers must resolve it first.
pub fn normalize(path: &str) -> Option<Cow<'_, str>> {
    if !path.starts_with('/') {
        return None;
    }
    if is_normal(path) {
        return Some(Cow::Borrowed(path));
    }
    let mut out = String::with_capacity(path.len());
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            // `..` at the root stays at the root, as the kernel does.
            ".." => {
                let cut = out.rfind('/').unwrap_or(0);
                out.truncate(cut);
            }
            s => {
                out.push('/');
                out.push_str(s);
            }
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    Some(Cow::Owned(out))
}

/// The common case on the hot path: already normal, no allocation.
fn is_normal(path: &str) -> bool {
    if path == "/" {
        return true;
    }
    if path.ends_with('/') {
        return false;
    }
    // Every segment after the leading '/' must be non-empty and neither `.` nor `..`.
    path[1..]
        .split('/')
        .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(p: &str) -> Option<String> {
        normalize(p).map(Cow::into_owned)
    }

    #[test]
    fn normalises_tricks() {
        assert_eq!(n("/etc/../etc/passwd").as_deref(), Some("/etc/passwd"));
        assert_eq!(n("//etc///passwd").as_deref(), Some("/etc/passwd"));
        assert_eq!(n("/etc/./passwd").as_deref(), Some("/etc/passwd"));
        assert_eq!(n("/etc/nginx/").as_deref(), Some("/etc/nginx"));
        assert_eq!(n("/../../etc/shadow").as_deref(), Some("/etc/shadow"));
        assert_eq!(n("/etc/..").as_deref(), Some("/"));
        assert_eq!(n("/").as_deref(), Some("/"));
        assert_eq!(n("/a/b/../../..").as_deref(), Some("/"));
        assert_eq!(n("/etc/.hidden").as_deref(), Some("/etc/.hidden"));
        assert_eq!(n("/etc/...").as_deref(), Some("/etc/..."));
    }

    #[test]
    fn relative_paths_are_refused() {
        assert_eq!(n("etc/passwd"), None);
        assert_eq!(n("./etc/passwd"), None);
        assert_eq!(n(""), None);
    }

    #[test]
    fn normal_paths_are_borrowed() {
        assert!(matches!(normalize("/etc/passwd"), Some(Cow::Borrowed(_))));
    }
}
