//! From a checked-out document to matchers: every semantic check happens here, and each failure
//! is a [`Diagnostic`] at the place in the file that caused it.

use std::collections::BTreeMap;

use std::sync::Arc;

use crate::cidr::Cidr;
use crate::error::{Diagnostic, did_you_mean};
use crate::glob::{self, PathSet, check_path_glob, specificity};
use crate::message::Template;
use crate::model::*;
use crate::selector::{CompiledSelector, LabelRequirement, NamePatterns};
use crate::syscalls::{BASELINE, HARDENABLE};
use crate::users::UserSet;

pub const API_VERSION: &str = "rampart.dev/v1alpha1";
pub const KIND: &str = "RuntimePolicy";

/// Which list of the spec a rule came from; decides the alert's event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleKind {
    Files,
    Processes,
    Network,
    Integrity,
    Drift,
    Hardening,
}

/// The outcome a rule asks for, after the policy's mode is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    Allow,
    Alert,
    Block,
}

#[derive(Debug, Clone)]
pub(crate) struct RuleMeta {
    pub(crate) id: String,
    pub(crate) kind: RuleKind,
    /// What the rule says, with audit mode already turning Block into Alert.
    pub(crate) verdict: Verdict,
    pub(crate) severity: Severity,
    pub(crate) response: Response,
    /// `None`: the default message for the kind and verdict.
    pub(crate) message: Option<Template>,
}

#[derive(Debug, Clone)]
pub(crate) struct PathGlob {
    pub(crate) glob: globset::Glob,
    pub(crate) specificity: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct FileMatcher {
    pub(crate) rule: u32,
    pub(crate) paths: Vec<PathGlob>,
    pub(crate) access: u8,
    /// `None`: any process.
    pub(crate) processes: Option<Arc<PathSet>>,
    /// `None`: any user.
    pub(crate) users: Option<Arc<UserSet>>,
}

#[derive(Debug, Clone)]
pub(crate) enum ProcessMatcher {
    /// Executables matching these get the rule's verdict.
    Listed { rule: u32, paths: Vec<PathGlob> },
    /// Executables *not* matching these get the rule's verdict.
    AllowOnly { rule: u32, allowed: Arc<PathSet> },
}

#[derive(Debug, Clone)]
pub(crate) struct NetworkMatcher {
    pub(crate) rule: u32,
    pub(crate) direction: Direction,
    /// Empty: any address.
    pub(crate) cidrs: Vec<Cidr>,
    /// Inclusive ranges; empty: any port.
    pub(crate) ports: Vec<(u16, u16)>,
    pub(crate) tcp: bool,
    pub(crate) udp: bool,
    pub(crate) raw: bool,
    /// `raw` is named in the rule's `protocols`: an allow rule that names it lets the workload
    /// make raw and packet sockets at all (see the seccomp plan).
    pub(crate) raw_listed: bool,
    pub(crate) processes: Option<Arc<PathSet>>,
}

#[derive(Debug, Clone)]
pub(crate) struct IntegrityMatcher {
    pub(crate) rule: u32,
    pub(crate) paths: Vec<PathGlob>,
    pub(crate) except: Option<Arc<PathSet>>,
}

/// One policy, checked and compiled; shared between snapshots and views through `Arc`.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    pub(crate) name: String,
    pub(crate) mode: Mode,
    pub(crate) selector: CompiledSelector,
    pub(crate) rules: Vec<RuleMeta>,
    pub(crate) files: Vec<FileMatcher>,
    pub(crate) processes: Vec<ProcessMatcher>,
    pub(crate) network: Vec<NetworkMatcher>,
    pub(crate) integrity: Vec<IntegrityMatcher>,
    pub(crate) drift: Option<u32>,
    /// (rule, syscall names from [`HARDENABLE`]).
    pub(crate) hardening: Option<(u32, Vec<&'static str>)>,
    /// The [`BASELINE`] groups this policy lets its workloads use (`hardening.allow`).
    pub(crate) baseline_allow: Vec<&'static str>,
}

impl CompiledPolicy {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }
}

struct Ctx<'a> {
    file: &'a str,
    diags: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn err<T>(&mut self, at: &At<T>, msg: impl Into<String>, hint: impl Into<String>) {
        self.diags
            .push(Diagnostic::new(self.file, at.line, at.column, msg).with_hint(hint));
    }
}

