//! rampartd's agent API end to end: the real server and the real client on a real unix socket.

mod api_common;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::sync::Arc;
use std::time::{Duration, Instant};

use api_common::{Harness, T, socket_path, workload};
use prost::Message;
use rampart_protos::agent::{
    Action, AgentKind, BindRequest, DAEMON_SERVICE, Event, EventType, HelloRequest, HelloResponse,
    PolicySource,
};
use rampart_protos::client::{ClientError, DaemonClient};
use rampart_protos::ttrpc::{self, Decoded, Decoder, code};
use rampartd::api::socket::SocketError;
use rampartd::api::{Server, ServerConfig, ServerError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

fn hello_req(kind: AgentKind) -> HelloRequest {
    HelloRequest {
        kind: kind as i32,
        version: "0.1.0-test".into(),
        pid: 4242,
        enforcers: vec!["seccomp-notify".into()],
        containers: Vec::new(),
        mechanisms: Vec::new(),
    }
}

fn policy(name: &str) -> PolicySource {
    PolicySource {
        file: format!("/etc/rampart/policies.d/{name}.yaml"),
        content: format!("kind: RampartPolicy\nmetadata:\n  name: {name}\n"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_round_trips() {
    let mut h = Harness::start("roundtrip").await;
    let client = DaemonClient::connect(&h.path).await.unwrap();

    // Hello: answered with the daemon's identity, and the agent is recorded for status.
    let rsp = client
        .hello(hello_req(AgentKind::Seccomp), T)
        .await
        .unwrap();
    assert_eq!(rsp.node_name, "node-a");
    assert_eq!(rsp.daemon_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(rsp.snapshot_version, 0);
    let agents = h.daemon.agents();
    assert_eq!(agents.len(), 1);
    assert_eq!(agents[0].kind, AgentKind::Seccomp);
    assert_eq!(agents[0].pid, 4242);
    assert_eq!(agents[0].peer_pid, Some(std::process::id() as i32));
    assert_eq!(agents[0].enforcers, ["seccomp-notify"]);
    assert!(agents[0].disconnected_at.is_none());

    // GetSnapshot: the published set, then `unchanged` for the version held.
    let v = h.daemon.publish_snapshot(vec![policy("a"), policy("b")]);
    let snap = client.get_snapshot(0, Duration::ZERO, T).await.unwrap();
    assert_eq!((snap.version, snap.unchanged), (v, false));
    assert_eq!(snap.policies, [policy("a"), policy("b")]);
    let snap = client.get_snapshot(v, Duration::ZERO, T).await.unwrap();
    assert!(snap.unchanged && snap.policies.is_empty() && snap.version == v);

    // PlanContainer: the planner's answer, unchanged.
    let plan = client
        .plan_container(workload("prod", "web", "nginx", "c1"), T)
        .await
        .unwrap();
    assert!(plan.protected);
    assert_eq!(plan.notify_syscalls, ["openat", "execve"]);
    assert_eq!(plan.deny_syscalls, ["io_uring_setup"]);
    assert_eq!(plan.policies, ["policy-for-nginx"]);
    assert_eq!(plan.snapshot_version, 7);

    // BindContainer: into the registry, found by cgroup id.
    client
        .bind_container(
            BindRequest {
                workload: Some(workload("prod", "web", "nginx", "c1")),
                cgroup_id: 1234,
                cgroup_path: "/sys/fs/cgroup/unified/kubepods/c1".into(),
                pid: 99,
                filtered: true,
            },
            T,
        )
        .await
        .unwrap();
    let entry = h.daemon.registry().by_cgroup_id(1234).unwrap();
    assert_eq!(entry.container_id(), "c1");
    assert_eq!((entry.pid, entry.workload.pod_name.as_str()), (99, "web"));

    // ReportEvents: resolved to the bound container; an unknown one is kept and counted.
    let known = Event {
        event_type: EventType::FileAccess as i32,
        cgroup_id: 1234,
        file_path: "/etc/shadow".into(),
        action: Action::Blocked as i32,
        ..Default::default()
    };
    let unknown = Event {
        event_type: EventType::ProcessExecution as i32,
        container_id: "nobody-knows".into(),
        ..Default::default()
    };
    client
        .report_events(vec![known.clone(), unknown.clone()], 3, Vec::new(), T)
        .await
        .unwrap();
    let first = h.events.recv().await.unwrap();
    assert_eq!(first.event, known);
    assert_eq!(first.workload.unwrap().workload.container_name, "nginx");
    let second = h.events.recv().await.unwrap();
    assert_eq!(second.event, unknown);
    assert!(second.workload.is_none());
    let stats = h.daemon.event_stats();
    assert_eq!(
        (stats.received, stats.unknown_workload, stats.agent_dropped),
        (2, 1, 3)
    );

    // UnbindContainer: gone from the registry; unbinding again is fine.
    client.unbind_container("c1", T).await.unwrap();
    assert!(h.daemon.registry().is_empty());
    client.unbind_container("c1", T).await.unwrap();

    // Invalid requests get a status, not a hang.
    let err = client.unbind_container("", T).await.unwrap_err();
    assert_eq!(err.status_code(), Some(code::INVALID_ARGUMENT), "{err}");

    drop(client);
    // The daemon notices the agent went away.
    let deadline = Instant::now() + T;
    while h.daemon.agents()[0].disconnected_at.is_none() {
        assert!(Instant::now() < deadline, "disconnect not noticed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    h.stop().await;
    assert!(!h.path.exists(), "socket removed at shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polls_wake_on_publish_while_other_calls_are_answered() {
    let h = Harness::start("longpoll").await;
    let v1 = h.daemon.publish_snapshot(vec![policy("one")]);
    let a = Arc::new(DaemonClient::connect(&h.path).await.unwrap());
    let b = Arc::new(DaemonClient::connect(&h.path).await.unwrap());

    // Two polls on one connection and one on another, all holding v1.
    let poll = |c: Arc<DaemonClient>| {
        tokio::spawn(async move { c.get_snapshot(v1, Duration::from_secs(30), T).await })
    };
    let polls = [poll(a.clone()), poll(a.clone()), poll(b.clone())];
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        polls.iter().all(|p| !p.is_finished()),
        "polls answered early"
    );

    // Meanwhile, the same connections answer other calls promptly.
    let started = Instant::now();
    for c in [&a, &b] {
        c.hello(hello_req(AgentKind::Audit), T).await.unwrap();
        c.plan_container(workload("default", "p", "c", "x"), T)
            .await
            .unwrap();
        c.get_snapshot(0, Duration::ZERO, T).await.unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "calls held up by the long polls"
    );
    assert!(polls.iter().all(|p| !p.is_finished()));

    let published = Instant::now();
    let v2 = h
        .daemon
        .publish_snapshot(vec![policy("one"), policy("two")]);
    assert!(v2 > v1);
    for p in polls {
        let snap = p.await.unwrap().unwrap();
        assert_eq!(
            (snap.version, snap.unchanged, snap.policies.len()),
            (v2, false, 2)
        );
    }
    assert!(
        published.elapsed() < Duration::from_secs(1),
        "polls slow to wake"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_ends_unchanged_after_its_wait_and_before_the_deadline() {
    let h = Harness::start_with(socket_path("wait"), 64, |c| {
        c.max_request_time = Duration::from_millis(600)
    })
    .await;
    let v = h.daemon.publish_snapshot(vec![policy("one")]);
    let client = DaemonClient::connect(&h.path).await.unwrap();

    let started = Instant::now();
    let snap = client
        .get_snapshot(v, Duration::from_millis(200), T)
        .await
        .unwrap();
    assert!(snap.unchanged && snap.version == v);
    assert!(started.elapsed() >= Duration::from_millis(200));

    // Asking to wait longer than the server allows a call: `unchanged` just before its limit,
    // not DEADLINE_EXCEEDED.
    let started = Instant::now();
    let snap = client
        .get_snapshot(v, Duration::from_secs(30), T)
        .await
        .unwrap();
    assert!(snap.unchanged);
    assert!(started.elapsed() < Duration::from_millis(600));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_timeout_is_honoured() {
    // One event fits in the pipeline and nobody consumes it: the second report has to wait.
    let h = Harness::start_with(socket_path("timeout"), 1, |_| {}).await;
    let client = DaemonClient::connect(&h.path).await.unwrap();
    client
        .report_events(vec![Event::default()], 0, Vec::new(), T)
        .await
        .unwrap();
    // The client's timeout travels with the request; the server gives up at it too and answers
    // DEADLINE_EXCEEDED (or the client gives up first: either way it is not stuck).
    let started = Instant::now();
    let err = client
        .report_events(
            vec![Event::default()],
            0,
            Vec::new(),
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    let text = err.to_string();
    assert!(
        err.status_code() == Some(code::DEADLINE_EXCEEDED) || text.contains("timed out"),
        "{text}"
    );
    // The connection still serves.
    client.hello(hello_req(AgentKind::Nri), T).await.unwrap();

    // A server-side limit shorter than the client's timeout wins.
    drop(h);
    let h = Harness::start_with(socket_path("timeout2"), 1, |c| {
        c.max_request_time = Duration::from_millis(200)
    })
    .await;
    let client = DaemonClient::connect(&h.path).await.unwrap();
    client
        .report_events(vec![Event::default()], 0, Vec::new(), T)
        .await
        .unwrap();
    let err = client
        .report_events(vec![Event::default()], 0, Vec::new(), T)
        .await
        .unwrap_err();
    assert_eq!(err.status_code(), Some(code::DEADLINE_EXCEEDED), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_an_internal_error_and_the_connection_lives() {
    let h = Harness::start("panic").await;
    let client = DaemonClient::connect(&h.path).await.unwrap();
    let err = client
        .plan_container(workload("panic", "p", "c", "x"), T)
        .await
        .unwrap_err();
    assert_eq!(err.status_code(), Some(code::INTERNAL), "{err}");
    client
        .plan_container(workload("prod", "p", "c", "x"), T)
        .await
        .unwrap();
}

/// Sends raw frames on one connection and reads the answers.
struct Raw {
    stream: UnixStream,
    decoder: Decoder,
}

impl Raw {
    async fn connect(path: &std::path::Path) -> Raw {
        Raw {
            stream: UnixStream::connect(path).await.unwrap(),
            decoder: Decoder::default(),
        }
    }

    async fn send(&mut self, stream_id: u32, msg_type: u8, payload: &[u8]) {
        let wire = ttrpc::encode_message(stream_id, msg_type, payload).unwrap();
        self.stream.write_all(&wire).await.unwrap();
    }

    async fn request(&mut self, stream_id: u32, service: &str, method: &str, payload: Vec<u8>) {
        let req = ttrpc::Request {
            service: service.into(),
            method: method.into(),
            payload,
            timeout_nano: 0,
            metadata: vec![],
        };
        self.send(stream_id, ttrpc::TYPE_REQUEST, &req.encode_to_vec())
            .await;
    }

    async fn answer(&mut self) -> (u32, ttrpc::Response) {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(Decoded::Message(m)) = self.decoder.next_message() {
                assert_eq!(m.msg_type, ttrpc::TYPE_RESPONSE);
                return (m.stream_id, ttrpc::Response::decode(m.payload).unwrap());
            }
            let n = tokio::time::timeout(T, self.stream.read(&mut buf))
                .await
                .expect("no answer")
                .unwrap();
            assert!(n > 0, "server closed the connection");
            self.decoder.push(&buf[..n]);
        }
    }
}

fn status(rsp: &ttrpc::Response) -> (i32, String) {
    let s = rsp.status.clone().unwrap_or_default();
    (s.code, s.message)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_an_error_and_the_connection_stays_usable() {
    let h = Harness::start("malformed").await;
    let mut raw = Raw::connect(&h.path).await;

    // An envelope that is not a ttrpc Request (a truncated varint field).
    raw.send(1, ttrpc::TYPE_REQUEST, &[0x20, 0xff]).await;
    let (id, rsp) = raw.answer().await;
    let (c, msg) = status(&rsp);
    assert_eq!((id, c), (1, code::INVALID_ARGUMENT), "{msg}");
    assert!(msg.contains("malformed ttrpc request envelope"), "{msg}");

    // A method payload that is not its message.
    raw.request(3, DAEMON_SERVICE, "Hello", vec![0x0a, 0x7f])
        .await;
    let (id, rsp) = raw.answer().await;
    assert_eq!((id, status(&rsp).0), (3, code::INVALID_ARGUMENT));

    // Unknown method, unknown service.
    raw.request(5, DAEMON_SERVICE, "Frobnicate", vec![]).await;
    let (id, rsp) = raw.answer().await;
    assert_eq!((id, status(&rsp).0), (5, code::UNIMPLEMENTED));
    raw.request(7, "nri.pkg.api.v1alpha1.Runtime", "Hello", vec![])
        .await;
    let (id, rsp) = raw.answer().await;
    assert_eq!((id, status(&rsp).0), (7, code::UNIMPLEMENTED));

    // An even (server-side) stream id.
    raw.request(8, DAEMON_SERVICE, "Hello", vec![]).await;
    let (id, rsp) = raw.answer().await;
    assert_eq!((id, status(&rsp).0), (8, code::INVALID_ARGUMENT));

    // A message that is not a request is ignored (logged), not answered.
    raw.send(9, ttrpc::TYPE_RESPONSE, b"junk").await;

    // After all that, the same connection still answers a real call.
    raw.request(
        11,
        DAEMON_SERVICE,
        "Hello",
        hello_req(AgentKind::Nri).encode_to_vec(),
    )
    .await;
    let (id, rsp) = raw.answer().await;
    assert_eq!((id, status(&rsp).0), (11, code::OK));
    let hello = HelloResponse::decode(rsp.payload.as_slice()).unwrap();
    assert_eq!(hello.node_name, "node-a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_is_0600_in_a_0700_dir_and_stale_sockets_are_replaced() {
    let path = socket_path("perms");
    let mut h = Harness::start_with(path.clone(), 8, |_| {}).await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);

    // A second daemon on a live socket is refused.
    let err = Server::bind(
        ServerConfig {
            socket: path.clone(),
            ..ServerConfig::default()
        },
        h.daemon.clone(),
    )
    .err()
    .expect("second bind must fail");
    assert!(
        matches!(err, ServerError::Socket(SocketError::InUse { .. })),
        "{err}"
    );

    // A socket left behind by a daemon that died is replaced.
    h.stop().await;
    let stale = std::os::unix::net::UnixListener::bind(&path).unwrap();
    drop(stale);
    assert!(
        std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_socket()
    );
    let h2 = Harness::start_with(path.clone(), 8, |_| {}).await;
    let client = DaemonClient::connect(&h2.path).await.unwrap();
    client.hello(hello_req(AgentKind::Nri), T).await.unwrap();
    assert_eq!(mode(&path), 0o600);
    drop(h2);

    // A regular file in its place is not deleted.
    let path = socket_path("notasocket");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"keep me").unwrap();
    let (daemon, _rx) = rampartd::api::Daemon::new(
        rampartd::api::DaemonInfo::new("n"),
        Arc::new(api_common::TestPlanner),
        Arc::default(),
        1,
    );
    let err = Server::bind(
        ServerConfig {
            socket: path.clone(),
            ..ServerConfig::default()
        },
        daemon,
    )
    .err()
    .expect("bind over a file must fail");
    assert!(err.to_string().contains("not a socket"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reconnects_on_the_next_call_and_says_hello_again() {
    let path = socket_path("reconnect");
    let mut h = Harness::start_with(path.clone(), 8, |_| {}).await;
    let client = DaemonClient::connect(&path).await.unwrap();
    client.hello(hello_req(AgentKind::Audit), T).await.unwrap();
    h.stop().await;

    // The daemon is gone: calls fail with a clear error.
    let err = client
        .unbind_container("c", T)
        .await
        .expect_err("daemon is down");
    assert!(
        matches!(err, ClientError::Unreachable { .. } | ClientError::Rpc(_)),
        "{err}"
    );

    // It comes back: the next call reconnects, and the new daemon learns who we are.
    let h2 = Harness::start_with(path.clone(), 8, |_| {}).await;
    client.unbind_container("c", T).await.unwrap();
    let agents = h2.daemon.agents();
    assert_eq!(agents.len(), 1, "Hello not replayed");
    assert_eq!(agents[0].kind, AgentKind::Audit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_daemon_rebuilds_its_registry_from_the_agents_announcements() {
    let path = socket_path("announce");
    let mut h = Harness::start_with(path.clone(), 8, |_| {}).await;
    // What the agent knows runs changes while it is connected; the announcement is asked again
    // at every reconnect.
    let known: Arc<std::sync::Mutex<Vec<BindRequest>>> = Arc::default();
    let bind = |id: &str, cgroup_id| BindRequest {
        workload: Some(workload("prod", "web", "nginx", id)),
        cgroup_id,
        cgroup_path: String::new(),
        pid: 7,
        filtered: true,
    };
    known.lock().unwrap().push(bind("c1", 1234));
    let client = Arc::new(DaemonClient::lazy(&path));
    let source = known.clone();
    client
        .announce(
            Arc::new(move || HelloRequest {
                containers: source.lock().unwrap().clone(),
                mechanisms: Vec::new(),
                ..hello_req(AgentKind::Nri)
            }),
            T,
        )
        .await
        .unwrap();
    assert_eq!(
        h.daemon
            .registry()
            .by_cgroup_id(1234)
            .unwrap()
            .container_id(),
        "c1"
    );
    known.lock().unwrap().push(bind("c2", 0));
    h.stop().await;

    // No call of the agent's own: keep_connected reconnects and announces what it knows now.
    let keep = tokio::spawn({
        let client = client.clone();
        async move { client.keep_connected(Duration::from_millis(20)).await }
    });
    let h2 = Harness::start_with(path.clone(), 8, |_| {}).await;
    let deadline = Instant::now() + T;
    while h2.daemon.registry().len() < 2 {
        assert!(Instant::now() < deadline, "registry not rebuilt");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    keep.abort();
    let registry = h2.daemon.registry();
    let c1 = registry.by_cgroup_id(1234).expect("c1 by its cgroup id");
    assert_eq!(
        (c1.container_id(), c1.workload.pod_name.as_str()),
        ("c1", "web")
    );
    assert!(registry.by_container_id("c2").is_some());
    assert_eq!(h2.daemon.agents()[0].kind, AgentKind::Nri);
}

#[tokio::test]
async fn connect_to_a_missing_daemon_says_so() {
    let path = socket_path("missing");
    let err = DaemonClient::connect(&path).await.err().expect("no daemon");
    let text = err.to_string();
    assert!(text.contains("cannot reach rampartd at"), "{text}");
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("is it running?"), "{text}");
}
