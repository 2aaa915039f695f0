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
//!
//! The jobs, one file each:
//! - [`Operation`], [`WorkloadView`] and [`Decision`] (the types, here);
//! - `snapshot`: [`Snapshot`], the policy set, and [`Snapshot::for_workload`];
//! - `view`: building a [`WorkloadView`] from the policies that select a workload;
//! - `eval`: [`WorkloadView::decide`], which collects the matching rules' candidates;
//! - `combine`: the candidates and how they fold into one winner (rules 2 to 4 above);
//! - `moves`: deciding a rename or hard link by what it takes out of the rules' reach;
//! - `plan`: [`WorkloadView::seccomp_plan`], what the workload's seccomp filter needs;
//! - `reads`: what the kernel-side file guard needs (are reads decided, may an allow be cached);
//! - `ingress`: the ingress rules as the kernel's cgroup programs decide them, cell by cell;
//! - `decision`: [`Decision`]'s accessors and its alert message.

use std::net::IpAddr;
use std::sync::Arc;

mod combine;
mod decision;
mod eval;
mod ingress;
mod moves;
mod plan;
mod reads;
mod snapshot;
mod view;

use crate::cidr::Cidr;
use crate::compile::{CompiledPolicy, RuleMeta, Verdict};
use crate::glob::{PathIndex, PathSet};
use crate::model::{Access, Direction, Protocol, Severity};
pub use crate::users::User;
use crate::users::UserSet;

use combine::{Cand, Combiner};
pub use ingress::{IngressCell, IngressTable};
pub use snapshot::Snapshot;

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
    /// `in_image`: the file is the image's own (not written after start, not a memfd, not on a
    /// volume). Only the image's file at an allowed path is allowed: an allow-list or an
    /// `allow` rule names the image's executable, not whatever a process puts at its path.
    Exec {
        path: &'a str,
        in_image: bool,
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
    /// File rules: only these users.
    users: Option<Arc<UserSet>>,
}

#[derive(Debug, Clone)]
struct NetEntry {
    entry: Entry,
    direction: Direction,
    cidrs: Box<[Cidr]>,
    ports: Box<[(u16, u16)]>,
    tcp: bool,
    udp: bool,
    raw: bool,
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
    /// The executables an allowance names (allow-lists, `allow` process rules, `processes:` of
    /// file allows), with the entry that refuses modifying them (Block; Alert in audit mode).
    pinned: Vec<(Entry, Arc<PathSet>)>,
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
