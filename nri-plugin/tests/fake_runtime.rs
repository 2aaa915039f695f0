//! The plugin against a scripted runtime on a private socket: registration, Configure's event
//! mask, chunked Synchronize, StateChange dispatch, UNIMPLEMENTED for NRI 0.10's per-event RPCs,
//! and reconnecting after the runtime drops the connection. Runs anywhere, no root needed.
//!
//! `adjustment_mode_against_a_scripted_nri_0_10_runtime` plays a containerd 2.2 / NRI 0.10
//! runtime for rampart's real handler. It is a STAND-IN: this machine has containerd 2.1.9 (NRI
//! 0.8/0.9) and no containerd >= 2.2 is installable here (Debian's sid/trixie/bookworm carry
//! 2.1.9 at most), so adjustment mode has never met a real NRI 0.10 runtime. What it proves: the
//! mode is picked from Configure, and the CreateContainer answer on the wire is a merged
//! LinuxSeccomp adjustment in NRI's field numbers.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::seccomp::{actions, runtime_default_like};
use common::stand_in::{POLICY_NAME, StandInDaemon};
use prost::Message;
use rampart_nri::adjust::POLICIES_ANNOTATION;
use rampart_nri::inject::{DEFAULT_SECCOMP_SOCKET, InjectConfig, RampartHandler, SUBSCRIBED};
use rampart_nri::mux::{ConnWriter, Mux, PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN};
use rampart_nri::nri::security_profile::ProfileType;
use rampart_nri::nri::{
    self, ConfigureRequest, ConfigureResponse, Container, ContainerUpdate, CreateContainerRequest,
    CreateContainerResponse, Event, LinuxContainer, OptionalUInt32, PodSandbox,
    RegisterPluginRequest, SecurityProfile, StateChangeEvent, SynchronizeRequest,
    SynchronizeResponse,
};
use rampart_nri::runc_wrapper::SECCOMP_ANNOTATION;
use rampart_nri::seccomp_merge::{ACT_ERRNO, ACT_NOTIFY};
use rampart_nri::ttrpc::{self, Decoded, Decoder, code};
use rampart_nri::{CreateReply, EventMask, Handler, HandlerResult, Plugin, PluginConfig};
use tokio::net::UnixListener;
use tokio::sync::mpsc::UnboundedReceiver;

#[derive(Default, Clone)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Recorder {
    fn push(&self, s: String) {
        self.0.lock().unwrap().push(s);
    }
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Handler for Recorder {
    fn events(&self) -> EventMask {
        EventMask::of(&[
            Event::RunPodSandbox,
            Event::CreateContainer,
            Event::StartContainer,
        ])
    }
    async fn synchronize(
        &self,
        pods: &[PodSandbox],
        containers: &[Container],
    ) -> HandlerResult<Vec<ContainerUpdate>> {
        let names: Vec<_> = pods.iter().map(|p| p.name.as_str()).collect();
        self.push(format!("sync {} {}", names.join(","), containers.len()));
        Ok(Vec::new())
    }
    async fn run_pod_sandbox(&self, pod: &PodSandbox) -> HandlerResult<()> {
        self.push(format!("run {}", pod.name));
        Ok(())
    }
    async fn create_container(
        &self,
        pod: &PodSandbox,
        c: &Container,
    ) -> HandlerResult<CreateReply> {
        self.push(format!("create {}/{}", pod.name, c.name));
        let mut adjust = nri::ContainerAdjustment::default();
        adjust
            .annotations
            .insert("rampart.io/seen".into(), "yes".into());
        Ok(CreateReply {
            adjust: Some(adjust),
            ..Default::default()
        })
    }
}

/// The runtime's end of one plugin connection.
struct RuntimeSide {
    _mux: Mux,
    plugin_rx: UnboundedReceiver<bytes::Bytes>,
    plugin_tx: ConnWriter,
    runtime_rx: UnboundedReceiver<bytes::Bytes>,
    runtime_tx: ConnWriter,
    next_stream: u32,
}

