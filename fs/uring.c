/* uring.c — FUSE requests through io_uring (see uring.h).
 *
 * The wire format (Linux 6.14, FUSE protocol 7.42): each ring entry is a
 * pair of buffers registered with the /dev/fuse descriptor. The header
 * buffer holds the request's fuse_in_header, its first argument (the
 * operation's fixed-size part, at most 128 bytes) and a small record with
 * the payload length and the request's id; the payload buffer holds the
 * other arguments (names, data). A reply goes back the same way: the
 * fuse_out_header in the header buffer, the reply's arguments in the
 * payload buffer, and one COMMIT_AND_FETCH command that both answers and
 * waits for the next request.
 *
 * libfuse 3.14 knows none of this. It can, though, be given its own read
 * and writev functions (fuse_session_custom_io), and it processes any
 * request buffer handed to it (fuse_session_process_buf). So: the read
 * hook notices whether the kernel's INIT offers io_uring; the writev hook
 * adds the acceptance to libfuse's INIT reply and then starts the queue
 * threads; a queue thread rebuilds each request as /dev/fuse would have
 * delivered it (header, first argument, payload: contiguous, the payload
 * left in place), hands it to libfuse, and catches the reply in the writev
 * hook, which knows the entry from a thread-local pointer.
 */
#include "uring.h"

#define FUSE_USE_VERSION 312

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef SSTFS_HAVE_URING

int sstfs_uring_attach(struct fuse_session *se,
                       void (*log)(const char *fmt, ...)) {
  (void)se, (void)log;
  return 0;
}

uint64_t sstfs_uring_detach(void) { return 0; }

int sstfs_uring_built(void) { return 0; }

#else

#include <liburing.h>
#include <linux/fuse.h>

/* The io_uring part of the protocol, as in Linux's uapi/linux/fuse.h
 * (7.42), which Debian 12's kernel headers predate. */
#define RING_OVER_IO_URING (1ULL << 41)
#define RING_IN_OUT_SZ 128
#define RING_OP_IN_SZ 128
enum { RING_CMD_REGISTER = 1, RING_CMD_COMMIT_AND_FETCH = 2 };

typedef struct ring_ent_in_out {
  uint64_t flags;
  uint64_t commit_id; /* the request's unique id */
  uint32_t payload_sz;
  uint32_t padding;
  uint64_t reserved;
} ring_ent_in_out;

typedef struct ring_req_header {
  char in_out[RING_IN_OUT_SZ]; /* fuse_in_header / fuse_out_header */
  char op_in[RING_OP_IN_SZ];   /* the request's first argument */
  ring_ent_in_out ent;
} ring_req_header;

typedef struct ring_cmd_req {
  uint64_t flags;
  uint64_t commit_id;
  uint16_t qid;
  uint8_t padding[6];
} ring_cmd_req;

_Static_assert(sizeof(ring_ent_in_out) == 32, "fuse_uring_ent_in_out");
_Static_assert(sizeof(ring_cmd_req) == 24, "fuse_uring_cmd_req");
_Static_assert(sizeof(struct fuse_in_header) == 40, "fuse_in_header");

/* Entries per queue. A queue is served by one thread, so a second entry
 * only lets the next request wait in user space instead of the kernel. */
#define DEPTH 2
/* Room before the payload for the header and the first argument. */
#define HEAD_ROOM 4096

typedef struct ent {
  ring_req_header *hdr;
  uint8_t *mem, *payload; /* payload = mem + HEAD_ROOM */
  struct iovec iov[2];
  uint64_t unique;
  int replied, dead;
} ent;

typedef struct queue {
  int qid;
  pthread_t thread;
  int running;
  ent ents[DEPTH];
} queue;

static struct {
  struct fuse_session *se;
  int fd; /* our own duplicate of the session's /dev/fuse descriptor */
  void (*log)(const char *fmt, ...);
  uint64_t init_unique; /* the INIT that offered io_uring, 0 if none */
  size_t payload;       /* payload buffer size the kernel requires */
  queue *q;
  int nq;
  int stop;
  int reg_failed; /* logged once */
  int gave_up;
  uint64_t served;
} U;

static __thread ent *cur; /* the entry whose request this thread serves */

/* The number of CPUs the kernel may ever have (nr_cpu_ids): the kernel
 * wants a queue for each before it uses any. */
