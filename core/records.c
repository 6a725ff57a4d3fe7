/* records.c — `key DELIM value` lines, as read by `sst build`, and the
 * backslash escapes that let any byte string travel inside such a line.
 *
 * Input is read in large chunks into one buffer and records are cut out of
 * it in place: a record's key and value point into the buffer until the
 * next call. The buffer doubles whenever a line does not fit, so a line is
 * limited by memory only. Nothing read is trusted: every scan is bounded by
 * the bytes actually in the buffer.
 *
 * Escaped fields (\\ \n \r \t \0 \xHH) are decoded in place too; a decoded
 * field is never longer than its escaped form.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

/* Large reads keep the per-record cost of parsing close to a memchr. */
#define RECORDS_CHUNK ((size_t)1 << 20)

struct sst_records {
  int fd;
  char *name;
  sst_records_options opts;
  uint8_t *buf;
  size_t cap;
  size_t start;   /* first byte not yet handed out */
  size_t end;     /* end of the bytes read so far */
  size_t scanned; /* [start, scanned) is known to hold no newline */
  int eof;
  uint64_t lines;
  uint64_t skipped;
  sst_error first; /* sticky: once code is set, every call returns it */
};

void sst_records_options_init(sst_records_options *opts) {
  opts->delimiter = ',';
  opts->escaped = 0;
  opts->skip_bad = 0;
}

/* ---- escapes ---------------------------------------------------------- */

static int hex_value(uint8_t c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* The letter of a two-byte escape for c, or 0 if c has none. */
static char escape_letter(uint8_t c) {
  switch (c) {
  case '\\':
    return '\\';
  case '\n':
    return 'n';
  case '\r':
    return 'r';
  case '\t':
    return 't';
  case '\0':
    return '0';
  default:
    return 0;
  }
}

/* The byte a two-byte escape stands for, or -1 if `letter` names none. */
static int unescape_letter(uint8_t letter) {
  switch (letter) {
  case '\\':
    return '\\';
  case 'n':
    return '\n';
  case 'r':
    return '\r';
  case 't':
    return '\t';
  case '0':
    return '\0';
  default:
    return -1;
  }
}

/* Decodes in[0, len) into out. out may be in itself: each output byte is
 * written only after the input bytes it comes from have been read, and
 * never ahead of them. On a bad sequence, returns SST_EPARSE with *bad at
 * the backslash that starts it. */
static int unescape_field(const uint8_t *in, size_t len, uint8_t *out,
                          size_t *out_len, size_t *bad) {
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    if (in[i] != '\\') {
      out[o++] = in[i];
      continue;
    }
    *bad = i;
    if (len - i < 2)
      return SST_EPARSE;
    if (in[i + 1] == 'x') {
      if (len - i < 4)
        return SST_EPARSE;
      int hi = hex_value(in[i + 2]), lo = hex_value(in[i + 3]);
      if (hi < 0 || lo < 0)
        return SST_EPARSE;
      out[o++] = (uint8_t)(hi << 4 | lo);
      i += 3;
      continue;
    }
    int c = unescape_letter(in[i + 1]);
    if (c < 0)
      return SST_EPARSE;
    out[o++] = (uint8_t)c;
    i += 1;
  }
  *out_len = o;
  return 0;
}

int sst_unescape(const uint8_t *in, size_t len, uint8_t *out, size_t *out_len) {
  size_t bad;
  return unescape_field(in, len, out, out_len, &bad);
}

size_t sst_escape(const uint8_t *in, size_t len, unsigned char delimiter,
                  uint8_t *out) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    uint8_t c = in[i];
    char letter = escape_letter(c);
    if (letter != 0) {
      out[o++] = '\\';
      out[o++] = (uint8_t)letter;
    } else if (c < 0x20 || c == 0x7f || c == delimiter) {
      out[o++] = '\\';
      out[o++] = 'x';
      out[o++] = (uint8_t)hex[c >> 4];
      out[o++] = (uint8_t)hex[c & 15];
    } else {
      out[o++] = c;
    }
  }
  return o;
}

/* ---- messages --------------------------------------------------------- */

/* Renders one byte for a message: itself if printable, else an escape. */
static void render_byte(uint8_t c, char out[5]) {
  static const char hex[] = "0123456789abcdef";
  char letter = escape_letter(c);
  if (letter != 0 && c != '\\') {
    out[0] = '\\';
    out[1] = letter;
    out[2] = '\0';
  } else if (c >= 0x20 && c < 0x7f) {
    out[0] = (char)c;
    out[1] = '\0';
  } else {
    out[0] = '\\';
    out[1] = 'x';
    out[2] = hex[c >> 4];
    out[3] = hex[c & 15];
    out[4] = '\0';
  }
}

