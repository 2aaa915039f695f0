/*
 * rampart-probe: bypass attempts and latency measurements that busybox can't make.
 * Built static by scripts/build-images into /usr/local/bin/rampart-probe in the busybox and nginx
 * images. Used by seccomp-agent/tests/bypass.rs, bench/native-speed.sh and bench/seccomp-latency.sh.
 *
 * Bypass subcommands print what happened, "ok <bytes>" when the file's content was read or
 * "err <ERRNO>" when it was refused, and exit 0 if the content was read, 1 if refused
 * (2: usage or setup error):
 *   open PATH                      open(2)
 *   open-path PATH                 open(2) with O_PATH (reports "ok 0" when it got a descriptor)
 *   openat DIRPATH RELPATH         openat(2) relative to a dirfd on DIRPATH
 *   openat2 PATH [in-root|beneath|none]
 *                                  openat2(2); in-root/beneath start from a dirfd on "/"
 *   race PATH DECOY N              a thread flips a shared path buffer between DECOY and PATH while
 *                                  open(buffer) runs N times; counts opens that gave PATH's file
 *   execveat-memfd                 copy /bin/busybox into a memfd and fexecve it as `echo drift`
 *   io_uring PATH                  io_uring_setup + IORING_OP_OPENAT via raw syscalls
 *   hardlink PATH LINK             link(PATH, LINK), then open LINK
 *   link-opath PATH LINK           open(PATH, O_PATH), linkat of /proc/self/fd/N to LINK
 *                                  (AT_SYMLINK_FOLLOW), then open LINK
 *   rename PATH NEW                rename(PATH, NEW), then open NEW
 *   truncate PATH                  truncate(PATH, 0): a write without an open
 *   race-exec ALLOWED DENIED N     N children each execve a path buffer that a second thread
 *                                  flips between ALLOWED and DENIED (up to 50 tries each, argv
 *                                  "x exec-marker"); prints "race-exec allowed A denied D
 *                                  refused R": children that ran ALLOWED (exit 0), ran DENIED
 *                                  (busybox: exit 127), or were refused every time
 *   exec-marker                    exits 0 (what race-exec's allowed exec runs)
 *   race-connect ALLOWED DENIED N  N TCP connects to 127.0.0.1 through one sockaddr whose port a
 *                                  second thread flips between ALLOWED (closed) and DENIED (a
 *                                  listener of the probe's own); prints "race-connect bypass B
 *                                  denied D refused R": connects that reached DENIED, were
 *                                  refused with EPERM, or got ECONNREFUSED from ALLOWED
 *   send HOW IP PORT               HOW = connect (TCP) | sendto | sendmsg | sendmmsg (UDP, one
 *                                  datagram each way of naming the destination); prints
 *                                  "ok HOW" or "err ERRNO HOW"
 *   open32 PATH                    the i386 open(2) through int $0x80 (the 32-bit ABI)
 *   clone-ns                       raw clone(CLONE_NEWUSER) and clone3(CLONE_NEWUSER); prints
 *                                  "clone ok|err ERRNO clone3 ok|err ERRNO"; exit 0 if either made
 *                                  a namespace
 *   unshare-fs                     unshare(CLONE_FS | CLONE_FILES): no namespace, "ok" or "err ERRNO"
 *   raw-udp IP PORT                a UDP datagram built by hand on a SOCK_RAW IPPROTO_UDP socket
 *   packet                         socket(AF_PACKET, SOCK_RAW): "ok packet" or "err ERRNO packet"
 *   memfd-exec-path                copy /bin/busybox into a memfd and execve /proc/self/fd/N
 *                                  (not execveat) as `echo drift`
 *   exec-after-fault ALLOWED PROG [ARGS]
 *                                  an exec of ALLOWED that fails after its file is opened, then
 *                                  an exec of PROG: "first ERRNO", then PROG runs or "err ERRNO"
 *   as-uid UID PROG ARGS...        drop to UID (and gid UID, no supplementary groups), exec PROG
 *   userns-write PATH              unshare(CLONE_NEWUSER), then, with every capability in the new
 *                                  namespace and no exec to lose them, append to PATH
 * Benchmarks print "<name> n N p50 NS p99 NS mean NS" (ns per call, clock_gettime(MONOTONIC)
 * around each call):
 *   bench-open PATH N              open + close of a readable file
 *   bench-open-deny PATH N         open that is refused (any error counts; errors are reported)
 *   bench-open-first DIR N         the first open + close of each of N files: DIR (which must not
 *                                  exist) and N empty files in it are created first, untimed, by
 *                                  mknod (open(O_CREAT) where mknod fails), so that the timed open
 *                                  is the first open of each file; then they are removed, untimed
 *   bench-getpid N                 the raw getpid syscall
 *   bench-exec N                   posix_spawn of "rampart-probe nop" + waitpid
 *   bench-connect IP PORT N        TCP connect (to a closed port: ECONNREFUSED), socket outside
 *   nop                            exits 0 (the exec target of bench-exec)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/io_uring.h>
#include <linux/sched.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <sched.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <grp.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char *ename(int e) {
  const char *n = strerrorname_np(e);
  return n ? n : "E?";
}

static int usage(void) {
  fprintf(stderr,
          "usage: rampart-probe open PATH | open-path PATH | openat DIRPATH RELPATH | openat2 PATH [in-root|beneath|none]\n"
          "       | race PATH DECOY N | execveat-memfd | io_uring PATH | hardlink PATH LINK | open32 PATH\n"
          "       | bench-open PATH N | bench-open-deny PATH N | bench-open-first DIR N\n"
          "       | bench-getpid N | bench-exec N\n"
          "       | bench-connect IP PORT N | nop\n"
          "       | link-opath PATH LINK | rename PATH NEW | truncate PATH | send HOW IP PORT\n"
          "       | race-exec ALLOWED DENIED N | exec-marker | race-connect ALLOWED DENIED N\n"
          "       | clone-ns | raw-udp IP PORT | packet | memfd-exec-path | as-uid UID PROG ARGS...\n"
          "       | userns-write PATH | unshare-fs | exec-after-fault ALLOWED PROG [ARGS]\n");
  return 2;
}

/* Reads fd to the end and reports it: exit status 0 (content read) or 1. */
static int report_fd(int fd, const char *what) {
  char buf[65536];
  long total = 0;
  ssize_t n;
  if (fd < 0) {
    printf("err %s%s%s\n", ename(errno), what ? " " : "", what ? what : "");
    return 1;
  }
  while ((n = read(fd, buf, sizeof buf)) > 0) total += n;
  if (n < 0) {
    printf("err %s read\n", ename(errno));
    close(fd);
    return 1;
  }
  close(fd);
  printf("ok %ld\n", total);
  return 0;
}

