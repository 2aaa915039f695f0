//! Process allow-lists and egress rules on the real node (issue 5, item 7): the agent's code
//! serves the pod's notify fds in this process, under policies written for the test.
//!
//! Needs root and the node (`make node-up`); under `make test` (RAMPART_NODE_TESTS=1) a missing
//! node fails the test instead of skipping it.

mod common;

use rampart_protos::agent::{Action, EventType, Severity};
use std::net::SocketAddr;

use common::{Agent, http_get, node};
use rampart_integration::cri::{ContainerSpec, PodSpec, SeccompProfile, TestPod, unique_name};

const PROBE: &str = "/usr/local/bin/rampart-probe";

/// Only nginx (and the probe the test needs) may run in the nginx container.
const ONLY_NGINX: &str = r#"
apiVersion: rampart.dev/v1alpha1
kind: RuntimePolicy
metadata: {name: OnlyNginxRuns}
spec:
  selector: {containerNames: [nginx]}
  mode: enforce
  severity: Critical
  processes:
    - id: allow-list
      allowOnly: [/usr/sbin/nginx, /usr/local/bin/rampart-probe]
      action: block
"#;

/// TEST-NET-3 is off limits, and so is port 6379 anywhere.
const EGRESS: &str = r#"
apiVersion: rampart.dev/v1alpha1
kind: RuntimePolicy
metadata: {name: NoTestNetNoRedis}
spec:
  selector: {containerNames: [nginx]}
  mode: enforce
  severity: High
  network:
    - {id: test-net, cidrs: [203.0.113.0/24], action: block}
    - {id: redis, ports: [6379], action: block}
"#;

/// memfd_create is audited, not denied: each call is reported and goes through.
const AUDIT_MEMFD: &str = r#"
apiVersion: rampart.dev/v1alpha1
kind: RuntimePolicy
metadata: {name: AuditMemfd}
spec:
  selector: {containerNames: [nginx]}
  mode: enforce
  severity: Medium
  hardening:
    syscalls: [memfd_create]
    action: alert
"#;

const NOTIFY: &[&str] = &[
    "execve", "execveat", "connect", "sendto", "sendmsg", "sendmmsg",
];

/// The number after `name` in the probe's one-line report ("race-exec allowed 3 denied 0 ...").
fn counter(out: &rampart_integration::cri::ExecOutput, name: &str) -> u64 {
    let text = out.stdout_text();
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .iter()
        .position(|w| *w == name)
        .and_then(|i| words.get(i + 1)?.parse().ok())
        .unwrap_or_else(|| panic!("no `{name} N` in the probe's report: {out:?}"))
}

async fn nginx_pod(agent: &Agent, cri: &rampart_integration::cri::Cri) -> TestPod {
    nginx_pod_notifying(agent, cri, NOTIFY).await
}

