//! How the seccomp additions reach the container: NRI >= 0.10 (containerd >= 2.2) can adjust the
//! OCI seccomp policy itself; older runtimes cannot, so the additions travel in an annotation that
//! `rampart-runc` merges into config.json.

use std::fmt;

use rampart_protos::nri::ConfigureRequest;

/// The operator's choice (`--seccomp-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SeccompMode {
    /// Follow the runtime version that Configure reports.
    #[default]
    Auto,
    Annotation,
    Adjustment,
}

/// What this connection to the runtime uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injection {
    /// `rampart.dev/seccomp` annotation + rampart-runc (NRI <= 0.9, containerd 1.7–2.1).
    Annotation,
    /// `LinuxContainerAdjustment.seccomp_policy` (NRI >= 0.10, containerd >= 2.2).
    Adjustment,
}

impl fmt::Display for Injection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Injection::Annotation => "annotation",
            Injection::Adjustment => "adjustment",
        })
    }
}

/// The first NRI and containerd versions that apply a plugin's seccomp adjustment.
const NRI_SECCOMP: (u32, u32) = (0, 10);
const CONTAINERD_SECCOMP: (u32, u32) = (2, 2);

/// Decides the injection for a runtime, and says why (for the Configure log line).
pub fn resolve(mode: SeccompMode, req: &ConfigureRequest) -> (Injection, String) {
    match mode {
        SeccompMode::Annotation => (Injection::Annotation, "--seccomp-mode annotation".into()),
        SeccompMode::Adjustment => (Injection::Adjustment, "--seccomp-mode adjustment".into()),
        SeccompMode::Auto => {
            // NRI_version only exists from 0.10 on; older runtimes leave it empty.
            if let Some(v) = major_minor(&req.nri_version) {
                let inj = if v >= NRI_SECCOMP {
                    Injection::Adjustment
                } else {
                    Injection::Annotation
                };
                return (inj, format!("runtime speaks NRI {}", req.nri_version));
            }
            let is_containerd = req.runtime_name.contains("containerd");
            match major_minor(&req.runtime_version) {
                Some(v) if is_containerd && v >= CONTAINERD_SECCOMP => (
                    Injection::Adjustment,
                    format!("containerd {} (>= 2.2)", req.runtime_version),
                ),
                Some(_) if is_containerd => (
                    Injection::Annotation,
                    format!("containerd {} (< 2.2)", req.runtime_version),
                ),
                _ => (
                    // An unknown runtime may not apply the adjustment and would drop it silently;
                    // rampart-runc at least fails closed when it is installed.
                    Injection::Annotation,
                    format!(
                        "unrecognised runtime {:?} {:?}; set --seccomp-mode to be explicit",
                        req.runtime_name, req.runtime_version
                    ),
                ),
            }
        }
    }
}

/// `v2.1.9`, `2.2.0-rc.1`, `1.7.24~ds1-1` → (major, minor).
fn major_minor(v: &str) -> Option<(u32, u32)> {
    let v = v.trim().trim_start_matches('v');
    let mut parts = v.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(name: &str, version: &str, nri: &str) -> ConfigureRequest {
        ConfigureRequest {
            runtime_name: name.into(),
            runtime_version: version.into(),
            nri_version: nri.into(),
            ..Default::default()
        }
    }

    #[test]
    fn auto_follows_the_runtime() {
        let auto = |r| resolve(SeccompMode::Auto, &r).0;
        // This machine: containerd 2.1.9 from Debian, NRI 0.8 (no NRI_version).
        assert_eq!(
            auto(req("containerd", "2.1.9~ds1-1", "")),
            Injection::Annotation
        );
        assert_eq!(
            auto(req("containerd", "v1.7.27", "")),
            Injection::Annotation
        );
        assert_eq!(auto(req("containerd", "v2.2.0", "")), Injection::Adjustment);
        assert_eq!(
            auto(req("containerd", "v2.2.0", "v0.10.0")),
            Injection::Adjustment
        );
        assert_eq!(
            auto(req("cri-o", "1.34.0", "v0.10.0")),
            Injection::Adjustment
        );
        assert_eq!(auto(req("cri-o", "1.30.0", "")), Injection::Annotation);
        assert_eq!(auto(req("", "", "")), Injection::Annotation);
    }

    #[test]
    fn explicit_modes_win() {
        let r = req("containerd", "v2.2.0", "v0.10.0");
        assert_eq!(
            resolve(SeccompMode::Annotation, &r).0,
            Injection::Annotation
        );
        let old = req("containerd", "v1.7.0", "");
        assert_eq!(
            resolve(SeccompMode::Adjustment, &old).0,
            Injection::Adjustment
        );
    }

    #[test]
    fn parses_versions() {
        assert_eq!(major_minor("v2.1.9"), Some((2, 1)));
        assert_eq!(major_minor("2.2.0-rc.1"), Some((2, 2)));
        assert_eq!(major_minor("0.10.0"), Some((0, 10)));
        assert_eq!(major_minor("garbage"), None);
        assert_eq!(major_minor(""), None);
    }
}
