/* test_records.c — the record parser and the escapes of core/records.c. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sstable.h"
#include "testutil.h"

/* An open parser over a file holding given bytes. */
typedef struct feed {
  int fd;
  char name[512];
  sst_records *p;
} feed;

static void feed_open_opts(feed *f, const void *data, size_t len,
                           const sst_records_options *o) {
  snprintf(f->name, sizeof f->name, "%s", tu_path("records"));
  tu_write_file(f->name, data, len);
  f->fd = open(f->name, O_RDONLY);
  ck_assert_int_ge(f->fd, 0);
  ck_assert_int_eq(sst_records_open(f->fd, f->name, o, &f->p), 0);
}

static void feed_open(feed *f, const char *text, unsigned char delim,
                      int escaped, int skip_bad) {
  sst_records_options o;
  sst_records_options_init(&o);
  o.delimiter = delim;
  o.escaped = escaped;
  o.skip_bad = skip_bad;
  feed_open_opts(f, text, strlen(text), &o);
}

static void feed_close(feed *f) {
  sst_records_free(f->p);
  close(f->fd);
  unlink(f->name);
}

/* Asserts that the next record is key/value (given with lengths). */
static void expect_record_n(feed *f, const void *key, size_t key_len,
                            const void *value, size_t value_len) {
  const uint8_t *k, *v;
  size_t kl, vl;
  sst_error err = {0};
  int rc = sst_records_next(f->p, &k, &kl, &v, &vl, &err);
  ck_assert_msg(rc == 0, "next: %d %s", rc, err.msg);
  ck_assert_ptr_nonnull(k);
  ck_assert_uint_eq(kl, key_len);
  ck_assert_uint_eq(vl, value_len);
  ck_assert(memcmp(k, key, kl) == 0);
  ck_assert(vl == 0 || memcmp(v, value, vl) == 0);
}

static void expect_record(feed *f, const char *key, const char *value) {
  expect_record_n(f, key, strlen(key), value, strlen(value));
}

static void expect_end(feed *f) {
  const uint8_t *k, *v;
  size_t kl, vl;
  sst_error err = {0};
  ck_assert_int_eq(sst_records_next(f->p, &k, &kl, &v, &vl, &err), 0);
  ck_assert_ptr_null(k);
}

/* Asserts an error with this code whose message is "NAME" + suffix. */
static void expect_error(feed *f, int code, const char *suffix) {
  char want[1024];
  snprintf(want, sizeof want, "%s%s", f->name, suffix);
  for (int round = 0; round < 2; round++) { /* the error is sticky */
    const uint8_t *k, *v;
    size_t kl, vl;
    sst_error err = {0};
    ck_assert_int_eq(sst_records_next(f->p, &k, &kl, &v, &vl, &err), code);
    ck_assert_int_eq(err.code, code);
    ck_assert_str_eq(err.msg, want);
  }
}

/* ---- well-formed input ------------------------------------------------- */

START_TEST(test_basic) {
  feed f;
  feed_open(&f, "a,1\nb,2\n", ',', 0, 0);
  expect_record(&f, "a", "1");
  expect_record(&f, "b", "2");
  expect_end(&f);
  expect_end(&f);
  ck_assert_uint_eq(sst_records_line_count(f.p), 2);
  ck_assert_uint_eq(sst_records_skipped(f.p), 0);
  feed_close(&f);
}
END_TEST

START_TEST(test_options_default) {
  sst_records_options o;
  memset(&o, 0x55, sizeof o);
  sst_records_options_init(&o);
  ck_assert_uint_eq(o.delimiter, ',');
  ck_assert_int_eq(o.escaped, 0);
  ck_assert_int_eq(o.skip_bad, 0);
}
END_TEST

START_TEST(test_null_options) {
  feed f;
  feed_open_opts(&f, "k,v\n", 4, NULL);
  expect_record(&f, "k", "v");
  expect_end(&f);
  feed_close(&f);
}
END_TEST

