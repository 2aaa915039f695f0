//! The fd holder (`rampart-holder`): keeps a copy of every notify fd the agent supervises
//! and of every file guard (fanotify) group, so the filters' listeners and the groups' marks
//! outlive an agent restart, and gives them to the next agent.
//!
//! It is deliberately dumb, so that it almost never needs a restart (a holder restart loses every
//! fd it holds): one thread, one poll loop over its socket, its clients and the held fds; it never
//! reads a notification and never looks inside the agent's description of an fd. A held fd is
//! dropped when every task of its filter has exited (the fd polls POLLHUP), or when the agent
//! releases it (a group never polls POLLHUP: the agent releases it when its container ends). See
//! `holder::protocol` for the messages.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use tracing::{debug, info, warn};

use crate::holder::protocol::{self as proto, HeldPhase, Reply, Request};
use crate::sys::seqpacket;

/// Clients served at once (one agent, and `list` callers such as tests); more are turned away.
const MAX_CLIENTS: usize = 32;
/// A client that stops reading its replies for this long is dropped.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum HolderError {
    #[error("cannot create the holder socket {path}: {source}")]
    Bind { path: PathBuf, source: io::Error },
    #[error(
        "another holder already serves {path}; stop it first (it holds the notify fds of running containers, so only stop it when the agent is to be stopped too)"
    )]
    AlreadyRunning { path: PathBuf },
    #[error("polling the holder's descriptors failed: {0}")]
    Poll(io::Error),
}

