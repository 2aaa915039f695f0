/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * The few kernel structures rampart's sensors read, each field CO-RE-relocated
 * (preserve_access_index): libbpf finds its offset in the running kernel's BTF at load, so the
 * programs don't depend on one kernel's layout. Only the fields used are declared.
 */
#ifndef RAMPART_KERNEL_TYPES_H
#define RAMPART_KERNEL_TYPES_H

struct task_struct {
	int pid;
	int tgid;
	struct task_struct *real_parent;
} __attribute__((preserve_access_index));

struct linux_binprm {
	const char *filename;
} __attribute__((preserve_access_index));

#endif
