/* fuzz_records.c — libFuzzer harness for the record parser of `sst build`
 * (sst_records_*): the input is the text of a records file.
 *
 * It is parsed with several option sets (default, escaped, skip_bad, tab
 * delimiter, escaped with tab, and a delimiter taken from the input's first
 * byte). Without escapes, the records must be exactly those of a plain
 * reference parser written here. With escapes, every key and value must
 * survive sst_escape + sst_unescape, and the lines sst_escape makes of
 * them (what `sst dump --escape` writes) must parse back to the same
 * records. One set (chosen by the input) is also fed through a pipe in
 * small pieces, so lines arrive split across reads; the records must not
 * change. (Each parse costs a 1 MiB buffer, so not every set gets both.)
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sstable.h"

static volatile uint8_t sink;

static void fail(const char *what) {
  fprintf(stderr, "fuzz_records: %s\n", what);
  abort();
}

static void touch(const uint8_t *p, size_t len) {
  if (len > 0) {
    sink ^= p[0];
    sink ^= p[len - 1];
  }
}

/* ---- a growing byte buffer ---------------------------------------------- */

typedef struct bytes {
  uint8_t *p;
  size_t len, cap;
} bytes;

static void put(bytes *b, const void *p, size_t n) {
  if (b->cap - b->len < n) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n)
      cap *= 2;
    uint8_t *q = realloc(b->p, cap);
    if (q == NULL)
      fail("out of memory");
    b->p = q;
    b->cap = cap;
  }
  if (n > 0)
    memcpy(b->p + b->len, p, n);
  b->len += n;
}

static void put_u64(bytes *b, uint64_t v) { put(b, &v, sizeof v); }

/* What a parse gave: every record, length-prefixed, then the final code
 * and the counters. Two parses agree when these bytes are equal. */
static void put_record(bytes *b, const uint8_t *k, size_t kl, const uint8_t *v,
                       size_t vl) {
  put_u64(b, kl);
  put(b, k, kl);
  put_u64(b, vl);
  put(b, v, vl);
}

static void put_end(bytes *b, int rc, uint64_t lines, uint64_t skipped) {
  put_u64(b, UINT64_MAX);
  put_u64(b, (uint64_t)(int64_t)rc);
  put_u64(b, lines);
  put_u64(b, skipped);
}

