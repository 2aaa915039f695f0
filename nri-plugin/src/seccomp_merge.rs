//! Adds rampart's seccomp rules to a container's own profile, keeping that profile in force for
//! everything else.
//!
//! The container's profile (RuntimeDefault, Localhost, or none) decides what a syscall may do;
//! rampart only narrows it: syscalls a policy inspects become SCMP_ACT_NOTIFY where the profile
//! would have allowed them, and hardening syscalls become SCMP_ACT_ERRNO. A syscall the profile
//! already refuses stays refused and is not notified. The profile is edited as JSON, not through a
//! typed model, so fields this code does not know survive unchanged.

use serde_json::{Map, Value, json};

pub const ACT_NOTIFY: &str = "SCMP_ACT_NOTIFY";
pub const ACT_ERRNO: &str = "SCMP_ACT_ERRNO";
/// Denied whenever opens are notified: see `merge`.
pub const IO_URING_SYSCALLS: [&str; 3] = ["io_uring_setup", "io_uring_enter", "io_uring_register"];
const OPEN_SYSCALLS: [&str; 4] = ["open", "openat", "openat2", "creat"];
/// Always notified along with anything else: see `merge`.
pub const EXEC_SYSCALLS: [&str; 2] = ["execve", "execveat"];

/// What rampart adds for one container. Travels as JSON in an annotation to rampart-runc.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Additions {
    /// Syscalls the seccomp agent answers (openat, execve, connect, …).
    pub notify: Vec<String>,
    /// Syscalls refused outright with EPERM (io_uring_setup, bpf, …).
    pub deny: Vec<String>,
    /// The seccomp agent's socket.
    pub listener_path: String,
    /// Names the workload for the agent (the agent also reads the CRI annotations).
    pub listener_metadata: String,
    /// Read-only `open`/`openat` calls are not notified: the agent's file guard decides them in
    /// the kernel, on the file being opened (fanotify). Only calls whose flags write, create or
    /// truncate reach the agent. False: every open is notified (the design before the guard).
    #[serde(default)]
    pub reads_in_kernel: bool,
    /// The hardening baseline's "no new namespaces": clone and unshare with a namespace flag fail
    /// with EPERM, clone3 with ENOSYS (its flags can't be inspected; the C library falls back to
    /// clone). setns is in `deny` when the baseline refuses it.
    #[serde(default)]
    pub deny_new_namespaces: bool,
    /// socket() of a raw IP socket (AF_INET/AF_INET6 SOCK_RAW, AF_INET SOCK_PACKET) or a packet
    /// socket (AF_PACKET) fails with EPERM: the container's egress rules decide on addresses and
    /// ports, which such sockets carry in bytes no syscall argument shows.
    #[serde(default)]
    pub deny_raw_sockets: bool,
    /// execve is left to the agent's file guard (the plan's `exec_by_guard`): not added to the
    /// filter to mark the end of runc's setup, which the agent then tells by the task's
    /// executable instead. Left out when false, so that a wrapper older than the field still
    /// takes what it knows.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exec_by_guard: bool,
}

pub use rampart_protos::agent::{READ_OPENS_LABEL, READ_OPENS_SECCOMP};

/// The open flags that make an open more than a read: write access, creating a name (or an
/// unnamed file), truncating. An open with none of them is read-only.
const WRITE_FLAGS: [u64; 5] = [
    libc::O_WRONLY as u64,
    libc::O_RDWR as u64,
    libc::O_CREAT as u64,
    libc::O_TRUNC as u64,
    // O_TMPFILE without its O_DIRECTORY bit: the bit that makes it O_TMPFILE.
    (libc::O_TMPFILE & !libc::O_DIRECTORY) as u64,
];

/// The clone flags that create a namespace (CLONE_NEWNS, _NEWCGROUP, _NEWUTS, _NEWIPC, _NEWUSER,
/// _NEWPID, _NEWNET): the same mask the runtime's default profile tests.
const NAMESPACE_FLAGS: [u64; 7] = [
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
];

/// The same for unshare, which also takes CLONE_NEWTIME (in clone's flags that bit is part of
/// the exit signal).
const UNSHARE_NAMESPACE_FLAGS: [u64; 8] = {
    const CLONE_NEWTIME: u64 = 0x80;
    let mut flags = [CLONE_NEWTIME; 8];
    let mut i = 0;
    while i < NAMESPACE_FLAGS.len() {
        flags[i] = NAMESPACE_FLAGS[i];
        i += 1;
    }
    flags
};

