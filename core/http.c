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
 *            one request of at most RUN_BYTES; kept in a bounded cache of
 *            CACHE_BLOCKS blocks.
 *
 * The requests of one miss go out together, up to PARALLEL at once on
 * one libcurl multi handle (its connections stay open from one miss to
 * the next): a read that spans many missing blocks, the window read
 * ahead of reads that go in order, and the key region. Misses of one
 * table are served one at a time (fetch_lock); a thread that waited
 * finds what the one before fetched.
 *
 * Read ahead: the last STREAMS places read in order are followed. A miss
 * that continues one fetches a window after it, WINDOW_FIRST at first; a
 * miss in the region named by sst_src_hint (the reader's key blocks,
 * filters and metadata) fetches WINDOW_MAX of it at once when it
 * continues reads in order, and HINT_ALONE after it otherwise (a lookup).
 * Outside that region, the first miss of a large value read in order
 * from its start (sst_src_value: the reader says so) fetches up to the
 * next RUN_BYTES boundary and asks the thread below at once for the rest
 * of the value up to WINDOW_MAX ahead, not a window that doubles a round
 * trip at a time. Every read in order that leaves less than the
 * stream's window asked for ahead of it asks a thread of the table's own
 * (started then) for more, the window doubled up to WINDOW_MAX: the
 * thread keeps up to PARALLEL requests of RUN_BYTES in flight on its own
 * multi handle, each landing in the cache as it ends, so that reads in
 * order find their bytes there or on their way (a read waits for a
 * block the thread fetches, ra_done, rather than asking for it again)
 * instead of waiting a round trip at each window. Blocks fetched ahead
 * and not read yet are the last the cache evicts. Memory stays bounded:
 * the cache, the thread's requests (its buffers freed once it has been
 * idle IDLE_SECONDS) and the window of one miss. SST_HTTP_LOG names a
 * file that gets a line a request: open, read (a read waits for it) or
 * ahead (the thread's), the range and the URL.
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
 * and no byte of the table is sent.
 *
 * The directory is bounded (cache_max bytes of disk, default
 * DISK_MAX_DEFAULT). DIR/lock holds the bytes the directory uses as last
 * counted; whoever writes records reserves their room there and writes
 * them under an exclusive flock (so a count never misses room granted
 * but not yet filled). When the room is not there, the holder of the lock
 * counts the directory again (every record's blocks on disk) and removes
 * the records used least recently (by mtime, which a read of a record
 * sets) until it is. A process whose record is removed under it keeps
 * reading the file it has open, or fetches the block again. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
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
#define CACHE_BLOCKS 64                    /* 16 MiB */
#define RUN_BYTES ((uint64_t)2 << 20)      /* the most one request fetches */
#define PARALLEL 4                         /* requests in flight at once */
#define WINDOW_FIRST ((uint64_t)512 << 10) /* read ahead of reads in order */
#define WINDOW_MAX ((uint64_t)8 << 20)
#define HINT_ALONE ((uint64_t)1 << 20) /* fetched at a lone miss there */
#define IDLE_SECONDS 1 /* the read-ahead thread's buffers go after that */
#define STREAMS 8      /* places read in order, followed at once */
#define STREAM_SLACK                                                           \
  ((uint64_t)2 << 20)      /* how far out of order they may be                 \
                            */
#define ATTEMPTS 4         /* then EIO */
#define FIRST_PAUSE_MS 200 /* doubled after each failed attempt */
#define DISK_MAX_DEFAULT ((uint64_t)1 << 30)
#define DISK_PAGE 4096        /* what a record costs is counted in such pages */
#define STALE_TMP_SECONDS 600 /* a temporary file older is a dead writer's */

struct slot {
  uint64_t block; /* valid when data != NULL */
  uint64_t tick;  /* last use, for eviction */
  uint8_t *data;  /* BLOCK_BYTES */
  int ahead;      /* fetched ahead of a read, not read since: evicted last */
};

/* A place that reads go through in order. */
struct stream {
  uint64_t next;   /* where the next read in order starts */
  uint64_t win;    /* its read-ahead window (0: none yet) */
  uint64_t vend;   /* the end of the value it read from the start, or 0 */
  uint64_t ra_end; /* the end of what is fetched or asked for ahead of it */
  uint64_t tick;   /* last use: the least recent is replaced */
  unsigned reads;  /* reads in order so far; 0: the slot is free */
};

typedef struct http_src {
  sst_src base; /* first: sst_src_close frees it as a sst_src */
  char etag[100];
  int strong_etag;      /* sent back as If-Match */
  pthread_mutex_t lock; /* the cache, the streams, the hint, changed */
  /* One miss at a time, its requests in flight together on the multi
   * handle, whose connections stay open. */
  pthread_mutex_t fetch_lock;
  CURLM *multi;
  CURL *easy[PARALLEL];
  uint8_t *tail; /* [tail_off, size): fetched at open, kept */
  uint64_t tail_off;
  struct slot slots[CACHE_BLOCKS];
  uint64_t tick;
  struct stream streams[STREAMS];
  uint64_t hint_off, hint_end; /* sst_src_hint: read it in large pieces */
  struct {
    uint64_t off, end;
  } vstart[STREAMS]; /* sst_src_value: the last values read from the start */
  unsigned nvstart;
  int changed;
  uint64_t fill_lo, fill_hi; /* the blocks a miss is fetching (fill) */
  /* The read-ahead thread (started at the first window it is asked for;
   * -1: it could not be) and what it has to fetch, [ra_next, ra_end); its
   * requests in flight, ra_fly[i] on ra_easy[i] (len 0: none). */
  int ra_state, ra_stop, ra_made;
  pthread_t ra_thread;
  pthread_cond_t ra_work; /* a new window, or stop */
  pthread_cond_t ra_done; /* a request of the thread ended */
  CURLM *ra_multi;
  CURL *ra_easy[PARALLEL];
  struct {
    uint64_t off, len;
  } ra_fly[PARALLEL];
  uint64_t ra_next, ra_end;
  int trace;         /* SST_HTTP_LOG: a line a request goes there; else -1 */
  char *root;        /* the cache directory, or NULL */
  char *disk;        /* root/URLHASH, or NULL without a cache directory */
  uint64_t disk_max; /* the bound of root, in bytes of disk */
  sst_s3 *s3;        /* an s3:// URL: where, and how to sign; else NULL */
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

/* ---- requests, several at once ------------------------------------------- */

/* One GET: of [off, off + len) into dst (or of range, when set), and
 * what came back. */
typedef struct xfer {
  uint64_t off, len;
  char range[48];
  const char *why;   /* for SST_HTTP_LOG: open, read or ahead */
  const char *extra; /* one more header, or NULL */
  response r;
  CURLcode cc;
  int attempts;
  int done;
  int64_t mtime; /* Last-Modified, when sent (else -1) */
  struct curl_slist *hdrs;
  char errbuf[CURL_ERROR_SIZE]; /* libcurl's own words on a failure */
} xfer;

/* Why a transfer failed, as libcurl explains it when it can ("SSL
 * certificate problem: unable to get local issuer certificate" rather
 * than "SSL peer certificate or SSH remote key was not OK"). */
static const char *xfer_why(const xfer *x) {
  return x->errbuf[0] ? x->errbuf : curl_easy_strerror(x->cc);
}

/* Worth another attempt: the network or the server, not the request,
 * nor a certificate that will not be trusted the next time either. */
static int transient(CURLcode cc, long status) {
  if (cc != CURLE_OK)
    return cc != CURLE_WRITE_ERROR && cc != CURLE_OUT_OF_MEMORY &&
           cc != CURLE_URL_MALFORMAT && cc != CURLE_UNSUPPORTED_PROTOCOL &&
           cc != CURLE_PEER_FAILED_VERIFICATION &&
           cc != CURLE_SSL_CACERT_BADFILE && cc != CURLE_SSL_CERTPROBLEM &&
           cc != CURLE_SSL_ISSUER_ERROR &&
           cc != CURLE_SSL_PINNEDPUBKEYNOTMATCH && cc != CURLE_LOGIN_DENIED &&
           cc != CURLE_REMOTE_ACCESS_DENIED;
  return status >= 500 || status == 408 || status == 429;
}

static void pause_ms(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&t, &t) != 0)
    ;
}

/* The headers of x: If-Match, its extra one, S3's. 0 or -1 (memory). */
static int xfer_headers(http_src *h, xfer *x) {
  struct curl_slist *more;
  char line[sizeof h->s3->token + 32];
  const char *add[4] = {NULL, x->extra, NULL, NULL};
  if (h->strong_etag) {
    snprintf(line, sizeof line, "If-Match: %s", h->etag);
    add[0] = line;
  }
  char token[sizeof h->s3->token + 32];
  if (h->s3 != NULL) {
    /* S3 wants the body's hash named (a GET's is that of no bytes), and a
     * session token beside the signature; libcurl signs both. */
    add[2] = "x-amz-content-sha256: " EMPTY_SHA256;
    if (h->s3->token[0]) {
      snprintf(token, sizeof token, "x-amz-security-token: %s", h->s3->token);
      add[3] = token;
    }
  }
  x->hdrs = NULL;
  for (int i = 0; i < 4; i++) {
    if (add[i] == NULL)
      continue;
    if ((more = curl_slist_append(x->hdrs, add[i])) == NULL) {
      curl_slist_free_all(x->hdrs);
      x->hdrs = NULL;
      return -1;
    }
    x->hdrs = more;
  }
  return 0;
}

/* Puts x on easy handle c, in multi handle m. 0, or the CURLcode. */
static CURLcode xfer_start(http_src *h, xfer *x, CURLM *m, CURL *c) {
  response *r = &x->r;
  r->len = 0;
  r->overflow = 0;
  r->status = 0;
  r->have_range = 0;
  r->etag[0] = r->reason[0] = '\0';
  x->mtime = -1;
  if (x->range[0] == '\0')
    snprintf(x->range, sizeof x->range, "%llu-%llu", (unsigned long long)x->off,
             (unsigned long long)(x->off + x->len - 1));
  if (xfer_headers(h, x) != 0)
    return CURLE_OUT_OF_MEMORY;
  if (h->trace >= 0)
    dprintf(h->trace, "%s %s %s\n", x->why ? x->why : "read", x->range,
            h->base.name);
  curl_easy_setopt(c, CURLOPT_URL, h->s3 ? h->s3->http_url : h->base.name);
  curl_easy_setopt(c, CURLOPT_RANGE, x->range);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(c, CURLOPT_PRIVATE, x);
  x->errbuf[0] = '\0';
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->errbuf);
  /* Bytes as stored: no Accept-Encoding, so no transformation. */
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, x->hdrs);
  CURLMcode mc = curl_multi_add_handle(m, c);
  if (mc != CURLM_OK) {
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(x->hdrs);
    x->hdrs = NULL;
    return mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_FAILED_INIT;
  }
  return CURLE_OK;
}

