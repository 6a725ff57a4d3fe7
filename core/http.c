/* http.c — a table behind an http:// or https:// URL, or an s3:// one
 * (s3.c: its HTTP address, every request signed with SigV4 by libcurl),
 * read with range requests through libcurl (source.h).
 *
 * Requests:
 *
 *   open     GET Range: bytes=-TAIL_BYTES     the last TAIL_BYTES of the
 *            file (all of a small one): footer, index, properties, filters
 *            and, for most tables, every key block. Its Content-Range
 *            gives the size, its ETag pins the version.
 *   read     GET Range: bytes=A-B, If-Match: ETAG
 *            whole BLOCK_BYTES blocks below the tail, adjacent misses in
 *            one request, more ahead when reads go in order; kept in a
 *            bounded cache of CACHE_BLOCKS blocks.
 *
 * A 412 (or another ETag, or another size) means the object changed: that
 * read and every later one fail with SST_ECHANGED, logged once, and no
 * byte of the new object is ever returned. Timeouts, resets and 5xx are
 * tried again with a growing pause, ATTEMPTS times, then fail with EIO.
 * Nothing a server sends is trusted: every length and range is checked
 * against what was asked.
 *
 * With a cache directory, what is fetched is also kept on disk, one file
 * a block and one for the tail, in DIR/URLHASH/ (a hash of the URL):
 *
 *   tail           the record of the tail
 *   ETAGHASH.N     the record of block N of the version with that ETag
 *
 *   record:  magic "SSTHTTP1" | ETag (100 bytes, NUL-padded) | object
 *            size u64 | offset u64 | length u64 | XXH3-64 of the bytes
 *            u64 | the bytes                        (little-endian)
 *
 * Files are written to a temporary name and renamed, so several mounts
 * may share a directory. A record is used only when all of it matches
 * the version open and its bytes their checksum; else it is fetched
 * again. At open the cached tail's ETag goes out as If-None-Match: a 304
 * answer means the cached tail (and blocks) are the current version,
 * and no byte of the table is sent. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#define XXH_INLINE_ALL /* compiled in: no libxxhash to load or bind */
#include <xxhash.h>

#include "curl_load.h"
#include "internal.h"
#include "source.h"
#include "spill.h"

#define TAIL_BYTES ((uint64_t)1 << 20)
#define EMPTY_SHA256                                                           \
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define BLOCK_BYTES ((uint64_t)256 << 10)
#define CACHE_BLOCKS 32    /* 8 MiB */
#define RUN_MAX_BLOCKS 8   /* the most one request fetches: 2 MiB */
#define AHEAD_BLOCKS 4     /* read ahead of reads that go in order */
#define ATTEMPTS 4         /* then EIO */
#define FIRST_PAUSE_MS 200 /* doubled after each failed attempt */

struct slot {
  uint64_t block; /* valid when data != NULL */
  uint64_t tick;  /* last use, for eviction */
  uint8_t *data;  /* BLOCK_BYTES */
};

typedef struct http_src {
  sst_src base; /* first: sst_src_close frees it as a sst_src */
  char etag[100];
  int strong_etag;      /* sent back as If-Match */
  pthread_mutex_t lock; /* the cache, the tick, changed */
  /* One request at a time, on one handle whose connection stays open. A
   * thread that waited here finds what the one before fetched. */
  pthread_mutex_t fetch_lock;
  CURL *curl;
  uint8_t *tail; /* [tail_off, size): fetched at open, kept */
  uint64_t tail_off;
  struct slot slots[CACHE_BLOCKS];
  uint64_t tick;
  uint64_t last_end; /* end of the last fetch (fetch_lock) */
  int changed;
  char *disk; /* DIR/URLHASH, or NULL without a cache directory */
  sst_s3 *s3; /* an s3:// URL: where, and how to sign; else NULL */
} http_src;

/* ---- one response ------------------------------------------------------ */

typedef struct response {
  uint8_t *buf; /* cap bytes: more from the server is an error */
  size_t cap, len;
  int overflow;
  long status;
  char reason[80];
  char etag[100];
  int have_range;
  uint64_t first, last, total; /* Content-Range: bytes first-last/total */
} response;