/// clone3 takes its flags behind a pointer the filter can't read: refused with ENOSYS, which makes
/// the C library fall back to clone, whose flags it can.
const CLONE3: &str = "clone3";
const SOCKET: &str = "socket";
const ENOSYS: u32 = 38;

/// A syscall whose flags argument the filter tests: calls with any of `flags` set get `on_flag`,
/// the others keep the action the profile gave them.
#[derive(Clone, Copy)]
struct FlagSplit {
    index: u32,
    flags: &'static [u64],
    on_flag: &'static str,
}

impl Additions {
    /// How `name` is split on its flags, if it is: read-only opens stay in the kernel when the
    /// file guard decides them (openat2's flags are behind a pointer, creat always creates), and
    /// a clone that creates a namespace is refused under the hardening baseline.
    fn flag_split(&self, name: &str, notified: bool) -> Option<FlagSplit> {
        let open = |index| FlagSplit {
            index,
            flags: &WRITE_FLAGS,
            on_flag: ACT_NOTIFY,
        };
        match name {
            "open" if notified && self.reads_in_kernel => Some(open(1)),
            "openat" if notified && self.reads_in_kernel => Some(open(2)),
            "clone" if self.deny_new_namespaces => Some(FlagSplit {
                index: 0,
                flags: &NAMESPACE_FLAGS,
                on_flag: ACT_ERRNO,
            }),
            // unshare(CLONE_FS), (CLONE_FILES) and the like stay allowed: only a namespace is new.
            "unshare" if self.deny_new_namespaces => Some(FlagSplit {
                index: 0,
                flags: &UNSHARE_NAMESPACE_FLAGS,
                on_flag: ACT_ERRNO,
            }),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MergeError {
    #[error(
        "the container's seccomp profile already has a listener ({0}); rampart cannot share a \
         container with another seccomp agent: remove listenerPath from the profile or exclude the \
         pod from rampart's policies"
    )]
    ListenerTaken(String),
    #[error("the container's seccomp profile is malformed: {0}")]
    Malformed(String),
}

/// Actions under which the profile lets a syscall run: only those are narrowed.
fn allows(action: &str) -> bool {
    matches!(action, "SCMP_ACT_ALLOW" | "SCMP_ACT_LOG")
}

/// Returns the merged profile. `base` is the container's `linux.seccomp` (None: unconfined).
pub fn merge(base: Option<&Value>, add: &Additions) -> Result<Value, MergeError> {
    let mut profile = match base {
        Some(Value::Object(m)) => m.clone(),
        Some(Value::Null) | None => unconfined(),
        Some(other) => {
            return Err(MergeError::Malformed(format!(
                "expected an object, found {other}"
            )));
        }
    };
    if let Some(existing) = profile.get("listenerPath").and_then(Value::as_str)
        && !existing.is_empty()
        && existing != add.listener_path
    {
        return Err(MergeError::ListenerTaken(existing.to_owned()));
    }
    let default_allows = profile
        .get("defaultAction")
        .and_then(Value::as_str)
        .map(allows)
        .ok_or_else(|| MergeError::Malformed("defaultAction is missing".into()))?;
    let rules = match profile.remove("syscalls") {
        Some(Value::Array(r)) => r,
        None | Some(Value::Null) => Vec::new(),
        Some(other) => {
            return Err(MergeError::Malformed(format!(
                "syscalls is not a list: {other}"
            )));
        }
    };

    // Denials win over notification: a syscall in both lists is denied.
    let mut deny: Vec<&str> = add.deny.iter().map(String::as_str).collect();
    // io_uring's operations are not syscalls: an IORING_OP_OPENAT never reaches the filter, so a
    // workload whose opens are decided by the agent must not have io_uring at all.
    if add
        .notify
        .iter()
        .any(|n| OPEN_SYSCALLS.contains(&n.as_str()))
    {
        for s in IO_URING_SYSCALLS {
            if !deny.contains(&s) {
                deny.push(s);
            }
        }
    }
    let mut notify: Vec<&str> = add.notify.iter().map(String::as_str).collect();
    // The agent treats everything before a task's first execve as runc's own setup (reading
    // /etc/passwd for the user, opening its exec FIFO) and decides by policy from that execve on:
    // without it in the filter, the agent would never see the workload start. Where the file
    // guard decides execs, the agent tells runc's setup by its executable, and execve stays out.
    if !notify.is_empty() && !add.exec_by_guard {
        for exec in EXEC_SYSCALLS {
            if !notify.contains(&exec) {
                notify.push(exec);
            }
        }
    }
    notify.retain(|s| !deny.contains(s));

    let mut out: Vec<Value> = Vec::with_capacity(rules.len() + 4);
    let mut mentioned: Vec<String> = Vec::new();
    for rule in rules {
        let Value::Object(rule) = rule else {
            return Err(MergeError::Malformed(format!(
                "a syscalls entry is not an object: {rule}"
            )));
        };
        let action = rule
            .get("action")
            .and_then(Value::as_str)
            .ok_or_else(|| MergeError::Malformed("a syscalls entry has no action".into()))?
            .to_owned();
        let names: Vec<String> = rule
            .get("names")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|n| n.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        mentioned.extend(names.iter().cloned());
        if !allows(&action) {
            out.push(Value::Object(rule));
            continue;
        }
        let (mut keep, mut to_notify, mut to_deny, mut to_enosys, mut split) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for n in names {
            let notified = notify.contains(&n.as_str());
            if deny.contains(&n.as_str()) {
                to_deny.push(n);
            } else if add.deny_new_namespaces && n == CLONE3 {
                to_enosys.push(n);
            } else if let Some(f) = add.flag_split(&n, notified)
                // libseccomp takes one comparison per argument in a rule: where the profile tests
                // the flags itself, its conditions stay as they are (and an open is notified
                // whatever its flags; the runtime's default profile already refuses namespace
                // flags in clone this way).
                && !tests_arg(&rule, f.index)
            {
                split.push((n, f));
            } else if notified {
                to_notify.push(n);
            } else {
                keep.push(n);
            }
        }
        // The same argument conditions carry over: where the profile allowed a syscall only for
        // some arguments, it is notified (or denied) for exactly those.
        for (n, f) in split {
            out.extend(split_on_flags(&rule, &n, f, &action));
        }
        if add.deny_raw_sockets
            && let Some(i) = keep.iter().position(|n| n == SOCKET)
            && !tests_arg(&rule, 0)
            && !tests_arg(&rule, 1)
        {
            keep.remove(i);
            out.extend(raw_socket_rules(&rule, Some(&action)));
        }
        for (names, action, errno) in [
            (keep, action.as_str(), None),
            (to_notify, ACT_NOTIFY, None),
            (to_deny, ACT_ERRNO, Some(EPERM)),
            (to_enosys, ACT_ERRNO, Some(ENOSYS)),
        ] {
            if names.is_empty() {
                continue;
            }
            let mut r = rule.clone();
            r.insert("names".into(), json!(names));
            r.insert("action".into(), json!(action));
            if let Some(errno) = errno {
                r.insert("errnoRet".into(), json!(errno));
            }
            out.push(Value::Object(r));
        }
    }
    if default_allows {
        // Syscalls the profile allows by default (it names no rule for them).
        let unmentioned = |list: &[&str]| -> Vec<String> {
            list.iter()
                .filter(|n| !mentioned.iter().any(|m| m == *n))
                .map(|n| (*n).to_owned())
                .collect()
        };
        // Calls with a flag fall through to the default action, which allows them; only the
        // rules for the other calls are added.
        let mut split_unmentioned = |name: &str, f: FlagSplit| {
            out.extend(
                split_on_flags(&Map::new(), name, f, "SCMP_ACT_ALLOW")
                    .filter(|r| r["action"] != "SCMP_ACT_ALLOW"),
            );
        };
        let mut n = unmentioned(&notify);
        n.retain(|name| match add.flag_split(name, true) {
            Some(f) => {
                split_unmentioned(name, f);
                false
            }
            None => true,
        });
        if add.deny_new_namespaces {
            for name in unmentioned(&["clone", "unshare"]) {
                if let Some(f) = add.flag_split(&name, false) {
                    split_unmentioned(&name, f);
                }
            }
        }
        if !n.is_empty() {
            out.push(json!({"names": n, "action": ACT_NOTIFY}));
        }
        let d = unmentioned(&deny);
        if !d.is_empty() {
            out.push(json!({"names": d, "action": ACT_ERRNO, "errnoRet": EPERM}));
        }
        if add.deny_raw_sockets && !unmentioned(&[SOCKET]).is_empty() {
            out.extend(raw_socket_rules(&Map::new(), None));
        }
        if add.deny_new_namespaces && !unmentioned(&[CLONE3]).is_empty() {
            out.push(json!({"names": [CLONE3], "action": ACT_ERRNO, "errnoRet": ENOSYS}));
        }
    }
    profile.insert("syscalls".into(), Value::Array(out));
    profile.insert("listenerPath".into(), json!(add.listener_path));
    profile.insert("listenerMetadata".into(), json!(add.listener_metadata));
    Ok(Value::Object(profile))
}

/// True when the profile's own rule already tests argument `index`.
fn tests_arg(rule: &Map<String, Value>, index: u32) -> bool {
    rule.get("args")
        .and_then(Value::as_array)
        .is_some_and(|args| args.iter().any(|a| a["index"] == index))
}

/// `rule` (the profile's rule that allowed `name`, or an empty one) as one rule per flag that
/// gives a call with that flag `f.on_flag`, and one that keeps `allowed` for the calls with none:
/// the filter tests the flags in the kernel, so only the calls that matter leave it. The
/// conditions are disjoint, so no rule overrides another. The rule's own conditions carry over.
fn split_on_flags<'a>(
    rule: &'a Map<String, Value>,
    name: &'a str,
    f: FlagSplit,
    allowed: &'a str,
) -> impl Iterator<Item = Value> + 'a {
    let all: u64 = f.flags.iter().fold(0, |a, f| a | f);
    let with = move |value: u64, mask: u64, action: &str| {
        narrowed(rule, name, [masked_eq(f.index, mask, value)], action)
    };
    f.flags
        .iter()
        .map(move |flag| with(*flag, *flag, f.on_flag))
        .chain(std::iter::once(with(0, all, allowed)))
}