START_TEST(test_empty_input) {
  feed f;
  feed_open(&f, "", ',', 0, 0);
  expect_end(&f);
  ck_assert_uint_eq(sst_records_line_count(f.p), 0);
  feed_close(&f);
}
END_TEST

START_TEST(test_final_line_without_newline) {
  feed f;
  feed_open(&f, "a,1\nb,2", ',', 0, 0);
  expect_record(&f, "a", "1");
  expect_record(&f, "b", "2");
  expect_end(&f);
  ck_assert_uint_eq(sst_records_line_count(f.p), 2);
  feed_close(&f);
}
END_TEST

START_TEST(test_crlf) {
  feed f;
  /* One \r before \n goes; a second one is data; a \r at the very end
   * without a newline is data too. */
  feed_open(&f, "a,1\r\nb,2\r\r\nc,\r\nd,4\r", ',', 0, 0);
  expect_record(&f, "a", "1");
  expect_record(&f, "b", "2\r");
  expect_record(&f, "c", "");
  expect_record(&f, "d", "4\r");
  expect_end(&f);
  feed_close(&f);
}
END_TEST

START_TEST(test_empty_lines) {
  feed f;
  feed_open(&f, "\n\na,1\n\r\n\nb,2\n\n", ',', 0, 0);
  expect_record(&f, "a", "1");
  expect_record(&f, "b", "2");
  expect_end(&f);
  ck_assert_uint_eq(sst_records_line_count(f.p), 7);
  ck_assert_uint_eq(sst_records_skipped(f.p), 0);
  feed_close(&f);
}
END_TEST

START_TEST(test_value_with_delimiter) {
  feed f;
  feed_open(&f, "k,a,b,c\nempty,\nsp ace, v \n", ',', 0, 0);
  expect_record(&f, "k", "a,b,c");
  expect_record(&f, "empty", "");
  expect_record(&f, "sp ace", " v ");
  expect_end(&f);
  feed_close(&f);
}
END_TEST

START_TEST(test_tab_delimiter) {
  feed f;
  feed_open(&f, "k\tv,w\tx\nk2\t\n", '\t', 0, 0);
  expect_record(&f, "k", "v,w\tx");
  expect_record(&f, "k2", "");
  expect_end(&f);
  feed_close(&f);
}
END_TEST

START_TEST(test_binary_bytes_plain) {
  static const uint8_t data[] = {0x00, 0xff, '|', 0x80, 0x01, 0x7f, '\n'};
  static const uint8_t key[] = {0x00, 0xff};
  static const uint8_t value[] = {0x80, 0x01, 0x7f};
  sst_records_options o;
  sst_records_options_init(&o);
  o.delimiter = '|';
  feed f;
  feed_open_opts(&f, data, sizeof data, &o);
  expect_record_n(&f, key, sizeof key, value, sizeof value);
  expect_end(&f);
  feed_close(&f);
}
END_TEST

START_TEST(test_max_key) {
  size_t len = SST_KEY_MAX + 3;
  char *text = malloc(len + 1);
  memset(text, 'k', SST_KEY_MAX);
  memcpy(text + SST_KEY_MAX, ",v\n", 4);
  feed f;
  feed_open(&f, text, ',', 0, 0);
  text[SST_KEY_MAX] = '\0';
  expect_record(&f, text, "v");
  expect_end(&f);
  feed_close(&f);
  free(text);
}
END_TEST

/* A value longer than the parser's first buffer, between short records, so
 * that the buffer must grow while holding a partial line. */
