//! The policy document as written: CRD-shaped YAML deserialised with serde.
//!
//! Every struct denies unknown fields so a typo is an error instead of a silently ignored rule.
//! Values that are checked after deserialising (globs, CIDRs, syscall names, ports, templates)
//! are wrapped in [`At`] so that those checks can point at `line:column` too.

use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

/// A value with the 1-based line and column where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At<T> {
    pub value: T,
    pub line: u32,
    pub column: u32,
}

impl<T> At<T> {
    pub fn new(value: T, line: u32, column: u32) -> Self {
        At {
            value,
            line,
            column,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for At<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Kept behind our own type so that the public API does not depend on the YAML crate.
        let s = serde_saphyr::Spanned::<T>::deserialize(d)?;
        let line = u32::try_from(s.referenced.line()).unwrap_or(u32::MAX);
        let column = u32::try_from(s.referenced.column()).unwrap_or(u32::MAX);
        Ok(At::new(s.value, line, column))
    }
}

/// One `RuntimePolicy` document.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicyDoc {
    pub api_version: At<String>,
    pub kind: At<String>,
    pub metadata: Metadata,
    pub spec: At<Spec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metadata {
    pub name: At<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Spec {
    /// Which workloads the policy applies to; absent means every workload.
    #[serde(default)]
    pub selector: Selector,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub severity: Severity,
    /// What a `block` does by default in this policy.
    #[serde(default)]
    pub response: Response,
    /// Alert message template for every rule of the policy that has none of its own.
    pub message: Option<At<String>>,
    #[serde(default)]
    pub files: Vec<At<FileRule>>,
    #[serde(default)]
    pub processes: Vec<At<ProcessRule>>,
    #[serde(default)]
    pub network: Vec<At<NetworkRule>>,
    #[serde(default)]
    pub integrity: Vec<At<IntegrityRule>>,
    pub drift: Option<At<DriftRule>>,
    pub hardening: Option<At<HardeningRule>>,
}

/// Workload scope. Every field that is present must match; a list matches if any entry does.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Selector {
    #[serde(default)]
    pub namespaces: Vec<At<String>>,
    pub pod_labels: Option<LabelSelector>,
    #[serde(default)]
    pub pod_names: Vec<At<String>>,
    #[serde(default)]
    pub container_names: Vec<At<String>>,
    #[serde(default)]
    pub images: Vec<At<String>>,
}

/// A Kubernetes label selector (`metav1.LabelSelector`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub match_expressions: Vec<At<LabelExpression>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabelExpression {
    pub key: String,
    pub operator: LabelOperator,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum LabelOperator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Block what the rules block.
    #[default]
    Enforce,
    /// Report what would be blocked, block nothing.
    Audit,
    /// Block and report nothing; agents record what the workload does.
    Learn,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize,
)]
pub enum Severity {
    Low,
    #[default]
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
            Severity::Critical => "Critical",
        }
    }
}

/// What a rule does to the operations it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    Allow,
    Alert,
    Block,
}

/// How a blocked operation is answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Response {
    /// Deny the operation (EPERM), the process goes on.
    #[default]
    Block,
    /// Deny the operation and kill the process that tried it.
    KillProcess,
    /// Deny the operation and delete the pod.
    KillPod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    Read,
    Write,
    Create,
    Delete,
    Chmod,
}

impl Access {
    pub const ALL: [Access; 5] = [
        Access::Read,
        Access::Write,
        Access::Create,
        Access::Delete,
        Access::Chmod,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Create => "create",
            Access::Delete => "delete",
            Access::Chmod => "chmod",
        }
    }

    pub(crate) fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// Whether this access changes the file (what integrity rules watch).
    pub fn modifies(self) -> bool {
        !matches!(self, Access::Read)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileRule {
    pub id: Option<At<String>>,
    pub paths: At<Vec<At<String>>>,
    /// Absent means every access.
    pub access: Option<At<Vec<Access>>>,
    /// Only when the accessing process's executable matches one of these globs.
    #[serde(default)]
    pub processes: Vec<At<String>>,
    /// Only when the accessing process runs as one of these users (names from the container's
    /// own /etc/passwd) ...
    #[serde(default)]
    pub users: Vec<At<String>>,
    /// ... or with one of these user ids.
    #[serde(default)]
    pub uids: Vec<At<u32>>,
    pub action: RuleAction,
    pub severity: Option<Severity>,
    pub response: Option<Response>,
    pub message: Option<At<String>>,
}

/// Either a deny-list (`paths` + `action: block|alert`), an explicit allow (`paths` +
/// `action: allow`), or an allow-list (`allowOnly`: every other executable gets `action`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProcessRule {
    pub id: Option<At<String>>,
    pub paths: Option<At<Vec<At<String>>>>,
    pub allow_only: Option<At<Vec<At<String>>>>,
    pub action: RuleAction,
    pub severity: Option<Severity>,
    pub response: Option<Response>,
    pub message: Option<At<String>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    #[default]
    Egress,
    Ingress,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    /// Raw IP sockets, packet sockets and ICMP echo sockets: anything but TCP and UDP. Such
    /// sockets are refused to a workload with egress rules unless an `allow` rule lists `raw`.
    Raw,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Raw => "raw",
        }
    }
}

/// A port as written: `443` or `"8000-8080"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PortValue {
    Number(i64),
    Text(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkRule {
    pub id: Option<At<String>>,
    #[serde(default)]
    pub direction: Direction,
    /// Remote address ranges; absent means any address.
    pub cidrs: Option<At<Vec<At<String>>>>,
    /// Remote ports (egress) or local ports (ingress); absent means any port.
    pub ports: Option<At<Vec<At<PortValue>>>>,
    /// Absent means tcp and udp.
    pub protocols: Option<At<Vec<Protocol>>>,
    #[serde(default)]
    pub processes: Vec<At<String>>,
    pub action: RuleAction,
    pub severity: Option<Severity>,
    pub response: Option<Response>,
    pub message: Option<At<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IntegrityRule {
    pub id: Option<At<String>>,
    pub paths: At<Vec<At<String>>>,
    /// Processes allowed to modify these paths (package managers, the app's own updater).
    #[serde(default)]
    pub except_processes: Vec<At<String>>,
    pub action: RuleAction,
    pub severity: Option<Severity>,
    pub response: Option<Response>,
    pub message: Option<At<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DriftRule {
    pub action: RuleAction,
    pub severity: Option<Severity>,
    pub response: Option<Response>,
    pub message: Option<At<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HardeningRule {
    /// Syscalls denied on top of the baseline.
    #[serde(default)]
    pub syscalls: Option<At<Vec<At<String>>>>,
    /// Baseline syscalls this workload needs after all (`unshare`, `mount`, …): the baseline every
    /// enforcing policy applies refuses them otherwise.
    #[serde(default)]
    pub allow: Option<At<Vec<At<String>>>>,
    /// `block` (default) answers with EPERM without asking the agent; `alert` reports each call.
    #[serde(default = "default_block")]
    pub action: RuleAction,
    pub severity: Option<Severity>,
    pub message: Option<At<String>>,
}

fn default_block() -> RuleAction {
    RuleAction::Block
}
