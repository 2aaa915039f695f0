// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * rampart's process sensor: forks, execs and exits of the processes in watched cgroups (the
 * containers a policy scopes), to a ring buffer, from which rampartd keeps a process table: every
 * alert can then say which processes started the one it is about, even those that have exited
 * since. Each exec also says where the executed file is (the image's layers, the upper layer,
 * another filesystem, a memfd, a deleted file) and carries the start of its command line. Threads are not processes here: a clone that shares the thread group, and the
 * exit of a thread that is not its group's leader, are skipped.
 *
 * BTF tracepoints (tp_btf), which load on kernels where fentry and kprobes don't. Unwatched
 * cgroups cost one hash lookup per fork, exec and exit. What could not be written to the ring is
 * counted (dropped), never waited for.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include "kernel_types.h"
#include "ring_counts.h"

char LICENSE[] SEC("license") = "GPL";

#define EVENT_FORK 1
#define EVENT_EXEC 2
#define EVENT_EXIT 3
#define FILENAME_LEN 256
/* The ring's size (userspace may set a smaller one, in tests). */
#define RING_BYTES (1 << 20)
#define ARGS_LEN 256 /* a power of two: the read's length is masked with ARGS_LEN - 1 */

/* Where an executed file is, as far as drift goes. Must match ExecOrigin in process_sensor.rs. */
#define ORIGIN_UNKNOWN 0 /* the root is not an overlayfs: can't tell */
#define ORIGIN_IMAGE 1	 /* the root overlay's lower layers: the image's file */
#define ORIGIN_UPPER 2	 /* the root overlay's upper layer: written after start, or modified */
#define ORIGIN_OTHER_FS 3 /* another filesystem than the root: a volume, a tmpfs */
#define ORIGIN_MEMFD 4
#define ORIGIN_DELETED 5

#define OVERLAYFS_SUPER_MAGIC 0x794c7630
#define TMPFS_MAGIC 0x01021994
#define HUGETLBFS_MAGIC 0x958458f6
#define SIGKILL 9

/* Must match RawEvent in process_sensor.rs (560 bytes, no padding). */
struct event {
	__u32 kind;
	__u32 pid;	/* the process (thread group id) */
	__u32 ppid;	/* its parent process */
	__u32 filename_len;
	__u64 cgroup_id;
	__u64 time_ns;
	__u64 ino;	/* EXEC: the executed file's inode number, */
	__u32 dev;	/* its filesystem (the kernel's dev_t: major << 20 | minor), */
	__u8 origin;	/* ORIGIN_*, */
	__u8 killed;	/* and 1 if the process was killed for it (drift_kill) */
	__u16 args_len; /* EXEC: bytes of args */
	char filename[FILENAME_LEN]; /* EXEC: the name execve was given; a memfd's own name */
	char args[ARGS_LEN];	/* EXEC: the start of its command line, NUL-separated */
};

/* cgroup v2 ids the agent watches (value unused). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u8);
} watched SEC(".maps");

/*
 * Watched cgroups whose policy blocks drift and whose execs no seccomp filter decides: an exec of
 * a file that is not the image's is killed (SIGKILL) before it runs an instruction of its own.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u8);
} drift_kill SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, RING_BYTES);
} events SEC(".maps");

static __always_inline struct event *reserve(__u32 kind, __u64 cgroup)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		count_dropped(cgroup);
		return 0;
	}
	e->kind = kind;
	e->cgroup_id = cgroup;
	e->time_ns = bpf_ktime_get_ns();
	e->filename_len = 0;
	e->ino = 0;
	e->dev = 0;
	e->origin = ORIGIN_UNKNOWN;
	e->killed = 0;
	e->args_len = 0;
	return e;
}

static __always_inline int watching(__u64 *cgroup)
{
	*cgroup = bpf_get_current_cgroup_id();
	return bpf_map_lookup_elem(&watched, cgroup) != 0;
}

static __always_inline void submit(struct event *e)
{
	/* Woken at once, unlike the flow sensor: rampartd names an alert's ancestors from the table
	 * this feeds as the alert arrives, and a process started a moment before must be in it. */
	bpf_ringbuf_submit(e, 0);
	count_written();
}

/* An event with no file name: a fork or an exit. */
static __always_inline void emit(__u32 kind, __u64 cgroup, __u32 pid, __u32 ppid)
{
	struct event *e = reserve(kind, cgroup);

	if (!e)
		return;
	e->pid = pid;
	e->ppid = ppid;
	submit(e);
}

