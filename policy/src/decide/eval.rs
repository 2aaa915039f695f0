//! [`WorkloadView::decide`]: every rule matching an operation becomes a candidate, and the
//! combiner picks the one that names the decision.

use std::cell::RefCell;

use super::{Cand, Combiner, Decision, Entry, Matched, Operation, User, WorkloadView};
use crate::compile::Verdict;
use crate::model::Protocol;
use crate::paths::normalize;

thread_local! {
    // Scratch space reused across decisions on this thread, so deciding does not allocate.
    static SCRATCH: RefCell<(Vec<usize>, Combiner)> = RefCell::new((Vec::new(), Combiner::default()));
}

impl WorkloadView {
    pub fn decide<'v>(&'v self, op: &Operation<'_>) -> Decision<'v> {
        self.decide_as(op, None)
    }

    /// [`decide`](Self::decide) for an access by `user`. None (unknown): rules limited to
    /// users, allows included, don't match.
    pub fn decide_as<'v>(&'v self, op: &Operation<'_>, user: Option<&User<'_>>) -> Decision<'v> {
        let n = self.policies.len();
        let best = SCRATCH.with(|h| {
            // Only a re-entrant call could find it borrowed; fall back to fresh scratch.
            let Ok(mut guard) = h.try_borrow_mut() else {
                let mut comb = Combiner::default();
                comb.reset(n);
                return self.collect(op, user, &mut Vec::new(), &mut comb);
            };
            let (hits, comb) = &mut *guard;
            comb.reset(n);
            self.collect(op, user, hits, comb)
        });
        self.decision(best)
    }

    /// The decision a winning candidate (or none: default allow) stands for.
    pub(super) fn decision(&self, best: Option<Cand>) -> Decision<'_> {
        match best {
            Some(c) => {
                let policy = &*self.policies[c.policy as usize];
                Decision {
                    verdict: c.verdict,
                    matched: Some(Matched {
                        policy,
                        rule: &policy.rules[c.rule as usize],
                    }),
                }
            }
            None => Decision {
                verdict: Verdict::Allow,
                matched: None,
            },
        }
    }

    fn collect(
        &self,
        op: &Operation<'_>,
        user: Option<&User<'_>>,
        hits: &mut Vec<usize>,
        comb: &mut Combiner,
    ) -> Option<Cand> {
        let add = |comb: &mut Combiner, e: &Entry, specificity: u32| {
            comb.add(Cand {
                policy: e.policy,
                rule: e.rule,
                verdict: e.verdict,
                specificity,
                severity: e.severity,
            });
        };
        match *op {
            Operation::FileAccess {
                path,
                access,
                process,
            } => {
                let path = normalize(path)?;
                let process = normalize(process);
                let process = process.as_deref().unwrap_or("");
                self.files.for_each_match(&path, hits, |owner, spec| {
                    let Some(e) = self.file_entries.get(owner as usize) else {
                        return;
                    };
                    if e.access & access.bit() == 0 {
                        return;
                    }
                    if let Some(procs) = &e.processes
                        && !procs.is_match(process)
                    {
                        return;
                    }
                    if let Some(users) = &e.users
                        && !user.is_some_and(|u| users.matches(u))
                    {
                        return;
                    }
                    add(comb, e, spec);
                });
                if access.modifies() {
                    self.integrity_into(&path, process, hits, comb);
                    for (e, exes) in &self.pinned {
                        if exes.is_match(&path) {
                            add(comb, e, u32::MAX);
                        }
                    }
                }
            }
            Operation::IntegrityWrite { path, process } => {
                let path = normalize(path)?;
                let process = normalize(process);
                self.integrity_into(&path, process.as_deref().unwrap_or(""), hits, comb);
            }
            Operation::Exec { path, in_image } => {
                // A relative path matches no listed executable, so it is also "not on the
                // allow-list": allow-only rules still apply to it.
                let path = normalize(path);
                let path = path.as_deref().unwrap_or("");
                if !path.is_empty() {
                    self.exec.for_each_match(path, hits, |owner, spec| {
                        if let Some(e) = self.exec_entries.get(owner as usize)
                            && (in_image || e.verdict != Verdict::Allow)
                        {
                            add(comb, e, spec);
                        }
                    });
                }
                for (e, allowed) in &self.allow_only {
                    if !in_image || !allowed.is_match(path) {
                        // Nothing more specific to say about "not on the list".
                        add(comb, e, 0);
                    }
                }
            }
            Operation::Connect {
                direction,
                address,
                port,
                protocol,
                process,
            } => {
                let process = normalize(process);
                let process = process.as_deref().unwrap_or("");
                for m in &self.network {
                    let proto_ok = match protocol {
                        Protocol::Tcp => m.tcp,
                        Protocol::Udp => m.udp,
                        Protocol::Raw => m.raw,
                    };
                    let port_ok = m.ports.is_empty()
                        || m.ports.iter().any(|(a, b)| (*a..=*b).contains(&port));
                    if m.direction != direction || !proto_ok || !port_ok {
                        continue;
                    }
                    // Specificity: the longest matching prefix, +1 so that /0 beats "any".
                    let spec = if m.cidrs.is_empty() {
                        Some(0)
                    } else {
                        m.cidrs
                            .iter()
                            .filter(|c| c.contains(address))
                            .map(|c| u32::from(c.prefix()) + 1)
                            .max()
                    };
                    let Some(spec) = spec else { continue };
                    if let Some(procs) = &m.entry.processes
                        && !procs.is_match(process)
                    {
                        continue;
                    }
                    add(comb, &m.entry, spec);
                }
            }
            Operation::Syscall { name } => {
                for (pi, p) in self.policies.iter().enumerate() {
                    if let Some((rule, names)) = &p.hardening
                        && names.binary_search(&name).is_ok()
                    {
                        comb.add(self.cand(pi, *rule));
                    }
                }
            }
            Operation::Drift { .. } => {
                for (pi, p) in self.policies.iter().enumerate() {
                    if let Some(rule) = p.drift {
                        comb.add(self.cand(pi, rule));
                    }
                }
            }
        }
        comb.finish()
    }

    /// For the rule kinds that have no paths to rank by (drift, hardening).
    fn cand(&self, policy: usize, rule: u32) -> Cand {
        let meta = &self.policies[policy].rules[rule as usize];
        Cand {
            policy: u32::try_from(policy).unwrap_or(u32::MAX),
            rule,
            verdict: meta.verdict,
            specificity: 0,
            severity: meta.severity,
        }
    }

    fn integrity_into(
        &self,
        path: &str,
        process: &str,
        hits: &mut Vec<usize>,
        comb: &mut Combiner,
    ) {
        self.integrity.for_each_match(path, hits, |owner, spec| {
            let Some(e) = self.integrity_entries.get(owner as usize) else {
                return;
            };
            if let Some(except) = &e.processes
                && except.is_match(process)
            {
                return;
            }
            comb.add(Cand {
                policy: e.policy,
                rule: e.rule,
                verdict: e.verdict,
                specificity: spec,
                severity: e.severity,
            });
        });
    }
}