/* Records the first error, so that later calls return it again. */
__attribute__((format(printf, 4, 5))) static int
records_fail(sst_records *p, sst_error *err, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  p->first.code = code;
  vsnprintf(p->first.msg, sizeof p->first.msg, fmt, ap);
  va_end(ap);
  if (err != NULL)
    *err = p->first;
  return code;
}

/* Explains the bad escape that starts at field[bad]. */
static int records_fail_escape(sst_records *p, sst_error *err,
                               const uint8_t *field, size_t len, size_t bad,
                               const char *what) {
  if (len - bad < 2)
    return records_fail(p, err, SST_EPARSE, "%s:%llu: trailing backslash in %s",
                        p->name, (unsigned long long)p->lines, what);
  char seq[16] = "\\";
  size_t shown = field[bad + 1] == 'x' ? 3 : 1;
  for (size_t i = 1; i <= shown && bad + i < len; i++) {
    char one[5];
    render_byte(field[bad + i], one);
    strcat(seq, one);
  }
  const char *why = field[bad + 1] == 'x' ? ": \\x needs two hex digits" : "";
  return records_fail(p, err, SST_EPARSE, "%s:%llu: bad escape '%s' in %s%s",
                      p->name, (unsigned long long)p->lines, seq, what, why);
}

/* ---- reading lines ---------------------------------------------------- */

static int records_grow(sst_records *p, sst_error *err) {
  if (p->cap > SIZE_MAX / 2)
    return records_fail(p, err, ENOMEM, "%s:%llu: line too long for memory",
                        p->name, (unsigned long long)p->lines + 1);
  uint8_t *bigger = realloc(p->buf, p->cap * 2);
  if (bigger == NULL)
    return records_fail(p, err, ENOMEM,
                        "%s:%llu: out of memory for a line of over %zu bytes",
                        p->name, (unsigned long long)p->lines + 1, p->cap);
  p->buf = bigger;
  p->cap *= 2;
  return 0;
}

/* Reads more input after the bytes not yet handed out, first moving them
 * to the front of the buffer (they are a partial line) and growing the
 * buffer if that line fills it. Sets eof at the end of input. */
static int records_fill(sst_records *p, sst_error *err) {
  if (p->start > 0) {
    memmove(p->buf, p->buf + p->start, p->end - p->start);
    p->end -= p->start;
    p->scanned -= p->start;
    p->start = 0;
  }
  if (p->end == p->cap) {
    int rc = records_grow(p, err);
    if (rc != 0)
      return rc;
  }
  for (;;) {
    ssize_t n = read(p->fd, p->buf + p->end, p->cap - p->end);
    if (n > 0) {
      p->end += (size_t)n;
      return 0;
    }
    if (n == 0) {
      p->eof = 1;
      return 0;
    }
    if (errno != EINTR) {
      int code = errno;
      return records_fail(p, err, code, "%s: read error: %s", p->name,
                          strerror(code));
    }
  }
}

/* Hands out the next line without its "\n" or "\r\n", or NULL at the end
 * of input. A last line without a newline is a line too. */
static int records_line(sst_records *p, sst_error *err, uint8_t **line,
                        size_t *len) {
  for (;;) {
    uint8_t *nl = memchr(p->buf + p->scanned, '\n', p->end - p->scanned);
    if (nl != NULL) {
      size_t n = (size_t)(nl - (p->buf + p->start));
      *line = p->buf + p->start;
      p->start = p->scanned = (size_t)(nl - p->buf) + 1;
      if (n > 0 && (*line)[n - 1] == '\r')
        n--;
      *len = n;
      return 0;
    }
    p->scanned = p->end;
    if (p->eof) {
      *line = p->start < p->end ? p->buf + p->start : NULL;
      *len = p->end - p->start;
      p->start = p->scanned = p->end;
      return 0;
    }
    int rc = records_fill(p, err);
    if (rc != 0)
      return rc;
  }
}

/* ---- records ---------------------------------------------------------- */

/* Returns the index of the last byte of the escape sequence starting with
 * the backslash at line[i]. */
static size_t skip_escape(const uint8_t *line, size_t len, size_t i) {
  if (len - i < 2)
    return i;
  size_t last = i + 1;
  if (line[last] == 'x')
    while (last + 1 < len && last < i + 3 && hex_value(line[last + 1]) >= 0)
      last++;
  return last;
}

