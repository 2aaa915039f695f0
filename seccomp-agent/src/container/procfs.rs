//! What the agent needs to know about a stopped task, from /proc/<tid>/status: its filesystem
//! credentials and umask (to open files as it would) and its pid inside the container's pid
//! namespace (to give `/proc/self` its meaning).
//!
//! The task's procfs directory and its status file are kept open per supervisor thread (that is,
//! per notify fd), in a small cache keyed by tid. That is safe against pid reuse: a descriptor of
//! /proc/<tid> or of its status file is bound to the task's `struct pid`, not to the number, so
//! once that task is gone every read and lookup through it fails (ESRCH/ENOENT) instead of
//! reaching a newer task with the same number; the cache then drops the entry and opens the
//! number afresh. Nothing is cached about the task itself: each notification reads its status
//! again (the kernel generates it on every read), so a setuid, setgroups or capset in the task is
//! seen by its next notified syscall, and the root and cwd are looked up again every time (a
//! chroot in the container takes effect at once).

use std::cell::RefCell;
use std::ffi::{CStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::fcntl::{OFlag, open, openat};
use nix::sys::stat::Mode;

use crate::sys::creds::FsCreds;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    pub creds: FsCreds,
    pub umask: u32,
    /// The thread group's pid, as the agent sees it.
    pub tgid: u32,
    /// The thread group's and the thread's pids in the innermost pid namespace.
    pub ns_tgid: u32,
    pub ns_tid: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("cannot read /proc/{tid}/status: {source}")]
    Read { tid: u32, source: io::Error },
    #[error("/proc/{tid}/status has no usable {field} line")]
    Field { tid: u32, field: &'static str },
}

/// One task's open procfs handles.
struct Entry {
    tid: u32,
    /// /proc/<tid>, O_PATH: the base for root, cwd, exe and fd/N.
    dir: OwnedFd,
    /// /proc/<tid>/status, read with pread from offset 0 each time.
    status: OwnedFd,
}

/// How many tasks one supervisor thread keeps handles for (two descriptors each). A container
/// with more busy threads than this still works, with one more open per miss.
const CACHE_SIZE: usize = 32;

