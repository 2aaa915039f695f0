//! Writing a sysctl that the kernel keeps per pid namespace (vm.memfd_noexec): the value that
//! counts is the one of the writer's own pid namespace, so the write has to come from a process
//! inside the container's. setns(CLONE_NEWPID) moves only the caller's future children there,
//! hence a child that joins and a grandchild that writes; both only make raw syscalls (what a
//! fork of a multi-threaded process may do) on data prepared before the fork. The grandchild is
//! a process of the container's for a moment: the child first closes every descriptor it
//! inherited (the agent's notify fds and fanotify groups) and makes itself undumpable, so that
//! nothing in the container can reach the agent's descriptors or memory through it.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Exit codes of the helper processes, each naming the step that failed.
const JOIN_FAILED: i32 = 10;
const FORK_FAILED: i32 = 11;
const OPEN_FAILED: i32 = 12;
const WRITE_FAILED: i32 = 13;
const WAIT_FAILED: i32 = 14;
const ISOLATE_FAILED: i32 = 15;

/// Writes `value` to the sysctl file `path` (under /proc/sys) as the pid namespace `pid_ns` (an
/// open /proc/PID/ns/pid) sees it.
pub fn write_in(pid_ns: BorrowedFd<'_>, path: &CStr, value: &[u8]) -> io::Result<()> {
    let ns = pid_ns.as_raw_fd();
    // SAFETY: fork duplicates this process; the child runs only `join_and_write`, which makes raw
    // syscalls on memory prepared before the fork (path, value) and leaves with _exit, never
    // returning into Rust code that could take a lock another thread held at the fork.
    let child = unsafe { libc::fork() };
    match child {
        -1 => Err(io::Error::last_os_error()),
        0 => join_and_write(ns, path, value),
        pid => match wait(pid)? {
            0 => Ok(()),
            JOIN_FAILED => Err(failed("joining the pid namespace")),
            FORK_FAILED => Err(failed("forking inside the pid namespace")),
            OPEN_FAILED => Err(failed("opening the sysctl")),
            WRITE_FAILED => Err(failed("writing the sysctl")),
            ISOLATE_FAILED => Err(failed("closing the inherited descriptors")),
            code => Err(failed(&format!("the helper exited with {code}"))),
        },
    }
}

fn failed(step: &str) -> io::Error {
    io::Error::other(format!("{step} failed in the helper process"))
}

/// In the forked child: never returns.
fn join_and_write(ns: i32, path: &CStr, value: &[u8]) -> ! {
    // SAFETY: raw syscalls only (see `write_in`); every pointer is to memory that outlives them.
    unsafe {
        if libc::setns(ns, libc::CLONE_NEWPID) != 0 {
            libc::_exit(JOIN_FAILED);
        }
        if libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32) != 0
            || libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) != 0
        {
            libc::_exit(ISOLATE_FAILED);
        }
        match libc::fork() {
            -1 => libc::_exit(FORK_FAILED),
            0 => {
                let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    libc::_exit(OPEN_FAILED);
                }
                let n = libc::write(fd, value.as_ptr().cast(), value.len());
                libc::_exit(if n == value.len() as isize {
                    0
                } else {
                    WRITE_FAILED
                });
            }
            pid => {
                let mut status = 0;
                if libc::waitpid(pid, &mut status, 0) != pid || !libc::WIFEXITED(status) {
                    libc::_exit(WAIT_FAILED);
                }
                libc::_exit(libc::WEXITSTATUS(status));
            }
        }
    }
}

fn wait(pid: libc::pid_t) -> io::Result<i32> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes only the status integer we pass.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    if libc::WIFEXITED(status) {
        Ok(libc::WEXITSTATUS(status))
    } else {
        Err(io::Error::other("the sysctl helper process was killed"))
    }
}
