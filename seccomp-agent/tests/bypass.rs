//! The bypass list of issue 5 as tests: under the seed policy (DisallowEtcAccessForNginx), with
//! the agent's code serving the pod's notify fds in this process, none of these may read
//! /etc/passwd from the nginx container. The attempts are made by `rampart-probe`
//! (images/tools/rampart-probe.c, in the nginx image at /usr/local/bin), which prints `ok <bytes>`
//! when it read the file's content and `err <ERRNO> …` when refused, and exits 0 / 1 accordingly.
//!
//! Each test runs its own pod and agent. Needs root and the node (`make node-up`); under
//! `make test` (RAMPART_NODE_TESTS=1) a missing node fails the test instead of skipping it.

mod common;

use rampart_protos::agent::{Action, EventType};
use std::time::{Duration, Instant};

use common::{Agent, DENY_IO_URING, NOTIFY_FILES, SEED, node};
use rampart_integration::cri::{
    ContainerSpec, Cri, ExecOutput, PodSpec, SeccompProfile, TestPod, unique_name,
};

const PROBE: &str = "/usr/local/bin/rampart-probe";

/// A second policy for the same container: running a binary that is in no image is blocked.
const DRIFT: &str = r#"
apiVersion: rampart.dev/v1alpha1
kind: RuntimePolicy
metadata: {name: BlockDriftInNginx}
spec:
  selector: {containerNames: [nginx]}
  mode: enforce
  severity: Critical
  drift: {action: block}
"#;

/// A policy that keeps the web root as the image shipped it.
const WEBROOT: &str = r#"
apiVersion: rampart.dev/v1alpha1
kind: RuntimePolicy
metadata: {name: ProtectWebRoot}
spec:
  selector: {containerNames: [nginx]}
  mode: enforce
  severity: High
  files:
    - id: webroot
      paths: ["/usr/share/nginx/html/**"]
      access: [write, create, delete, chmod]
      action: block
"#;

/// An nginx pod under `policies`, whose profile notifies file calls and exec to the agent and
/// refuses io_uring as rampart-nri's hardening does.
async fn nginx_under(cri: &Cri, policies: &[(&str, &str)]) -> (Agent, TestPod) {
    let agent = Agent::start(policies);
    let profile = agent.profile(NOTIFY_FILES, &[DENY_IO_URING]);
    let pod = TestPod::run(
        cri,
        &PodSpec::new(unique_name("bypass"))
            .namespace("rampart-test")
            .label("app", "nginx"),
        &[ContainerSpec::new("nginx", "rampart.local/nginx:latest")
            .seccomp(SeccompProfile::Localhost(profile))],
    )
    .await
    .expect("nginx starts under the agent");
    (agent, pod)
}

async fn probe(pod: &TestPod, args: &[&str]) -> ExecOutput {
    let mut cmd = vec![PROBE];
    cmd.extend_from_slice(args);
    pod.exec("nginx", &cmd).await.unwrap()
}

/// The probe ran, and reported that it could not read the file.
fn assert_refused(out: &ExecOutput, what: &str) {
    assert!(
        !out.stdout_text().contains("root:x:0:0") && !out.stdout_text().starts_with("ok"),
        "{what} read /etc/passwd: {out:?}"
    );
    assert_eq!(
        out.exit_code, 1,
        "{what}: the probe did not report a refusal: {out:?}"
    );
    assert!(out.stdout_text().starts_with("err "), "{what}: {out:?}");
}

fn assert_read(out: &ExecOutput, what: &str) {
    assert_eq!(out.exit_code, 0, "{what} should have been allowed: {out:?}");
    assert!(out.stdout_text().starts_with("ok "), "{what}: {out:?}");
}

