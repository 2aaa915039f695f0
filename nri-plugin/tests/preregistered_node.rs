//! rampart-nri as a pre-registered plugin, started by a real containerd from its NRI plugin_path
//! with the connection passed as fd 3 (`NRI_PLUGIN_SOCKET`, `NRI_PLUGIN_NAME`, `NRI_PLUGIN_IDX`).
//!
//! The test runs a second, private containerd (its own config, root, state, gRPC socket, NRI
//! socket, plugin_path, all under a temporary directory; external NRI connections off) so the
//! shared node's containerd is never restarted or reconfigured. containerd starts
//! `<plugin_path>/10-rampart`, a wrapper script that execs rampart-nri with a private rampartd's
//! socket (rampartd with the seed policy, also started by the test). Then, through the private
//! instance's CRI: a container named `nginx` (the seed policy scopes it) gets rampart's
//! annotations in its OCI spec, and one named `other` gets none. Stopping containerd closes the
//! connection and the plugin exits on its own.
//!
//! Runs plain runc (no rampart-runc): the spec carrying the injection is what is checked; the
//! filter reaching runc is `inject_node`'s job. Pods use the host network (no CNI).
//!
//! Needs root, containerd and the node's images (`scripts/node up` built them); without them it
//! prints why and passes as skipped, and under RAMPART_NODE_TESTS that is a failure.

mod common;

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{cri_client, host_network_pod, remove_pods, run_pod, runtime_spec};
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::Channel;

const SEED_POLICY: &str = "disallow-etc-access-for-nginx.yaml";

fn node_images() -> PathBuf {
    PathBuf::from(
        std::env::var("RAMPART_NODE_DIR").unwrap_or_else(|_| "/var/lib/rampart-node".into()),
    )
    .join("images")
}

