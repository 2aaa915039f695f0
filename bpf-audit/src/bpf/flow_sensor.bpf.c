// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * rampart's flow sensor: the TCP connections of watched cgroups as they open (connect
 * established, accept), fail (a connect that never got an answer or was refused) and close (with
 * the bytes each way), from the tp_btf/inet_sock_set_state tracepoint, to a ring buffer. The
 * cgroup is the socket's own (the one that created it; an accepted socket inherits its
 * listener's), so the softirq context the state changes run in does not matter.
 *
 * UDP has no connection to follow: cgroup sock_addr programs on each watched container's cgroup
 * see its sends (sendmsg with an address, connect of a UDP socket) and its receives that ask for
 * the source (recvmsg), and report each (direction, peer, local port) the first time it is seen
 * (an LRU map counts the datagrams after that).
 *
 * Unwatched cgroups cost a cgroup lookup per TCP state change, and nothing for UDP. What could not
 * be written to the ring is counted (dropped), never waited for.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include "kernel_types.h"
#include "ring_counts.h"

char LICENSE[] SEC("license") = "GPL";

/* The ring's size (userspace may set a smaller one, in tests: then the reader's poll timeout
 * is what delivers, see RAMPART_SUBMIT_FLAGS). */
#define RING_BYTES (512 * 1024)
#define RAMPART_AF_INET 2
#define RAMPART_AF_INET6 10
#define RAMPART_IPPROTO_TCP 6
/* include/net/tcp_states.h */
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3
#define TCP_CLOSE 7
#define TCP_LISTEN 10

/* Must match flow_sensor.rs. */
#define FLOW_CONNECTED 1
#define FLOW_ACCEPTED 2
#define FLOW_FAILED 3
#define FLOW_CLOSED 4
#define FLOW_UDP_SENT 5
#define FLOW_UDP_RECEIVED 6
#define RAMPART_IPPROTO_UDP 17

/* Must match RawFlow in flow_sensor.rs (64 bytes). */
struct flow {
	__u64 cgroup_id;
	__u64 bytes_received;	/* CLOSED: in sequence space: the payload, and 1 for the FIN */
	__u64 bytes_acked;	/* CLOSED: the payload, and 1 each for the SYN and FIN acknowledged */
	__u8 local[16];	/* network byte order; IPv4 in the first 4 bytes */
	__u8 remote[16];
	__u16 local_port;	/* host order */
	__u16 remote_port;	/* host order */
	__u16 family;	/* 4 or 6 */
	__u8 kind;	/* FLOW_* */
	__u8 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u8);
} watched SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, RING_BYTES);
} events SEC(".maps");

SEC("tp_btf/inet_sock_set_state")
int rampart_tcp_state(unsigned long long *ctx)
{
	struct sock *sk = (struct sock *)ctx[0];
	int old = (int)ctx[1], new = (int)ctx[2];
	struct flow *f;
	__u64 cgroup;
	__u16 family;
	__u8 kind;

	if (new == TCP_ESTABLISHED && old == TCP_SYN_SENT)
		kind = FLOW_CONNECTED;
	else if (new == TCP_ESTABLISHED && old == TCP_SYN_RECV)
		kind = FLOW_ACCEPTED;
	else if (new == TCP_CLOSE && old == TCP_SYN_SENT)
		kind = FLOW_FAILED;
	else if (new == TCP_CLOSE && old != TCP_SYN_RECV && old != TCP_LISTEN)
		kind = FLOW_CLOSED;
	else
		return 0;
	if (BPF_CORE_READ(sk, sk_protocol) != RAMPART_IPPROTO_TCP)
		return 0;
	cgroup = BPF_CORE_READ(sk, sk_cgrp_data.cgroup, kn, id);
	if (!bpf_map_lookup_elem(&watched, &cgroup))
		return 0;
	f = bpf_ringbuf_reserve(&events, sizeof(*f), 0);
	if (!f) {
		count_dropped(cgroup);
		return 0;
	}
	__builtin_memset(f, 0, sizeof(*f));
	f->cgroup_id = cgroup;
	f->kind = kind;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family == RAMPART_AF_INET6) {
		f->family = 6;
		BPF_CORE_READ_INTO(&f->local, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&f->remote, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	} else {
		__u32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 r = BPF_CORE_READ(sk, __sk_common.skc_daddr);

		f->family = 4;
		__builtin_memcpy(f->local, &l, 4);
		__builtin_memcpy(f->remote, &r, 4);
	}
	f->local_port = __builtin_bswap16(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
	f->remote_port = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (kind == FLOW_CLOSED) {
		struct tcp_sock *tp = (struct tcp_sock *)sk;

		f->bytes_received = BPF_CORE_READ(tp, bytes_received);
		f->bytes_acked = BPF_CORE_READ(tp, bytes_acked);
	}
	bpf_ringbuf_submit(f, RAMPART_SUBMIT_FLAGS(events, RING_BYTES));
	count_written();
	return 0;
}

/* A UDP flow: who, which way, with whom. */
struct udp_key {
	__u64 cgroup_id;
	__u8 remote[16];
	__u16 remote_port;
	__u16 local_port;
	__u16 family;
	__u8 kind;
	__u8 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct udp_key);
	__type(value, __u64); /* datagrams (sends and receives: calls) since first seen */
} udp_seen SEC(".maps");

