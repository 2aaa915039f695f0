//! What a pod and its containers should be, and how that becomes CRI's sandbox and container
//! configs the way a kubelet would fill them in.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use k8s_cri::v1 as cri;

use super::error::CriError;
use super::node;

// The labels a real kubelet puts on sandboxes and containers: NRI plugins (ours included) and
// containerd's own annotations key workloads on them.
pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";

/// Seccomp profile of a container, as a pod spec's `securityContext.seccompProfile` says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeccompProfile {
    /// containerd's default profile.
    RuntimeDefault,
    /// No seccomp filter at all.
    Unconfined,
    /// A JSON profile file on the node (absolute path).
    Localhost(PathBuf),
}

impl SeccompProfile {
    pub(crate) fn to_cri(&self) -> cri::SecurityProfile {
        use cri::security_profile::ProfileType;
        let (profile_type, localhost_ref) = match self {
            SeccompProfile::RuntimeDefault => (ProfileType::RuntimeDefault, String::new()),
            SeccompProfile::Unconfined => (ProfileType::Unconfined, String::new()),
            SeccompProfile::Localhost(path) => {
                (ProfileType::Localhost, path.to_string_lossy().into_owned())
            }
        };
        cri::SecurityProfile {
            profile_type: profile_type as i32,
            localhost_ref,
        }
    }
}

impl FromStr for SeccompProfile {
    type Err = CriError;

    /// `runtime-default`, `unconfined`, or a path to a profile (made absolute against the
    /// current directory, since containerd resolves it from its own).
    fn from_str(s: &str) -> Result<Self, CriError> {
        match s {
            "runtime-default" | "RuntimeDefault" => Ok(SeccompProfile::RuntimeDefault),
            "unconfined" | "Unconfined" => Ok(SeccompProfile::Unconfined),
            "" => Err(CriError::invalid(
                "seccomp profile",
                "empty; use runtime-default, unconfined or a path to a profile",
            )),
            path => {
                let path = path.strip_prefix("localhost/").unwrap_or(path);
                let abs = std::path::absolute(path)
                    .map_err(|e| CriError::invalid("seccomp profile", format!("{path}: {e}")))?;
                Ok(SeccompProfile::Localhost(abs))
            }
        }
    }
}

impl fmt::Display for SeccompProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeccompProfile::RuntimeDefault => f.write_str("runtime-default"),
            SeccompProfile::Unconfined => f.write_str("unconfined"),
            SeccompProfile::Localhost(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A pod sandbox to run. `uid` is generated when empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodSpec {
    pub name: String,
    /// Empty means `default`.
    pub namespace: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Share the node's network namespace (no CNI, no pod IP of its own).
    pub host_network: bool,
    /// Default seccomp profile of the pod's containers; `None` leaves it to containerd,
    /// which (like the kubelet's default) runs them unconfined.
    pub seccomp: Option<SeccompProfile>,
}

impl PodSpec {
    pub fn new(name: impl Into<String>) -> Self {
        PodSpec {
            name: name.into(),
            ..PodSpec::default()
        }
    }

    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    pub fn uid(mut self, uid: impl Into<String>) -> Self {
        self.uid = uid.into();
        self
    }

    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    pub fn annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.insert(key.into(), value.into());
        self
    }

    pub fn host_network(mut self, host_network: bool) -> Self {
        self.host_network = host_network;
        self
    }

    pub fn seccomp(mut self, profile: SeccompProfile) -> Self {
        self.seccomp = Some(profile);
        self
    }

    /// The namespace, with the empty string meaning `default`.
    pub fn effective_namespace(&self) -> &str {
        if self.namespace.is_empty() {
            "default"
        } else {
            &self.namespace
        }
    }

    pub(crate) fn validate(&self) -> Result<(), CriError> {
        check_dns_subdomain("pod name", &self.name)?;
        check_dns_label("namespace", self.effective_namespace())?;
        if !self.uid.is_empty() {
            check_uid(&self.uid)?;
        }
        check_map("pod label", &self.labels)?;
        check_map("pod annotation", &self.annotations)?;
        if let Some(profile) = &self.seccomp {
            check_seccomp(profile)?;
        }
        Ok(())
    }
}