static size_t on_body(char *p, size_t size, size_t n, void *ctx) {
  response *r = ctx;
  size_t len = size * n;
  if (len > r->cap - r->len) {
    r->overflow = 1;
    return 0; /* aborts the transfer */
  }
  memcpy(r->buf + r->len, p, len);
  r->len += len;
  return len;
}

static int parse_u64(const char **p, uint64_t *v) {
  const char *s = *p;
  uint64_t x = 0;
  if (*s < '0' || *s > '9')
    return -1;
  for (; *s >= '0' && *s <= '9'; s++) {
    if (x > (UINT64_MAX - 9) / 10)
      return -1;
    x = x * 10 + (uint64_t)(*s - '0');
  }
  *v = x;
  *p = s;
  return 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *ctx) {
  response *r = ctx;
  size_t len = size * n;
  char line[512];
  size_t l = len < sizeof line - 1 ? len : sizeof line - 1;
  memcpy(line, p, l);
  line[l] = '\0';
  line[strcspn(line, "\r\n")] = '\0';
  if (strncmp(line, "HTTP/", 5) == 0) {
    /* A new response (after a redirect or a 100): forget the last. */
    r->have_range = 0;
    r->etag[0] = '\0';
    r->reason[0] = '\0';
    const char *s = strchr(line, ' ');
    if (s != NULL && (s = strchr(s + 1, ' ')) != NULL)
      snprintf(r->reason, sizeof r->reason, "%s", s + 1);
  } else if (strncasecmp(line, "ETag:", 5) == 0) {
    const char *s = line + 5;
    s += strspn(s, " \t");
    snprintf(r->etag, sizeof r->etag, "%s", s);
  } else if (strncasecmp(line, "Content-Range:", 14) == 0) {
    const char *s = line + 14;
    s += strspn(s, " \t");
    if (strncasecmp(s, "bytes ", 6) == 0) {
      s += 6;
      if (parse_u64(&s, &r->first) == 0 && *s++ == '-' &&
          parse_u64(&s, &r->last) == 0 && *s++ == '/' &&
          parse_u64(&s, &r->total) == 0 && r->first <= r->last &&
          r->last < r->total)
        r->have_range = 1;
    }
  }
  return len;
}

/* One GET of range (e.g. "-1048576" or "0-262143") into r, with header
 * extra if not NULL. 0, or the CURLcode of a failed transfer. */
static CURLcode get(http_src *h, const char *range, const char *extra,
                    response *r) {
  CURL *c = h->curl;
  struct curl_slist *hdrs = NULL, *more;
  char if_match[128];
  r->len = 0;
  r->overflow = 0;
  r->status = 0;
  r->have_range = 0;
  r->etag[0] = r->reason[0] = '\0';
  curl_easy_setopt(c, CURLOPT_URL, h->s3 ? h->s3->http_url : h->base.name);
  curl_easy_setopt(c, CURLOPT_RANGE, range);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
  if (h->strong_etag) {
    snprintf(if_match, sizeof if_match, "If-Match: %s", h->etag);
    if ((more = curl_slist_append(hdrs, if_match)) == NULL)
      return CURLE_OUT_OF_MEMORY;
    hdrs = more;
  }
  if (extra != NULL) {
    if ((more = curl_slist_append(hdrs, extra)) == NULL) {
      curl_slist_free_all(hdrs);
      return CURLE_OUT_OF_MEMORY;
    }
    hdrs = more;
  }
  if (h->s3 != NULL) {
    /* S3 wants the body's hash named (a GET's is that of no bytes), and a
     * session token beside the signature; libcurl signs both. */
    char token[sizeof h->s3->token + 32];
    snprintf(token, sizeof token, "x-amz-security-token: %s", h->s3->token);
    const char *add[2] = {"x-amz-content-sha256: " EMPTY_SHA256,
                          h->s3->token[0] ? token : NULL};
    for (int i = 0; i < 2 && add[i] != NULL; i++) {
      if ((more = curl_slist_append(hdrs, add[i])) == NULL) {
        curl_slist_free_all(hdrs);
        return CURLE_OUT_OF_MEMORY;
      }
      hdrs = more;
    }
  }
  /* Bytes as stored: no Accept-Encoding, so no transformation. */
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  CURLcode rc = curl_easy_perform(c);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
  curl_slist_free_all(hdrs);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
  return rc;
}