START_TEST(test_long_line) {
  size_t vlen = 3u << 20;
  size_t cap = vlen + 64;
  char *text = malloc(cap);
  size_t n = (size_t)snprintf(text, cap, "first,1\nbig,");
  for (size_t i = 0; i < vlen; i++)
    text[n + i] = (char)('a' + i % 26);
  n += vlen;
  n += (size_t)snprintf(text + n, cap - n, "\nlast,2\n");
  feed f;
  sst_records_options o;
  sst_records_options_init(&o);
  feed_open_opts(&f, text, n, &o);
  expect_record(&f, "first", "1");
  expect_record_n(&f, "big", 3, text + 12, vlen);
  expect_record(&f, "last", "2");
  expect_end(&f);
  ck_assert_uint_eq(sst_records_line_count(f.p), 3);
  feed_close(&f);
  free(text);
}
END_TEST

/* Many records of random sizes, so that lines straddle every chunk
 * boundary at many offsets. */
START_TEST(test_many_records) {
  tu_rng rng;
  tu_rng_seed(&rng, 42);
  size_t count = 60000, cap = count * 160, n = 0;
  char *text = malloc(cap);
  for (size_t i = 0; i < count; i++) {
    size_t vlen = (size_t)tu_rng_below(&rng, 120);
    n += (size_t)snprintf(text + n, cap - n, "key%08zu,", i);
    for (size_t j = 0; j < vlen; j++)
      text[n++] = (char)('A' + (i + j) % 50);
    if (i % 7 == 0)
      text[n++] = '\r';
    text[n++] = '\n';
  }
  sst_records_options o;
  sst_records_options_init(&o);
  feed f;
  feed_open_opts(&f, text, n, &o);
  tu_rng_seed(&rng, 42);
  char key[32], value[128];
  for (size_t i = 0; i < count; i++) {
    size_t vlen = (size_t)tu_rng_below(&rng, 120);
    snprintf(key, sizeof key, "key%08zu", i);
    for (size_t j = 0; j < vlen; j++)
      value[j] = (char)('A' + (i + j) % 50);
    expect_record_n(&f, key, strlen(key), value, vlen);
  }
  expect_end(&f);
  ck_assert_uint_eq(sst_records_line_count(f.p), count);
  feed_close(&f);
  free(text);
}
END_TEST

/* A pipe delivers its data in pieces, unlike a file. */
START_TEST(test_pipe) {
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    static const char *parts[] = {"a,", "1\nb", ",2", "\r", "\nc,3"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
      if (write(fds[1], parts[i], strlen(parts[i])) < 0)
        _exit(1);
      usleep(20000);
    }
    _exit(0);
  }
  close(fds[1]);
  feed f = {.fd = fds[0]};
  snprintf(f.name, sizeof f.name, "<pipe>");
  ck_assert_int_eq(sst_records_open(f.fd, f.name, NULL, &f.p), 0);
  expect_record(&f, "a", "1");
  expect_record(&f, "b", "2");
  expect_record(&f, "c", "3");
  expect_end(&f);
  sst_records_free(f.p);
  close(f.fd);
  ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
}
END_TEST

/* ---- malformed input --------------------------------------------------- */

START_TEST(test_missing_delimiter) {
  feed f;
  feed_open(&f, "a,1\n\nnodelim\nb,2\n", ',', 0, 0);
  expect_record(&f, "a", "1");
  expect_error(&f, SST_EPARSE, ":3: no ',' delimiter");
  feed_close(&f);
}
END_TEST

START_TEST(test_missing_delimiter_final_line) {
  feed f;
  feed_open(&f, "a,1\nlast", ',', 0, 0);
  expect_record(&f, "a", "1");
  expect_error(&f, SST_EPARSE, ":2: no ',' delimiter");
  feed_close(&f);
}
END_TEST

START_TEST(test_missing_delimiter_rendering) {
  feed f;
  feed_open(&f, "a,b\n", '\t', 0, 0);
  expect_error(&f, SST_EPARSE, ":1: no '\\t' delimiter");
  feed_close(&f);
  feed_open(&f, "a,b\n", 0x01, 0, 0);
  expect_error(&f, SST_EPARSE, ":1: no '\\x01' delimiter");
  feed_close(&f);
  feed_open(&f, "a,b\n", 0xe9, 0, 0);
  expect_error(&f, SST_EPARSE, ":1: no '\\xe9' delimiter");
  feed_close(&f);
}
END_TEST

