//! rampart as an operator runs it: rampartd, rampart-seccomp and rampart-nri started by
//! `scripts/rampart` on the real node, containerd running runc through rampart-runc. The seed
//! scenario end to end: the nginx pod is protected at creation, `cat /etc/passwd` in it gets
//! "Operation not permitted" (EPERM from the file guard), and the seed's JSON record lands in
//! journald with its fields. Then the policy file is edited: a broken edit is rejected while the old policy keeps deciding, and a
//! switch to audit mode lets the read through with an Alerted record. In between, rampartd
//! restarts: the agents announce what runs, so its registry and the alerts' pod names come back.
//!
//! Needs root and the node (`make node-up`, with `make build` done first so rampart-runc is
//! installed). Under `make test` (RAMPART_NODE_TESTS=1) a missing node fails instead of skipping.
//! This is the only test that starts rampart's daemons; it stops them when done.

use std::path::Path;
use std::time::{Duration, Instant};

use rampart_integration::cri::{ContainerSpec, PodSpec, TestPod, test_node, unique_name};
use rampart_integration::stack::{self, Rampart, now, records, wait_for_record};

const SEED: &str = include_str!("../../config/examples/disallow-etc-access-for-nginx.yaml");
const KILL_SHADOW_READERS: &str = "apiVersion: rampart.dev/v1alpha1
kind: RuntimePolicy
metadata: {name: KillShadowReaders}
spec:
  selector: {containerNames: [nginx]}
  severity: Critical
  files:
    - {paths: [/etc/shadow], access: [read], action: block, response: kill-process}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_scenario_end_to_end() {
    let Some(cri) = test_node().await else { return };
    assert!(
        Path::new("/var/lib/rampart-node/bin/rampart-runc").exists()
            || std::env::var_os("RAMPART_NODE_DIR").is_some(),
        "containerd is not running runc through rampart-runc: run `make build` before `make node-up`"
    );
    let since = now();
    let rampart = Rampart::up(&[("seed.yaml", SEED)]);
    let policy_dir = rampart.policy_dir.clone();
    let policy_file = policy_dir.join("seed.yaml");

    let pod_name = unique_name("vulnerable-nginx");
    let pod = TestPod::run(
        &cri,
        &PodSpec::new(&pod_name)
            .namespace("rampart-test")
            .label("app", "nginx"),
        &[ContainerSpec::new("nginx", "rampart.local/nginx:latest")],
    )
    .await
    .expect("nginx starts under rampart");

    // Protected at creation: rampart-nri asked rampartd and annotated the container.
    let status = cri
        .container_status(pod.container_id("nginx").unwrap())
        .await
        .unwrap();
    let spec = status
        .runtime_spec()
        .expect("verbose status has the runtime spec");
    let seccomp = spec["annotations"]["rampart.dev/seccomp"]
        .as_str()
        .expect("rampart-nri added the seccomp annotation");
    assert!(seccomp.contains("openat"), "{seccomp}");
    assert_eq!(
        spec["annotations"]["rampart.dev/policies"],
        "DisallowEtcAccessForNginx"
    );

    // The attack.
    let cat = pod.exec("nginx", &["cat", "/etc/passwd"]).await.unwrap();
    assert_ne!(cat.exit_code, 0, "{cat:?}");
    assert!(!cat.stdout_text().contains("root:x:0:0"), "{cat:?}");
    assert!(
        String::from_utf8_lossy(&cat.stderr).contains("Operation not permitted"),
        "{cat:?}"
    );

    // The seed's record, in journald: JSON in MESSAGE, every field a journal field too.
    let r = wait_for_record(&pod_name, "Blocked", since);
    let alert: serde_json::Value =
        serde_json::from_str(r["MESSAGE"].as_str().unwrap()).expect("MESSAGE is the alert JSON");
    for (k, v) in [
        ("eventType", "FileAccess"),
        ("policyName", "DisallowEtcAccessForNginx"),
        ("podName", pod_name.as_str()),
        ("containerName", "nginx"),
        ("filePath", "/etc/passwd"),
        ("action", "Blocked"),
        ("severity", "High"),
        (
            "message",
            "File access to /etc/passwd by nginx container is prohibited by policy.",
        ),
        ("namespace", "rampart-test"),
        ("enforcer", "fanotify"),
    ] {
        assert_eq!(alert[k], v, "alert field {k}: {alert}");
    }
    // The seed's fields come first, in the seed's order (checked on the text: a JSON map
    // would sort them).
    let text = r["MESSAGE"].as_str().unwrap();
    let at = |k: &str| text.find(&format!("\"{k}\":")).unwrap_or(usize::MAX);
    let order = [
        "timestamp",
        "eventType",
        "policyName",
        "podName",
        "containerName",
        "filePath",
        "action",
        "severity",
        "message",
        "namespace",
    ];
    assert!(
        order.windows(2).all(|w| at(w[0]) < at(w[1])),
        "fields out of order: {text}"
    );
    assert_eq!(r["RAMPART_POLICY"], "DisallowEtcAccessForNginx");
    assert_eq!(r["RAMPART_FILE_PATH"], "/etc/passwd");
    assert_eq!(r["PRIORITY"], "3", "High is syslog err");

    // The record names who started the process it is about, from the kernel's process events:
    // a shell that forked cat, however briefly either lived (another file: the same one would be
    // folded into the first record as a repeat).
    let blocked_so_far = records(&pod_name, "Blocked", since).len();
    let sh = pod
        .exec("nginx", &["sh", "-c", "cat /etc/shadow; true"])
        .await
        .unwrap();
    assert!(!sh.stdout_text().contains("root:x:0:0"), "{sh:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let r = loop {
        let mut all = records(&pod_name, "Blocked", since);
        if all.len() > blocked_so_far {
            break all.pop().unwrap();
        }
        assert!(Instant::now() < deadline, "no Blocked record for sh -c cat");
        std::thread::sleep(Duration::from_millis(100));
    };
    let alert: serde_json::Value = serde_json::from_str(r["MESSAGE"].as_str().unwrap()).unwrap();
    let parent = &alert["ancestors"][0];
    // Where /proc showed the shell's executable, or, if it had exited before the sensor's
    // reader asked, the name it was run by; its command line is the kernel's, read at exec.
    let exe = parent["executable"].as_str().unwrap_or_default();
    assert!(exe == "/bin/busybox" || exe == "/bin/sh", "{alert}");
    assert_eq!(parent["args"][0], "sh", "{alert}");
    assert_eq!(parent["args"][2], "cat /etc/shadow; true", "{alert}");
    assert_eq!(r["RAMPART_PARENT_PATH"], exe);

    // nginx is unaffected.
    let www = pod.exec("nginx", &["cat", "/etc/hostname"]).await.unwrap();
    assert_eq!(www.exit_code, 0, "{www:?}");

    // rampartd's flow sensor counts the pod's connections: a page fetched over the loopback is
    // a connect answered and a connection accepted.
    let page = pod
        .exec("nginx", &["wget", "-q", "-O-", "http://127.0.0.1/"])
        .await
        .unwrap();
    assert_eq!(page.exit_code, 0, "{page:?}");
    let container = pod.container_id("nginx").unwrap().to_owned();
    stack::wait_status(10, "the pod's connections were not counted", |s| {
        let flows = stack::workload(s, &container)?["flows"].clone();
        let n = |k: &str| flows[k].as_u64().unwrap_or(0);
        (n("connected") >= 1 && n("accepted") >= 1).then_some(())
    });

    // rampartd restarts: the agents announce the container again (events no longer carry the
    // workload), so status shows it bound and the next record still names the pod.
    let container_id = pod.container_id("nginx").unwrap().to_owned();
    let restarted = rampart.script("restart-daemon");
    assert!(restarted.status.success(), "{restarted:?}");
    let blocked_before = records(&pod_name, "Blocked", since).len();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = stack::status();
        let bound = stack::workload(&status, &container_id);
        if let Some(w) = bound {
            assert_eq!(w["pod"], pod_name.as_str(), "{w}");
            // The agent said what it enforces with on this kernel, and why not where it doesn't.
            let agent = status["agents"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["kind"] == "rampart-seccomp" && a["connected"] == true)
                .unwrap_or_else(|| panic!("no connected seccomp agent: {status}"));
            let mechanism = |name: &str| {
                agent["mechanisms"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|m| m["name"] == name)
                    .cloned()
                    .unwrap_or_else(|| panic!("no {name} mechanism: {agent}"))
            };
            for name in [
                "seccomp-notify",
                "fanotify",
                "fanotify-exec",
                "cgroup-egress",
            ] {
                assert_eq!(mechanism(name)["inUse"], true, "{agent}");
            }
            // This kernel refuses BPF LSM programs (docs/enforcement.md).
            let lsm = mechanism("bpf-lsm");
            assert_eq!(lsm["inUse"], false, "{lsm}");
            assert!(lsm["detail"].as_str().unwrap().contains("LSM"), "{lsm}");
            // rampartd's own: the process sensor and the ingress guard loaded on this kernel.
            for name in ["tracepoint-process", "cgroup-ingress"] {
                let m = status["mechanisms"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|m| m["name"] == name)
                    .unwrap_or_else(|| panic!("rampartd lists no {name}: {status}"));
                assert_eq!(m["inUse"], true, "{m}");
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rampartd's registry was not rebuilt after its restart: {status}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let cat = pod.exec("nginx", &["cat", "/etc/passwd"]).await.unwrap();
    assert_ne!(cat.exit_code, 0, "{cat:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let r = loop {
        let mut all = records(&pod_name, "Blocked", since);
        if all.len() > blocked_before {
            break all.pop().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no Blocked record for {pod_name} after rampartd restarted"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(r["RAMPART_CONTAINER"], "nginx");
    assert_eq!(r["RAMPART_NAMESPACE"], "rampart-test");
    // The restarted rampartd watches the container again: its process sensor saw the exec of
    // cat, and dropped nothing.
    let sensor = stack::wait_status(
        10,
        "the restarted rampartd's process sensor saw no exec",
        |s| {
            stack::sensor(s, "tracepoint-process")
                .filter(|c| c["written"].as_u64().unwrap_or(0) > 0)
        },
    );
    assert_eq!(sensor["dropped"], 0, "{sensor}");

    // A second policy, added while everything runs: reading /etc/shadow kills the process.
    std::fs::write(policy_dir.join("kill.yaml"), KILL_SHADOW_READERS).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = pod
            .exec("nginx", &["sh", "-c", "cat /etc/shadow; echo exit=$?"])
            .await
            .unwrap();
        if out.stdout_text().contains("exit=137") {
            assert!(!out.stdout_text().contains("root:"), "{out:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the kill-process policy never took effect: {out:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let r = wait_for_record(&pod_name, "ProcessKilled", since);
    assert_eq!(r["RAMPART_POLICY"], "KillShadowReaders");
    assert_eq!(r["RAMPART_SEVERITY"], "Critical");

    // A broken edit: rejected, and the old policy keeps deciding.
    std::fs::write(
        &policy_file,
        SEED.replace("access: [read]", "acess: [read]"),
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let again = pod.exec("nginx", &["cat", "/etc/passwd"]).await.unwrap();
    assert_ne!(
        again.exit_code, 0,
        "a broken edit must not lift the block: {again:?}"
    );

    // Audit mode: the read goes through and is reported as Alerted.
    std::fs::write(
        &policy_file,
        SEED.replace("  mode: enforce\n", "  mode: audit\n"),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = pod.exec("nginx", &["cat", "/etc/passwd"]).await.unwrap();
        if out.exit_code == 0 {
            assert!(out.stdout_text().contains("root:x:0:0"));
            break;
        }
        assert!(Instant::now() < deadline, "audit mode never took effect");
        std::thread::sleep(Duration::from_millis(200));
    }
    let r = wait_for_record(&pod_name, "Alerted", since);
    let alert: serde_json::Value = serde_json::from_str(r["MESSAGE"].as_str().unwrap()).unwrap();
    assert_eq!(alert["action"], "Alerted");
    assert_eq!(alert["filePath"], "/etc/passwd");

    pod.remove().await.unwrap();
}
