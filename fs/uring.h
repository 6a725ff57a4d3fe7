/* uring.h — serve a FUSE session's requests through io_uring.
 *
 * Linux 6.14 and later can pass FUSE requests through io_uring instead of
 * read(2)/writev(2) on /dev/fuse, with one queue per CPU: a request made
 * on CPU n is answered by a thread that runs on CPU n, so neither side
 * waits for the other CPU to wake up. The kernel offers it only when the
 * fuse module's `enable_uring` parameter is set
 * (/sys/module/fuse/parameters/enable_uring).
 *
 * sstfs_uring_attach() takes over the session's I/O. If the kernel offers
 * io_uring in its INIT request, the INIT reply accepts it and one thread
 * per CPU registers its ring entries; from then on the kernel sends
 * requests there. Until then, and for what the kernel never sends through
 * io_uring (FORGET, INTERRUPT), the session's own loop reads /dev/fuse as
 * usual. Requests are handed to libfuse (fuse_session_process_buf), so
 * the file system's callbacks do not change.
 */
#ifndef SSTFS_URING_H
#define SSTFS_URING_H

#include <stdint.h>

struct fuse_session;

/* Called after the session is mounted and before its loop runs. log gets
 * one line per problem. Returns 0, or -errno if the session's I/O could
 * not be taken over (the session then works as before, through
 * /dev/fuse). Built without liburing, it does nothing and returns 0.
 * Once the kernel uses the rings, a queue that fails ends the mount with
 * SIGTERM: requests from its CPU could not be answered otherwise. The
 * queue threads run file system callbacks concurrently with the
 * session's loop, even a single-threaded (-s) one. */
int sstfs_uring_attach(struct fuse_session *se,
                       void (*log)(const char *fmt, ...));

/* Whether sstfs was built with liburing. */
int sstfs_uring_built(void);

/* After the session's loop has returned: stops the threads and frees the
 * rings. Returns how many requests went through io_uring. */
uint64_t sstfs_uring_detach(void);

#endif
