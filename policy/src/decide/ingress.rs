//! What the kernel's ingress programs need: a workload's ingress rules as a table of disjoint
//! cells (peer address range × local port range × protocol), each with the verdict
//! [`WorkloadView::decide`] gives everywhere inside it.
//!
//! The cells are cut at every boundary any ingress rule has (each CIDR's first address and the
//! one after its last, each port range's ends), so within one cell every rule either matches all
//! of it or none of it, and the combining (an allow cancels its own policy's block, the strictest
//! verdict wins, the most specific names it) comes out the same for all its points. The verdict of
//! a cell is therefore `decide` at any one point of it: the table is the decision function
//! itself, written out, not a second reading of the rules. Cells that decide Allow are left out
//! (the programs pass what no cell holds), and neighbours with the same verdict are merged.
//!
//! A packet has no process: rules limited to `processes` are decided as `decide` decides a
//! connection by an unknown process (they don't match, allows included).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{Operation, WorkloadView};
use crate::compile::Verdict;
use crate::model::{Direction, Protocol};

/// One cell. Addresses are numbers in their family's space (IPv4 in the low 32 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngressCell {
    pub first: u128,
    pub last: u128,
    /// Local ports, inclusive. Raw sockets have no port: the programs look them up at port 0.
    pub ports: (u16, u16),
    pub protocol: Protocol,
    /// Block or Alert (Allow cells are not kept).
    pub verdict: Verdict,
}

/// The ingress table of one workload: IPv4 and IPv6 cells. Empty when no ingress rule refuses
/// or reports anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngressTable {
    pub v4: Vec<IngressCell>,
    pub v6: Vec<IngressCell>,
}

impl IngressTable {
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// The verdict the table gives a packet: what the kernel programs compute.
    pub fn lookup(&self, peer: IpAddr, port: u16, protocol: Protocol) -> Verdict {
        let (cells, addr) = match peer {
            IpAddr::V4(a) => (&self.v4, u128::from(u32::from(a))),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => (&self.v4, u128::from(u32::from(v4))),
                None => (&self.v6, u128::from(a)),
            },
        };
        let port = if protocol == Protocol::Raw { 0 } else { port };
        cells
            .iter()
            .find(|c| {
                c.protocol == protocol
                    && (c.first..=c.last).contains(&addr)
                    && (c.ports.0..=c.ports.1).contains(&port)
            })
            .map_or(Verdict::Allow, |c| c.verdict)
    }
}

/// The IPv4-mapped IPv6 range: such peers are IPv4 hosts (`Cidr::contains` says the same), so
/// the IPv6 cells leave it out.
const MAPPED_FIRST: u128 = 0xffff_0000_0000;
const MAPPED_LAST: u128 = 0xffff_ffff_ffff;

impl WorkloadView {
    /// The workload's ingress rules as cells for the kernel (see the module's comment).
    pub fn ingress_table(&self) -> IngressTable {
        let ingress: Vec<_> = self
            .network
            .iter()
            .filter(|m| m.direction == Direction::Ingress)
            .collect();
        if ingress.iter().all(|m| m.entry.verdict == Verdict::Allow) {
            return IngressTable::default();
        }
        let mut port_cuts = vec![0u32];
        for m in &ingress {
            for &(a, b) in m.ports.iter() {
                port_cuts.extend([u32::from(a), u32::from(b) + 1]);
            }
        }
        let ports = intervals(port_cuts.into_iter().map(u128::from), u128::from(u16::MAX));
        let mut v4_cuts = vec![0u128];
        let mut v6_cuts = vec![0u128, MAPPED_FIRST, MAPPED_LAST + 1];
        for m in &ingress {
            for c in m.cidrs.iter() {
                let (first, last, v4) = c.bounds();
                let cuts = if v4 { &mut v4_cuts } else { &mut v6_cuts };
                cuts.push(first);
                cuts.extend(last.checked_add(1));
            }
        }
        let v4 = intervals(v4_cuts.into_iter(), u128::from(u32::MAX));
        let v6: Vec<_> = intervals(v6_cuts.into_iter(), u128::MAX)
            .into_iter()
            .filter(|&(first, _)| !(MAPPED_FIRST..=MAPPED_LAST).contains(&first))
            .collect();
        IngressTable {
            v4: self.cells(&v4, &ports, |a| {
                IpAddr::V4(Ipv4Addr::from(u32::try_from(a).unwrap_or(u32::MAX)))
            }),
            v6: self.cells(&v6, &ports, |a| IpAddr::V6(Ipv6Addr::from(a))),
        }
    }

