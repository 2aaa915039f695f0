//! Decoding a notification into the call it stands for, with its pointer arguments copied out of
//! the task once (see `container::memory`), and its real name. Everything rampart notifies on is
//! listed here; anything else is `Other`, which the caller must still answer.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::ffi::OsStringExt;

use crate::container::memory::{MemoryError, PATH_MAX, TaskMemory};
use crate::sys::notify::Notification;

/// AUDIT_ARCH_X86_64: the filter only notifies native calls (runc's profile lists the arches it
/// allows; 32-bit calls have other numbers and are refused, not decoded).
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

pub use crate::container::dir::Dir;

/// One notified call, decoded: each kind is a struct of its own, handed as it is to its handler.
/// Every struct carries the syscall's real name, for the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Open(OpenCall),
    Exec(ExecCall),
    Connect(ConnectCall),
    Remove(RemoveCall),
    NewName(NewNameCall),
    Chmod(ChmodCall),
    Truncate(TruncateCall),
    Hardening(HardeningCall),
    /// A syscall this agent does not handle (a filter it did not write).
    Other {
        nr: i32,
    },
}

impl Call {
    /// The real syscall's name ("" for `Other`).
    pub fn syscall(&self) -> &'static str {
        match self {
            Call::Open(c) => c.syscall,
            Call::Exec(c) => c.syscall,
            Call::Connect(c) => c.syscall,
            Call::Remove(c) => c.syscall,
            Call::NewName(c) => c.syscall,
            Call::Chmod(c) => c.syscall,
            Call::Truncate(c) => c.syscall,
            Call::Hardening(c) => c.syscall,
            Call::Other { .. } => "",
        }
    }
}

/// open, creat, openat, openat2 (creat is open with O_CREAT|O_WRONLY|O_TRUNC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenCall {
    pub syscall: &'static str,
    pub dir: Dir,
    pub path: OsString,
    pub flags: u64,
    pub mode: u64,
    /// openat2's RESOLVE_* flags; 0 for the others.
    pub resolve: u64,
}

/// execve, execveat. `path` empty with AT_EMPTY_PATH means "the file open as dir" (fexecve).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecCall {
    pub syscall: &'static str,
    pub dir: Dir,
    pub path: OsString,
    pub flags: u64,
}

/// connect, and sendto/sendmsg/sendmmsg with destination addresses (IPv4/IPv6 only; none for a
/// connected socket or another family).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectCall {
    pub syscall: &'static str,
    pub fd: i32,
    pub addrs: Vec<SocketAddr>,
}

/// unlink, unlinkat, rmdir. `flags` holds AT_REMOVEDIR for rmdir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveCall {
    pub syscall: &'static str,
    pub dir: Dir,
    pub path: OsString,
    pub flags: u64,
}

/// rename, renameat, renameat2 (`hard_link` false), link, linkat (true). `flags` are
/// renameat2's RENAME_* or linkat's AT_SYMLINK_FOLLOW/AT_EMPTY_PATH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNameCall {
    pub syscall: &'static str,
    pub hard_link: bool,
    pub old_dir: Dir,
    pub old: OsString,
    pub new_dir: Dir,
    pub new: OsString,
    pub flags: u64,
}

/// chmod, fchmodat, fchmodat2 (`path` set) and fchmod (`path` None: `dir` is the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChmodCall {
    pub syscall: &'static str,
    pub dir: Dir,
    pub path: Option<OsString>,
    pub mode: u64,
    pub flags: u64,
}

/// truncate(path, length).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruncateCall {
    pub syscall: &'static str,
    pub path: OsString,
    pub length: u64,
}

/// A hardening syscall a policy audits instead of denying: decided by its name alone, no
/// argument read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HardeningCall {
    pub syscall: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("{0}")]
    Memory(#[from] MemoryError),
    #[error("syscall from a non-native architecture {0:#x}")]
    Arch(u32),
    #[error("openat2's open_how is {0} bytes; only the 24-byte version 0 is understood")]
    OpenHowSize(u64),
}

/// fchmodat2 (Linux 6.6); not in every libc crate release yet.
const SYS_FCHMODAT2: i64 = 452;
/// The kernel's cap on sendmmsg's vlen.
const UIO_MAXIOV: u64 = 1024;
/// sizeof(struct mmsghdr) on x86_64: a 56-byte msghdr, msg_len, padding.
const MMSGHDR_SIZE: u64 = 64;