static int possible_cpus(void) {
  FILE *f = fopen("/sys/devices/system/cpu/possible", "re");
  int n = 0;
  if (f != NULL) {
    char buf[256];
    if (fgets(buf, sizeof buf, f) != NULL) {
      /* "0-3" or "0,2-5": the last number is the highest id. */
      const char *p = buf + strcspn(buf, "\n");
      while (p > buf && (p[-1] < '0' || p[-1] > '9'))
        p--;
      while (p > buf && p[-1] >= '0' && p[-1] <= '9')
        p--;
      n = atoi(p) + 1;
    }
    fclose(f);
  }
  if (n <= 0) {
    long c = sysconf(_SC_NPROCESSORS_CONF);
    n = c > 0 ? (int)c : 1;
  }
  return n > 1024 ? 1024 : n;
}

/* ------------------------------------------------------------------ */
/* The queue threads.                                                  */

/* Once the kernel uses the rings, a request made on CPU n goes to queue n
 * and nowhere else: a queue that stops serving leaves every later request
 * from that CPU waiting. So a failure there ends the mount (SIGTERM: a
 * staging mount then writes no table and keeps its area for -o resume),
 * and the kernel answers the waiting requests with an error when the
 * connection closes. */
static void give_up(int qid, const char *what, int err) {
  if (__atomic_load_n(&U.stop, __ATOMIC_RELAXED) ||
      __atomic_exchange_n(&U.gave_up, 1, __ATOMIC_RELAXED))
    return;
  U.log("io_uring queue %d: %s: %s; ending the mount", qid, what,
        strerror(err));
  kill(getpid(), SIGTERM);
}

static void prep_cmd(struct io_uring_sqe *sqe, int op, ent *e, uint16_t qid,
                     uint64_t commit_id) {
  io_uring_prep_rw(IORING_OP_URING_CMD, sqe, U.fd, NULL, 0, 0);
  sqe->cmd_op = (uint32_t)op;
  if (op == RING_CMD_REGISTER) {
    sqe->addr = (uint64_t)(uintptr_t)e->iov;
    sqe->len = 2;
  }
  ring_cmd_req *c = (ring_cmd_req *)(void *)sqe->cmd;
  memset(c, 0, sizeof *c);
  c->commit_id = commit_id;
  c->qid = qid;
  io_uring_sqe_set_data(sqe, e);
}

/* Rebuilds the request in front of its payload, has libfuse serve it, and
 * leaves the reply in the entry. */
static void serve(ent *e) {
  ring_req_header *h = e->hdr;
  struct fuse_in_header ih;
  memcpy(&ih, h->in_out, sizeof ih);
  uint32_t psz = h->ent.payload_sz;
  e->unique = ih.unique;
  e->replied = 0;
  if (psz <= U.payload && ih.len >= sizeof ih + psz &&
      ih.len - sizeof ih - psz <= RING_OP_IN_SZ) {
    size_t first = ih.len - sizeof ih - psz;
    uint8_t *start = e->payload - first - sizeof ih;
    memcpy(start, &ih, sizeof ih);
    memcpy(start + sizeof ih, h->op_in, first);
    struct fuse_buf fb = {.size = ih.len, .mem = start};
    cur = e;
    fuse_session_process_buf(U.se, &fb);
    cur = NULL;
    __atomic_add_fetch(&U.served, 1, __ATOMIC_RELAXED);
  }
  if (!e->replied) { /* malformed, or libfuse gave no answer */
    struct fuse_out_header oh = {
        .len = sizeof oh, .error = -EIO, .unique = ih.unique};
    memcpy(h->in_out, &oh, sizeof oh);
    h->ent.payload_sz = 0;
  }
}