/* Worth another attempt: the network or the server, not the request. */
static int transient(CURLcode cc, long status) {
  if (cc != CURLE_OK)
    return cc != CURLE_WRITE_ERROR && cc != CURLE_OUT_OF_MEMORY &&
           cc != CURLE_URL_MALFORMAT && cc != CURLE_UNSUPPORTED_PROTOCOL;
  return status >= 500 || status == 408 || status == 429;
}

static void pause_ms(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&t, &t) != 0)
    ;
}

static void mark_changed(http_src *h, const char *why) {
  pthread_mutex_lock(&h->lock);
  int first = !h->changed;
  h->changed = 1;
  pthread_mutex_unlock(&h->lock);
  if (first)
    sst_log("%s: %s: the table changed on the server since it was opened "
            "(ETag %s); its reads fail with EIO",
            h->base.name, why, h->etag[0] ? h->etag : "none");
}

/* Fetches [off, off + len) into buf. 0, EIO or SST_ECHANGED. */
static int fetch(http_src *h, uint8_t *buf, size_t len, uint64_t off) {
  char range[64];
  snprintf(range, sizeof range, "%llu-%llu", (unsigned long long)off,
           (unsigned long long)(off + len - 1));
  response r = {.buf = buf, .cap = len};
  long pause = FIRST_PAUSE_MS;
  CURLcode cc = CURLE_OK;
  for (int attempt = 1;; attempt++) {
    cc = get(h, range, NULL, &r);
    if (!transient(cc, r.status) || attempt == ATTEMPTS)
      break;
    pause_ms(pause);
    pause *= 2;
  }
  if (cc == CURLE_OK &&
      (r.status == 412 || r.status == 404 || r.status == 410)) {
    char why[128];
    snprintf(why, sizeof why, "HTTP %ld %s", r.status, r.reason);
    mark_changed(h, why);
    return SST_ECHANGED;
  }
  if (cc == CURLE_OK && r.status == 206 && r.have_range &&
      (r.total != h->base.size ||
       (h->etag[0] && r.etag[0] && strcmp(r.etag, h->etag) != 0))) {
    mark_changed(h, "another size or ETag");
    return SST_ECHANGED;
  }
  if (cc != CURLE_OK || r.status != 206 || !r.have_range || r.first != off ||
      r.last != off + len - 1 || r.len != len) {
    sst_log("%s: bytes %s: %s", h->base.name, range,
            cc != CURLE_OK    ? curl_easy_strerror(cc)
            : r.status != 206 ? (r.reason[0] ? r.reason : "unexpected status")
                              : "the server answered another range");
    return EIO;
  }
  return 0;
}

/* ---- the cache on disk -------------------------------------------------- */

#define REC_MAGIC "SSTHTTP1"
#define REC_ETAG 100
#define REC_HEADER (8 + REC_ETAG + 4 * 8)

static uint64_t rd64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

/* DIR/URLHASH/NAME into path. 0, or -1 when it does not fit. */
static int disk_path(const http_src *h, const char *name, char *path,
                     size_t cap) {
  return snprintf(path, cap, "%s/%s", h->disk, name) < (int)cap ? 0 : -1;
}

static void block_name(const http_src *h, uint64_t b, char *name, size_t cap) {
  snprintf(name, cap, "%016llx.%llu",
           (unsigned long long)XXH3_64bits(h->etag, strlen(h->etag)),
           (unsigned long long)b);
}

/* Reads record NAME into buf (at most cap bytes): of the version with
 * ETag etag and *size, or, when etag is "", of any version, whose ETag
 * and size then go to etag and *size; its length in *got and offset in
 * the object in *off_out. 0 when it is there and whole and its checksum
 * matches; -1 otherwise. */
