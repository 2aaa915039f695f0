//! rampart's NRI handler (`inject::RampartHandler`) against the in-process stand-in rampartd:
//! what CreateContainer injects or strips, the failure policy when rampartd is down or slow, the
//! injection mode Configure picks, and the cgroup binds at Start/Stop/Remove/Synchronize. Runs
//! anywhere, no root needed (cgroups are a fake hierarchy in a temp dir).

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::stand_in::{Behaviour, StandInDaemon};
use rampart_nri::Handler;
use rampart_nri::adjust;
use rampart_nri::inject::{DEFAULT_SECCOMP_SOCKET, InjectConfig, RampartHandler};
use rampart_nri::mode::Injection;
use rampart_nri::nri::{ConfigureRequest, Container, ContainerState, LinuxContainer, PodSandbox};
use rampart_nri::runc_wrapper::SECCOMP_ANNOTATION;
use rampart_nri::seccomp_merge::Additions;

fn pod(app: &str) -> PodSandbox {
    PodSandbox {
        id: format!("sb-{app}"),
        name: format!("{app}-pod"),
        uid: format!("uid-{app}"),
        namespace: "shop".into(),
        labels: [("app".to_string(), app.to_string())].into(),
        ..Default::default()
    }
}

fn ctr(pod: &PodSandbox, name: &str) -> Container {
    Container {
        id: format!("{}-{name}", pod.id),
        pod_sandbox_id: pod.id.clone(),
        name: name.into(),
        ..Default::default()
    }
}

/// A fake pure-v2 hierarchy with one container's cgroup in it.
fn fake_cgroups(tag: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("rampart-inject-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(root.join("pods/p1/c1")).unwrap();
    std::fs::write(root.join("cgroup.controllers"), "").unwrap();
    root
}

fn handler(
    daemon: StandInDaemon,
    config: InjectConfig,
) -> (Arc<StandInDaemon>, RampartHandler<StandInDaemon>) {
    let d = Arc::new(daemon);
    (d.clone(), RampartHandler::new(d, config))
}

#[tokio::test]
async fn scoped_container_gets_the_seccomp_annotation() {
    let (d, h) = handler(StandInDaemon::default(), InjectConfig::default());
    let p = pod("nginx");
    let reply = h.create_container(&p, &ctr(&p, "web")).await.unwrap();
    let adj = reply.adjust.expect("an adjustment");
    let add: Additions = serde_json::from_str(&adj.annotations[SECCOMP_ANNOTATION]).unwrap();
    assert_eq!(add.notify, ["openat", "execve"]);
    assert_eq!(add.deny, ["io_uring_setup"]);
    assert_eq!(add.listener_path, DEFAULT_SECCOMP_SOCKET);
    assert_eq!(add.listener_metadata, "rampart/v1 shop/nginx-pod/web");
    assert_eq!(
        adj.annotations[adjust::POLICIES_ANNOTATION],
        "stand-in-nginx"
    );
    let asked = d.plans.lock().unwrap();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].pod_labels["app"], "nginx");
}

#[tokio::test]
async fn unscoped_container_is_left_alone() {
    let (_, h) = handler(StandInDaemon::default(), InjectConfig::default());
    let p = pod("redis");
    let reply = h.create_container(&p, &ctr(&p, "db")).await.unwrap();
    assert!(reply.adjust.is_none());
}

#[tokio::test]
async fn smuggled_annotation_is_stripped_from_an_unscoped_container() {
    let (_, h) = handler(StandInDaemon::default(), InjectConfig::default());
    let p = pod("redis");
    let mut c = ctr(&p, "db");
    c.annotations.insert(SECCOMP_ANNOTATION.into(), "{}".into());
    let adj = h.create_container(&p, &c).await.unwrap().adjust.unwrap();
    assert_eq!(
        adj.annotations.keys().collect::<Vec<_>>(),
        [&format!("-{SECCOMP_ANNOTATION}")]
    );
}

#[tokio::test]
async fn the_sandbox_container_is_never_planned_for() {
    let (d, h) = handler(StandInDaemon::default(), InjectConfig::default());
    let p = pod("nginx");
    let mut pause = ctr(&p, "pause");
    pause.id = p.id.clone();
    let reply = h.create_container(&p, &pause).await.unwrap();
    assert!(reply.adjust.is_none());
    assert!(d.plans.lock().unwrap().is_empty());
}