const EPERM: u32 = 1;

/// `rule` (its conditions kept) for `name` alone, with `args` added, answering `action` (with
/// EPERM, for an errno action).
fn narrowed(
    rule: &Map<String, Value>,
    name: &str,
    args: impl IntoIterator<Item = Value>,
    action: &str,
) -> Value {
    let mut r = rule.clone();
    let mut all = r
        .get("args")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    all.extend(args);
    r.insert("names".into(), json!([name]));
    r.insert("action".into(), json!(action));
    if action == ACT_ERRNO {
        r.insert("errnoRet".into(), json!(EPERM));
    }
    r.insert("args".into(), Value::Array(all));
    Value::Object(r)
}

/// The condition "argument `index`, masked with `mask`, equals `value`".
fn masked_eq(index: u32, mask: u64, value: u64) -> Value {
    json!({"index": index, "value": mask, "valueTwo": value, "op": "SCMP_CMP_MASKED_EQ"})
}

/// socket(family, type) pairs refused by `deny_raw_sockets`; None: any type.
const RAW_SOCKETS: [(u64, Option<u64>); 4] = [
    (libc::AF_PACKET as u64, None),
    (libc::AF_INET as u64, Some(libc::SOCK_RAW as u64)),
    // SOCK_PACKET, the packet interface before AF_PACKET.
    (libc::AF_INET as u64, Some(10)),
    (libc::AF_INET6 as u64, Some(libc::SOCK_RAW as u64)),
];
/// Families above this fail with EAFNOSUPPORT anyway (Linux 6.18 has 46).
const AF_MAX: u64 = 64;
/// The socket type is the low four bits of the type argument; the rest are SOCK_CLOEXEC etc.
const SOCK_TYPE_MASK: u64 = 0xf;

