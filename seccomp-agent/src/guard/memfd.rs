//! memfds made non-executable in a container whose execs the file guard decides. fanotify sees
//! no exec open of a memfd (it lives on no mount the guard marks), so `execve("/proc/self/fd/N")`
//! of one would run unchecked. vm.memfd_noexec = 2 in the container's pid namespace makes every
//! memfd sealed non-executable and refuses asking for an executable one (MFD_EXEC gets EACCES),
//! for the life of the namespace: it can only be raised, and the namespaces a container could
//! create inherit it (and the hardening baseline refuses new ones anyway).

use std::io;
use std::os::fd::AsFd;
use std::path::Path;

use crate::sys::pid_ns_sysctl;

const SYSCTL: &std::ffi::CStr = c"/proc/sys/vm/memfd_noexec";
/// MEMFD_NOEXEC_SCOPE_NOEXEC_ENFORCED.
const ENFORCED: &[u8] = b"2";

/// Whether this kernel has the sysctl (Linux 6.3).
pub fn available() -> bool {
    Path::new("/proc/sys/vm/memfd_noexec").exists()
}

/// Makes memfds non-executable in the pid namespace of task `tid`.
pub fn forbid_exec(tid: u32) -> io::Result<()> {
    let ns = std::fs::File::open(format!("/proc/{tid}/ns/pid"))?;
    pid_ns_sysctl::write_in(ns.as_fd(), SYSCTL, ENFORCED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    /// A process in a new pid namespace of its own gets non-executable memfds, and the agent's
    /// own namespace keeps its setting.
    #[test]
    fn memfds_in_the_namespace_cannot_be_made_executable() {
        if !nix::unistd::geteuid().is_root() || !available() {
            eprintln!("needs root and vm.memfd_noexec; skipped");
            return;
        }
        let before = std::fs::read_to_string("/proc/sys/vm/memfd_noexec").unwrap();
        // `unshare --pid --fork` gives a shell in a new pid namespace, which waits for stdin.
        let mut sh = std::process::Command::new("unshare")
            .args([
                "--pid",
                "--fork",
                "--",
                "sh",
                "-c",
                "read _; cat /proc/sys/vm/memfd_noexec",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        // The shell (unshare's child) is the one in the new namespace.
        let child = loop {
            let kids = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", sh.id()))
                .unwrap_or_default();
            if let Some(pid) = kids.split_whitespace().next() {
                break pid.parse::<u32>().unwrap();
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        forbid_exec(child).unwrap();
        use std::io::Write;
        sh.stdin.take().unwrap().write_all(b"\n").unwrap();
        let out = sh.wait_with_output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2");
        assert_eq!(
            std::fs::read_to_string("/proc/sys/vm/memfd_noexec").unwrap(),
            before
        );
    }
}