fn skip_reason() -> Option<String> {
    match std::fs::metadata("/proc/self") {
        Ok(m) if m.uid() != 0 => return Some(format!("needs root (uid {})", m.uid())),
        Err(e) => return Some(format!("cannot tell who runs the test: {e}")),
        Ok(_) => {}
    }
    for bin in ["containerd", "ctr", "runc"] {
        if !Command::new("sh")
            .args(["-c", &format!("command -v {bin}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            return Some(format!("{bin} is not installed (scripts/setup-node)"));
        }
    }
    for t in ["pause.tar", "busybox.tar"] {
        if !node_images().join(t).exists() {
            return Some(format!(
                "no {} (scripts/node up builds the images)",
                node_images().join(t).display()
            ));
        }
    }
    None
}

/// Everything the private instance owns; Drop tears it down (processes by pid, mounts, cgroups).
struct Private {
    dir: PathBuf,
    containerd: Option<Child>,
    rampartd: Option<Child>,
    cgroup_parent: String,
}

impl Private {
    fn sock(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    fn plugin_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("plugin.log")).unwrap_or_default()
    }

    fn wait_for_log(&self, needles: &[&str], timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self
                .plugin_log()
                .lines()
                .any(|l| needles.iter().all(|n| l.contains(n)))
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "no plugin log line with {needles:?} within {timeout:?}; plugin log:\n{}\ncontainerd \
             log (tail):\n{}",
            self.plugin_log(),
            tail(&self.dir.join("containerd.log"), 30)
        ))
    }

    fn stop_containerd(&mut self) {
        if let Some(mut c) = self.containerd.take() {
            // SIGTERM: containerd shuts its plugins' connections down.
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if c.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        self.stop_containerd();
        if let Some(mut r) = self.rampartd.take() {
            let _ = r.kill();
            let _ = r.wait();
        }
        // Shims (and the pods' processes) outlive containerd by design. Ours name our socket.
        let ours = format!("-address {}", self.sock().display());
        for pid in pids_whose_cmdline_contains(&ours) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        for cg in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
            kill_cgroup_tree(&Path::new(cg).join(self.cgroup_parent.trim_start_matches('/')));
        }
        std::thread::sleep(Duration::from_millis(300));
        let prefix = format!("{}/", self.dir.display());
        let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mounts")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(1).map(str::to_owned))
            .filter(|m| m.starts_with(&prefix))
            .collect();
        mounts.sort_by(|a, b| b.cmp(a));
        for m in mounts {
            let _ = Command::new("umount").arg(&m).status();
        }
        for cg in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            remove_cgroup_tree(&cg.path().join(self.cgroup_parent.trim_start_matches('/')));
        }
        remove_cgroup_tree(
            &Path::new("/sys/fs/cgroup").join(self.cgroup_parent.trim_start_matches('/')),
        );
        if std::env::var_os("RAMPART_KEEP_PRIVATE").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn pids_whose_cmdline_contains(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmdline.contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

fn kill_cgroup_tree(dir: &Path) {
    for e in walk(dir) {
        let procs = std::fs::read_to_string(e.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines() {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
    }
}

fn remove_cgroup_tree(dir: &Path) {
    let mut dirs = walk(dir);
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in dirs {
        let _ = std::fs::remove_dir(d);
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if dir.is_dir() {
        out.push(dir.to_owned());
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(walk(&e.path()));
            }
        }
    }
    out
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn wait_for_socket(path: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn config(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"# A private containerd for rampart's pre-registered plugin test; nothing shared with the node.
version = 3
root = '{d}/root'
state = '{d}/state'

[grpc]
  address = '{d}/containerd.sock'

[ttrpc]
  address = ''

[debug]
  level = 'info'

[plugins]
  [plugins.'io.containerd.nri.v1.nri']
    disable = false
    # Only plugins it starts itself: no external socket that could be confused with the node's.
    disable_connections = true
    socket_path = '{d}/nri.sock'
    plugin_path = '{d}/plugins'
    plugin_config_path = '{d}/conf.d'
    plugin_registration_timeout = '5s'
    plugin_request_timeout = '2s'

  [plugins.'io.containerd.internal.v1.opt']
    path = '{d}/opt'

  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = 'registry.k8s.io/pause:3.10'

  [plugins.'io.containerd.cri.v1.runtime']
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          Root = '{d}/runc'
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['/usr/lib/cni']
      conf_dir = '{d}/cni'
"#
    )
}

/// What containerd starts from plugin_path: it passes no arguments and only the NRI_PLUGIN_*
/// variables, so a wrapper adds the flags (as docs/nri.md tells operators to do).
fn wrapper(dir: &Path, nri: &Path, daemon: &Path) -> String {
    format!(
        "#!/bin/sh\nexec >>{log} 2>&1\necho \"wrapper: NRI_PLUGIN_SOCKET=$NRI_PLUGIN_SOCKET \
         NRI_PLUGIN_NAME=$NRI_PLUGIN_NAME NRI_PLUGIN_IDX=$NRI_PLUGIN_IDX\"\nRUST_LOG=info exec \
         {nri} --log-stderr --daemon {daemon} --seccomp-socket {sec}\n",
        log = dir.join("plugin.log").display(),
        nri = nri.display(),
        daemon = daemon.display(),
        sec = dir.join("seccomp.sock").display(),
    )
}

/// The annotations of the container's OCI spec.
async fn annotations(
    cri: &mut RuntimeServiceClient<Channel>,
    id: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let (spec, _) = runtime_spec(cri, id).await?;
    Ok(spec["annotations"].as_object().cloned().unwrap_or_default())
}

#[test]
fn containerd_starts_rampart_nri_from_plugin_path_and_it_injects() {
    if !common::runs_or_skips(
        "containerd_starts_rampart_nri_from_plugin_path_and_it_injects",
        skip_reason(),
    ) {
        return;
    }
    let nri_bin = PathBuf::from(env!("CARGO_BIN_EXE_rampart-nri"));
    // rampartd is another package's binary: the one built next to ours (make build builds both).
    let rampartd_bin = nri_bin.with_file_name("rampartd");
    assert!(
        rampartd_bin.exists(),
        "{} is not built: cargo build -p rampartd",
        rampartd_bin.display()
    );
    let dir = PathBuf::from(format!("/var/tmp/rampart-prereg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for d in ["plugins", "conf.d", "cni", "policies", "opt"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let mut private = Private {
        dir: dir.clone(),
        containerd: None,
        rampartd: None,
        cgroup_parent: format!("/rampart-prereg-{}", std::process::id()),
    };

    // rampartd with the seed policy, on a socket of this test's own.
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../config/examples")
        .join(SEED_POLICY);
    std::fs::copy(&src, dir.join("policies").join(SEED_POLICY)).unwrap();
    let daemon_sock = dir.join("rampartd.sock");
    let log = std::fs::File::create(dir.join("rampartd.log")).unwrap();
    private.rampartd = Some(
        Command::new(&rampartd_bin)
            .arg("--policy-dir")
            .arg(dir.join("policies"))
            .arg("--socket")
            .arg(&daemon_sock)
            .args(["--no-journal", "--log-stderr"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start rampartd"),
    );
    assert!(
        wait_for_socket(&daemon_sock, Duration::from_secs(10)),
        "rampartd did not come up: {}",
        tail(&dir.join("rampartd.log"), 20)
    );

    let plugin = dir.join("plugins/10-rampart");
    let mut f = std::fs::File::create(&plugin).unwrap();
    f.write_all(wrapper(&dir, &nri_bin, &daemon_sock).as_bytes())
        .unwrap();
    drop(f);
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.join("config.toml"), config(&dir)).unwrap();

    let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
    private.containerd = Some(
        Command::new("containerd")
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start the private containerd"),
    );
    assert!(
        wait_for_socket(&private.sock(), Duration::from_secs(30)),
        "the private containerd did not come up: {}",
        tail(&dir.join("containerd.log"), 30)
    );

    // containerd started the plugin with the connection as fd 3, and it registered on it.
    private
        .wait_for_log(
            &[
                "NRI_PLUGIN_SOCKET=3",
                "NRI_PLUGIN_NAME=rampart",
                "NRI_PLUGIN_IDX=10",
            ],
            Duration::from_secs(10),
        )
        .unwrap();
    private
        .wait_for_log(&["pre-registered plugin"], Duration::from_secs(10))
        .unwrap();
    private
        .wait_for_log(
            &["registered with the runtime", "10-rampart"],
            Duration::from_secs(10),
        )
        .unwrap();
    private
        .wait_for_log(
            &["Synchronize", "bound running containers"],
            Duration::from_secs(10),
        )
        .unwrap();
    let ctd_log = std::fs::read_to_string(dir.join("containerd.log")).unwrap_or_default();
    assert!(
        ctd_log.contains("pre-connected:10-rampart"),
        "containerd does not report the plugin as pre-connected:\n{}",
        tail(&dir.join("containerd.log"), 30)
    );

    for t in ["pause", "busybox"] {
        let out = Command::new("ctr")
            .arg("--address")
            .arg(private.sock())
            .args(["-n", "k8s.io", "images", "import"])
            .arg(node_images().join(format!("{t}.tar")))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "importing {t}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let rt = tokio::runtime::Runtime::new().unwrap();
    let result: Result<(), String> = rt.block_on(async {
        let mut cri = cri_client(private.sock())
            .await
            .expect("connect to the private containerd's CRI socket");
        // Host-network pods in a namespace and cgroup parent of the private instance's own.
        let pod = |name| {
            host_network_pod(
                name,
                "rampart-prereg",
                "/tmp/rampart-prereg-test",
                &private.cgroup_parent,
            )
        };
        let mut sandboxes = Vec::new();
        let outcome = async {
            let scoped = run_pod(&mut cri, pod("web"), "nginx", &mut sandboxes).await?;
            let other = run_pod(&mut cri, pod("db"), "other", &mut sandboxes).await?;
            let ann = annotations(&mut cri, &scoped).await?;
            let seccomp = ann
                .get("rampart.dev/seccomp")
                .and_then(|v| v.as_str())
                .ok_or_else(|| format!("scoped container has no rampart.dev/seccomp: {ann:?}"))?;
            let add: serde_json::Value =
                serde_json::from_str(seccomp).map_err(|e| e.to_string())?;
            if add["listenerPath"] != dir.join("seccomp.sock").display().to_string() {
                return Err(format!("listenerPath: {add}"));
            }
            if !add["listenerMetadata"]
                .as_str()
                .is_some_and(|m| m.ends_with("rampart-prereg/web/nginx"))
            {
                return Err(format!("listenerMetadata: {add}"));
            }
            if ann.get("rampart.dev/policies").and_then(|v| v.as_str())
                != Some("DisallowEtcAccessForNginx")
            {
                return Err(format!("policies annotation: {ann:?}"));
            }
            let ann = annotations(&mut cri, &other).await?;
            if ann.keys().any(|k| k.starts_with("rampart.dev/")) {
                return Err(format!("unscoped container was changed: {ann:?}"));
            }
            Ok(())
        }
        .await;
        remove_pods(&mut cri, &sandboxes).await;
        outcome
    });
    if let Err(e) = result {
        panic!(
            "{e}\nplugin log:\n{}\ncontainerd log (tail):\n{}",
            private.plugin_log(),
            tail(&dir.join("containerd.log"), 30)
        );
    }
    private
        .wait_for_log(
            &["CreateContainer", "nginx", "protected"],
            Duration::from_secs(2),
        )
        .unwrap();

    // Without a runtime the plugin has nothing to serve: it exits, and containerd starts it again
    // when it starts.
    private.stop_containerd();
    private
        .wait_for_log(
            &["the runtime closed the connection; exiting"],
            Duration::from_secs(10),
        )
        .unwrap();
    let nri_pids = pids_whose_cmdline_contains(&format!("--daemon {}", daemon_sock.display()));
    assert!(nri_pids.is_empty(), "rampart-nri still runs: {nri_pids:?}");
}
