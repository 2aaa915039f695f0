// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * rampart ingress guard: a cgroup_skb/ingress program on each container cgroup that an ingress
 * rule scopes. It decides what arrives for the container's sockets on the peer's address, the
 * local port and the socket's protocol, against the container's table (rampartd compiles it from
 * the policy snapshot: disjoint cells, each with the verdict the policy gives inside it).
 *
 * What is decided: every packet for a TCP socket in LISTEN (the SYN that opens a connection and
 * the ACK that completes one by syncookie), every UDP datagram, every packet for a raw socket.
 * Packets of accepted connections pass without a lookup: a connection is decided once, when it
 * opens. A refused packet is dropped (the peer's connect times out, as behind a firewall) and
 * reported; an alerted one passes and is reported. What could not be reported (the ring was
 * full) is counted, never waited for.
 *
 * The protocol and local port come from the socket the packet is delivered to, the peer from the
 * packet's IP header: skb->data is the network header here.
 *
 * UAPI headers only: no CO-RE relocations.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

#define RAMPART_ETH_P_IP 0x0800
#define RAMPART_ETH_P_IPV6 0x86DD
#define RAMPART_TCP_LISTEN 10
#define RAMPART_SOCK_STREAM 1
#define RAMPART_SOCK_DGRAM 2
#define RAMPART_SOCK_RAW 3
#define RAMPART_IPPROTO_ICMP 1
#define RAMPART_IPPROTO_ICMPV6 58
#define RAMPART_IPPROTO_TCP 6
#define RAMPART_IPPROTO_UDP 17
#define RAMPART_IPPROTO_UDPLITE 136

/* Must match ingress_guard.rs. */
#define PROTO_TCP 1
#define PROTO_UDP 2
#define PROTO_RAW 3
#define VERDICT_ALERT 1
#define VERDICT_BLOCK 2
#define MAX_CELLS4 128
#define MAX_CELLS6 64
#define MAX_CGROUP_DEPTH 16

/* Addresses in host byte order: a range compares as numbers. */
struct cell4 {
	__u32 first;
	__u32 last;
	__u16 port_first;
	__u16 port_last;
	__u8 proto;
	__u8 verdict;
	__u16 pad;
};

struct cell6 {
	__u64 first_hi;
	__u64 first_lo;
	__u64 last_hi;
	__u64 last_lo;
	__u16 port_first;
	__u16 port_last;
	__u8 proto;
	__u8 verdict;
	__u16 pad;
};

struct table {
	__u32 n4;
	__u32 n6;
	struct cell4 v4[MAX_CELLS4];
	struct cell6 v6[MAX_CELLS6];
};

/* The table of each guarded cgroup v2, by cgroup id. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, struct table);
} tables SEC(".maps");

/* Must match RawEvent in ingress_guard.rs (40 bytes). */
struct event {
	__u64 cgroup_id;
	__u32 addr[4];	/* the peer, network byte order; IPv4 in addr[0] */
	__u16 family;	/* 4 or 6 */
	__u16 port;	/* local port, host order */
	__u8 proto;
	__u8 verdict;
	__u16 pad;
	__u64 time_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/*
 * Per CPU: [0] events written, [1] events dropped (ring full), [2] packets refused,
 * [3] packets of a guarded cgroup with no table (refused: attached means decided).
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *n = bpf_map_lookup_elem(&counts, &which);

	if (n)
		*n += 1;
}

/* The socket's own cgroup's table, else the nearest ancestor's (a cgroup the container made). */
static __always_inline struct table *find_table(struct __sk_buff *skb, __u64 *cgroup)
{
	__u64 id = bpf_skb_cgroup_id(skb);
	struct table *t = bpf_map_lookup_elem(&tables, &id);
	int level;

	*cgroup = id;
	if (t)
		return t;
	for (level = MAX_CGROUP_DEPTH; level > 0; level--) {
		id = bpf_skb_ancestor_cgroup_id(skb, level);
		if (!id)
			continue;
		t = bpf_map_lookup_elem(&tables, &id);
		if (t) {
			*cgroup = id;
			return t;
		}
	}
	return 0;
}

static __always_inline __u8 decide4(struct table *t, __u32 addr, __u16 port, __u8 proto)
{
	int i;

	for (i = 0; i < MAX_CELLS4; i++) {
		struct cell4 *c = &t->v4[i];

		if (i >= t->n4)
			break;
		if (c->proto == proto && addr >= c->first && addr <= c->last &&
		    port >= c->port_first && port <= c->port_last)
			return c->verdict;
	}
	return 0;
}

static __always_inline int le128(__u64 ahi, __u64 alo, __u64 bhi, __u64 blo)
{
	return ahi < bhi || (ahi == bhi && alo <= blo);
}

static __always_inline __u8 decide6(struct table *t, __u64 hi, __u64 lo, __u16 port, __u8 proto)
{
	int i;

	for (i = 0; i < MAX_CELLS6; i++) {
		struct cell6 *c = &t->v6[i];

		if (i >= t->n6)
			break;
		if (c->proto == proto && le128(c->first_hi, c->first_lo, hi, lo) &&
		    le128(hi, lo, c->last_hi, c->last_lo) && port >= c->port_first &&
		    port <= c->port_last)
			return c->verdict;
	}
	return 0;
}

static __always_inline void report(__u64 cgroup, __u32 *addr, __u16 family, __u16 port,
				   __u8 proto, __u8 verdict)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		count(1);
		return;
	}
	e->cgroup_id = cgroup;
	e->addr[0] = addr[0];
	e->addr[1] = addr[1];
	e->addr[2] = addr[2];
	e->addr[3] = addr[3];
	e->family = family;
	e->port = port;
	e->proto = proto;
	e->verdict = verdict;
	e->pad = 0;
	e->time_ns = bpf_ktime_get_ns();
	bpf_ringbuf_submit(e, 0);
	count(0);
}

