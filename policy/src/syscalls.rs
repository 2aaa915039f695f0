//! Syscall names: the ones `hardening` may deny, and the ones each rule kind needs the
//! seccomp filter to send to the agent.

use std::collections::BTreeSet;

/// Syscalls a workload can be denied outright. Names as in `<asm/unistd.h>` on x86_64/arm64;
/// a name not here is refused so a typo cannot leave a hole that looks closed.
pub const HARDENABLE: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "chroot",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "fanotify_init",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "memfd_create",
    "memfd_secret",
    "migrate_pages",
    "mount",
    "mount_setattr",
    "move_mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "personality",
    "pidfd_getfd",
    "pivot_root",
    "process_madvise",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "quotactl_fd",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setdomainname",
    "sethostname",
    "setns",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "sysfs",
    "syslog",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vhangup",
    "vm86",
    "vm86old",
];

pub(crate) const FILE_OPEN: &[&str] = &["open", "openat", "openat2", "creat"];
/// Writing without an open.
pub(crate) const FILE_TRUNCATE: &[&str] = &["truncate"];
pub(crate) const FILE_DELETE: &[&str] = &["unlink", "unlinkat", "rmdir"];
pub(crate) const FILE_CHMOD: &[&str] = &["chmod", "fchmod", "fchmodat", "fchmodat2"];
/// New names for existing content: a guarded file moved or linked elsewhere would leave its
/// rules behind, so any file rule needs these decided (see `WorkloadView::decide_move`).
pub(crate) const FILE_RENAME_LINK: &[&str] = &["rename", "renameat", "renameat2", "link", "linkat"];
/// Ways to reach files that no notified syscall sees: io_uring's operations (IORING_OP_OPENAT,
/// _RENAMEAT, _LINKAT, ...) never pass the seccomp filter, and open_by_handle_at opens by inode
/// without a path. A workload whose file syscalls are decided must not have them.
pub(crate) const FILE_SIDE_DOORS: &[&str] = &[
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "open_by_handle_at",
];
pub(crate) const EXEC: &[&str] = &["execve", "execveat"];
pub(crate) const EGRESS: &[&str] = &["connect", "sendto", "sendmsg", "sendmmsg"];

/// One thing the hardening baseline refuses, by the name `hardening.allow` lifts it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaselineGroup {
    pub name: &'static str,
    /// Refused with EPERM in the kernel.
    pub syscalls: &'static [&'static str],
    /// Also refuses clone and unshare with a namespace flag, and clone3 (whose flags the filter
    /// can't read).
    pub new_namespaces: bool,
}

/// What every enforcing policy refuses its workloads unless one of its policies allows it: the
/// ways to see the container's files under a path no rule names (a new mount, a bind mount, a
/// mount namespace of its own) and the user namespaces that grant the capabilities for them.
/// The runtime's default seccomp profile refuses the same to a container without CAP_SYS_ADMIN;
/// the baseline makes it hold for pods that run unconfined or with a profile of their own.
pub const BASELINE: &[BaselineGroup] = &[
    // unshare itself stays: only its namespace flags are refused (`new_namespaces`).
    BaselineGroup {
        name: "unshare",
        syscalls: &[],
        new_namespaces: true,
    },
    BaselineGroup {
        name: "setns",
        syscalls: &["setns"],
        new_namespaces: false,
    },
    BaselineGroup {
        name: "mount",
        syscalls: &[
            "mount",
            "umount",
            "umount2",
            "pivot_root",
            "open_tree",
            "move_mount",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "mount_setattr",
        ],
        new_namespaces: false,
    },
];

/// What the NRI plugin must put in a workload's seccomp filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeccompPlan {
    /// SCMP_ACT_NOTIFY: the agent decides each call.
    pub notify: BTreeSet<&'static str>,
    /// SCMP_ACT_ERRNO(EPERM): denied in the kernel, no agent involved.
    pub errno: BTreeSet<String>,
    /// clone with a namespace flag refused (EPERM), clone3 refused (ENOSYS): the baseline's
    /// "no new namespaces" (see [`BASELINE`]).
    pub deny_new_namespaces: bool,
    /// socket() of a raw IP or packet socket refused (EPERM): the workload has egress rules,
    /// which such sockets would pass unseen (no port, or no IP at all), and no allow rule lists
    /// `raw`.
    pub deny_raw_sockets: bool,
    /// Execs are notified, and every rule that needs them refuses (none only reports): what the
    /// file guard can decide without seccomp, see [`SeccompPlan::exec_to_file_guard`].
    pub execs_only_refused: bool,
}

impl SeccompPlan {
    pub fn is_empty(&self) -> bool {
        self.notify.is_empty() && self.errno.is_empty()
    }

    /// Leaves execve to the file guard, which decides every exec on the file the kernel opens
    /// for it (fanotify), so that an allowed exec costs no round trip. Only where every exec
    /// rule refuses: the one exec the guard can't see, of a memfd by its /proc path, is then
    /// refused in the kernel (memfds made non-executable), and an audit rule would have had it
    /// reported instead. execveat stays notified: it is how fexecve runs a memfd, and it keeps
    /// the filter's listener for the container. True if execve was taken out.
    pub fn exec_to_file_guard(&mut self) -> bool {
        if !self.execs_only_refused || !self.notify.contains("execve") {
            return false;
        }
        self.notify.remove("execve");
        true
    }
}