/// A container to create in a pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    /// Replaces the image's entrypoint when not empty.
    pub command: Vec<String>,
    /// Replaces the image's cmd when not empty.
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    /// Overrides the pod's default profile.
    pub seccomp: Option<SeccompProfile>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Host directories bind-mounted into the container (host path, container path), read-write:
    /// a volume, as a hostPath or emptyDir volume is to the runtime.
    pub mounts: Vec<(String, String)>,
}

impl ContainerSpec {
    pub fn new(name: impl Into<String>, image: impl Into<String>) -> Self {
        ContainerSpec {
            name: name.into(),
            image: image.into(),
            ..ContainerSpec::default()
        }
    }

    pub fn command<I, S>(mut self, command: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.command = command.into_iter().map(Into::into).collect();
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn working_dir(mut self, dir: impl Into<String>) -> Self {
        self.working_dir = Some(dir.into());
        self
    }

    pub fn seccomp(mut self, profile: SeccompProfile) -> Self {
        self.seccomp = Some(profile);
        self
    }

    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    pub fn annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.insert(key.into(), value.into());
        self
    }

    /// Bind-mounts the host directory `host` at `path` in the container.
    pub fn mount(mut self, host: impl Into<String>, path: impl Into<String>) -> Self {
        self.mounts.push((host.into(), path.into()));
        self
    }

    pub(crate) fn validate(&self) -> Result<(), CriError> {
        check_dns_label("container name", &self.name)?;
        if self.image.trim().is_empty() {
            return Err(CriError::invalid(
                format!("image of container {}", self.name),
                "empty",
            ));
        }
        if self.image.chars().any(char::is_whitespace) {
            return Err(CriError::invalid(
                "image",
                format!("{:?} contains whitespace", self.image),
            ));
        }
        for (what, items) in [("command", &self.command), ("args", &self.args)] {
            if items.iter().any(|s| s.contains('\0')) {
                return Err(CriError::invalid(what, "contains a NUL byte"));
            }
        }
        for (k, v) in &self.env {
            if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
                return Err(CriError::invalid(
                    "environment variable",
                    format!("{k:?}: the name must be non-empty, without '=' or NUL"),
                ));
            }
        }
        check_map("container label", &self.labels)?;
        check_map("container annotation", &self.annotations)?;
        if let Some(profile) = &self.seccomp {
            check_seccomp(profile)?;
        }
        Ok(())
    }
}

/// Parses `KEY=VALUE` (the value may be empty, and may contain `=`).
pub fn parse_key_value(s: &str) -> Result<(String, String), CriError> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        Some(_) => Err(CriError::invalid(
            "KEY=VALUE",
            format!("{s:?} has an empty key"),
        )),
        None => Err(CriError::invalid(
            "KEY=VALUE",
            format!("expected KEY=VALUE, got {s:?}"),
        )),
    }
}

/// A validated pod spec with its uid settled, and what was derived from it.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedPod {
    pub namespace: String,
    pub uid: String,
    pub log_directory: PathBuf,
    pub config: cri::PodSandboxConfig,
}

pub(crate) fn resolve_pod(spec: &PodSpec, node_dir: &Path) -> Result<ResolvedPod, CriError> {
    spec.validate()?;
    let namespace = spec.effective_namespace().to_owned();
    let uid = if spec.uid.is_empty() {
        uuid::Uuid::new_v4().to_string()
    } else {
        spec.uid.clone()
    };
    let log_directory = node::pod_log_dir(node_dir, &namespace, &spec.name, &uid);
    let config = sandbox_config(spec, &namespace, &uid, &log_directory);
    Ok(ResolvedPod {
        namespace,
        uid,
        log_directory,
        config,
    })
}

