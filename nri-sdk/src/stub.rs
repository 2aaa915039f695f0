//! One connection to the runtime: connect, register, serve the Plugin service until the runtime
//! goes away. [`crate::plugin`] reconnects around it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message;
use rampart_protos::nri::{
    self, ConfigureRequest, ConfigureResponse, Container, CreateContainerRequest,
    CreateContainerResponse, Event, PodSandbox, StateChangeEvent, StopContainerRequest,
    StopContainerResponse, SynchronizeRequest, SynchronizeResponse, UpdateContainerRequest,
    UpdateContainerResponse,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::UnixStream;
use tracing::Instrument;

use crate::client::RuntimeClient;
use crate::handler::{Handler, HandlerError};
use crate::mux::{Mux, PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN, VirtualConn};
use crate::ttrpc::server::{self, Call, Deadlines, ServeOptions};
use crate::ttrpc::{Status, TtrpcError, code};

/// How long to wait for the runtime to answer RegisterPlugin. containerd gives a plugin 5 s
/// (plugin_registration_timeout) from connecting to being configured.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StubError {
    #[error(
        "cannot connect to the NRI socket {path}: {source}; is containerd running with NRI enabled \
         ([plugins.'io.containerd.nri.v1.nri'] disable = false, disable_connections = false)?"
    )]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the runtime refused to register plugin {index}-{name}: {source}")]
    Register {
        name: String,
        index: String,
        #[source]
        source: TtrpcError,
    },
    #[error(transparent)]
    Mux(#[from] crate::mux::MuxError),
    #[error("cannot use the socket the runtime passed (pre-registered plugin): {0}")]
    Preconnected(#[source] std::io::Error),
}

/// How a connection ended.
#[derive(Debug)]
pub struct SessionEnd {
    /// Why the runtime went away.
    pub reason: String,
    /// The runtime got as far as configuring the plugin.
    pub configured: bool,
}

/// Per-connection state shared by concurrently handled requests.
#[derive(Default)]
struct Session {
    configured: AtomicBool,
    /// Synchronize chunks received with `more` set, delivered together with the last one.
    sync: Mutex<Option<(Vec<PodSandbox>, Vec<Container>)>>,
}

/// Connects to `socket`, registers as `index-name`, and serves `handler` until the runtime
/// closes the connection.
pub async fn run_session<H: Handler>(
    socket: &Path,
    name: &str,
    index: &str,
    handler: Arc<H>,
) -> Result<SessionEnd, StubError> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|source| StubError::Connect {
            path: socket.to_owned(),
            source,
        })?;
    tracing::debug!(socket = %socket.display(), "connected");
    run_connection(stream, name, index, handler).await
}

/// [`run_session`] over an already connected trunk (tests use a socketpair).
pub async fn run_connection<T, H>(
    trunk: T,
    name: &str,
    index: &str,
    handler: Arc<H>,
) -> Result<SessionEnd, StubError>
where
    T: AsyncRead + AsyncWrite + Send + 'static,
    H: Handler,
{
    let (mux, mut conns) = Mux::new(trunk, &[PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN])?;
    let runtime_conn = conns.pop().expect("runtime conn opened");
    let plugin_conn = conns.pop().expect("plugin conn opened");
    let session = Arc::new(Session::default());

    let server = tokio::spawn(serve(plugin_conn, handler, session.clone()));
    let client = RuntimeClient::new(runtime_conn);
    let registered = client.register_plugin(name, index, REGISTER_TIMEOUT).await;
    if let Err(source) = registered {
        server.abort();
        mux.close().await;
        return Err(StubError::Register {
            name: name.into(),
            index: index.into(),
            source,
        });
    }
    tracing::info!(plugin = %format!("{index}-{name}"), "registered with the runtime");

    let reason = mux.closed().await;
    server.abort();
    Ok(SessionEnd {
        reason,
        configured: session.configured.load(Ordering::SeqCst),
    })
}

/// How the Plugin service is served. A handler's work (a plan asked of rampartd, a cgroup bound)
/// is not undone by dropping it halfway, so calls run to completion even after the runtime stopped
/// waiting or went away; their answers are then dropped. The runtime keeps its own timeouts.
const SERVE: ServeOptions = ServeOptions {
    name: "rampart-nri",
    deadlines: Deadlines::Advisory,
    max_in_flight: None,
    cancel_on_close: false,
};

