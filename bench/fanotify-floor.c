/* The floor under the file guard's costs on this kernel: what a fanotify permission event costs
 * when the answer takes no time at all, and what a remembered allow (an ignore mark) leaves.
 *
 * On a private tmpfs with N files: a thread answers FAN_OPEN_PERM events on the mount at once
 * (FAN_ALLOW, optionally adding an ignore mark on the inode), while the main thread times
 * open + close:
 *   native      the same files before any mark exists
 *   first       the first open of each file: one event, answered at once
 *   remembered  again, after the answers added ignore marks: no event
 *   marked      again with marks but no ignore marks (a new group): one event each, every time
 * Each measurement is run with the answering thread pinned to the opener's CPU and to the other
 * one, to show what a wakeup across CPUs costs here.
 *
 *   gcc -O2 -pthread -o fanotify-floor bench/fanotify-floor.c && ./fanotify-floor [N]   (root)
 * Prints "name p50 NS p99 NS" lines.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char dir[] = "/run/fanotify-floor.XXXXXX";
static int n_files = 2000;

struct responder {
  int fan;
  int remember;
  int cpu;
};

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void pin(int cpu) {
  cpu_set_t s;
  CPU_ZERO(&s);
  CPU_SET(cpu, &s);
  if (sched_setaffinity(0, sizeof s, &s) != 0) perror("sched_setaffinity");
}

static void *respond(void *arg) {
  struct responder *r = arg;
  if (r->cpu >= 0) pin(r->cpu);
  char buf[4096];
  for (;;) {
    ssize_t n = read(r->fan, buf, sizeof buf);
    if (n <= 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (struct fanotify_event_metadata *m = (void *)buf; FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
      if (m->fd < 0) continue;
      if (r->remember)
        fanotify_mark(r->fan, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK, FAN_OPEN_PERM, m->fd, NULL);
      struct fanotify_response resp = {.fd = m->fd, .response = FAN_ALLOW};
      if (write(r->fan, &resp, sizeof resp) < 0) perror("write response");
      close(m->fd);
    }
  }
  return NULL;
}

static int cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void measure(const char *name, uint64_t *t) {
  char path[256];
  for (int i = 0; i < n_files; i++) {
    snprintf(path, sizeof path, "%s/f%d", dir, i);
    uint64_t a = now_ns();
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      perror(path);
      exit(1);
    }
    close(fd);
    t[i] = now_ns() - a;
  }
  qsort(t, (size_t)n_files, sizeof *t, cmp);
  printf("%s p50 %llu p99 %llu\n", name, (unsigned long long)t[n_files / 2],
         (unsigned long long)t[n_files * 99 / 100]);
}

static int group(void) {
  int fan = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_UNLIMITED_QUEUE, O_RDONLY | O_LARGEFILE);
  if (fan < 0) {
    perror("fanotify_init (root, CONFIG_FANOTIFY_ACCESS_PERMISSIONS)");
    exit(2);
  }
  if (fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_OPEN_PERM, AT_FDCWD, dir) != 0) {
    perror("fanotify_mark");
    exit(2);
  }
  return fan;
}

static void unpin(void) {
  cpu_set_t s;
  CPU_ZERO(&s);
  for (int c = 0; c < CPU_SETSIZE; c++) CPU_SET(c, &s);
  sched_setaffinity(0, sizeof s, &s);
}

/* One answering thread per CPU, each pinned, all reading the same group; the opener runs where
 * the scheduler puts it. */
static void run_per_cpu(long cpus) {
  uint64_t *t = calloc((size_t)n_files, sizeof *t);
  unpin();
  measure("native per-cpu", t);
  struct responder r[64];
  pthread_t th[64];
  int fan = group();
  for (long c = 0; c < cpus && c < 64; c++) {
    r[c] = (struct responder){.fan = fan, .remember = 0, .cpu = (int)c};
    pthread_create(&th[c], NULL, respond, &r[c]);
  }
  usleep(10000);
  measure("marked per-cpu", t);
  for (long c = 0; c < cpus && c < 64; c++) pthread_cancel(th[c]);
  for (long c = 0; c < cpus && c < 64; c++) pthread_join(th[c], NULL);
  close(fan);
  free(t);
}

static void run(int responder_cpu, int opener_cpu, const char *label) {
  uint64_t *t = calloc((size_t)n_files, sizeof *t);
  char name[128];
  pin(opener_cpu);
  snprintf(name, sizeof name, "native %s", label);
  measure(name, t);

  for (int remember = 1; remember >= 0; remember--) {
    struct responder r = {.fan = group(), .remember = remember, .cpu = responder_cpu};
    pthread_t th;
    pthread_create(&th, NULL, respond, &r);
    usleep(10000);
    snprintf(name, sizeof name, "%s %s", remember ? "first" : "marked", label);
    measure(name, t);
    if (remember) {
      snprintf(name, sizeof name, "remembered %s", label);
      measure(name, t);
    }
    /* Nothing is pending (the opens are done): the blocked read is a cancellation point. */
    pthread_cancel(th);
    pthread_join(th, NULL);
    close(r.fan);
  }
  free(t);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc > 1) n_files = atoi(argv[1]);
  if (n_files < 100) n_files = 100;
  if (!mkdtemp(dir) || mount("fanotify-floor", dir, "tmpfs", 0, "size=64m") != 0) {
    perror("mkdtemp/mount tmpfs (root)");
    return 2;
  }
  char path[256];
  for (int i = 0; i < n_files; i++) {
    snprintf(path, sizeof path, "%s/f%d", dir, i);
    int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) {
      perror(path);
      return 2;
    }
    close(fd);
  }
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  run(0, 0, "same-cpu");
  if (cpus > 1) run(1, 0, "other-cpu");
  if (cpus > 1) run_per_cpu(cpus);
  umount2(dir, MNT_DETACH);
  rmdir(dir);
  return 0;
}