static void *queue_main(void *arg) {
  queue *q = arg;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(q->qid, &set);
  /* An offline CPU has no requests to serve: failing to pin is fine. */
  (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set);
  char name[16];
  snprintf(name, sizeof name, "sstfs-uring%d", q->qid);
  pthread_setname_np(pthread_self(), name);
  /* The session's loop takes the signals that end it, even with -s. */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);

  struct io_uring ring;
  struct io_uring_params p = {.flags = IORING_SETUP_SQE128 |
                                       IORING_SETUP_SINGLE_ISSUER |
                                       IORING_SETUP_DEFER_TASKRUN};
  int rc = io_uring_queue_init_params(DEPTH * 2, &ring, &p);
  if (rc == -EINVAL) { /* before Linux 6.1 */
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_SQE128;
    rc = io_uring_queue_init_params(DEPTH * 2, &ring, &p);
  }
  if (rc < 0) {
    if (!__atomic_exchange_n(&U.reg_failed, 1, __ATOMIC_RELAXED))
      U.log("io_uring: %s; requests go through /dev/fuse", strerror(-rc));
    return NULL;
  }
  for (int i = 0; i < DEPTH; i++)
    prep_cmd(io_uring_get_sqe(&ring), RING_CMD_REGISTER, &q->ents[i],
             (uint16_t)q->qid, 0);
  io_uring_submit(&ring);

  int live = DEPTH, served = 0;
  while (live > 0 && !__atomic_load_n(&U.stop, __ATOMIC_RELAXED)) {
    struct io_uring_cqe *cqe;
    struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 200000000};
    /* One system call sends the replies prepared in the last pass and
     * waits for the next requests. */
    rc = io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, NULL);
    if (rc == -ETIME || rc == -EINTR)
      continue;
    if (rc < 0) {
      if (served)
        give_up(q->qid, "sending replies and waiting for requests", -rc);
      else
        U.log("io_uring queue %d: %s; requests go through /dev/fuse", q->qid,
              strerror(-rc));
      break;
    }
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      ent *e = io_uring_cqe_get_data(cqe);
      int res = cqe->res;
      seen++;
      if (res < 0) {
        /* ENOTCONN and friends: the mount is going away. Anything else
         * is a refused registration, which leaves /dev/fuse in use. */
        if (!e->dead) {
          e->dead = 1;
          live--;
        }
        if (res == -ENOTCONN || res == -ECANCELED || res == -ENODEV ||
            res == -ECONNABORTED)
          continue;
        if (e->unique != 0) /* a reply, not a registration */
          give_up(q->qid, "the kernel refused a reply", -res);
        else if (!__atomic_exchange_n(&U.reg_failed, 1, __ATOMIC_RELAXED))
          U.log("io_uring registration refused: %s; requests go through "
                "/dev/fuse",
                strerror(-res));
        continue;
      }
      serve(e);
      served = 1;
      /* At most DEPTH commands are ever prepared: never NULL. */
      prep_cmd(io_uring_get_sqe(&ring), RING_CMD_COMMIT_AND_FETCH, e,
               (uint16_t)q->qid, e->hdr->ent.commit_id);
    }
    io_uring_cq_advance(&ring, seen);
  }
  if (io_uring_sq_ready(&ring) > 0 && (rc = io_uring_submit(&ring)) < 0)
    give_up(q->qid, "sending replies", -rc);
  /* Leaving cancels the entries still waiting in the kernel. */
  io_uring_queue_exit(&ring);
  return NULL;
}

static void free_queues(void) {
  for (int i = 0; i < U.nq; i++)
    for (int j = 0; j < DEPTH; j++) {
      free(U.q[i].ents[j].hdr);
      free(U.q[i].ents[j].mem);
    }
  free(U.q);
  U.q = NULL;
  U.nq = 0;
}

static void start_queues(void) {
  int n = possible_cpus();
  U.q = calloc((size_t)n, sizeof *U.q);
  if (U.q == NULL)
    goto fail;
  U.nq = n;
  for (int i = 0; i < n; i++) {
    U.q[i].qid = i;
    for (int j = 0; j < DEPTH; j++) {
      ent *e = &U.q[i].ents[j];
      void *h, *m;
      if (posix_memalign(&h, 64, sizeof *e->hdr) != 0)
        goto fail;
      e->hdr = h;
      if (posix_memalign(&m, 4096, HEAD_ROOM + U.payload) != 0)
        goto fail;
      e->mem = m;
      memset(e->hdr, 0, sizeof *e->hdr);
      e->payload = e->mem + HEAD_ROOM;
      e->iov[0] = (struct iovec){e->hdr, sizeof *e->hdr};
      e->iov[1] = (struct iovec){e->payload, U.payload};
    }
  }
  for (int i = 0; i < n; i++) {
    if (pthread_create(&U.q[i].thread, NULL, queue_main, &U.q[i]) != 0) {
      U.log("io_uring: cannot start a thread; requests go through "
            "/dev/fuse");
      __atomic_store_n(&U.stop, 1, __ATOMIC_RELAXED);
      break;
    }
    U.q[i].running = 1;
  }
  return;
fail:
  U.log("io_uring: out of memory; requests go through /dev/fuse");
  free_queues();
}

/* ------------------------------------------------------------------ */
/* The session's I/O.                                                  */

