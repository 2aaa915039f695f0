//! An attacker inside a scoped pod, against rampart as an operator runs it (`scripts/rampart up`
//! on the real node: rampartd reads the policies, rampart-nri injects the filter through
//! rampart-runc, rampart-seccomp decides). Each test is one class of bypass: the attack must
//! fail, and its healthy twin (what a legitimate workload does the same way) must keep working.
//! The attacks are made with busybox and `rampart-probe` (images/tools/rampart-probe.c, in the
//! image at /usr/local/bin), which prints `ok …` when it got through and `err ERRNO …` when refused.
//!
//! Needs root and the node (`make node-up`, after `make build`); under `make test`
//! (RAMPART_NODE_TESTS=1) a missing node fails instead of skipping. The daemons listen on fixed
//! sockets: the tests take turns (`stack::Rampart`).

use rampart_integration::cri::{
    ContainerSpec, Cri, ExecOutput, PodSpec, TestPod, test_node, unique_name,
};
use rampart_integration::stack::Rampart;

const SEED: &str = include_str!("../../config/examples/disallow-etc-access-for-nginx.yaml");
const PROBE: &str = "/usr/local/bin/rampart-probe";

/// A policy for the pods labelled app=builder: the seed's /etc rule, and the parts of the
/// hardening baseline a rootless image builder needs.
const BUILDER: &str = "apiVersion: rampart.dev/v1alpha1
kind: RuntimePolicy
metadata: {name: BuilderMayUseNamespaces}
spec:
  selector: {podLabels: {matchLabels: {app: builder}}}
  files:
    - {paths: [/etc/shadow], access: [read], action: block}
  hardening: {allow: [unshare, mount]}
";

/// An nginx pod labelled `app`, running with no seccomp profile of its own (the kubelet's
/// default), its container named nginx.
async fn nginx_pod(cri: &Cri, app: &str) -> TestPod {
    nginx_pod_with(cri, app, |p| p, |c| c).await
}

/// The same, with more said of the pod and of its container.
async fn nginx_pod_with(
    cri: &Cri,
    app: &str,
    pod: impl FnOnce(PodSpec) -> PodSpec,
    container: impl FnOnce(ContainerSpec) -> ContainerSpec,
) -> TestPod {
    TestPod::run(
        cri,
        &pod(PodSpec::new(unique_name("attack"))
            .namespace("rampart-test")
            .label("app", app)),
        &[container(ContainerSpec::new(
            "nginx",
            "rampart.local/nginx:latest",
        ))],
    )
    .await
    .expect("nginx starts under rampart")
}

async fn sh(pod: &TestPod, script: &str) -> ExecOutput {
    pod.exec("nginx", &["sh", "-c", script]).await.unwrap()
}

async fn probe(pod: &TestPod, args: &[&str]) -> ExecOutput {
    let mut cmd = vec![PROBE];
    cmd.extend_from_slice(args);
    pod.exec("nginx", &cmd).await.unwrap()
}

/// Class 1: a new mount from a user namespace. The pod has no seccomp profile of its own; the
/// baseline every enforcing policy applies refuses new namespaces and mounts, so the guarded
/// file can't be given a path no rule names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bind_mount_from_a_new_user_namespace_is_refused() {
    let Some(cri) = test_node().await else { return };
    let _rampart = Rampart::up(&[("seed.yaml", SEED), ("builder.yaml", BUILDER)]);
    let pod = nginx_pod(&cri, "nginx").await;

    let out = sh(
        &pod,
        "mkdir -p /tmp/e; unshare -Urm sh -c 'mount --bind /etc /tmp/e && cat /tmp/e/passwd'; \
         echo exit=$?",
    )
    .await;
    assert!(!out.stdout_text().contains("root:x:0:0"), "{out:?}");
    assert!(!out.stdout_text().contains("exit=0"), "{out:?}");
    assert!(
        out.stderr_text().contains("Operation not permitted"),
        "unshare is refused: {out:?}"
    );
    // The other spellings of a new namespace: clone with the flag, and clone3, whose flags the
    // filter can't read (ENOSYS, so the C library falls back to clone).
    let clone = probe(&pod, &["clone-ns"]).await;
    assert_eq!(
        clone.stdout_text().trim(),
        "clone err EPERM clone3 err ENOSYS",
        "{clone:?}"
    );
    // unshare without a namespace flag makes nothing new: allowed.
    let fs = probe(&pod, &["unshare-fs"]).await;
    assert_eq!(fs.stdout_text().trim(), "ok unshare-fs", "{fs:?}");
    // Threads and processes are still made as always.
    let fork = sh(&pod, "sleep 0 & wait; echo forked").await;
    assert_eq!(fork.stdout_text().trim(), "forked", "{fork:?}");
    let nginx = sh(&pod, "nginx -t 2>&1; echo exit=$?").await;
    assert!(nginx.stdout_text().contains("exit=0"), "{nginx:?}");
    pod.remove().await.unwrap();

    // The healthy twin: a workload whose policy allows namespaces gets them.
    let builder = nginx_pod(&cri, "builder").await;
    let userns = sh(&builder, "unshare -U sh -c 'id -u'; echo exit=$?").await;
    assert_eq!(
        userns.stdout_text().split_whitespace().collect::<Vec<_>>(),
        ["65534", "exit=0"],
        "{userns:?}"
    );
    let clone = probe(&builder, &["clone-ns"]).await;
    assert_eq!(
        clone.stdout_text().trim(),
        "clone ok clone3 ok",
        "{clone:?}"
    );
    builder.remove().await.unwrap();
}