#[tokio::test]
async fn daemon_down_and_not_required_starts_unprotected_but_still_strips() {
    let d = StandInDaemon::default();
    d.set(Behaviour::Unreachable);
    let (_, h) = handler(d, InjectConfig::default());
    let p = pod("nginx");
    let mut c = ctr(&p, "web");
    assert!(h.create_container(&p, &c).await.unwrap().adjust.is_none());
    c.annotations.insert(SECCOMP_ANNOTATION.into(), "{}".into());
    let adj = h.create_container(&p, &c).await.unwrap().adjust.unwrap();
    assert!(
        adj.annotations
            .contains_key(&format!("-{SECCOMP_ANNOTATION}"))
    );
}

#[tokio::test]
async fn daemon_down_with_require_protection_fails_the_creation() {
    let d = StandInDaemon::default();
    d.set(Behaviour::Unreachable);
    let config = InjectConfig {
        require_protection: true,
        ..Default::default()
    };
    let (_, h) = handler(d, config);
    let p = pod("redis");
    let err = h.create_container(&p, &ctr(&p, "db")).await.unwrap_err();
    assert!(err.0.contains("shop/redis-pod/db"), "{err}");
    assert!(err.0.contains("--require-protection"), "{err}");
    assert!(err.0.contains("rampartd is not reachable"), "{err}");
}

#[tokio::test]
async fn last_plan_required_makes_a_later_outage_fail_closed() {
    let d = StandInDaemon {
        required: true,
        ..Default::default()
    };
    let (d, h) = handler(d, InjectConfig::default());
    let p = pod("nginx");
    assert!(h.create_container(&p, &ctr(&p, "web")).await.is_ok());
    d.set(Behaviour::Unreachable);
    // The pod recreated by its controller: another name and uid, same workload.
    let mut again = pod("nginx");
    again.name = "nginx-pod-2".into();
    again.uid = "uid-2".into();
    let err = h
        .create_container(&again, &ctr(&again, "web"))
        .await
        .unwrap_err();
    assert!(err.0.contains("last plan"), "{err}");
    // A workload never planned as required still starts.
    let other = pod("redis");
    assert!(h.create_container(&other, &ctr(&other, "db")).await.is_ok());
}

#[tokio::test]
async fn a_slow_daemon_is_cut_off_by_the_timeout() {
    let d = StandInDaemon::default();
    d.set(Behaviour::Slow(Duration::from_secs(5)));
    let config = InjectConfig {
        require_protection: true,
        daemon_timeout: Duration::from_millis(50),
        ..Default::default()
    };
    let (_, h) = handler(d, config);
    let p = pod("nginx");
    let started = std::time::Instant::now();
    let err = h.create_container(&p, &ctr(&p, "web")).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(err.0.contains("did not answer PlanContainer"), "{err}");
}

#[tokio::test]
async fn configure_picks_the_mode_and_adjustment_mode_needs_the_profile() {
    let d = StandInDaemon {
        required: true,
        ..Default::default()
    };
    let (_, h) = handler(d, InjectConfig::default());
    assert_eq!(h.injection(), Injection::Annotation);
    let req = |v: &str| ConfigureRequest {
        runtime_name: "containerd".into(),
        runtime_version: v.into(),
        ..Default::default()
    };
    h.configure(&req("v2.2.1")).await.unwrap();
    assert_eq!(h.injection(), Injection::Adjustment);
    // The runtime does not tell us the container's profile (see seccomp_policy): required
    // protection that cannot be merged fails the creation rather than widen the profile.
    let p = pod("nginx");
    let err = h.create_container(&p, &ctr(&p, "web")).await.unwrap_err();
    assert!(err.0.contains("its policy requires protection"), "{err}");
    assert!(err.0.contains("--seccomp-mode annotation"), "{err}");
    h.configure(&req("2.1.9~ds1-1")).await.unwrap();
    assert_eq!(h.injection(), Injection::Annotation);
}

#[tokio::test]
async fn start_binds_stop_and_remove_unbind() {
    let root = fake_cgroups("start");
    let config = InjectConfig {
        sys_fs_cgroup: root.clone(),
        ..Default::default()
    };
    let (d, h) = handler(StandInDaemon::default(), config);
    let p = pod("nginx");
    let mut c = ctr(&p, "web");
    c.pid = 4242;
    c.linux = Some(LinuxContainer {
        cgroups_path: "/pods/p1/c1".into(),
        ..Default::default()
    });
    h.start_container(&p, &c).await.unwrap();
    {
        let binds = d.binds.lock().unwrap();
        assert_eq!(binds.len(), 1);
        use std::os::unix::fs::MetadataExt;
        let ino = std::fs::metadata(root.join("pods/p1/c1")).unwrap().ino();
        assert_eq!(binds[0].cgroup_id, ino);
        assert_eq!(binds[0].pid, 4242);
        assert_eq!(binds[0].workload.as_ref().unwrap().container_id, c.id);
    }
    h.stop_container(&p, &c).await.unwrap();
    h.remove_container(&p, &c).await.unwrap();
    assert_eq!(*d.unbinds.lock().unwrap(), [c.id.clone(), c.id.clone()]);
    std::fs::remove_dir_all(root).unwrap();
}