/// An nginx pod whose profile sends `notify` to the agent.
async fn nginx_pod_notifying(
    agent: &Agent,
    cri: &rampart_integration::cri::Cri,
    notify: &[&str],
) -> TestPod {
    let profile = agent.profile(notify, &[]);
    TestPod::run(
        cri,
        &PodSpec::new(unique_name("procnet"))
            .namespace("rampart-test")
            .label("app", "nginx"),
        &[ContainerSpec::new("nginx", "rampart.local/nginx:latest")
            .seccomp(SeccompProfile::Localhost(profile))],
    )
    .await
    .expect("nginx starts under the agent")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_listed_executables_run() {
    let Some(cri) = node().await else { return };
    let agent = Agent::start(&[("only-nginx.yaml", ONLY_NGINX)]);
    // nginx itself starts (its exec is on the list) and forks its workers.
    let pod = nginx_pod(&agent, &cri).await;

    // A shell is not on the list: the exec into the container fails before sh runs.
    let out = pod.exec("nginx", &["sh", "-c", "echo ran"]).await;
    let ran = out.as_ref().is_ok_and(|o| o.stdout_text().contains("ran"));
    assert!(!ran, "sh ran in the nginx container: {out:?}");
    assert!(
        out.as_ref().map_or(true, |o| o.exit_code != 0),
        "the exec of sh did not fail: {out:?}"
    );
    // Nor is a renamed copy of an allowed name's neighbour: busybox under any name.
    let out = pod.exec("nginx", &["/bin/cat", "/etc/hostname"]).await;
    assert!(out.as_ref().map_or(true, |o| o.exit_code != 0), "{out:?}");

    let seen = agent.events.all();
    let blocked: Vec<_> = seen
        .iter()
        .filter(|e| e.event_type() == EventType::ProcessExecution && e.action() == Action::Blocked)
        .collect();
    assert!(
        blocked
            .iter()
            .any(|e| e.file_path == "/bin/busybox" && e.policy_name == "OnlyNginxRuns"),
        "no Blocked exec of /bin/busybox (what /bin/sh resolves to): {seen:#?}"
    );
    // The listed probe runs.
    let ok = pod.exec("nginx", &[PROBE, "nop"]).await.unwrap();
    assert_eq!(ok.exit_code, 0, "{ok:?}");
    // And nginx itself was never in the way: it serves.
    let ip = pod.ip.expect("pod IP");
    let reply = http_get(SocketAddr::new(ip, 80));
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");

    pod.remove().await.unwrap();
}

/// The loader run as a program (`ld.so /bin/sh`) runs anything: the file guard lets it pass
/// only as part of an allowed dynamic exec, and never remembers it. Raced against a remembered
/// static program (the probe), a rewritten path to the loader must still be refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_the_exec_path_to_the_loader_never_runs_it() {
    let Some(cri) = node().await else { return };
    let agent = Agent::start(&[("only-nginx.yaml", ONLY_NGINX)]);
    let pod = nginx_pod(&agent, &cri).await;
    let loader = "/lib64/ld-linux-x86-64.so.2";
    let there = pod.exec("nginx", &[PROBE, "open", loader]).await.unwrap();
    assert!(
        there.stdout_text().starts_with("ok "),
        "no {loader} in the image: {there:?}"
    );

    let out = pod
        .exec("nginx", &[PROBE, "race-exec", PROBE, loader, "400"])
        .await
        .unwrap();
    // The loader, given "exec-marker" as its program, exits 127 like busybox's unknown applet.
    assert_eq!(
        counter(&out, "denied"),
        0,
        "the loader ran as a program: {out:?}"
    );
    assert!(counter(&out, "allowed") > 0, "{out:?}");
    pod.remove().await.unwrap();
}

/// An allowed exec CONTINUEs and the kernel reads the path again: a second thread rewriting it
/// after the check gets another program exec'd unless the exec backstop (fanotify
/// FAN_OPEN_EXEC_PERM on the container's mounts) stops the real file. With
/// RAMPART_TEST_NO_FILE_GUARD=1 this test fails: busybox runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_the_exec_path_never_runs_an_unlisted_program() {
    let Some(cri) = node().await else { return };
    let agent = Agent::start(&[("only-nginx.yaml", ONLY_NGINX)]);
    let pod = nginx_pod(&agent, &cri).await;

    let out = pod
        .exec("nginx", &[PROBE, "race-exec", PROBE, "/bin/busybox", "400"])
        .await
        .unwrap();
    let text = out.stdout_text();
    let count = |what: &str| counter(&out, what);
    assert_eq!(
        count("denied"),
        0,
        "busybox ran in the nginx container: {out:?}"
    );
    // The race was run: the listed program ran for some children, and others were refused.
    assert!(count("allowed") > 0, "{out:?}");
    let seen = agent.events.all();
    assert!(
        seen.iter()
            .any(|e| e.event_type() == EventType::ProcessExecution && e.action() == Action::Blocked),
        "no Blocked exec at all: {seen:#?}"
    );
    let backstop = seen
        .iter()
        .filter(|e| e.enforcer == "fanotify-exec")
        .count();
    eprintln!("race-exec: {text:?}; blocked by the backstop: {backstop}");

    pod.remove().await.unwrap();
}