/// A Blocked event for /etc/passwd was reported (so the refusal was the policy's, not an accident
/// of resolution).
fn assert_blocked_event(agent: &Agent, what: &str) {
    let seen = agent.events.all();
    assert!(
        seen.iter().any(|e| e.file_path == "/etc/passwd"
            && e.action() == Action::Blocked
            && e.policy_name == "DisallowEtcAccessForNginx"),
        "{what}: no Blocked event for /etc/passwd: {seen:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openat_relative_to_a_dirfd_on_etc_is_refused() {
    let Some(cri) = node().await else { return };
    let (agent, pod) = nginx_under(&cri, &[("seed.yaml", SEED)]).await;

    // Control: the probe reads what the policy allows, the same way.
    assert_read(
        &probe(&pod, &["openat", "/etc", "hostname"]).await,
        "openat(/etc, hostname)",
    );
    let out = probe(&pod, &["openat", "/etc", "passwd"]).await;
    assert_refused(&out, "openat(dirfd /etc, \"passwd\")");
    // A read-only openat is the file guard's: fanotify refuses with EPERM.
    assert!(out.stdout_text().starts_with("err EPERM"), "{out:?}");
    let out = probe(&pod, &["openat", "/", "etc/passwd"]).await;
    assert_refused(&out, "openat(dirfd /, \"etc/passwd\")");
    assert_blocked_event(&agent, "openat with a dirfd");

    pod.remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openat2_with_resolve_flags_is_refused() {
    let Some(cri) = node().await else { return };
    let (agent, pod) = nginx_under(&cri, &[("seed.yaml", SEED)]).await;

    assert_read(
        &probe(&pod, &["openat2", "/etc/hostname", "in-root"]).await,
        "openat2(/etc/hostname, RESOLVE_IN_ROOT)",
    );
    for mode in ["in-root", "beneath", "none"] {
        let what = format!("openat2(/etc/passwd, {mode})");
        let out = probe(&pod, &["openat2", "/etc/passwd", mode]).await;
        assert_refused(&out, &what);
        assert!(
            out.stdout_text().starts_with("err EACCES"),
            "{what}: {out:?}"
        );
    }
    assert_blocked_event(&agent, "openat2");

    pod.remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openat2_through_proc_self_root_is_refused() {
    let Some(cri) = node().await else { return };
    let (agent, pod) = nginx_under(&cri, &[("seed.yaml", SEED)]).await;

    assert_read(
        &probe(&pod, &["openat2", "/proc/self/root/etc/hostname"]).await,
        "openat2(/proc/self/root/etc/hostname)",
    );
    for mode in ["none", "in-root", "beneath"] {
        let out = probe(&pod, &["openat2", "/proc/self/root/etc/passwd", mode]).await;
        assert_refused(
            &out,
            &format!("openat2(/proc/self/root/etc/passwd, {mode})"),
        );
    }
    // Through the task's own magic link the agent still sees the real file.
    assert_blocked_event(&agent, "openat2 through /proc/self/root");

    pod.remove().await.unwrap();
}

/// A second thread rewrites the path buffer between the agent's read and the kernel's: with a
/// CONTINUE, some opens would get /etc/passwd. The agent opens what it checked (emulation), so
/// none may.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_the_path_buffer_never_opens_etc_passwd() {
    let Some(cri) = node().await else { return };
    let (agent, pod) = nginx_under(&cri, &[("seed.yaml", SEED)]).await;

    const N: &str = "100000";
    let started = Instant::now();
    let out = cri
        .exec_sync(
            pod.container_id("nginx").unwrap(),
            &[PROBE, "race", "/etc/passwd", "/etc/hostname", N],
            Duration::from_secs(90),
        )
        .await
        .unwrap();
    let took = started.elapsed();
    eprintln!("race: {} in {took:?}", out.stdout_text().trim());
    let text = out.stdout_text();
    assert!(
        text.starts_with(&format!("race n {N} target 0 ")),
        "an open returned /etc/passwd: {out:?}"
    );
    assert_eq!(out.exit_code, 1, "{out:?}");
    // Both names were really seen by the agent: the race was run, not lost to one side.
    let field = |name: &str| -> u64 {
        let words: Vec<&str> = text.split_whitespace().collect();
        let i = words.iter().position(|w| *w == name).unwrap();
        words[i + 1].parse().unwrap()
    };
    assert!(
        field("decoy") > 0 && field("refused") > 0,
        "the race never hit both paths: {text}"
    );
    assert_blocked_event(&agent, "race");

    pod.remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn io_uring_is_refused_by_the_filter() {
    let Some(cri) = node().await else { return };
    let (_agent, pod) = nginx_under(&cri, &[("seed.yaml", SEED)]).await;

    let out = probe(&pod, &["io_uring", "/etc/passwd"]).await;
    assert_refused(&out, "io_uring IORING_OP_OPENAT");
    assert!(
        out.stdout_text().starts_with("err EPERM io_uring_setup"),
        "{out:?}"
    );

    pod.remove().await.unwrap();
}

/// The 32-bit ABI (int $0x80) has its own syscall numbers: the profile lists only
/// SCMP_ARCH_X86_64, so the filter's bad-arch action applies (the task is killed with SIGSYS).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i386_open_is_refused() {
    let Some(cri) = node().await else { return };
    let (_agent, pod) = nginx_under(&cri, &[("seed.yaml", SEED)]).await;

    let out = probe(&pod, &["open32", "/etc/passwd"]).await;
    assert!(
        !out.stdout_text().starts_with("ok") && !out.stdout_text().contains("root:x:0:0"),
        "the i386 open read /etc/passwd: {out:?}"
    );
    assert_ne!(out.exit_code, 0, "{out:?}");

    pod.remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn o_path_open_of_an_allowed_directory_works() {
    let Some(cri) = node().await else { return };
    let (_agent, pod) = nginx_under(&cri, &[("seed.yaml", SEED)]).await;

    assert_read(
        &probe(&pod, &["open-path", "/etc"]).await,
        "open(/etc, O_PATH)",
    );

    pod.remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_names_for_etc_passwd_are_refused() {
    let Some(cri) = node().await else { return };
    let (agent, pod) = nginx_under(&cri, &[("seed.yaml", SEED)]).await;

    // A hard link is /etc/passwd under a name no rule covers: link(2) itself is refused.
    let out = probe(&pod, &["hardlink", "/etc/passwd", "/tmp/pw-hardlink"]).await;
    assert_refused(&out, "a hard link to /etc/passwd");
    assert!(out.stdout_text().starts_with("err EACCES link"), "{out:?}");
    // The same through an O_PATH descriptor and its magic link: the O_PATH open of a file the
    // task may not read is already refused (and linkat would be).
    let out = probe(&pod, &["link-opath", "/etc/passwd", "/tmp/pw-opath"]).await;
    assert_refused(&out, "linkat of /proc/self/fd/N of an O_PATH /etc/passwd");
    assert!(out.stdout_text().starts_with("err EACCES"), "{out:?}");
    // Moving it out, or moving the directory that holds it.
    let out = probe(&pod, &["rename", "/etc/passwd", "/tmp/pw-moved"]).await;
    assert_refused(&out, "rename of /etc/passwd to /tmp");
    assert!(
        out.stdout_text().starts_with("err EACCES rename"),
        "{out:?}"
    );
    let out = probe(&pod, &["rename", "/etc", "/etc2"]).await;
    assert!(
        out.stdout_text().starts_with("err EACCES rename"),
        "{out:?}"
    );
    let out = probe(&pod, &["open", "/etc2/passwd"]).await;
    assert_refused(&out, "/etc2/passwd after a refused rename of /etc");
    assert_blocked_event(&agent, "new names for /etc/passwd");
    // Nothing was left behind: the names were never made.
    let ls = pod
        .exec(
            "nginx",
            &[
                "ls",
                "/tmp/pw-hardlink",
                "/tmp/pw-opath",
                "/tmp/pw-moved",
                "/etc2",
            ],
        )
        .await
        .unwrap();
    assert!(ls.stdout_text().is_empty(), "{ls:?}");

    // The workload's own files still link, move and go as usual (the agent does these calls
    // for the task): nothing guarded escapes.
    let ok = pod
        .exec(
            "nginx",
            &[
                "sh",
                "-c",
                "cd /tmp && echo data > a && ln a b && mv b c && mkdir d && mv c d/e \
                 && rm a && chmod 600 d/e && cat d/e && ls -l d/e && rm d/e && rmdir d \
                 && ! test -e d",
            ],
        )
        .await
        .unwrap();
    assert_eq!(ok.exit_code, 0, "{ok:?}");
    assert!(ok.stdout_text().starts_with("data\n-rw-------"), "{ok:?}");
    // A name for an open descriptor (linkat through its magic link, done by the agent).
    let ok = pod
        .exec("nginx", &["sh", "-c", "echo fd > /tmp/src"])
        .await
        .unwrap();
    assert_eq!(ok.exit_code, 0, "{ok:?}");
    assert_read(
        &probe(&pod, &["link-opath", "/tmp/src", "/tmp/src-link"]).await,
        "linkat of an O_PATH /tmp/src",
    );
    // Inside the guarded tree nothing escapes either (both names are under /etc/**).
    let ok = pod
        .exec(
            "nginx",
            &[
                "sh",
                "-c",
                "echo x > /etc/t1 && mv /etc/t1 /etc/t2 && rm /etc/t2",
            ],
        )
        .await
        .unwrap();
    assert_eq!(ok.exit_code, 0, "{ok:?}");

    pod.remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_chmod_truncate_of_a_guarded_tree_are_refused() {
    let Some(cri) = node().await else { return };
    let (agent, pod) = nginx_under(&cri, &[("webroot.yaml", WEBROOT)]).await;
    let index = "/usr/share/nginx/html/index.html";
    let original = pod.exec("nginx", &["cat", index]).await.unwrap();
    assert_eq!(original.exit_code, 0, "{original:?}");

    for (what, cmd) in [
        ("rm", vec!["rm", "-f", index]),
        ("chmod", vec!["chmod", "666", index]),
        ("truncate", vec!["truncate", "-s", "0", index]),
        ("truncate(2)", vec![PROBE, "truncate", index]),
        (
            "write",
            vec![
                "sh",
                "-c",
                "echo defaced > /usr/share/nginx/html/index.html",
            ],
        ),
        (
            "create",
            vec!["sh", "-c", "echo x > /usr/share/nginx/html/new.html"],
        ),
        (
            "rename into",
            vec![
                "sh",
                "-c",
                "echo x > /tmp/n && mv /tmp/n /usr/share/nginx/html/n",
            ],
        ),
        ("rename out", vec!["mv", index, "/tmp/index.html"]),
        (
            "rmdir",
            vec!["sh", "-c", "cd /usr/share/nginx && rm -rf html"],
        ),
    ] {
        let out = pod.exec("nginx", &cmd).await.unwrap();
        assert_ne!(out.exit_code, 0, "{what} succeeded: {out:?}");
    }
    // The page is what the image shipped, with its mode.
    let now = pod.exec("nginx", &["cat", index]).await.unwrap();
    assert_eq!(now.stdout, original.stdout);
    let mode = pod
        .exec("nginx", &["stat", "-c", "%a", index])
        .await
        .unwrap();
    assert_eq!(mode.stdout_text(), "644\n", "{mode:?}");
    let seen = agent.events.all();
    // Reported under the calls busybox really makes (the agent used to name them all by their
    // *at variant).
    for syscall in ["unlink", "chmod", "truncate", "openat", "rename"] {
        assert!(
            seen.iter().any(|e| e.syscall == syscall
                && e.action() == Action::Blocked
                && e.policy_name == "ProtectWebRoot"
                && e.file_path.starts_with("/usr/share/nginx/html")),
            "no Blocked {syscall} event: {seen:#?}"
        );
    }
    // Elsewhere the same calls work.
    let ok = pod
        .exec(
            "nginx",
            &[
                "sh",
                "-c",
                "echo x > /tmp/f && chmod 640 /tmp/f && /usr/local/bin/rampart-probe truncate /tmp/f \
                 && test ! -s /tmp/f && rm /tmp/f",
            ],
        )
        .await
        .unwrap();
    assert_eq!(ok.exit_code, 0, "{ok:?}");

    pod.remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execveat_of_a_memfd_is_refused_by_a_drift_rule() {
    let Some(cri) = node().await else { return };

    // Without a drift rule the memfd runs (the probe's memfd path works at all).
    {
        let (_agent, pod) = nginx_under(&cri, &[("seed.yaml", SEED)]).await;
        let out = probe(&pod, &["execveat-memfd"]).await;
        assert_eq!(out.stdout_text(), "drift\n", "{out:?}");
        pod.remove().await.unwrap();
    }

    let (agent, pod) = nginx_under(&cri, &[("seed.yaml", SEED), ("drift.yaml", DRIFT)]).await;
    let out = probe(&pod, &["execveat-memfd"]).await;
    assert!(!out.stdout_text().contains("drift\n"), "it ran: {out:?}");
    assert_eq!(out.exit_code, 1, "{out:?}");
    assert!(
        out.stdout_text().starts_with("err EACCES execveat"),
        "{out:?}"
    );
    let seen = agent.events.all();
    let e = seen
        .iter()
        .find(|e| e.event_type() == EventType::Drift && e.action() == Action::Blocked)
        .unwrap_or_else(|| panic!("no Blocked Drift event: {seen:#?}"));
    assert_eq!(e.policy_name, "BlockDriftInNginx");
    assert!(e.file_path.starts_with("/memfd:drift"), "{e:?}");
    assert_eq!(e.syscall, "execveat");

    // Binaries from the image still run.
    let ok = pod.exec("nginx", &["echo", "still-runs"]).await.unwrap();
    assert_eq!(ok.stdout_text(), "still-runs\n", "{ok:?}");

    pod.remove().await.unwrap();
}