static long openat2_raw(int dirfd, const char *path, uint64_t flags, uint64_t resolve) {
  struct open_how how = {.flags = flags, .mode = 0, .resolve = resolve};
  return syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

static int cmd_open(const char *path) { return report_fd(open(path, O_RDONLY | O_CLOEXEC), NULL); }

static int cmd_open_path(const char *path) {
  int fd = open(path, O_PATH | O_CLOEXEC);
  if (fd < 0) {
    printf("err %s\n", ename(errno));
    return 1;
  }
  close(fd);
  printf("ok 0\n");
  return 0;
}

static int cmd_openat(const char *dir, const char *rel) {
  int d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d < 0) {
    printf("err %s opening the directory\n", ename(errno));
    return 2;
  }
  return report_fd(openat(d, rel, O_RDONLY | O_CLOEXEC), NULL);
}

static int cmd_openat2(const char *path, const char *mode) {
  uint64_t resolve = 0;
  int dirfd = AT_FDCWD;
  if (strcmp(mode, "in-root") == 0) resolve = RESOLVE_IN_ROOT;
  else if (strcmp(mode, "beneath") == 0) resolve = RESOLVE_BENEATH;
  else if (strcmp(mode, "none") != 0) return usage();
  if (resolve) {
    dirfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
      printf("err %s opening /\n", ename(errno));
      return 2;
    }
    /* Beneath "/": the path must be relative (an absolute one is EXDEV by design). In-root
     * takes either; give it the same relative path so both modes walk the same way. */
    while (*path == '/') path++;
  }
  return report_fd((int)openat2_raw(dirfd, path, O_RDONLY | O_CLOEXEC, resolve), NULL);
}

/* --- race --- */

#define RACE_BUF 4096
static char race_buf[RACE_BUF];
static char race_a[RACE_BUF], race_b[RACE_BUF];
static size_t race_len;
static atomic_int race_stop;