START_TEST(test_skip_bad) {
  feed f;
  feed_open(&f, "a,1\nbad\nb,2\n\nalso bad\r\nc,3", ',', 0, 1);
  expect_record(&f, "a", "1");
  expect_record(&f, "b", "2");
  expect_record(&f, "c", "3");
  expect_end(&f);
  ck_assert_uint_eq(sst_records_skipped(f.p), 2);
  ck_assert_uint_eq(sst_records_line_count(f.p), 6);
  feed_close(&f);
}
END_TEST

START_TEST(test_empty_key) {
  feed f;
  feed_open(&f, "a,1\n,v\n", ',', 0, 0);
  expect_record(&f, "a", "1");
  expect_error(&f, SST_EPARSE, ":2: empty key");
  feed_close(&f);
  feed_open(&f, "a,1\n,v\n", ',', 1, 0); /* escaped, the same */
  expect_record(&f, "a", "1");
  expect_error(&f, SST_EPARSE, ":2: empty key");
  feed_close(&f);
}
END_TEST

/* skip_bad skips a line with an empty key as it skips one without a
 * delimiter, escaped or not, whatever follows the delimiter. */
START_TEST(test_skip_bad_empty_key) {
  for (int escaped = 0; escaped <= 1; escaped++) {
    feed f;
    feed_open(&f, ",v\na,1\n,\n\n,x,y\r\nb,2\n,", ',', escaped, 1);
    expect_record(&f, "a", "1");
    expect_record(&f, "b", "2");
    expect_end(&f);
    ck_assert_uint_eq(sst_records_skipped(f.p), 4);
    ck_assert_uint_eq(sst_records_line_count(f.p), 7);
    feed_close(&f);
  }
}
END_TEST

START_TEST(test_oversize_key) {
  size_t len = SST_KEY_MAX + 1;
  char *text = malloc(len + 8);
  memcpy(text, "a,1\n", 4);
  memset(text + 4, 'k', len);
  feed f;
  sst_records_options o;
  sst_records_options_init(&o);
  feed_open_opts(&f, text, len + 4, &o); /* last line: no delimiter... */
  expect_record(&f, "a", "1");
  expect_error(&f, SST_EPARSE, ":2: no ',' delimiter");
  feed_close(&f);

  memcpy(text + 4 + len, ",v", 2);
  feed_open_opts(&f, text, len + 6, &o); /* ...and now with one */
  expect_record(&f, "a", "1");
  expect_error(&f, SST_EKEYSIZE,
               ":2: key of 65537 bytes is longer than the limit of 65536");
  feed_close(&f);
  free(text);
}
END_TEST

/* Escaped keys are checked after decoding: 4 * 16384 escaped bytes make a
 * key of exactly the limit; one more is too long. */
START_TEST(test_oversize_escaped_key) {
  size_t n = SST_KEY_MAX / 4 * 16 + 1;
  char *text = malloc(n + 16);
  for (size_t i = 0; i < SST_KEY_MAX / 4; i++)
    memcpy(text + 16 * i, "\\x00\\x01\\x02\\x03", 16);
  memcpy(text + n - 1, ",v\n", 4);
  feed f;
  feed_open(&f, text, ',', 1, 0);
  const uint8_t *k, *v;
  size_t kl, vl;
  ck_assert_int_eq(sst_records_next(f.p, &k, &kl, &v, &vl, NULL), 0);
  ck_assert_uint_eq(kl, SST_KEY_MAX);
  ck_assert_uint_eq(k[5], 1);
  feed_close(&f);

  memcpy(text + n - 1, "z,v\n", 5);
  feed_open(&f, text, ',', 1, 0);
  expect_error(&f, SST_EKEYSIZE,
               ":1: key of 65537 bytes is longer than the limit of 65536");
  feed_close(&f);
  free(text);
}
END_TEST