/// Class 9: the kernel keeps 15 characters of a process's name; the agent's and the holder's
/// must differ in them, or `pkill -x rampart-seccomp` stops the holder too (and with it every
/// protected container's notify fds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_agent_by_name_finds_the_agent_alone() {
    let Some(_cri) = test_node().await else {
        return;
    };
    let _rampart = Rampart::up(&[("seed.yaml", SEED)]);
    let pid_of = |name: &str| {
        let file = rampart_integration::cri::node_dir().join(format!("rampart/{name}.pid"));
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .trim()
            .to_owned()
    };
    for name in ["rampart-seccomp", "rampart-holder"] {
        let out = std::process::Command::new("pgrep")
            .args(["-x", name])
            .output()
            .expect("pgrep runs");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .collect::<Vec<_>>(),
            [pid_of(name)],
            "pgrep -x {name}"
        );
    }
}

/// Class 8: what monitoring agents and ordinary programs read keeps working in a protected pod,
/// whether its reads are decided in the kernel (the file guard) or every open is emulated by the
/// agent (the `rampart.dev/read-opens: seccomp` label).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_reads_of_proc_sys_and_dev_work_in_a_protected_pod() {
    let Some(cri) = test_node().await else { return };
    let _rampart = Rampart::up(&[("seed.yaml", SEED)]);
    let guarded = nginx_pod(&cri, "nginx").await;
    let emulated = nginx_pod_with(
        &cri,
        "nginx",
        |p| p.label("rampart.dev/read-opens", "seccomp"),
        |c| c,
    )
    .await;
    let reads = [
        ("/proc/net/dev", "Inter-|"),
        ("/proc/self/net/dev", "Inter-|"),
        // procfs's `self` reached another way than by the path's first components.
        ("/proc/./net/dev", "Inter-|"),
        (
            "$(ln -sf ../proc/self/mounts /tmp/mtab; echo /tmp/mtab)",
            " / ",
        ),
        ("/proc/net/tcp", "local_address"),
        ("/proc/self/status", "Name:"),
        ("/proc/1/cmdline", "nginx"),
        ("/proc/self/mountinfo", " / "),
        // cgroup v2, or v1's pids controller where the node mounts v1 (this VM's does).
        (
            "$(ls -d /sys/fs/cgroup/cgroup.controllers /sys/fs/cgroup/pids/pids.current | head -1)",
            "",
        ),
        ("/sys/class/net/eth0/address", ":"),
        ("/etc/hostname", ""),
    ];
    for pod in [&guarded, &emulated] {
        for (path, expect) in reads {
            let out = sh(pod, &format!("cat {path}; echo exit=$?")).await;
            let text = out.stdout_text();
            assert!(
                text.ends_with("exit=0\n") && text.contains(expect),
                "{path} in {}: {out:?}",
                pod.container_id("nginx").unwrap()
            );
        }
        let random = sh(pod, "head -c 16 /dev/urandom | wc -c; cat /proc/net/dev >/dev/null </dev/null && echo redirect-ok").await;
        assert_eq!(
            random.stdout_text().split_whitespace().collect::<Vec<_>>(),
            ["16", "redirect-ok"],
            "{random:?}"
        );
    }
    guarded.remove().await.unwrap();
    emulated.remove().await.unwrap();
}

/// Egress for the pods labelled app=egress: nothing but UDP to port 5353 on the loopback.
const EGRESS: &str = "apiVersion: rampart.dev/v1alpha1
kind: RuntimePolicy
metadata: {name: OnlyMdnsOut}
spec:
  selector: {podLabels: {matchLabels: {app: egress}}}
  network:
    - {cidrs: [0.0.0.0/0], action: block}
    - {cidrs: [127.0.0.1/32], ports: [5353], protocols: [udp], action: allow}
";

