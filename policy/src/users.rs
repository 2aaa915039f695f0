//! Who accesses a file, and the users a file rule is limited to (`users`, `uids`).

/// Who accesses a file, for rules limited to `users`/`uids`: the process's filesystem uid and
/// its name in the container's /etc/passwd, if it has one there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct User<'a> {
    pub uid: u32,
    pub name: Option<&'a str>,
}

/// The users a file rule is limited to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserSet {
    pub(crate) names: Vec<String>,
    pub(crate) uids: Vec<u32>,
}

impl UserSet {
    pub(crate) fn matches(&self, u: &User<'_>) -> bool {
        self.uids.contains(&u.uid) || u.name.is_some_and(|n| self.names.iter().any(|m| m == n))
    }
}
