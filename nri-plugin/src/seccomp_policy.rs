//! Adjustment mode (NRI >= 0.10): the merged profile as NRI's `LinuxSeccomp`, which replaces the
//! container's `linux.seccomp` outright. The merge itself is [`seccomp_merge::merge`] on the OCI
//! JSON shape, so both modes narrow a profile the same way.
//!
//! NRI replaces rather than patches, so the plugin must know the container's own profile. NRI's
//! `Container.linux` carries two fields for it (NRI >= 0.10): `seccomp_policy` (8, the resolved
//! filter) and `seccomp_profile` (7, the kind CRI asked for: RuntimeDefault, Unconfined or
//! Localhost with the profile's path). [`existing`] uses the first that tells the whole profile:
//! the resolved filter; else Unconfined (nothing to keep); else a Localhost profile read from its
//! file on the node, as containerd itself reads it. RuntimeDefault without the resolved filter
//! stays unknown: containerd 2.2 (internal/nri/container_linux.go) sends only the kind, and the
//! runtime's default rules depend on its version and the container's capabilities, so rampart
//! refuses to adjust rather than replace RuntimeDefault with a guess (an allow-all base would
//! widen what the container may do).

use std::path::Path;

use rampart_protos::nri::security_profile::ProfileType;
use rampart_protos::nri::{Container, LinuxSeccomp, LinuxSeccompArg, LinuxSyscall, OptionalUInt32};
use serde_json::{Map, Value, json};

use crate::seccomp_merge::{self, Additions, MergeError};

/// OCI `linux.seccomp` fields NRI's LinuxSeccomp carries.
const OCI_FIELDS: [&str; 7] = [
    "defaultAction",
    "defaultErrnoRet",
    "architectures",
    "flags",
    "listenerPath",
    "listenerMetadata",
    "syscalls",
];

/// What the runtime told us about the container's own seccomp profile.
#[derive(Debug, Clone, PartialEq)]
pub enum ExistingSeccomp {
    /// The resolved filter (NRI `Container.linux.seccomp_policy`, or a Localhost profile's file).
    Policy(LinuxSeccomp),
    /// The container runs without seccomp: rampart's profile may start from allow-all.
    Unconfined,
    /// The merge cannot be done without widening or guessing; says why.
    Unknown(String),
}

/// The container's profile as NRI reports it (see the module docs for the order).
pub fn existing(c: &Container) -> ExistingSeccomp {
    let Some(linux) = &c.linux else {
        return ExistingSeccomp::Unknown("the runtime sent no Linux container data".into());
    };
    if let Some(p) = &linux.seccomp_policy {
        return ExistingSeccomp::Policy(p.clone());
    }
    let Some(profile) = &linux.seccomp_profile else {
        return ExistingSeccomp::Unknown(
            "the runtime sent neither Container.linux.seccomp_policy nor seccomp_profile (NRI < \
             0.10?)"
                .into(),
        );
    };
    match profile.profile_type() {
        ProfileType::Unconfined => ExistingSeccomp::Unconfined,
        ProfileType::Localhost => match localhost(Path::new(&profile.localhost_ref)) {
            Ok(p) => ExistingSeccomp::Policy(p),
            Err(why) => ExistingSeccomp::Unknown(why),
        },
        ProfileType::RuntimeDefault => ExistingSeccomp::Unknown(
            "the container uses the runtime's default profile (RuntimeDefault) and the runtime \
             sent only that kind, not its rules (Container.linux.seccomp_policy)"
                .into(),
        ),
    }
}

/// A Localhost profile, read from the node as the runtime reads it: OCI `linux.seccomp` JSON
/// whose unknown fields the runtime ignores (Go's JSON decoding), so they are dropped here too.
fn localhost(path: &Path) -> Result<LinuxSeccomp, String> {
    if !path.is_absolute() {
        return Err(format!(
            "the Localhost seccomp profile {path:?} is not an absolute path"
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read the container's Localhost seccomp profile {}: {e} (does rampart-nri see \
             the node's filesystem?)",
            path.display()
        )
    })?;
    let mut v: Value = serde_json::from_str(&text).map_err(|e| {
        format!(
            "the Localhost seccomp profile {} is not JSON: {e}",
            path.display()
        )
    })?;
    if let Value::Object(o) = &mut v {
        o.retain(|k, _| OCI_FIELDS.contains(&k.as_str()));
    }
    from_oci(&v).map_err(|e| format!("the Localhost seccomp profile {}: {e}", path.display()))
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error(
        "an NRI seccomp adjustment replaces the container's whole seccomp profile, and rampart \
         cannot tell that profile: {0}; run rampart-nri with --seccomp-mode annotation and \
         rampart-runc as the runtime's BinaryName"
    )]
    Unknown(String),
    #[error(transparent)]
    Merge(#[from] MergeError),
    #[error("the merged seccomp profile does not fit NRI's LinuxSeccomp: {0}")]
    Shape(String),
}