START_TEST(test_read_error) {
  feed f = {.fd = open(".", O_RDONLY | O_DIRECTORY)};
  ck_assert_int_ge(f.fd, 0);
  snprintf(f.name, sizeof f.name, "somedir");
  ck_assert_int_eq(sst_records_open(f.fd, f.name, NULL, &f.p), 0);
  char want[256];
  snprintf(want, sizeof want, ": read error: %s", strerror(EISDIR));
  expect_error(&f, EISDIR, want);
  sst_records_free(f.p);
  close(f.fd);
}
END_TEST

START_TEST(test_open_rejects) {
  sst_records *p = NULL;
  sst_records_options o;
  sst_records_options_init(&o);
  ck_assert_int_eq(sst_records_open(-1, "x", &o, &p), SST_EINVAL);
  o.delimiter = '\n';
  ck_assert_int_eq(sst_records_open(0, "x", &o, &p), SST_EINVAL);
  o.delimiter = '\r';
  ck_assert_int_eq(sst_records_open(0, "x", &o, &p), SST_EINVAL);
  o.delimiter = '\\';
  o.escaped = 1;
  ck_assert_int_eq(sst_records_open(0, "x", &o, &p), SST_EINVAL);
  o.escaped = 0; /* a backslash is an ordinary byte in plain records */
  ck_assert_int_eq(sst_records_open(0, "x", &o, &p), 0);
  sst_records_free(p);
  sst_records_free(NULL);
}
END_TEST

/* ---- escaped records --------------------------------------------------- */

START_TEST(test_escaped_records) {
  feed f;
  feed_open(&f,
            "k\\x2c\\n,v\\tw\\\\\\0\\xFf,x\n"
            "plain,text\r\n"
            "cr,v\\r\r\n"
            "raw\xc3\xa9,\\x00\n",
            ',', 1, 0);
  expect_record_n(&f, "k,\n", 3, "v\tw\\\0\xff,x", 8);
  expect_record(&f, "plain", "text");
  expect_record(&f, "cr", "v\r");
  expect_record_n(&f, "raw\xc3\xa9", 5, "\0", 1);
  expect_end(&f);
  feed_close(&f);
}
END_TEST

/* When the delimiter is a letter or digit, escape sequences contain it;
 * only a delimiter outside an escape splits. */
START_TEST(test_escaped_letter_delimiter) {
  feed f;
  feed_open(&f, "a\\nbnc\\n\n\\x6e\\x1fnn\n", 'n', 1, 0);
  expect_record(&f, "a\nb", "c\n");
  expect_record(&f, "n\x1f", "n");
  expect_end(&f);
  feed_close(&f);
}
END_TEST

START_TEST(test_escaped_plain_backslash) {
  feed f; /* without escaping, backslashes are data */
  feed_open(&f, "a\\n,\\q\\\n", ',', 0, 0);
  expect_record(&f, "a\\n", "\\q\\");
  expect_end(&f);
  feed_close(&f);
}
END_TEST

START_TEST(test_bad_escape_unknown) {
  feed f;
  feed_open(&f, "ok,1\na\\q,v\n", ',', 1, 0);
  expect_record(&f, "ok", "1");
  expect_error(&f, SST_EPARSE, ":2: bad escape '\\q' in key");
  feed_close(&f);
  feed_open(&f, "k,v\\a\n", ',', 1, 0);
  expect_error(&f, SST_EPARSE, ":1: bad escape '\\a' in value");
  feed_close(&f);
  feed_open(&f, "k,v\\\x01\n", ',', 1, 0);
  expect_error(&f, SST_EPARSE, ":1: bad escape '\\\\x01' in value");
  feed_close(&f);
  /* A backslash before the delimiter escapes it, which is not allowed. */
  feed_open(&f, "a\\,b,c\n", ',', 1, 0);
  expect_error(&f, SST_EPARSE, ":1: bad escape '\\,' in key");
  feed_close(&f);
}
END_TEST