static int same(const bytes *a, const bytes *b) {
  return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

/* ---- input as a descriptor -------------------------------------------- */

/* The whole input in a memfd, read from its start. */
static int memfd_of(const uint8_t *data, size_t size) {
  int fd = memfd_create("fuzz_records", MFD_CLOEXEC);
  if (fd < 0)
    fail("memfd_create failed");
  for (size_t done = 0; done < size;) {
    ssize_t n = write(fd, data + done, size - done);
    if (n <= 0)
      fail("writing the input to the memfd failed");
    done += (size_t)n;
  }
  if (lseek(fd, 0, SEEK_SET) != 0)
    fail("lseek failed");
  return fd;
}

/* A thread that writes the input into a pipe in pieces of 1 to 64 bytes. */
typedef struct feeder {
  int fd;
  const uint8_t *data;
  size_t size;
  uint64_t seed;
} feeder;

static void *feed(void *arg) {
  feeder *f = arg;
  size_t done = 0;
  while (done < f->size) {
    f->seed = f->seed * 6364136223846793005ull + 1442695040888963407ull;
    size_t n = 1 + (size_t)((f->seed >> 33) % 64);
    if (n > f->size - done)
      n = f->size - done;
    ssize_t w = write(f->fd, f->data + done, n);
    if (w <= 0)
      fail("writing the input to the pipe failed");
    done += (size_t)w;
  }
  close(f->fd);
  return NULL;
}

/* ---- parsing ------------------------------------------------------------ */

typedef struct mode {
  unsigned char delimiter;
  int escaped, skip_bad;
} mode;

/* Checks one escaped-mode record: each field comes back from sst_escape +
 * sst_unescape, and its escaped line goes into `lines`. */
static void escape_round_trip(const uint8_t *field, size_t len,
                              unsigned char delimiter, bytes *lines) {
  uint8_t *esc = malloc(4 * len + 1), *back = malloc(len + 1);
  if (esc == NULL || back == NULL)
    fail("out of memory");
  size_t n = sst_escape(field, len, delimiter, esc);
  if (n > 4 * len)
    fail("sst_escape wrote more than 4 bytes per byte");
  if (memchr(esc, '\n', n) || memchr(esc, '\r', n))
    fail("sst_escape left a line break raw");
  size_t back_len = 0;
  if (sst_unescape(esc, n, back, &back_len) != 0)
    fail("sst_unescape refused what sst_escape wrote");
  if (back_len != len || (len > 0 && memcmp(back, field, len) != 0))
    fail("sst_unescape(sst_escape(x)) is not x");
  put(lines, esc, n);
  free(esc);
  free(back);
}

/* Parses fd with mode m into `out` (see put_record). With `lines`, also
 * round-trips each record through sst_escape into it. */
static void parse(int fd, const mode *m, bytes *out, bytes *lines) {
  sst_records_options o;
  sst_records_options_init(&o);
  o.delimiter = m->delimiter;
  o.escaped = m->escaped;
  o.skip_bad = m->skip_bad;
  sst_records *p;
  if (sst_records_open(fd, "input", &o, &p) != 0)
    fail("sst_records_open failed");
  int rc;
  for (;;) {
    const uint8_t *k, *v;
    size_t kl, vl;
    sst_error err;
    memset(&err, 0, sizeof err);
    rc = sst_records_next(p, &k, &kl, &v, &vl, &err);
    if (rc != 0) {
      if (err.code != rc || err.msg[0] == '\0' ||
          strnlen(err.msg, sizeof err.msg) == sizeof err.msg)
        fail("sst_records_next: bad error report");
      sst_error again;
      if (sst_records_next(p, &k, &kl, &v, &vl, &again) != rc ||
          again.code != rc || k != NULL)
        fail("sst_records_next: an error is not sticky");
      break;
    }
    if (k == NULL)
      break;
    if (kl == 0 || kl > SST_KEY_MAX || v == NULL)
      fail("sst_records_next: a record without a valid key or value");
    touch(k, kl);
    touch(v, vl);
    put_record(out, k, kl, v, vl);
    if (lines != NULL) {
      escape_round_trip(k, kl, m->delimiter, lines);
      put(lines, &m->delimiter, 1);
      escape_round_trip(v, vl, m->delimiter, lines);
      put(lines, "\n", 1);
    }
  }
  put_end(out, rc, sst_records_line_count(p), sst_records_skipped(p));
  sst_records_free(p);
}

/* The records of `in` without escapes, as the Records section of
 * sstable.h describes them: lines end in LF or CRLF, the last needs no
 * newline, empty lines are skipped, the first delimiter ends the key. */
static void reference(const uint8_t *in, size_t len, const mode *m,
                      bytes *out) {
  uint64_t lines = 0, skipped = 0;
  int rc = 0;
  size_t pos = 0;
  while (pos < len) {
    const uint8_t *line = in + pos;
    const uint8_t *nl = memchr(line, '\n', len - pos);
    size_t n;
    if (nl != NULL) {
      n = (size_t)(nl - line);
      pos += n + 1;
      if (n > 0 && line[n - 1] == '\r')
        n--;
    } else {
      n = len - pos;
      pos = len;
    }
    lines++;
    if (n == 0)
      continue;
    const uint8_t *d = memchr(line, m->delimiter, n);
    if ((d == NULL || d == line) && m->skip_bad) { /* or an empty key */
      skipped++;
      continue;
    }
    if (d == NULL) {
      rc = SST_EPARSE;
      break;
    }
    size_t kl = (size_t)(d - line);
    if (kl == 0) {
      rc = SST_EPARSE;
      break;
    }
    if (kl > SST_KEY_MAX) {
      rc = SST_EKEYSIZE;
      break;
    }
    put_record(out, line, kl, d + 1, n - kl - 1);
  }
  put_end(out, rc, lines, skipped);
}

static void parse_memory(const uint8_t *data, size_t size, const mode *m,
                         bytes *out, bytes *lines) {
  int fd = memfd_of(data, size);
  parse(fd, m, out, lines);
  close(fd);
}

/* The same parse, with the input arriving through a pipe in pieces. */
static void parse_pieces(const uint8_t *data, size_t size, const mode *m,
                         uint64_t seed, bytes *out) {
  int fds[2];
  if (pipe(fds) != 0)
    fail("pipe failed");
  feeder f = {fds[1], data, size, seed};
  pthread_t t;
  if (pthread_create(&t, NULL, feed, &f) != 0)
    fail("pthread_create failed");
  parse(fds[0], m, out, NULL);
  /* After an error the parser stops reading: let the feeder finish. */
  char sinkbuf[4096];
  while (read(fds[0], sinkbuf, sizeof sinkbuf) > 0)
    ;
  pthread_join(t, NULL);
  close(fds[0]);
}

static int valid_delimiter(unsigned char d, int escaped) {
  return d != '\n' && d != '\r' && !(escaped && d == '\\');
}

/* One option set: reference or round-trip checks, and optionally the
 * piecewise parse. */
static void check_mode(const uint8_t *data, size_t size, const mode *m,
                       int pieces, uint64_t seed) {
  bytes got = {0}, want = {0}, lines = {0};
  parse_memory(data, size, m, &got, m->escaped ? &lines : NULL);
  if (!m->escaped) {
    reference(data, size, m, &want);
    if (!same(&got, &want))
      fail("the records differ from the reference parser's");
  } else if (lines.len > 0) {
    /* The escaped lines of the records parse back to the same records. */
    bytes again = {0}, first = {0};
    mode strict = *m;
    strict.skip_bad = 0;
    parse_memory(lines.p, lines.len, &strict, &again, NULL);
    /* Compare records only: the counters of the two inputs differ. */
    size_t rec_len = got.len - 4 * sizeof(uint64_t);
    put(&first, got.p, rec_len);
    put_end(&first, 0, 0, 0);
    size_t again_rec = again.len - 4 * sizeof(uint64_t);
    uint64_t again_rc;
    memcpy(&again_rc, again.p + again_rec + sizeof(uint64_t), sizeof again_rc);
    if (again_rc != 0 || again_rec != rec_len ||
        (rec_len > 0 && memcmp(first.p, again.p, rec_len) != 0))
      fail("escaped records do not parse back to themselves");
    free(again.p);
    free(first.p);
  }
  if (pieces) {
    bytes piecewise = {0};
    parse_pieces(data, size, m, seed, &piecewise);
    if (!same(&got, &piecewise))
      fail("input arriving in pieces gives other records");
    free(piecewise.p);
  }
  free(got.p);
  free(want.p);
  free(lines.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint64_t seed = size;
  for (size_t i = 0; i < size; i++)
    seed = (seed ^ data[i]) * 1099511628211ull;
  unsigned char first = size > 0 ? data[0] : ',';

  const mode modes[] = {
      {',', 0, 0},  {',', 1, 0},   {',', 0, 1},   {'\t', 0, 0},
      {'\t', 1, 0}, {first, 1, 1}, {first, 0, 0},
  };
  const size_t nmodes = sizeof modes / sizeof modes[0];
  for (size_t i = 0; i < nmodes; i++) {
    const mode *m = &modes[i];
    if (!valid_delimiter(m->delimiter, m->escaped) ||
        (i == 6 && (first == ',' || first == '\t'))) /* sets 0 and 3 */
      continue;
    check_mode(data, size, m, i == (size_t)(seed >> 40) % nmodes, seed);
  }

  /* Delimiters the parser must refuse. */
  sst_records_options o;
  sst_records_options_init(&o);
  sst_records *p = NULL;
  o.delimiter = '\n';
  if (sst_records_open(0, "input", &o, &p) != SST_EINVAL)
    fail("a newline delimiter is accepted");
  o.delimiter = '\\';
  o.escaped = 1;
  if (sst_records_open(0, "input", &o, &p) != SST_EINVAL)
    fail("a backslash delimiter is accepted with escapes");

  /* The whole input as one field: escaping round-trips, and unescaping
   * raw bytes never writes more than it reads. */
  uint8_t *esc = malloc(4 * size + 1), *back = malloc(size + 1);
  if (esc == NULL || back == NULL)
    fail("out of memory");
  size_t n = sst_escape(data, size, first, esc), back_len = 0;
  if (sst_unescape(esc, n, back, &back_len) != 0 || back_len != size ||
      (size > 0 && memcmp(back, data, size) != 0))
    fail("sst_unescape(sst_escape(input)) is not the input");
  if (sst_unescape(data, size, back, &back_len) == 0 && back_len > size)
    fail("sst_unescape wrote more bytes than it read");
  free(esc);
  free(back);
  return 0;
}
