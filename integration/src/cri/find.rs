//! Finding pods and containers by name, as an operator names them, for pods this process did
//! not create.

use std::path::PathBuf;

use k8s_cri::v1 as cri;
use serde_json::Value;

use super::client::Cri;
use super::error::CriError;
use super::node;
use super::pod::{Container, Pod};
use super::spec;
use super::status::{ContainerFilter, PodFilter, parse_info};

impl Cri {
    /// The pod `namespace/name`. When a name has several sandboxes (a stopped one and a new
    /// one), the ready one wins, then the newest.
    #[tracing::instrument(skip(self))]
    pub async fn find_pod(&self, namespace: &str, name: &str) -> Result<Pod, CriError> {
        let mut pods = self.list_pods(&PodFilter::named(namespace, name)).await?;
        pods.sort_by_key(|p| (p.ready, p.created_at));
        let summary = pods.pop().ok_or_else(|| CriError::PodNotFound {
            namespace: namespace.into(),
            name: name.into(),
        })?;
        let resp = self.pod_status(&summary.id).await?;
        let original = sandbox_config_from_info(&parse_info(resp.info));
        let status = resp.status.unwrap_or_default();
        let host_network = status
            .linux
            .and_then(|l| l.namespaces)
            .and_then(|n| n.options)
            .is_some_and(|o| o.network == cri::NamespaceMode::Node as i32);
        let log_directory = match &original {
            Some(c) if !c.log_directory.is_empty() => PathBuf::from(&c.log_directory),
            _ => node::pod_log_dir(self.node_dir(), namespace, name, &summary.uid),
        };
        // Should containerd not hand the original config back, rebuild what CreateContainer
        // uses from what it does report, with the conventions run_pod applies.
        let config = original.unwrap_or_else(|| cri::PodSandboxConfig {
            metadata: status.metadata,
            log_directory: log_directory.to_string_lossy().into_owned(),
            labels: status.labels,
            annotations: status.annotations,
            linux: Some(cri::LinuxPodSandboxConfig {
                cgroup_parent: node::cgroup_parent(&summary.uid),
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: Some(spec::namespace_options(host_network)),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        Ok(Pod {
            id: summary.id,
            name: summary.name,
            namespace: summary.namespace,
            uid: summary.uid,
            log_directory,
            host_network,
            seccomp: None,
            config,
        })
    }

    /// The container named `name` in the pod, or its only container when `name` is `None`.
    pub async fn find_container(
        &self,
        pod: &Pod,
        name: Option<&str>,
    ) -> Result<Container, CriError> {
        let all = self
            .list_containers(&ContainerFilter::in_pod(&pod.id))
            .await?;
        let mut names: Vec<String> = all.iter().map(|c| c.name.clone()).collect();
        names.sort();
        names.dedup();
        let chosen = match name {
            // Newest wins if a name was reused (list is oldest first).
            Some(name) => all.iter().rev().find(|c| c.name == name).ok_or_else(|| {
                CriError::ContainerNotFound {
                    pod: pod.full_name(),
                    name: name.into(),
                    available: names.clone(),
                }
            })?,
            None => match names.len() {
                0 => {
                    return Err(CriError::NoContainers {
                        pod: pod.full_name(),
                    });
                }
                1 => all.last().expect("one name means at least one container"),
                _ => {
                    return Err(CriError::AmbiguousContainer {
                        pod: pod.full_name(),
                        available: names,
                    });
                }
            },
        };
        Ok(Container {
            id: chosen.id.clone(),
            name: chosen.name.clone(),
            pod_id: chosen.pod_id.clone(),
            image: chosen.image.clone(),
        })
    }
}

/// The sandbox config containerd keeps in its verbose info (`info.config`). Go leaves out zero
/// fields, which the generated serde types insist on, so lay it over a default config first.
fn sandbox_config_from_info(info: &Value) -> Option<cri::PodSandboxConfig> {
    let given = info.get("info")?.get("config")?;
    let mut merged = serde_json::to_value(cri::PodSandboxConfig::default()).ok()?;
    merge_json(&mut merged, given);
    serde_json::from_value(merged).ok()
}

/// Deep-merges `over` into `base`. Where `base` has `null` (an unset message), `over`'s object
/// alone would still miss fields; `filled` lays it on that message's default when it knows it.
fn merge_json(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(slot) if !slot.is_null() => merge_json(slot, v),
                    Some(slot) => *slot = filled(k, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// `over` laid on the default of the message that field `key` holds, when known.
fn filled(key: &str, over: &Value) -> Value {
    let default = match key {
        "metadata" => serde_json::to_value(cri::PodSandboxMetadata::default()),
        "linux" => serde_json::to_value(cri::LinuxPodSandboxConfig::default()),
        "security_context" => serde_json::to_value(cri::LinuxSandboxSecurityContext::default()),
        "namespace_options" => serde_json::to_value(cri::NamespaceOption::default()),
        "dns_config" => serde_json::to_value(cri::DnsConfig::default()),
        _ => return over.clone(),
    };
    match default {
        Ok(mut base) => {
            merge_json(&mut base, over);
            base
        }
        Err(_) => over.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_config_comes_back_from_containerd_info() {
        // What containerd 2.1 returns in PodSandboxStatus's verbose info (zero fields omitted).
        let info = serde_json::json!({"info": {"config": {
            "hostname": "busy",
            "labels": {"app": "busy"},
            "linux": {
                "cgroup_parent": "/rampart-pods/podu1",
                "security_context": {"namespace_options": {"pid": 1}}
            },
            "log_directory": "/n/pods/default_busy_u1",
            "metadata": {"name": "busy", "namespace": "default", "uid": "u1"}
        }}});
        let c = sandbox_config_from_info(&info).unwrap();
        assert_eq!(c.log_directory, "/n/pods/default_busy_u1");
        assert_eq!(c.metadata.unwrap().uid, "u1");
        let linux = c.linux.unwrap();
        assert_eq!(linux.cgroup_parent, "/rampart-pods/podu1");
        let ns = linux.security_context.unwrap().namespace_options.unwrap();
        assert_eq!(ns.pid, 1);
        assert_eq!(ns.network, 0);
        assert_eq!(c.labels["app"], "busy");
    }

    #[test]
    fn no_config_in_info_is_none() {
        assert!(sandbox_config_from_info(&serde_json::json!({})).is_none());
        assert!(sandbox_config_from_info(&serde_json::json!({"info": "text"})).is_none());
    }
}