/// The same, and raw sockets allowed (a workload that pings).
const EGRESS_PING: &str = "apiVersion: rampart.dev/v1alpha1
kind: RuntimePolicy
metadata: {name: PingAllowed}
spec:
  selector: {podLabels: {matchLabels: {app: pinger}}}
  network:
    - {cidrs: [0.0.0.0/0], action: block}
    - {cidrs: [127.0.0.1/32], protocols: [raw], action: allow}
";

/// Class 7: network rules decide on the socket's real kind. A udp rule passes UDP and nothing
/// else on its port; raw and packet sockets, which carry their ports in bytes no syscall shows,
/// can't be made at all unless a rule allows `raw`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_rules_decide_on_the_sockets_kind_and_raw_sockets_are_refused() {
    let Some(cri) = test_node().await else { return };
    let _rampart = Rampart::up(&[("egress.yaml", EGRESS), ("ping.yaml", EGRESS_PING)]);
    let pod = nginx_pod(&cri, "egress").await;
    for (args, expect) in [
        // The allowed UDP port, by each way of naming the destination.
        (&["send", "sendto", "127.0.0.1", "5353"][..], "ok sendto"),
        (&["send", "sendmsg", "127.0.0.1", "5353"][..], "ok sendmsg"),
        // TCP to the UDP rule's port, and UDP to another port: refused by the block rule.
        (
            &["send", "connect", "127.0.0.1", "5353"][..],
            "err EPERM connect",
        ),
        (
            &["send", "sendto", "127.0.0.1", "5354"][..],
            "err EPERM sendto",
        ),
        // A hand-built UDP datagram to the blocked port, and a packet socket.
        (&["raw-udp", "127.0.0.1", "5354"][..], "err EPERM socket"),
        (&["packet"][..], "err EPERM packet"),
    ] {
        let out = probe(&pod, args).await;
        assert_eq!(out.stdout_text().trim(), expect, "{args:?}: {out:?}");
    }
    pod.remove().await.unwrap();

    // The healthy twin: raw sockets where a rule allows them.
    let pinger = nginx_pod(&cri, "pinger").await;
    let out = probe(&pinger, &["raw-udp", "127.0.0.1", "5354"]).await;
    assert_eq!(out.stdout_text().trim(), "ok raw-udp", "{out:?}");
    let out = probe(&pinger, &["packet"]).await;
    assert_eq!(out.stdout_text().trim(), "ok packet", "{out:?}");
    pinger.remove().await.unwrap();
}

/// Only the image's nginx, busybox and the probe may run in the nginx pods labelled
/// app=allowlist.
const ONLY_LISTED: &str = "apiVersion: rampart.dev/v1alpha1
kind: RuntimePolicy
metadata: {name: OnlyListedRun}
spec:
  selector: {podLabels: {matchLabels: {app: allowlist}}}
  severity: High
  processes:
    - {allowOnly: [/usr/sbin/nginx, /bin/busybox, /usr/local/bin/rampart-probe], action: block}
";

/// Drift blocked in the pods labelled app=drift.
const DRIFT: &str = "apiVersion: rampart.dev/v1alpha1
kind: RuntimePolicy
metadata: {name: BlockDrift}
spec:
  selector: {podLabels: {matchLabels: {app: drift}}}
  severity: Critical
  drift: {action: block}
";

/// Classes 3 and 5: an allow-list refuses everything not on it, memfds included, and the
/// executables on it can't be written over or replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allow_list_refuses_memfds_and_its_executables_cannot_be_replaced() {
    let Some(cri) = test_node().await else { return };
    let since = rampart_integration::stack::now();
    let _rampart = Rampart::up(&[("only.yaml", ONLY_LISTED)]);
    let pod = nginx_pod(&cri, "allowlist").await;
    let pod_name = pod_name(&pod).await;

    // A memfd exec, by execveat and by execve of /proc/self/fd/N: busybox under another name.
    for how in ["execveat-memfd", "memfd-exec-path"] {
        let out = probe(&pod, &[how]).await;
        assert!(!out.stdout_text().contains("drift"), "{how} ran: {out:?}");
        assert!(out.stdout_text().contains("err EACCES"), "{how}: {out:?}");
    }
    let r = rampart_integration::stack::wait_for_record(&pod_name, "Blocked", since);
    let alert = rampart_integration::stack::alert(&r);
    assert_eq!(alert["eventType"], "ProcessExecution", "{alert}");
    assert!(
        alert["filePath"]
            .as_str()
            .unwrap()
            .starts_with("/memfd:drift"),
        "{alert}"
    );
    // A file whose name looks like a memfd's is not on the list either.
    // (busybox runs the applet its file is named after: the copies are named busybox.)
    let out = sh(
        &pod,
        "mkdir '/memfd:x' && cp /bin/busybox '/memfd:x/busybox' && '/memfd:x/busybox' echo ran",
    )
    .await;
    assert!(!out.stdout_text().contains("ran"), "{out:?}");

    // Writing over an allowed executable, or putting another file at its name, is refused.
    let out = sh(
        &pod,
        "cp /bin/busybox /tmp/evil; \
         cp /tmp/evil /usr/local/bin/rampart-probe; echo cp=$?; \
         mv /tmp/evil /usr/sbin/nginx; echo mv=$?; \
         ln /tmp/evil /bin/busybox2 && mv /bin/busybox2 /bin/busybox; echo ln=$?; \
         rm /usr/sbin/nginx; echo rm=$?",
    )
    .await;
    let text = out.stdout_text();
    for step in ["cp=1", "mv=1", "ln=1", "rm=1"] {
        assert!(text.contains(step), "{step}: {out:?}");
    }
    // They still run as the image shipped them.
    let nginx = sh(&pod, "nginx -t 2>&1; echo exit=$?").await;
    assert!(nginx.stdout_text().contains("exit=0"), "{nginx:?}");
    let out = probe(&pod, &["nop"]).await;
    assert_eq!(out.exit_code, 0, "{out:?}");
    pod.remove().await.unwrap();
}