    fn cells(
        &self,
        addrs: &[(u128, u128)],
        ports: &[(u128, u128)],
        to_ip: impl Fn(u128) -> IpAddr,
    ) -> Vec<IngressCell> {
        let mut cells: Vec<IngressCell> = Vec::new();
        for protocol in [Protocol::Tcp, Protocol::Udp, Protocol::Raw] {
            // Raw sockets are looked up at port 0 only: one port interval, all ports.
            let whole = [(0u128, u128::from(u16::MAX))];
            let ports = if protocol == Protocol::Raw {
                &whole[..]
            } else {
                ports
            };
            for &(plo, phi) in ports {
                let port = u16::try_from(plo).unwrap_or(u16::MAX);
                let port_range = (port, u16::try_from(phi).unwrap_or(u16::MAX));
                let mut run: Option<IngressCell> = None;
                for &(first, last) in addrs {
                    let verdict = self
                        .decide(&Operation::Connect {
                            direction: Direction::Ingress,
                            address: to_ip(first),
                            port,
                            protocol,
                            process: "",
                        })
                        .verdict;
                    match &mut run {
                        Some(r) if r.verdict == verdict && r.last.checked_add(1) == Some(first) => {
                            r.last = last;
                        }
                        _ => {
                            if let Some(r) = run.take()
                                && r.verdict != Verdict::Allow
                            {
                                cells.push(r);
                            }
                            run = Some(IngressCell {
                                first,
                                last,
                                ports: port_range,
                                protocol,
                                verdict,
                            });
                        }
                    }
                }
                if let Some(r) = run
                    && r.verdict != Verdict::Allow
                {
                    cells.push(r);
                }
            }
        }
        cells
    }
}

