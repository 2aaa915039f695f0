//! Paths that mean "this process" (`/proc/self`, `/proc/thread-self`, `/dev/stdin`, `/dev/fd/N`)
//! name the *caller*; opened by the agent they would name the agent. They are rewritten to the
//! task's own pid (as the container's procfs numbers it) before anything is resolved, and
//! references to the task's own descriptors are recognised so they can be reopened through the
//! host's procfs (magic links can't be followed inside the container root; see `resolve`).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use crate::container::procfs::TaskInfo;

/// Rewrites a leading self-reference to the task's pid in its pid namespace. Only absolute paths
/// that literally start with one are rewritten; anything else is returned unchanged.
pub fn rewrite(path: &OsStr, task: &TaskInfo) -> OsString {
    let p = path.as_bytes();
    if !(p.starts_with(b"/proc/") || p == b"/proc" || p.starts_with(b"/dev/")) {
        // Nearly every path: nothing to rewrite, and nothing to format.
        return path.to_owned();
    }
    let tgid = task.ns_tgid.to_string();
    let replace = |prefix: &[u8], with: String| -> Option<OsString> {
        let rest = p.strip_prefix(prefix)?;
        if !(rest.is_empty() || rest.starts_with(b"/")) {
            return None;
        }
        let mut out = with.into_bytes();
        out.extend_from_slice(rest);
        Some(OsString::from_vec(out))
    };
    replace(b"/proc/self", format!("/proc/{tgid}"))
        .or_else(|| {
            replace(
                b"/proc/thread-self",
                format!("/proc/{tgid}/task/{}", task.ns_tid),
            )
        })
        // procfs's own links into `self`, the common spellings of /proc/self/net and /mounts.
        .or_else(|| replace(b"/proc/net", format!("/proc/{tgid}/net")))
        .or_else(|| replace(b"/proc/mounts", format!("/proc/{tgid}/mounts")))
        .or_else(|| replace(b"/dev/stdin", format!("/proc/{tgid}/fd/0")))
        .or_else(|| replace(b"/dev/stdout", format!("/proc/{tgid}/fd/1")))
        .or_else(|| replace(b"/dev/stderr", format!("/proc/{tgid}/fd/2")))
        .or_else(|| replace(b"/dev/fd", format!("/proc/{tgid}/fd")))
        .unwrap_or_else(|| path.to_owned())
}

/// A path through one of the task's own magic links, as the host's procfs names it.
#[derive(Debug, PartialEq, Eq)]
pub struct OwnLink {
    /// e.g. `/proc/<host tgid>/fd/2`
    pub host_path: OsString,
    /// What follows the link (`/proc/self/fd/3/sub/dir` → `sub/dir`), possibly empty.
    pub rest: OsString,
}

/// Recognises `/proc/<own ns pid>/(task/<own ns tid>/)?(fd/N|cwd|root|exe)...` after `rewrite`.
/// Another process's magic links are not recognised: they fail to resolve and are refused.
pub fn own_magic_link(path: &OsStr, task: &TaskInfo, host_tid: u32) -> Option<OwnLink> {
    let mut parts = path
        .as_bytes()
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty());
    if parts.next()? != b"proc" {
        return None;
    }
    if parts.next()? != task.ns_tgid.to_string().as_bytes() {
        return None;
    }
    let mut host = format!("/proc/{}", task.tgid);
    let mut next = parts.next()?;
    if next == b"task" {
        if parts.next()? != task.ns_tid.to_string().as_bytes() {
            return None;
        }
        host = format!("/proc/{}/task/{host_tid}", task.tgid);
        next = parts.next()?;
    }
    match next {
        b"fd" => {
            let n = parts.next()?;
            if n.is_empty() || !n.iter().all(u8::is_ascii_digit) {
                return None;
            }
            host.push_str("/fd/");
            host.push_str(std::str::from_utf8(n).ok()?);
        }
        b"cwd" | b"root" | b"exe" => {
            host.push('/');
            host.push_str(std::str::from_utf8(next).ok()?);
        }
        _ => return None,
    }
    let rest: Vec<&[u8]> = parts.collect();
    Some(OwnLink {
        host_path: host.into(),
        rest: OsString::from_vec(rest.join(&b'/')),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::creds::FsCreds;

    fn task() -> TaskInfo {
        TaskInfo {
            creds: FsCreds {
                fsuid: 0,
                fsgid: 0,
                groups: vec![],
                cap_effective: 0,
            },
            umask: 0o022,
            tgid: 5012,
            ns_tgid: 7,
            ns_tid: 8,
        }
    }

    #[test]
    fn self_references_become_the_tasks_pid() {
        let t = task();
        let r = |p: &str| rewrite(OsStr::new(p), &t);
        assert_eq!(r("/proc/self/status"), "/proc/7/status");
        assert_eq!(r("/proc/self"), "/proc/7");
        assert_eq!(r("/proc/thread-self/comm"), "/proc/7/task/8/comm");
        assert_eq!(r("/dev/stderr"), "/proc/7/fd/2");
        assert_eq!(r("/dev/fd/5"), "/proc/7/fd/5");
        // Not a self-reference: untouched.
        assert_eq!(r("/proc/selfish"), "/proc/selfish");
        assert_eq!(r("/dev/stderrx"), "/dev/stderrx");
        assert_eq!(r("proc/self/status"), "proc/self/status");
    }

    #[test]
    fn own_magic_links_map_to_the_host_procfs() {
        let t = task();
        let m = |p: &str| own_magic_link(OsStr::new(p), &t, 5013);
        assert_eq!(
            m("/proc/7/fd/2"),
            Some(OwnLink {
                host_path: "/proc/5012/fd/2".into(),
                rest: "".into()
            })
        );
        assert_eq!(
            m("/proc/7/task/8/fd/3/a/b"),
            Some(OwnLink {
                host_path: "/proc/5012/task/5013/fd/3".into(),
                rest: "a/b".into()
            })
        );
        assert_eq!(m("/proc/7/root").unwrap().host_path, "/proc/5012/root");
        // Another process's links, or plain procfs files, are not ours to follow.
        assert_eq!(m("/proc/1/fd/2"), None);
        assert_eq!(m("/proc/7/status"), None);
        assert_eq!(m("/proc/7/fd/x"), None);
        assert_eq!(m("/etc/passwd"), None);
    }
}