START_TEST(test_bad_escape_hex) {
  feed f;
  feed_open(&f, "k,\\xg1\n", ',', 1, 0);
  expect_error(&f, SST_EPARSE,
               ":1: bad escape '\\xg1' in value: \\x needs two hex digits");
  feed_close(&f);
  feed_open(&f, "k\\x4,v\n", ',', 1, 0);
  expect_error(&f, SST_EPARSE,
               ":1: bad escape '\\x4' in key: \\x needs two hex digits");
  feed_close(&f);
  feed_open(&f, "k,v\\x\n", ',', 1, 0);
  expect_error(&f, SST_EPARSE,
               ":1: bad escape '\\x' in value: \\x needs two hex digits");
  feed_close(&f);
  feed_open(&f, "k,v\\x1\r\n", ',', 1, 0);
  expect_error(&f, SST_EPARSE,
               ":1: bad escape '\\x1' in value: \\x needs two hex digits");
  feed_close(&f);
}
END_TEST

START_TEST(test_trailing_backslash) {
  feed f;
  feed_open(&f, "a,1\n\nk,v\\\n", ',', 1, 0);
  expect_record(&f, "a", "1");
  expect_error(&f, SST_EPARSE, ":3: trailing backslash in value");
  feed_close(&f);
  feed_open(&f, "k,v\\", ',', 1, 0); /* at the end of input */
  expect_error(&f, SST_EPARSE, ":1: trailing backslash in value");
  feed_close(&f);
  feed_open(&f, "k,v\\\r\n", ',', 1, 0); /* the \r is the line ending */
  expect_error(&f, SST_EPARSE, ":1: trailing backslash in value");
  feed_close(&f);
}
END_TEST

/* ---- sst_escape / sst_unescape ----------------------------------------- */

static void expect_unescape(const char *in, const void *want, size_t want_len) {
  uint8_t out[64];
  size_t n = 12345;
  ck_assert_int_eq(sst_unescape((const uint8_t *)in, strlen(in), out, &n), 0);
  ck_assert_uint_eq(n, want_len);
  ck_assert(memcmp(out, want, n) == 0);
}

static void expect_unescape_fails(const char *in) {
  uint8_t out[64];
  size_t n;
  ck_assert_msg(sst_unescape((const uint8_t *)in, strlen(in), out, &n) ==
                    SST_EPARSE,
                "accepted '%s'", in);
}

START_TEST(test_unescape) {
  expect_unescape("", "", 0);
  expect_unescape("plain", "plain", 5);
  expect_unescape("\\\\\\n\\r\\t\\0", "\\\n\r\t\0", 5);
  expect_unescape("\\x00\\x7f\\xAb\\xcD\\xff", "\x00\x7f\xab\xcd\xff", 5);
  expect_unescape("a\\x41b", "aAb", 3);
  expect_unescape_fails("\\");
  expect_unescape_fails("abc\\");
  expect_unescape_fails("\\q");
  expect_unescape_fails("\\N");
  expect_unescape_fails("\\X41");
  expect_unescape_fails("\\x");
  expect_unescape_fails("\\x4");
  expect_unescape_fails("\\x4g");
  expect_unescape_fails("\\xg4");
  expect_unescape_fails("\\x 4");
}
END_TEST

START_TEST(test_unescape_in_place) {
  uint8_t buf[] = "a\\x41\\\\b\\n";
  size_t n;
  ck_assert_int_eq(sst_unescape(buf, strlen((char *)buf), buf, &n), 0);
  ck_assert_uint_eq(n, 5);
  ck_assert(memcmp(buf, "aA\\b\n", 5) == 0);
}
END_TEST

static void expect_escape(const void *in, size_t len, unsigned char delim,
                          const char *want) {
  uint8_t out[256];
  size_t n = sst_escape(in, len, delim, out);
  ck_assert_uint_eq(n, strlen(want));
  ck_assert(memcmp(out, want, n) == 0);
}