/// The intervals between sorted, deduplicated cut points, the last one ending at `max`.
fn intervals(cuts: impl Iterator<Item = u128>, max: u128) -> Vec<(u128, u128)> {
    let mut cuts: Vec<u128> = cuts.filter(|&c| c <= max).collect();
    cuts.sort_unstable();
    cuts.dedup();
    cuts.iter()
        .enumerate()
        .map(|(i, &first)| {
            let last = cuts.get(i + 1).map_or(max, |next| next - 1);
            (first, last)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Snapshot, Workload, parse_str};

    fn view(network: &str) -> WorkloadView {
        let yaml = format!(
            "apiVersion: rampart.dev/v1alpha1\nkind: RuntimePolicy\nmetadata: {{name: In}}\n\
             spec:\n  network:\n{network}"
        );
        let snapshot = Snapshot::new(parse_str("in.yaml", &yaml).unwrap()).unwrap();
        snapshot.for_workload(&Workload::default())
    }

    fn decide(v: &WorkloadView, peer: IpAddr, port: u16, protocol: Protocol) -> Verdict {
        v.decide(&Operation::Connect {
            direction: Direction::Ingress,
            address: peer,
            port,
            protocol,
            process: "",
        })
        .verdict
    }

    /// Points at and around every boundary, and some in between: the table and `decide` agree
    /// on each.
    fn assert_agrees(v: &WorkloadView, peers: &[&str], ports: &[u16]) {
        let table = v.ingress_table();
        for peer in peers {
            let peer: IpAddr = peer.parse().unwrap();
            for &port in ports {
                for protocol in [Protocol::Tcp, Protocol::Udp, Protocol::Raw] {
                    let port = if protocol == Protocol::Raw { 0 } else { port };
                    assert_eq!(
                        table.lookup(peer, port, protocol),
                        decide(v, peer, port, protocol),
                        "{peer} port {port} {protocol:?}: {table:?}"
                    );
                }
            }
        }
    }

    const PEERS: &[&str] = &[
        "0.0.0.0",
        "9.255.255.255",
        "10.0.0.0",
        "10.1.2.3",
        "10.1.2.4",
        "10.1.2.5",
        "10.255.255.255",
        "11.0.0.0",
        "192.168.0.1",
        "255.255.255.255",
        "::ffff:10.1.2.4",
        "::",
        "::1",
        "2001:db8::",
        "2001:db8::1",
        "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
        "2001:db9::",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ];
    const PORTS: &[u16] = &[0, 1, 21, 22, 23, 79, 80, 81, 443, 8000, 8080, 8081, 65535];

    #[test]
    fn a_block_with_an_exception_in_the_same_policy() {
        let v = view(
            "    - {direction: ingress, cidrs: [10.0.0.0/8], ports: [22, 80], action: block}\n\
             \x20   - {direction: ingress, cidrs: [10.1.2.4/32], ports: [80], action: allow}\n",
        );
        assert_agrees(&v, PEERS, PORTS);
        let t = v.ingress_table();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(t.lookup(ip("10.1.2.3"), 80, Protocol::Tcp), Verdict::Block);
        assert_eq!(t.lookup(ip("10.1.2.4"), 80, Protocol::Tcp), Verdict::Allow);
        assert_eq!(t.lookup(ip("10.1.2.4"), 22, Protocol::Udp), Verdict::Block);
        assert_eq!(t.lookup(ip("11.0.0.1"), 80, Protocol::Tcp), Verdict::Allow);
        assert!(t.v6.is_empty(), "{t:?}");
    }

    #[test]
    fn overlapping_rules_ranges_and_families() {
        let v = view(
            "    - {direction: ingress, action: alert}\n\
             \x20   - {direction: ingress, cidrs: [2001:db8::/32, 10.0.0.0/8], ports: [\"8000-8080\"], protocols: [tcp], action: block}\n\
             \x20   - {direction: ingress, cidrs: [10.1.2.0/24], protocols: [udp], action: allow}\n\
             \x20   - {direction: ingress, cidrs: [0.0.0.0/0], protocols: [raw], action: block}\n\
             \x20   - {direction: egress, cidrs: [0.0.0.0/0], action: block}\n",
        );
        assert_agrees(&v, PEERS, PORTS);
        let t = v.ingress_table();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            t.lookup(ip("2001:db8::1"), 8080, Protocol::Tcp),
            Verdict::Block
        );
        assert_eq!(
            t.lookup(ip("2001:db8::1"), 8081, Protocol::Tcp),
            Verdict::Alert
        );
        assert_eq!(t.lookup(ip("8.8.8.8"), 0, Protocol::Raw), Verdict::Block);
    }

    #[test]
    fn a_rule_limited_to_processes_is_decided_as_for_no_process() {
        let v = view(
            "    - {direction: ingress, cidrs: [10.0.0.0/8], action: block}\n\
             \x20   - {direction: ingress, cidrs: [10.1.2.4], processes: [/usr/sbin/nginx], action: allow}\n",
        );
        assert_agrees(&v, PEERS, PORTS);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            v.ingress_table().lookup(ip("10.1.2.4"), 80, Protocol::Tcp),
            Verdict::Block
        );
    }

    #[test]
    fn allows_and_egress_alone_need_no_table() {
        let v = view(
            "    - {direction: ingress, cidrs: [10.0.0.0/8], action: allow}\n\
             \x20   - {cidrs: [0.0.0.0/0], action: block}\n",
        );
        assert!(v.ingress_table().is_empty());
    }

    #[test]
    fn neighbours_with_one_verdict_are_merged() {
        let v = view(
            "    - {direction: ingress, cidrs: [10.0.0.0/9, 10.128.0.0/9], ports: [80], protocols: [tcp], action: block}\n",
        );
        let t = v.ingress_table();
        assert_eq!(
            t.v4,
            [IngressCell {
                first: 0x0a00_0000,
                last: 0x0aff_ffff,
                ports: (80, 80),
                protocol: Protocol::Tcp,
                verdict: Verdict::Block,
            }]
        );
    }
}