static int disk_read(const http_src *h, const char *name,
                     char etag[REC_ETAG + 1], uint64_t *size, uint8_t *buf,
                     size_t cap, size_t *got, uint64_t *off_out) {
  char path[4096];
  uint8_t head[REC_HEADER];
  if (disk_path(h, name, path, sizeof path) != 0)
    return -1;
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return -1;
  struct stat st;
  int rc = -1;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
      sst_pread_all(fd, head, sizeof head, 0) != 0)
    goto out;
  char tag[REC_ETAG + 1];
  memcpy(tag, head + 8, REC_ETAG);
  tag[REC_ETAG] = '\0';
  uint64_t rsize = rd64(head + 8 + REC_ETAG), off = rd64(head + 16 + REC_ETAG);
  uint64_t len = rd64(head + 24 + REC_ETAG), sum = rd64(head + 32 + REC_ETAG);
  int any = etag[0] == '\0';
  if (memcmp(head, REC_MAGIC, 8) != 0 || (!any && strcmp(tag, etag) != 0) ||
      (!any && rsize != *size) || len > cap || off > rsize ||
      len > rsize - off || (uint64_t)st.st_size != REC_HEADER + len ||
      sst_pread_all(fd, buf, (size_t)len, REC_HEADER) != 0 ||
      XXH3_64bits(buf, (size_t)len) != sum)
    goto out;
  *got = (size_t)len;
  *off_out = off;
  if (any) {
    memcpy(etag, tag, sizeof tag);
    *size = rsize;
  }
  rc = 0;
out:
  close(fd);
  return rc;
}

/* Writes record NAME: len bytes of the object at off. Failures only mean
 * that the bytes are not kept. */
static void disk_write(const http_src *h, const char *name, const uint8_t *p,
                       size_t len, uint64_t off) {
  static unsigned long counter;
  char path[4096], tmp[4200];
  if (disk_path(h, name, path, sizeof path) != 0)
    return;
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%lu", path, (long)getpid(),
           __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
  uint8_t head[REC_HEADER] = {0};
  memcpy(head, REC_MAGIC, 8);
  memcpy(head + 8, h->etag, strlen(h->etag)); /* < REC_ETAG */
  uint64_t v[4] = {h->base.size, off, len, XXH3_64bits(p, len)};
  for (int k = 0; k < 4; k++)
    sst_put_u64(head + 8 + REC_ETAG + 8 * k, v[k]);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return;
  int ok = sst_write_all(fd, head, sizeof head) == 0 &&
           sst_write_all(fd, p, len) == 0;
  if (close(fd) != 0 || !ok || rename(tmp, path) != 0)
    unlink(tmp);
}

/* Block b from disk into buf (n bytes expected). 0 or -1. */
static int disk_block(const http_src *h, uint64_t b, uint8_t *buf, size_t n) {
  char name[64], etag[REC_ETAG + 1];
  size_t got;
  uint64_t off, size = h->base.size;
  if (h->disk == NULL || !h->strong_etag)
    return -1;
  block_name(h, b, name, sizeof name);
  snprintf(etag, sizeof etag, "%s", h->etag);
  if (disk_read(h, name, etag, &size, buf, n, &got, &off) != 0 || got != n ||
      off != b * BLOCK_BYTES)
    return -1;
  return 0;
}

static int on_disk(const http_src *h, uint64_t b) {
  char name[64], path[4096];
  if (h->disk == NULL || !h->strong_etag)
    return 0;
  block_name(h, b, name, sizeof name);
  return disk_path(h, name, path, sizeof path) == 0 && access(path, F_OK) == 0;
}

/* ---- the block cache ----------------------------------------------------- */

/* Copies what block b holds of [off, off + len) into buf if it is cached.
 * Called with h->lock held. */
static int cache_copy(http_src *h, uint64_t b, uint8_t *buf, size_t len,
                      uint64_t off) {
  for (int i = 0; i < CACHE_BLOCKS; i++) {
    struct slot *s = &h->slots[i];
    if (s->data != NULL && s->block == b) {
      memcpy(buf, s->data + (off - b * BLOCK_BYTES), len);
      s->tick = ++h->tick;
      return 1;
    }
  }
  return 0;
}

static int cached(http_src *h, uint64_t b) {
  for (int i = 0; i < CACHE_BLOCKS; i++)
    if (h->slots[i].data != NULL && h->slots[i].block == b)
      return 1;
  return 0;
}

