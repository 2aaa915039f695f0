//! The ingress guard on this kernel: sockets made in a cgroup of the test's own, a table compiled
//! from a real policy, clients on the loopback that come from different source addresses.
//! Needs root (skipped otherwise; CI runs as root).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{TestCgroup, is_root};
use nix::sys::socket::{
    AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, setsockopt, socket, sockopt,
};
use nix::sys::time::TimeVal;
use rampart_audit::{IngressEvent, IngressGuard};
use rampart_policy::{IngressTable, Protocol, Snapshot, Verdict, Workload, parse_str};

fn table(network: &str) -> IngressTable {
    let yaml = format!(
        "apiVersion: rampart.dev/v1alpha1\nkind: RuntimePolicy\nmetadata: {{name: In}}\n\
         spec:\n  network:\n{network}"
    );
    Snapshot::new(parse_str("in.yaml", &yaml).unwrap())
        .unwrap()
        .for_workload(&Workload::default())
        .ingress_table()
}

/// A TCP connect to `to` from the source address `from`, giving up after a second.
fn connect_from(from: Ipv4Addr, to: SocketAddr) -> std::io::Result<std::net::TcpStream> {
    let fd: OwnedFd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    bind(
        fd.as_raw_fd(),
        &SockaddrIn::from(std::net::SocketAddrV4::new(from, 0)),
    )?;
    setsockopt(&fd, sockopt::SendTimeout, &TimeVal::new(1, 0))?;
    let SocketAddr::V4(to) = to else {
        unreachable!("the tests listen on IPv4")
    };
    connect(fd.as_raw_fd(), &SockaddrIn::from(to))?;
    Ok(std::net::TcpStream::from(fd))
}

fn udp_from(from: Ipv4Addr, to: SocketAddr, payload: &[u8]) {
    let s = UdpSocket::bind(SocketAddr::new(IpAddr::V4(from), 0)).unwrap();
    s.send_to(payload, to).unwrap();
}

/// The events so far, once one of each verdict came (or after 5 s).
fn wait_for_both(events: &Mutex<Vec<IngressEvent>>) -> Vec<IngressEvent> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = events.lock().unwrap().clone();
        let has = |v| got.iter().any(|e: &IngressEvent| e.verdict == v);
        if (has(Verdict::Block) && has(Verdict::Alert)) || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A connect from a refused source times out and is reported; one from another source is served;