/// The loader of an allowed program (nginx is dynamic: the kernel opens ld.so for it) runs no
/// program of its own: run directly, it would load any file by a plain read. The exec of ld.so
/// as a program is told from its open as nginx's interpreter by the kernel's stack, not by what
/// the same thread exec'd a moment before (an allowed exec that failed after its open).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loader_of_an_allowed_program_runs_nothing_else() {
    let Some(cri) = test_node().await else { return };
    let since = rampart_integration::stack::now();
    let _rampart = Rampart::up(&[("only.yaml", ONLY_LISTED)]);
    let pod = nginx_pod(&cri, "allowlist").await;
    let pod_name = pod_name(&pod).await;
    let ld = sh(&pod, "readlink -f /lib64/ld-linux-x86-64.so.2").await;
    let ld = ld.stdout_text().trim().to_owned();
    assert!(ld.starts_with('/'), "no loader in the image: {ld:?}");
    // nginx, its loader opened by the kernel, runs.
    let nginx = sh(&pod, "nginx -v 2>&1").await;
    assert!(nginx.stdout_text().contains("nginx version"), "{nginx:?}");
    let out = sh(
        &pod,
        &format!("cp /usr/sbin/nginx /tmp/x; {ld} /tmp/x -v 2>&1; echo exit=$?"),
    )
    .await;
    assert!(
        !out.stdout_text().contains("nginx version"),
        "ld.so ran a copy: {out:?}"
    );
    assert!(out.stdout_text().contains("exit=126"), "{out:?}");
    // The same thread's allowed exec of nginx fails after the kernel opened it; the loader
    // exec'd next is still a program of its own.
    let out = probe(
        &pod,
        &["exec-after-fault", "/usr/sbin/nginx", &ld, "/tmp/x", "-v"],
    )
    .await;
    let text = format!("{}{}", out.stdout_text(), out.stderr_text());
    assert!(text.contains("first EFAULT"), "{out:?}");
    assert!(!text.contains("nginx version"), "ld.so ran a copy: {out:?}");
    assert!(text.contains("err EPERM execve"), "{out:?}");
    let r = rampart_integration::stack::wait_for_record(&pod_name, "Blocked", since);
    let alert = rampart_integration::stack::alert(&r);
    assert_eq!(
        (alert["eventType"].as_str(), alert["filePath"].as_str()),
        (Some("ProcessExecution"), Some(ld.as_str())),
        "{alert}"
    );
    pod.remove().await.unwrap();
}

/// What an allow-list allowed once is allowed by the kernel after: the exec of a static program
/// on the list needs no agent at all, so it completes while the agent is stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_exec_once_decided_needs_no_agent() {
    let Some(cri) = test_node().await else { return };
    let _rampart = Rampart::up(&[("only.yaml", ONLY_LISTED)]);
    let pod = nginx_pod(&cri, "allowlist").await;
    let out = sh(&pod, "busybox true && echo decided").await;
    assert_eq!(out.stdout_text().trim(), "decided", "{out:?}");
    let agent = Stopped::agent();
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        sh(&pod, "busybox true && busybox echo ran"),
    )
    .await
    .expect("an allowed exec waited for the stopped agent");
    assert_eq!(out.stdout_text().trim(), "ran", "{out:?}");
    drop(agent);
    // And what is not on the list is still refused once the agent runs again.
    let out = sh(
        &pod,
        "cp /bin/busybox /tmp/bb; /tmp/bb echo ran; echo exit=$?",
    )
    .await;
    assert!(!out.stdout_text().contains("ran\n"), "{out:?}");
    pod.remove().await.unwrap();
}