fn sandbox_config(
    spec: &PodSpec,
    namespace: &str,
    uid: &str,
    log_directory: &Path,
) -> cri::PodSandboxConfig {
    let mut labels = to_hash_map(&spec.labels);
    labels.insert(LABEL_POD_NAME.into(), spec.name.clone());
    labels.insert(LABEL_POD_NAMESPACE.into(), namespace.into());
    labels.insert(LABEL_POD_UID.into(), uid.into());
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: spec.name.clone(),
            uid: uid.into(),
            namespace: namespace.into(),
            attempt: 0,
        }),
        // Kubelet uses the pod name as hostname for non-host-network pods.
        hostname: if spec.host_network {
            String::new()
        } else {
            truncate_hostname(&spec.name)
        },
        log_directory: log_directory.to_string_lossy().into_owned(),
        labels,
        annotations: to_hash_map(&spec.annotations),
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: node::cgroup_parent(uid),
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(namespace_options(spec.host_network)),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Kubelet's defaults: the pod's network (or the node's), a PID namespace per container, IPC
/// shared in the pod.
pub(crate) fn namespace_options(host_network: bool) -> cri::NamespaceOption {
    cri::NamespaceOption {
        network: if host_network {
            cri::NamespaceMode::Node
        } else {
            cri::NamespaceMode::Pod
        } as i32,
        pid: cri::NamespaceMode::Container as i32,
        ipc: cri::NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

/// The container's path under the pod's log directory, kubelet's `<name>/<restart count>.log`.
pub(crate) fn container_log_path(name: &str) -> String {
    format!("{name}/0.log")
}

pub(crate) fn container_config(
    pod_name: &str,
    namespace: &str,
    uid: &str,
    host_network: bool,
    pod_seccomp: Option<&SeccompProfile>,
    spec: &ContainerSpec,
) -> cri::ContainerConfig {
    let mut labels = to_hash_map(&spec.labels);
    labels.insert(LABEL_POD_NAME.into(), pod_name.into());
    labels.insert(LABEL_POD_NAMESPACE.into(), namespace.into());
    labels.insert(LABEL_POD_UID.into(), uid.into());
    labels.insert(LABEL_CONTAINER_NAME.into(), spec.name.clone());
    let seccomp = spec
        .seccomp
        .as_ref()
        .or(pod_seccomp)
        .map(SeccompProfile::to_cri);
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: spec.name.clone(),
            attempt: 0,
        }),
        image: Some(cri::ImageSpec {
            image: spec.image.clone(),
            ..Default::default()
        }),
        command: spec.command.clone(),
        args: spec.args.clone(),
        working_dir: spec.working_dir.clone().unwrap_or_default(),
        envs: spec
            .env
            .iter()
            .map(|(key, value)| cri::KeyValue {
                key: key.clone(),
                value: value.clone(),
            })
            .collect(),
        labels,
        annotations: to_hash_map(&spec.annotations),
        mounts: spec
            .mounts
            .iter()
            .map(|(host, path)| cri::Mount {
                host_path: host.clone(),
                container_path: path.clone(),
                ..Default::default()
            })
            .collect(),
        log_path: container_log_path(&spec.name),
        linux: Some(cri::LinuxContainerConfig {
            security_context: Some(cri::LinuxContainerSecurityContext {
                namespace_options: Some(namespace_options(host_network)),
                seccomp,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn to_hash_map(map: &BTreeMap<String, String>) -> HashMap<String, String> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn truncate_hostname(name: &str) -> String {
    let cut: String = name.chars().take(63).collect();
    cut.trim_end_matches(['-', '.']).to_owned()
}

// Kubernetes' own name rules: anything else would not survive a move to a real cluster, and '_'
// or '/' would break the log directory layout.
fn check_dns_label(what: &str, s: &str) -> Result<(), CriError> {
    check_dns(what, s, 63, false)
}

fn check_dns_subdomain(what: &str, s: &str) -> Result<(), CriError> {
    check_dns(what, s, 253, true)
}

fn check_dns(what: &str, s: &str, max: usize, dots: bool) -> Result<(), CriError> {
    let allowed =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (dots && c == '.');
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if s.is_empty() {
        return Err(CriError::invalid(what, "empty"));
    }
    if s.len() > max {
        return Err(CriError::invalid(
            what,
            format!("{s:?} is longer than {max} characters"),
        ));
    }
    if !s.chars().all(allowed) || !edge_ok(s.chars().next()) || !edge_ok(s.chars().last()) {
        let charset = if dots { "'-' and '.'" } else { "'-'" };
        return Err(CriError::invalid(
            what,
            format!(
                "{s:?}: use lowercase letters, digits and {charset}, starting and ending with a \
                 letter or digit"
            ),
        ));
    }
    Ok(())
}

fn check_uid(uid: &str) -> Result<(), CriError> {
    if uid.len() > 64 || !uid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(CriError::invalid(
            "pod uid",
            format!("{uid:?}: use at most 64 letters, digits and '-'"),
        ));
    }
    Ok(())
}

fn check_map(what: &str, map: &BTreeMap<String, String>) -> Result<(), CriError> {
    for (k, v) in map {
        if k.trim().is_empty() {
            return Err(CriError::invalid(what, "empty key"));
        }
        if k.contains('\0') || v.contains('\0') {
            return Err(CriError::invalid(
                what,
                format!("{k:?} contains a NUL byte"),
            ));
        }
    }
    Ok(())
}

fn check_seccomp(profile: &SeccompProfile) -> Result<(), CriError> {
    match profile {
        SeccompProfile::Localhost(path) if !path.is_absolute() => Err(CriError::invalid(
            "seccomp profile",
            format!("{} is not an absolute path", path.display()),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_parsing() {
        assert_eq!(
            parse_key_value("app=nginx").unwrap(),
            ("app".into(), "nginx".into())
        );
        assert_eq!(parse_key_value("k=").unwrap(), ("k".into(), String::new()));
        assert_eq!(
            parse_key_value("a=b=c").unwrap(),
            ("a".into(), "b=c".into())
        );
        assert!(parse_key_value("novalue").is_err());
        assert!(parse_key_value("=v").is_err());
        assert!(parse_key_value("").is_err());
    }

    #[test]
    fn seccomp_profile_parsing() {
        assert_eq!(
            "runtime-default".parse::<SeccompProfile>().unwrap(),
            SeccompProfile::RuntimeDefault
        );
        assert_eq!(
            "unconfined".parse::<SeccompProfile>().unwrap(),
            SeccompProfile::Unconfined
        );
        assert_eq!(
            "/etc/rampart/p.json".parse::<SeccompProfile>().unwrap(),
            SeccompProfile::Localhost("/etc/rampart/p.json".into())
        );
        match "rel.json".parse::<SeccompProfile>().unwrap() {
            SeccompProfile::Localhost(p) => assert!(p.is_absolute() && p.ends_with("rel.json")),
            other => panic!("{other:?}"),
        }
        assert!("".parse::<SeccompProfile>().is_err());
    }

    #[test]
    fn sandbox_config_is_what_a_kubelet_sends() {
        let spec = PodSpec::new("web")
            .uid("u1")
            .label("app", "nginx")
            .annotation("a", "b");
        let pod = resolve_pod(&spec, Path::new("/n")).unwrap();
        assert_eq!(pod.namespace, "default");
        assert_eq!(pod.log_directory, PathBuf::from("/n/pods/default_web_u1"));
        let c = pod.config;
        let md = c.metadata.unwrap();
        assert_eq!(
            (md.name.as_str(), md.namespace.as_str(), md.uid.as_str()),
            ("web", "default", "u1")
        );
        assert_eq!(c.log_directory, "/n/pods/default_web_u1");
        assert_eq!(c.labels["app"], "nginx");
        assert_eq!(c.labels[LABEL_POD_NAME], "web");
        assert_eq!(c.labels[LABEL_POD_UID], "u1");
        assert_eq!(c.annotations["a"], "b");
        assert_eq!(c.hostname, "web");
        let linux = c.linux.unwrap();
        assert_eq!(linux.cgroup_parent, "/rampart-pods/podu1");
        let ns = linux.security_context.unwrap().namespace_options.unwrap();
        assert_eq!(ns.network, cri::NamespaceMode::Pod as i32);
        assert_eq!(ns.pid, cri::NamespaceMode::Container as i32);
    }

    #[test]
    fn host_network_uses_node_namespace() {
        let pod = resolve_pod(&PodSpec::new("h").host_network(true), Path::new("/n")).unwrap();
        let ns = pod
            .config
            .linux
            .unwrap()
            .security_context
            .unwrap()
            .namespace_options
            .unwrap();
        assert_eq!(ns.network, cri::NamespaceMode::Node as i32);
        assert_eq!(pod.config.hostname, "");
    }

    #[test]
    fn uid_is_generated_when_empty() {
        let a = resolve_pod(&PodSpec::new("p"), Path::new("/n")).unwrap();
        let b = resolve_pod(&PodSpec::new("p"), Path::new("/n")).unwrap();
        assert!(!a.uid.is_empty());
        assert_ne!(a.uid, b.uid);
    }

    #[test]
    fn container_config_carries_command_env_and_seccomp() {
        let spec = ContainerSpec::new("c", "rampart.local/busybox:latest")
            .command(["sleep", "3600"])
            .env("A", "1")
            .working_dir("/tmp")
            .label("tier", "x");
        let pod_profile = SeccompProfile::Localhost("/p.json".into());
        let c = container_config("p", "ns", "u", false, Some(&pod_profile), &spec);
        assert_eq!(c.metadata.as_ref().unwrap().name, "c");
        assert_eq!(
            c.image.as_ref().unwrap().image,
            "rampart.local/busybox:latest"
        );
        assert_eq!(c.command, vec!["sleep", "3600"]);
        assert!(c.args.is_empty());
        assert_eq!(c.envs[0].key, "A");
        assert_eq!(c.working_dir, "/tmp");
        assert_eq!(c.log_path, "c/0.log");
        assert_eq!(c.labels[LABEL_CONTAINER_NAME], "c");
        assert_eq!(c.labels["tier"], "x");
        let sec = c.linux.unwrap().security_context.unwrap();
        let seccomp = sec.seccomp.unwrap();
        assert_eq!(seccomp.profile_type, 2);
        assert_eq!(seccomp.localhost_ref, "/p.json");

        // The container's own profile wins over the pod's.
        let own = spec.clone().seccomp(SeccompProfile::Unconfined);
        let c = container_config("p", "ns", "u", false, Some(&pod_profile), &own);
        let seccomp = c.linux.unwrap().security_context.unwrap().seccomp.unwrap();
        assert_eq!(seccomp.profile_type, 1);

        // Neither: left to the runtime.
        let c = container_config("p", "ns", "u", false, None, &spec);
        assert!(c.linux.unwrap().security_context.unwrap().seccomp.is_none());
    }

    #[test]
    fn bad_names_are_rejected_not_panicked_on() {
        for name in ["", "Web", "a_b", "-a", "a-", "a/b", &"x".repeat(254)] {
            assert!(PodSpec::new(name).validate().is_err(), "{name:?}");
        }
        assert!(PodSpec::new("a.b-c").validate().is_ok());
        assert!(PodSpec::new("p").namespace("a.b").validate().is_err());
        assert!(PodSpec::new("p").uid("a/b").validate().is_err());
        assert!(ContainerSpec::new("c", "").validate().is_err());
        assert!(ContainerSpec::new("c.d", "img").validate().is_err());
        assert!(
            ContainerSpec::new("c", "img")
                .env("", "v")
                .validate()
                .is_err()
        );
        assert!(
            ContainerSpec::new("c", "img")
                .seccomp(SeccompProfile::Localhost("rel".into()))
                .validate()
                .is_err()
        );
        assert!(PodSpec::new("p").label(" ", "v").validate().is_err());
    }
}