/// UDP from an alerted source arrives and is reported; released, the refused source gets in.
#[test]
fn a_denied_peer_is_refused_and_an_allowed_one_served() {
    if !is_root() {
        return;
    }
    let cg = TestCgroup::new("ingress");
    let (listener, udp) = cg.inside(|| {
        (
            TcpListener::bind("127.0.0.1:0").unwrap(),
            UdpSocket::bind("127.0.0.1:0").unwrap(),
        )
    });
    listener.set_nonblocking(true).unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let (tcp_at, udp_at) = (listener.local_addr().unwrap(), udp.local_addr().unwrap());
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let guard = IngressGuard::start(move |e| sink.lock().unwrap().push(e)).expect("loads");
    let table = table(&format!(
        "    - {{direction: ingress, cidrs: [127.0.0.2/32], ports: [{}], protocols: [tcp], action: block}}\n\
         \x20   - {{direction: ingress, cidrs: [127.0.0.3/32], protocols: [udp], action: alert}}\n",
        tcp_at.port()
    ));
    let id = guard.guard(&cg.path, &table).unwrap();
    assert_eq!(guard.guarded(), [id]);

    let refused = connect_from(Ipv4Addr::new(127, 0, 0, 2), tcp_at);
    assert!(refused.is_err(), "a refused peer connected");
    let e = listener.accept().map(|_| ()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WouldBlock, "{e}");

    let mut served = connect_from(Ipv4Addr::new(127, 0, 0, 1), tcp_at).expect("allowed peer");
    served.write_all(b"hello").unwrap();
    let mut conn = None;
    for _ in 0..100 {
        if let Ok((c, _)) = listener.accept() {
            conn = Some(c);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut conn = conn.expect("the allowed peer's connection is accepted");
    conn.set_nonblocking(false).unwrap();
    let mut got = [0u8; 5];
    conn.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hello", "an accepted connection's data passes");

    udp_from(Ipv4Addr::new(127, 0, 0, 3), udp_at, b"alerted");
    let mut buf = [0u8; 16];
    let (n, _) = udp
        .recv_from(&mut buf)
        .expect("an alerted datagram arrives");
    assert_eq!(&buf[..n], b"alerted");

    let seen = wait_for_both(&events);
    let block = seen
        .iter()
        .find(|e| e.verdict == Verdict::Block)
        .unwrap_or_else(|| panic!("no Block event: {seen:?}"));
    assert_eq!(block.peer, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
    assert_eq!(
        (block.port, block.protocol, block.cgroup_id),
        (tcp_at.port(), Protocol::Tcp, id)
    );
    let alert = seen
        .iter()
        .find(|e| e.verdict == Verdict::Alert)
        .unwrap_or_else(|| panic!("no Alert event: {seen:?}"));
    assert_eq!(alert.peer, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)));
    assert_eq!((alert.port, alert.protocol), (udp_at.port(), Protocol::Udp));
    let counts = guard.counts();
    assert!(counts.refused >= 1, "{counts:?}");
    assert_eq!(counts.dropped, 0, "{counts:?}");

    guard.release(id);
    assert!(guard.guarded().is_empty());
    connect_from(Ipv4Addr::new(127, 0, 0, 2), tcp_at).expect("released, the peer connects");
}

/// A ring far too small and nobody reading it: every reported datagram is either written or
/// counted as dropped, and the ring delivers exactly what was written. The datagrams all arrive
/// (alert rules refuse nothing).
#[test]
fn under_a_flood_nothing_is_lost_uncounted() {
    if !is_root() {
        return;
    }
    let cg = TestCgroup::new("ingress-flood");
    let udp = cg.inside(|| UdpSocket::bind("127.0.0.1:0").unwrap());
    udp.set_nonblocking(true).unwrap();
    let at = udp.local_addr().unwrap();
    let guard = IngressGuard::start_with(4096, None, None).expect("loads");
    let table = table("    - {direction: ingress, cidrs: [127.0.0.4/32], action: alert}\n");
    guard.guard(&cg.path, &table).unwrap();
    const DATAGRAMS: u64 = 300;
    let sender = UdpSocket::bind("127.0.0.4:0").unwrap();
    let mut received = 0u64;
    let mut buf = [0u8; 8];
    for _ in 0..DATAGRAMS {
        sender.send_to(b"x", at).unwrap();
        while udp.recv_from(&mut buf).is_ok() {
            received += 1;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while received < DATAGRAMS && Instant::now() < deadline {
        if udp.recv_from(&mut buf).is_ok() {
            received += 1;
        } else {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let counts = guard.counts();
    let delivered = guard.drain().len() as u64;
    eprintln!("{counts:?}, {delivered} delivered, {received} received");
    assert_eq!(received, DATAGRAMS, "an alert rule dropped datagrams");
    assert_eq!(counts.written + counts.dropped, DATAGRAMS, "{counts:?}");
    assert!(
        counts.dropped > 0,
        "the ring was meant to overflow: {counts:?}"
    );
    assert_eq!(delivered, counts.written, "{counts:?}");
}

/// A guard that goes away leaves its pinned links deciding: the refused peer stays refused with
/// no process holding the programs. The next guard adopts the links (a table change takes effect)
/// and, releasing the cgroup, lets the peer in.
#[test]
fn pinned_links_outlive_the_guard_and_are_adopted() {
    if !is_root() {
        return;
    }
    rampart_audit::bpffs::ensure_mounted(Path::new("/sys/fs/bpf")).expect("a bpffs");
    let pins = PathBuf::from(format!("/sys/fs/bpf/rampart-test-{}", std::process::id()));
    std::fs::create_dir_all(&pins).unwrap();
    let cg = TestCgroup::new("ingress-pins");
    let listener = cg.inside(|| TcpListener::bind("127.0.0.1:0").unwrap());
    let at = listener.local_addr().unwrap();
    let block = table(&format!(
        "    - {{direction: ingress, cidrs: [127.0.0.5/32], ports: [{}], action: block}}\n",
        at.port()
    ));
    let first = IngressGuard::start_pinned(&pins).expect("loads");
    let id = first.guard(&cg.path, &block).unwrap();
    drop(first);
    assert!(
        connect_from(Ipv4Addr::new(127, 0, 0, 5), at).is_err(),
        "the guard's process state is gone, and its pinned link must still refuse"
    );

    let second = IngressGuard::start_pinned(&pins).expect("loads again");
    assert_eq!(second.guarded(), [id], "the pinned link is adopted");
    assert!(connect_from(Ipv4Addr::new(127, 0, 0, 5), at).is_err());
    let alert_only = table(&format!(
        "    - {{direction: ingress, cidrs: [127.0.0.5/32], ports: [{}], action: alert}}\n",
        at.port()
    ));
    second.guard(&cg.path, &alert_only).unwrap();
    connect_from(Ipv4Addr::new(127, 0, 0, 5), at).expect("the new table decides");
    second.guard(&cg.path, &block).unwrap();
    second.release(id);
    connect_from(Ipv4Addr::new(127, 0, 0, 5), at).expect("released, the peer connects");
    assert!(
        !pins.join("links").join(id.to_string()).exists(),
        "a released link is unpinned"
    );
    drop(second);
    let _ = std::fs::remove_dir_all(&pins);
}

/// A container that makes a cgroup of its own below its cgroup does not leave its table: the
/// program decides a socket there by the nearest guarded ancestor's.
#[test]
fn a_socket_in_a_cgroup_below_the_guarded_one_is_decided_by_its_table() {
    if !is_root() {
        return;
    }
    let cg = TestCgroup::new("ingress-nested");
    let nested = cg.path.join("nested");
    std::fs::create_dir(&nested).unwrap();
    let listener = cg.inside_dir(&nested, || TcpListener::bind("127.0.0.1:0").unwrap());
    let at = listener.local_addr().unwrap();
    let guard = IngressGuard::start(|_| {}).expect("loads");
    let block = table(&format!(
        "    - {{direction: ingress, cidrs: [127.0.0.6/32], ports: [{}], action: block}}\n",
        at.port()
    ));
    guard.guard(&cg.path, &block).unwrap();
    assert!(
        connect_from(Ipv4Addr::new(127, 0, 0, 6), at).is_err(),
        "a nested cgroup's listener escaped the table"
    );
    connect_from(Ipv4Addr::new(127, 0, 0, 1), at).expect("another peer is served");
    drop(listener);
    drop(guard);
    std::fs::remove_dir(&nested).unwrap();
}
