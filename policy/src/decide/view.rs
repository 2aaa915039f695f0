//! Building a [`WorkloadView`]: the rules of the policies that select a workload, flattened into
//! one matcher per kind (paths, executables, network, integrity).

use std::sync::Arc;

use super::{Entry, NetEntry, WorkloadView, moves};
use crate::compile::{CompiledPolicy, ProcessMatcher, Verdict};
use crate::glob::{PathIndex, PathSet};
use crate::model::Mode;

impl WorkloadView {
    pub(super) fn build(all: Vec<Arc<CompiledPolicy>>) -> WorkloadView {
        let learning = all.iter().any(|p| p.mode == Mode::Learn);
        // Learn-mode policies only record; they take no part in decisions.
        let policies: Vec<Arc<CompiledPolicy>> =
            all.into_iter().filter(|p| p.mode != Mode::Learn).collect();
        let mut files = Vec::new();
        let mut file_entries = Vec::new();
        let mut exec = Vec::new();
        let mut exec_entries = Vec::new();
        let mut allow_only = Vec::new();
        let mut pinned = Vec::new();
        let mut integrity = Vec::new();
        let mut integrity_entries = Vec::new();
        let mut network = Vec::new();
        let mut file_scopes = Vec::new();
        let mut integrity_scopes = Vec::new();
        let owner = |v: &Vec<Entry>| u32::try_from(v.len()).unwrap_or(u32::MAX);
        for (pi, p) in policies.iter().enumerate() {
            let pi = u32::try_from(pi).unwrap_or(u32::MAX);
            let entry = |rule: u32, access: u8, processes: &Option<Arc<PathSet>>| {
                let meta = &p.rules[rule as usize];
                Entry {
                    policy: pi,
                    rule,
                    verdict: meta.verdict,
                    severity: meta.severity,
                    access,
                    processes: processes.clone(),
                    users: None,
                }
            };
            // The executables an allowance names: writing over one, or renaming something onto
            // it, would hand its allowance to other code.
            let pin = |rule: u32| {
                let mut e = entry(rule, u8::MAX, &None);
                e.verdict = if p.mode == Mode::Audit {
                    Verdict::Alert
                } else {
                    Verdict::Block
                };
                e
            };
            for m in &p.files {
                if let Some(procs) = &m.processes
                    && p.rules[m.rule as usize].verdict == Verdict::Allow
                {
                    pinned.push((pin(m.rule), procs.clone()));
                }
                let o = owner(&file_entries);
                file_entries.push(Entry {
                    users: m.users.clone(),
                    ..entry(m.rule, m.access, &m.processes)
                });
                files.extend(m.paths.iter().map(|g| (g.glob.clone(), o, g.specificity)));
                file_scopes.extend(m.paths.iter().map(|g| (moves::scope(g.glob.glob()), o)));
            }
            for m in &p.processes {
                match m {
                    ProcessMatcher::Listed { rule, paths } => {
                        if p.rules[*rule as usize].verdict == Verdict::Allow {
                            let set = PathSet::new(paths.iter().map(|g| &g.glob));
                            pinned.push((pin(*rule), Arc::new(set)));
                        }
                        let o = owner(&exec_entries);
                        exec_entries.push(entry(*rule, u8::MAX, &None));
                        exec.extend(paths.iter().map(|g| (g.glob.clone(), o, g.specificity)));
                    }
                    ProcessMatcher::AllowOnly { rule, allowed } => {
                        pinned.push((pin(*rule), allowed.clone()));
                        allow_only.push((entry(*rule, u8::MAX, &None), allowed.clone()));
                    }
                }
            }
            for m in &p.integrity {
                let o = owner(&integrity_entries);
                integrity_entries.push(entry(m.rule, u8::MAX, &m.except));
                integrity.extend(m.paths.iter().map(|g| (g.glob.clone(), o, g.specificity)));
                integrity_scopes.extend(m.paths.iter().map(|g| (moves::scope(g.glob.glob()), o)));
            }
            for m in &p.network {
                network.push(NetEntry {
                    entry: entry(m.rule, u8::MAX, &m.processes),
                    direction: m.direction,
                    cidrs: m.cidrs.clone().into(),
                    ports: m.ports.clone().into(),
                    tcp: m.tcp,
                    udp: m.udp,
                    raw: m.raw,
                });
            }
        }
        // Globs were checked when each policy was parsed, and a set of valid globs builds; the
        // fallback (match nothing) is unreachable in practice.
        let index = |g: &[(globset::Glob, u32, u32)]| {
            PathIndex::new(g).unwrap_or_else(|_| PathIndex::empty())
        };
        WorkloadView {
            files: index(&files),
            file_entries,
            exec: index(&exec),
            exec_entries,
            allow_only,
            pinned,
            network,
            integrity: index(&integrity),
            integrity_entries,
            file_scopes,
            integrity_scopes,
            policies,
            learning,
        }
    }

    /// Names of the policies that apply (learn-mode ones excluded).
    pub fn policy_names(&self) -> impl Iterator<Item = &str> {
        self.policies.iter().map(|p| p.name())
    }

    /// True if a learn-mode policy selects this workload: agents should record what it does.
    pub fn learning(&self) -> bool {
        self.learning
    }

    /// Whether nothing applies: agents may skip this workload entirely.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }
}