/* Keeps block b's bytes (n of them), evicting the least recently used.
 * Called with h->lock held. A failed allocation only means no caching. */
static void cache_put(http_src *h, uint64_t b, const uint8_t *p, size_t n) {
  struct slot *victim = &h->slots[0];
  for (int i = 0; i < CACHE_BLOCKS; i++) {
    struct slot *s = &h->slots[i];
    if (s->data != NULL && s->block == b)
      return;
    if (s->data == NULL || s->tick < victim->tick)
      victim = s;
    if (s->data == NULL)
      break;
  }
  if (victim->data == NULL &&
      (victim->data = malloc((size_t)BLOCK_BYTES)) == NULL)
    return;
  memcpy(victim->data, p, n);
  victim->block = b;
  victim->tick = ++h->tick;
}

static uint64_t block_end(const http_src *h, uint64_t b) {
  uint64_t end = (b + 1) * BLOCK_BYTES;
  return end < h->tail_off ? end : h->tail_off;
}

/* Block b (below the tail) into the cache, with the blocks after it that
 * are missing too (up to last, and ahead when reads go in order), in one
 * request. Copies what b holds of [off, off + len) into buf. */
static int fill(http_src *h, uint64_t b, uint64_t last, uint8_t *buf,
                size_t len, uint64_t off) {
  pthread_mutex_lock(&h->fetch_lock);
  pthread_mutex_lock(&h->lock);
  int rc = h->changed ? SST_ECHANGED : 0;
  if (rc == 0 && cache_copy(h, b, buf, len, off)) {
    pthread_mutex_unlock(&h->lock);
    pthread_mutex_unlock(&h->fetch_lock);
    return 0; /* fetched while this thread waited */
  }
  uint64_t blocks = (h->tail_off + BLOCK_BYTES - 1) / BLOCK_BYTES;
  uint64_t want = last - b + 1;
  if (h->last_end == b * BLOCK_BYTES)
    want += AHEAD_BLOCKS;
  uint64_t n = 1;
  while (n < want && n < RUN_MAX_BLOCKS && b + n < blocks &&
         !cached(h, b + n) && !on_disk(h, b + n))
    n++;
  pthread_mutex_unlock(&h->lock);
  if (rc != 0) {
    pthread_mutex_unlock(&h->fetch_lock);
    return rc;
  }
  uint64_t start = b * BLOCK_BYTES, end = block_end(h, b + n - 1);
  uint8_t *run = malloc((size_t)(end - start));
  if (run == NULL) {
    rc = ENOMEM;
  } else if (disk_block(h, b, run, (size_t)(block_end(h, b) - start)) == 0) {
    n = 1; /* kept by an earlier open */
  } else if ((rc = fetch(h, run, (size_t)(end - start), start)) == 0) {
    h->last_end = end;
    for (uint64_t i = 0; i < n && h->disk != NULL && h->strong_etag; i++) {
      char name[64];
      block_name(h, b + i, name, sizeof name);
      disk_write(h, name, run + i * BLOCK_BYTES,
                 (size_t)(block_end(h, b + i) - (b + i) * BLOCK_BYTES),
                 (b + i) * BLOCK_BYTES);
    }
  }
  if (rc == 0) {
    pthread_mutex_lock(&h->lock);
    for (uint64_t i = 0; i < n; i++)
      cache_put(h, b + i, run + i * BLOCK_BYTES,
                (size_t)(block_end(h, b + i) - (b + i) * BLOCK_BYTES));
    pthread_mutex_unlock(&h->lock);
    memcpy(buf, run + (off - start), len);
  }
  free(run);
  pthread_mutex_unlock(&h->fetch_lock);
  return rc;
}