/// Serves the Plugin service on `conn`. Each request runs in its own task: the runtime waits for
/// every answer, so requests in flight together are for different pods or containers.
async fn serve<H: Handler>(conn: VirtualConn, handler: Arc<H>, session: Arc<Session>) {
    let (rd, wr) = tokio::io::split(conn);
    let router = move |call: Call| {
        let (handler, session) = (handler.clone(), session.clone());
        async move { handle_request(&*handler, &session, call).await }
    };
    // It ends when the trunk does, which `run_connection` learns from the mux.
    if let Err(e) = server::serve(rd, wr, &router, &SERVE).await {
        tracing::debug!(error = %e, "plugin connection ended");
    }
}

/// Answers one call of the Plugin service.
async fn handle_request<H: Handler>(handler: &H, session: &Session, call: Call) -> Answer {
    if call.service != nri::PLUGIN_SERVICE {
        return Err(unimplemented(&call));
    }
    let payload = &call.payload;
    match call.method.as_str() {
        "Configure" => configure(handler, session, payload).await,
        "Synchronize" => synchronize(handler, session, payload).await,
        "Shutdown" => shutdown(handler).await,
        "CreateContainer" => create_container(handler, payload).await,
        "UpdateContainer" => update_container(handler, payload).await,
        "StopContainer" => stop_container(handler, payload).await,
        "StateChange" => state_change(handler, payload).await,
        _ => Err(unimplemented(&call)),
    }
}

/// NRI >= 0.10 tries a dedicated RPC per lifecycle event first and switches to StateChange for
/// good on UNIMPLEMENTED, so this answer is part of the protocol, not a failure.
fn unimplemented(call: &Call) -> Status {
    tracing::debug!(service = %call.service, method = %call.method, "answering UNIMPLEMENTED");
    Status::new(
        code::UNIMPLEMENTED,
        format!(
            "rampart-nri does not serve {}.{}",
            call.service, call.method
        ),
    )
}

type Answer = Result<Vec<u8>, Status>;

fn decode<M: Message + Default>(what: &str, payload: &[u8]) -> Result<M, Status> {
    M::decode(payload).map_err(|e| Status::new(code::INVALID_ARGUMENT, format!("bad {what}: {e}")))
}

fn failed(e: HandlerError) -> Status {
    tracing::warn!(error = %e, "handler failed; the runtime gets an error");
    Status::new(code::UNKNOWN, e.0)
}

fn pod_ref(pod: &PodSandbox) -> String {
    format!("{}/{}", pod.namespace, pod.name)
}

fn span(event: &str, pod: &PodSandbox, container: Option<&Container>) -> tracing::Span {
    tracing::info_span!(
        "nri",
        event,
        pod = %pod_ref(pod),
        container = container.map(|c| c.name.as_str()).unwrap_or(""),
    )
}

async fn configure<H: Handler>(handler: &H, session: &Session, payload: &[u8]) -> Answer {
    let req: ConfigureRequest = decode("ConfigureRequest", payload)?;
    let events = handler.events();
    let span = tracing::info_span!("nri", event = "Configure", runtime = %format!("{} {}", req.runtime_name, req.runtime_version));
    async {
        handler.configure(&req).await.map_err(failed)?;
        tracing::info!(
            nri_version = %req.nri_version,
            registration_timeout_ms = req.registration_timeout,
            request_timeout_ms = req.request_timeout,
            subscribed = %events,
            "configured"
        );
        Ok(())
    }
    .instrument(span)
    .await?;
    session.configured.store(true, Ordering::SeqCst);
    Ok(ConfigureResponse {
        events: events.bits(),
    }
    .encode_to_vec())
}

async fn synchronize<H: Handler>(handler: &H, session: &Session, payload: &[u8]) -> Answer {
    let req: SynchronizeRequest = decode("SynchronizeRequest", payload)?;
    if req.more {
        // Not the last chunk: collect it and say we can take more; updates come with the last.
        let mut acc = session.sync.lock().expect("sync lock");
        let (pods, containers) = acc.get_or_insert_with(Default::default);
        pods.extend(req.pods);
        containers.extend(req.containers);
        tracing::debug!(
            pods = pods.len(),
            containers = containers.len(),
            "Synchronize chunk collected"
        );
        return Ok(SynchronizeResponse {
            update: Vec::new(),
            more: true,
        }
        .encode_to_vec());
    }
    let (mut pods, mut containers) = session
        .sync
        .lock()
        .expect("sync lock")
        .take()
        .unwrap_or_default();
    pods.extend(req.pods);
    containers.extend(req.containers);
    let span = tracing::info_span!(
        "nri",
        event = "Synchronize",
        pods = pods.len(),
        containers = containers.len()
    );
    let update = handler
        .synchronize(&pods, &containers)
        .instrument(span)
        .await
        .map_err(failed)?;
    Ok(SynchronizeResponse {
        update,
        more: false,
    }
    .encode_to_vec())
}

