/* source.h — where a reader's bytes come from: positioned reads over a
 * local file or over HTTP(S) ranges (http.c). The reader reads through a
 * source and nothing else, so that every part of the library (lookups,
 * iterators, verify, the mount) works on both.
 *
 * A local file is also mapped by the reader (the fast path); a source
 * only adds its descriptor, which sst_src_pread reads with pread(2). A
 * remote source has no descriptor and no mapping: sst_src_pread serves
 * the bytes from the source's own bounded cache or fetches them. */
#ifndef SST_SOURCE_H
#define SST_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "sstable.h"

typedef struct sst_src sst_src;

struct sst_src_ops {
  int (*pread)(sst_src *s, void *buf, size_t len, uint64_t off);
  void (*close)(sst_src *s);
  void (*hint)(sst_src *s, uint64_t off, uint64_t len);  /* or NULL */
  void (*value)(sst_src *s, uint64_t off, uint64_t len); /* or NULL */
};

struct sst_src {
  const struct sst_src_ops *ops; /* NULL for a local file */
  char *name;                    /* the path or URL, for messages */
  uint64_t size;
  int fd;             /* a local file's descriptor; -1 for a remote one */
  int64_t mtime_sec;  /* last modification, when known (else 0) */
  char identity[128]; /* what pins this version: an ETag, or device, inode,
                         size and mtime of a local file */
};

/* 1 if name is an http:// or https:// URL (any case). */
int sst_src_is_url(const char *name);
/* 1 if name is an s3:// URL (any case). */
int sst_src_is_s3(const char *name);

/* s3.c: what an s3://BUCKET/KEY URL resolves to (see s3.c for the
 * environment it reads). */
typedef struct sst_s3 {
  char http_url[4096]; /* the object's address */
  char region[64];
  char key_id[128], secret[256], token[2048];
} sst_s3;
/* 0, or SST_EINVAL (a malformed URL, bucket, region or endpoint) or
 * EACCES (no credentials) with the reason in err. */
int sst_s3_resolve(const char *url, sst_s3 *s3, sst_error *err);

/* Opens name: a URL through http.c (cache_dir, cache_max: see
 * sst_http_open), anything else as a local regular file (not waiting on a
 * FIFO or device, refused with "NAME: not a regular file": EISDIR or
 * SST_ENOTTABLE). 0 or an error set in err. */
int sst_src_open(const char *name, const char *cache_dir, uint64_t cache_max,
                 sst_src **out, sst_error *err);

/* Reads len bytes at off, all or nothing: 0, an errno value (EIO for a
 * remote read that failed after its retries), SST_ETRUNCATED past the end,
 * SST_ECHANGED when a remote object no longer is the version opened.
 * Any number of threads may read at once. */
static inline int sst_src_pread(sst_src *s, void *buf, size_t len,
                                uint64_t off);

/* Says that [off, off + len) will be read, much of it, roughly in order
 * (the reader's key region): a remote source then fetches it in large
 * pieces, several at once, rather than block by block. Nothing for a
 * local file. */
static inline void sst_src_hint(sst_src *s, uint64_t off, uint64_t len) {
  if (s->ops != NULL && s->ops->hint != NULL)
    s->ops->hint(s, off, len);
}

/* Says that a read of the value stored at [off, off + len) begins at its
 * start, its first bytes read next at off: a remote source that then
 * sees reads go on in order takes it for a read of the whole value (cat,
 * cp) and fetches ahead of it in large pieces from the first, rather
 * than growing its window a round trip at a time. Nothing for a local
 * file. */
static inline void sst_src_value(sst_src *s, uint64_t off, uint64_t len) {
  if (s->ops != NULL && s->ops->value != NULL)
    s->ops->value(s, off, len);
}

void sst_src_close(sst_src *s);

/* http.c: opens an http://, https:// or s3:// URL (see sst_src_open),
 * with blocks kept in cache_dir (the reader option) unless it is NULL,
 * which holds at most cache_max bytes of disk (0: 1 GiB); what was used
 * least recently is removed to make room.
 * An s3:// URL is read from its HTTP address with every request signed
 * (SigV4); messages and the cache name the s3:// URL. */
int sst_http_open(const char *url, const char *cache_dir, uint64_t cache_max,
                  sst_src **out, sst_error *err);

int sst_pread_all(int fd, void *buf, size_t len, uint64_t off);

static inline int sst_src_pread(sst_src *s, void *buf, size_t len,
                                uint64_t off) {
  if (s->fd >= 0)
    return sst_pread_all(s->fd, buf, len, off);
  if (off > s->size || len > s->size - off)
    return SST_ETRUNCATED;
  return s->ops->pread(s, buf, len, off);
}

#endif
