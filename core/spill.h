/* spill.h — an append-only byte buffer that stays in memory up to a limit
 * and moves to an anonymous temporary file beyond it. The writer keeps its
 * index and filter here, so its memory does not grow with the table. */
#ifndef SST_SPILL_H
#define SST_SPILL_H

#include <stddef.h>
#include <stdint.h>

typedef struct sst_spill {
  uint8_t *mem;
  size_t len, cap, limit;
  int fd; /* -1 until the buffer spills */
  uint64_t size;
  char *dir;
} sst_spill;

/* Temporary files go in dir (NULL: $TMPDIR, else /tmp). 0 or ENOMEM. */
int sst_spill_init(sst_spill *s, const char *dir, size_t mem_limit);
/* 0 or an errno value. */
int sst_spill_write(sst_spill *s, const void *data, size_t len);
/* Hands every byte written so far, in order, to sink; stops at the first
 * non-zero return of sink and returns it. */
int sst_spill_drain(sst_spill *s,
                    int (*sink)(void *ctx, const void *data, size_t len),
                    void *ctx);
void sst_spill_free(sst_spill *s);

/* An unlinked temporary file in dir (NULL: $TMPDIR, else /tmp).
 * Returns the fd or -errno. */
int sst_temp_fd(const char *dir);

/* write(2) until done; 0 or an errno value. */
int sst_write_all(int fd, const void *data, size_t len);

/* A size as the sst tool and sstfs's options read it: a byte count with
 * an optional K, M, G or T suffix (powers of 1024), such as 64M. 0, or
 * EINVAL when arg is not one or does not fit in 64 bits. */
int sst_parse_size(const char *arg, uint64_t *out);

/* pread(2) of len bytes at off until done; 0, an errno value, or
 * SST_ETRUNCATED if the file ends first. */
int sst_pread_all(int fd, void *buf, size_t len, uint64_t off);

/* Buffers kept per thread from one call to the next, one of each kind a
 * thread, grown as needed and freed when the thread ends: allocating
 * large ones per call maps and unmaps them (the daemon maps every buffer
 * of 32 KiB and more), and each munmap interrupts every CPU. */
enum sst_thread_buf_kind {
  SST_TBUF_VALUE, /* sst_reader_value of a value stored apart */
  SST_TBUF_REPLY, /* the daemon's reply to a listing or a read */
  SST_TBUF_BLOCK, /* the key block of a lookup or of xattrs */
  SST_TBUF_KINDS
};
/* The calling thread's buffer of that kind, at least size bytes (its
 * bytes are those of the last use, or unset). NULL when out of memory.
 * A buffer larger than SST_TBUF_KEEP is not kept for long: it is freed
 * by sst_thread_buf_done or by the thread's next call that needs no more
 * than SST_TBUF_KEEP, so that the memory a thread holds between calls
 * stays small however large one request was. */
#define SST_TBUF_KEEP (256u << 10)
void *sst_thread_buf(enum sst_thread_buf_kind kind, size_t size);
/* Ends a use of the thread's buffer of that kind: frees it if it is
 * larger than SST_TBUF_KEEP. */
void sst_thread_buf_done(enum sst_thread_buf_kind kind);

#endif