START_TEST(test_escape_forms) {
  expect_escape("", 0, ',', "");
  expect_escape("abc", 3, ',', "abc");
  expect_escape("\\\n\r\t\0", 5, ',', "\\\\\\n\\r\\t\\0");
  expect_escape("\x01\x1f\x7f", 3, ',', "\\x01\\x1f\\x7f");
  expect_escape("a,b|c", 5, ',', "a\\x2cb|c");
  expect_escape("a,b|c", 5, '|', "a,b\\x7cc");
  expect_escape("a\tb", 3, '\t', "a\\tb");
  expect_escape("\x80\xff\xc3\xa9", 4, ',', "\x80\xff\xc3\xa9");
  expect_escape("\x80\xff", 2, 0xff, "\x80\\xff");
}
END_TEST

/* Delimiters that never occur inside an escape sequence. */
static const unsigned char clean_delims[] = {',', '\t', '|',  ' ',
                                             ';', 0x01, 0x7f, 0xff};
/* Delimiters that do ('n' in "\n", '7' and 'f' in "\x7f"). */
static const unsigned char letter_delims[] = {'n', 'x', 'f', '7', '0'};

static void random_field(tu_rng *rng, uint8_t *buf, size_t len) {
  tu_rng_fill(rng, buf, len);
  /* Make the interesting bytes common. */
  static const uint8_t special[] = {'\\', '\n', '\r', '\t', 0,   ',', '|',
                                    'n',  'x',  0x7f, 0xff, 'f', '7', '0'};
  for (size_t i = 0; i < len; i++)
    if (tu_rng_below(rng, 3) == 0)
      buf[i] = special[tu_rng_below(rng, sizeof special)];
}

START_TEST(test_escape_round_trip) {
  tu_rng rng;
  tu_rng_seed(&rng, 7);
  uint8_t in[300], esc[1200], back[1200];
  unsigned char delims[sizeof clean_delims + sizeof letter_delims];
  memcpy(delims, clean_delims, sizeof clean_delims);
  memcpy(delims + sizeof clean_delims, letter_delims, sizeof letter_delims);
  for (size_t d = 0; d < sizeof delims; d++) {
    for (int round = 0; round < 500; round++) {
      size_t len = (size_t)tu_rng_below(&rng, sizeof in);
      random_field(&rng, in, len);
      size_t n = sst_escape(in, len, delims[d], esc);
      ck_assert_uint_le(n, 4 * len);
      size_t m = 0;
      ck_assert_int_eq(sst_unescape(esc, n, back, &m), 0);
      ck_assert_uint_eq(m, len);
      ck_assert(memcmp(back, in, len) == 0);
    }
  }
}
END_TEST

START_TEST(test_escape_output_clean) {
  tu_rng rng;
  tu_rng_seed(&rng, 11);
  uint8_t in[256], esc[1024];
  for (size_t d = 0; d < sizeof clean_delims; d++) {
    for (int round = 0; round < 300; round++) {
      size_t len = (size_t)tu_rng_below(&rng, sizeof in);
      random_field(&rng, in, len);
      size_t n = sst_escape(in, len, clean_delims[d], esc);
      ck_assert_ptr_null(memchr(esc, clean_delims[d], n));
      ck_assert_ptr_null(memchr(esc, '\n', n));
      ck_assert_ptr_null(memchr(esc, '\r', n));
      ck_assert_ptr_null(memchr(esc, '\0', n));
    }
  }
}
END_TEST

/* Escaped random records written as lines come back through the parser,
 * for every kind of delimiter. */