/// Execs the guard alone decides wait in the kernel while no agent runs (the holder keeps the
/// container's fanotify group): an agent killed while a refused program is exec'd in a loop lets
/// none of them run, and the next agent takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_while_refused_execs_wait_lets_none_run() {
    let Some(cri) = test_node().await else { return };
    let rampart = Rampart::up(&[("only.yaml", ONLY_LISTED)]);
    let pod = nginx_pod(&cri, "allowlist").await;
    let out = sh(
        &pod,
        "cp /bin/busybox /tmp/bb; \
         (for i in $(busybox seq 1 400); do /tmp/bb echo RAN; done > /tmp/log 2>&1; \
          touch /tmp/done) >/dev/null 2>&1 & echo started",
    )
    .await;
    assert_eq!(out.stdout_text().trim(), "started", "{out:?}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let pid = agent_pid();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let up = rampart.script("up");
    assert!(up.status.success(), "{up:?}");
    let mut done = false;
    for _ in 0..120 {
        if sh(&pod, "test -e /tmp/done && echo done")
            .await
            .stdout_text()
            .trim()
            == "done"
        {
            done = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert!(done, "the exec loop never finished");
    let log = sh(&pod, "cat /tmp/log").await;
    assert!(
        !log.stdout_text().contains("RAN"),
        "a refused program ran: {log:?}"
    );
    assert!(
        log.stdout_text().contains("Operation not permitted"),
        "{log:?}"
    );
    let out = sh(&pod, "busybox echo still-works").await;
    assert_eq!(out.stdout_text().trim(), "still-works", "{out:?}");
    pod.remove().await.unwrap();
}

/// The running agent's pid, as scripts/rampart recorded it.
fn agent_pid() -> i32 {
    let file = rampart_integration::cri::node_dir().join("rampart/rampart-seccomp.pid");
    std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .trim()
        .parse()
        .expect("a pid")
}

/// rampart-seccomp, SIGSTOPped until dropped.
struct Stopped(i32);

impl Stopped {
    fn agent() -> Stopped {
        let pid = agent_pid();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGSTOP).unwrap();
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0),
            nix::sys::signal::SIGCONT,
        );
    }
}

/// Class 4: drift is any executable that is not the image's file, whatever its name: written
/// after start into the root (the overlay's upper layer), an image binary modified, a memfd.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_decided_on_the_file_not_its_name() {
    let Some(cri) = test_node().await else { return };
    let since = rampart_integration::stack::now();
    let _rampart = Rampart::up(&[("drift.yaml", DRIFT)]);
    let pod = nginx_pod(&cri, "drift").await;
    let pod_name = pod_name(&pod).await;
    for (what, script) in [
        // (busybox runs the applet its file is named after: the copies are named busybox.)
        (
            "a copy in /tmp",
            "cp /bin/busybox /tmp/busybox && /tmp/busybox echo ran",
        ),
        (
            "a copy under an image directory",
            "cp /bin/busybox /usr/local/busybox && /usr/local/busybox echo ran",
        ),
        (
            "an image binary written to",
            "cp /usr/local/bin/rampart-probe /tmp/p && cat /tmp/p > /usr/local/bin/rampart-probe \
             && /usr/local/bin/rampart-probe nop && echo ran",
        ),
    ] {
        let out = sh(&pod, &format!("{script}; echo exit=$?")).await;
        assert!(!out.stdout_text().contains("ran"), "{what} ran: {out:?}");
    }
    let out = probe(&pod, &["execveat-memfd"]).await;
    assert!(!out.stdout_text().contains("drift\n"), "{out:?}");
    let r = rampart_integration::stack::wait_for_record(&pod_name, "Blocked", since);
    let alert = rampart_integration::stack::alert(&r);
    assert_eq!(alert["eventType"], "Drift", "{alert}");
    // The image's own programs run.
    let out = sh(
        &pod,
        "busybox true && nginx -t 2>/dev/null && echo image-ok",
    )
    .await;
    assert_eq!(out.stdout_text().trim(), "image-ok", "{out:?}");
    pod.remove().await.unwrap();

    // A binary written to a volume at run time is not the image's either.
    let volume = std::env::temp_dir().join(unique_name("drift-volume"));
    std::fs::create_dir_all(&volume).unwrap();
    let pod = nginx_pod_with(
        &cri,
        "drift",
        |p| p,
        |c| c.mount(volume.display().to_string(), "/data"),
    )
    .await;
    let out = sh(
        &pod,
        "cp /bin/busybox /data/busybox && /data/busybox echo ran; echo exit=$?",
    )
    .await;
    assert!(
        !out.stdout_text().contains("ran\n"),
        "a volume's binary ran: {out:?}"
    );
    assert!(out.stdout_text().contains("exit="), "{out:?}");
    pod.remove().await.unwrap();
    std::fs::remove_dir_all(&volume).unwrap();
}