/// The rules that refuse raw and packet sockets, keeping `rule`'s conditions on its other
/// arguments. With `allowed` (the profile's allow rule for socket, which an unconditional rule of
/// the same syscall would override), also the rules that keep `allowed` for every other
/// socket: libseccomp takes one comparison per argument, so the complement is spelled out, by
/// family and, for the two families with refused types, by type. The family is an int: only its
/// low 32 bits are compared, as the kernel reads them.
fn raw_socket_rules(rule: &Map<String, Value>, allowed: Option<&str>) -> Vec<Value> {
    let with = |family: u64, ty: Option<u64>, action: &str| {
        let family = masked_eq(0, 0xffff_ffff, family);
        let ty = ty.map(|t| masked_eq(1, SOCK_TYPE_MASK, t));
        narrowed(rule, SOCKET, std::iter::once(family).chain(ty), action)
    };
    let mut out: Vec<Value> = RAW_SOCKETS
        .iter()
        .map(|(f, t)| with(*f, *t, ACT_ERRNO))
        .collect();
    let Some(allowed) = allowed else {
        return out;
    };
    let refused = |f: u64, t: u64| {
        RAW_SOCKETS
            .iter()
            .any(|(rf, rt)| *rf == f && rt.is_none_or(|rt| rt == t))
    };
    let by_type: Vec<u64> = RAW_SOCKETS
        .iter()
        .filter(|(_, t)| t.is_some())
        .map(|(f, _)| *f)
        .collect();
    for family in 0..=AF_MAX {
        if RAW_SOCKETS.iter().any(|(f, t)| *f == family && t.is_none()) {
            continue;
        }
        if by_type.contains(&family) {
            for ty in (0..=SOCK_TYPE_MASK).filter(|t| !refused(family, *t)) {
                out.push(with(family, Some(ty), allowed));
            }
        } else {
            out.push(with(family, None, allowed));
        }
    }
    out
}