/// Binds the holder's socket at `path` with mode 0600. A stale socket is replaced, a live one
/// (another holder answers on it) is not.
pub fn bind(path: &Path) -> Result<OwnedFd, HolderError> {
    let err = |source| HolderError::Bind {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    if seqpacket::connect(path, CLIENT_TIMEOUT).is_ok() {
        return Err(HolderError::AlreadyRunning {
            path: path.to_owned(),
        });
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let sock = seqpacket::listen(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    Ok(sock)
}

struct Held {
    fd: OwnedFd,
    label: String,
    meta: String,
    phase: HeldPhase,
}

/// What the holder holds, and its clients.
pub struct Holder {
    next_id: u64,
    held: BTreeMap<u64, Held>,
    clients: Vec<OwnedFd>,
}

impl Default for Holder {
    fn default() -> Self {
        Self::new()
    }
}

/// What one poll round found.
enum Event {
    Accept,
    Client(usize),
    ClientGone(usize),
    Exited(u64),
}

impl Holder {
    pub fn new() -> Self {
        // Ids start at the clock (ns), so a restarted holder never reuses an id that an agent
        // still has from its predecessor (and would release the wrong fd with).
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Self {
            next_id: now,
            held: BTreeMap::new(),
            clients: Vec::new(),
        }
    }

    /// How many fds it holds.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Serves `listener` until `stop` (if given) becomes readable or hangs up.
    pub fn serve(
        &mut self,
        listener: BorrowedFd<'_>,
        stop: Option<BorrowedFd<'_>>,
    ) -> Result<(), HolderError> {
        loop {
            let events = match self.wait(listener, stop)? {
                Some(events) => events,
                None => return Ok(()),
            };
            let mut gone = Vec::new();
            for event in events {
                match event {
                    Event::Exited(id) => {
                        if let Some(h) = self.held.remove(&id) {
                            info!(id, fd = %h.label, held = self.held.len(), "every task of the filter exited; dropped its notify fd");
                        }
                    }
                    Event::Client(i) => match self.serve_client(i) {
                        Ok(true) => {}
                        Ok(false) => gone.push(i),
                        Err(e) => {
                            debug!(error = %e, "dropping a holder client");
                            gone.push(i);
                        }
                    },
                    Event::ClientGone(i) => gone.push(i),
                    Event::Accept => self.accept(listener),
                }
            }
            gone.sort_unstable();
            gone.dedup();
            for i in gone.into_iter().rev() {
                self.clients.swap_remove(i);
            }
        }
    }

    /// Polls everything once. None: asked to stop.
    fn wait(
        &self,
        listener: BorrowedFd<'_>,
        stop: Option<BorrowedFd<'_>>,
    ) -> Result<Option<Vec<Event>>, HolderError> {
        let gone = PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL;
        let mut fds = Vec::with_capacity(2 + self.clients.len() + self.held.len());
        fds.push(PollFd::new(listener, PollFlags::POLLIN));
        if let Some(s) = stop {
            fds.push(PollFd::new(s, PollFlags::POLLIN));
        }
        let first_client = fds.len();
        fds.extend(
            self.clients
                .iter()
                .map(|c| PollFd::new(c.as_fd(), PollFlags::POLLIN)),
        );
        let first_held = fds.len();
        // No events asked of a notify fd: a pending notification (POLLIN) is the agent's business;
        // POLLHUP, which poll always reports, says the filter has no tasks left.
        fds.extend(
            self.held
                .values()
                .map(|h| PollFd::new(h.fd.as_fd(), PollFlags::empty())),
        );
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => return Ok(Some(Vec::new())),
            Err(e) => return Err(HolderError::Poll(e.into())),
        }
        let revents = |i: usize| fds[i].revents().unwrap_or(PollFlags::empty());
        if stop.is_some() && !revents(1).is_empty() {
            return Ok(None);
        }
        let mut events = Vec::new();
        for (i, id) in self.held.keys().enumerate() {
            if revents(first_held + i).intersects(gone) {
                events.push(Event::Exited(*id));
            }
        }
        for i in 0..self.clients.len() {
            let ev = revents(first_client + i);
            if ev.contains(PollFlags::POLLIN) {
                events.push(Event::Client(i));
            } else if ev.intersects(gone) {
                events.push(Event::ClientGone(i));
            }
        }
        if revents(0).contains(PollFlags::POLLIN) {
            events.push(Event::Accept);
        }
        Ok(Some(events))
    }

    fn accept(&mut self, listener: BorrowedFd<'_>) {
        let conn = match seqpacket::accept(listener) {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "accepting a holder client failed");
                return;
            }
        };
        match seqpacket::peer_uid(conn.as_fd()) {
            Ok(uid) if uid == 0 || uid == nix::unistd::geteuid().as_raw() => {}
            Ok(uid) => {
                warn!(
                    uid,
                    "refused a holder client: only root may hand over or take notify fds"
                );
                return;
            }
            Err(e) => {
                warn!(error = %e, "cannot tell who a holder client is; refused");
                return;
            }
        }
        if self.clients.len() >= MAX_CLIENTS {
            warn!(
                clients = self.clients.len(),
                "too many holder clients; refused one"
            );
            return;
        }
        if let Err(e) = seqpacket::set_timeouts(conn.as_fd(), CLIENT_TIMEOUT) {
            warn!(error = %e, "cannot set a holder client's timeouts; refused");
            return;
        }
        self.clients.push(conn);
    }

    /// Reads and answers one request. False: the client left; an error drops the client.
    fn serve_client(&mut self, i: usize) -> io::Result<bool> {
        let mut buf = vec![0u8; proto::MAX_MESSAGE];
        let mut fds = Vec::new();
        let n = match seqpacket::recv(self.clients[i].as_fd(), &mut buf, &mut fds, true) {
            Ok(0) => return Ok(false),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) => return Err(e),
        };
        let reply = match proto::decode::<Request>(&buf[..n]) {
            Ok(req) => self.handle(req, fds, i)?,
            Err(e) => Reply::Error {
                message: e.to_string(),
            },
        };
        self.send(i, &reply, None).map(|()| true)
    }

    fn send(&self, i: usize, reply: &Reply, fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
        let bytes = proto::encode(reply).map_err(io::Error::other)?;
        let fds: Vec<BorrowedFd<'_>> = fd.into_iter().collect();
        seqpacket::send(self.clients[i].as_fd(), &bytes, &fds)
    }

    /// Carries out a request; `List` sends its entries itself and returns the closing reply.
    fn handle(&mut self, req: Request, mut fds: Vec<OwnedFd>, client: usize) -> io::Result<Reply> {
        Ok(match req {
            Request::Hold { label, meta, phase } => {
                if fds.len() != 1 {
                    return Ok(Reply::Error {
                        message: format!("hold needs exactly one notify fd, got {}", fds.len()),
                    });
                }
                self.next_id += 1;
                let id = self.next_id;
                info!(id, fd = %label, ?phase, held = self.held.len() + 1, "holding a notify fd");
                self.held.insert(
                    id,
                    Held {
                        fd: fds.remove(0),
                        label,
                        meta,
                        phase,
                    },
                );
                Reply::Held { id }
            }
            Request::SetPhase { id, phase } => match self.held.get_mut(&id) {
                Some(h) => {
                    debug!(id, fd = %h.label, ?phase, "phase changed");
                    h.phase = phase;
                    Reply::Ok
                }
                None => unknown(id),
            },
            Request::Release { id } => match self.held.remove(&id) {
                Some(h) => {
                    info!(id, fd = %h.label, "the agent released a notify fd");
                    Reply::Ok
                }
                None => unknown(id),
            },
            Request::List => {
                for (id, h) in &self.held {
                    let entry = Reply::Entry {
                        id: *id,
                        label: h.label.clone(),
                        meta: h.meta.clone(),
                        phase: h.phase,
                    };
                    self.send(client, &entry, Some(h.fd.as_fd()))?;
                }
                info!(
                    count = self.held.len(),
                    "handed copies of the held notify fds to an agent"
                );
                Reply::End {
                    count: self.held.len(),
                }
            }
        })
    }
}