/// x86_64 numbers of the syscalls a policy may harden. `create_module`, `get_kernel_syms`,
/// `query_module`, `stime`, `umount`, `vm86`, `vm86old` do not exist on x86_64 (a filter naming
/// them matches nothing here).
const HARDENABLE: &[(i64, &str)] = &[
    (libc::SYS_acct, "acct"),
    (libc::SYS_add_key, "add_key"),
    (libc::SYS_bpf, "bpf"),
    (libc::SYS_chroot, "chroot"),
    (libc::SYS_clock_adjtime, "clock_adjtime"),
    (libc::SYS_clock_settime, "clock_settime"),
    (libc::SYS_delete_module, "delete_module"),
    (libc::SYS_fanotify_init, "fanotify_init"),
    (libc::SYS_finit_module, "finit_module"),
    (libc::SYS_fsconfig, "fsconfig"),
    (libc::SYS_fsmount, "fsmount"),
    (libc::SYS_fsopen, "fsopen"),
    (libc::SYS_fspick, "fspick"),
    (libc::SYS_get_mempolicy, "get_mempolicy"),
    (libc::SYS_init_module, "init_module"),
    (libc::SYS_io_uring_enter, "io_uring_enter"),
    (libc::SYS_io_uring_register, "io_uring_register"),
    (libc::SYS_io_uring_setup, "io_uring_setup"),
    (libc::SYS_ioperm, "ioperm"),
    (libc::SYS_iopl, "iopl"),
    (libc::SYS_kcmp, "kcmp"),
    (libc::SYS_kexec_file_load, "kexec_file_load"),
    (libc::SYS_kexec_load, "kexec_load"),
    (libc::SYS_keyctl, "keyctl"),
    (libc::SYS_lookup_dcookie, "lookup_dcookie"),
    (libc::SYS_mbind, "mbind"),
    (libc::SYS_memfd_create, "memfd_create"),
    (libc::SYS_memfd_secret, "memfd_secret"),
    (libc::SYS_migrate_pages, "migrate_pages"),
    (libc::SYS_mount, "mount"),
    (libc::SYS_mount_setattr, "mount_setattr"),
    (libc::SYS_move_mount, "move_mount"),
    (libc::SYS_move_pages, "move_pages"),
    (libc::SYS_name_to_handle_at, "name_to_handle_at"),
    (libc::SYS_nfsservctl, "nfsservctl"),
    (libc::SYS_open_by_handle_at, "open_by_handle_at"),
    (libc::SYS_open_tree, "open_tree"),
    (libc::SYS_perf_event_open, "perf_event_open"),
    (libc::SYS_personality, "personality"),
    (libc::SYS_pidfd_getfd, "pidfd_getfd"),
    (libc::SYS_pivot_root, "pivot_root"),
    (libc::SYS_process_madvise, "process_madvise"),
    (libc::SYS_process_vm_readv, "process_vm_readv"),
    (libc::SYS_process_vm_writev, "process_vm_writev"),
    (libc::SYS_ptrace, "ptrace"),
    (libc::SYS_quotactl, "quotactl"),
    (libc::SYS_quotactl_fd, "quotactl_fd"),
    (libc::SYS_reboot, "reboot"),
    (libc::SYS_request_key, "request_key"),
    (libc::SYS_set_mempolicy, "set_mempolicy"),
    (libc::SYS_setdomainname, "setdomainname"),
    (libc::SYS_sethostname, "sethostname"),
    (libc::SYS_setns, "setns"),
    (libc::SYS_settimeofday, "settimeofday"),
    (libc::SYS_swapoff, "swapoff"),
    (libc::SYS_swapon, "swapon"),
    (libc::SYS_sysfs, "sysfs"),
    (libc::SYS_syslog, "syslog"),
    (libc::SYS_umount2, "umount2"),
    (libc::SYS_unshare, "unshare"),
    (libc::SYS_uselib, "uselib"),
    (libc::SYS_userfaultfd, "userfaultfd"),
    (libc::SYS_ustat, "ustat"),
    (libc::SYS_vhangup, "vhangup"),
];

/// The hardenable syscall with number `nr`, if it is one.
pub fn hardening_name(nr: i32) -> Option<&'static str> {
    HARDENABLE
        .iter()
        .find(|(n, _)| *n == i64::from(nr))
        .map(|(_, name)| *name)
}

