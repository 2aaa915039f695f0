//! Snapshots, per-workload views and decisions.
//!
//! How overlapping rules combine (docs/policy.md says the same for operators):
//! 1. Only policies whose selector matches the workload count; learn-mode policies never
//!    block or alert. Audit mode has already turned each Block into an Alert.
//! 2. Within one policy, a matching `allow` rule cancels that policy's `block` and `alert`
//!    rules for this operation (the nginx exception). It never touches other policies.
//! 3. Across policies the strictest verdict wins: Block > Alert > Allow.
//! 4. Among matches with the same verdict, the most specific names the decision (longest
//!    literal glob prefix, longest CIDR prefix), then the higher severity, then the policy
//!    whose name sorts first, then the rule written first.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

mod moves;

use crate::cidr::Cidr;
use crate::compile::{CompiledPolicy, ProcessMatcher, RuleKind, RuleMeta, Verdict};
use crate::error::{Diagnostic, Error};
use crate::glob::{PathIndex, PathSet};
use crate::message::Template;
use crate::model::{Access, Direction, Mode, Protocol, Response, Severity};
use crate::parse::Policy;
use crate::paths::normalize;
use crate::selector::Workload;
use crate::syscalls::{self, SeccompPlan};

/// What happened, as the agent saw it. Paths must be absolute: resolve relative paths against
/// the process's working directory (inside the container's root) first; a relative path
/// matches no rule. Symlinks are the caller's to resolve too: matching is lexical.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation<'a> {
    /// `process` is the executable path of the process doing the access ("" if unknown: then
    /// rules limited to certain processes, allows included, do not match).
    FileAccess {
        path: &'a str,
        access: Access,
        process: &'a str,
    },
    Exec {
        path: &'a str,
    },
    /// Egress: `address`/`port` are the remote end. Ingress: `address` is the peer and `port`
    /// the local port it connected to.
    Connect {
        direction: Direction,
        address: IpAddr,
        port: u16,
        protocol: Protocol,
        process: &'a str,
    },
    Syscall {
        name: &'a str,
    },
    /// A file was modified (for sources that see changes, not accesses: fanotify, FIM scans).
    IntegrityWrite {
        path: &'a str,
        process: &'a str,
    },
    /// `path` is being executed but is not part of the image (written after start, memfd).
    Drift {
        path: &'a str,
    },
}

/// All policies, compiled; what agents receive. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Sorted by name, so ties resolve the same way on every node.
    policies: Vec<Arc<CompiledPolicy>>,
}

impl Snapshot {
    /// Fails if two policies share a name (alerts would be ambiguous).
    pub fn new(policies: impl IntoIterator<Item = Policy>) -> Result<Snapshot, Error> {
        let mut by_name: BTreeMap<String, Policy> = BTreeMap::new();
        let mut diags = Vec::new();
        for p in policies {
            if let Some(first) = by_name.get(p.name()) {
                let n = &p.doc.metadata.name;
                diags.push(
                    Diagnostic::new(
                        &p.file,
                        n.line,
                        n.column,
                        format!("duplicate policy name `{}`", p.name()),
                    )
                    .with_hint(format!(
                        "the first is at {}; policy names must be unique",
                        first.location()
                    )),
                );
                continue;
            }
            by_name.insert(p.name().to_owned(), p);
        }
        if !diags.is_empty() {
            return Err(Error::Invalid(diags));
        }
        Ok(Snapshot {
            policies: by_name.into_values().map(|p| p.compiled).collect(),
        })
    }

