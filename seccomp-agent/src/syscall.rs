//! Decoding a notification into the call it stands for, with its pointer arguments copied out of
//! the task once (see `memory`). Everything rampart notifies on is listed here; anything else is
//! `Other`, which the caller must still answer.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::ffi::OsStringExt;

use crate::container::memory::{MemoryError, PATH_MAX, TaskMemory};
use crate::sys::notify::Notification;

/// AUDIT_ARCH_X86_64: the filter only notifies native calls (runc's profile lists the arches it
/// allows; 32-bit calls have other numbers and are refused, not decoded).
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

/// Where a relative path starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Cwd,
    Fd(i32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// open, creat, openat, openat2 (creat is open with O_CREAT|O_WRONLY|O_TRUNC).
    Open {
        dir: Dir,
        path: OsString,
        flags: u64,
        mode: u64,
        /// openat2's RESOLVE_* flags; 0 for the others.
        resolve: u64,
    },
    /// execve, execveat. `path` empty with AT_EMPTY_PATH means "the file open as dir" (fexecve).
    Exec {
        dir: Dir,
        path: OsString,
        flags: u64,
    },
    /// connect, and sendto/sendmsg/sendmmsg with destination addresses (IPv4/IPv6 only; none
    /// for a connected socket or another family).
    Connect {
        syscall: &'static str,
        fd: i32,
        addrs: Vec<SocketAddr>,
    },
    /// unlink, unlinkat, rmdir. `flags` holds AT_REMOVEDIR for rmdir.
    Remove {
        dir: Dir,
        path: OsString,
        flags: u64,
    },
    /// rename, renameat, renameat2 (`hard_link` false), link, linkat (true). `flags` are
    /// renameat2's RENAME_* or linkat's AT_SYMLINK_FOLLOW/AT_EMPTY_PATH.
    NewName {
        hard_link: bool,
        old_dir: Dir,
        old: OsString,
        new_dir: Dir,
        new: OsString,
        flags: u64,
    },
    /// chmod, fchmodat, fchmodat2 (`path` set) and fchmod (`path` None: `dir` is the file).
    Chmod {
        dir: Dir,
        path: Option<OsString>,
        mode: u64,
        flags: u64,
    },
    /// truncate(path, length).
    Truncate {
        path: OsString,
        length: u64,
    },
    Other {
        nr: i32,
    },
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
    let call = match i64::from(n.nr) {
        libc::SYS_open => Call::Open {
            dir: Dir::Cwd,
            path: path_at(mem, a[0])?,
            flags: a[1],
            mode: a[2],
            resolve: 0,
        },
        libc::SYS_creat => Call::Open {
            dir: Dir::Cwd,
            path: path_at(mem, a[0])?,
            flags: (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64,
            mode: a[1],
            resolve: 0,
        },
        libc::SYS_openat => Call::Open {
            dir: dir_of(a[0]),
            path: path_at(mem, a[1])?,
            flags: a[2],
            mode: a[3],
            resolve: 0,
        },
        libc::SYS_openat2 => {
            if a[3] != 24 {
                return Err(DecodeError::OpenHowSize(a[3]));
            }
            let how = mem.read_exact(a[2], 24)?;
            let word = |i: usize| u64::from_ne_bytes(how[i * 8..i * 8 + 8].try_into().unwrap());
            Call::Open {
                dir: dir_of(a[0]),
                path: path_at(mem, a[1])?,
                flags: word(0),
                mode: word(1),
                resolve: word(2),
            }
        }
        libc::SYS_execve => Call::Exec {
            dir: Dir::Cwd,
            path: path_at(mem, a[0])?,
            flags: 0,
        },
        libc::SYS_execveat => Call::Exec {
            dir: dir_of(a[0]),
            path: path_at(mem, a[1])?,
            flags: a[4],
        },
        libc::SYS_connect => Call::Connect {
            syscall: "connect",
            fd: a[0] as i32,
            addrs: read_sockaddr(mem, a[1], a[2])?.into_iter().collect(),
        },
        libc::SYS_sendto => Call::Connect {
            syscall: "sendto",
            fd: a[0] as i32,
            addrs: if a[4] == 0 {
                Vec::new()
            } else {
                read_sockaddr(mem, a[4], a[5])?.into_iter().collect()
            },
        },
        libc::SYS_sendmsg => Call::Connect {
            syscall: "sendmsg",
            fd: a[0] as i32,
            addrs: msghdr_dest(mem, a[1])?.into_iter().collect(),
        },
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
            Call::Connect {
                syscall: "sendmmsg",
                fd: a[0] as i32,
                addrs,
            }
        }
        libc::SYS_unlink => Call::Remove {
            dir: Dir::Cwd,
            path: path_at(mem, a[0])?,
            flags: 0,
        },
        libc::SYS_rmdir => Call::Remove {
            dir: Dir::Cwd,
            path: path_at(mem, a[0])?,
            flags: libc::AT_REMOVEDIR as u64,
        },
        libc::SYS_unlinkat => Call::Remove {
            dir: dir_of(a[0]),
            path: path_at(mem, a[1])?,
            flags: a[2],
        },
        libc::SYS_rename | libc::SYS_link => Call::NewName {
            hard_link: i64::from(n.nr) == libc::SYS_link,
            old_dir: Dir::Cwd,
            old: path_at(mem, a[0])?,
            new_dir: Dir::Cwd,
            new: path_at(mem, a[1])?,
            flags: 0,
        },
        libc::SYS_renameat | libc::SYS_renameat2 | libc::SYS_linkat => Call::NewName {
            hard_link: i64::from(n.nr) == libc::SYS_linkat,
            old_dir: dir_of(a[0]),
            old: path_at(mem, a[1])?,
            new_dir: dir_of(a[2]),
            new: path_at(mem, a[3])?,
            flags: if i64::from(n.nr) == libc::SYS_renameat {
                0
            } else {
                a[4]
            },
        },
        libc::SYS_chmod => Call::Chmod {
            dir: Dir::Cwd,
            path: Some(path_at(mem, a[0])?),
            mode: a[1],
            flags: 0,
        },
        libc::SYS_fchmod => Call::Chmod {
            dir: Dir::Fd(a[0] as i32),
            path: None,
            mode: a[1],
            flags: 0,
        },
        libc::SYS_fchmodat | SYS_FCHMODAT2 => Call::Chmod {
            dir: dir_of(a[0]),
            path: Some(path_at(mem, a[1])?),
            mode: a[2],
            flags: if i64::from(n.nr) == SYS_FCHMODAT2 {
                a[3]
            } else {
                0
            },
        },
        libc::SYS_truncate => Call::Truncate {
            path: path_at(mem, a[0])?,
            length: a[1],
        },
        _ => Call::Other { nr: n.nr },
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
            Call::Open {
                dir: Dir::Fd(5),
                path: "etc/passwd".into(),
                flags: 0o2000000,
                mode: 0,
                resolve: 0
            }
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
            Call::Open { dir, resolve, .. } => {
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
            Call::Connect {
                syscall: "connect",
                fd: 3,
                addrs: vec!["10.1.2.3:443".parse().unwrap()]
            }
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
            Call::Connect {
                syscall: "sendmmsg",
                fd: 4,
                addrs: vec![
                    "10.0.0.1:53".parse().unwrap(),
                    "10.0.0.2:53".parse().unwrap()
                ]
            }
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
            Call::NewName {
                hard_link: true,
                old_dir: Dir::Fd(7),
                old: "a/b".into(),
                new_dir: Dir::Cwd,
                new: "/c".into(),
                flags: 0x400
            }
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
            Call::NewName {
                hard_link: false,
                flags: 0,
                ..
            }
        ));
    }

    #[test]
    fn foreign_arch_is_refused() {
        let mem = TaskMemory::open(std::process::id()).unwrap();
        let mut n = notif(libc::SYS_openat, [0; 6]);
        n.arch = 0x4000_0003; // i386
        assert!(matches!(decode(&n, &mem), Err(DecodeError::Arch(_))));
    }
}