static void *flipper(void *arg) {
  (void)arg;
  while (!atomic_load_explicit(&race_stop, memory_order_relaxed)) {
    memcpy((void *)race_buf, race_a, race_len);
    __asm__ volatile("" ::: "memory");
    memcpy((void *)race_buf, race_b, race_len);
    __asm__ volatile("" ::: "memory");
  }
  return NULL;
}

static int cmd_race(const char *path, const char *decoy, long n) {
  struct stat target, decoy_st;
  if (stat(path, &target) != 0 || stat(decoy, &decoy_st) != 0) {
    printf("err %s stat\n", ename(errno));
    return 2;
  }
  size_t lp = strlen(path), ld = strlen(decoy);
  race_len = (lp > ld ? lp : ld) + 1;
  if (race_len > RACE_BUF) return usage();
  memset(race_a, 0, sizeof race_a);
  memset(race_b, 0, sizeof race_b);
  memcpy(race_a, decoy, ld);
  memcpy(race_b, path, lp);
  memcpy(race_buf, race_a, race_len);
  pthread_t t;
  if (pthread_create(&t, NULL, flipper, NULL) != 0) {
    printf("err pthread_create\n");
    return 2;
  }
  long hits = 0, decoys = 0, other = 0, refused = 0;
  long hit_bytes = 0;
  char buf[65536];
  for (long i = 0; i < n; i++) {
    int fd = open(race_buf, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      refused++;
      continue;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_dev == target.st_dev && st.st_ino == target.st_ino) {
      ssize_t r;
      while ((r = read(fd, buf, sizeof buf)) > 0) hit_bytes += r;
      hits++;
    } else if (fstat(fd, &st) == 0 && st.st_dev == decoy_st.st_dev && st.st_ino == decoy_st.st_ino) {
      decoys++;
    } else {
      other++;
    }
    close(fd);
  }
  atomic_store(&race_stop, 1);
  pthread_join(t, NULL);
  printf("race n %ld target %ld decoy %ld other %ld refused %ld target_bytes %ld\n", n, hits,
         decoys, other, refused, hit_bytes);
  return hits > 0 ? 0 : 1;
}

/* --- execveat of a memfd --- */

static int busybox_memfd(void);

static int cmd_execveat_memfd(void) {
  int m = busybox_memfd();
  if (m < 0) return 2;
  char *argv[] = {"echo", "drift", NULL};
  fflush(stdout);
  syscall(SYS_execveat, m, "", argv, environ, AT_EMPTY_PATH);
  printf("err %s execveat\n", ename(errno));
  return 1;
}

/* --- io_uring --- */

static int cmd_io_uring(const char *path) {
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  int ring = (int)syscall(SYS_io_uring_setup, 4, &p);
  if (ring < 0) {
    printf("err %s io_uring_setup\n", ename(errno));
    return 1;
  }
  size_t sq_sz = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  size_t cq_sz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  int single = p.features & IORING_FEAT_SINGLE_MMAP;
  if (single) {
    if (cq_sz > sq_sz) sq_sz = cq_sz;
    cq_sz = sq_sz;
  }
  char *sq = mmap(NULL, sq_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring,
                  IORING_OFF_SQ_RING);
  char *cq = single ? sq
                    : mmap(NULL, cq_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring,
                           IORING_OFF_CQ_RING);
  struct io_uring_sqe *sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe),
                                   PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring,
                                   IORING_OFF_SQES);
  if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED) {
    printf("err %s mmap\n", ename(errno));
    return 2;
  }
  unsigned *sq_tail = (unsigned *)(sq + p.sq_off.tail);
  unsigned *sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
  unsigned *sq_array = (unsigned *)(sq + p.sq_off.array);
  unsigned *cq_head = (unsigned *)(cq + p.cq_off.head);
  unsigned *cq_tail = (unsigned *)(cq + p.cq_off.tail);
  unsigned *cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
  struct io_uring_cqe *cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);

  unsigned tail = *sq_tail, idx = tail & *sq_mask;
  struct io_uring_sqe *e = &sqes[idx];
  memset(e, 0, sizeof *e);
  e->opcode = IORING_OP_OPENAT;
  e->fd = AT_FDCWD;
  e->addr = (uint64_t)(uintptr_t)path;
  e->open_flags = O_RDONLY | O_CLOEXEC;
  sq_array[idx] = idx;
  __atomic_store_n(sq_tail, tail + 1, __ATOMIC_RELEASE);
  if (syscall(SYS_io_uring_enter, ring, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0) {
    printf("err %s io_uring_enter\n", ename(errno));
    return 1;
  }
  unsigned head = __atomic_load_n(cq_head, __ATOMIC_ACQUIRE);
  if (head == __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE)) {
    printf("err no completion\n");
    return 2;
  }
  int res = cqes[head & *cq_mask].res;
  __atomic_store_n(cq_head, head + 1, __ATOMIC_RELEASE);
  if (res < 0) {
    printf("err %s IORING_OP_OPENAT\n", ename(-res));
    return 1;
  }
  return report_fd(res, NULL);
}