thread_local! {
    /// Most recently used first.
    static CACHE: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

fn open_entry(tid: u32) -> io::Result<Entry> {
    let mut path = itoa_path(b"/proc/", tid, b"");
    let dir = open(
        path.as_c_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let status = openat(
        dir.as_fd(),
        c"status",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    Ok(Entry { tid, dir, status })
}

/// `prefix` + decimal `n` + `suffix`, NUL-terminated, without going through `format!`.
fn itoa_path(prefix: &[u8], n: u32, suffix: &[u8]) -> CStringBuf {
    let mut b = CStringBuf(Vec::with_capacity(prefix.len() + 10 + suffix.len() + 1));
    b.0.extend_from_slice(prefix);
    b.0.extend_from_slice(n.to_string().as_bytes());
    b.0.extend_from_slice(suffix);
    b
}

struct CStringBuf(Vec<u8>);

impl CStringBuf {
    fn as_c_str(&mut self) -> &CStr {
        if self.0.last() != Some(&0) {
            self.0.push(0);
        }
        CStr::from_bytes_with_nul(&self.0).expect("no NUL inside a number or a fixed name")
    }
}

/// Runs `f` with task `tid`'s cached procfs handles (`dir`, `status`). If `f` fails with cached
/// handles, the entry may belong to a task that is gone: it is dropped and `f` runs once more on
/// handles opened afresh, whose answer stands.
fn with_entry<R>(
    tid: u32,
    mut f: impl FnMut(BorrowedFd<'_>, BorrowedFd<'_>) -> io::Result<R>,
) -> io::Result<R> {
    let cached = CACHE.with(|c| {
        let mut c = c.borrow_mut();
        let i = c.iter().position(|e| e.tid == tid)?;
        let e = c.remove(i);
        Some(e)
    });
    let (entry, fresh) = match cached {
        Some(e) => (e, false),
        None => (open_entry(tid)?, true),
    };
    let (entry, result) = match f(entry.dir.as_fd(), entry.status.as_fd()) {
        Ok(r) => (entry, Ok(r)),
        Err(e) if fresh => return Err(e),
        Err(_) => {
            drop(entry);
            let entry = open_entry(tid)?;
            let r = f(entry.dir.as_fd(), entry.status.as_fd());
            (entry, r)
        }
    };
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        c.insert(0, entry);
        c.truncate(CACHE_SIZE);
    });
    result
}

/// Runs `f` with an O_PATH descriptor of /proc/<tid> (see the module docs for why a cached one
/// can only name this task).
pub fn with_proc_dir<R>(
    tid: u32,
    mut f: impl FnMut(BorrowedFd<'_>) -> io::Result<R>,
) -> io::Result<R> {
    with_entry(tid, |dir, _| f(dir))
}

/// Opens `name` under /proc/<tid> (`root`, `cwd`, `fd/3`) with `flags`.
pub fn open_in_proc(tid: u32, name: &CStr, flags: OFlag) -> io::Result<OwnedFd> {
    with_proc_dir(tid, |dir| {
        Ok(openat(dir, name, flags | OFlag::O_CLOEXEC, Mode::empty())?)
    })
}

/// Reads the link `name` under /proc/<tid> (`exe`, `cwd`, `fd/3`).
pub fn read_link_in_proc(tid: u32, name: &CStr) -> io::Result<OsString> {
    with_proc_dir(tid, |dir| read_link_at(dir, name))
}

/// readlinkat(2).
pub fn read_link_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<OsString> {
    Ok(nix::fcntl::readlinkat(dir, name)?)
}

/// The executable of task `tid`, as the container names it ("" if unknown).
pub fn exe_path(tid: u32) -> String {
    read_link_in_proc(tid, c"exe")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The words of a status line's value.
fn words<'t>(
    tid: u32,
    field: &'static str,
    r: Option<&'t [u8]>,
) -> Result<Vec<&'t str>, TaskError> {
    let missing = || TaskError::Field { tid, field };
    let s = std::str::from_utf8(r.ok_or_else(missing)?).map_err(|_| missing())?;
    Ok(s.split_whitespace().collect())
}

/// procfs files whose meaning depends on who opened them (the kernel checks the opener's
/// credentials and user namespace, or acts on the opener's own task): an open the agent made
/// for the task would be the agent's, so they are never emulated.
const OPENER_DEPENDENT: [&str; 5] = [
    "uid_map",
    "gid_map",
    "projid_map",
    "setgroups",
    "timens_offsets",
];

/// True when `fd` (an O_PATH descriptor) is one of procfs's opener-dependent files: an id map,
/// setgroups, time namespace offsets, or an LSM attribute (`attr/…`).
pub fn depends_on_opener(fd: BorrowedFd<'_>, path: &std::path::Path) -> bool {
    use nix::sys::statfs::{PROC_SUPER_MAGIC, fstatfs};
    if !fstatfs(fd).is_ok_and(|s| s.filesystem_type() == PROC_SUPER_MAGIC) {
        return false;
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    OPENER_DEPENDENT.contains(&name) || path.iter().any(|c| c == "attr")
}

/// The inode of the agent's own user namespace.
fn own_userns() -> u64 {
    static OWN: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *OWN.get_or_init(|| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self/ns/user").map_or(0, |m| m.ino())
    })
}

impl TaskInfo {
    pub fn read(tid: u32) -> Result<Self, TaskError> {
        let mut buf = [0u8; 4096];
        let mut long = Vec::new();
        let mut userns = 0;
        let n = with_entry(tid, |dir, status| {
            long.clear();
            userns = nix::sys::stat::fstatat(dir, "ns/user", nix::fcntl::AtFlags::empty())?.st_ino;
            let n = nix::sys::uio::pread(status, &mut buf, 0)?;
            if n == 0 {
                // The task is gone (a dead task's status reads empty or fails).
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            if n == buf.len() {
                // Longer than usual (a long Groups line): read it whole, in one read so that it
                // is one snapshot, never a cut-off part.
                let mut size = buf.len() * 4;
                loop {
                    long.resize(size, 0);
                    let m = nix::sys::uio::pread(status, &mut long, 0)?;
                    if m < size {
                        long.truncate(m);
                        break;
                    }
                    size *= 4;
                }
            }
            Ok(n)
        })
        .map_err(|source| TaskError::Read { tid, source })?;
        let mut info = if long.is_empty() {
            Self::parse_bytes(tid, &buf[..n])
        } else {
            Self::parse_bytes(tid, &long)
        }?;
        // A task's capabilities are its own user namespace's. One in a namespace of its own
        // (unshare -U) is "root with every capability" there and nothing more outside it: the
        // agent, acting in the host's namespace, must not lend it those.
        if userns != own_userns() {
            info.creds.cap_effective = 0;
        }
        Ok(info)
    }

    pub fn parse(tid: u32, text: &str) -> Result<Self, TaskError> {
        Self::parse_bytes(tid, text.as_bytes())
    }

    /// One pass over the lines, keeping the ones we need.
    fn parse_bytes(tid: u32, text: &[u8]) -> Result<Self, TaskError> {
        let mut uid = None;
        let mut gid = None;
        let mut groups = None;
        let mut cap_eff = None;
        let mut umask = None;
        let mut tgid = None;
        let mut ns_tgid = None;
        let mut ns_tid = None;
        for line in text.split(|&b| b == b'\n') {
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let (name, rest) = (&line[..colon], &line[colon + 1..]);
            match name {
                b"Uid" => uid = Some(rest),
                b"Gid" => gid = Some(rest),
                b"Groups" => groups = Some(rest),
                b"CapEff" => cap_eff = Some(rest),
                b"Umask" => umask = Some(rest),
                b"Tgid" => tgid = Some(rest),
                b"NStgid" => ns_tgid = Some(rest),
                b"NSpid" => ns_tid = Some(rest),
                _ => {}
            }
        }
        let missing = |field: &'static str| TaskError::Field { tid, field };
        let num =
            |v: &'static str, r: Option<&[u8]>, idx: Option<usize>| -> Result<u32, TaskError> {
                let w = words(tid, v, r)?;
                let word = match idx {
                    Some(i) => w.get(i),
                    None => w.last(),
                };
                word.and_then(|x| x.parse().ok()).ok_or(missing(v))
            };
        let groups = words(tid, "Groups", groups)?
            .iter()
            .map(|g| g.parse().map_err(|_| missing("Groups")))
            .collect::<Result<Vec<u32>, _>>()?;
        let cap_effective = words(tid, "CapEff", cap_eff)?
            .first()
            .and_then(|v| u64::from_str_radix(v, 16).ok())
            .ok_or(missing("CapEff"))?;
        let umask = words(tid, "Umask", umask)?
            .first()
            .and_then(|v| u32::from_str_radix(v, 8).ok())
            .ok_or(missing("Umask"))?;
        Ok(Self {
            creds: FsCreds {
                fsuid: num("Uid", uid, Some(3))?,
                fsgid: num("Gid", gid, Some(3))?,
                groups,
                cap_effective,
            },
            umask,
            tgid: num("Tgid", tgid, Some(0))?,
            ns_tgid: num("NStgid", ns_tgid, None)?,
            ns_tid: num("NSpid", ns_tid, None)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_worker_in_a_pid_namespace() {
        let status = "Name:\tnginx\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t5012\nNgid:\t0\n\
            Pid:\t5013\nPPid:\t4990\nUid:\t33\t33\t33\t33\nGid:\t33\t33\t33\t34\nGroups:\t33 100 \n\
            NStgid:\t5012\t7\nNSpid:\t5013\t8\nCapInh:\t0000000000000000\n\
            CapPrm:\t0000000000000000\nCapEff:\t00000000a80425fb\n";
        let t = TaskInfo::parse(5013, status).unwrap();
        assert_eq!(t.creds.fsuid, 33);
        assert_eq!(t.creds.fsgid, 34);
        assert_eq!(t.creds.groups, [33, 100]);
        assert_eq!(t.creds.cap_effective, 0xa80425fb);
        assert_eq!(t.umask, 0o022);
        assert_eq!((t.tgid, t.ns_tgid, t.ns_tid), (5012, 7, 8));
    }

    #[test]
    fn reads_our_own_status() {
        let t = TaskInfo::read(std::process::id()).unwrap();
        assert_eq!(t.tgid, std::process::id());
        assert_eq!(t.creds.fsuid, nix::unistd::geteuid().as_raw());
    }

    #[test]
    fn a_cached_entry_never_answers_for_a_task_that_is_gone() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let tid = child.id();
        // Cached now.
        assert_eq!(TaskInfo::read(tid).unwrap().tgid, tid);
        assert!(exe_path(tid).ends_with("sleep"), "{}", exe_path(tid));
        child.kill().unwrap();
        child.wait().unwrap();
        // The cached descriptors name the dead task, not the number: reads fail, and the number
        // opened afresh is not there either.
        assert!(TaskInfo::read(tid).is_err());
        assert_eq!(exe_path(tid), "");
        assert!(open_in_proc(tid, c"root", OFlag::O_PATH).is_err());
    }

    #[test]
    fn a_long_status_is_read_whole() {
        let mut text =
            String::from("Umask:\t0022\nTgid:\t5\nUid:\t1\t1\t1\t1\nGid:\t2\t2\t2\t2\nGroups:\t");
        for g in 0..3000 {
            text.push_str(&format!("{g} "));
        }
        text.push_str("\nNStgid:\t5\nNSpid:\t5\nCapEff:\t0000000000000000\n");
        let t = TaskInfo::parse(5, &text).unwrap();
        assert_eq!(t.creds.groups.len(), 3000);
    }

    #[test]
    fn a_missing_line_is_an_error_naming_it() {
        let err = TaskInfo::parse(1, "Uid:\t0\t0\t0\t0\n").unwrap_err();
        assert!(
            err.to_string().contains("Gid") || err.to_string().contains("Groups"),
            "{err}"
        );
    }
}
