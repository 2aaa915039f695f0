//! The seccomp adjustment (`seccomp_policy`): rampart's rules merged into the container's own
//! profile (resolved policy, Unconfined, a Localhost file; RuntimeDefault as a kind refused), and
//! the OCI JSON round trip.

mod common;

use common::seccomp::{actions, runtime_default_like};
use rampart_nri::nri::security_profile::ProfileType;
use rampart_nri::nri::{Container, LinuxContainer, OptionalUInt32, SecurityProfile};
use rampart_nri::seccomp_merge::{ACT_ERRNO, ACT_NOTIFY, Additions};
use rampart_nri::seccomp_policy::{
    ExistingSeccomp, PolicyError, adjusted, existing, from_oci, to_oci,
};
use serde_json::json;

fn add() -> Additions {
    Additions {
        notify: vec!["openat".into(), "execve".into()],
        deny: vec!["io_uring_setup".into()],
        listener_path: "/run/rampart/seccomp.sock".into(),
        listener_metadata: "rampart/v1 shop/web/nginx".into(),
        reads_in_kernel: false,
        deny_new_namespaces: false,
        deny_raw_sockets: false,
        exec_by_guard: false,
    }
}

#[test]
fn the_flag_conditions_of_read_only_opens_survive_the_nri_shape() {
    let mut a = add();
    a.reads_in_kernel = true;
    let p = adjusted(&ExistingSeccomp::Policy(runtime_default_like()), &a).unwrap();
    let openat: Vec<_> = p
        .syscalls
        .iter()
        .filter(|r| r.names.iter().any(|n| n == "openat"))
        .collect();
    // One notify rule per write flag, and the allow for the rest.
    assert_eq!(openat.len(), 6, "{openat:?}");
    let allow = openat
        .iter()
        .find(|r| r.action == "SCMP_ACT_ALLOW")
        .expect("read-only openat stays allowed");
    assert_eq!(allow.args.len(), 1);
    assert_eq!(allow.args[0].index, 2);
    assert_eq!(allow.args[0].op, "SCMP_CMP_MASKED_EQ");
    assert_eq!(allow.args[0].value_two, 0);
    assert_ne!(allow.args[0].value, 0);
    for r in openat.iter().filter(|r| r.action == ACT_NOTIFY) {
        assert_eq!(r.args[0].value, r.args[0].value_two, "{r:?}");
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
