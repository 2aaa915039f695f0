// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * rampart connect guard: the in-kernel backstop for the seccomp agent's connect/sendto/sendmsg
 * decisions. The agent reads the destination from the task's memory, approves it for the calling
 * thread (approvals map), then lets the syscall continue. The kernel re-reads the sockaddr, so
 * these cgroup sock_addr programs check the address the kernel actually uses: a connect() or an
 * unconnected UDP send from a protected cgroup passes only if the calling thread holds an
 * unexpired approval for exactly that destination (family, address, port).
 *
 * UAPI headers only (struct bpf_sock_addr from <linux/bpf.h>): no vmlinux.h, no CO-RE relocations.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

#define RAMPART_AF_INET 2
#define RAMPART_AF_INET6 10

/* Must match ApprovalKey in connect_guard.rs (24 bytes, no padding). */
struct approval_key {
	__u32 tid;       /* bpf_get_current_pid_tgid() low 32 bits (host pid namespace) */
	__u16 family;    /* AF_INET or AF_INET6 */
	__u16 port;      /* network byte order, as in ctx->user_port */
	__u32 addr[4];   /* network byte order; IPv4 in addr[0], the rest zero */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct approval_key);
	__type(value, __u64); /* absolute expiry, CLOCK_MONOTONIC ns (bpf_ktime_get_ns) */
} approvals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} denials SEC(".maps");

static __always_inline int deny(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&denials, &zero);

	if (n)
		__sync_fetch_and_add(n, 1);
	return 0;
}

/* 1 if the key names an unexpired approval; an expired one is removed. */
static __always_inline int approved(struct approval_key *key)
{
	__u64 *expiry = bpf_map_lookup_elem(&approvals, key);

	if (!expiry)
		return 0;
	if (*expiry > bpf_ktime_get_ns())
		return 1;
	bpf_map_delete_elem(&approvals, key);
	return 0;
}

static __always_inline int check4(struct bpf_sock_addr *ctx)
{
	struct approval_key key = {};

	key.tid = (__u32)bpf_get_current_pid_tgid();
	key.family = RAMPART_AF_INET;
	key.port = (__u16)ctx->user_port;
	key.addr[0] = ctx->user_ip4;
	return approved(&key) ? 1 : deny();
}

static __always_inline int check6(struct bpf_sock_addr *ctx)
{
	struct approval_key key = {};
	__u32 a0 = ctx->user_ip6[0], a1 = ctx->user_ip6[1];
	__u32 a2 = ctx->user_ip6[2], a3 = ctx->user_ip6[3];

	key.tid = (__u32)bpf_get_current_pid_tgid();
	key.port = (__u16)ctx->user_port;
	if (a0 == 0 && a1 == 0 && a2 == bpf_htonl(0x0000ffff)) {
		/* ::ffff:a.b.c.d: the agent decides it as the IPv4 address a.b.c.d */
		key.family = RAMPART_AF_INET;
		key.addr[0] = a3;
	} else {
		key.family = RAMPART_AF_INET6;
		key.addr[0] = a0;
		key.addr[1] = a1;
		key.addr[2] = a2;
		key.addr[3] = a3;
	}
	return approved(&key) ? 1 : deny();
}

SEC("cgroup/connect4")
int rampart_connect4(struct bpf_sock_addr *ctx)
{
	return check4(ctx);
}

SEC("cgroup/connect6")
int rampart_connect6(struct bpf_sock_addr *ctx)
{
	return check6(ctx);
}

SEC("cgroup/sendmsg4")
int rampart_sendmsg4(struct bpf_sock_addr *ctx)
{
	return check4(ctx);
}

SEC("cgroup/sendmsg6")
int rampart_sendmsg6(struct bpf_sock_addr *ctx)
{
	return check6(ctx);
}