static __always_inline int udp(struct bpf_sock_addr *ctx, __u8 kind, int v6)
{
	struct udp_key key = {};
	__u64 one = 1, *n;
	struct bpf_sock *sk;
	struct flow *f;

	if (ctx->protocol != RAMPART_IPPROTO_UDP)
		return 1;
	key.cgroup_id = bpf_get_current_cgroup_id();
	key.kind = kind;
	key.remote_port = __builtin_bswap16((__u16)ctx->user_port);
	sk = ctx->sk;
	if (sk)
		key.local_port = (__u16)sk->src_port;
	if (v6) {
		__u32 a[4] = {ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3]};

		key.family = 6;
		__builtin_memcpy(key.remote, a, 16);
	} else {
		__u32 a = ctx->user_ip4;

		key.family = 4;
		__builtin_memcpy(key.remote, &a, 4);
	}
	n = bpf_map_lookup_elem(&udp_seen, &key);
	if (n) {
		__sync_fetch_and_add(n, 1);
		return 1;
	}
	bpf_map_update_elem(&udp_seen, &key, &one, BPF_NOEXIST);
	f = bpf_ringbuf_reserve(&events, sizeof(*f), 0);
	if (!f) {
		count_dropped(key.cgroup_id);
		return 1;
	}
	__builtin_memset(f, 0, sizeof(*f));
	f->cgroup_id = key.cgroup_id;
	f->kind = kind;
	f->family = key.family;
	__builtin_memcpy(f->remote, key.remote, 16);
	f->remote_port = key.remote_port;
	f->local_port = key.local_port;
	bpf_ringbuf_submit(f, RAMPART_SUBMIT_FLAGS(events, RING_BYTES));
	count_written();
	return 1;
}

SEC("cgroup/sendmsg4")
int rampart_udp_send4(struct bpf_sock_addr *ctx)
{
	return udp(ctx, FLOW_UDP_SENT, 0);
}

SEC("cgroup/sendmsg6")
int rampart_udp_send6(struct bpf_sock_addr *ctx)
{
	return udp(ctx, FLOW_UDP_SENT, 1);
}

SEC("cgroup/connect4")
int rampart_udp_connect4(struct bpf_sock_addr *ctx)
{
	return udp(ctx, FLOW_UDP_SENT, 0);
}

SEC("cgroup/connect6")
int rampart_udp_connect6(struct bpf_sock_addr *ctx)
{
	return udp(ctx, FLOW_UDP_SENT, 1);
}

SEC("cgroup/recvmsg4")
int rampart_udp_recv4(struct bpf_sock_addr *ctx)
{
	return udp(ctx, FLOW_UDP_RECEIVED, 0);
}

SEC("cgroup/recvmsg6")
int rampart_udp_recv6(struct bpf_sock_addr *ctx)
{
	return udp(ctx, FLOW_UDP_RECEIVED, 1);
}
