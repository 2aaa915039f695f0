/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * A sensor's loss accounting: what it wrote to its ring and what the full ring could not take,
 * per CPU, and what it could not take per cgroup (what `rampartctl status` shows per workload).
 * Nothing is ever waited for.
 */
#ifndef RAMPART_RING_COUNTS_H
#define RAMPART_RING_COUNTS_H

/* [0]: events written, [1]: events dropped (the ring was full); per CPU, summed by the reader. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u64);
} dropped_by_cgroup SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *n = bpf_map_lookup_elem(&counts, &which);

	if (n)
		*n += 1;
}

static __always_inline void count_written(void)
{
	count(0);
}

static __always_inline void count_dropped(__u64 cgroup)
{
	__u64 one = 1, *n = bpf_map_lookup_elem(&dropped_by_cgroup, &cgroup);

	count(1);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&dropped_by_cgroup, &cgroup, &one, BPF_NOEXIST);
}

/*
 * A reader woken for every event costs a context switch each: under a burst of connects that is
 * most of the flow sensor's cost. Its events are submitted without a wakeup until a sixteenth of
 * the ring is waiting; the reader also drains the ring at every poll timeout (ring.rs), so an
 * event waits at most that long.
 */
#define RAMPART_SUBMIT_FLAGS(ring, ring_bytes)                                                    \
	(bpf_ringbuf_query(&(ring), BPF_RB_AVAIL_DATA) >= (ring_bytes) / 16 ? BPF_RB_FORCE_WAKEUP \
									      : BPF_RB_NO_WAKEUP)

#endif