static int cmd_hardlink(const char *path, const char *link_path) {
  unlink(link_path);
  if (link(path, link_path) != 0) {
    printf("err %s link\n", ename(errno));
    return 1;
  }
  return report_fd(open(link_path, O_RDONLY | O_CLOEXEC), NULL);
}

/* Any open descriptor can get a name: linkat through its /proc/self/fd magic link. An O_PATH
 * open reads nothing, so it is the cheapest descriptor to try it with. */
static int cmd_link_opath(const char *path, const char *link_path) {
  int fd = open(path, O_PATH | O_CLOEXEC);
  if (fd < 0) {
    printf("err %s open-path\n", ename(errno));
    return 1;
  }
  char own[64];
  snprintf(own, sizeof own, "/proc/self/fd/%d", fd);
  if (linkat(AT_FDCWD, own, AT_FDCWD, link_path, AT_SYMLINK_FOLLOW) != 0) {
    printf("err %s linkat\n", ename(errno));
    return 1;
  }
  return report_fd(open(link_path, O_RDONLY | O_CLOEXEC), NULL);
}

static int cmd_rename(const char *path, const char *new_path) {
  if (rename(path, new_path) != 0) {
    printf("err %s rename\n", ename(errno));
    return 1;
  }
  return report_fd(open(new_path, O_RDONLY | O_CLOEXEC), NULL);
}

static int cmd_truncate(const char *path) {
  if (truncate(path, 0) != 0) {
    printf("err %s truncate\n", ename(errno));
    return 1;
  }
  printf("ok truncated\n");
  return 0;
}

/* The 32-bit ABI from this 64-bit process: i386 open is number 5, arguments in ebx, ecx, edx.
 * The path must sit below 4 GiB: a static buffer of this non-PIE static binary does. */
static char path32[4096];

static int cmd_open32(const char *path) {
  if (strlen(path) >= sizeof path32 || (uintptr_t)path32 > 0xffffffffu) return usage();
  strcpy(path32, path);
  long ret;
  __asm__ volatile("int $0x80"
                   : "=a"(ret)
                   : "a"(5L), "b"((long)(uintptr_t)path32), "c"((long)O_RDONLY), "d"(0L)
                   : "memory");
  if (ret < 0) {
    errno = (int)-ret;
    return report_fd(-1, "open (i386)");
  }
  return report_fd((int)ret, NULL);
}

/* --- benchmarks --- */

static inline uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static int bench_report(const char *name, uint64_t *t, long n) {
  if (n <= 0) return usage();
  double sum = 0;
  for (long i = 0; i < n; i++) sum += (double)t[i];
  qsort(t, (size_t)n, sizeof *t, cmp_u64);
  printf("%s n %ld p50 %llu p99 %llu mean %.0f\n", name, n, (unsigned long long)t[n / 2],
         (unsigned long long)t[(n * 99) / 100], sum / (double)n);
  free(t);
  return 0;
}

static uint64_t *alloc_times(long n) {
  uint64_t *t = calloc((size_t)(n > 0 ? n : 1), sizeof *t);
  if (!t) {
    perror("calloc");
    exit(2);
  }
  return t;
}

