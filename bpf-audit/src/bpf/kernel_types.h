/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * The few kernel structures rampart's sensors read, each field CO-RE-relocated
 * (preserve_access_index): libbpf finds its offset in the running kernel's BTF at load, so the
 * programs don't depend on one kernel's layout. Only the fields used are declared.
 */
#ifndef RAMPART_KERNEL_TYPES_H
#define RAMPART_KERNEL_TYPES_H

struct super_block {
	unsigned long s_magic;
	unsigned int s_dev;
} __attribute__((preserve_access_index));

struct qstr {
	const unsigned char *name;
} __attribute__((preserve_access_index));

struct dentry {
	struct qstr d_name;
	struct super_block *d_sb;
} __attribute__((preserve_access_index));

struct inode {
	struct super_block *i_sb;
	unsigned long i_ino;
	unsigned int i_nlink;
} __attribute__((preserve_access_index));

struct path {
	struct dentry *dentry;
} __attribute__((preserve_access_index));

struct file {
	struct path f_path;
	struct inode *f_inode;
} __attribute__((preserve_access_index));

struct fs_struct {
	struct path root;
} __attribute__((preserve_access_index));

struct mm_struct {
	unsigned long arg_start;
	unsigned long arg_end;
} __attribute__((preserve_access_index));

struct task_struct {
	int pid;
	int tgid;
	struct task_struct *real_parent;
	struct fs_struct *fs;
	struct mm_struct *mm;
} __attribute__((preserve_access_index));

struct linux_binprm {
	struct file *file;
	const char *filename;
} __attribute__((preserve_access_index));

/* overlayfs's inode around the VFS one: an upper dentry means the file is in the upper layer. */
struct ovl_inode {
	struct inode vfs_inode;
	struct dentry *__upperdentry;
} __attribute__((preserve_access_index));

/* Sockets, for the flow sensor: the connection's addresses and the cgroup that made it. */
struct in6_addr {
	union {
		unsigned char u6_addr8[16];
	} in6_u;
} __attribute__((preserve_access_index));

struct sock_common {
	unsigned int skc_daddr;
	unsigned int skc_rcv_saddr;
	unsigned short skc_dport;
	unsigned short skc_num;
	unsigned short skc_family;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct kernfs_node {
	unsigned long long id;
} __attribute__((preserve_access_index));

struct cgroup {
	struct kernfs_node *kn;
} __attribute__((preserve_access_index));

struct sock_cgroup_data {
	struct cgroup *cgroup;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	unsigned short sk_protocol;
	struct sock_cgroup_data sk_cgrp_data;
} __attribute__((preserve_access_index));

/* The local port as bound (skc_num is cleared when the port is released, before the close). */
struct inet_sock {
	unsigned short inet_sport;
} __attribute__((preserve_access_index));

struct tcp_sock {
	unsigned long long bytes_received;
	unsigned long long bytes_acked;
} __attribute__((preserve_access_index));

#endif
