//! Checks every field and enum value in our `api.proto` against the NRI descriptor compiled into
//! this machine's containerd binary, so a wrong field number fails here rather than as a silently
//! dropped field on the wire.
//!
//! Go's protobuf embeds each .proto's raw `FileDescriptorProto` in the binary. We find NRI's by its
//! leading bytes (name "pkg/api/api.proto", package "nri.pkg.api.v1alpha1") and decode it.

use prost::Message;
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorProto, FileDescriptorSet};
use rampart_protos::nri::FILE_DESCRIPTOR_SET;

const CONTAINERD: &str = "/usr/bin/containerd";
/// Fields and messages that only NRI >= 0.10 has; a v0.8 containerd lacks them.
const NEWER_THAN_V0_8: &[&str] = &[
    "ConfigureRequest.NRI_version",
    "LinuxContainerAdjustment.seccomp_policy",
    "LinuxContainer.seccomp_profile",
    "LinuxContainer.seccomp_policy",
    "SecurityProfile",
    "LinuxSeccomp",
    "LinuxSyscall",
    "LinuxSeccompArg",
];

fn ours() -> FileDescriptorProto {
    let set = FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("our descriptor set decodes");
    set.file
        .into_iter()
        .find(|f| f.package() == "nri.pkg.api.v1alpha1")
        .expect("our descriptor set holds nri/api.proto")
}

/// The NRI descriptor in a Go binary, or why there is none.
fn theirs(binary: &[u8]) -> Result<FileDescriptorProto, String> {
    let name = b"pkg/api/api.proto";
    let package = b"nri.pkg.api.v1alpha1";
    // field 1 (name) then field 2 (package), both length-delimited.
    let mut marker = vec![0x0a, name.len() as u8];
    marker.extend_from_slice(name);
    marker.extend_from_slice(&[0x12, package.len() as u8]);
    marker.extend_from_slice(package);
    let start = binary
        .windows(marker.len())
        .position(|w| w == marker)
        .ok_or("no NRI api.proto descriptor in the binary")?;
    // The descriptor is not length-prefixed in the binary: walk its top-level fields (numbers 1..=14,
    // varint or length-delimited) until the bytes stop looking like one.
    let mut pos = start;
    while let Some((key, after_key)) = varint(binary, pos) {
        let (field, wire) = (key >> 3, key & 7);
        if !(1..=14).contains(&field) {
            break;
        }
        let next = match wire {
            0 => varint(binary, after_key).map(|(_, p)| p),
            2 => varint(binary, after_key).map(|(len, p)| p + len as usize),
            _ => None,
        };
        match next {
            Some(p) if p <= binary.len() => pos = p,
            _ => break,
        }
    }
    FileDescriptorProto::decode(&binary[start..pos]).map_err(|e| format!("decoding it failed: {e}"))
}

fn varint(b: &[u8], mut pos: usize) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(pos)?;
        pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some((value, pos));
        }
    }
    None
}

fn compare_message(
    path: &str,
    ours: &DescriptorProto,
    theirs: &DescriptorProto,
    errors: &mut Vec<String>,
) {
    for f in &ours.field {
        let name = format!("{path}.{}", f.name());
        match theirs.field.iter().find(|t| t.number == f.number) {
            None if NEWER_THAN_V0_8.contains(&name.as_str()) => {}
            None => errors.push(format!(
                "{name} = {}: no such field number in NRI v0.8",
                f.number()
            )),
            Some(t) => {
                if (t.name(), t.r#type(), t.label(), t.type_name())
                    != (f.name(), f.r#type(), f.label(), f.type_name())
                {
                    errors.push(format!(
                        "{name} = {}: ours is {:?} {:?} {} {}, NRI's is {:?} {:?} {} {}",
                        f.number(),
                        f.label(),
                        f.r#type(),
                        f.type_name(),
                        f.name(),
                        t.label(),
                        t.r#type(),
                        t.type_name(),
                        t.name()
                    ));
                }
            }
        }
    }
    for n in &ours.nested_type {
        let nested = format!("{path}.{}", n.name());
        match theirs.nested_type.iter().find(|t| t.name == n.name) {
            Some(t) => compare_message(&nested, n, t, errors),
            None => errors.push(format!("{nested}: no such nested message in NRI v0.8")),
        }
    }
}

fn compare_enum(
    ours: &EnumDescriptorProto,
    theirs: &EnumDescriptorProto,
    errors: &mut Vec<String>,
) {
    for v in &ours.value {
        match theirs.value.iter().find(|t| t.number == v.number) {
            Some(t) if t.name == v.name => {}
            Some(t) => errors.push(format!(
                "{}.{} = {}: NRI calls it {}",
                ours.name(),
                v.name(),
                v.number(),
                t.name()
            )),
            None => errors.push(format!(
                "{}.{} = {}: no such value in NRI v0.8",
                ours.name(),
                v.name(),
                v.number()
            )),
        }
    }
}

#[test]
fn field_numbers_match_the_nri_in_containerd() {
    let binary = match std::fs::read(CONTAINERD) {
        Ok(b) => b,
        Err(e) => {
            assert!(
                std::env::var_os("RAMPART_NODE_TESTS").is_none(),
                "RAMPART_NODE_TESTS is set but {CONTAINERD} cannot be read: {e}"
            );
            println!(
                "SKIPPED: cannot read {CONTAINERD} ({e}); install containerd (scripts/setup-node) to check field numbers"
            );
            return;
        }
    };
    let theirs = match theirs(&binary) {
        Ok(d) => d,
        Err(why) => {
            assert!(
                std::env::var_os("RAMPART_NODE_TESTS").is_none(),
                "RAMPART_NODE_TESTS is set but {CONTAINERD} yields no NRI descriptor: {why}"
            );
            println!("SKIPPED: {CONTAINERD}: {why}; this containerd may not embed NRI");
            return;
        }
    };
    let ours = ours();
    let mut errors = Vec::new();
    for m in &ours.message_type {
        match theirs.message_type.iter().find(|t| t.name == m.name) {
            Some(t) => compare_message(m.name(), m, t, &mut errors),
            None if NEWER_THAN_V0_8.contains(&m.name()) => {}
            None => errors.push(format!("message {}: not in NRI v0.8", m.name())),
        }
    }
    for e in &ours.enum_type {
        match theirs.enum_type.iter().find(|t| t.name == e.name) {
            Some(t) => compare_enum(e, t, &mut errors),
            None => errors.push(format!("enum {}: not in NRI v0.8", e.name())),
        }
    }
    for s in &ours.service {
        let t = theirs.service.iter().find(|t| t.name == s.name);
        for m in &s.method {
            let found = t.and_then(|t| t.method.iter().find(|x| x.name == m.name));
            match found {
                Some(x)
                    if (x.input_type(), x.output_type()) == (m.input_type(), m.output_type()) => {}
                Some(_) => errors.push(format!(
                    "{}.{}: request/response types differ from NRI's",
                    s.name(),
                    m.name()
                )),
                None => errors.push(format!(
                    "{}.{}: no such RPC in NRI v0.8",
                    s.name(),
                    m.name()
                )),
            }
        }
    }
    println!(
        "checked {} messages, {} enums, {} services against {CONTAINERD}",
        ours.message_type.len(),
        ours.enum_type.len(),
        ours.service.len()
    );
    assert!(
        errors.is_empty(),
        "api.proto disagrees with NRI v0.8:\n  {}",
        errors.join("\n  ")
    );
}