static int http_pread(sst_src *s, void *out, size_t len, uint64_t off) {
  http_src *h = (http_src *)s;
  uint8_t *buf = out;
  pthread_mutex_lock(&h->lock);
  int changed = h->changed;
  pthread_mutex_unlock(&h->lock);
  if (changed)
    return SST_ECHANGED;
  uint64_t end = off + len;
  /* Below the tail: block by block, from the cache or fetched. */
  while (off < end && off < h->tail_off) {
    uint64_t b = off / BLOCK_BYTES;
    uint64_t stop = block_end(h, b) < end ? block_end(h, b) : end;
    size_t n = (size_t)(stop - off);
    pthread_mutex_lock(&h->lock);
    int hit = cache_copy(h, b, buf, n, off);
    pthread_mutex_unlock(&h->lock);
    if (!hit) {
      uint64_t last_off = (end < h->tail_off ? end : h->tail_off) - 1;
      int rc = fill(h, b, last_off / BLOCK_BYTES, buf, n, off);
      if (rc != 0)
        return rc;
    }
    buf += n;
    off = stop;
  }
  if (off < end)
    memcpy(buf, h->tail + (off - h->tail_off), (size_t)(end - off));
  return 0;
}

static void http_close(sst_src *s) {
  http_src *h = (http_src *)s;
  if (h->curl != NULL)
    curl_easy_cleanup(h->curl);
  for (int i = 0; i < CACHE_BLOCKS; i++)
    free(h->slots[i].data);
  free(h->tail);
  free(h->disk);
  free(h->s3);
  pthread_mutex_destroy(&h->lock);
  pthread_mutex_destroy(&h->fetch_lock);
}

static const struct sst_src_ops http_ops = {http_pread, http_close};

/* ---- open ------------------------------------------------------------- */

static CURLcode global_rc = CURLE_FAILED_INIT;
static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static const char *load_why;
static void global_init(void) {
  if (sst_curl_load(&load_why) == 0)
    global_rc = curl_global_init(CURL_GLOBAL_ALL);
}

/* The status of a failed open as an error code. */
static int status_code(long status) {
  switch (status) {
  case 401:
  case 403:
    return EACCES;
  case 404:
  case 410:
    return ENOENT;
  case 416:
    return SST_ETRUNCATED; /* an empty object has no last byte */
  default:
    return EIO;
  }
}

/* DIR/URLHASH for url into h->disk, made if missing. */
static int open_disk(http_src *h, const char *dir, sst_error *err) {
  const char *url = h->base.name;
  size_t cap = strlen(dir) + 20;
  if ((h->disk = malloc(cap)) == NULL)
    return sst_error_set(err, ENOMEM, "%s: out of memory", url);
  snprintf(h->disk, cap, "%s/%016llx", dir,
           (unsigned long long)XXH3_64bits(url, strlen(url)));
  if (mkdir(h->disk, 0700) != 0 && errno != EEXIST)
    return sst_error_set(err, errno, "%s: cache directory %s: %s", url, h->disk,
                         strerror(errno));
  return 0;
}

