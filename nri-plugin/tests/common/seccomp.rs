//! Test support for the seccomp adjustment, shared by `tests/seccomp_policy.rs` and
//! `tests/fake_runtime.rs`: an input profile and a way to look into a result. Each test states
//! its own expectations.

use rampart_protos::nri::{LinuxSeccomp, LinuxSeccompArg, LinuxSyscall, OptionalUInt32};

/// The actions of the rules in `p` that name `syscall`, in order.
pub fn actions(p: &LinuxSeccomp, syscall: &str) -> Vec<String> {
    p.syscalls
        .iter()
        .filter(|s| s.names.iter().any(|n| n == syscall))
        .map(|s| s.action.clone())
        .collect()
}

/// A RuntimeDefault-like profile, as a runtime that resolves it would send in
/// `Container.linux.seccomp_policy`: errno by default, an allow list (read, write, openat,
/// execve), one rule with arguments (personality(8)).
pub fn runtime_default_like() -> LinuxSeccomp {
    LinuxSeccomp {
        default_action: "SCMP_ACT_ERRNO".into(),
        default_errno: Some(OptionalUInt32 { value: 1 }),
        architectures: vec!["SCMP_ARCH_X86_64".into()],
        syscalls: vec![
            LinuxSyscall {
                names: vec![
                    "read".into(),
                    "write".into(),
                    "openat".into(),
                    "execve".into(),
                ],
                action: "SCMP_ACT_ALLOW".into(),
                ..Default::default()
            },
            LinuxSyscall {
                names: vec!["personality".into()],
                action: "SCMP_ACT_ALLOW".into(),
                args: vec![LinuxSeccompArg {
                    index: 0,
                    value: 8,
                    value_two: 0,
                    op: "SCMP_CMP_EQ".into(),
                }],
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}