async fn next_message(rx: &mut UnboundedReceiver<bytes::Bytes>, d: &mut Decoder) -> ttrpc::Message {
    loop {
        if let Some(Decoded::Message(m)) = d.next_message() {
            return m;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("plugin answered in time")
            .expect("connection open");
        d.push(&chunk);
    }
}

impl RuntimeSide {
    async fn accept(listener: &UnixListener) -> Self {
        let (stream, _) = tokio::time::timeout(Duration::from_secs(5), listener.accept())
            .await
            .expect("plugin connected in time")
            .unwrap();
        let (mux, mut conns) =
            Mux::new(stream, &[PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN]).unwrap();
        let (runtime_rx, runtime_tx) = conns.pop().unwrap().into_split();
        let (plugin_rx, plugin_tx) = conns.pop().unwrap().into_split();
        RuntimeSide {
            _mux: mux,
            plugin_rx,
            plugin_tx,
            runtime_rx,
            runtime_tx,
            next_stream: 1,
        }
    }

    /// Serves the plugin's RegisterPlugin call.
    async fn expect_register(&mut self) -> RegisterPluginRequest {
        let m = next_message(&mut self.runtime_rx, &mut Decoder::default()).await;
        let req = ttrpc::Request::decode(m.payload).unwrap();
        assert_eq!(
            (req.service.as_str(), req.method.as_str()),
            (nri::RUNTIME_SERVICE, "RegisterPlugin")
        );
        assert_eq!(m.stream_id % 2, 1, "client stream ids are odd");
        let rsp = ttrpc::Response::ok(nri::Empty {}.encode_to_vec());
        let wire =
            ttrpc::encode_message(m.stream_id, ttrpc::TYPE_RESPONSE, &rsp.encode_to_vec()).unwrap();
        self.runtime_tx.send(&wire).await.unwrap();
        RegisterPluginRequest::decode(req.payload.as_slice()).unwrap()
    }

    /// Calls the plugin's service; the reply is split over two mux frames on purpose, as Go's
    /// buffered writer may do, to exercise reassembly in the plugin.
    async fn call(&mut self, method: &str, payload: Vec<u8>) -> ttrpc::Response {
        let stream_id = self.next_stream;
        self.next_stream += 2;
        let req = ttrpc::Request {
            service: nri::PLUGIN_SERVICE.into(),
            method: method.into(),
            payload,
            ..Default::default()
        };
        let wire =
            ttrpc::encode_message(stream_id, ttrpc::TYPE_REQUEST, &req.encode_to_vec()).unwrap();
        let (a, b) = wire.split_at(7);
        self.plugin_tx.send(a).await.unwrap();
        self.plugin_tx.send(b).await.unwrap();
        let m = next_message(&mut self.plugin_rx, &mut Decoder::default()).await;
        assert_eq!((m.stream_id, m.msg_type), (stream_id, ttrpc::TYPE_RESPONSE));
        ttrpc::Response::decode(m.payload).unwrap()
    }
}

fn ok_payload<M: Message + Default>(rsp: ttrpc::Response) -> M {
    let status = rsp.status.clone().unwrap_or_default();
    assert_eq!(status.code, code::OK, "status: {}", status.message);
    M::decode(rsp.payload.as_slice()).unwrap()
}

fn pod(name: &str) -> PodSandbox {
    PodSandbox {
        id: format!("{name}-id"),
        name: name.into(),
        namespace: "default".into(),
        ..Default::default()
    }
}

fn socket_path() -> PathBuf {
    socket_path_for("main")
}

fn socket_path_for(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rampart-nri-fake-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("nri.sock");
    let _ = std::fs::remove_file(&p);
    p
}

#[tokio::test]
async fn plugin_speaks_nri_to_a_scripted_runtime_and_reconnects() {
    let path = socket_path();
    let listener = UnixListener::bind(&path).unwrap();
    let recorder = Recorder::default();
    let plugin = Plugin::new(
        PluginConfig::new(&path, "rampart", "10").unwrap(),
        recorder.clone(),
    );
    let running = tokio::spawn(async move { plugin.run().await });

    let mut rt = RuntimeSide::accept(&listener).await;
    let reg = rt.expect_register().await;
    assert_eq!(
        (reg.plugin_name.as_str(), reg.plugin_idx.as_str()),
        ("rampart", "10")
    );

    let cfg = ConfigureRequest {
        runtime_name: "fake".into(),
        runtime_version: "0".into(),
        ..Default::default()
    };
    let rsp: ConfigureResponse = ok_payload(rt.call("Configure", cfg.encode_to_vec()).await);
    assert_eq!(
        rsp.events,
        (1 << 0) | (1 << 3) | (1 << 5),
        "RUN_POD_SANDBOX, CREATE_CONTAINER, START_CONTAINER"
    );

    // Two chunks: the first must be acknowledged with more = true and no updates.
    let first = SynchronizeRequest {
        pods: vec![pod("a")],
        containers: vec![],
        more: true,
    };
    let rsp: SynchronizeResponse = ok_payload(rt.call("Synchronize", first.encode_to_vec()).await);
    assert!(rsp.more && rsp.update.is_empty());
    assert!(
        recorder.take().is_empty(),
        "handler must wait for the last chunk"
    );
    let last = SynchronizeRequest {
        pods: vec![pod("b")],
        containers: vec![Container::default()],
        more: false,
    };
    let rsp: SynchronizeResponse = ok_payload(rt.call("Synchronize", last.encode_to_vec()).await);
    assert!(!rsp.more);
    assert_eq!(recorder.take(), ["sync a,b 1"]);

    // NRI 0.10 probes the per-event RPC first; it must get UNIMPLEMENTED to fall back.
    let probe = rt.call("RunPodSandbox", Vec::new()).await;
    assert_eq!(probe.status.unwrap().code, code::UNIMPLEMENTED);
    let evt = StateChangeEvent {
        event: Event::RunPodSandbox as i32,
        pod: Some(pod("web")),
        container: None,
    };
    let _: nri::Empty = ok_payload(rt.call("StateChange", evt.encode_to_vec()).await);
    let create = CreateContainerRequest {
        pod: Some(pod("web")),
        container: Some(Container {
            name: "nginx".into(),
            ..Default::default()
        }),
    };
    let rsp: CreateContainerResponse =
        ok_payload(rt.call("CreateContainer", create.encode_to_vec()).await);
    assert_eq!(
        rsp.adjust
            .unwrap()
            .annotations
            .get("rampart.io/seen")
            .map(String::as_str),
        Some("yes")
    );
    assert_eq!(recorder.take(), ["run web", "create web/nginx"]);

    let bad = rt.call("StateChange", vec![0xff, 0xff]).await;
    assert_eq!(bad.status.unwrap().code, code::INVALID_ARGUMENT);

    // The runtime goes away (containerd restart): the plugin must come back and register again.
    drop(rt);
    let mut rt = RuntimeSide::accept(&listener).await;
    assert_eq!(rt.expect_register().await.plugin_name, "rampart");

    running.abort();
    let _ = std::fs::remove_file(&path);
}

fn labelled_pod(name: &str, app: &str) -> PodSandbox {
    PodSandbox {
        labels: [("app".to_string(), app.to_string())].into(),
        namespace: "shop".into(),
        ..pod(name)
    }
}

fn container_with(pod: &PodSandbox, name: &str, linux: LinuxContainer) -> Container {
    Container {
        id: format!("{}-{name}", pod.id),
        pod_sandbox_id: pod.id.clone(),
        name: name.into(),
        linux: Some(linux),
        ..Default::default()
    }
}

#[tokio::test]
async fn adjustment_mode_against_a_scripted_nri_0_10_runtime() {
    let path = socket_path_for("v010");
    let listener = UnixListener::bind(&path).unwrap();
    let daemon = Arc::new(StandInDaemon::default());
    let handler = RampartHandler::new(daemon.clone(), InjectConfig::default());
    let plugin = Plugin::new(PluginConfig::new(&path, "rampart", "10").unwrap(), handler);
    let running = tokio::spawn(async move { plugin.run().await });

    let mut rt = RuntimeSide::accept(&listener).await;
    rt.expect_register().await;
    let cfg = ConfigureRequest {
        runtime_name: "containerd".into(),
        runtime_version: "v2.2.0".into(),
        nri_version: "v0.10.0".into(),
        ..Default::default()
    };
    let rsp: ConfigureResponse = ok_payload(rt.call("Configure", cfg.encode_to_vec()).await);
    assert_eq!(rsp.events, EventMask::of(SUBSCRIBED).bits());
    let sync = SynchronizeRequest::default();
    let _: SynchronizeResponse = ok_payload(rt.call("Synchronize", sync.encode_to_vec()).await);

    // A scoped container whose runtime sent its resolved profile.
    let web = labelled_pod("web", "nginx");
    let create = CreateContainerRequest {
        pod: Some(web.clone()),
        container: Some(container_with(
            &web,
            "nginx",
            LinuxContainer {
                seccomp_profile: Some(SecurityProfile::default()), // RuntimeDefault
                seccomp_policy: Some(runtime_default_like()),
                ..Default::default()
            },
        )),
    };
    let rsp: CreateContainerResponse =
        ok_payload(rt.call("CreateContainer", create.encode_to_vec()).await);
    let adj = rsp.adjust.expect("a scoped container is adjusted");
    assert!(
        !adj.annotations.contains_key(SECCOMP_ANNOTATION),
        "adjustment mode must not use the rampart-runc annotation"
    );
    assert_eq!(adj.annotations[POLICIES_ANNOTATION], POLICY_NAME);
    let p = adj
        .linux
        .and_then(|l| l.seccomp_policy)
        .expect("LinuxContainerAdjustment.seccomp_policy is set");
    assert_eq!(p.listener_path, DEFAULT_SECCOMP_SOCKET);
    assert_eq!(p.listener_metadata, "rampart/v1 shop/web/nginx");
    // The planned syscalls (stand-in: openat, execve) are notified where the profile allowed them;
    // openat only when its flags write, create or truncate (read-only opens stay allowed in the
    // kernel, for the agent's file guard).
    let mut openat = actions(&p, "openat");
    openat.sort();
    openat.dedup();
    assert_eq!(openat, ["SCMP_ACT_ALLOW", ACT_NOTIFY]);
    assert!(
        p.syscalls
            .iter()
            .filter(|s| s.names.iter().any(|n| n == "openat"))
            .all(|s| s
                .args
                .iter()
                .any(|a| a.index == 2 && a.op == "SCMP_CMP_MASKED_EQ")),
        "every openat rule tests the flags"
    );
    assert_eq!(actions(&p, "execve"), [ACT_NOTIFY]);
    // Everything else is the container's own profile.
    assert_eq!(p.default_action, "SCMP_ACT_ERRNO");
    assert_eq!(p.default_errno, Some(OptionalUInt32 { value: 1 }));
    assert_eq!(p.architectures, ["SCMP_ARCH_X86_64"]);
    assert_eq!(actions(&p, "read"), ["SCMP_ACT_ALLOW"]);
    assert_eq!(actions(&p, "write"), ["SCMP_ACT_ALLOW"]);
    let personality = p.syscalls.iter().find(|s| s.names == ["personality"]);
    assert_eq!(personality.unwrap().args[0].value, 8);
    // io_uring_setup (the plan's deny) is refused by the default already: no rule, not notified.
    assert!(actions(&p, "io_uring_setup").is_empty());

    // An unscoped container, also with a profile: no adjustment at all.
    let db = labelled_pod("db", "redis");
    let create = CreateContainerRequest {
        pod: Some(db.clone()),
        container: Some(container_with(
            &db,
            "redis",
            LinuxContainer {
                seccomp_policy: Some(runtime_default_like()),
                ..Default::default()
            },
        )),
    };
    let rsp: CreateContainerResponse =
        ok_payload(rt.call("CreateContainer", create.encode_to_vec()).await);
    assert_eq!(rsp.adjust, None, "an unscoped container is never touched");

    // What containerd 2.2 actually sends for RuntimeDefault: the kind only. rampart cannot merge
    // without the rules, so (not required) the container starts unprotected, unchanged.
    let web2 = labelled_pod("web2", "nginx");
    let create = CreateContainerRequest {
        pod: Some(web2.clone()),
        container: Some(container_with(
            &web2,
            "nginx",
            LinuxContainer {
                seccomp_profile: Some(SecurityProfile::default()),
                ..Default::default()
            },
        )),
    };
    let rsp: CreateContainerResponse =
        ok_payload(rt.call("CreateContainer", create.encode_to_vec()).await);
    assert_eq!(rsp.adjust, None);

    // Unconfined: rampart's rules on an allow-all base.
    let web3 = labelled_pod("web3", "nginx");
    let create = CreateContainerRequest {
        pod: Some(web3.clone()),
        container: Some(container_with(
            &web3,
            "nginx",
            LinuxContainer {
                seccomp_profile: Some(SecurityProfile {
                    profile_type: ProfileType::Unconfined as i32,
                    localhost_ref: String::new(),
                }),
                ..Default::default()
            },
        )),
    };
    let rsp: CreateContainerResponse =
        ok_payload(rt.call("CreateContainer", create.encode_to_vec()).await);
    let p = rsp.adjust.unwrap().linux.unwrap().seccomp_policy.unwrap();
    assert_eq!(p.default_action, "SCMP_ACT_ALLOW");
    // One notify rule per write flag; read-only opens fall to the allowing default.
    assert_eq!(actions(&p, "openat"), [ACT_NOTIFY; 5]);
    assert_eq!(actions(&p, "io_uring_setup"), [ACT_ERRNO]);
    assert_eq!(daemon.plans.lock().unwrap().len(), 4);

    running.abort();
    let _ = std::fs::remove_file(&path);
}
