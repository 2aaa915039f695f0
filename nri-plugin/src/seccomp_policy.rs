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

/// Test support for the seccomp adjustment, shared by this crate's unit tests and its integration
/// tests (`tests/fake_runtime.rs`): an input profile and a way to look into a result. Each test
/// states its own expectations.
pub mod test_support {
    use rampart_protos::nri::{LinuxSeccomp, LinuxSeccompArg, LinuxSyscall, OptionalUInt32};

    /// The actions of the rules in `p` that name `syscall`, in order.
    pub fn actions(p: &LinuxSeccomp, syscall: &str) -> Vec<String> {
        p.syscalls
            .iter()
            .filter(|s| s.names.iter().any(|n| n == syscall))
            .map(|s| s.action.clone())
            .collect()
    }

    /// A RuntimeDefault-like profile, as a runtime that resolves it would send in
    /// `Container.linux.seccomp_policy`: errno by default, an allow list (read, write, openat,
    /// execve), one rule with arguments (personality(8)).
    pub fn runtime_default_like() -> LinuxSeccomp {
        LinuxSeccomp {
            default_action: "SCMP_ACT_ERRNO".into(),
            default_errno: Some(OptionalUInt32 { value: 1 }),
            architectures: vec!["SCMP_ARCH_X86_64".into()],
            syscalls: vec![
                LinuxSyscall {
                    names: vec![
                        "read".into(),
                        "write".into(),
                        "openat".into(),
                        "execve".into(),
                    ],
                    action: "SCMP_ACT_ALLOW".into(),
                    ..Default::default()
                },
                LinuxSyscall {
                    names: vec!["personality".into()],
                    action: "SCMP_ACT_ALLOW".into(),
                    args: vec![LinuxSeccompArg {
                        index: 0,
                        value: 8,
                        value_two: 0,
                        op: "SCMP_CMP_EQ".into(),
                    }],
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{actions, runtime_default_like};
    use super::*;
    use crate::seccomp_merge::{ACT_ERRNO, ACT_NOTIFY};
    use rampart_protos::nri::{LinuxContainer, SecurityProfile};

    fn add() -> Additions {
        Additions {
            notify: vec!["openat".into(), "execve".into()],
            deny: vec!["io_uring_setup".into()],
            listener_path: "/run/rampart/seccomp.sock".into(),
            listener_metadata: "rampart/v1 shop/web/nginx".into(),
        }
    }

    #[test]
    fn narrows_the_containers_own_policy() {
        let p = adjusted(&ExistingSeccomp::Policy(runtime_default_like()), &add()).unwrap();
        assert_eq!(p.default_action, "SCMP_ACT_ERRNO");
        assert_eq!(p.default_errno, Some(OptionalUInt32 { value: 1 }));
        assert_eq!(p.architectures, ["SCMP_ARCH_X86_64"]);
        assert_eq!(actions(&p, "read"), ["SCMP_ACT_ALLOW"]);
        assert_eq!(actions(&p, "openat"), [ACT_NOTIFY]);
        assert_eq!(actions(&p, "execve"), [ACT_NOTIFY]);
        assert_eq!(actions(&p, "personality"), ["SCMP_ACT_ALLOW"]);
        assert_eq!(
            p.syscalls
                .iter()
                .find(|s| s.names == ["personality"])
                .unwrap()
                .args[0]
                .value,
            8
        );
        // The default already refuses it: no rule, never notified.
        assert!(actions(&p, "io_uring_setup").is_empty());
        assert_eq!(p.listener_path, "/run/rampart/seccomp.sock");
        assert_eq!(p.listener_metadata, "rampart/v1 shop/web/nginx");
    }

    #[test]
    fn unconfined_gets_allow_default_with_rampart_rules() {
        let p = adjusted(&ExistingSeccomp::Unconfined, &add()).unwrap();
        assert_eq!(p.default_action, "SCMP_ACT_ALLOW");
        assert_eq!(actions(&p, "openat"), [ACT_NOTIFY]);
        assert_eq!(actions(&p, "io_uring_setup"), [ACT_ERRNO]);
        let deny = p.syscalls.iter().find(|s| s.action == ACT_ERRNO).unwrap();
        assert_eq!(deny.errno_ret, Some(OptionalUInt32 { value: 1 }));
    }

    #[test]
    fn unknown_profile_is_refused_not_widened() {
        let err = adjusted(&ExistingSeccomp::Unknown("test".into()), &add()).unwrap_err();
        assert!(matches!(err, PolicyError::Unknown(_)));
        assert!(
            err.to_string().contains("--seccomp-mode annotation"),
            "{err}"
        );
    }

    #[test]
    fn oci_round_trip_keeps_every_field() {
        let mut p = runtime_default_like();
        p.flags = vec!["SECCOMP_FILTER_FLAG_LOG".into()];
        p.listener_path = "/x".into();
        p.listener_metadata = "m".into();
        p.syscalls[0].errno_ret = Some(OptionalUInt32 { value: 38 });
        assert_eq!(from_oci(&to_oci(&p)).unwrap(), p);
    }

    #[test]
    fn fields_nri_cannot_carry_are_an_error() {
        let v = json!({"defaultAction": "SCMP_ACT_ALLOW", "futureField": 1});
        assert!(matches!(from_oci(&v), Err(PolicyError::Shape(_))));
    }

    fn with_linux(linux: LinuxContainer) -> Container {
        Container {
            linux: Some(linux),
            ..Default::default()
        }
    }

    fn profile(t: ProfileType, localhost_ref: &str) -> Option<SecurityProfile> {
        Some(SecurityProfile {
            profile_type: t as i32,
            localhost_ref: localhost_ref.into(),
        })
    }

    #[test]
    fn existing_prefers_the_resolved_policy() {
        let c = with_linux(LinuxContainer {
            seccomp_profile: profile(ProfileType::RuntimeDefault, ""),
            seccomp_policy: Some(runtime_default_like()),
            ..Default::default()
        });
        assert_eq!(
            existing(&c),
            ExistingSeccomp::Policy(runtime_default_like())
        );
    }

    #[test]
    fn existing_from_the_profile_kind() {
        let kind = |t, r: &str| {
            existing(&with_linux(LinuxContainer {
                seccomp_profile: profile(t, r),
                ..Default::default()
            }))
        };
        assert_eq!(
            kind(ProfileType::Unconfined, ""),
            ExistingSeccomp::Unconfined
        );
        assert!(
            matches!(kind(ProfileType::RuntimeDefault, ""), ExistingSeccomp::Unknown(w) if w.contains("RuntimeDefault"))
        );
        assert!(matches!(
            kind(ProfileType::Localhost, "/nonexistent/rampart/profile.json"),
            ExistingSeccomp::Unknown(w) if w.contains("cannot read")
        ));
        assert!(matches!(
            kind(ProfileType::Localhost, "relative.json"),
            ExistingSeccomp::Unknown(w) if w.contains("absolute")
        ));
        // NRI < 0.10 sends neither field.
        assert!(matches!(
            existing(&with_linux(LinuxContainer::default())),
            ExistingSeccomp::Unknown(_)
        ));
        assert!(matches!(
            existing(&Container::default()),
            ExistingSeccomp::Unknown(_)
        ));
    }

    #[test]
    fn existing_reads_a_localhost_profile_as_the_runtime_does() {
        let dir = std::env::temp_dir().join(format!("rampart-localhost-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("profile.json");
        // Docker-format extras (archMap) are ignored by the runtime's decoder, and so here.
        std::fs::write(
            &path,
            r#"{"defaultAction":"SCMP_ACT_ERRNO","archMap":[{"architecture":"x"}],
               "syscalls":[{"names":["read","openat"],"action":"SCMP_ACT_ALLOW"}]}"#,
        )
        .unwrap();
        let got = existing(&with_linux(LinuxContainer {
            seccomp_profile: profile(ProfileType::Localhost, path.to_str().unwrap()),
            ..Default::default()
        }));
        let ExistingSeccomp::Policy(p) = got else {
            panic!("expected the file's policy, got {got:?}");
        };
        assert_eq!(p.default_action, "SCMP_ACT_ERRNO");
        assert_eq!(p.syscalls[0].names, ["read", "openat"]);
        let merged = adjusted(&ExistingSeccomp::Policy(p), &add()).unwrap();
        assert_eq!(actions(&merged, "openat"), [ACT_NOTIFY]);
        assert_eq!(actions(&merged, "read"), ["SCMP_ACT_ALLOW"]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