fn unknown(id: u64) -> Reply {
    Reply::Error {
        message: format!("no notify fd with id {id} is held (its tasks may have exited)"),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::Instant;

    use oci_spec::runtime::ContainerProcessState;

    use super::*;
    use crate::holder::client::{HolderClient, HolderClientError};
    use crate::phase::Phase;

    fn state(id: &str) -> ContainerProcessState {
        serde_json::from_str(&format!(
            r#"{{"ociVersion":"1.0.2","fds":["seccompFd"],"pid":42,"metadata":"m",
            "state":{{"ociVersion":"1.0.2","id":"{id}","status":"creating","pid":42,"bundle":"/b",
            "annotations":{{"io.kubernetes.cri.container-name":"c","rampart.dev/seccomp":"big"}}}}}}"#
        ))
        .unwrap()
    }

    /// A holder serving a temporary socket on a thread, stopped and joined on drop.
    struct Running {
        path: PathBuf,
        stop: Option<std::io::PipeWriter>,
        thread: Option<std::thread::JoinHandle<usize>>,
    }

    impl Running {
        fn start(name: &str) -> Running {
            let path = std::env::temp_dir()
                .join(format!("rampart-holder-{}-{name}.sock", std::process::id()));
            let listener = bind(&path).unwrap();
            let (r, w) = std::io::pipe().unwrap();
            let thread = std::thread::spawn(move || {
                let mut h = Holder::new();
                h.serve(listener.as_fd(), Some(r.as_fd())).unwrap();
                h.len()
            });
            Running {
                path,
                stop: Some(w),
                thread: Some(thread),
            }
        }
    }

    impl Drop for Running {
        fn drop(&mut self) {
            drop(self.stop.take());
            let _ = self.thread.take().unwrap().join();
            let _ = std::fs::remove_file(&self.path);
        }
    }

    fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !ok() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn holds_lists_updates_releases_and_drops_hung_up_fds() {
        let running = Running::start("cycle");
        let client = HolderClient::new(&running.path);
        // Pipe read ends stand in for notify fds: they poll POLLHUP once the write end is closed,
        // as a notify fd does once its filter has no tasks left.
        let (r1, mut w1) = std::io::pipe().unwrap();
        let (r2, w2) = std::io::pipe().unwrap();
        let id1 = client
            .hold(&state("one"), Phase::RuntimeInit, r1.as_fd())
            .unwrap();
        let id2 = client
            .hold(&state("two"), Phase::RuntimeInit, r2.as_fd())
            .unwrap();
        assert_ne!(id1, id2);
        drop((r1, r2));
        client.set_phase(id2, Phase::Workload).unwrap();

        let list = client.list().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].id, id1);
        assert_eq!(list[0].phase, Phase::RuntimeInit);
        assert_eq!(list[1].phase, Phase::Workload);
        assert_eq!(list[1].state.state().id(), "two");
        // The description kept what the agent reads, not rampart's bulky seccomp annotation.
        let ann = list[0].state.state().annotations().clone().unwrap();
        assert_eq!(ann.get("io.kubernetes.cri.container-name").unwrap(), "c");
        assert!(!ann.contains_key("rampart.dev/seccomp"));
        assert_eq!(list[0].state.metadata().as_deref(), Some("m"));
        // The copy we were given is the same pipe.
        w1.write_all(b"x").unwrap();
        let mut b = [0u8; 1];
        assert_eq!(
            nix::unistd::read(list[0].fd.as_fd(), &mut b).unwrap(),
            1,
            "the listed fd is a copy of the held one"
        );
        drop(list);

        // Every "task" of fd 2 exits: the holder drops it.
        drop(w2);
        wait_until("the hung-up fd to be dropped", || {
            client.list().unwrap().len() == 1
        });
        assert!(matches!(
            client.set_phase(id2, Phase::Workload),
            Err(HolderClientError::Refused(_))
        ));

        client.release(id1).unwrap();
        assert!(client.list().unwrap().is_empty());
        drop(w1);
    }

    #[test]
    fn a_second_holder_on_the_same_socket_is_refused() {
        let running = Running::start("twice");
        assert!(matches!(
            bind(&running.path),
            Err(HolderError::AlreadyRunning { .. })
        ));
    }

    #[test]
    fn an_unreachable_holder_is_an_error_that_says_so() {
        let client = HolderClient::new(Path::new("/nonexistent/rampart-holder.sock"));
        let (r, _w) = std::io::pipe().unwrap();
        let e = client
            .hold(&state("x"), Phase::RuntimeInit, r.as_fd())
            .unwrap_err();
        assert!(matches!(e, HolderClientError::Connect { .. }), "{e}");
        assert!(e.to_string().contains("rampart-holder"), "{e}");
    }
}