static int bench_open(const char *path, long n, int expect_deny) {
  uint64_t *t = alloc_times(n);
  long failed = 0;
  int last_errno = 0;
  for (long i = 0; i < n; i++) {
    uint64_t a = now_ns();
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) close(fd);
    else {
      failed++;
      last_errno = errno;
    }
    t[i] = now_ns() - a;
  }
  if (!expect_deny && failed) {
    printf("err %s bench-open: %ld of %ld opens failed\n", ename(last_errno), failed, n);
    return 1;
  }
  if (expect_deny && failed != n) {
    printf("err bench-open-deny: %ld of %ld opens succeeded\n", n - failed, n);
    return 1;
  }
  if (expect_deny) fprintf(stderr, "bench-open-deny: every open failed with %s\n", ename(last_errno));
  return bench_report(expect_deny ? "bench-open-deny" : "bench-open", t, n);
}

/* Names DIR/f<i>; the caller checked that DIR is short enough. */
static void first_path(char *buf, size_t len, const char *dir, long i) {
  snprintf(buf, len, "%s/f%ld", dir, i);
}

static int bench_open_first(const char *dir, long n) {
  char path[4096];
  if (strlen(dir) > sizeof path - 32) return usage();
  if (mkdir(dir, 0755) != 0) {
    printf("err %s mkdir %s (it must not exist)\n", ename(errno), dir);
    return 2;
  }
  long by_open = 0;
  for (long i = 0; i < n; i++) {
    first_path(path, sizeof path, dir, i);
    if (mknod(path, S_IFREG | 0644, 0) == 0) continue;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
      printf("err %s creating %s\n", ename(errno), path);
      return 2;
    }
    close(fd);
    by_open++;
  }
  uint64_t *t = alloc_times(n);
  long failed = 0;
  int last_errno = 0;
  for (long i = 0; i < n; i++) {
    first_path(path, sizeof path, dir, i);
    uint64_t a = now_ns();
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) close(fd);
    else {
      failed++;
      last_errno = errno;
    }
    t[i] = now_ns() - a;
  }
  for (long i = 0; i < n; i++) {
    first_path(path, sizeof path, dir, i);
    unlink(path);
  }
  rmdir(dir);
  if (failed) {
    printf("err %s bench-open-first: %ld of %ld opens failed\n", ename(last_errno), failed, n);
    return 1;
  }
  fprintf(stderr, "bench-open-first: %ld files created by mknod, %ld by open(O_CREAT)\n", n - by_open,
          by_open);
  return bench_report("bench-open-first", t, n);
}

static int bench_getpid(long n) {
  uint64_t *t = alloc_times(n);
  for (long i = 0; i < n; i++) {
    uint64_t a = now_ns();
    syscall(SYS_getpid);
    t[i] = now_ns() - a;
  }
  return bench_report("bench-getpid", t, n);
}

static int bench_exec(long n) {
  uint64_t *t = alloc_times(n);
  char self[4096];
  ssize_t l = readlink("/proc/self/exe", self, sizeof self - 1);
  if (l < 0) strcpy(self, "/usr/local/bin/rampart-probe");
  else self[l] = 0;
  char *argv[] = {"rampart-probe", "nop", NULL};
  for (long i = 0; i < n; i++) {
    pid_t pid;
    int st;
    uint64_t a = now_ns();
    int e = posix_spawn(&pid, self, NULL, NULL, argv, environ);
    if (e != 0) {
      printf("err %s posix_spawn\n", ename(e));
      return 1;
    }
    if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      printf("err the spawned nop failed (status %d)\n", st);
      return 1;
    }
    t[i] = now_ns() - a;
  }
  return bench_report("bench-exec", t, n);
}

static int bench_connect(const char *ip, int port, long n) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) return usage();
  uint64_t *t = alloc_times(n);
  long refused = 0, connected = 0;
  for (long i = 0; i < n; i++) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
      printf("err %s socket\n", ename(errno));
      return 1;
    }
    uint64_t a = now_ns();
    int r = connect(s, (struct sockaddr *)&sa, sizeof sa);
    t[i] = now_ns() - a;
    if (r == 0) connected++;
    else if (errno == ECONNREFUSED) refused++;
    else {
      printf("err %s connect\n", ename(errno));
      return 1;
    }
    close(s);
  }
  fprintf(stderr, "bench-connect: %ld refused, %ld connected\n", refused, connected);
  return bench_report("bench-connect", t, n);
}