fn dir_of(arg: u64) -> Dir {
    let fd = arg as i32;
    if fd == libc::AT_FDCWD {
        Dir::Cwd
    } else {
        Dir::Fd(fd)
    }
}

fn path_at(mem: &TaskMemory, addr: u64) -> Result<OsString, DecodeError> {
    Ok(OsString::from_vec(mem.read_cstr(addr, PATH_MAX)?))
}

/// Copies the call's arguments out of the task. The caller must check the notification id is
/// still valid afterwards, before trusting what was read.
pub fn decode(n: &Notification, mem: &TaskMemory) -> Result<Call, DecodeError> {
    if n.arch != AUDIT_ARCH_X86_64 {
        return Err(DecodeError::Arch(n.arch));
    }
    let a = n.args;
    let nr = i64::from(n.nr);
    let open = |syscall, dir, path, flags, mode| -> Result<Call, DecodeError> {
        Ok(Call::Open(OpenCall {
            syscall,
            dir,
            path: path_at(mem, path)?,
            flags,
            mode,
            resolve: 0,
        }))
    };
    let exec = |syscall, dir, path, flags| -> Result<Call, DecodeError> {
        Ok(Call::Exec(ExecCall {
            syscall,
            dir,
            path: path_at(mem, path)?,
            flags,
        }))
    };
    let connect = |syscall, addrs| {
        Call::Connect(ConnectCall {
            syscall,
            fd: a[0] as i32,
            addrs,
        })
    };
    let remove = |syscall, dir, path, flags| -> Result<Call, DecodeError> {
        Ok(Call::Remove(RemoveCall {
            syscall,
            dir,
            path: path_at(mem, path)?,
            flags,
        }))
    };
    let new_name = |syscall, hard_link, [old_dir, old, new_dir, new]: [u64; 4], flags| {
        Ok::<_, DecodeError>(Call::NewName(NewNameCall {
            syscall,
            hard_link,
            old_dir: dir_of(old_dir),
            old: path_at(mem, old)?,
            new_dir: dir_of(new_dir),
            new: path_at(mem, new)?,
            flags,
        }))
    };
    let chmod = |syscall, dir, path: Option<u64>, mode, flags| -> Result<Call, DecodeError> {
        Ok(Call::Chmod(ChmodCall {
            syscall,
            dir,
            path: path.map(|p| path_at(mem, p)).transpose()?,
            mode,
            flags,
        }))
    };
    let cwd = libc::AT_FDCWD as u64;
    let call = match nr {
        libc::SYS_open => open("open", Dir::Cwd, a[0], a[1], a[2])?,
        libc::SYS_creat => open(
            "creat",
            Dir::Cwd,
            a[0],
            (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64,
            a[1],
        )?,
        libc::SYS_openat => open("openat", dir_of(a[0]), a[1], a[2], a[3])?,
        libc::SYS_openat2 => {
            if a[3] != 24 {
                return Err(DecodeError::OpenHowSize(a[3]));
            }
            let how = mem.read_exact(a[2], 24)?;
            let word = |i: usize| u64::from_ne_bytes(how[i * 8..i * 8 + 8].try_into().unwrap());
            Call::Open(OpenCall {
                syscall: "openat2",
                dir: dir_of(a[0]),
                path: path_at(mem, a[1])?,
                flags: word(0),
                mode: word(1),
                resolve: word(2),
            })
        }
        libc::SYS_execve => exec("execve", Dir::Cwd, a[0], 0)?,
        libc::SYS_execveat => exec("execveat", dir_of(a[0]), a[1], a[4])?,
        libc::SYS_connect => connect(
            "connect",
            read_sockaddr(mem, a[1], a[2])?.into_iter().collect(),
        ),
        libc::SYS_sendto => connect(
            "sendto",
            if a[4] == 0 {
                Vec::new()
            } else {
                read_sockaddr(mem, a[4], a[5])?.into_iter().collect()
            },
        ),
        libc::SYS_sendmsg => connect("sendmsg", msghdr_dest(mem, a[1])?.into_iter().collect()),
        libc::SYS_sendmmsg => {
            // Every message may name its own destination; vlen is capped at UIO_MAXIOV by the
            // kernel, which sends no more than that.
            let vlen = a[2].min(UIO_MAXIOV);
            let mut addrs = Vec::new();
            for i in 0..vlen {
                if let Some(addr) = msghdr_dest(mem, a[1].wrapping_add(i * MMSGHDR_SIZE))? {
                    addrs.push(addr);
                }
            }
            connect("sendmmsg", addrs)
        }
        libc::SYS_unlink => remove("unlink", Dir::Cwd, a[0], 0)?,
        libc::SYS_rmdir => remove("rmdir", Dir::Cwd, a[0], libc::AT_REMOVEDIR as u64)?,
        libc::SYS_unlinkat => remove("unlinkat", dir_of(a[0]), a[1], a[2])?,
        libc::SYS_rename => new_name("rename", false, [cwd, a[0], cwd, a[1]], 0)?,
        libc::SYS_link => new_name("link", true, [cwd, a[0], cwd, a[1]], 0)?,
        // renameat has no flags argument: whatever is in the register is not one.
        libc::SYS_renameat => new_name("renameat", false, [a[0], a[1], a[2], a[3]], 0)?,
        libc::SYS_renameat2 => new_name("renameat2", false, [a[0], a[1], a[2], a[3]], a[4])?,
        libc::SYS_linkat => new_name("linkat", true, [a[0], a[1], a[2], a[3]], a[4])?,
        libc::SYS_chmod => chmod("chmod", Dir::Cwd, Some(a[0]), a[1], 0)?,
        libc::SYS_fchmod => chmod("fchmod", Dir::Fd(a[0] as i32), None, a[1], 0)?,
        libc::SYS_fchmodat => chmod("fchmodat", dir_of(a[0]), Some(a[1]), a[2], 0)?,
        SYS_FCHMODAT2 => chmod("fchmodat2", dir_of(a[0]), Some(a[1]), a[2], a[3])?,
        libc::SYS_truncate => Call::Truncate(TruncateCall {
            syscall: "truncate",
            path: path_at(mem, a[0])?,
            length: a[1],
        }),
        _ => match hardening_name(n.nr) {
            Some(syscall) => Call::Hardening(HardeningCall { syscall }),
            None => Call::Other { nr: n.nr },
        },
    };
    Ok(call)
}

/// The destination of a `struct msghdr` (msg_name, msg_namelen), if it names one.
fn msghdr_dest(mem: &TaskMemory, addr: u64) -> Result<Option<SocketAddr>, DecodeError> {
    let h = mem.read_exact(addr, 16)?;
    let name = u64::from_ne_bytes(h[0..8].try_into().unwrap());
    let len = u32::from_ne_bytes(h[8..12].try_into().unwrap());
    if name == 0 {
        return Ok(None);
    }
    read_sockaddr(mem, name, u64::from(len))
}

/// IPv4 and IPv6 addresses; other families (unix, netlink) decode to `None`.
fn read_sockaddr(mem: &TaskMemory, addr: u64, len: u64) -> Result<Option<SocketAddr>, DecodeError> {
    if len < 2 {
        return Ok(None);
    }
    let len = (len as usize).min(128);
    let b = mem.read_exact(addr, len)?;
    let family = u16::from_ne_bytes([b[0], b[1]]);
    let port = |b: &[u8]| u16::from_be_bytes([b[2], b[3]]);
    Ok(match i32::from(family) {
        libc::AF_INET if b.len() >= 8 => Some(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(b[4], b[5], b[6], b[7])),
            port(&b),
        )),
        libc::AF_INET6 if b.len() >= 24 => {
            let octets: [u8; 16] = b[8..24].try_into().unwrap();
            Some(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(octets)),
                port(&b),
            ))
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notif(nr: i64, args: [u64; 6]) -> Notification {
        Notification {
            id: 1,
            pid: std::process::id(),
            nr: nr as i32,
            arch: AUDIT_ARCH_X86_64,
            args,
        }
    }

    #[test]
    fn decodes_openat_with_a_dirfd() {
        let p = c"etc/passwd";
        let mem = TaskMemory::open(std::process::id()).unwrap();
        let call = decode(
            &notif(libc::SYS_openat, [5, p.as_ptr() as u64, 0o2000000, 0, 0, 0]),
            &mem,
        )
        .unwrap();
        assert_eq!(
            call,
            Call::Open(OpenCall {
                syscall: "openat",
                dir: Dir::Fd(5),
                path: "etc/passwd".into(),
                flags: 0o2000000,
                mode: 0,
                resolve: 0
            })
        );
    }

    #[test]
    fn decodes_openat2_open_how() {
        let p = c"/etc/passwd";
        let how: [u64; 3] = [libc::O_RDONLY as u64, 0, 0x10];
        let mem = TaskMemory::open(std::process::id()).unwrap();
        let n = notif(
            libc::SYS_openat2,
            [
                libc::AT_FDCWD as u64,
                p.as_ptr() as u64,
                how.as_ptr() as u64,
                24,
                0,
                0,
            ],
        );
        match decode(&n, &mem).unwrap() {
            Call::Open(OpenCall { dir, resolve, .. }) => {
                assert_eq!(dir, Dir::Cwd);
                assert_eq!(resolve, 0x10);
            }
            other => panic!("decoded as {other:?}"),
        }
        let bad = notif(
            libc::SYS_openat2,
            [
                libc::AT_FDCWD as u64,
                p.as_ptr() as u64,
                how.as_ptr() as u64,
                32,
                0,
                0,
            ],
        );
        assert!(matches!(
            decode(&bad, &mem),
            Err(DecodeError::OpenHowSize(32))
        ));
    }

    #[test]
    fn decodes_connect_addresses() {
        let mem = TaskMemory::open(std::process::id()).unwrap();
        let mut sin = [0u8; 16];
        sin[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        sin[2..4].copy_from_slice(&443u16.to_be_bytes());
        sin[4..8].copy_from_slice(&[10, 1, 2, 3]);
        let call = decode(
            &notif(libc::SYS_connect, [3, sin.as_ptr() as u64, 16, 0, 0, 0]),
            &mem,
        )
        .unwrap();
        assert_eq!(
            call,
            Call::Connect(ConnectCall {
                syscall: "connect",
                fd: 3,
                addrs: vec!["10.1.2.3:443".parse().unwrap()]
            })
        );
    }

    #[test]
    fn decodes_every_destination_of_sendmmsg() {
        let mem = TaskMemory::open(std::process::id()).unwrap();
        let sin = |last: u8| {
            let mut s = [0u8; 16];
            s[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
            s[2..4].copy_from_slice(&53u16.to_be_bytes());
            s[4..8].copy_from_slice(&[10, 0, 0, last]);
            s
        };
        let (a, b) = (sin(1), sin(2));
        let mut msgs: [libc::mmsghdr; 3] = crate::sys::testing::zeroed_mmsghdrs();
        msgs[0].msg_hdr.msg_name = a.as_ptr() as *mut _;
        msgs[0].msg_hdr.msg_namelen = 16;
        msgs[2].msg_hdr.msg_name = b.as_ptr() as *mut _;
        msgs[2].msg_hdr.msg_namelen = 16;
        assert_eq!(std::mem::size_of::<libc::mmsghdr>() as u64, MMSGHDR_SIZE);
        let call = decode(
            &notif(libc::SYS_sendmmsg, [4, msgs.as_ptr() as u64, 3, 0, 0, 0]),
            &mem,
        )
        .unwrap();
        assert_eq!(
            call,
            Call::Connect(ConnectCall {
                syscall: "sendmmsg",
                fd: 4,
                addrs: vec![
                    "10.0.0.1:53".parse().unwrap(),
                    "10.0.0.2:53".parse().unwrap()
                ]
            })
        );
    }

    #[test]
    fn decodes_renames_and_links() {
        let (old, new) = (c"a/b", c"/c");
        let mem = TaskMemory::open(std::process::id()).unwrap();
        let call = decode(
            &notif(
                libc::SYS_linkat,
                [
                    7,
                    old.as_ptr() as u64,
                    libc::AT_FDCWD as u64,
                    new.as_ptr() as u64,
                    0x400,
                    0,
                ],
            ),
            &mem,
        )
        .unwrap();
        assert_eq!(
            call,
            Call::NewName(NewNameCall {
                syscall: "linkat",
                hard_link: true,
                old_dir: Dir::Fd(7),
                old: "a/b".into(),
                new_dir: Dir::Cwd,
                new: "/c".into(),
                flags: 0x400
            })
        );
        // renameat has no flags argument: whatever is in the register is not one.
        let call = decode(
            &notif(
                libc::SYS_renameat,
                [7, old.as_ptr() as u64, 8, new.as_ptr() as u64, 0xdead, 0],
            ),
            &mem,
        )
        .unwrap();
        assert!(matches!(
            call,
            Call::NewName(NewNameCall {
                hard_link: false,
                flags: 0,
                ..
            })
        ));
    }

    #[test]
    fn foreign_arch_is_refused() {
        let mem = TaskMemory::open(std::process::id()).unwrap();
        let mut n = notif(libc::SYS_openat, [0; 6]);
        n.arch = 0x4000_0003; // i386
        assert!(matches!(decode(&n, &mem), Err(DecodeError::Arch(_))));
    }

    #[test]
    fn every_hardenable_syscall_is_known_or_absent_on_x86_64() {
        let absent = [
            "create_module",
            "get_kernel_syms",
            "query_module",
            "stime",
            "umount",
            "vm86",
            "vm86old",
        ];
        for name in rampart_policy::HARDENABLE_SYSCALLS {
            let known = HARDENABLE.iter().any(|(_, n)| n == name);
            assert!(known ^ absent.contains(name), "{name}");
        }
        assert_eq!(hardening_name(libc::SYS_bpf as i32), Some("bpf"));
        assert_eq!(hardening_name(libc::SYS_getpid as i32), None);
    }

    #[test]
    fn every_call_carries_its_real_syscall_name() {
        let mem = TaskMemory::open(std::process::id()).unwrap();
        let p = c"/tmp/x".as_ptr() as u64;
        let how: [u64; 3] = [0, 0, 0];
        let mut sin = [0u8; 16];
        sin[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        let sin = sin.as_ptr() as u64;
        let msgs: [libc::mmsghdr; 1] = crate::sys::testing::zeroed_mmsghdrs();
        let msgs = msgs.as_ptr() as u64;
        let cwd = libc::AT_FDCWD as u64;
        let cases: &[(i64, [u64; 6], &str)] = &[
            (libc::SYS_open, [p, 0, 0, 0, 0, 0], "open"),
            (libc::SYS_creat, [p, 0, 0, 0, 0, 0], "creat"),
            (libc::SYS_openat, [cwd, p, 0, 0, 0, 0], "openat"),
            (
                libc::SYS_openat2,
                [cwd, p, how.as_ptr() as u64, 24, 0, 0],
                "openat2",
            ),
            (libc::SYS_execve, [p, 0, 0, 0, 0, 0], "execve"),
            (libc::SYS_execveat, [cwd, p, 0, 0, 0, 0], "execveat"),
            (libc::SYS_connect, [3, sin, 16, 0, 0, 0], "connect"),
            (libc::SYS_sendto, [3, 0, 0, 0, 0, 0], "sendto"),
            (libc::SYS_sendmsg, [3, msgs, 0, 0, 0, 0], "sendmsg"),
            (libc::SYS_sendmmsg, [3, msgs, 1, 0, 0, 0], "sendmmsg"),
            (libc::SYS_unlink, [p, 0, 0, 0, 0, 0], "unlink"),
            (libc::SYS_unlinkat, [cwd, p, 0, 0, 0, 0], "unlinkat"),
            (libc::SYS_rmdir, [p, 0, 0, 0, 0, 0], "rmdir"),
            (libc::SYS_rename, [p, p, 0, 0, 0, 0], "rename"),
            (libc::SYS_renameat, [cwd, p, cwd, p, 0, 0], "renameat"),
            (libc::SYS_renameat2, [cwd, p, cwd, p, 0, 0], "renameat2"),
            (libc::SYS_link, [p, p, 0, 0, 0, 0], "link"),
            (libc::SYS_linkat, [cwd, p, cwd, p, 0, 0], "linkat"),
            (libc::SYS_chmod, [p, 0, 0, 0, 0, 0], "chmod"),
            (libc::SYS_fchmod, [3, 0, 0, 0, 0, 0], "fchmod"),
            (libc::SYS_fchmodat, [cwd, p, 0, 0, 0, 0], "fchmodat"),
            (SYS_FCHMODAT2, [cwd, p, 0, 0, 0, 0], "fchmodat2"),
            (libc::SYS_truncate, [p, 0, 0, 0, 0, 0], "truncate"),
            (libc::SYS_ptrace, [0; 6], "ptrace"),
        ];
        for (nr, args, name) in cases {
            let call = decode(&notif(*nr, *args), &mem).unwrap();
            assert_eq!(call.syscall(), *name, "{call:?}");
        }
        assert_eq!(
            decode(&notif(libc::SYS_getpid, [0; 6]), &mem).unwrap(),
            Call::Other {
                nr: libc::SYS_getpid as i32
            }
        );
    }
}