/* Runs the n transfers of xs, PARALLEL at a time, each tried again after
 * a growing pause while it fails transiently, ATTEMPTS times in all. Each
 * ends with its cc and response. Called with fetch_lock held (or at
 * open, before anyone else can read). */
static void run_xfers(http_src *h, xfer *xs, size_t n) {
  long pause = FIRST_PAUSE_MS;
  for (size_t i = 0; i < n; i++) {
    xs[i].done = 0;
    xs[i].attempts = 0;
  }
  for (;;) {
    CURL *idle[PARALLEL];
    int nidle = 0, running = 0, active = 0;
    for (int i = 0; i < PARALLEL; i++)
      idle[nidle++] = h->easy[i];
    size_t next = 0;
    for (;;) {
      /* Start what there is room for. */
      while (nidle > 0 && next < n) {
        xfer *x = &xs[next++];
        if (x->done)
          continue;
        x->attempts++;
        CURL *c = idle[--nidle];
        if ((x->cc = xfer_start(h, x, h->multi, c)) != CURLE_OK) {
          idle[nidle++] = c;
          x->done = 1; /* not worth another attempt */
          continue;
        }
        active++;
      }
      if (active == 0)
        break;
      CURLMcode mc = curl_multi_perform(h->multi, &running);
      CURLMsg *m;
      int left;
      while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
          continue;
        CURL *c = m->easy_handle;
        char *priv = NULL;
        curl_easy_getinfo(c, CURLINFO_PRIVATE, &priv);
        xfer *x = (xfer *)(void *)priv;
        x->cc = m->data.result;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &x->r.status);
        curl_off_t mtime = -1;
        if (curl_easy_getinfo(c, CURLINFO_FILETIME_T, &mtime) == CURLE_OK)
          x->mtime = (int64_t)mtime;
        curl_multi_remove_handle(h->multi, c);
        /* x may be gone before c's next transfer sets its own. */
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
        curl_slist_free_all(x->hdrs);
        x->hdrs = NULL;
        idle[nidle++] = c;
        active--;
        /* Done unless worth another attempt (in the next round). */
        x->done = !transient(x->cc, x->r.status) || x->attempts >= ATTEMPTS;
      }
      if (mc != CURLM_OK) {
        /* The multi handle itself failed: end what is in flight. */
        for (int i = 0; i < PARALLEL; i++) {
          curl_multi_remove_handle(h->multi, h->easy[i]);
          curl_easy_setopt(h->easy[i], CURLOPT_ERRORBUFFER, NULL);
        }
        for (size_t i = 0; i < n; i++) {
          if (!xs[i].done) {
            curl_slist_free_all(xs[i].hdrs);
            xs[i].hdrs = NULL;
            xs[i].cc = CURLE_FAILED_INIT;
            xs[i].done = 1;
          }
        }
        return;
      }
      if (active > 0 && running > 0)
        curl_multi_poll(h->multi, NULL, 0, 1000, NULL);
    }
    int again = 0;
    for (size_t i = 0; i < n; i++)
      again |= !xs[i].done;
    if (!again)
      return;
    pause_ms(pause);
    pause *= 2;
  }
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

