/* fuzz_path.c — libFuzzer harness for the key-to-path codec: for any key,
 * the path is made of valid names and decodes back to the key (with and
 * without flat mode and the "also a directory" form); decoding any path
 * never crashes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sstpath.h"

static void check_name(const char *p, size_t n) {
  if (n == 0 || n > SST_NAME_MAX || (n == 1 && p[0] == '.') ||
      (n == 2 && p[0] == '.' && p[1] == '.') || memchr(p, '\0', n))
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char path[SST_PATH_MAX + 1];
  static uint8_t key[SST_KEY_MAX];
  if (size == 0)
    return 0;
  unsigned flags = data[0] & 1 ? SST_PATH_FLAT : 0;
  int also_dir = (data[0] >> 1) & 1;
  const uint8_t *k = data + 1;
  size_t klen = size - 1;
  if (klen >= 1 && klen <= SST_KEY_MAX) {
    size_t n, back;
    if (sst_path_from_key(k, klen, flags, also_dir, path, &n) != 0 ||
        strlen(path) != n)
      abort();
    for (const char *c = path;;) {
      const char *slash = strchr(c, '/');
      check_name(c, slash ? (size_t)(slash - c) : strlen(c));
      if (!slash)
        break;
      c = slash + 1;
    }
    if (sst_path_to_key(path, flags, key, &back) != 0 || back != klen ||
        memcmp(key, k, klen) != 0)
      abort();
  }
  /* The same bytes as a path: any answer, no crash. */
  if (size <= SST_PATH_MAX) {
    memcpy(path, data, size);
    path[size] = '\0';
    size_t back;
    (void)sst_path_to_key(path, flags, key, &back);
  }
  return 0;
}