#[tokio::test]
async fn synchronize_binds_running_containers_only() {
    let root = fake_cgroups("sync");
    let config = InjectConfig {
        sys_fs_cgroup: root.clone(),
        ..Default::default()
    };
    let (d, h) = handler(StandInDaemon::default(), config);
    let p = pod("nginx");
    let linux = Some(LinuxContainer {
        cgroups_path: "/pods/p1/c1".into(),
        ..Default::default()
    });
    let mut running = ctr(&p, "web");
    running.state = ContainerState::ContainerRunning as i32;
    running.linux = linux.clone();
    let mut stopped = ctr(&p, "old");
    stopped.state = ContainerState::ContainerStopped as i32;
    stopped.linux = linux;
    let mut orphan = running.clone();
    orphan.id = "orphan".into();
    orphan.pod_sandbox_id = "gone".into();
    h.synchronize(
        std::slice::from_ref(&p),
        &[running.clone(), stopped, orphan],
    )
    .await
    .unwrap();
    let binds = d.binds.lock().unwrap();
    assert_eq!(binds.len(), 1);
    assert_eq!(binds[0].workload.as_ref().unwrap().container_id, running.id);
    std::fs::remove_dir_all(root).unwrap();
}

/// A container whose execs only the agent's file guard decides does not start before the agent
/// says it watches it: a required one is refused its start, any other starts (logged UNCHECKED);
/// once the agent's file is there, both start. A container without the annotation never waits.
#[tokio::test]
async fn start_waits_for_the_file_guard_where_it_alone_decides_execs() {
    let root = fake_cgroups("guard");
    let socket = root.join("agent/seccomp.sock");
    let config = |require_protection| InjectConfig {
        sys_fs_cgroup: root.clone(),
        seccomp_socket: socket.display().to_string(),
        require_protection,
        guard_wait: Duration::from_millis(50),
        ..Default::default()
    };
    let p = pod("nginx");
    let linux = Some(LinuxContainer {
        cgroups_path: "/pods/p1/c1".into(),
        ..Default::default()
    });
    let mut c = ctr(&p, "web");
    c.linux = linux.clone();
    c.annotations.insert(
        adjust::EXEC_GUARD_ANNOTATION.into(),
        adjust::EXEC_GUARD_FANOTIFY.into(),
    );
    let (d, required) = handler(StandInDaemon::default(), config(true));
    let err = required.start_container(&p, &c).await.unwrap_err();
    assert!(err.to_string().contains("file guard"), "{err}");
    assert!(
        d.binds.lock().unwrap().is_empty(),
        "bound a container that must not start"
    );
    let (_, lenient) = handler(StandInDaemon::default(), config(false));
    lenient.start_container(&p, &c).await.unwrap();

    let ready = root.join("agent/guard");
    std::fs::create_dir_all(&ready).unwrap();
    std::fs::write(ready.join(&c.id), b"").unwrap();
    required.start_container(&p, &c).await.unwrap();

    let mut plain = ctr(&p, "sidecar");
    plain.linux = linux;
    required.start_container(&p, &plain).await.unwrap();
    std::fs::remove_dir_all(root).unwrap();
}

/// rampartd's kernel enforcement (ingress rules) follows the bind: a container that must be
/// protected and can't be bound (here: its cgroup is not known) is refused its start; any other
/// starts, logged.
#[tokio::test]
async fn a_required_container_that_cannot_be_bound_is_refused_its_start() {
    let root = fake_cgroups("unbound");
    let config = |require_protection| InjectConfig {
        sys_fs_cgroup: root.clone(),
        require_protection,
        ..Default::default()
    };
    let p = pod("nginx");
    let c = ctr(&p, "web");
    let (_, required) = handler(StandInDaemon::default(), config(true));
    let err = required.start_container(&p, &c).await.unwrap_err();
    assert!(
        err.to_string().contains("binding it to rampartd failed"),
        "{err}"
    );
    let (_, lenient) = handler(StandInDaemon::default(), config(false));
    lenient.start_container(&p, &c).await.unwrap();
    std::fs::remove_dir_all(root).unwrap();
}