START_TEST(test_escape_through_parser) {
  tu_rng rng;
  tu_rng_seed(&rng, 99);
  enum { COUNT = 400 };
  unsigned char delims[sizeof clean_delims + sizeof letter_delims];
  memcpy(delims, clean_delims, sizeof clean_delims);
  memcpy(delims + sizeof clean_delims, letter_delims, sizeof letter_delims);
  static uint8_t keys[COUNT][40], values[COUNT][100];
  static size_t key_lens[COUNT], value_lens[COUNT];
  uint8_t *text = malloc(COUNT * 4 * 150);
  for (size_t d = 0; d < sizeof delims; d++) {
    size_t n = 0;
    for (size_t i = 0; i < COUNT; i++) {
      key_lens[i] = 1 + (size_t)tu_rng_below(&rng, sizeof keys[0] - 1);
      value_lens[i] = (size_t)tu_rng_below(&rng, sizeof values[0]);
      random_field(&rng, keys[i], key_lens[i]);
      random_field(&rng, values[i], value_lens[i]);
      n += sst_escape(keys[i], key_lens[i], delims[d], text + n);
      text[n++] = delims[d];
      n += sst_escape(values[i], value_lens[i], delims[d], text + n);
      if (i % 3 == 0)
        text[n++] = '\r';
      text[n++] = '\n';
    }
    sst_records_options o;
    sst_records_options_init(&o);
    o.delimiter = delims[d];
    o.escaped = 1;
    feed f;
    feed_open_opts(&f, text, n, &o);
    for (size_t i = 0; i < COUNT; i++)
      expect_record_n(&f, keys[i], key_lens[i], values[i], value_lens[i]);
    expect_end(&f);
    feed_close(&f);
  }
  free(text);
}
END_TEST

static Suite *records_suite(void) {
  Suite *s = suite_create("records");
  TCase *ok = tcase_create("parse");
  /* test_many_records parses 60,000 lines: over Check's default 4 s
   * under the sanitizers on a loaded machine. */
  tcase_set_timeout(ok, 60);
  tcase_add_test(ok, test_basic);
  tcase_add_test(ok, test_options_default);
  tcase_add_test(ok, test_null_options);
  tcase_add_test(ok, test_empty_input);
  tcase_add_test(ok, test_final_line_without_newline);
  tcase_add_test(ok, test_crlf);
  tcase_add_test(ok, test_empty_lines);
  tcase_add_test(ok, test_value_with_delimiter);
  tcase_add_test(ok, test_tab_delimiter);
  tcase_add_test(ok, test_binary_bytes_plain);
  tcase_add_test(ok, test_max_key);
  tcase_add_test(ok, test_long_line);
  tcase_add_test(ok, test_many_records);
  tcase_add_test(ok, test_pipe);
  suite_add_tcase(s, ok);

  TCase *bad = tcase_create("errors");
  tcase_add_test(bad, test_missing_delimiter);
  tcase_add_test(bad, test_missing_delimiter_final_line);
  tcase_add_test(bad, test_missing_delimiter_rendering);
  tcase_add_test(bad, test_skip_bad);
  tcase_add_test(bad, test_skip_bad_empty_key);
  tcase_add_test(bad, test_empty_key);
  tcase_add_test(bad, test_oversize_key);
  tcase_add_test(bad, test_oversize_escaped_key);
  tcase_add_test(bad, test_read_error);
  tcase_add_test(bad, test_open_rejects);
  suite_add_tcase(s, bad);

  TCase *esc = tcase_create("escaped");
  tcase_add_test(esc, test_escaped_records);
  tcase_add_test(esc, test_escaped_letter_delimiter);
  tcase_add_test(esc, test_escaped_plain_backslash);
  tcase_add_test(esc, test_bad_escape_unknown);
  tcase_add_test(esc, test_bad_escape_hex);
  tcase_add_test(esc, test_trailing_backslash);
  tcase_add_test(esc, test_unescape);
  tcase_add_test(esc, test_unescape_in_place);
  tcase_add_test(esc, test_escape_forms);
  tcase_add_test(esc, test_escape_round_trip);
  tcase_add_test(esc, test_escape_output_clean);
  tcase_add_test(esc, test_escape_through_parser);
  suite_add_tcase(s, esc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(records_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed != 0;
}
