//! Whether this node's kernel lets BPF LSM programs decide: what rampart reports for the `bpf-lsm`
//! mechanism. The probe loads and attaches the smallest LSM program (an allow-all `file_open`),
//! then lets it go; the kernel's answer is the fact, whatever its configuration says.

use libbpf_rs::ObjectBuilder;

static BPF_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/lsm_probe.bpf.o"));

/// Where the kernel lists its active LSMs (securityfs).
const LSM_LIST: &str = "/sys/kernel/security/lsm";

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LsmSupport {
    /// An LSM program loaded and attached.
    Available,
    /// Why not, in words for an operator.
    Unavailable(String),
}

/// Loads and attaches the probe program, then detaches it. Needs root.
pub fn probe() -> LsmSupport {
    let listed = std::fs::read_to_string(LSM_LIST).ok();
    let not_listed = listed
        .as_deref()
        .filter(|l| !l.trim().split(',').any(|m| m == "bpf"))
        .map(|l| {
            format!(
                "bpf is not among the kernel's LSMs ({}); boot with lsm=...,bpf",
                l.trim()
            )
        });
    // libbpf's own account of a refusal ("try raising 'ulimit -l'?") would mislead in the log:
    // the reason is returned instead.
    let print = libbpf_rs::set_print(None);
    let attached = ObjectBuilder::default()
        .open_memory(BPF_OBJECT)
        .and_then(|o| o.load())
        .map_err(|e| format!("the kernel refused to load a BPF LSM program ({e})"))
        .and_then(|obj| {
            let mut progs = obj.progs_mut();
            let prog = progs
                .find(|p| p.name() == "rampart_lsm_probe")
                .ok_or_else(|| "the probe program is missing from its object".to_owned())?;
            prog.attach_lsm()
                .map(drop)
                .map_err(|e| format!("attaching a BPF LSM program failed ({e})"))
        });
    libbpf_rs::set_print(print);
    match (attached, not_listed) {
        (Ok(()), _) => LsmSupport::Available,
        (Err(why), Some(listed)) => LsmSupport::Unavailable(format!("{listed}; {why}")),
        (Err(why), None) if listed.is_none() => LsmSupport::Unavailable(format!(
            "{why}; the LSM list is unknown ({LSM_LIST} not mounted)"
        )),
        (Err(why), None) => LsmSupport::Unavailable(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This project's test kernel refuses LSM programs to every process but the VM's init: the
    /// probe must say unavailable, and why. Elsewhere it must agree with the kernel's LSM list.
    #[test]
    fn the_probe_agrees_with_the_kernel() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("needs root; skipped");
            return;
        }
        match probe() {
            LsmSupport::Available => {
                let list = std::fs::read_to_string(LSM_LIST).unwrap_or_default();
                assert!(list.split(',').any(|m| m.trim() == "bpf"), "{list}");
            }
            LsmSupport::Unavailable(why) => {
                assert!(why.contains("LSM"), "{why}");
            }
        }
    }
}