static int cmd_send(const char *how, const char *ip, const char *port_s) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port_s))};
  if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) return usage();
  int tcp = !strcmp(how, "connect");
  int s = socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
  if (s < 0) {
    printf("err %s socket\n", ename(errno));
    return 1;
  }
  char data[] = "rampart";
  struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
  struct msghdr mh = {.msg_name = &sa, .msg_namelen = sizeof sa, .msg_iov = &iov, .msg_iovlen = 1};
  struct mmsghdr mm[2] = {{.msg_hdr = mh}, {.msg_hdr = mh}};
  long r;
  if (tcp) r = connect(s, (struct sockaddr *)&sa, sizeof sa);
  else if (!strcmp(how, "sendto")) r = sendto(s, data, sizeof data, 0, (struct sockaddr *)&sa, sizeof sa);
  else if (!strcmp(how, "sendmsg")) r = sendmsg(s, &mh, 0);
  else if (!strcmp(how, "sendmmsg")) r = sendmmsg(s, mm, 2, 0);
  else return usage();
  if (r < 0) {
    printf("err %s %s\n", ename(errno), how);
    return 1;
  }
  printf("ok %s\n", how);
  return 0;
}

/* clone-ns: the child of a clone that made a user namespace exits at once. */
static const char *clone_result(long r, int *made) {
  static char buf[2][64];
  static int i;
  char *b = buf[i++ & 1];
  if (r == 0) _exit(0);
  if (r < 0) {
    snprintf(b, 64, "err %s", ename(errno));
    return b;
  }
  waitpid((pid_t)r, NULL, 0);
  *made = 1;
  return "ok";
}

static int cmd_clone_ns(void) {
  int made = 0;
  long r = syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), NULL, NULL, NULL, NULL);
  const char *c2 = clone_result(r, &made);
  struct clone_args ca;
  memset(&ca, 0, sizeof ca);
  ca.flags = CLONE_NEWUSER;
  ca.exit_signal = SIGCHLD;
  r = syscall(SYS_clone3, &ca, sizeof ca);
  const char *c3 = clone_result(r, &made);
  printf("clone %s clone3 %s\n", c2, c3);
  return made ? 0 : 1;
}

/* raw-udp: the IP and UDP headers written by the probe, so the kernel sees no port. */
static int cmd_raw_udp(const char *ip, const char *port_s) {
  struct sockaddr_in sa = {.sin_family = AF_INET};
  if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) return usage();
  int s = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_UDP);
  if (s < 0) {
    printf("err %s socket\n", ename(errno));
    return 1;
  }
  struct {
    struct udphdr u;
    char data[8];
  } pkt;
  memset(&pkt, 0, sizeof pkt);
  pkt.u.source = htons(40000);
  pkt.u.dest = htons((uint16_t)atoi(port_s));
  pkt.u.len = htons(sizeof pkt);
  memcpy(pkt.data, "rampart", 8);
  if (sendto(s, &pkt, sizeof pkt, 0, (struct sockaddr *)&sa, sizeof sa) < 0) {
    printf("err %s sendto\n", ename(errno));
    return 1;
  }
  printf("ok raw-udp\n");
  return 0;
}

static int cmd_unshare_fs(void) {
  if (unshare(CLONE_FS | CLONE_FILES)) {
    printf("err %s unshare-fs\n", ename(errno));
    return 1;
  }
  printf("ok unshare-fs\n");
  return 0;
}

static int cmd_packet(void) {
  int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
  if (s < 0) {
    printf("err %s packet\n", ename(errno));
    return 1;
  }
  printf("ok packet\n");
  return 0;
}

/* A memfd holding busybox, or -1 (reported). */
static int busybox_memfd(void) {
  int src = open("/bin/busybox", O_RDONLY | O_CLOEXEC);
  if (src < 0) {
    printf("err %s opening /bin/busybox\n", ename(errno));
    return -1;
  }
  int m = (int)syscall(SYS_memfd_create, "drift", 0);
  if (m < 0) {
    printf("err %s memfd_create\n", ename(errno));
    return -1;
  }
  char buf[65536];
  ssize_t r;
  while ((r = read(src, buf, sizeof buf)) > 0)
    if (write(m, buf, (size_t)r) != r) {
      printf("err %s writing the memfd\n", ename(errno));
      return -1;
    }
  close(src);
  return m;
}

