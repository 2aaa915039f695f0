//! What this agent enforces with on this node, and why not where it doesn't: said to rampartd in
//! every Hello, and shown by `rampartctl status`. Each entry is what the agent found when it
//! started (a kernel feature, a flag, a start-up error), never what it assumes.

use rampart_audit::LsmSupport;
use rampart_protos::agent::{EXEC_GUARD_ENFORCER, Mechanism};

use crate::dispatcher::GUARD_ENFORCER;
use crate::outcome::ENFORCER;

pub const EGRESS: &str = "cgroup-egress";
pub const BPF_LSM: &str = "bpf-lsm";

/// What starting each part gave: Ok, or why it is not in use.
#[derive(Debug, Clone)]
pub struct Found {
    pub file_guard: Result<(), String>,
    pub exec_guard: Result<(), String>,
    pub egress_guard: Result<(), String>,
    pub lsm: LsmSupport,
}

/// Every mechanism, in use or not.
pub fn list(found: &Found) -> Vec<Mechanism> {
    let entry = |name: &str, state: &Result<(), String>, what: &str| Mechanism {
        name: name.to_owned(),
        in_use: state.is_ok(),
        detail: match state {
            Ok(()) => what.to_owned(),
            Err(why) => why.clone(),
        },
    };
    vec![
        entry(
            ENFORCER,
            &Ok(()),
            "the syscalls each protected container's filter notifies: writes, creates, renames, \
             removals, chmod, connects and sends, and the execs the file guard does not decide alone",
        ),
        entry(
            GUARD_ENFORCER,
            &found.file_guard,
            "read-only opens and exec opens, on the file the kernel opens (fanotify permission \
             events); allows remembered in the kernel",
        ),
        entry(
            EXEC_GUARD_ENFORCER,
            &found.exec_guard,
            "every exec of containers whose exec rules all refuse, with no execve in their \
             filters; memfds there non-executable",
        ),
        entry(
            EGRESS,
            &found.egress_guard,
            "allowed connects and sends, checked again on the address the kernel uses (cgroup \
             sock_addr programs)",
        ),
        Mechanism {
            name: BPF_LSM.to_owned(),
            in_use: false,
            detail: match &found.lsm {
                LsmSupport::Available => {
                    "available on this kernel, not used yet: the mechanisms above decide".into()
                }
                LsmSupport::Unavailable(why) => why.clone(),
            },
        },
    ]
}

/// The names of those in use: Hello's `enforcers`.
pub fn enforcers(mechanisms: &[Mechanism]) -> Vec<String> {
    mechanisms
        .iter()
        .filter(|m| m.in_use)
        .map(|m| m.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_not_in_use_says_why() {
        let found = Found {
            file_guard: Ok(()),
            exec_guard: Err("--exec-by-seccomp given".into()),
            egress_guard: Ok(()),
            lsm: LsmSupport::Unavailable("the kernel refused".into()),
        };
        let all = list(&found);
        let by = |n: &str| all.iter().find(|m| m.name == n).unwrap();
        assert!(by(ENFORCER).in_use && by(GUARD_ENFORCER).in_use && by(EGRESS).in_use);
        assert!(!by(EXEC_GUARD_ENFORCER).in_use);
        assert_eq!(by(EXEC_GUARD_ENFORCER).detail, "--exec-by-seccomp given");
        assert!(!by(BPF_LSM).in_use && by(BPF_LSM).detail == "the kernel refused");
        assert_eq!(enforcers(&all), [ENFORCER, GUARD_ENFORCER, EGRESS]);
    }
}
