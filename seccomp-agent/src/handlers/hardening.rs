//! Hardening syscalls a policy audits instead of denying (`action: alert`): the filter sends
//! them here, the agent reports them and lets them run. Their decision depends only on the
//! syscall's number, never on user memory, so CONTINUE is safe. (Denied ones never get here:
//! the filter refuses them in the kernel.)

use rampart_policy::{EventType, Operation, WorkloadView};

use crate::container::task::exe_path;
use crate::outcome::Answer;
use crate::outcome::{Outcome, Subject, outcome};
use crate::workload::Workload;

/// x86_64 numbers of the syscalls a policy may harden. `create_module`, `get_kernel_syms`, `query_module`, `stime`, `umount`, `vm86`, `vm86old` do not exist on
/// x86_64 (a filter naming them matches nothing here).
const NAMES: &[(i64, &str)] = &[
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
pub fn name_of(nr: i32) -> Option<&'static str> {
    NAMES
        .iter()
        .find(|(n, _)| *n == i64::from(nr))
        .map(|(_, name)| *name)
}

pub fn handle<'v>(
    w: &Workload,
    view: &'v WorkloadView,
    pid: u32,
    name: &'static str,
) -> Outcome<'v> {
    let op = Operation::Syscall { name };
    let subject = Subject {
        event_type: EventType::Syscall,
        syscall: name,
        process: exe_path(pid),
        path: String::new(),
        remote: String::new(),
    };
    outcome(view.decide(&op), w, &op, subject, libc::EPERM, || {
        Answer::Continue
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let known = NAMES.iter().any(|(_, n)| n == name);
            assert!(known ^ absent.contains(name), "{name}");
        }
        assert_eq!(name_of(libc::SYS_bpf as i32), Some("bpf"));
        assert_eq!(name_of(libc::SYS_getpid as i32), None);
    }
}