    pub fn len(&self) -> usize {
        self.policies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    pub fn policy_names(&self) -> impl Iterator<Item = &str> {
        self.policies.iter().map(|p| p.name())
    }

    /// The policies that apply to `w`, with their rules merged into matchers. Build it once per
    /// container (and again when the snapshot changes), then call [`WorkloadView::decide`].
    pub fn for_workload(&self, w: &Workload) -> WorkloadView {
        let selected: Vec<Arc<CompiledPolicy>> = self
            .policies
            .iter()
            .filter(|p| p.selector.matches(w))
            .cloned()
            .collect();
        WorkloadView::build(selected)
    }
}

/// One rule's matcher, flattened into the view so that a glob hit needs no pointer chasing.
#[derive(Debug, Clone)]
struct Entry {
    policy: u32,
    rule: u32,
    verdict: Verdict,
    severity: Severity,
    /// Access bits (file rules); all bits for other kinds.
    access: u8,
    /// File and network rules: only these processes. Integrity rules: all but these.
    processes: Option<Arc<PathSet>>,
}

#[derive(Debug, Clone)]
struct NetEntry {
    entry: Entry,
    direction: Direction,
    cidrs: Box<[Cidr]>,
    ports: Box<[(u16, u16)]>,
    tcp: bool,
    udp: bool,
}

/// The policies that apply to one workload, ready to decide.
#[derive(Debug, Clone)]
pub struct WorkloadView {
    policies: Vec<Arc<CompiledPolicy>>,
    files: PathIndex,
    file_entries: Vec<Entry>,
    exec: PathIndex,
    exec_entries: Vec<Entry>,
    /// Every allow-only process rule, with its allow-list.
    allow_only: Vec<(Entry, Arc<PathSet>)>,
    network: Vec<NetEntry>,
    integrity: PathIndex,
    integrity_entries: Vec<Entry>,
    /// Each file and integrity glob's literal prefix with its owner, for deciding what a
    /// directory rename moves out of reach (see `moves`).
    file_scopes: Vec<(moves::Scope, u32)>,
    integrity_scopes: Vec<(moves::Scope, u32)>,
    learning: bool,
}

/// The result of one decision; borrows names and messages from the view.
#[derive(Debug, Clone, Copy)]
pub struct Decision<'v> {
    pub verdict: Verdict,
    matched: Option<Matched<'v>>,
}

#[derive(Debug, Clone, Copy)]
struct Matched<'v> {
    policy: &'v CompiledPolicy,
    rule: &'v RuleMeta,
}

/// A candidate match while deciding; `rank` orders same-verdict matches.
#[derive(Debug, Clone, Copy)]
struct Cand {
    policy: u32,
    rule: u32,
    verdict: Verdict,
    specificity: u32,
    severity: Severity,
}

impl Cand {
    /// True if `self` should name the decision instead of `other`.
    fn beats(&self, other: &Cand) -> bool {
        (self.verdict, self.specificity, self.severity)
            .cmp(&(other.verdict, other.specificity, other.severity))
            .then_with(|| (other.policy, other.rule).cmp(&(self.policy, self.rule)))
            .is_gt()
    }
}

/// Folds candidates, applying "an allow cancels its own policy's block/alert".
///
/// Per-policy slots are stamped with a generation instead of being cleared, so a decision
/// costs O(matches), not O(policies in the view).
#[derive(Default)]
struct Combiner {
    generation: u32,
    slots: Vec<Slot>,
    touched: Vec<u32>,
}

#[derive(Default, Clone, Copy)]
struct Slot {
    generation: u32,
    deny: Option<Cand>,
    allow: Option<Cand>,
}

impl Combiner {
    fn reset(&mut self, policies: usize) {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // Wrapped: stale stamps could collide, so clear them once every 2^32 decisions.
            self.slots.iter_mut().for_each(|s| s.generation = 0);
            self.generation = 1;
        }
        if self.slots.len() < policies {
            self.slots.resize(policies, Slot::default());
        }
        self.touched.clear();
    }

    fn add(&mut self, c: Cand) {
        let Some(slot) = self.slots.get_mut(c.policy as usize) else {
            return;
        };
        if slot.generation != self.generation {
            *slot = Slot {
                generation: self.generation,
                deny: None,
                allow: None,
            };
            self.touched.push(c.policy);
        }
        let target = if c.verdict == Verdict::Allow {
            &mut slot.allow
        } else {
            &mut slot.deny
        };
        if target.is_none_or(|t| c.beats(&t)) {
            *target = Some(c);
        }
    }

    fn finish(&self) -> Option<Cand> {
        let mut best: Option<Cand> = None;
        let mut best_allow: Option<Cand> = None;
        for &p in &self.touched {
            let Some(slot) = self.slots.get(p as usize) else {
                continue;
            };
            let (target, c) = match (slot.deny, slot.allow) {
                (_, Some(a)) => (&mut best_allow, a),
                (Some(d), None) => (&mut best, d),
                (None, None) => continue,
            };
            if target.is_none_or(|t| c.beats(&t)) {
                *target = Some(c);
            }
        }
        best.or(best_allow)
    }
}

