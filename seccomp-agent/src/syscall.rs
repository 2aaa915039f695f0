//! Decoding a notification into the call it stands for, with its pointer arguments copied out of
//! the task once (see `memory`). Everything rampart notifies on is listed here; anything else is
//! `Other`, which the caller must still answer.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::ffi::OsStringExt;

use crate::memory::{MemoryError, PATH_MAX, TaskMemory};
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
    /// connect, and sendto/sendmsg with a destination address.
    Connect {
        fd: i32,
        addr: Option<SocketAddr>,
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
            fd: a[0] as i32,
            addr: read_sockaddr(mem, a[1], a[2])?,
        },
        libc::SYS_sendto => Call::Connect {
            fd: a[0] as i32,
            addr: if a[4] == 0 {
                None
            } else {
                read_sockaddr(mem, a[4], a[5])?
            },
        },
        _ => Call::Other { nr: n.nr },
    };
    Ok(call)
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
                fd: 3,
                addr: Some("10.1.2.3:443".parse().unwrap())
            }
        );
    }

    #[test]
    fn foreign_arch_is_refused() {
        let mem = TaskMemory::open(std::process::id()).unwrap();
        let mut n = notif(libc::SYS_openat, [0; 6]);
        n.arch = 0x4000_0003; // i386
        assert!(matches!(decode(&n, &mem), Err(DecodeError::Arch(_))));
    }
}