static int cmd_as_uid(char **argv) {
  uid_t id = (uid_t)atoi(argv[0]);
  if (setgroups(0, NULL) || setresgid(id, id, id) || setresuid(id, id, id)) {
    printf("err %s dropping to %u\n", ename(errno), id);
    return 2;
  }
  execvp(argv[1], argv + 1);
  printf("err %s exec %s\n", ename(errno), argv[1]);
  return 2;
}

static int cmd_userns_write(const char *path) {
  if (unshare(CLONE_NEWUSER)) {
    printf("err %s unshare\n", ename(errno));
    return 2;
  }
  int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0 || write(fd, "pwned\n", 6) != 6) {
    printf("err %s open\n", ename(errno));
    return 1;
  }
  printf("ok wrote\n");
  return 0;
}

static int cmd_memfd_exec_path(void) {
  int m = busybox_memfd();
  if (m < 0) return 2;
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", m);
  char *argv[] = {"echo", "drift", NULL};
  fflush(stdout);
  execve(path, argv, environ);
  printf("err %s execve\n", ename(errno));
  return 1;
}

/* exec-after-fault ALLOWED PROG [ARGS]: an exec of ALLOWED that fails after the kernel opened
 * the file (argv is an unreadable pointer: EFAULT once the file is open), then an exec of PROG
 * by the same thread: PROG must be decided as a program of its own, not as part of the first. */
static int cmd_exec_after_fault(char **argv) {
  fflush(stdout);
  execve(argv[0], (char *const *)8, environ);
  printf("first %s\n", ename(errno));
  fflush(stdout);
  execve(argv[1], argv + 1, environ);
  printf("err %s execve\n", ename(errno));
  return 1;
}

/* race-exec: the buffer the child execs, and the two paths the flipper writes into it. */
static char exec_buf[4096];
static const char *exec_paths[2];

static void *flip_exec(void *arg) {
  (void)arg;
  size_t len[2] = {strlen(exec_paths[0]) + 1, strlen(exec_paths[1]) + 1};
  for (unsigned i = 0;; i++) memcpy(exec_buf, exec_paths[i & 1], len[i & 1]);
  return NULL;
}

static int cmd_race_exec(const char *allowed, const char *denied, long n) {
  if (strlen(allowed) >= sizeof exec_buf || strlen(denied) >= sizeof exec_buf) return usage();
  exec_paths[0] = allowed;
  exec_paths[1] = denied;
  long ran_allowed = 0, ran_denied = 0, refused = 0, other = 0;
  for (long i = 0; i < n; i++) {
    pid_t pid = fork();
    if (pid < 0) {
      printf("err %s fork\n", ename(errno));
      return 1;
    }
    if (pid == 0) {
      pthread_t t;
      strcpy(exec_buf, allowed);
      if (pthread_create(&t, NULL, flip_exec, NULL) != 0) _exit(101);
      char *argv[] = {"x", "exec-marker", NULL};
      for (int k = 0; k < 50; k++) execve(exec_buf, argv, environ);
      _exit(100);
    }
    int status;
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status)) {
      other++;
      continue;
    }
    switch (WEXITSTATUS(status)) {
      case 0: ran_allowed++; break;
      case 127: ran_denied++; break;
      case 100: refused++; break;
      default: other++;
    }
  }
  printf("race-exec allowed %ld denied %ld refused %ld other %ld\n", ran_allowed, ran_denied,
         refused, other);
  return 0;
}

/* race-connect: the sockaddr both threads share, and the two ports (network order). */
static struct sockaddr_in race_sa;
static uint16_t race_ports[2];

static void *flip_port(void *arg) {
  (void)arg;
  volatile uint16_t *port = &race_sa.sin_port;
  for (unsigned i = 0;; i++) *port = race_ports[i & 1];
  return NULL;
}

