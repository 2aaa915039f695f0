//! What a [`Decision`] says: the matched policy and rule, the response, the alert message.

use std::net::IpAddr;

use super::{Decision, Operation};
use crate::compile::{RuleKind, Verdict};
use crate::message::Template;
use crate::model::{Direction, Mode, Response, Severity};
use crate::selector::Workload;

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
            Operation::Exec { path: p, .. } | Operation::Drift { path: p } => {
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
        // An allow rule that refuses: the executable it names is being modified (its own
        // message is about what it allows).
        let modifies_named_exe = (m.rule.verdict == Verdict::Allow
            && self.verdict != Verdict::Allow)
            || (m.rule.kind == RuleKind::Processes && matches!(op, Operation::FileAccess { .. }));
        if modifies_named_exe {
            return pinned_template(self.verdict).render(value);
        }
        match &m.rule.message {
            Some(t) => t.render(value),
            None => {
                let inbound = matches!(
                    op,
                    Operation::Connect {
                        direction: Direction::Ingress,
                        ..
                    }
                );
                default_template(m.rule.kind, inbound, self.verdict).render(value)
            }
        }
    }
}

fn pinned_template(verdict: Verdict) -> Template {
    let how = match verdict {
        Verdict::Block => "is prohibited by policy.",
        _ => "is reported by policy {policy}.",
    };
    Template::parse(&format!(
        "Modification of {{path}}, an executable policy {{policy}} allows, in {{container}} \
         container {how}"
    ))
    .unwrap_or_else(|_| Template::empty())
}

fn default_template(kind: RuleKind, inbound: bool, verdict: Verdict) -> Template {
    let what = match kind {
        RuleKind::Network if inbound => {
            "Inbound connection from {address} to port {port}/{protocol} of {container} container"
        }
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
