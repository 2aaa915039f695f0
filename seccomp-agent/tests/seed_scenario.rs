//! The seed scenario with the real policy and the real agent code, on the real node: an nginx pod
//! whose Localhost seccomp profile is what rampart-nri writes (writing opens and exec notified to
//! the agent in this test process, read-only opens decided by its file guard), under the seed
//! policy DisallowEtcAccessForNginx. nginx must start and serve; `cat /etc/passwd` must get
//! "Operation not permitted" (EPERM from the file guard) before anything is read, by every
//! spelling of the path; the block must be reported with the policy's name.
//!
//! Needs root and the node (`make node-up`). Under `make test` (RAMPART_NODE_TESTS=1) a missing
//! node fails the test instead of skipping it.

mod common;

use rampart_protos::agent::{Action, EventType, Severity};
use std::net::SocketAddr;

use common::{Agent, NOTIFY_OPEN_EXEC, SEED, http_get, node};
use rampart_integration::cri::{ContainerSpec, PodSpec, SeccompProfile, TestPod, unique_name};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_policy_blocks_etc_passwd_and_nginx_still_serves() {
    let Some(cri) = node().await else { return };
    let agent = Agent::start(&[("seed.yaml", SEED)]);
    let profile = agent.profile(NOTIFY_OPEN_EXEC, &[]);
    let events = agent.events.clone();

    let name = unique_name("seed");
    let pod = TestPod::run(
        &cri,
        &PodSpec::new(&name)
            .namespace("rampart-test")
            .label("app", "nginx"),
        &[ContainerSpec::new("nginx", "rampart.local/nginx:latest")
            .seccomp(SeccompProfile::Localhost(profile.clone()))],
    )
    .await
    .expect("nginx starts with every open emulated by the agent");
    let ip = pod.ip.expect("pod IP");

    // nginx read its config, /etc/passwd and /etc/group (allowed to /usr/sbin/nginx) and serves.
    let reply = http_get(SocketAddr::new(ip, 80));
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");

    // The attack: blocked before anything is read.
    let cat = pod.exec("nginx", &["cat", "/etc/passwd"]).await.unwrap();
    assert_ne!(cat.exit_code, 0, "{cat:?}");
    assert!(
        !cat.stdout_text().contains("root:x:0:0"),
        "the file was read: {cat:?}"
    );
    assert!(
        String::from_utf8_lossy(&cat.stderr).contains("Operation not permitted"),
        "{cat:?}"
    );

    // Other spellings of the same file, resolved by the agent inside the container.
    for script in [
        "cat /etc/../etc/passwd",
        "cat //etc///passwd",
        "cat /proc/self/root/etc/passwd",
        "cd /etc && cat passwd",
        "cd /etc && cat ./nginx/../passwd",
        "ln -sf /etc/passwd /tmp/pw-link && cat /tmp/pw-link",
        "cp /bin/busybox /tmp/kat && /tmp/kat cat /etc/passwd",
    ] {
        let out = pod.exec("nginx", &["sh", "-c", script]).await.unwrap();
        assert!(
            !out.stdout_text().contains("root:x:0:0"),
            "`{script}` read /etc/passwd: {out:?}"
        );
        assert_ne!(out.exit_code, 0, "`{script}` succeeded: {out:?}");
    }

    // What the policy allows still works: runtime-managed files, files outside /etc.
    let host = pod.exec("nginx", &["cat", "/etc/hostname"]).await.unwrap();
    assert_eq!(host.exit_code, 0, "{host:?}");
    let www = pod
        .exec("nginx", &["cat", "/usr/share/nginx/html/index.html"])
        .await
        .unwrap();
    assert!(www.stdout_text().contains("Welcome to nginx!"), "{www:?}");
    let write = pod
        .exec("nginx", &["sh", "-c", "echo hi > /tmp/x && cat /tmp/x"])
        .await
        .unwrap();
    assert_eq!(write.stdout_text(), "hi\n", "{write:?}");

    // The block was reported, naming the pod's container, the file and the policy.
    let container_id = pod.container_id("nginx").unwrap().to_owned();
    let seen = events.all();
    let blocked: Vec<_> = seen
        .iter()
        .filter(|e| e.file_path == "/etc/passwd" && e.action() == Action::Blocked)
        .collect();
    assert!(
        !blocked.is_empty(),
        "no Blocked event for /etc/passwd: {seen:#?}"
    );
    let e = blocked[0];
    assert_eq!(e.policy_name, "DisallowEtcAccessForNginx");
    assert_eq!(e.event_type(), EventType::FileAccess);
    assert_eq!(e.severity(), Severity::High);
    assert_eq!(e.container_id, container_id);
    // cat's read-only open never reached the seccomp filter: the file guard decided it.
    assert_eq!(e.enforcer, "fanotify");
    assert_eq!(
        e.message,
        "File access to /etc/passwd by nginx container is prohibited by policy."
    );

    pod.remove().await.unwrap();
    drop(agent);
}