/// Checks and compiles one document; all problems found are returned, not just the first.
pub(crate) fn compile(file: &str, doc: &PolicyDoc) -> Result<CompiledPolicy, Vec<Diagnostic>> {
    let mut cx = Ctx {
        file,
        diags: Vec::new(),
    };
    if doc.api_version.value != API_VERSION {
        let v = doc.api_version.value.clone();
        cx.err(
            &doc.api_version,
            format!("unsupported apiVersion `{v}`"),
            format!("write `apiVersion: {API_VERSION}`"),
        );
    }
    if doc.kind.value != KIND {
        let v = doc.kind.value.clone();
        cx.err(
            &doc.kind,
            format!("unsupported kind `{v}`"),
            format!("write `kind: {KIND}`"),
        );
    }
    check_name(&mut cx, &doc.metadata.name);
    let spec = &doc.spec.value;
    let selector = compile_selector(&mut cx, &spec.selector);
    let policy_message = spec.message.as_ref().and_then(|m| template(&mut cx, m));

    let mut p = CompiledPolicy {
        name: doc.metadata.name.value.clone(),
        mode: spec.mode,
        selector,
        rules: Vec::new(),
        files: Vec::new(),
        processes: Vec::new(),
        network: Vec::new(),
        integrity: Vec::new(),
        drift: None,
        hardening: None,
        baseline_allow: Vec::new(),
    };
    let mut ids: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    let mut add_rule = |cx: &mut Ctx,
                        p: &mut CompiledPolicy,
                        kind: RuleKind,
                        default_id: String,
                        id: &Option<At<String>>,
                        action: RuleAction,
                        severity: Option<Severity>,
                        response: Option<Response>,
                        message: &Option<At<String>>|
     -> u32 {
        let rid = match id {
            Some(at) => {
                if at.value.is_empty() {
                    cx.err(at, "empty rule id", "remove `id` or give it a name");
                } else if let Some((l, c)) = ids.get(&at.value) {
                    cx.err(
                        at,
                        format!("duplicate rule id `{}`", at.value),
                        format!("ids must be unique in a policy; the first is at {l}:{c}"),
                    );
                } else {
                    ids.insert(at.value.clone(), (at.line, at.column));
                }
                at.value.clone()
            }
            None => default_id,
        };
        let verdict = match (action, spec.mode) {
            (RuleAction::Allow, _) => Verdict::Allow,
            (RuleAction::Alert, _) | (RuleAction::Block, Mode::Audit) => Verdict::Alert,
            (RuleAction::Block, _) => Verdict::Block,
        };
        let message = match message {
            Some(m) => template(cx, m),
            None => policy_message.clone(),
        };
        p.rules.push(RuleMeta {
            id: rid,
            kind,
            verdict,
            severity: severity.unwrap_or(spec.severity),
            response: response.unwrap_or(spec.response),
            message,
        });
        u32::try_from(p.rules.len() - 1).unwrap_or(u32::MAX)
    };

    for (i, r) in spec.files.iter().enumerate() {
        let v = &r.value;
        let rule = add_rule(
            &mut cx,
            &mut p,
            RuleKind::Files,
            format!("files[{i}]"),
            &v.id,
            v.action,
            v.severity,
            v.response,
            &v.message,
        );
        let paths = path_globs(&mut cx, &v.paths, "paths");
        let access = match &v.access {
            None => Access::ALL.iter().fold(0, |m, a| m | a.bit()),
            Some(a) if a.value.is_empty() => {
                cx.err(
                    a,
                    "empty `access` list matches nothing",
                    "list accesses (read, write, create, delete, chmod) or omit `access` for all",
                );
                0
            }
            Some(a) => a.value.iter().fold(0, |m, a| m | a.bit()),
        };
        let processes = process_set(&mut cx, &v.processes);
        let users = user_set(&mut cx, &v.users, &v.uids);
        p.files.push(FileMatcher {
            rule,
            paths,
            access,
            processes,
            users,
        });
    }

    for (i, r) in spec.processes.iter().enumerate() {
        let v = &r.value;
        let rule = add_rule(
            &mut cx,
            &mut p,
            RuleKind::Processes,
            format!("processes[{i}]"),
            &v.id,
            v.action,
            v.severity,
            v.response,
            &v.message,
        );
        match (&v.paths, &v.allow_only) {
            (Some(paths), None) => {
                let paths = path_globs(&mut cx, paths, "paths");
                p.processes.push(ProcessMatcher::Listed { rule, paths });
            }
            (None, Some(allowed)) => {
                if v.action == RuleAction::Allow {
                    cx.err(
                        r,
                        "`allowOnly` with `action: allow` does nothing",
                        "`action` says what happens to executables NOT in `allowOnly`: write `action: block` or `action: alert`",
                    );
                }
                if allowed.value.is_empty() {
                    cx.err(
                        allowed,
                        "empty `allowOnly` list would block every executable, the entrypoint too",
                        "list the executables the container runs, e.g. [\"/usr/sbin/nginx\"]",
                    );
                }
                let globs: Vec<PathGlob> = path_globs(&mut cx, allowed, "allowOnly");
                let allowed = Arc::new(PathSet::new(globs.iter().map(|g| &g.glob)));
                p.processes.push(ProcessMatcher::AllowOnly { rule, allowed });
            }
            (Some(_), Some(_)) => cx.err(
                r,
                "a process rule has both `paths` and `allowOnly`",
                "use `paths` for a deny-list or `allowOnly` for an allow-list, in separate rules",
            ),
            (None, None) => cx.err(
                r,
                "a process rule needs `paths` or `allowOnly`",
                "`paths: [...]` lists executables the action applies to; `allowOnly: [...]` lists the only ones allowed",
            ),
        }
    }

    for (i, r) in spec.network.iter().enumerate() {
        let v = &r.value;
        if v.direction == Direction::Ingress
            && matches!(v.response, Some(Response::KillProcess | Response::KillPod))
        {
            cx.err(
                r,
                "an ingress rule can't kill a process or a pod",
                "ingress is decided on packets: there is no process to kill, and a forged source \
                 address must not be able to stop the pod; `action: block` refuses the packet",
            );
        }
        let rule = add_rule(
            &mut cx,
            &mut p,
            RuleKind::Network,
            format!("network[{i}]"),
            &v.id,
            v.action,
            v.severity,
            v.response,
            &v.message,
        );
        let mut cidrs = Vec::new();
        if let Some(list) = &v.cidrs {
            if list.value.is_empty() {
                cx.err(
                    list,
                    "empty `cidrs` list matches no address",
                    "omit `cidrs` to match any address, or use [\"0.0.0.0/0\", \"::/0\"]",
                );
            }
            for c in &list.value {
                match Cidr::parse(&c.value) {
                    Ok(c) => cidrs.push(c),
                    Err(e) => cx.err(
                        c,
                        format!("invalid CIDR: {e}"),
                        "write an address with a prefix length, such as 10.0.0.0/8 or fd00::/8",
                    ),
                }
            }
        }
        let mut ports = Vec::new();
        if let Some(list) = &v.ports {
            if list.value.is_empty() {
                cx.err(
                    list,
                    "empty `ports` list matches no port",
                    "omit `ports` to match any port",
                );
            }
            for port in &list.value {
                match parse_port(&port.value) {
                    Ok(range) => ports.push(range),
                    Err(e) => cx.err(
                        port,
                        e,
                        "write a port (443) or an inclusive range (\"8000-8080\") within 1-65535",
                    ),
                }
            }
        }
        let (tcp, udp, raw, raw_listed) = match &v.protocols {
            None => (true, true, true, false),
            Some(list) => {
                if list.value.is_empty() {
                    cx.err(
                        list,
                        "empty `protocols` list matches nothing",
                        "omit `protocols` for every protocol, or list [tcp], [udp], [raw]",
                    );
                }
                let has = |p| list.value.contains(&p);
                (
                    has(Protocol::Tcp),
                    has(Protocol::Udp),
                    has(Protocol::Raw),
                    has(Protocol::Raw),
                )
            }
        };
        let processes = process_set(&mut cx, &v.processes);
        p.network.push(NetworkMatcher {
            rule,
            direction: v.direction,
            cidrs,
            ports,
            tcp,
            udp,
            raw,
            raw_listed,
            processes,
        });
    }

    for (i, r) in spec.integrity.iter().enumerate() {
        let v = &r.value;
        if v.action == RuleAction::Allow {
            cx.err(
                r,
                "an integrity rule with `action: allow` does nothing",
                "write `action: alert` or `action: block`; use `exceptProcesses` for who may modify",
            );
        }
        let rule = add_rule(
            &mut cx,
            &mut p,
            RuleKind::Integrity,
            format!("integrity[{i}]"),
            &v.id,
            v.action,
            v.severity,
            v.response,
            &v.message,
        );
        let paths = path_globs(&mut cx, &v.paths, "paths");
        let except = process_set(&mut cx, &v.except_processes);
        p.integrity.push(IntegrityMatcher {
            rule,
            paths,
            except,
        });
    }

    if let Some(d) = &spec.drift {
        let v = &d.value;
        if v.action == RuleAction::Allow {
            cx.err(
                d,
                "`drift` with `action: allow` does nothing",
                "write `action: alert` or `action: block`, or remove `drift`",
            );
        }
        let rule = add_rule(
            &mut cx,
            &mut p,
            RuleKind::Drift,
            "drift".into(),
            &None,
            v.action,
            v.severity,
            v.response,
            &v.message,
        );
        p.drift = Some(rule);
    }

    if let Some(h) = &spec.hardening {
        let v = &h.value;
        if v.action == RuleAction::Allow {
            cx.err(
                h,
                "`hardening` with `action: allow` does nothing",
                "write `action: block` (EPERM in the kernel) or `action: alert`; to let the \
                 workload use what the baseline refuses, list it under `allow`",
            );
        }
        let syscalls = v.syscalls.as_ref().map_or(&[][..], |s| &s.value[..]);
        let allow = v.allow.as_ref().map_or(&[][..], |s| &s.value[..]);
        if syscalls.is_empty() && allow.is_empty() {
            cx.err(
                h,
                "`hardening` lists nothing",
                "list syscalls the workload never needs under `syscalls` (e.g. [io_uring_setup, \
                 bpf, ptrace]), or what the baseline refuses that it needs under `allow`",
            );
        }
        for s in allow {
            match BASELINE.iter().find(|b| b.name == s.value) {
                Some(b) => p.baseline_allow.push(b.name),
                None => cx.err(
                    s,
                    format!("`{}` is not part of the hardening baseline", s.value),
                    format!(
                        "`allow` takes {}; `mount` covers the whole mount API, `unshare` every \
                         way to create a namespace",
                        BASELINE
                            .iter()
                            .map(|b| format!("`{}`", b.name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
            }
        }
        let mut names = Vec::new();
        for s in syscalls {
            match HARDENABLE.iter().find(|k| **k == s.value) {
                Some(k) => names.push(*k),
                None => {
                    let hint = match did_you_mean(&s.value, HARDENABLE.iter().copied()) {
                        Some(m) => format!("did you mean `{m}`?"),
                        None => "see the hardening list in docs/policy.md".into(),
                    };
                    cx.err(
                        s,
                        format!("unknown or not deniable syscall `{}`", s.value),
                        hint,
                    );
                }
            }
        }
        if !names.is_empty() {
            names.sort_unstable();
            names.dedup();
            let rule = add_rule(
                &mut cx,
                &mut p,
                RuleKind::Hardening,
                "hardening".into(),
                &None,
                v.action,
                v.severity,
                None,
                &v.message,
            );
            p.hardening = Some((rule, names));
        }
    }

    if p.rules.is_empty() && p.baseline_allow.is_empty() {
        cx.err(
            &doc.spec,
            "policy has no rules",
            "add at least one of files, processes, network, integrity, drift, hardening",
        );
    }

    if cx.diags.is_empty() {
        Ok(p)
    } else {
        Err(cx.diags)
    }
}

fn check_name(cx: &mut Ctx, name: &At<String>) {
    let n = &name.value;
    let ok = !n.is_empty()
        && n.len() <= 253
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        cx.err(
            name,
            format!("invalid policy name `{n}`"),
            "use 1-253 letters, digits, `-`, `_` or `.`; the name appears in every alert",
        );
    }
}

fn template(cx: &mut Ctx, m: &At<String>) -> Option<Template> {
    match Template::parse(&m.value) {
        Ok(t) => Some(t),
        Err((msg, hint, _)) => {
            // The column of the scalar, not of the brace: quoting changes offsets.
            cx.err(m, msg, hint);
            None
        }
    }
}

fn compile_selector(cx: &mut Ctx, s: &Selector) -> CompiledSelector {
    let mut names = |list: &[At<String>]| {
        let mut out = Vec::new();
        for n in list {
            match glob::build_name(&n.value) {
                Ok(m) => out.push(m),
                Err(e) => cx.err(
                    n,
                    format!("invalid pattern `{}`: {}", n.value, e.kind()),
                    "`*` matches any characters; check brackets and braces",
                ),
            }
        }
        NamePatterns::new(out)
    };
    let namespaces = names(&s.namespaces);
    let pod_names = names(&s.pod_names);
    let container_names = names(&s.container_names);
    let images = names(&s.images);
    let mut requirements = Vec::new();
    let mut match_labels = BTreeMap::new();
    if let Some(ls) = &s.pod_labels {
        match_labels = ls.match_labels.clone();
        for e in &ls.match_expressions {
            let v = &e.value;
            match v.operator {
                LabelOperator::In | LabelOperator::NotIn if v.values.is_empty() => cx.err(
                    e,
                    format!("`{:?}` needs a non-empty `values` list", v.operator),
                    "list the label values, e.g. values: [web]",
                ),
                LabelOperator::Exists | LabelOperator::DoesNotExist if !v.values.is_empty() => cx
                    .err(
                        e,
                        format!("`{:?}` takes no `values`", v.operator),
                        "remove `values`, or use In / NotIn",
                    ),
                _ => {}
            }
            requirements.push(LabelRequirement {
                key: v.key.clone(),
                op: v.operator,
                values: v.values.clone(),
            });
        }
    }
    CompiledSelector {
        namespaces,
        pod_names,
        container_names,
        images,
        match_labels,
        requirements,
    }
}

fn path_globs(cx: &mut Ctx, list: &At<Vec<At<String>>>, field: &str) -> Vec<PathGlob> {
    if list.value.is_empty() && field == "paths" {
        cx.err(
            list,
            "empty `paths` list matches nothing",
            "list absolute paths or globs, e.g. [\"/etc/**\"]",
        );
    }
    let mut out = Vec::new();
    for g in &list.value {
        match check_path_glob(g) {
            Ok(glob) => out.push(PathGlob {
                specificity: specificity(&g.value),
                glob,
            }),
            Err((msg, hint)) => cx.err(g, msg, hint),
        }
    }
    out
}

/// The executables a rule is limited to (or excepts); `None` for an empty list.
fn process_set(cx: &mut Ctx, list: &[At<String>]) -> Option<Arc<PathSet>> {
    if list.is_empty() {
        return None;
    }
    let mut globs = Vec::new();
    for g in list {
        match check_path_glob(g) {
            Ok(glob) => globs.push(glob),
            Err((msg, hint)) => cx.err(g, msg, hint),
        }
    }
    Some(Arc::new(PathSet::new(globs.iter())))
}

fn user_set(cx: &mut Ctx, names: &[At<String>], uids: &[At<u32>]) -> Option<Arc<UserSet>> {
    if names.is_empty() && uids.is_empty() {
        return None;
    }
    for n in names {
        // As useradd takes them: no `:` (the passwd separator), no whitespace, not empty.
        let bad =
            n.value.is_empty() || n.value.contains(':') || n.value.contains(char::is_whitespace);
        if bad || n.value.parse::<u32>().is_ok() {
            cx.err(
                n,
                format!("`{}` is not a user name", n.value),
                "write a name from the container's /etc/passwd under `users`, a number under `uids`",
            );
        }
    }
    Some(Arc::new(UserSet {
        names: names.iter().map(|n| n.value.clone()).collect(),
        uids: uids.iter().map(|u| u.value).collect(),
    }))
}

fn parse_port(p: &PortValue) -> Result<(u16, u16), String> {
    let one = |s: &str| -> Result<u16, String> {
        match s.trim().parse::<u32>() {
            Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
            _ => Err(format!("invalid port `{}`", s.trim())),
        }
    };
    match p {
        PortValue::Number(n) => match u16::try_from(*n) {
            Ok(n) if n > 0 => Ok((n, n)),
            _ => Err(format!("port {n} is out of range")),
        },
        PortValue::Text(s) => match s.split_once('-') {
            None => one(s).map(|n| (n, n)),
            Some((a, b)) => {
                let (a, b) = (one(a)?, one(b)?);
                if a > b {
                    return Err(format!("port range `{s}` runs backwards"));
                }
                Ok((a, b))
            }
        },
    }
}