/// Drift blocked for the pods labelled app=late-drift.
const LATE_DRIFT: &str = "apiVersion: rampart.dev/v1alpha1
kind: RuntimePolicy
metadata: {name: BlockLateDrift}
spec:
  selector: {podLabels: {matchLabels: {app: late-drift}}}
  drift: {action: block}
";

/// Waits until rampartd has the container bound (rampart-nri's Synchronize, when it connects).
fn wait_bound(container_id: &str) {
    use rampart_integration::stack;
    stack::wait_status(20, &format!("rampartd never bound {container_id}"), |s| {
        stack::workload(s, container_id)
    });
}

/// Class 4, where no seccomp filter decides: a container that ran before rampart has no filter,
/// but rampart-nri binds it when it connects, and the kernel's process sensor judges each exec
/// on the file it runs. A binary written into the container and a memfd are killed before they
/// run (the policy blocks drift), each a Drift record; the image's own programs run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_in_a_container_that_ran_before_rampart_is_killed_by_the_kernel() {
    let Some(cri) = test_node().await else { return };
    let since = rampart_integration::stack::now();
    // No policy selects app=late-drift yet: the pod starts with no filter of rampart's.
    let pod = nginx_pod(&cri, "late-drift").await;
    let container_id = pod.container_id("nginx").unwrap().to_owned();
    let _rampart = Rampart::up(&[("late-drift.yaml", LATE_DRIFT)]);
    wait_bound(&container_id);
    let out = sh(
        &pod,
        "cp /bin/busybox /tmp/busybox && /tmp/busybox echo ran; echo exit=$?",
    )
    .await;
    assert!(
        !out.stdout_text().contains("ran\n"),
        "a written binary ran: {out:?}"
    );
    assert!(
        out.stdout_text().contains("exit=137"),
        "killed by SIGKILL: {out:?}"
    );
    let out = probe(&pod, &["execveat-memfd"]).await;
    assert!(
        !out.stdout_text().contains("drift\n"),
        "a memfd ran: {out:?}"
    );
    let r = rampart_integration::stack::wait_for_record(&pod.pod.name, "ProcessKilled", since);
    let alert = rampart_integration::stack::alert(&r);
    assert_eq!(alert["eventType"], "Drift", "{alert}");
    assert_eq!(alert["enforcer"], "tracepoint-process", "{alert}");
    assert_eq!(alert["policyName"], "BlockLateDrift", "{alert}");
    // Both records, however their reports interleave.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let paths = loop {
        let paths: Vec<String> =
            rampart_integration::stack::records(&pod.pod.name, "ProcessKilled", since)
                .iter()
                .map(|r| rampart_integration::stack::alert(r)["filePath"].to_string())
                .collect();
        let has = |s: &str| paths.iter().any(|p| p.contains(s));
        if (has("/tmp/busybox") && has("memfd:")) || std::time::Instant::now() > deadline {
            break paths;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(
        paths.iter().any(|p| p.contains("/tmp/busybox")),
        "{paths:?}"
    );
    assert!(paths.iter().any(|p| p.contains("memfd:")), "{paths:?}");
    // The copy was run by the shell that made it: the record names it among who started it.
    let copy = rampart_integration::stack::records(&pod.pod.name, "ProcessKilled", since)
        .iter()
        .map(rampart_integration::stack::alert)
        .find(|a| a["filePath"] == "/tmp/busybox")
        .expect("the copy's record");
    assert!(
        copy["ancestors"].as_array().is_some_and(|a| a
            .iter()
            .any(|p| p["args"][0] == "sh" || p["executable"] == "/bin/sh")),
        "the record names the shell that started it: {copy}"
    );
    // The image's own programs run.
    let out = sh(
        &pod,
        "busybox true && nginx -t 2>/dev/null && echo image-ok",
    )
    .await;
    assert_eq!(out.stdout_text().trim(), "image-ok", "{out:?}");
    pod.remove().await.unwrap();
}