async fn shutdown<H: Handler>(handler: &H) -> Answer {
    handler
        .shutdown()
        .instrument(tracing::info_span!("nri", event = "Shutdown"))
        .await;
    Ok(nri::Empty {}.encode_to_vec())
}

async fn create_container<H: Handler>(handler: &H, payload: &[u8]) -> Answer {
    let req: CreateContainerRequest = decode("CreateContainerRequest", payload)?;
    let (pod, ctr) = (
        req.pod.unwrap_or_default(),
        req.container.unwrap_or_default(),
    );
    let span = span("CreateContainer", &pod, Some(&ctr));
    let reply = handler
        .create_container(&pod, &ctr)
        .instrument(span)
        .await
        .map_err(failed)?;
    Ok(CreateContainerResponse {
        adjust: reply.adjust,
        update: reply.update,
        evict: reply.evict,
    }
    .encode_to_vec())
}

async fn update_container<H: Handler>(handler: &H, payload: &[u8]) -> Answer {
    let req: UpdateContainerRequest = decode("UpdateContainerRequest", payload)?;
    let (pod, ctr) = (
        req.pod.unwrap_or_default(),
        req.container.unwrap_or_default(),
    );
    let span = span("UpdateContainer", &pod, Some(&ctr));
    let update = handler
        .update_container(&pod, &ctr, req.linux_resources.as_ref())
        .instrument(span)
        .await
        .map_err(failed)?;
    Ok(UpdateContainerResponse {
        update,
        evict: Vec::new(),
    }
    .encode_to_vec())
}

async fn stop_container<H: Handler>(handler: &H, payload: &[u8]) -> Answer {
    let req: StopContainerRequest = decode("StopContainerRequest", payload)?;
    let (pod, ctr) = (
        req.pod.unwrap_or_default(),
        req.container.unwrap_or_default(),
    );
    let span = span("StopContainer", &pod, Some(&ctr));
    let update = handler
        .stop_container(&pod, &ctr)
        .instrument(span)
        .await
        .map_err(failed)?;
    Ok(StopContainerResponse { update }.encode_to_vec())
}

async fn state_change<H: Handler>(handler: &H, payload: &[u8]) -> Answer {
    let evt: StateChangeEvent = decode("StateChangeEvent", payload)?;
    let event = Event::try_from(evt.event).unwrap_or(Event::Unknown);
    let pod = evt.pod.unwrap_or_default();
    let ctr = evt.container;
    let name = state_change_name(event);
    let span = span(name, &pod, ctr.as_ref());
    let need_ctr = || {
        ctr.as_ref().ok_or_else(|| {
            Status::new(
                code::INVALID_ARGUMENT,
                format!("{name} event without a container"),
            )
        })
    };
    let result = match event {
        Event::RunPodSandbox => handler.run_pod_sandbox(&pod).instrument(span).await,
        Event::StopPodSandbox => handler.stop_pod_sandbox(&pod).instrument(span).await,
        Event::RemovePodSandbox => handler.remove_pod_sandbox(&pod).instrument(span).await,
        Event::PostCreateContainer => {
            handler
                .post_create_container(&pod, need_ctr()?)
                .instrument(span)
                .await
        }
        Event::StartContainer => {
            handler
                .start_container(&pod, need_ctr()?)
                .instrument(span)
                .await
        }
        Event::PostStartContainer => {
            handler
                .post_start_container(&pod, need_ctr()?)
                .instrument(span)
                .await
        }
        Event::PostUpdateContainer => {
            handler
                .post_update_container(&pod, need_ctr()?)
                .instrument(span)
                .await
        }
        Event::RemoveContainer => {
            handler
                .remove_container(&pod, need_ctr()?)
                .instrument(span)
                .await
        }
        other => {
            // Events with their own RPC, or from a newer NRI: nothing to do, and no reason to fail.
            span.in_scope(|| {
                tracing::debug!(event = evt.event, ?other, "ignoring StateChange event")
            });
            Ok(())
        }
    };
    result.map_err(failed)?;
    Ok(nri::Empty {}.encode_to_vec())
}

fn state_change_name(e: Event) -> &'static str {
    match e {
        Event::RunPodSandbox => "RunPodSandbox",
        Event::StopPodSandbox => "StopPodSandbox",
        Event::RemovePodSandbox => "RemovePodSandbox",
        Event::CreateContainer => "CreateContainer",
        Event::PostCreateContainer => "PostCreateContainer",
        Event::StartContainer => "StartContainer",
        Event::PostStartContainer => "PostStartContainer",
        Event::UpdateContainer => "UpdateContainer",
        Event::PostUpdateContainer => "PostUpdateContainer",
        Event::StopContainer => "StopContainer",
        Event::RemoveContainer => "RemoveContainer",
        Event::Unknown => "Unknown",
    }
}