/// An allowed connect CONTINUEs and the kernel reads the sockaddr again: a second thread flipping
/// its port after the check reaches a blocked port unless the egress backstop (rampart-audit's
/// cgroup/connect4 program, which lets through only the destination the agent approved for that
/// thread) refuses it. With RAMPART_TEST_NO_CONNECT_GUARD=1 this test fails: connects reach 6379.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_the_connect_address_never_reaches_a_blocked_port() {
    let Some(cri) = node().await else { return };
    let agent = Agent::start(&[("egress.yaml", EGRESS)]);
    let pod = nginx_pod(&agent, &cri).await;

    let out = pod
        .exec("nginx", &[PROBE, "race-connect", "6380", "6379", "3000"])
        .await
        .unwrap();
    let text = out.stdout_text();
    let count = |what: &str| counter(&out, what);
    assert_eq!(
        count("bypass"),
        0,
        "connects reached the blocked port 6379: {out:?}"
    );
    // The race was run: the allowed port was reached (refused: nothing listens) and the blocked
    // one was refused.
    assert!(count("refused") > 0 && count("denied") > 0, "{out:?}");
    eprintln!("race-connect: {text:?}");

    pod.remove().await.unwrap();
}

/// A hardening rule in alert mode notifies its syscalls (SeccompPlan puts them in `notify`): the
/// agent reports each call and lets it run, decided on the syscall number alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audited_hardening_syscalls_are_reported_and_run() {
    let Some(cri) = node().await else { return };
    let agent = Agent::start(&[("audit-memfd.yaml", AUDIT_MEMFD)]);
    let pod = nginx_pod_notifying(&agent, &cri, &["execve", "execveat", "memfd_create"]).await;

    // The probe creates a memfd, writes itself into it and execs it: all of it works.
    let out = pod.exec("nginx", &[PROBE, "execveat-memfd"]).await.unwrap();
    assert_eq!(out.stdout_text(), "drift\n", "{out:?}");
    let seen = agent.events.all();
    let e = seen
        .iter()
        .find(|e| e.event_type() == EventType::Syscall && e.syscall == "memfd_create")
        .unwrap_or_else(|| panic!("no memfd_create event: {seen:#?}"));
    assert_eq!(e.action(), Action::Alerted, "{e:?}");
    assert_eq!(e.policy_name, "AuditMemfd");
    assert_eq!(e.severity(), Severity::Medium);

    pod.remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_is_denied_by_cidr_and_by_port() {
    let Some(cri) = node().await else { return };
    let agent = Agent::start(&[("egress.yaml", EGRESS)]);
    let pod = nginx_pod(&agent, &cri).await;
    let send = |how: &'static str, ip: &'static str, port: &'static str| {
        let pod = &pod;
        async move {
            pod.exec("nginx", &[PROBE, "send", how, ip, port])
                .await
                .unwrap()
        }
    };

    // Every way of naming a destination is decided on it.
    for how in ["connect", "sendto", "sendmsg", "sendmmsg"] {
        let out = send(how, "203.0.113.7", "80").await;
        assert_eq!(
            out.stdout_text(),
            format!("err EPERM {how}\n"),
            "{how} to TEST-NET-3: {out:?}"
        );
        let out = send(how, "127.0.0.1", "6379").await;
        assert_eq!(
            out.stdout_text(),
            format!("err EPERM {how}\n"),
            "{how} to port 6379: {out:?}"
        );
    }
    // Allowed destinations reach the kernel: a closed local TCP port refuses, UDP sends go out.
    let out = send("connect", "127.0.0.1", "6380").await;
    assert_eq!(out.stdout_text(), "err ECONNREFUSED connect\n", "{out:?}");
    for how in ["sendto", "sendmsg", "sendmmsg"] {
        let out = send(how, "127.0.0.1", "6380").await;
        assert_eq!(out.stdout_text(), format!("ok {how}\n"), "{out:?}");
    }

    let seen = agent.events.all();
    for (remote, rule) in [("203.0.113.7:80", "test-net"), ("127.0.0.1:6379", "redis")] {
        for syscall in ["connect", "sendto", "sendmsg", "sendmmsg"] {
            assert!(
                seen.iter()
                    .any(|e| e.event_type() == EventType::NetworkConnection
                        && e.action() == Action::Blocked
                        && format!("{}:{}", e.remote_address, e.remote_port) == remote
                        && e.rule_id == rule
                        && e.syscall == syscall),
                "no Blocked {syscall} to {remote}: {seen:#?}"
            );
        }
    }

    pod.remove().await.unwrap();
}
