/*
 * continue-supervisor: the floor of seccomp user-notify latency, for bench/seccomp-latency.sh.
 * Serves an OCI seccomp listenerPath like rampart-seccomp does (runc connects, sends its state
 * JSON with the notify fd attached), and answers every notification with CONTINUE: no argument
 * reading, no policy, no emulation. One thread per notify fd, with
 * SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP set, waiting in poll() and then taking the notification with
 * RECV, as the agent's supervisor does. On SIGTERM it prints how many fds had the flag set.
 *
 * For experiments: FLOOR_WAIT=recv waits in RECV itself (no poll), FLOOR_SYNC=0 leaves the flag
 * off.
 *
 *   gcc -O2 -pthread -o continue-supervisor bench/continue-supervisor.c
 *   continue-supervisor SOCKET          (prints the number of handoffs and answers on SIGTERM)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

static atomic_ulong handoffs, answers, sync_set;
static const char *sock_path;
/* FLOOR_WAIT=recv: wait in SECCOMP_IOCTL_NOTIF_RECV instead of poll() then RECV. */
static int blocking_recv;
/* FLOOR_SYNC=0: leave SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP off, to see what it is worth. */
static int sync_wakeup = 1;

static void on_term(int sig) {
  (void)sig;
  char buf[256];
  int n = snprintf(buf, sizeof buf, "handoffs %lu\nsync-wake-up %lu\nanswers %lu\nwait %s\n",
                   atomic_load(&handoffs), atomic_load(&sync_set), atomic_load(&answers),
                   blocking_recv ? "recv" : "poll");
  if (write(1, buf, (size_t)n) < 0) {
  }
  unlink(sock_path);
  _exit(0);
}

/* Whether every task of the filter is gone (the fd polls POLLHUP), without waiting. */
static int hung_up(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  return poll(&p, 1, 0) == 1 && (p.revents & POLLHUP) && !(p.revents & POLLIN);
}

static void *serve(void *arg) {
  int fd = (int)(intptr_t)arg;
  struct seccomp_notif req;
  struct seccomp_notif_resp resp;
  for (;;) {
    if (!blocking_recv) {
      struct pollfd p = {.fd = fd, .events = POLLIN};
      if (poll(&p, 1, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (!(p.revents & POLLIN)) break; /* POLLHUP: every task of the filter is gone */
    }
    memset(&req, 0, sizeof req);
    /* Blocking mode waits in RECV itself: one syscall per notification instead of two. RECV
     * returns ENOENT when the filter has no tasks left (and when a task died before we took its
     * notification): tell the two apart with a poll that doesn't wait. */
    if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOENT) {
        if (blocking_recv && hung_up(fd)) break;
        continue;
      }
      break;
    }
    memset(&resp, 0, sizeof resp);
    resp.id = req.id;
    resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    if (ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp) == 0) atomic_fetch_add(&answers, 1);
  }
  close(fd);
  return NULL;
}

/* Reads runc's state JSON and takes the fd that came with it. The JSON names the fds (only
 * "seccompFd" in practice), so the first fd received is the notify fd. */
static void handoff(int conn) {
  char buf[65536];
  char ctrl[CMSG_SPACE(sizeof(int) * 4)];
  struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl,
                       .msg_controllen = sizeof ctrl};
  ssize_t n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
  close(conn);
  if (n <= 0) return;
  int fd = -1;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int nfds = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      int *fds = (int *)CMSG_DATA(c);
      for (int i = 0; i < nfds; i++) {
        if (fd < 0) fd = fds[i];
        else close(fds[i]);
      }
    }
  }
  if (fd < 0) {
    fprintf(stderr, "continue-supervisor: a connection carried no fd\n");
    return;
  }
  /* The flag is the ioctl's value, not a pointer to it. Best effort (kernel >= 6.6). */
  if (sync_wakeup) {
    if (ioctl(fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP) < 0)
      fprintf(stderr, "continue-supervisor: SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: %s\n",
              strerror(errno));
    else
      atomic_fetch_add(&sync_set, 1);
  }
  atomic_fetch_add(&handoffs, 1);
  pthread_t t;
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&t, &a, serve, (void *)(intptr_t)fd) != 0) {
    fprintf(stderr, "continue-supervisor: pthread_create failed\n");
    close(fd);
  }
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: continue-supervisor SOCKET\n");
    return 2;
  }
  sock_path = argv[1];
  const char *w = getenv("FLOOR_WAIT");
  blocking_recv = w && !strcmp(w, "recv");
  const char *sy = getenv("FLOOR_SYNC");
  sync_wakeup = !(sy && !strcmp(sy, "0"));
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(sock_path) >= sizeof sa.sun_path) {
    fprintf(stderr, "continue-supervisor: socket path too long\n");
    return 2;
  }
  strcpy(sa.sun_path, sock_path);
  unlink(sock_path);
  if (bind(s, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(s, 64) < 0) {
    perror("continue-supervisor: bind");
    return 1;
  }
  chmod(sock_path, 0600);
  fprintf(stderr, "continue-supervisor: serving %s\n", sock_path);
  for (;;) {
    int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR) continue;
      perror("continue-supervisor: accept");
      return 1;
    }
    handoff(c);
  }
}