/// Integrity of /etc for the pods labelled app=late-fim.
const LATE_FIM: &str = "apiVersion: rampart.dev/v1alpha1
kind: RuntimePolicy
metadata: {name: EtcIntegrity}
spec:
  selector: {podLabels: {matchLabels: {app: late-fim}}}
  integrity:
    - {id: etc, paths: [\"/etc/**\"], action: block}
";

/// Class 11: a modification no seccomp filter decides. The container ran before rampart, so
/// nothing refuses the write; the kernel's write sensor still sees the file closed after it was
/// written, and it is one FileIntegrity record naming the file and the rule. Files outside the
/// rule's paths are not reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_no_filter_decided_is_still_reported() {
    let Some(cri) = test_node().await else { return };
    let since = rampart_integration::stack::now();
    let pod = nginx_pod(&cri, "late-fim").await;
    let container_id = pod.container_id("nginx").unwrap().to_owned();
    let _rampart = Rampart::up(&[("late-fim.yaml", LATE_FIM)]);
    wait_bound(&container_id);
    let out = sh(
        &pod,
        "echo changed > /etc/motd && echo x > /tmp/scratch && echo done",
    )
    .await;
    assert_eq!(out.stdout_text().trim(), "done", "{out:?}");
    let r = rampart_integration::stack::wait_for_record(&pod.pod.name, "Alerted", since);
    let alert = rampart_integration::stack::alert(&r);
    assert_eq!(alert["eventType"], "FileIntegrity", "{alert}");
    assert_eq!(alert["filePath"], "/etc/motd", "{alert}");
    assert_eq!(alert["ruleId"], "etc", "{alert}");
    assert_eq!(alert["enforcer"], "fanotify-write", "{alert}");
    let all = rampart_integration::stack::records(&pod.pod.name, "Alerted", since);
    assert!(
        all.iter()
            .all(|r| rampart_integration::stack::alert(r)["filePath"] != "/tmp/scratch"),
        "a file outside the rule was reported: {all:?}"
    );
    pod.remove().await.unwrap();
}

/// Ingress for the pods labelled app=ingress: the node itself (its address on the pods' bridge)
/// may not open connections to the web port; other pods may.
const INGRESS: &str = "apiVersion: rampart.dev/v1alpha1
kind: RuntimePolicy
metadata: {name: NoNodeToWeb}
spec:
  selector: {podLabels: {matchLabels: {app: ingress}}}
  network:
    - {id: node-in, direction: ingress, cidrs: [10.88.77.1/32], ports: [80], action: block}
";

/// Class 10: a peer the policy refuses. The kernel decides on the packet's source address when
/// the connection opens (the seccomp filter can't: accept() learns the peer too late), so a
/// client from the refused address gets no connection at all, another pod is served, and the
/// refusal is one record naming the peer and the rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_peer_gets_no_connection_and_an_allowed_one_is_served() {
    let Some(cri) = test_node().await else { return };
    let since = rampart_integration::stack::now();
    let rampart = Rampart::up(&[("ingress.yaml", INGRESS)]);
    let server = nginx_pod(&cri, "ingress").await;
    let ip = server.ip.expect("the pod has an IP on the bridge");
    let client = nginx_pod(&cri, "client").await;
    let page = sh(&client, &format!("wget -q -O- http://{ip}/; echo exit=$?")).await;
    assert!(
        page.stdout_text().contains("rampart"),
        "another pod is served: {page:?}"
    );

    // The node connects from 10.88.77.1, its address on the bridge.
    let refused = tokio::task::spawn_blocking(move || {
        std::net::TcpStream::connect_timeout(
            &std::net::SocketAddr::new(ip, 80),
            std::time::Duration::from_secs(3),
        )
    })
    .await
    .unwrap();
    assert!(refused.is_err(), "the node got a connection: {refused:?}");
    // Port 80 only: nothing else is refused to the node (nothing listens there: reset at once).
    let other = std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::new(ip, 81),
        std::time::Duration::from_secs(3),
    )
    .map(|_| ())
    .unwrap_err();
    assert_eq!(
        other.kind(),
        std::io::ErrorKind::ConnectionRefused,
        "{other}"
    );

    let r = rampart_integration::stack::wait_for_record(&server.pod.name, "Blocked", since);
    let alert = rampart_integration::stack::alert(&r);
    assert_eq!(alert["eventType"], "NetworkConnection", "{alert}");
    assert_eq!(alert["remoteAddress"], "10.88.77.1", "{alert}");
    assert_eq!(alert["remotePort"], 80, "{alert}");
    assert_eq!(alert["ruleId"], "node-in", "{alert}");
    assert_eq!(alert["enforcer"], "cgroup-ingress", "{alert}");
    assert_eq!(alert["containerName"], "nginx", "{alert}");
    // rampartd stopped: the kernel programs it pinned go on refusing, and the new rampartd
    // takes them over.
    let node_refused = move || {
        std::net::TcpStream::connect_timeout(
            &std::net::SocketAddr::new(ip, 80),
            std::time::Duration::from_secs(3),
        )
        .is_err()
    };
    let stopped = rampart.script("stop-daemon");
    assert!(stopped.status.success(), "{stopped:?}");
    let before = rampart_integration::stack::records(&server.pod.name, "Blocked", since).len();
    let while_down = tokio::task::spawn_blocking(node_refused).await.unwrap();
    let started = rampart.script("start-daemon");
    assert!(started.status.success(), "{started:?}");
    assert!(
        while_down,
        "the node got a connection while rampartd was down"
    );
    wait_bound(server.container_id("nginx").unwrap());
    // What was refused meanwhile waited in the pinned ring: the new rampartd records it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while rampart_integration::stack::records(&server.pod.name, "Blocked", since).len() <= before {
        assert!(
            std::time::Instant::now() < deadline,
            "the refusal while rampartd was down was never recorded"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(
        tokio::task::spawn_blocking(node_refused).await.unwrap(),
        "after the restart"
    );
    let page = sh(&client, &format!("wget -q -O- http://{ip}/; echo exit=$?")).await;
    assert!(
        page.stdout_text().contains("rampart"),
        "after the restart: {page:?}"
    );
    // The pod itself still works: its own connections out and back in are not ingress from
    // the node.
    let local = sh(&server, "wget -q -O- http://127.0.0.1/; echo exit=$?").await;
    assert!(local.stdout_text().contains("rampart"), "{local:?}");
    client.remove().await.unwrap();
    server.remove().await.unwrap();
}