int sst_http_open(const char *url, const char *cache_dir, sst_src **out,
                  sst_error *err) {
  *out = NULL;
  pthread_once(&global_once, global_init);
  if (load_why != NULL)
    return sst_error_set(err, ENOENT, "%s: %s", url, load_why);
  if (global_rc != CURLE_OK)
    return sst_error_set(err, EIO, "%s: libcurl: %s", url,
                         curl_easy_strerror(global_rc));
  http_src *h = calloc(1, sizeof *h);
  if (h == NULL || (h->base.name = strdup(url)) == NULL) {
    free(h);
    return sst_error_set(err, ENOMEM, "%s: out of memory", url);
  }
  h->base.ops = &http_ops;
  h->base.fd = -1;
  pthread_mutex_init(&h->lock, NULL);
  pthread_mutex_init(&h->fetch_lock, NULL);
  int rc;
  response r = {.cap = (size_t)TAIL_BYTES};
  if ((h->curl = curl_easy_init()) == NULL || (r.buf = malloc(r.cap)) == NULL) {
    rc = sst_error_set(err, ENOMEM, "%s: out of memory", url);
    goto fail;
  }
  CURL *c = h->curl;
  if (sst_src_is_s3(url)) {
    if ((h->s3 = malloc(sizeof *h->s3)) == NULL) {
      rc = sst_error_set(err, ENOMEM, "%s: out of memory", url);
      goto fail;
    }
    if ((rc = sst_s3_resolve(url, h->s3, err)) != 0)
      goto fail;
    char sigv4[128];
    snprintf(sigv4, sizeof sigv4, "aws:amz:%s:s3", h->s3->region);
    if (curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sigv4) != CURLE_OK) {
      rc = sst_error_set(err, ENOTSUP, "%s: this libcurl cannot sign (SigV4)",
                         url);
      goto fail;
    }
    curl_easy_setopt(c, CURLOPT_USERNAME, h->s3->key_id);
    curl_easy_setopt(c, CURLOPT_PASSWORD, h->s3->secret);
  }
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
  /* A transfer slower than 1 KiB/s for 15 s counts as timed out. */
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 15L);
  curl_easy_setopt(c, CURLOPT_FILETIME, 1L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "sstfs/" SST_VERSION_STRING);

  /* A tail kept on disk: asked for only if it changed. */
  char kept_etag[REC_ETAG + 1] = "", if_none[REC_ETAG + 32];
  uint64_t kept_size = 0, kept_off = 0;
  size_t kept_len = 0;
  int kept = 0;
  if (cache_dir != NULL) {
    if ((rc = open_disk(h, cache_dir, err)) != 0)
      goto fail;
    kept = disk_read(h, "tail", kept_etag, &kept_size, r.buf, r.cap, &kept_len,
                     &kept_off) == 0 &&
           kept_etag[0] == '"' && strlen(kept_etag) < sizeof h->etag &&
           kept_off + kept_len == kept_size;
    snprintf(if_none, sizeof if_none, "If-None-Match: %s", kept_etag);
  }

  char range[32];
  snprintf(range, sizeof range, "-%llu", (unsigned long long)TAIL_BYTES);
  CURLcode cc = CURLE_OK;
  long pause = FIRST_PAUSE_MS;
  for (int attempt = 1;; attempt++) {
    cc = get(h, range, kept ? if_none : NULL, &r);
    if (!transient(cc, r.status) || attempt == ATTEMPTS)
      break;
    pause_ms(pause);
    pause *= 2;
  }
  if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && r.overflow)) {
    rc = sst_error_set(err, EIO, "%s: %s", url, curl_easy_strerror(cc));
    goto fail;
  }
  if (kept && r.status == 304 &&
      (r.etag[0] == '\0' || strcmp(r.etag, kept_etag) == 0)) {
    h->base.size = kept_size; /* the version kept is the current one */
    h->tail_off = kept_off;
    memcpy(r.etag, kept_etag, strlen(kept_etag) + 1);
  } else if (r.status == 206 && r.have_range && r.last + 1 == r.total &&
             r.len == r.last - r.first + 1) {
    h->base.size = r.total;
    h->tail_off = r.first;
  } else if (r.status == 200 && !r.overflow) {
    h->base.size = r.len; /* the whole object: no range support needed */
    h->tail_off = 0;
  } else if (r.status == 200 || r.status == 206) {
    rc = sst_error_set(err, EIO,
                       "%s: the server does not answer range requests "
                       "correctly (HTTP %ld)",
                       url, r.status);
    goto fail;
  } else {
    rc = sst_error_set(err, status_code(r.status), "%s: HTTP %ld%s%s", url,
                       r.status, r.reason[0] ? " " : "", r.reason);
    goto fail;
  }
  h->tail = r.buf;
  r.buf = NULL;
  snprintf(h->etag, sizeof h->etag, "%s", r.etag);
  /* A weak ETag never matches If-Match: such a version is pinned by its
   * size and ETag in each response instead. */
  h->strong_etag = h->etag[0] == '"';
  snprintf(h->base.identity, sizeof h->base.identity, "%s",
           h->etag[0] ? h->etag : "");
  curl_off_t mtime = -1;
  if (curl_easy_getinfo(c, CURLINFO_FILETIME_T, &mtime) == CURLE_OK &&
      mtime > 0)
    h->base.mtime_sec = (int64_t)mtime;
  if (h->disk != NULL && h->strong_etag && r.status != 304)
    disk_write(h, "tail", h->tail, (size_t)(h->base.size - h->tail_off),
               h->tail_off);
  h->last_end = UINT64_MAX;
  *out = &h->base;
  return 0;
fail:
  free(r.buf);
  http_close(&h->base);
  free(h->base.name);
  free(h);
  return rc;
}
