//! `rampartctl status` against a real in-process rampartd agent API: an agent that said Hello, a
//! bound workload, and a status source standing in for the daemon's main loop.

mod api_common;

use std::process::Output;
use std::sync::Arc;

use api_common::{Harness, T, workload};
use rampart_protos::agent::{
    AgentKind, BindRequest, HelloRequest, Mechanism, PolicyLoadError, PolicyStatus, SensorCount,
    Workload,
};
use rampart_protos::client::DaemonClient;
use rampartd::api::{AlertCounters, StatusSource};

struct FixedSource;

impl StatusSource for FixedSource {
    fn policies(&self) -> Vec<PolicyStatus> {
        vec![PolicyStatus {
            name: "DisallowEtcAccessForNginx".into(),
            file: "/etc/rampart/policies.d/nginx.yaml".into(),
            mode: "enforce".into(),
            content_hash: "sha256:0123abcd".into(),
            loaded_at_ms: 1_698_402_600_000,
        }]
    }

    fn load_errors(&self) -> Vec<PolicyLoadError> {
        vec![PolicyLoadError {
            file: "/etc/rampart/policies.d/broken.yaml".into(),
            message: "/etc/rampart/policies.d/broken.yaml:6:9: unknown variant `enforc`".into(),
        }]
    }

    fn policies_in_scope(&self, w: &Workload) -> Vec<String> {
        if w.container_name == "nginx" {
            vec!["DisallowEtcAccessForNginx".into()]
        } else {
            Vec::new()
        }
    }

    fn alert_counters(&self) -> AlertCounters {
        AlertCounters {
            written: 5,
            deduplicated: 3,
            rate_limited: 2,
            journald_queued: 1,
            journald_dropped: 0,
        }
    }
}