static ssize_t u_read(int fd, void *buf, size_t len, void *userdata) {
  (void)userdata;
  ssize_t n = read(fd, buf, len);
  if (n >= (ssize_t)(sizeof(struct fuse_in_header) +
                     offsetof(struct fuse_init_in, flags2) + 4)) {
    const struct fuse_in_header *ih = buf;
    if (ih->opcode == FUSE_INIT) {
      const struct fuse_init_in *ii = (const void *)(ih + 1);
      uint64_t flags = ii->flags;
      if (flags & FUSE_INIT_EXT)
        flags |= (uint64_t)ii->flags2 << 32;
      if (flags & RING_OVER_IO_URING)
        __atomic_store_n(&U.init_unique, ih->unique, __ATOMIC_RELAXED);
    }
  }
  return n;
}

/* The reply to the request this thread serves from a ring entry. */
static ssize_t catch_reply(ent *e, const struct iovec *iov, int count) {
  struct fuse_out_header oh;
  memcpy(&oh, iov[0].iov_base, sizeof oh);
  size_t off = 0;
  for (int i = 1; i < count; i++) {
    if (iov[i].iov_len > U.payload - off) { /* cannot happen: the kernel
                                               asks for no more */
      oh.error = -EIO;
      off = 0;
      break;
    }
    memmove(e->payload + off, iov[i].iov_base, iov[i].iov_len);
    off += iov[i].iov_len;
  }
  oh.len = (uint32_t)(sizeof oh + off);
  memcpy(e->hdr->in_out, &oh, sizeof oh);
  e->hdr->ent.payload_sz = (uint32_t)off;
  e->replied = 1;
  return (ssize_t)oh.len;
}

/* libfuse's INIT reply, with io_uring accepted. Starts the queues once the
 * kernel has taken it. */
static ssize_t accept_uring(int fd, const struct iovec *iov) {
  struct fuse_init_out out;
  memcpy(&out, iov[1].iov_base, sizeof out);
  out.flags |= FUSE_INIT_EXT;
  out.flags2 |= (uint32_t)(RING_OVER_IO_URING >> 32);
  /* The kernel refuses entries smaller than its largest request. */
  size_t pages = (out.flags & FUSE_MAX_PAGES) ? out.max_pages : 32;
  long page = sysconf(_SC_PAGESIZE);
  size_t need = pages * (size_t)(page > 0 ? page : 4096);
  if (need < out.max_write)
    need = out.max_write;
  if (need < 8192)
    need = 8192;
  U.payload = need;
  struct iovec v[2] = {iov[0], {&out, sizeof out}};
  ssize_t n = writev(fd, v, 2);
  if (n == (ssize_t)(iov[0].iov_len + sizeof out))
    start_queues();
  return n;
}

static ssize_t u_writev(int fd, struct iovec *iov, int count, void *userdata) {
  (void)userdata;
  if (count >= 1 && iov[0].iov_len == sizeof(struct fuse_out_header)) {
    struct fuse_out_header oh;
    memcpy(&oh, iov[0].iov_base, sizeof oh);
    ent *e = cur;
    if (e != NULL && !e->replied && oh.unique == e->unique)
      return catch_reply(e, iov, count);
    uint64_t init = __atomic_load_n(&U.init_unique, __ATOMIC_RELAXED);
    if (init != 0 && oh.unique == init && oh.error == 0 && count == 2 &&
        iov[1].iov_len == sizeof(struct fuse_init_out)) {
      __atomic_store_n(&U.init_unique, 0, __ATOMIC_RELAXED);
      return accept_uring(fd, iov);
    }
  }
  return writev(fd, iov, count);
}

int sstfs_uring_attach(struct fuse_session *se,
                       void (*log)(const char *fmt, ...)) {
  static const struct fuse_custom_io io = {.writev = u_writev, .read = u_read};
  U.se = se;
  U.log = log;
  /* The rings get a descriptor of their own: fuse_unmount() closes the
   * session's while the queue threads may still be answering. */
  U.fd = fcntl(fuse_session_fd(se), F_DUPFD_CLOEXEC, 3);
  if (U.fd < 0) {
    U.se = NULL;
    return -errno;
  }
  int rc = fuse_session_custom_io(se, &io, fuse_session_fd(se));
  if (rc != 0) {
    close(U.fd);
    U.se = NULL;
  }
  return rc;
}

int sstfs_uring_built(void) { return 1; }

uint64_t sstfs_uring_detach(void) {
  __atomic_store_n(&U.stop, 1, __ATOMIC_RELAXED);
  for (int i = 0; i < U.nq; i++)
    if (U.q[i].running)
      pthread_join(U.q[i].thread, NULL);
  free_queues();
  if (U.se != NULL)
    close(U.fd);
  U.se = NULL;
  return __atomic_load_n(&U.served, __ATOMIC_RELAXED);
}

#endif