/// The pod's name, as the records name it.
async fn pod_name(pod: &TestPod) -> String {
    let out = sh(pod, "hostname").await;
    out.stdout_text().trim().to_owned()
}

/// Class 6: a deputy that reads for the attacker. The seed lets nginx's master (root) read
/// /etc/passwd to resolve its `user`; a symlink in the web root asks a worker (www-data) to serve
/// the file, which the seed's `users: [root]` refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_workers_do_not_serve_what_only_the_master_may_read() {
    let Some(cri) = test_node().await else { return };
    let _rampart = Rampart::up(&[("seed.yaml", SEED)]);
    let pod = nginx_pod(&cri, "nginx").await;
    let out = sh(
        &pod,
        "ln -s /etc/passwd /usr/share/nginx/html/p; \
         wget -q -O- http://127.0.0.1/p; echo exit=$?",
    )
    .await;
    assert!(!out.stdout_text().contains("root:x:0:0"), "{out:?}");
    assert!(out.stdout_text().contains("exit=1"), "{out:?}");
    // nginx itself started (its master read /etc/passwd and its config) and serves its pages.
    let page = sh(&pod, "wget -q -O- http://127.0.0.1/").await;
    assert!(page.stdout_text().contains("rampart"), "{page:?}");
    pod.remove().await.unwrap();
}

/// Class 2: a task in a user namespace of its own is "root with every capability" there only.
/// The agent makes some opens for the task (writes, under a file rule); it must not lend the task
/// those capabilities in the host's namespace, and it can't make the opens whose meaning depends
/// on the opener (a namespace's id maps): those are refused, not made wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_in_its_own_user_namespace_gets_no_capabilities_outside_it() {
    let Some(cri) = test_node().await else { return };
    let _rampart = Rampart::up(&[("builder.yaml", BUILDER)]);
    let pod = nginx_pod(&cri, "builder").await;
    // Root makes a user namespace (where it has every capability, and no exec takes them) and
    // writes another user's private file: the kernel refuses that (the capability is the new
    // namespace's, where uid 1000 is not mapped), and so must the agent, which opens it for the
    // task in the host's namespace.
    let out = sh(
        &pod,
        "touch /tmp/theirs && chown 1000:1000 /tmp/theirs && chmod 600 /tmp/theirs && \
         rampart-probe userns-write /tmp/theirs; echo size=$(wc -c < /tmp/theirs)",
    )
    .await;
    assert!(out.stdout_text().contains("err EACCES open"), "{out:?}");
    assert!(out.stdout_text().contains("size=0"), "{out:?}");
    // Its own files it writes as before.
    let out = sh(
        &pod,
        "mkdir -m 777 /tmp/mine && rampart-probe as-uid 1000 unshare -U sh -c \
         'echo ok > /tmp/mine/f && cat /tmp/mine/f'",
    )
    .await;
    assert_eq!(out.stdout_text().trim(), "ok", "{out:?}");
    // Root in a namespace of its own reads no more than root outside: the policy's block stands.
    let out = sh(&pod, "unshare -U cat /etc/shadow; echo exit=$?").await;
    assert!(!out.stdout_text().contains("root:"), "{out:?}");
    assert!(out.stdout_text().contains("exit=1"), "{out:?}");
    // An id map (or setgroups, which unshare writes first) written through the agent would be
    // the agent's: refused, and said so.
    let out = sh(&pod, "unshare -Ur id -u; echo exit=$?").await;
    assert!(!out.stdout_text().contains("exit=0"), "{out:?}");
    let err = out.stderr_text();
    assert!(
        err.contains("/proc/self/") && err.contains("Operation not permitted"),
        "{out:?}"
    );
    pod.remove().await.unwrap();
}
