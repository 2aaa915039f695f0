//! Where a relative path the task names starts: decoded from a syscall's dirfd argument, resolved
//! inside the container.

/// Where a relative path starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Cwd,
    Fd(i32),
}