SEC("tp_btf/sched_process_fork")
int rampart_fork(unsigned long long *ctx)
{
	struct task_struct *parent = (struct task_struct *)ctx[0];
	struct task_struct *child = (struct task_struct *)ctx[1];
	__u64 cgroup;

	if (!watching(&cgroup))
		return 0;
	if (child->tgid == parent->tgid)
		return 0; /* a new thread */
	emit(EVENT_FORK, cgroup, child->tgid, parent->tgid);
	return 0;
}

/* Decided on the file the kernel executes, not on its name. */
static __always_inline __u8 origin_of(struct task_struct *p, struct file *file)
{
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	struct super_block *sb = BPF_CORE_READ(inode, i_sb);
	struct super_block *root = BPF_CORE_READ(p, fs, root.dentry, d_sb);
	unsigned long magic = BPF_CORE_READ(sb, s_magic);
	char name[6] = {};

	if (magic == TMPFS_MAGIC || magic == HUGETLBFS_MAGIC) {
		bpf_probe_read_kernel(name, sizeof(name), BPF_CORE_READ(file, f_path.dentry, d_name.name));
		if (name[0] == 'm' && name[1] == 'e' && name[2] == 'm' && name[3] == 'f' &&
		    name[4] == 'd' && name[5] == ':')
			return ORIGIN_MEMFD;
	}
	if (BPF_CORE_READ(inode, i_nlink) == 0)
		return ORIGIN_DELETED;
	if (sb != root)
		return ORIGIN_OTHER_FS;
	if (magic != OVERLAYFS_SUPER_MAGIC)
		return ORIGIN_UNKNOWN;
	if (bpf_core_field_exists(struct ovl_inode, __upperdentry)) {
		struct ovl_inode *oi =
			(void *)inode - bpf_core_field_offset(struct ovl_inode, vfs_inode);

		return BPF_CORE_READ(oi, __upperdentry) ? ORIGIN_UPPER : ORIGIN_IMAGE;
	}
	return ORIGIN_UNKNOWN;
}

SEC("tp_btf/sched_process_exec")
int rampart_exec(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];
	struct linux_binprm *bprm = (struct linux_binprm *)ctx[2];
	struct file *file = BPF_CORE_READ(bprm, file);
	struct event *e;
	__u64 cgroup;
	__u8 origin;
	long n;

	if (!watching(&cgroup))
		return 0;
	origin = origin_of(p, file);
	e = reserve(EVENT_EXEC, cgroup);
	if (origin != ORIGIN_IMAGE && origin != ORIGIN_UNKNOWN &&
	    bpf_map_lookup_elem(&drift_kill, &cgroup)) {
		bpf_send_signal(SIGKILL);
		if (e)
			e->killed = 1;
	}
	if (!e)
		return 0;
	e->pid = p->tgid;
	e->ppid = p->real_parent->tgid;
	e->ino = BPF_CORE_READ(file, f_inode, i_ino);
	e->dev = BPF_CORE_READ(file, f_inode, i_sb, s_dev);
	e->origin = origin;
	if (origin == ORIGIN_MEMFD)
		/* Its own name (memfd:NAME): execveat gives only "/dev/fd/N". */
		n = bpf_probe_read_kernel_str(e->filename, sizeof(e->filename),
					      BPF_CORE_READ(file, f_path.dentry, d_name.name));
	else
		n = bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), bprm->filename);
	e->filename_len = n > 0 ? n - 1 : 0;
	/* The command line now, while it is certain to be there: a short-lived process is gone
	 * before the reader could ask /proc. */
	{
		unsigned long start = BPF_CORE_READ(p, mm, arg_start);
		unsigned long end = BPF_CORE_READ(p, mm, arg_end);
		unsigned long len = end > start ? end - start : 0;

		if (len > ARGS_LEN)
			len = ARGS_LEN;
		if (len && !bpf_probe_read_user(e->args, len & (ARGS_LEN - 1) ?: ARGS_LEN, (void *)start))
			e->args_len = len;
	}
	submit(e);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int rampart_exit(unsigned long long *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];
	__u64 cgroup;

	if (!watching(&cgroup))
		return 0;
	if (p->pid != p->tgid)
		return 0; /* a thread, not its group's leader */
	emit(EVENT_EXIT, cgroup, p->tgid, 0);
	return 0;
}
