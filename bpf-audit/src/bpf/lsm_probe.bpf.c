// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * rampart's BPF LSM probe: the smallest LSM program (file_open, allowing everything), loaded and
 * attached once at start to learn whether this kernel lets BPF LSM programs decide. Kernels
 * without `bpf` in their LSM list, or that refuse the program type, say so here, before any
 * policy would rely on it.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("lsm/file_open")
int rampart_lsm_probe(unsigned long long *ctx)
{
	return 0;
}