fn unconfined() -> Map<String, Value> {
    match json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    }) {
        Value::Object(m) => m,
        _ => unreachable!("a JSON object literal"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add() -> Additions {
        Additions {
            notify: vec!["openat".into(), "execve".into(), "connect".into()],
            deny: vec!["io_uring_setup".into(), "bpf".into()],
            listener_path: "/run/rampart/seccomp.sock".into(),
            listener_metadata: "rampart:v1".into(),
            reads_in_kernel: false,
            deny_new_namespaces: false,
            deny_raw_sockets: false,
            exec_by_guard: false,
        }
    }

    #[test]
    fn execve_is_added_to_mark_the_workload_s_start_unless_the_guard_decides_execs() {
        let only_opens = Additions {
            notify: vec!["openat".into()],
            ..add()
        };
        let p = merge(None, &only_opens).unwrap();
        assert_eq!(action_of(&p, "execve"), [ACT_NOTIFY]);
        assert_eq!(action_of(&p, "execveat"), [ACT_NOTIFY]);
        let guarded = Additions {
            notify: vec!["openat".into(), "execveat".into()],
            exec_by_guard: true,
            ..add()
        };
        let p = merge(None, &guarded).unwrap();
        assert_eq!(action_of(&p, "execve"), Vec::<String>::new());
        assert_eq!(action_of(&p, "execveat"), [ACT_NOTIFY]);
    }

    /// The rules that name `name`, as (action, flags mask, flags value) for those that test the
    /// flags argument (0, 0 for those that don't).
    fn flag_rules(p: &Value, name: &str, index: u64) -> Vec<(String, u64, u64)> {
        p["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["names"].as_array().unwrap().iter().any(|n| n == name))
            .map(|r| {
                let arg = r["args"]
                    .as_array()
                    .and_then(|a| a.iter().find(|a| a["index"] == index).cloned());
                let (m, v) = arg
                    .map(|a| {
                        (
                            a["value"].as_u64().unwrap(),
                            a["valueTwo"].as_u64().unwrap(),
                        )
                    })
                    .unwrap_or((0, 0));
                (r["action"].as_str().unwrap().to_owned(), m, v)
            })
            .collect()
    }

    /// What the filter does with an open of these flags, by the rules above (several notify
    /// rules may match; a matching allow rule must be the only match); None: no rule matches,
    /// the default action.
    fn verdict(rules: &[(String, u64, u64)], flags: u64) -> Option<&str> {
        let mut hits: Vec<&str> = rules
            .iter()
            .filter(|(_, m, v)| flags & m == *v)
            .map(|(a, _, _)| a.as_str())
            .collect();
        hits.dedup();
        assert!(
            hits.len() <= 1,
            "rules disagree for flags {flags:#o}: {hits:?}"
        );
        hits.first().copied()
    }

    #[test]
    fn read_only_opens_stay_in_the_kernel_and_writes_notify() {
        let base = json!({
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "syscalls": [{"names": ["read", "openat", "open"], "action": "SCMP_ACT_ALLOW"}]
        });
        let mut a = add();
        a.notify.push("open".into());
        a.reads_in_kernel = true;
        let restricted = merge(Some(&base), &a).unwrap();
        let unconfined = merge(None, &a).unwrap();
        let ro = [
            libc::O_RDONLY,
            libc::O_RDONLY | libc::O_CLOEXEC | libc::O_DIRECTORY,
            libc::O_PATH,
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK,
        ];
        let rw = [
            libc::O_WRONLY,
            libc::O_RDWR,
            libc::O_RDONLY | libc::O_CREAT,
            libc::O_RDONLY | libc::O_TRUNC,
            libc::O_TMPFILE | libc::O_RDWR,
            libc::O_WRONLY | libc::O_APPEND,
            libc::O_ACCMODE,
        ];
        for (name, index) in [("openat", 2), ("open", 1)] {
            let r = flag_rules(&restricted, name, index);
            let u = flag_rules(&unconfined, name, index);
            for f in ro {
                // Upper bits of the register are not the kernel's flags; masks ignore them.
                let f = f as u64 | 0xdead_0000_0000_0000;
                assert_eq!(verdict(&r, f), Some("SCMP_ACT_ALLOW"), "{name} {f:#o}");
                assert_eq!(verdict(&u, f), None, "{name} {f:#o}: the default allows it");
            }
            for f in rw {
                assert_eq!(verdict(&r, f as u64), Some(ACT_NOTIFY), "{name} {f:#o}");
                assert_eq!(verdict(&u, f as u64), Some(ACT_NOTIFY), "{name} {f:#o}");
            }
        }
        // The rest is as before: read allowed, execve notified.
        assert_eq!(action_of(&restricted, "read"), ["SCMP_ACT_ALLOW"]);
        assert_eq!(action_of(&restricted, "execve"), Vec::<String>::new());
        assert_eq!(action_of(&unconfined, "execve"), [ACT_NOTIFY]);
    }

    #[test]
    fn the_baseline_refuses_namespace_clones_and_clone3_and_keeps_plain_clones() {
        let mut a = add();
        a.deny_new_namespaces = true;
        let base = json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["clone", "clone3", "read"], "action": "SCMP_ACT_ALLOW"}]});
        let restricted = merge(Some(&base), &a).unwrap();
        let unconfined = merge(None, &a).unwrap();
        // fork, pthread_create and vfork's flags; then one namespace flag each.
        let plain = [
            libc::SIGCHLD as u64,
            (libc::CLONE_VM
                | libc::CLONE_FS
                | libc::CLONE_FILES
                | libc::CLONE_SIGHAND
                | libc::CLONE_THREAD
                | libc::CLONE_SYSVSEM
                | libc::CLONE_SETTLS
                | libc::CLONE_PARENT_SETTID
                | libc::CLONE_CHILD_CLEARTID) as u64,
            (libc::CLONE_VM | libc::CLONE_VFORK) as u64 | libc::SIGCHLD as u64,
        ];
        for p in [&restricted, &unconfined] {
            let r = flag_rules(p, "clone", 0);
            for f in plain {
                let expect = (p == &restricted).then_some("SCMP_ACT_ALLOW");
                assert_eq!(verdict(&r, f), expect, "clone {f:#x}");
            }
            for ns in NAMESPACE_FLAGS {
                assert_eq!(
                    verdict(&r, ns | libc::SIGCHLD as u64),
                    Some(ACT_ERRNO),
                    "{ns:#x}"
                );
            }
            let clone3: Vec<_> = p["syscalls"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["names"].as_array().unwrap().iter().any(|n| n == CLONE3))
                .collect();
            assert_eq!(clone3.len(), 1, "{clone3:?}");
            assert_eq!(clone3[0]["action"], ACT_ERRNO);
            assert_eq!(
                clone3[0]["errnoRet"], ENOSYS,
                "the C library falls back to clone"
            );
        }
        // unshare: a namespace flag refused, CLONE_FS and CLONE_FILES as the profile says.
        let unconfined_unshare = flag_rules(&unconfined, "unshare", 0);
        assert_eq!(
            verdict(&unconfined_unshare, libc::CLONE_NEWUSER as u64),
            Some(ACT_ERRNO)
        );
        assert_eq!(
            verdict(&unconfined_unshare, 0x80),
            Some(ACT_ERRNO),
            "CLONE_NEWTIME"
        );
        assert_eq!(
            verdict(
                &unconfined_unshare,
                (libc::CLONE_FS | libc::CLONE_FILES) as u64
            ),
            None
        );
        // Without the baseline, clone is the profile's.
        let p = merge(Some(&base), &add()).unwrap();
        assert_eq!(action_of(&p, "clone"), ["SCMP_ACT_ALLOW"]);
        assert_eq!(action_of(&p, "clone3"), ["SCMP_ACT_ALLOW"]);
    }

    /// The actions of every rule for socket that a call with these arguments matches.
    fn socket_actions(p: &Value, args: [u64; 2]) -> Vec<String> {
        p["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["names"].as_array().unwrap().iter().any(|n| n == SOCKET))
            .filter(|r| {
                r["args"].as_array().into_iter().flatten().all(|a| {
                    let i = a["index"].as_u64().unwrap() as usize;
                    assert_eq!(a["op"], "SCMP_CMP_MASKED_EQ");
                    args[i] & a["value"].as_u64().unwrap() == a["valueTwo"].as_u64().unwrap()
                })
            })
            .map(|r| r["action"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn raw_and_packet_sockets_are_refused_and_every_other_socket_is_the_profiles() {
        let mut a = add();
        a.deny_raw_sockets = true;
        let base = json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["socket", "read"], "action": "SCMP_ACT_ALLOW"}]});
        let restricted = merge(Some(&base), &a).unwrap();
        let unconfined = merge(None, &a).unwrap();
        let cloexec = libc::SOCK_CLOEXEC as u64 | libc::SOCK_NONBLOCK as u64;
        let refused = [
            (libc::AF_PACKET as u64, libc::SOCK_RAW as u64),
            (libc::AF_PACKET as u64, libc::SOCK_DGRAM as u64 | cloexec),
            (libc::AF_INET as u64, libc::SOCK_RAW as u64 | cloexec),
            (libc::AF_INET as u64, 10),
            (libc::AF_INET6 as u64, libc::SOCK_RAW as u64),
            // The kernel reads the family as an int: upper bits change nothing.
            (
                0xdead_0000_0000_0000 | libc::AF_PACKET as u64,
                libc::SOCK_RAW as u64,
            ),
        ];
        for (f, t) in refused {
            for p in [&restricted, &unconfined] {
                assert_eq!(
                    socket_actions(p, [f, t]),
                    [ACT_ERRNO],
                    "socket({f:#x}, {t:#x})"
                );
            }
        }
        let allowed = [
            (libc::AF_INET as u64, libc::SOCK_STREAM as u64 | cloexec),
            (libc::AF_INET as u64, libc::SOCK_DGRAM as u64),
            (libc::AF_INET6 as u64, libc::SOCK_STREAM as u64),
            (libc::AF_INET6 as u64, libc::SOCK_DGRAM as u64 | cloexec),
            (libc::AF_UNIX as u64, libc::SOCK_STREAM as u64),
            (libc::AF_NETLINK as u64, libc::SOCK_RAW as u64 | cloexec),
            (libc::AF_VSOCK as u64, libc::SOCK_STREAM as u64),
        ];
        for (f, t) in allowed {
            assert_eq!(
                socket_actions(&restricted, [f, t]),
                ["SCMP_ACT_ALLOW"],
                "socket({f:#x}, {t:#x})"
            );
            assert!(
                socket_actions(&unconfined, [f, t]).is_empty(),
                "the default allows it"
            );
        }
        // Without egress rules, socket is the profile's.
        let p = merge(Some(&base), &add()).unwrap();
        assert_eq!(action_of(&p, SOCKET), ["SCMP_ACT_ALLOW"]);
    }

    #[test]
    fn a_profile_that_tests_clones_flags_itself_keeps_its_rule() {
        // The runtime's default profile for a container without CAP_SYS_ADMIN.
        let base = json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]});
        let mut a = add();
        a.deny_new_namespaces = true;
        let p = merge(Some(&base), &a).unwrap();
        assert_eq!(
            flag_rules(&p, "clone", 0),
            [("SCMP_ACT_ALLOW".to_owned(), 2114060288, 0)]
        );
        assert_eq!(NAMESPACE_FLAGS.iter().fold(0, |a, f| a | f), 2114060288);
    }

    #[test]
    fn a_profile_that_tests_the_flags_itself_keeps_notifying_every_open() {
        let base = json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["openat"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 2, "value": 1, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]});
        let mut a = add();
        a.reads_in_kernel = true;
        let p = merge(Some(&base), &a).unwrap();
        assert_eq!(action_of(&p, "openat"), [ACT_NOTIFY]);
    }

    fn action_of(p: &Value, name: &str) -> Vec<String> {
        p["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["names"].as_array().unwrap().iter().any(|n| n == name))
            .map(|r| r["action"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn runtime_default_like_profile_is_narrowed_not_replaced() {
        let base = json!({
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [
                {"names": ["read", "openat", "execve", "connect", "bpf"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
                {"names": ["ptrace"], "action": "SCMP_ACT_ERRNO"}
            ],
            "futureField": {"kept": true}
        });
        let p = merge(Some(&base), &add()).unwrap();
        assert_eq!(action_of(&p, "read"), ["SCMP_ACT_ALLOW"]);
        assert_eq!(action_of(&p, "openat"), [ACT_NOTIFY]);
        assert_eq!(action_of(&p, "execve"), [ACT_NOTIFY]);
        assert_eq!(action_of(&p, "bpf"), [ACT_ERRNO]);
        assert_eq!(action_of(&p, "personality"), ["SCMP_ACT_ALLOW"]);
        assert_eq!(action_of(&p, "ptrace"), ["SCMP_ACT_ERRNO"]);
        // Not allowed by the profile: stays refused by its default, never notified.
        assert!(action_of(&p, "io_uring_setup").is_empty());
        assert_eq!(p["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(p["defaultErrnoRet"], 1);
        assert_eq!(p["futureField"]["kept"], true);
        assert_eq!(p["listenerPath"], "/run/rampart/seccomp.sock");
        assert_eq!(p["listenerMetadata"], "rampart:v1");
    }

    #[test]
    fn argument_conditions_carry_over_to_the_notify_rule() {
        let base = json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["connect"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 3, "op": "SCMP_CMP_EQ"}]}]});
        let p = merge(Some(&base), &add()).unwrap();
        let rule = &p["syscalls"][0];
        assert_eq!(rule["action"], ACT_NOTIFY);
        assert_eq!(rule["args"][0]["value"], 3);
    }

    #[test]
    fn unconfined_container_gets_an_allow_default_profile() {
        let p = merge(None, &add()).unwrap();
        assert_eq!(p["defaultAction"], "SCMP_ACT_ALLOW");
        assert_eq!(action_of(&p, "openat"), [ACT_NOTIFY]);
        assert_eq!(action_of(&p, "io_uring_setup"), [ACT_ERRNO]);
        assert_eq!(
            p["syscalls"].as_array().unwrap().last().unwrap()["errnoRet"],
            1
        );
    }

    #[test]
    fn execve_is_always_notified_with_anything_else() {
        let only_opens = Additions {
            notify: vec!["openat".into()],
            ..add()
        };
        let p = merge(None, &only_opens).unwrap();
        assert_eq!(action_of(&p, "execve"), [ACT_NOTIFY]);
        assert_eq!(action_of(&p, "execveat"), [ACT_NOTIFY]);
        let nothing = Additions {
            notify: vec![],
            deny: vec!["bpf".into()],
            ..add()
        };
        let p = merge(None, &nothing).unwrap();
        assert!(
            action_of(&p, "execve").is_empty(),
            "no agent involved: nothing to notify"
        );
    }

    #[test]
    fn io_uring_is_denied_whenever_opens_are_notified() {
        let p = merge(None, &add()).unwrap();
        for s in IO_URING_SYSCALLS {
            assert_eq!(action_of(&p, s), [ACT_ERRNO], "{s}");
        }
        let execs_only = Additions {
            notify: vec!["execve".into()],
            deny: vec![],
            ..add()
        };
        assert!(action_of(&merge(None, &execs_only).unwrap(), "io_uring_setup").is_empty());
    }

    #[test]
    fn denial_wins_over_notification() {
        let mut a = add();
        a.notify.push("bpf".into());
        let p = merge(None, &a).unwrap();
        assert_eq!(action_of(&p, "bpf"), [ACT_ERRNO]);
    }

    #[test]
    fn another_agents_listener_is_a_clear_error() {
        let base = json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/other.sock"});
        let err = merge(Some(&base), &add()).unwrap_err();
        assert_eq!(err, MergeError::ListenerTaken("/run/other.sock".into()));
        assert!(err.to_string().contains("remove listenerPath"));
    }

    #[test]
    fn malformed_profiles_are_errors_not_panics() {
        for bad in [
            json!("x"),
            json!({"syscalls": []}),
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": {}}),
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [1]}),
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"]}]}),
        ] {
            assert!(
                matches!(merge(Some(&bad), &add()), Err(MergeError::Malformed(_))),
                "{bad}"
            );
        }
    }
}