/// The profile to put in `LinuxContainerAdjustment.seccomp_policy`.
pub fn adjusted(existing: &ExistingSeccomp, add: &Additions) -> Result<LinuxSeccomp, PolicyError> {
    let base = match existing {
        ExistingSeccomp::Policy(p) => Some(to_oci(p)),
        ExistingSeccomp::Unconfined => None,
        ExistingSeccomp::Unknown(why) => return Err(PolicyError::Unknown(why.clone())),
    };
    let merged = seccomp_merge::merge(base.as_ref(), add)?;
    from_oci(&merged)
}

/// NRI's LinuxSeccomp as OCI's `linux.seccomp` JSON.
pub fn to_oci(p: &LinuxSeccomp) -> Value {
    let mut m = Map::new();
    m.insert("defaultAction".into(), json!(p.default_action));
    if let Some(e) = &p.default_errno {
        m.insert("defaultErrnoRet".into(), json!(e.value));
    }
    if !p.architectures.is_empty() {
        m.insert("architectures".into(), json!(p.architectures));
    }
    if !p.flags.is_empty() {
        m.insert("flags".into(), json!(p.flags));
    }
    if !p.listener_path.is_empty() {
        m.insert("listenerPath".into(), json!(p.listener_path));
    }
    if !p.listener_metadata.is_empty() {
        m.insert("listenerMetadata".into(), json!(p.listener_metadata));
    }
    let syscalls: Vec<Value> = p
        .syscalls
        .iter()
        .map(|s| {
            let mut r = Map::new();
            r.insert("names".into(), json!(s.names));
            r.insert("action".into(), json!(s.action));
            if let Some(e) = &s.errno_ret {
                r.insert("errnoRet".into(), json!(e.value));
            }
            if !s.args.is_empty() {
                let args: Vec<Value> = s
                    .args
                    .iter()
                    .map(|a| {
                        json!({"index": a.index, "value": a.value, "valueTwo": a.value_two,
                               "op": a.op})
                    })
                    .collect();
                r.insert("args".into(), Value::Array(args));
            }
            Value::Object(r)
        })
        .collect();
    m.insert("syscalls".into(), Value::Array(syscalls));
    Value::Object(m)
}

/// OCI's `linux.seccomp` JSON as NRI's LinuxSeccomp. Fields NRI has no place for are an error,
/// not dropped: a profile that silently loses a rule is not the profile that was asked for.
pub fn from_oci(v: &Value) -> Result<LinuxSeccomp, PolicyError> {
    let shape = |what: &str| PolicyError::Shape(what.to_owned());
    let o = v.as_object().ok_or_else(|| shape("not an object"))?;
    for k in o.keys() {
        if !OCI_FIELDS.contains(&k.as_str()) {
            return Err(shape(&format!("field {k} has no NRI equivalent")));
        }
    }
    let s = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let strings = |v: Option<&Value>| -> Result<Vec<String>, PolicyError> {
        match v {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| shape("a list entry is not a string"))
                })
                .collect(),
            Some(_) => Err(shape("expected a list of strings")),
        }
    };
    let u32_of = |v: Option<&Value>| -> Result<Option<OptionalUInt32>, PolicyError> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(x) => x
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(|value| Some(OptionalUInt32 { value }))
                .ok_or_else(|| shape("an errno is not a 32-bit number")),
        }
    };
    let mut syscalls = Vec::new();
    for r in o
        .get("syscalls")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let r = r
            .as_object()
            .ok_or_else(|| shape("a syscalls entry is not an object"))?;
        let mut args = Vec::new();
        for a in r
            .get("args")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let n = |k: &str| a.get(k).and_then(Value::as_u64).unwrap_or(0);
            args.push(LinuxSeccompArg {
                index: u32::try_from(n("index")).map_err(|_| shape("arg index too large"))?,
                value: n("value"),
                value_two: n("valueTwo"),
                op: a.get("op").and_then(Value::as_str).unwrap_or("").to_owned(),
            });
        }
        syscalls.push(LinuxSyscall {
            names: strings(r.get("names"))?,
            action: r
                .get("action")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            errno_ret: u32_of(r.get("errnoRet"))?,
            args,
        });
    }
    Ok(LinuxSeccomp {
        default_action: s("defaultAction"),
        default_errno: u32_of(o.get("defaultErrnoRet"))?,
        architectures: strings(o.get("architectures"))?,
        flags: strings(o.get("flags"))?,
        listener_path: s("listenerPath"),
        listener_metadata: s("listenerMetadata"),
        syscalls,
    })
}