/* What a range transfer came to: 0 when it brought exactly the bytes
 * asked for, else EIO (logged unless quiet) or SST_ECHANGED (logged). */
static int xfer_result(http_src *h, const xfer *x, int quiet) {
  const response *r = &x->r;
  CURLcode cc = x->cc;
  if (cc == CURLE_OK &&
      (r->status == 412 || r->status == 404 || r->status == 410)) {
    char why[128];
    snprintf(why, sizeof why, "HTTP %ld %s", r->status, r->reason);
    mark_changed(h, why);
    return SST_ECHANGED;
  }
  if (cc == CURLE_OK && r->status == 206 && r->have_range &&
      (r->total != h->base.size ||
       (h->etag[0] && r->etag[0] && strcmp(r->etag, h->etag) != 0))) {
    mark_changed(h, "another size or ETag");
    return SST_ECHANGED;
  }
  if (cc != CURLE_OK || r->status != 206 || !r->have_range ||
      r->first != x->off || r->last != x->off + x->len - 1 ||
      r->len != x->len) {
    if (quiet)
      return EIO;
    sst_log("%s: bytes %s: %s", h->base.name, x->range,
            cc != CURLE_OK ? xfer_why(x)
            : r->status != 206
                ? (r->reason[0] ? r->reason : "unexpected status")
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
 * matches (its mtime then says it was just used); -1 otherwise. */
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
  /* Used now: the eviction of least recently used records goes by it. */
  futimens(fd, NULL);
  rc = 0;
out:
  close(fd);
  return rc;
}

/* What a record of len bytes costs on disk, as counted. */
static uint64_t rec_cost(uint64_t len) {
  return (REC_HEADER + len + DISK_PAGE - 1) / DISK_PAGE * DISK_PAGE;
}

struct disk_file {
  struct timespec mtime;
  uint64_t bytes;
  char name[64]; /* URLHASH/NAME */
};

static int older(const void *a, const void *b) {
  const struct disk_file *x = a, *y = b;
  if (x->mtime.tv_sec != y->mtime.tv_sec)
    return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
  if (x->mtime.tv_nsec != y->mtime.tv_nsec)
    return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
  return strcmp(x->name, y->name);
}

static int is_hash(const char *s) {
  size_t n = strspn(s, "0123456789abcdef");
  return n == 16 && s[n] == '\0';
}

/* Counts the bytes of disk under the cache directory (the lock file, the
 * directories of URLs and their records) and, when more than target,
 * removes records, least recently used first, until it is not.
 * Temporary files left by a writer that died are removed too. Returns
 * what is left. Called with the lock held. */
static uint64_t disk_prune(const http_src *h, uint64_t target) {
  DIR *top = opendir(h->root);
  if (top == NULL)
    return 0;
  struct disk_file *files = NULL;
  size_t n = 0, cap = 0;
  uint64_t total = 0;
  struct stat st;
  time_t now = time(NULL);
  if (fstat(dirfd(top), &st) == 0)
    total += (uint64_t)st.st_blocks * 512;
  struct dirent *d;
  while ((d = readdir(top)) != NULL) {
    if (strcmp(d->d_name, "lock") == 0 &&
        fstatat(dirfd(top), d->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
      total += (uint64_t)st.st_blocks * 512;
    if (!is_hash(d->d_name))
      continue;
    int sfd = openat(dirfd(top), d->d_name,
                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *sub = sfd >= 0 ? fdopendir(sfd) : NULL;
    if (sub == NULL) {
      if (sfd >= 0)
        close(sfd);
      continue;
    }
    if (fstat(sfd, &st) == 0)
      total += (uint64_t)st.st_blocks * 512;
    struct dirent *e;
    while ((e = readdir(sub)) != NULL) {
      if (e->d_name[0] == '.' ||
          fstatat(sfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
          !S_ISREG(st.st_mode))
        continue;
      if (strstr(e->d_name, ".tmp.") != NULL) {
        if (now - st.st_mtim.tv_sec > STALE_TMP_SECONDS &&
            unlinkat(sfd, e->d_name, 0) == 0)
          continue;
        total += (uint64_t)st.st_blocks * 512; /* being written */
        continue;
      }
      if (strlen(e->d_name) >= sizeof files->name - 17)
        continue;
      if (n == cap) {
        size_t ncap = cap ? 2 * cap : 256;
        struct disk_file *more = realloc(files, ncap * sizeof *files);
        if (more == NULL) {
          total += (uint64_t)st.st_blocks * 512;
          continue;
        }
        files = more;
        cap = ncap;
      }
      files[n].mtime = st.st_mtim;
      files[n].bytes = (uint64_t)st.st_blocks * 512;
      /* URLHASH (16 bytes) / NAME (shorter than 47, checked above) */
      memcpy(files[n].name, d->d_name, 16);
      files[n].name[16] = '/';
      memcpy(files[n].name + 17, e->d_name, strlen(e->d_name) + 1);
      total += files[n].bytes;
      n++;
    }
    closedir(sub);
  }
  if (total > target && n > 0) {
    qsort(files, n, sizeof *files, older);
    for (size_t i = 0; i < n && total > target; i++)
      if (unlinkat(dirfd(top), files[i].name, 0) == 0)
        total -= files[i].bytes < total ? files[i].bytes : total;
  }
  free(files);
  closedir(top);
  return total;
}

/* Reserves room for *want bytes of records (as rec_cost counts them) in
 * the cache directory, removing what is used least when needed; lowers
 * *want to what it grants (at most half the bound). Returns the lock's
 * descriptor, held until disk_done: the records are written under it, so
 * that a count of the directory by another process never misses room
 * granted but not yet filled. -1 (nothing granted) on failure. */
static int disk_reserve(const http_src *h, uint64_t *want) {
  char path[4096];
  uint64_t w = *want;
  *want = 0;
  if (snprintf(path, sizeof path, "%s/lock", h->root) >= (int)sizeof path)
    return -1;
  int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return -1;
  if (flock(fd, LOCK_EX) != 0) {
    close(fd);
    return -1;
  }
  if (w > h->disk_max / 2)
    w = h->disk_max / 2;
  uint8_t raw[8];
  uint64_t used;
  if (sst_pread_all(fd, raw, sizeof raw, 0) == 0)
    used = rd64(raw);
  else
    used = disk_prune(h, UINT64_MAX); /* a new directory: count it */
  if (used > h->disk_max || w > h->disk_max - used)
    used = disk_prune(h, h->disk_max - w);
  if (used > h->disk_max || w > h->disk_max - used)
    w = 0; /* could not make room (files of another kind) */
  used += w;
  sst_put_u64(raw, used);
  if (pwrite(fd, raw, sizeof raw, 0) != (ssize_t)sizeof raw)
    w = 0;
  *want = w;
  return fd;
}

/* Ends what disk_reserve began: the lock goes with its descriptor. */
static void disk_done(int fd) {
  if (fd >= 0)
    close(fd);
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
  if (fd < 0 && errno == ENOENT && mkdir(h->disk, 0700) == 0)
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
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
      s->ahead = 0;
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

/* Keeps block b's bytes (n of them), fetched ahead of reads or not,
 * evicting the least recently used block that is not waiting ahead of
 * a read (or, when every one is, the least recently used). Called with
 * h->lock held. A failed allocation only means no caching. */
static void cache_put(http_src *h, uint64_t b, const uint8_t *p, size_t n,
                      int ahead) {
  struct slot *victim = &h->slots[0];
  for (int i = 0; i < CACHE_BLOCKS; i++) {
    struct slot *s = &h->slots[i];
    if (s->data != NULL && s->block == b)
      return;
    if (s->data == NULL) {
      victim = s;
      break;
    }
    if (s->ahead < victim->ahead ||
        (s->ahead == victim->ahead && s->tick < victim->tick))
      victim = s;
  }
  if (victim->data == NULL &&
      (victim->data = malloc((size_t)BLOCK_BYTES)) == NULL)
    return;
  memcpy(victim->data, p, n);
  victim->block = b;
  victim->tick = ++h->tick;
  victim->ahead = ahead;
}

static uint64_t block_end(const http_src *h, uint64_t b) {
  uint64_t end = (b + 1) * BLOCK_BYTES;
  return end < h->tail_off ? end : h->tail_off;
}

/* The stream a read of [off, end) continues, or a new one. Sets *in_order
 * when it continues one. Called with h->lock held. */
static struct stream *stream_of(http_src *h, uint64_t off, uint64_t end,
                                int *in_order) {
  struct stream *found = NULL, *victim = &h->streams[0];
  for (int i = 0; i < STREAMS; i++) {
    struct stream *s = &h->streams[i];
    if (s->reads > 0 && off + STREAM_SLACK >= s->next &&
        off <= s->next + STREAM_SLACK) {
      found = s;
      break;
    }
    if (s->reads == 0 || (victim->reads > 0 && s->tick < victim->tick))
      victim = s;
  }
  *in_order = found != NULL;
  if (found == NULL) {
    found = victim;
    *found = (struct stream){.next = end};
  }
  found->reads++;
  found->tick = ++h->tick;
  if (end > found->next)
    found->next = end;
  for (int i = 0; i < STREAMS; i++)
    if (h->vstart[i].end > off && h->vstart[i].off == off) {
      found->vend = h->vstart[i].end; /* a read of that value from its start */
      h->vstart[i].end = 0;
    }
  return found;
}

/* Keeps the bytes of the n transfers xs on disk, within the room the
 * directory grants. */
static void disk_keep(http_src *h, const xfer *xs, size_t n) {
  if (h->disk == NULL || !h->strong_etag)
    return;
  uint64_t granted = 0;
  for (size_t i = 0; i < n; i++)
    for (uint64_t p = xs[i].off; p < xs[i].off + xs[i].len; p += BLOCK_BYTES)
      granted += rec_cost(block_end(h, p / BLOCK_BYTES) - p);
  int lock = disk_reserve(h, &granted);
  for (size_t i = 0; i < n; i++) {
    for (uint64_t p = xs[i].off; p < xs[i].off + xs[i].len; p += BLOCK_BYTES) {
      uint64_t b = p / BLOCK_BYTES, len = block_end(h, b) - p;
      if (rec_cost(len) > granted)
        break;
      granted -= rec_cost(len);
      char name[64];
      block_name(h, b, name, sizeof name);
      disk_write(h, name, xs[i].r.buf + (p - xs[i].off), (size_t)len, p);
    }
  }
  disk_done(lock);
}

/* ---- reading ahead in the background ------------------------------------ */

/* 1 if block b is in a request of the read-ahead thread. Called with
 * h->lock held. */
static int ahead_flying(const http_src *h, uint64_t b) {
  uint64_t bs = b * BLOCK_BYTES;
  for (int i = 0; i < PARALLEL; i++)
    if (h->ra_fly[i].len > 0 && bs >= h->ra_fly[i].off &&
        bs < h->ra_fly[i].off + h->ra_fly[i].len)
      return 1;
  return 0;
}

/* 1 if block b is left to the read-ahead thread: in one of its requests,
 * or in what it was asked for and has not yet planned (which it does
 * as soon as it runs). A read that needs such a block waits for ra_done
 * rather than fetching it too. Called with h->lock held. */
static int ahead_busy(const http_src *h, uint64_t b) {
  uint64_t bs = b * BLOCK_BYTES;
  return ahead_flying(h, b) ||
         (h->ra_state > 0 && bs >= h->ra_next && bs < h->ra_end);
}

/* 1 if the thread has no need to fetch block b: it is cached, kept on
 * disk, or being fetched. Called with h->lock held. */
static int ahead_skip(http_src *h, uint64_t b) {
  return cached(h, b) || (b >= h->fill_lo && b < h->fill_hi) ||
         ahead_flying(h, b) || on_disk(h, b);
}

/* The thread's next request: the first run of blocks from ra_next that
 * it needs, up to ra_end, of at most RUN_BYTES. 0 when there is none.
 * Called with h->lock held. */
static int ahead_plan(http_src *h, uint64_t *off, uint64_t *len) {
  while (h->ra_next < h->ra_end) {
    uint64_t b = h->ra_next / BLOCK_BYTES;
    if (ahead_skip(h, b)) {
      h->ra_next = block_end(h, b);
      continue;
    }
    uint64_t start = b * BLOCK_BYTES, stop = block_end(h, b);
    while (stop < h->ra_end && stop - start < RUN_BYTES &&
           !ahead_skip(h, stop / BLOCK_BYTES))
      stop = block_end(h, stop / BLOCK_BYTES);
    h->ra_next = stop;
    *off = start;
    *len = stop - start;
    return 1;
  }
  return 0;
}

/* Ends transfer x of the thread on easy handle c, as run_xfers does. */
static void ahead_detach(http_src *h, CURL *c, xfer *x) {
  curl_multi_remove_handle(h->ra_multi, c);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
  curl_slist_free_all(x->hdrs);
  x->hdrs = NULL;
}

/* What the thread's request x brought: checked as any answer is, then
 * kept on disk and in the cache as blocks waiting ahead of a read. A
 * failure is not logged nor tried again: the read that finds the blocks
 * missing fetches them itself, with its retries. */
static void ahead_land(http_src *h, const xfer *x) {
  int ok = xfer_result(h, x, 1) == 0;
  if (ok)
    disk_keep(h, x, 1);
  pthread_mutex_lock(&h->lock);
  for (uint64_t p = x->off; ok && !h->changed && p < x->off + x->len;
       p += BLOCK_BYTES) {
    uint64_t b = p / BLOCK_BYTES;
    cache_put(h, b, x->r.buf + (p - x->off), (size_t)(block_end(h, b) - p), 1);
  }
  pthread_mutex_unlock(&h->lock);
}

/* The read-ahead thread: keeps up to PARALLEL requests of what it is
 * asked for in flight on its own multi handle, each landing in the cache
 * as it ends, until ra_stop. */
static void *ahead_main(void *arg) {
  http_src *h = arg;
  xfer xs[PARALLEL];
  uint8_t *bufs[PARALLEL] = {NULL};
  int busy[PARALLEL] = {0};
  pthread_mutex_lock(&h->lock);
  while (!h->ra_stop) {
    int active = 0;
    for (int i = 0; i < PARALLEL; i++) {
      uint64_t off, len;
      if (busy[i]) {
        active++;
        continue;
      }
      /* Each slot's buffer is kept while the thread has work, so that
       * its pages are not mapped afresh at every request. */
      if (!ahead_plan(h, &off, &len) ||
          (bufs[i] == NULL && (bufs[i] = malloc((size_t)RUN_BYTES)) == NULL))
        continue;
      memset(&xs[i], 0, sizeof xs[i]);
      xs[i].off = off;
      xs[i].len = len;
      xs[i].why = "ahead";
      xs[i].r.buf = bufs[i];
      xs[i].r.cap = (size_t)len;
      if (xfer_start(h, &xs[i], h->ra_multi, h->ra_easy[i]) != CURLE_OK)
        continue;
      h->ra_fly[i].off = off;
      h->ra_fly[i].len = len;
      busy[i] = 1;
      active++;
    }
    /* Reads waiting for a block it was asked for see what became of it:
     * in flight, or not needed after all. */
    pthread_cond_broadcast(&h->ra_done);
    if (active == 0) {
      /* Idle: the buffers go once it has stayed so for a while. */
      int kept = 0;
      for (int i = 0; i < PARALLEL; i++)
        kept |= bufs[i] != NULL;
      if (!kept) {
        pthread_cond_wait(&h->ra_work, &h->lock);
        continue;
      }
      struct timespec t;
      clock_gettime(CLOCK_REALTIME, &t);
      t.tv_sec += IDLE_SECONDS;
      if (pthread_cond_timedwait(&h->ra_work, &h->lock, &t) == ETIMEDOUT)
        for (int i = 0; i < PARALLEL; i++) {
          free(bufs[i]);
          bufs[i] = NULL;
        }
      continue;
    }
    pthread_mutex_unlock(&h->lock);
    int running;
    CURLMcode mc = curl_multi_perform(h->ra_multi, &running);
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(h->ra_multi, &left)) != NULL) {
      int i = 0;
      while (i < PARALLEL && h->ra_easy[i] != m->easy_handle)
        i++;
      if (m->msg != CURLMSG_DONE || i == PARALLEL || !busy[i])
        continue;
      xs[i].cc = m->data.result;
      curl_easy_getinfo(h->ra_easy[i], CURLINFO_RESPONSE_CODE, &xs[i].r.status);
      ahead_detach(h, h->ra_easy[i], &xs[i]);
      ahead_land(h, &xs[i]);
      busy[i] = 0;
      pthread_mutex_lock(&h->lock);
      h->ra_fly[i].len = 0;
      pthread_cond_broadcast(&h->ra_done);
      pthread_mutex_unlock(&h->lock);
    }
    int waiting = 0;
    for (int i = 0; i < PARALLEL; i++)
      waiting |= busy[i];
    if (mc == CURLM_OK && waiting)
      curl_multi_poll(h->ra_multi, NULL, 0, 1000, NULL);
    pthread_mutex_lock(&h->lock);
    if (mc != CURLM_OK)
      break; /* the multi handle failed: reads fetch for themselves */
  }
  for (int i = 0; i < PARALLEL; i++) {
    if (busy[i])
      ahead_detach(h, h->ra_easy[i], &xs[i]);
    free(bufs[i]);
    h->ra_fly[i].len = 0;
  }
  if (!h->ra_stop)
    h->ra_state = -1;
  pthread_cond_broadcast(&h->ra_done);
  pthread_mutex_unlock(&h->lock);
  return NULL;
}

static CURL *new_easy(http_src *h, const char **why);

/* Starts the read-ahead thread with its multi handle. 0 or -1. Called
 * with h->lock held. */
static int ahead_start(http_src *h) {
  const char *why;
  if ((h->ra_multi = curl_multi_init()) == NULL)
    return -1;
  curl_multi_setopt(h->ra_multi, CURLMOPT_MAXCONNECTS, (long)PARALLEL);
  for (int i = 0; i < PARALLEL; i++)
    if ((h->ra_easy[i] = new_easy(h, &why)) == NULL)
      return -1;
  if (pthread_create(&h->ra_thread, NULL, ahead_main, h) != 0)
    return -1;
  h->ra_made = 1;
  h->ra_state = 1;
  return 0;
}

/* Asks the thread for [from, to) of stream st, to where what was asked
 * for ends (st->ra_end). Called with h->lock held. */
static void ahead_to(http_src *h, struct stream *st, uint64_t from,
                     uint64_t to) {
  if (to > h->tail_off)
    to = h->tail_off;
  if (to <= st->ra_end)
    return;
  st->ra_end = to;
  if (h->ra_state == 0 && ahead_start(h) != 0) {
    h->ra_state = -1; /* reads fetch their windows themselves */
    return;
  }
  if (h->ra_next < h->ra_end && from >= h->ra_next && from <= h->ra_end) {
    if (to > h->ra_end)
      h->ra_end = to; /* the same stream, further */
  } else {
    h->ra_next = from / BLOCK_BYTES * BLOCK_BYTES;
    h->ra_end = to;
    pthread_cond_broadcast(&h->ra_done); /* what it was asked for before */
  }
  pthread_cond_signal(&h->ra_work);
  curl_multi_wakeup(h->ra_multi);
}

/* A read in order by stream st ended at end, outside the key region.
 * Once less than half of the stream's window lies ahead of it, the
 * thread is asked for the next window, twice as large as the last (up
 * to WINDOW_MAX; its end rounded up to RUN_BYTES, so that its requests
 * are whole runs), from where what was asked for ends. The reads that
 * follow then find their blocks cached or on their way. Called with
 * h->lock held. */
static void ahead_ask(http_src *h, struct stream *st, uint64_t end) {
  if (st->ra_end == 0 || h->ra_state < 0 || h->changed ||
      st->ra_end >= h->tail_off || st->ra_end >= end + st->win)
    return;
  /* Never past WINDOW_MAX: a window set to the rest of a value is not a
   * power of two. */
  st->win = st->win < WINDOW_MAX / 2 ? 2 * st->win : WINDOW_MAX;
  uint64_t from = st->ra_end > end ? st->ra_end : end;
  ahead_to(h, st, from,
           (end + st->win + RUN_BYTES - 1) / RUN_BYTES * RUN_BYTES);
}

/* Serves [off, end) (below the tail, starting in a block that missed the
 * cache) into buf: the blocks that are in the cache from there, the ones
 * kept on disk from there, and the rest fetched, together with the window
 * read ahead (ahead: the bytes after end to fetch too), adjacent blocks in
 * one request, the requests at once. Blocks wholly inside [off, end) are
 * fetched straight into buf; the others, read ahead or at its edges, go
 * to the cache. */
static int fill(http_src *h, uint8_t *buf, uint64_t off, uint64_t end,
                uint64_t ahead) {
  uint64_t b0 = off / BLOCK_BYTES, b1 = (end - 1) / BLOCK_BYTES;
  uint64_t blocks = (h->tail_off + BLOCK_BYTES - 1) / BLOCK_BYTES;
  uint64_t last = (end - 1 + ahead) / BLOCK_BYTES;
  if (last >= blocks)
    last = blocks - 1;
  xfer *xs = NULL;
  uint8_t **bufs = NULL; /* each transfer's buffer when not in buf */
  size_t nx = 0;
  int rc = 0;
  pthread_mutex_lock(&h->fetch_lock);
  pthread_mutex_lock(&h->lock);
  h->fill_lo = b0; /* the read-ahead thread leaves them alone */
  h->fill_hi = last + 1;
  pthread_mutex_unlock(&h->lock);
  /* The plan: each block served now or missing. A missing one starts a
   * run of missing blocks, of one kind: wholly inside the read or not.
   * Blocks the read-ahead thread fetches are left to it. */
  size_t cap = (size_t)(last - b0 + 1);
  if ((xs = calloc(cap, sizeof *xs)) == NULL ||
      (bufs = calloc(cap, sizeof *bufs)) == NULL) {
    rc = ENOMEM;
    goto out;
  }
  for (uint64_t b = b0; b <= last; b++) {
    uint64_t bs = b * BLOCK_BYTES, be = block_end(h, b);
    int wanted = b <= b1, inside = bs >= off && be <= end;
    uint64_t from = bs > off ? bs : off, to = be < end ? be : end;
    pthread_mutex_lock(&h->lock);
    int hit = h->changed ? -1
              : wanted   ? cache_copy(h, b, buf + (from - off),
                                      (size_t)(to - from), from)
                         : cached(h, b) || ahead_busy(h, b);
    pthread_mutex_unlock(&h->lock);
    if (hit < 0) {
      rc = SST_ECHANGED;
      goto out;
    }
    if (hit)
      continue;
    if (wanted && inside &&
        disk_block(h, b, buf + (bs - off), (size_t)(be - bs)) == 0)
      continue;
    if (wanted && !inside) {
      uint8_t *tmp = malloc((size_t)BLOCK_BYTES);
      if (tmp == NULL) {
        rc = ENOMEM;
        goto out;
      }
      int got = disk_block(h, b, tmp, (size_t)(be - bs)) == 0;
      if (got) {
        memcpy(buf + (from - off), tmp + (from - bs), (size_t)(to - from));
        pthread_mutex_lock(&h->lock);
        cache_put(h, b, tmp, (size_t)(be - bs), 0);
        pthread_mutex_unlock(&h->lock);
      }
      free(tmp);
      if (got)
        continue;
    }
    if (!wanted && on_disk(h, b))
      continue; /* read from there when wanted */
    /* Missing: joins the run before it when adjacent, of its kind and
     * not too long. */
    xfer *x = nx > 0 ? &xs[nx - 1] : NULL;
    int x_inside = x != NULL && x->off >= off && x->off + x->len <= end;
    if (x != NULL && x->off + x->len == bs && x_inside == inside &&
        x->len + (be - bs) <= RUN_BYTES) {
      x->len += be - bs;
    } else {
      x = &xs[nx++];
      x->off = bs;
      x->len = be - bs;
      x->why = "read";
    }
  }
  /* Buffers of the runs that do not land in buf. */
  for (size_t i = 0; i < nx; i++) {
    xfer *x = &xs[i];
    int inside = x->off >= off && x->off + x->len <= end;
    if (inside) {
      x->r.buf = buf + (x->off - off);
    } else if ((x->r.buf = bufs[i] = malloc((size_t)x->len)) == NULL) {
      rc = ENOMEM;
      goto out;
    }
    x->r.cap = (size_t)x->len;
  }
  if (nx == 0)
    goto out;
  run_xfers(h, xs, nx);
  for (size_t i = 0; i < nx; i++) {
    int r = xfer_result(h, &xs[i], 0);
    if (r != 0 && (rc == 0 || r == SST_ECHANGED))
      rc = r;
  }
  if (rc != 0)
    goto out;
  disk_keep(h, xs, nx);
  /* The rest into the cache, and what the read wants of it into buf. */
  pthread_mutex_lock(&h->lock);
  for (size_t i = 0; i < nx; i++) {
    if (bufs[i] == NULL)
      continue;
    for (uint64_t p = xs[i].off; p < xs[i].off + xs[i].len; p += BLOCK_BYTES) {
      uint64_t b = p / BLOCK_BYTES, be = block_end(h, b);
      const uint8_t *src = bufs[i] + (p - xs[i].off);
      cache_put(h, b, src, (size_t)(be - p), b > b1);
      uint64_t from = p > off ? p : off, to = be < end ? be : end;
      if (from < to)
        memcpy(buf + (from - off), src + (from - p), (size_t)(to - from));
    }
  }
  pthread_mutex_unlock(&h->lock);
out:
  pthread_mutex_lock(&h->lock);
  h->fill_lo = h->fill_hi = 0;
  pthread_mutex_unlock(&h->lock);
  pthread_mutex_unlock(&h->fetch_lock);
  for (size_t i = 0; bufs != NULL && i < nx; i++)
    free(bufs[i]);
  free(bufs);
  free(xs);
  return rc;
}

static int http_pread(sst_src *s, void *out, size_t len, uint64_t off) {
  http_src *h = (http_src *)s;
  uint8_t *buf = out;
  uint64_t end = off + len;
  uint64_t below = end < h->tail_off ? end : h->tail_off;
  if (off < below) {
    /* From the cache while it has the blocks; a block the read-ahead
     * thread is fetching is waited for; from any other miss on, fill
     * serves the rest (up to such a block). */
    pthread_mutex_lock(&h->lock);
    int in_order, rc = 0, missed = 0;
    struct stream *st = stream_of(h, off, below, &in_order);
    int keys = off >= h->hint_off && off < h->hint_end;
    uint64_t p = off;
    while (p < below) {
      uint64_t b = p / BLOCK_BYTES;
      uint64_t stop = block_end(h, b) < below ? block_end(h, b) : below;
      if (h->changed) {
        rc = SST_ECHANGED;
        break;
      }
      if (cache_copy(h, b, buf + (p - off), (size_t)(stop - p), p)) {
        p = stop;
        continue;
      }
      if (ahead_busy(h, b)) {
        pthread_cond_wait(&h->ra_done, &h->lock);
        continue;
      }
      uint64_t upto = below;
      for (uint64_t q = block_end(h, b); q < below;
           q = block_end(h, q / BLOCK_BYTES))
        if (ahead_busy(h, q / BLOCK_BYTES)) {
          upto = q;
          break;
        }
      uint64_t ahead = 0;
      if (!missed && upto == below) {
        if (p >= h->hint_off && p < h->hint_end) {
          /* The key region: in large pieces at once while it is read in
           * order (a listing); a lookup that lands alone in it fetches
           * HINT_ALONE, not a whole window. */
          uint64_t start = p / BLOCK_BYTES * BLOCK_BYTES;
          uint64_t last = in_order ? below + WINDOW_MAX : start + HINT_ALONE;
          if (last > h->hint_end)
            last = h->hint_end;
          ahead = last > below ? last - below : 0;
        } else if (in_order && st->win == 0 &&
                   st->vend > below + WINDOW_FIRST && h->ra_state >= 0) {
          /* The first miss of a large value read in order from its
           * start: most likely a read of all of it (cat, cp). Grown from
           * WINDOW_FIRST, doubling as the reads catch up with it, the
           * window would take a round trip a step to reach WINDOW_MAX
           * (8 MiB of a 64 MiB value were read before 3 requests were
           * in flight, at 20 ms a round trip). So this miss fetches up
           * to the next RUN_BYTES boundary, on connections already
           * open, and the thread is asked at once for the rest of the
           * value up to WINDOW_MAX ahead of the read, in whole runs:
           * both go out now. Neither goes past the value's last block. */
          uint64_t vlast =
              (st->vend + BLOCK_BYTES - 1) / BLOCK_BYTES * BLOCK_BYTES;
          uint64_t rest = st->vend - below;
          uint64_t to =
              (below + WINDOW_FIRST + RUN_BYTES - 1) / RUN_BYTES * RUN_BYTES;
          if (to > vlast)
            to = vlast;
          if (to > h->tail_off)
            to = h->tail_off;
          ahead = to - below;
          st->ra_end = to;
          st->win = rest < WINDOW_MAX ? rest : WINDOW_MAX;
          uint64_t run_end =
              (below + st->win + RUN_BYTES - 1) / RUN_BYTES * RUN_BYTES;
          if (run_end > vlast)
            run_end = vlast;
          if (run_end > to)
            ahead_to(h, st, to, run_end);
        } else if (in_order) {
          /* A window of its own; it grows at each miss only when no
           * thread reads ahead (ahead_ask grows it otherwise). While the
           * thread runs, the window is its work: a miss then fetches
           * WINDOW_FIRST at most after its bytes (else a read that
           * misses beside the thread's requests, as reads that run at
           * once can, would fetch a whole window of its own). */
          st->win = st->win == 0                                  ? WINDOW_FIRST
                    : st->win < WINDOW_MAX / 2 && h->ra_state < 0 ? 2 * st->win
                    : h->ra_state < 0                             ? WINDOW_MAX
                                                                  : st->win;
          ahead = h->ra_state > 0 && st->win > WINDOW_FIRST ? WINDOW_FIRST
                                                            : st->win;
          if (below + ahead > st->ra_end)
            st->ra_end = below + ahead;
        }
      }
      missed = 1;
      pthread_mutex_unlock(&h->lock);
      rc = fill(h, buf + (p - off), p, upto, ahead);
      pthread_mutex_lock(&h->lock);
      if (rc != 0)
        break;
      p = upto;
    }
    if (rc == 0 && in_order && !keys)
      ahead_ask(h, st, below);
    pthread_mutex_unlock(&h->lock);
    if (rc != 0)
      return rc;
  } else {
    pthread_mutex_lock(&h->lock);
    int changed = h->changed;
    pthread_mutex_unlock(&h->lock);
    if (changed)
      return SST_ECHANGED;
  }
  if (below < end) {
    uint64_t from = off > h->tail_off ? off : h->tail_off;
    memcpy(buf + (from - off), h->tail + (from - h->tail_off),
           (size_t)(end - from));
  }
  return 0;
}

static void http_value(sst_src *s, uint64_t off, uint64_t len) {
  http_src *h = (http_src *)s;
  pthread_mutex_lock(&h->lock);
  h->vstart[h->nvstart].off = off;
  h->vstart[h->nvstart].end = off + len;
  h->nvstart = (h->nvstart + 1) % STREAMS;
  pthread_mutex_unlock(&h->lock);
}

static void http_hint(sst_src *s, uint64_t off, uint64_t len) {
  http_src *h = (http_src *)s;
  pthread_mutex_lock(&h->lock);
  h->hint_off = off;
  h->hint_end = off + len;
  pthread_mutex_unlock(&h->lock);
}

static void http_close(sst_src *s) {
  http_src *h = (http_src *)s;
  pthread_mutex_lock(&h->lock);
  int running = h->ra_made;
  h->ra_stop = 1;
  pthread_cond_signal(&h->ra_work);
  pthread_mutex_unlock(&h->lock);
  if (running) {
    curl_multi_wakeup(h->ra_multi);
    pthread_join(h->ra_thread, NULL);
  }
  for (int i = 0; i < PARALLEL; i++) {
    if (h->ra_easy[i] != NULL)
      curl_easy_cleanup(h->ra_easy[i]);
  }
  if (h->ra_multi != NULL)
    curl_multi_cleanup(h->ra_multi);
  if (h->trace >= 0)
    close(h->trace);
  for (int i = 0; i < PARALLEL; i++) {
    if (h->easy[i] == NULL)
      continue;
    if (h->multi != NULL)
      curl_multi_remove_handle(h->multi, h->easy[i]);
    curl_easy_cleanup(h->easy[i]);
  }
  if (h->multi != NULL)
    curl_multi_cleanup(h->multi);
  for (int i = 0; i < CACHE_BLOCKS; i++)
    free(h->slots[i].data);
  free(h->tail);
  free(h->disk);
  free(h->root);
  free(h->s3);
  pthread_mutex_destroy(&h->lock);
  pthread_mutex_destroy(&h->fetch_lock);
  pthread_cond_destroy(&h->ra_work);
  pthread_cond_destroy(&h->ra_done);
}

static const struct sst_src_ops http_ops = {http_pread, http_close, http_hint,
                                            http_value};

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
  if ((h->root = strdup(dir)) == NULL || (h->disk = malloc(cap)) == NULL)
    return sst_error_set(err, ENOMEM, "%s: out of memory", url);
  snprintf(h->disk, cap, "%s/%016llx", dir,
           (unsigned long long)XXH3_64bits(url, strlen(url)));
  if (mkdir(h->disk, 0700) != 0 && errno != EEXIST)
    return sst_error_set(err, errno, "%s: cache directory %s: %s", url, h->disk,
                         strerror(errno));
  return 0;
}

/* An easy handle with what every request of h shares. NULL: no memory,
 * or (s3) a libcurl that cannot sign, said in *why. */
static CURL *new_easy(http_src *h, const char **why) {
  CURL *c = curl_easy_init();
  *why = "out of memory";
  if (c == NULL)
    return NULL;
  if (h->s3 != NULL) {
    char sigv4[128];
    snprintf(sigv4, sizeof sigv4, "aws:amz:%s:s3", h->s3->region);
    if (curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sigv4) != CURLE_OK) {
      *why = "this libcurl cannot sign (SigV4)";
      curl_easy_cleanup(c);
      return NULL;
    }
    curl_easy_setopt(c, CURLOPT_USERNAME, h->s3->key_id);
    curl_easy_setopt(c, CURLOPT_PASSWORD, h->s3->secret);
  }
  /* The CA bundle and directory curl(1) takes from its environment, which
   * libcurl leaves to the program; else libcurl's built-in ones. */
  const char *ca = getenv("CURL_CA_BUNDLE");
  if (ca == NULL || *ca == '\0')
    ca = getenv("SSL_CERT_FILE");
  if (ca != NULL && *ca != '\0')
    curl_easy_setopt(c, CURLOPT_CAINFO, ca);
  const char *ca_dir = getenv("SSL_CERT_DIR");
  if (ca_dir != NULL && *ca_dir != '\0')
    curl_easy_setopt(c, CURLOPT_CAPATH, ca_dir);
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
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  return c;
}

int sst_http_open(const char *url, const char *cache_dir, uint64_t cache_max,
                  sst_src **out, sst_error *err) {
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
  h->disk_max = cache_max ? cache_max : DISK_MAX_DEFAULT;
  pthread_mutex_init(&h->lock, NULL);
  pthread_mutex_init(&h->fetch_lock, NULL);
  pthread_cond_init(&h->ra_work, NULL);
  pthread_cond_init(&h->ra_done, NULL);
  /* A line a request, for whoever wants to see what is fetched and why. */
  const char *trace = getenv("SST_HTTP_LOG");
  h->trace = trace != NULL && *trace != '\0'
                 ? open(trace, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)
                 : -1;
  int rc;
  xfer x = {.r = {.cap = (size_t)TAIL_BYTES}, .why = "open"};
  response *r = &x.r;
  if ((r->buf = malloc(r->cap)) == NULL) {
    rc = sst_error_set(err, ENOMEM, "%s: out of memory", url);
    goto fail;
  }
  if (sst_src_is_s3(url)) {
    if ((h->s3 = malloc(sizeof *h->s3)) == NULL) {
      rc = sst_error_set(err, ENOMEM, "%s: out of memory", url);
      goto fail;
    }
    if ((rc = sst_s3_resolve(url, h->s3, err)) != 0)
      goto fail;
  }
  if ((h->multi = curl_multi_init()) == NULL) {
    rc = sst_error_set(err, ENOMEM, "%s: out of memory", url);
    goto fail;
  }
  /* Connections kept open for the next requests: one per transfer. */
  curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)PARALLEL);
  for (int i = 0; i < PARALLEL; i++) {
    const char *why;
    if ((h->easy[i] = new_easy(h, &why)) == NULL) {
      rc = sst_error_set(err, strcmp(why, "out of memory") ? ENOTSUP : ENOMEM,
                         "%s: %s", url, why);
      goto fail;
    }
  }

  /* A tail kept on disk: asked for only if it changed. */
  char kept_etag[REC_ETAG + 1] = "", if_none[REC_ETAG + 32];
  uint64_t kept_size = 0, kept_off = 0;
  size_t kept_len = 0;
  int kept = 0;
  if (cache_dir != NULL) {
    if ((rc = open_disk(h, cache_dir, err)) != 0)
      goto fail;
    kept = disk_read(h, "tail", kept_etag, &kept_size, r->buf, r->cap,
                     &kept_len, &kept_off) == 0 &&
           kept_etag[0] == '"' && strlen(kept_etag) < sizeof h->etag &&
           kept_off + kept_len == kept_size;
    snprintf(if_none, sizeof if_none, "If-None-Match: %s", kept_etag);
  }

  snprintf(x.range, sizeof x.range, "-%llu", (unsigned long long)TAIL_BYTES);
  x.extra = kept ? if_none : NULL;
  run_xfers(h, &x, 1);
  CURLcode cc = x.cc;
  if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && r->overflow)) {
    rc = sst_error_set(err, EIO, "%s: %s", url, xfer_why(&x));
    goto fail;
  }
  if (kept && r->status == 304 &&
      (r->etag[0] == '\0' || strcmp(r->etag, kept_etag) == 0)) {
    h->base.size = kept_size; /* the version kept is the current one */
    h->tail_off = kept_off;
    memcpy(r->etag, kept_etag, strlen(kept_etag) + 1);
  } else if (r->status == 206 && r->have_range && r->last + 1 == r->total &&
             r->len == r->last - r->first + 1) {
    h->base.size = r->total;
    h->tail_off = r->first;
  } else if (r->status == 200 && !r->overflow) {
    h->base.size = r->len; /* the whole object: no range support needed */
    h->tail_off = 0;
  } else if (r->status == 200 || r->status == 206) {
    rc = sst_error_set(err, EIO,
                       "%s: the server does not answer range requests "
                       "correctly (HTTP %ld)",
                       url, r->status);
    goto fail;
  } else {
    rc = sst_error_set(err, status_code(r->status), "%s: HTTP %ld%s%s", url,
                       r->status, r->reason[0] ? " " : "", r->reason);
    goto fail;
  }
  h->tail = r->buf;
  r->buf = NULL;
  snprintf(h->etag, sizeof h->etag, "%s", r->etag);
  /* A weak ETag never matches If-Match: such a version is pinned by its
   * size and ETag in each response instead. */
  h->strong_etag = h->etag[0] == '"';
  snprintf(h->base.identity, sizeof h->base.identity, "%s",
           h->etag[0] ? h->etag : "");
  if (x.mtime > 0)
    h->base.mtime_sec = x.mtime;
  if (h->disk != NULL && h->strong_etag && r->status != 304) {
    uint64_t cost = rec_cost(h->base.size - h->tail_off), granted = cost;
    int lock = disk_reserve(h, &granted);
    if (granted == cost)
      disk_write(h, "tail", h->tail, (size_t)(h->base.size - h->tail_off),
                 h->tail_off);
    disk_done(lock);
  }
  *out = &h->base;
  return 0;
fail:
  free(r->buf);
  http_close(&h->base);
  free(h->base.name);
  free(h);
  return rc;
}