thread_local! {
    // Scratch space reused across decisions on this thread, so deciding does not allocate.
    static SCRATCH: RefCell<(Vec<usize>, Combiner)> = RefCell::new((Vec::new(), Combiner::default()));
}

impl WorkloadView {
    fn build(all: Vec<Arc<CompiledPolicy>>) -> WorkloadView {
        let learning = all.iter().any(|p| p.mode == Mode::Learn);
        // Learn-mode policies only record; they take no part in decisions.
        let policies: Vec<Arc<CompiledPolicy>> =
            all.into_iter().filter(|p| p.mode != Mode::Learn).collect();
        let mut files = Vec::new();
        let mut file_entries = Vec::new();
        let mut exec = Vec::new();
        let mut exec_entries = Vec::new();
        let mut allow_only = Vec::new();
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
                }
            };
            for m in &p.files {
                let o = owner(&file_entries);
                file_entries.push(entry(m.rule, m.access, &m.processes));
                files.extend(m.paths.iter().map(|g| (g.glob.clone(), o, g.specificity)));
                file_scopes.extend(m.paths.iter().map(|g| (moves::scope(g.glob.glob()), o)));
            }
            for m in &p.processes {
                match m {
                    ProcessMatcher::Listed { rule, paths } => {
                        let o = owner(&exec_entries);
                        exec_entries.push(entry(*rule, u8::MAX, &None));
                        exec.extend(paths.iter().map(|g| (g.glob.clone(), o, g.specificity)));
                    }
                    ProcessMatcher::AllowOnly { rule, allowed } => {
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

    pub fn decide<'v>(&'v self, op: &Operation<'_>) -> Decision<'v> {
        let n = self.policies.len();
        let best = SCRATCH.with(|h| {
            // Only a re-entrant call could find it borrowed; fall back to fresh scratch.
            let Ok(mut guard) = h.try_borrow_mut() else {
                let mut comb = Combiner::default();
                comb.reset(n);
                return self.collect(op, &mut Vec::new(), &mut comb);
            };
            let (hits, comb) = &mut *guard;
            comb.reset(n);
            self.collect(op, hits, comb)
        });
        self.decision(best)
    }

    /// The decision a winning candidate (or none: default allow) stands for.
    fn decision(&self, best: Option<Cand>) -> Decision<'_> {
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
                    add(comb, e, spec);
                });
                if access.modifies() {
                    self.integrity_into(&path, process, hits, comb);
                }
            }
            Operation::IntegrityWrite { path, process } => {
                let path = normalize(path)?;
                let process = normalize(process);
                self.integrity_into(&path, process.as_deref().unwrap_or(""), hits, comb);
            }
            Operation::Exec { path } => {
                // A relative path matches no listed executable, so it is also "not on the
                // allow-list": allow-only rules still apply to it.
                let path = normalize(path);
                let path = path.as_deref().unwrap_or("");
                if !path.is_empty() {
                    self.exec.for_each_match(path, hits, |owner, spec| {
                        if let Some(e) = self.exec_entries.get(owner as usize) {
                            add(comb, e, spec);
                        }
                    });
                }
                for (e, allowed) in &self.allow_only {
                    if !allowed.is_match(path) {
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

    /// What the seccomp filter of this workload needs: which syscalls go to the agent
    /// (SCMP_ACT_NOTIFY) and which fail with EPERM in the kernel. Audit-mode rules still need
    /// notification (to report); learn-mode policies add nothing (bpf-audit observes).
    pub fn seccomp_plan(&self) -> SeccompPlan {
        let mut plan = SeccompPlan::default();
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
            if !p.integrity.is_empty() {
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
        // A syscall denied outright for one policy need not also be notified for another.
        let errno = plan.errno.clone();
        plan.notify.retain(|s| !errno.contains(*s));
        plan
    }
}

impl<'v> Decision<'v> {
    pub fn is_allow(&self) -> bool {
        self.verdict == Verdict::Allow
    }

    /// `None` when no rule matched (default allow).
    pub fn policy_name(&self) -> Option<&'v str> {
        self.matched.map(|m| m.policy.name.as_str())
    }

    pub fn rule_id(&self) -> Option<&'v str> {
        self.matched.map(|m| m.rule.id.as_str())
    }

    pub fn rule_kind(&self) -> Option<RuleKind> {
        self.matched.map(|m| m.rule.kind)
    }

    pub fn severity(&self) -> Option<Severity> {
        self.matched.map(|m| m.rule.severity)
    }

    pub fn mode(&self) -> Option<Mode> {
        self.matched.map(|m| m.policy.mode)
    }

    /// How to enforce a Block (deny, kill the process, kill the pod); `None` unless Block.
    pub fn response(&self) -> Option<Response> {
        match (self.verdict, self.matched) {
            (Verdict::Block, Some(m)) => Some(m.rule.response),
            _ => None,
        }
    }

    /// The alert message for this decision: the rule's template, else the policy's, else a
    /// default for the rule kind.
    pub fn message(&self, w: &Workload, op: &Operation<'_>) -> String {
        let Some(m) = self.matched else {
            return String::new();
        };
        let severity = m.rule.severity.as_str();
        let port;
        let address;
        let (mut path, mut access, mut process, mut syscall) = ("", "", "", "");
        let (mut addr_s, mut port_s, mut proto) = ("", "", "");
        match *op {
            Operation::FileAccess {
                path: p,
                access: a,
                process: pr,
            } => {
                (path, access, process) = (p, a.as_str(), pr);
            }
            Operation::IntegrityWrite {
                path: p,
                process: pr,
            } => (path, process) = (p, pr),
            Operation::Exec { path: p } | Operation::Drift { path: p } => {
                (path, process) = (p, p);
            }
            Operation::Connect {
                address: a,
                port: po,
                protocol: pr,
                process: proc_,
                ..
            } => {
                // Brackets keep `{address}:{port}` readable for IPv6.
                address = match a {
                    IpAddr::V4(v4) => v4.to_string(),
                    IpAddr::V6(v6) => format!("[{v6}]"),
                };
                port = po.to_string();
                (addr_s, port_s, proto, process) = (&address, &port, pr.as_str(), proc_);
            }
            Operation::Syscall { name } => syscall = name,
        }
        let value = |name: &str| -> Option<&str> {
            let v = match name {
                "path" => path,
                "access" => access,
                "process" => process,
                "container" => &w.container_name,
                "pod" => &w.pod_name,
                "namespace" => &w.namespace,
                "image" => &w.image,
                "policy" => &m.policy.name,
                "rule" => &m.rule.id,
                "severity" => severity,
                "address" => addr_s,
                "port" => port_s,
                "protocol" => proto,
                "syscall" => syscall,
                _ => "",
            };
            (!v.is_empty()).then_some(v)
        };
        match &m.rule.message {
            Some(t) => t.render(value),
            None => default_template(m.rule.kind, self.verdict).render(value),
        }
    }
}

fn default_template(kind: RuleKind, verdict: Verdict) -> Template {
    let what = match kind {
        RuleKind::Files => "File access to {path} by {container} container",
        RuleKind::Processes => "Execution of {path} in {container} container",
        RuleKind::Network => {
            "Network connection with {address}:{port}/{protocol} by {container} container"
        }
        RuleKind::Integrity => "Modification of {path} in {container} container",
        RuleKind::Drift => {
            "Execution of {path}, which is not in the image, in {container} container"
        }
        RuleKind::Hardening => "Syscall {syscall} in {container} container",
    };
    let how = match verdict {
        Verdict::Block => "is prohibited by policy.",
        Verdict::Alert => "is reported by policy {policy}.",
        Verdict::Allow => "is allowed by policy {policy}.",
    };
    // Fixed text with known placeholders: parsing cannot fail.
    Template::parse(&format!("{what} {how}")).unwrap_or_else(|_| Template::empty())
}