static int cmd_race_connect(const char *allowed, const char *denied, long n) {
  int lst = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in la = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(denied))};
  la.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  setsockopt(lst, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (lst < 0 || bind(lst, (struct sockaddr *)&la, sizeof la) != 0 || listen(lst, 4096) != 0) {
    printf("err %s listen\n", ename(errno));
    return 1;
  }
  race_sa.sin_family = AF_INET;
  race_sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  race_ports[0] = htons((uint16_t)atoi(allowed));
  race_ports[1] = la.sin_port;
  race_sa.sin_port = race_ports[0];
  pthread_t t;
  if (pthread_create(&t, NULL, flip_port, NULL) != 0) return 1;
  long bypass = 0, denied_n = 0, refused = 0, other = 0;
  for (long i = 0; i < n; i++) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
      printf("err %s socket\n", ename(errno));
      return 1;
    }
    if (connect(s, (struct sockaddr *)&race_sa, sizeof race_sa) == 0) {
      bypass++;
      int c = accept(lst, NULL, NULL);
      if (c >= 0) close(c);
    } else if (errno == EPERM) denied_n++;
    else if (errno == ECONNREFUSED) refused++;
    else other++;
    close(s);
  }
  printf("race-connect bypass %ld denied %ld refused %ld other %ld\n", bypass, denied_n, refused,
         other);
  return 0;
}

static long num(const char *s) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == 0 || *end != 0 || v <= 0) {
    fprintf(stderr, "rampart-probe: not a positive number: %s\n", s);
    exit(2);
  }
  return v;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) return usage();
  const char *c = argv[1];
  if (!strcmp(c, "nop")) return 0;
  if (!strcmp(c, "open") && argc == 3) return cmd_open(argv[2]);
  if (!strcmp(c, "open-path") && argc == 3) return cmd_open_path(argv[2]);
  if (!strcmp(c, "openat") && argc == 4) return cmd_openat(argv[2], argv[3]);
  if (!strcmp(c, "openat2") && (argc == 3 || argc == 4))
    return cmd_openat2(argv[2], argc == 4 ? argv[3] : "none");
  if (!strcmp(c, "race") && argc == 5) return cmd_race(argv[2], argv[3], num(argv[4]));
  if (!strcmp(c, "execveat-memfd") && argc == 2) return cmd_execveat_memfd();
  if (!strcmp(c, "io_uring") && argc == 3) return cmd_io_uring(argv[2]);
  if (!strcmp(c, "hardlink") && argc == 4) return cmd_hardlink(argv[2], argv[3]);
  if (!strcmp(c, "open32") && argc == 3) return cmd_open32(argv[2]);
  if (!strcmp(c, "link-opath") && argc == 4) return cmd_link_opath(argv[2], argv[3]);
  if (!strcmp(c, "rename") && argc == 4) return cmd_rename(argv[2], argv[3]);
  if (!strcmp(c, "truncate") && argc == 3) return cmd_truncate(argv[2]);
  if (!strcmp(c, "exec-marker")) return 0;
  if (!strcmp(c, "clone-ns") && argc == 2) return cmd_clone_ns();
  if (!strcmp(c, "raw-udp") && argc == 4) return cmd_raw_udp(argv[2], argv[3]);
  if (!strcmp(c, "packet") && argc == 2) return cmd_packet();
  if (!strcmp(c, "unshare-fs") && argc == 2) return cmd_unshare_fs();
  if (!strcmp(c, "memfd-exec-path") && argc == 2) return cmd_memfd_exec_path();
  if (!strcmp(c, "exec-after-fault") && argc >= 4) return cmd_exec_after_fault(argv + 2);
  if (!strcmp(c, "as-uid") && argc >= 4) return cmd_as_uid(argv + 2);
  if (!strcmp(c, "userns-write") && argc == 3) return cmd_userns_write(argv[2]);
  if (!strcmp(c, "race-connect") && argc == 5)
    return cmd_race_connect(argv[2], argv[3], num(argv[4]));
  if (!strcmp(c, "race-exec") && argc == 5)
    return cmd_race_exec(argv[2], argv[3], num(argv[4]));
  if (!strcmp(c, "send") && argc == 5) return cmd_send(argv[2], argv[3], argv[4]);
  if (!strcmp(c, "bench-open") && argc == 4) return bench_open(argv[2], num(argv[3]), 0);
  if (!strcmp(c, "bench-open-deny") && argc == 4) return bench_open(argv[2], num(argv[3]), 1);
  if (!strcmp(c, "bench-open-first") && argc == 4) return bench_open_first(argv[2], num(argv[3]));
  if (!strcmp(c, "bench-getpid") && argc == 3) return bench_getpid(num(argv[2]));
  if (!strcmp(c, "bench-exec") && argc == 3) return bench_exec(num(argv[2]));
  if (!strcmp(c, "bench-connect") && argc == 5)
    return bench_connect(argv[2], (int)num(argv[3]), num(argv[4]));
  return usage();
}
