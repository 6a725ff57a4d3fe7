#include <stdio.h>
#include <string.h>
#define XXH_INLINE_ALL /* compiled in: no libxxhash to load or bind */
#include <xxhash.h>

#include "internal.h"

const char *sst_strerror(int code) {
  switch (code) {
  case 0:
    return "success";
  case SST_ENOTFOUND:
    return "key not found";
  case SST_ENOTTABLE:
    return "not an sstable file (bad magic number)";
  case SST_EVERSION:
    return "unsupported table format version";
  case SST_ETRUNCATED:
    return "table file is truncated";
  case SST_ECORRUPT:
    return "table file is corrupt";
  case SST_ECHECKSUM:
    return "checksum mismatch";
  case SST_EORDER:
    return "keys not in strictly increasing order";
  case SST_EKEYSIZE:
    return "key is empty or longer than 65536 bytes";
  case SST_ESTATE:
    return "operation not allowed in this state";
  case SST_EPARSE:
    return "malformed record";
  case SST_EINVAL:
    return "invalid argument";
  case SST_EDUPKEY:
    return "two file names give the same key";
  case SST_ECHANGED:
    return "file changed while it was read";
  case SST_ENOSPANS:
    return "value not readable as spans of the cache";
  default:
    return code > 0 ? strerror(code) : "unknown error";
  }
}

int sst_error_set(sst_error *err, int code, const char *fmt, ...) {
  if (err != NULL) {
    va_list ap;
    va_start(ap, fmt);
    err->code = code;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
  }
  return code;
}

void sst_key_render(const uint8_t *key, size_t len, char *out, size_t cap) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    if (o + 8 >= cap || o >= 80) {
      snprintf(out + o, cap - o, "...");
      return;
    }
    uint8_t c = key[i];
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out[o++] = (char)c;
    } else {
      out[o++] = '\\';
      out[o++] = 'x';
      out[o++] = hex[c >> 4];
      out[o++] = hex[c & 15];
    }
  }
  if (cap > 0)
    out[o < cap ? o : cap - 1] = '\0';
}

uint32_t sst_checksum(const void *data, size_t len) {
  return (uint32_t)XXH3_64bits(data, len);
}

static sst_log_fn *log_fn;

void sst_set_log(sst_log_fn *fn) { log_fn = fn; }

void sst_log(const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (log_fn != NULL)
    log_fn(line);
  else
    fprintf(stderr, "sst: %s\n", line);
}
