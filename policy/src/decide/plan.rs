//! What a workload's seccomp filter needs, from the rules that apply to it.

use super::WorkloadView;
use crate::compile::{CompiledPolicy, ProcessMatcher, Verdict};
use crate::model::{Access, Direction, Mode};
use crate::syscalls::{self, BaselineGroup, SeccompPlan};

impl WorkloadView {
    /// What the seccomp filter of this workload needs: which syscalls go to the agent
    /// (SCMP_ACT_NOTIFY) and which fail with EPERM in the kernel. Audit-mode rules still need
    /// notification (to report); learn-mode policies add nothing (bpf-audit observes).
    pub fn seccomp_plan(&self) -> SeccompPlan {
        let mut plan = SeccompPlan::default();
        let mut exec_reports = false;
        let mut notify = |names: &[&'static str]| plan.notify.extend(names.iter().copied());
        for p in &self.policies {
            let active = |rule: u32| p.rules[rule as usize].verdict != Verdict::Allow;
            for m in p.files.iter().filter(|m| active(m.rule)) {
                let has = |a: Access| m.access & a.bit() != 0;
                if has(Access::Read) || has(Access::Write) || has(Access::Create) {
                    notify(syscalls::FILE_OPEN);
                }
                if has(Access::Write) {
                    notify(syscalls::FILE_TRUNCATE);
                }
                if has(Access::Delete) {
                    notify(syscalls::FILE_DELETE);
                }
                if has(Access::Chmod) {
                    notify(syscalls::FILE_CHMOD);
                }
                notify(syscalls::FILE_RENAME_LINK);
            }
            // Integrity rules decide every modification; so do the executables an allowance
            // names (see `pinned`), which may not be written over, replaced or removed.
            if !p.integrity.is_empty() || !self.pinned.is_empty() {
                notify(syscalls::FILE_OPEN);
                notify(syscalls::FILE_TRUNCATE);
                notify(syscalls::FILE_DELETE);
                notify(syscalls::FILE_CHMOD);
                notify(syscalls::FILE_RENAME_LINK);
            }
            let exec_rules = p.processes.iter().any(|m| match m {
                ProcessMatcher::Listed { rule, .. } | ProcessMatcher::AllowOnly { rule, .. } => {
                    active(*rule)
                }
            });
            if exec_rules || p.drift.is_some() {
                notify(syscalls::EXEC);
                let reports = |rule: u32| p.rules[rule as usize].verdict == Verdict::Alert;
                exec_reports |= p.drift.is_some_and(reports)
                    || p.processes.iter().any(|m| match m {
                        ProcessMatcher::Listed { rule, .. }
                        | ProcessMatcher::AllowOnly { rule, .. } => reports(*rule),
                    });
            }
            // Ingress is not notified: accept() and recv*() learn the peer only after the kernel
            // has done the call, too late for a seccomp decision. Ingress rules are for the
            // kernel auditor's cgroup programs (docs/enforcement.md).
            if p.network
                .iter()
                .any(|m| active(m.rule) && m.direction == Direction::Egress)
            {
                notify(syscalls::EGRESS);
            }
            if let Some((rule, names)) = &p.hardening {
                if p.rules[*rule as usize].verdict == Verdict::Block {
                    plan.errno.extend(names.iter().map(|s| (*s).to_owned()));
                } else {
                    notify(names);
                }
            }
        }
        if plan
            .notify
            .iter()
            .any(|s| syscalls::FILE_RENAME_LINK.contains(s) || syscalls::FILE_OPEN.contains(s))
        {
            plan.errno
                .extend(syscalls::FILE_SIDE_DOORS.iter().map(|s| (*s).to_owned()));
        }
        // io_uring's IORING_OP_CONNECT/SENDMSG never pass the filter either.
        if plan.notify.iter().any(|s| syscalls::EGRESS.contains(s)) {
            plan.errno.extend(
                syscalls::FILE_SIDE_DOORS
                    .iter()
                    .filter(|s| s.starts_with("io_uring"))
                    .map(|s| (*s).to_owned()),
            );
        }
        let egress = |p: &CompiledPolicy| {
            p.network.iter().any(|m| {
                p.rules[m.rule as usize].verdict != Verdict::Allow
                    && m.direction == Direction::Egress
            })
        };
        let raw_allowed = |p: &CompiledPolicy| {
            p.network
                .iter()
                .any(|m| p.rules[m.rule as usize].verdict == Verdict::Allow && m.raw_listed)
        };
        plan.deny_raw_sockets = self.policies.iter().any(|p| egress(p))
            && !self.policies.iter().any(|p| raw_allowed(p));
        // The baseline, unless a policy allows a part of it. Audit mode reports what it would
        // block and blocks nothing, so only enforcing policies refuse it.
        if self.policies.iter().any(|p| p.mode() == Mode::Enforce) {
            let allowed = |g: &BaselineGroup| {
                self.policies
                    .iter()
                    .any(|p| p.baseline_allow.contains(&g.name))
            };
            for g in syscalls::BASELINE.iter().filter(|g| !allowed(g)) {
                // A syscall a policy audits (`hardening` with `action: alert`) runs and is
                // reported: that policy asked to see it, not to refuse it.
                let audited = |s: &&&str| plan.notify.contains(**s);
                let refused: Vec<String> = g
                    .syscalls
                    .iter()
                    .filter(|s| !audited(s))
                    .map(|s| (*s).to_owned())
                    .collect();
                plan.errno.extend(refused);
                plan.deny_new_namespaces |= g.new_namespaces;
            }
        }
        // A syscall denied outright for one policy need not also be notified for another.
        let errno = plan.errno.clone();
        plan.notify.retain(|s| !errno.contains(*s));
        plan.execs_only_refused = !exec_reports && plan.notify.contains("execve");
        plan
    }
}
