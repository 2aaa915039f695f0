//! The flow sensor on this kernel: TCP connections made in a cgroup of the test's own are seen
//! opening, failing and closing with their addresses and byte counts; those of other cgroups
//! are not. Needs root (skipped otherwise; CI runs as root).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{TestCgroup, is_root};
use rampart_audit::{Flow, FlowKind, FlowSensor};

fn wait_for(flows: &Mutex<Vec<Flow>>, done: impl Fn(&[Flow]) -> bool) -> Vec<Flow> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = flows.lock().unwrap().clone();
        if done(&got) || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn connections_of_a_watched_cgroup_open_fail_and_close_with_their_bytes() {
    if !is_root() {
        return;
    }
    let flows = Arc::new(Mutex::new(Vec::new()));
    let sink = flows.clone();
    let sensor =
        FlowSensor::start(Box::new(move |f: &Flow| sink.lock().unwrap().push(*f))).expect("loads");
    let cg = TestCgroup::new("flows");
    let id = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&cg.path).unwrap());
    sensor.watch(id).unwrap();
    // An unwatched listener elsewhere, and a closed port.
    let outside = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (listener, client, failed) = cg.inside(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let failed = TcpStream::connect(closed);
        (listener, client, failed)
    });
    assert!(failed.is_err(), "nothing listens at {closed}");
    let (mut served, _) = listener.accept().unwrap();
    let mut client = client;
    client.write_all(&[7u8; 1000]).unwrap();
    let mut got = [0u8; 1000];
    served.read_exact(&mut got).unwrap();
    drop(client);
    drop(served);
    // Outside the watched cgroup: not reported.
    let _other = TcpStream::connect(outside.local_addr().unwrap()).unwrap();

    let seen = wait_for(&flows, |f| {
        f.iter().filter(|f| f.kind == FlowKind::Closed).count() >= 2
    });
    sensor.unwatch(id);
    let at = listener.local_addr().unwrap();
    let of = |k: FlowKind| {
        seen.iter()
            .filter(|f| f.kind == k)
            .copied()
            .collect::<Vec<_>>()
    };
    let connected = of(FlowKind::Connected);
    assert_eq!(connected.len(), 1, "{seen:?}");
    assert_eq!(
        (connected[0].remote, connected[0].cgroup_id),
        (at, id),
        "{seen:?}"
    );
    let accepted = of(FlowKind::Accepted);
    assert_eq!(accepted.len(), 1, "{seen:?}");
    assert_eq!(accepted[0].local, at, "{seen:?}");
    let failed = of(FlowKind::Failed);
    assert_eq!(failed.len(), 1, "{seen:?}");
    assert_eq!(failed[0].remote, closed, "{seen:?}");
    let closes = of(FlowKind::Closed);
    assert_eq!(
        closes.len(),
        2,
        "the client's and the served connection: {seen:?}"
    );
    // TCP's counts, in sequence space: the payload, and one each for the SYN and FIN.
    let client_close = closes
        .iter()
        .find(|f| f.remote == at)
        .expect("the client's close");
    assert!((1000..=1002).contains(&client_close.bytes_sent), "{seen:?}");
    assert_eq!(client_close.local, connected[0].local, "{seen:?}");
    let served_close = closes
        .iter()
        .find(|f| f.local == at)
        .expect("the served close");
    assert!(
        (1000..=1001).contains(&served_close.bytes_received),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .all(|f| f.remote != outside.local_addr().unwrap()
                && f.local != outside.local_addr().unwrap()),
        "an unwatched cgroup's connection was reported: {seen:?}"
    );
    assert_eq!(sensor.counts().dropped, 0);
}

/// A ring far too small and nobody reading it: every event is written or counted as dropped,
/// in total and for its cgroup.
#[test]
fn under_a_flood_drops_are_counted_for_the_cgroup() {
    if !is_root() {
        return;
    }
    let sensor = FlowSensor::start_with(4096, None).expect("loads");
    let cg = TestCgroup::new("flow-flood");
    let id = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&cg.path).unwrap());
    sensor.watch(id).unwrap();
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    const CONNECTS: u64 = 200;
    cg.inside(|| {
        for _ in 0..CONNECTS {
            assert!(TcpStream::connect(closed).is_err());
        }
    });
    let counts = sensor.counts();
    let delivered = sensor.drain().len() as u64;
    eprintln!("{counts:?}, {delivered} delivered");
    assert_eq!(
        counts.written + counts.dropped,
        CONNECTS,
        "one Failed each: {counts:?}"
    );
    assert!(
        counts.dropped > 0,
        "the ring was meant to overflow: {counts:?}"
    );
    assert_eq!(sensor.dropped_for(id), counts.dropped);
    assert_eq!(delivered, counts.written);
}

/// A container's UDP flows: each (direction, peer, local port) is reported once, however many
/// datagrams follow; detached, nothing more is reported.
#[test]
fn udp_flows_are_reported_once_per_peer_and_direction() {
    if !is_root() {
        return;
    }
    let flows = Arc::new(Mutex::new(Vec::new()));
    let sink = flows.clone();
    let sensor =
        FlowSensor::start(Box::new(move |f: &Flow| sink.lock().unwrap().push(*f))).expect("loads");
    let cg = TestCgroup::new("udp-flows");
    let id = sensor.attach_udp(&cg.path).expect("attaches");
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let at = peer.local_addr().unwrap();
    let mut buf = [0u8; 8];
    // The datagrams are sent and read by the test process while it is in the cgroup: UDP flows
    // are the sending or reading process's.
    let local = cg.inside(|| {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..3 {
            s.send_to(b"a", at).unwrap();
        }
        peer.send_to(b"b", s.local_addr().unwrap()).unwrap();
        s.recv_from(&mut buf).unwrap();
        s
    });
    let seen = wait_for(&flows, |f| f.len() >= 2);
    let of = |k: FlowKind| {
        seen.iter()
            .filter(|f| f.kind == k)
            .copied()
            .collect::<Vec<_>>()
    };
    let sent = of(FlowKind::UdpSent);
    assert_eq!(sent.len(), 1, "three datagrams, one flow: {seen:?}");
    assert_eq!(sent[0].remote, at, "{seen:?}");
    assert_eq!(
        sent[0].local.port(),
        local.local_addr().unwrap().port(),
        "{seen:?}"
    );
    assert_eq!(sent[0].cgroup_id, id, "{seen:?}");
    let received = of(FlowKind::UdpReceived);
    assert_eq!(received.len(), 1, "{seen:?}");
    assert_eq!(received[0].remote, at, "{seen:?}");
    sensor.unwatch(id);
    let other = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    cg.inside(|| local.send_to(b"c", other.local_addr().unwrap()).unwrap());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        flows.lock().unwrap().len(),
        seen.len(),
        "detached, yet reported"
    );
}