async fn rampartctl(args: Vec<String>) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_rampartctl"))
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("RAMPART_DAEMON_SOCKET")
        .output()
        .await
        .expect("rampartctl runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_agents_workloads_policies_and_counters() {
    let mut h = Harness::start("ctl-status").await;
    let sock = h.path.display().to_string();

    // Before the main loop hands over its status source, the answer says it is partial.
    let client = DaemonClient::connect(&h.path).await.unwrap();
    let early = client.status(T).await.unwrap();
    assert!(!early.complete);
    assert!(early.agents.is_empty(), "status calls are not agents");

    h.daemon.set_status_source(Arc::new(FixedSource));
    client
        .hello(
            HelloRequest {
                kind: AgentKind::Seccomp as i32,
                version: "0.1.0-test".into(),
                pid: 4242,
                enforcers: vec!["seccomp-notify".into()],
                containers: Vec::new(),
                mechanisms: vec![
                    Mechanism {
                        name: "seccomp-notify".into(),
                        in_use: true,
                        detail: "the syscalls each protected container's filter notifies".into(),
                    },
                    Mechanism {
                        name: "bpf-lsm".into(),
                        in_use: false,
                        detail: "the kernel refused to load a BPF LSM program".into(),
                    },
                ],
            },
            T,
        )
        .await
        .unwrap();
    client
        .report_events(
            Vec::new(),
            0,
            vec![SensorCount {
                name: "tracepoint-process".into(),
                written: 40,
                dropped: 2,
            }],
            T,
        )
        .await
        .unwrap();
    client
        .bind_container(
            BindRequest {
                workload: Some(workload(
                    "default",
                    "vulnerable-nginx-pod",
                    "nginx",
                    "c0ffee0123456789",
                )),
                cgroup_id: 9001,
                cgroup_path: "/sys/fs/cgroup/unified/kubepods/x".into(),
                pid: 777,
                filtered: true,
            },
            T,
        )
        .await
        .unwrap();
    h.daemon.publish_snapshot(Vec::new());

    let out = rampartctl(vec!["status".into(), "--socket".into(), sock.clone()]).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("on node node-a"), "{stdout}");
    assert!(
        stdout.contains("DisallowEtcAccessForNginx  enforce"),
        "{stdout}"
    );
    assert!(stdout.contains("sha256:0123abcd"), "{stdout}");
    assert!(
        stdout.contains("broken.yaml:6:9: unknown variant"),
        "{stdout}"
    );
    let workload_line = stdout
        .lines()
        .find(|l| l.contains("default/vulnerable-nginx-pod"))
        .unwrap_or_else(|| panic!("no workload row: {stdout}"));
    for cell in [
        "nginx",
        "c0ffee0123456",
        "9001",
        "777",
        "DisallowEtcAccessForNginx",
    ] {
        assert!(
            workload_line.contains(cell),
            "{cell} missing: {workload_line}"
        );
    }
    let agent_line = stdout
        .lines()
        .find(|l| l.contains("rampart-seccomp"))
        .unwrap_or_else(|| panic!("no agent row: {stdout}"));
    for cell in ["0.1.0-test", "4242", "seccomp-notify", "connected"] {
        assert!(agent_line.contains(cell), "{cell} missing: {agent_line}");
    }
    assert!(stdout.contains("alerts deduplicated"), "{stdout}");
    let sensor_line = stdout
        .lines()
        .find(|l| l.contains("tracepoint-process") && !l.contains("rampart-seccomp"))
        .unwrap_or_else(|| panic!("no sensor row: {stdout}"));
    assert_eq!(
        sensor_line.split_whitespace().collect::<Vec<_>>(),
        ["tracepoint-process", "40", "2"],
        "{stdout}"
    );
    let lsm_line = stdout
        .lines()
        .find(|l| l.contains("bpf-lsm"))
        .unwrap_or_else(|| panic!("no mechanism row: {stdout}"));
    for cell in ["rampart-seccomp", "no", "the kernel refused"] {
        assert!(lsm_line.contains(cell), "{cell} missing: {lsm_line}");
    }

    let out = rampartctl(vec![
        "status".into(),
        "--socket".into(),
        sock.clone(),
        "-o".into(),
        "json".into(),
    ])
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["complete"], true);
    assert_eq!(v["nodeName"], "node-a");
    assert_eq!(v["agents"][0]["kind"], "rampart-seccomp");
    assert_eq!(v["agents"][0]["connected"], true);
    assert_eq!(v["agents"][0]["enforcers"][0], "seccomp-notify");
    assert_eq!(v["agents"][0]["mechanisms"][1]["name"], "bpf-lsm");
    assert_eq!(v["sensors"][0]["name"], "tracepoint-process");
    assert_eq!(v["sensors"][0]["dropped"], 2);
    assert_eq!(v["agents"][0]["mechanisms"][1]["inUse"], false);
    assert_eq!(v["workloads"][0]["pod"], "vulnerable-nginx-pod");
    assert_eq!(v["workloads"][0]["cgroupId"], 9001);
    assert_eq!(
        v["workloads"][0]["policies"][0],
        "DisallowEtcAccessForNginx"
    );
    assert_eq!(v["policies"][0]["loadedAt"], "2023-10-27T10:30:00Z");
    assert_eq!(v["counters"]["alertsWritten"], 5);
    assert_eq!(v["counters"]["alertsRateLimited"], 2);
    assert_eq!(
        v["loadErrors"][0]["file"],
        "/etc/rampart/policies.d/broken.yaml"
    );

    // The agent going away shows as disconnected.
    drop(client);
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let out = rampartctl(vec![
            "status".into(),
            "--socket".into(),
            sock.clone(),
            "-o".into(),
            "json".into(),
        ])
        .await;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if v["agents"][0]["connected"] == false {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "agent never disconnected"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    h.stop().await;
}

#[tokio::test]
async fn status_without_rampartd_is_one_clear_error() {
    let sock = api_common::socket_path("ctl-absent");
    let out = rampartctl(vec![
        "status".into(),
        "--socket".into(),
        sock.display().to_string(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "rampartctl: error: cannot reach rampartd at {}: no socket there: is rampartd running?",
            sock.display()
        )),
        "{stderr}"
    );
}