/* Returns the index of the delimiter that ends the key, or len if there is
 * none. An escape sequence can contain the delimiter byte when it is a
 * letter or digit ('n' in "\n", 'f' in "\x1f"); those bytes do not count. */
static size_t records_split(const sst_records *p, const uint8_t *line,
                            size_t len) {
  uint8_t delim = p->opts.delimiter;
  const uint8_t *hit = memchr(line, delim, len);
  size_t at = hit != NULL ? (size_t)(hit - line) : len;
  if (!p->opts.escaped || memchr(line, '\\', at) == NULL)
    return at;
  for (size_t i = 0; i < len; i++) {
    if (line[i] == '\\')
      i = skip_escape(line, len, i);
    else if (line[i] == delim)
      return i;
  }
  return len;
}

/* Decodes an escaped field in place. */
static int records_unescape(sst_records *p, sst_error *err, uint8_t *field,
                            size_t *len, const char *what) {
  size_t bad = 0;
  if (unescape_field(field, *len, field, len, &bad) != 0)
    return records_fail_escape(p, err, field, *len, bad, what);
  return 0;
}

static int records_check_key(sst_records *p, sst_error *err, size_t key_len) {
  if (key_len == 0)
    return records_fail(p, err, SST_EPARSE, "%s:%llu: empty key", p->name,
                        (unsigned long long)p->lines);
  if (key_len > SST_KEY_MAX)
    return records_fail(p, err, SST_EKEYSIZE,
                        "%s:%llu: key of %zu bytes is longer than the "
                        "limit of %u",
                        p->name, (unsigned long long)p->lines, key_len,
                        SST_KEY_MAX);
  return 0;
}

int sst_records_open(int fd, const char *name, const sst_records_options *o,
                     sst_records **out) {
  if (fd < 0 || out == NULL)
    return SST_EINVAL;
  sst_records_options defaults;
  if (o == NULL) {
    sst_records_options_init(&defaults);
    o = &defaults;
  }
  /* A newline never is inside a line; a carriage return before the
   * newline is taken for a CRLF ending, so `key\r` + "\r\n" (an empty
   * value) would lose its delimiter; escaped data is full of backslashes.
   * None of them can separate a key from its value. */
  if (o->delimiter == '\n' || o->delimiter == '\r' ||
      (o->escaped && o->delimiter == '\\'))
    return SST_EINVAL;
  sst_records *p = calloc(1, sizeof *p);
  if (p == NULL)
    return ENOMEM;
  p->fd = fd;
  p->opts = *o;
  p->name = strdup(name != NULL ? name : "input");
  p->cap = RECORDS_CHUNK;
  p->buf = malloc(p->cap);
  if (p->name == NULL || p->buf == NULL) {
    sst_records_free(p);
    return ENOMEM;
  }
  *out = p;
  return 0;
}

int sst_records_next(sst_records *p, const uint8_t **key, size_t *key_len,
                     const uint8_t **value, size_t *value_len, sst_error *err) {
  *key = *value = NULL;
  *key_len = *value_len = 0;
  if (p->first.code != 0) {
    if (err != NULL)
      *err = p->first;
    return p->first.code;
  }
  for (;;) {
    uint8_t *line;
    size_t len;
    int rc = records_line(p, err, &line, &len);
    if (rc != 0 || line == NULL)
      return rc;
    p->lines++;
    if (len == 0)
      continue;
    size_t at = records_split(p, line, len);
    /* No delimiter, or an empty key: not a record. (An escaped key is
     * empty only when its field is.) */
    if ((at == len || at == 0) && p->opts.skip_bad) {
      p->skipped++;
      continue;
    }
    if (at == len) {
      char d[5];
      render_byte(p->opts.delimiter, d);
      return records_fail(p, err, SST_EPARSE, "%s:%llu: no '%s' delimiter",
                          p->name, (unsigned long long)p->lines, d);
    }
    uint8_t *k = line, *v = line + at + 1;
    size_t kl = at, vl = len - at - 1;
    if (p->opts.escaped &&
        ((rc = records_unescape(p, err, k, &kl, "key")) != 0 ||
         (rc = records_unescape(p, err, v, &vl, "value")) != 0))
      return rc;
    if ((rc = records_check_key(p, err, kl)) != 0)
      return rc;
    *key = k;
    *key_len = kl;
    *value = v;
    *value_len = vl;
    return 0;
  }
}

uint64_t sst_records_line_count(const sst_records *p) { return p->lines; }

uint64_t sst_records_skipped(const sst_records *p) { return p->skipped; }

void sst_records_free(sst_records *p) {
  if (p == NULL)
    return;
  free(p->buf);
  free(p->name);
  free(p);
}