SEC("cgroup_skb/ingress")
int rampart_ingress(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	__u32 addr[4] = {};
	__u16 family, port;
	__u8 proto, verdict;
	struct table *t;
	__u64 cgroup;

	if (!sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return 1;
	if (sk->type == RAMPART_SOCK_STREAM && sk->protocol == RAMPART_IPPROTO_TCP) {
		if (sk->state != RAMPART_TCP_LISTEN)
			return 1;
		proto = PROTO_TCP;
		port = (__u16)sk->src_port;
	} else if (sk->type == RAMPART_SOCK_DGRAM && (sk->protocol == RAMPART_IPPROTO_UDP ||
						       sk->protocol == RAMPART_IPPROTO_UDPLITE)) {
		proto = PROTO_UDP;
		port = (__u16)sk->src_port;
	} else if (sk->type == RAMPART_SOCK_RAW ||
		   (sk->type == RAMPART_SOCK_DGRAM && (sk->protocol == RAMPART_IPPROTO_ICMP ||
						       sk->protocol == RAMPART_IPPROTO_ICMPV6))) {
		/* Raw IP sockets and ICMP echo ("ping") sockets: the policy's `raw`. */
		proto = PROTO_RAW;
		port = 0;
	} else {
		/* SCTP and other protocols are not decided here (docs/enforcement.md). */
		return 1;
	}

	t = find_table(skb, &cgroup);
	if (!t) {
		count(3);
		return 0;
	}
	if (skb->protocol == bpf_htons(RAMPART_ETH_P_IP)) {
		if (bpf_skb_load_bytes(skb, 12, &addr[0], 4))
			goto unreadable;
		family = 4;
		verdict = decide4(t, bpf_ntohl(addr[0]), port, proto);
	} else if (skb->protocol == bpf_htons(RAMPART_ETH_P_IPV6)) {
		__u64 hi, lo;

		if (bpf_skb_load_bytes(skb, 8, addr, 16))
			goto unreadable;
		if (addr[0] == 0 && addr[1] == 0 && addr[2] == bpf_htonl(0x0000ffff)) {
			/* ::ffff:a.b.c.d is the IPv4 host a.b.c.d, as the policy decides it. */
			addr[0] = addr[3];
			addr[3] = 0;
			addr[2] = 0;
			family = 4;
			verdict = decide4(t, bpf_ntohl(addr[0]), port, proto);
		} else {
			hi = ((__u64)bpf_ntohl(addr[0]) << 32) | bpf_ntohl(addr[1]);
			lo = ((__u64)bpf_ntohl(addr[2]) << 32) | bpf_ntohl(addr[3]);
			family = 6;
			verdict = decide6(t, hi, lo, port, proto);
		}
	} else {
		return 1;
	}
	if (!verdict)
		return 1;
	report(cgroup, addr, family, port, proto, verdict);
	if (verdict == VERDICT_BLOCK) {
		count(2);
		return 0;
	}
	return 1;

unreadable:
	/* A packet whose source can't be read can't be shown allowed. */
	count(2);
	return 0;
}
