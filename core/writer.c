/* writer.c — streams keys in order into a table file (format version 2).
 *
 * Values go to the file as they arrive. Key blocks, index entries and
 * filter partitions collect in spill buffers and are copied after the
 * last value, so that all keys and metadata lie in one region at the end
 * of the file; memory stays at one block, the metadata dictionary and the
 * spill buffers' limits however large the table grows.
 *
 * The table is written to OUT.tmp.XXXXXXXX (8 hex digits) beside OUT and
 * renamed onto OUT at the end. The writer holds flock(LOCK_EX) on that
 * temporary file from its creation until after the rename, so a lock
 * that can be taken means its writer is gone (killed, or the machine
 * stopped). Opening a writer for OUT first removes such temporaries of
 * OUT; those of live writers stay.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#define XXH_INLINE_ALL /* compiled in: no libxxhash to load or bind */
#include <xxhash.h>

#include "block.h"
#include "filter.h"
#include "format.h"
#include "internal.h"
#include "spill.h"

#define OUT_BUF_SIZE (1u << 20)
#define SPILL_MEM_LIMIT (4u << 20)
#define KEYS_MEM_LIMIT (8u << 20)
#define DICT_SLOTS (2 * SST_DICT_MAX) /* open addressing, half full at most */

struct sst_writer {
  sst_writer_options o;
  char *path, *tmp_path;
  int fd;
  int lock_fd; /* holds the temporary file's flock until after the rename */
  int err;     /* sticky first error */
  sst_error errmsg; /* its message */
  int finished;

  uint8_t *obuf; /* output buffer: bytes at file offset pos - olen.. */
  size_t olen;
  uint64_t pos;    /* file offset of the next byte written */
  uint64_t wb_off; /* bytes before it are on their way to the disk */

  sst_block_builder block;
  uint64_t values_off; /* where the current block's values begin */
  uint64_t *hashes;    /* filter hashes of the current block's keys */
  size_t hash_count, hash_cap;
  uint8_t *first_key, *last_key;
  size_t first_len, last_len;
  uint32_t probes;

  sst_spill keys, filter, index_entries, index_restarts;
  uint64_t block_count;
  uint64_t key_count, tombstone_count, key_bytes, value_bytes;

  /* A value being streamed by begin/append/end. */
  int in_value;
  uint64_t stream_off, stream_len;
  XXH3_state_t *stream_hash;

  /* Metadata for the next entry (set_meta), with its own xattr bytes. */
  int has_meta;
  sst_meta meta;
  uint8_t *xattr_buf;
  /* The metadata dictionary: distinct (mode, uid, gid) in order of first
   * use, and a hash table of their indexes + 1. */
  sst_attr *dict;
  uint32_t dict_count;
  uint16_t *dict_slots;
  uint32_t features;
  /* The last value added, for sst_writer_add_shared. */
  int have_last;
  uint64_t last_off, last_vlen;
  uint32_t last_sum;
};

void sst_writer_options_init(sst_writer_options *o) {
  memset(o, 0, sizeof *o);
  o->block_keys = 64;
  o->block_bytes = 4096;
  o->restart_interval = 16;
  o->filter_bits_per_key = 10;
}

static int fail(sst_writer *w, int code, const char *what) {
  if (w->err == 0) {
    w->err = code;
    sst_error_set(&w->errmsg, code, "%s: %s: %s", w->path, what,
                  sst_strerror(code));
  }
  return w->err;
}

/* Every WRITEBACK_STEP bytes written, the kernel is asked to start
 * writing them to the disk (sync_file_range, which does not wait): the
 * disk then works while the table is still being built, and the final
 * fsync finds little left to write. Without it nothing reached the disk
 * before the fsync, which then took most of `sst pack`'s time for a
 * large tree. */
#define WRITEBACK_STEP ((uint64_t)8 << 20)

static void start_writeback(sst_writer *w) {
  uint64_t written = w->pos - w->olen;
  if (w->o.no_sync || written - w->wb_off < WRITEBACK_STEP)
    return;
  /* Advice only: an error here shows again at the fsync. */
  (void)sync_file_range(w->fd, (off_t)w->wb_off, (off_t)(written - w->wb_off),
                        SYNC_FILE_RANGE_WRITE);
  w->wb_off = written;
}

static int out_flush(sst_writer *w) {
  int rc = sst_write_all(w->fd, w->obuf, w->olen);
  w->olen = 0;
  if (rc)
    return fail(w, rc, "write error");
  start_writeback(w);
  return 0;
}

static int out_write(sst_writer *w, const void *data, size_t len) {
  if (w->err)
    return w->err;
  if (w->olen + len > OUT_BUF_SIZE) {
    if (out_flush(w))
      return w->err;
    if (len >= OUT_BUF_SIZE) {
      int rc = sst_write_all(w->fd, data, len);
      if (rc)
        return fail(w, rc, "write error");
      w->pos += len;
      start_writeback(w);
      return 0;
    }
  }
  memcpy(w->obuf + w->olen, data, len);
  w->olen += len;
  w->pos += len;
  return 0;
}

static int out_sink(void *ctx, const void *data, size_t len) {
  return out_write(ctx, data, len);
}

#define TEMP_INFIX ".tmp."
#define TEMP_DIGITS 8

static int flock_retry(int fd, int op) {
  int rc;
  while ((rc = flock(fd, op)) != 0 && errno == EINTR)
    ;
  return rc;
}

static int same_file(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Whether `name` is `base` + ".tmp." + 8 hex digits. */
static int is_temp_of(const char *name, const char *base, size_t base_len) {
  size_t infix = sizeof TEMP_INFIX - 1;
  if (strlen(name) != base_len + infix + TEMP_DIGITS ||
      memcmp(name, base, base_len) != 0 ||
      memcmp(name + base_len, TEMP_INFIX, infix) != 0)
    return 0;
  for (const char *d = name + base_len + infix; *d != '\0'; d++)
    if (!isxdigit((unsigned char)*d))
      return 0;
  return 1;
}

/* Removes the temporaries that writers of `path` killed before their
 * rename left behind: each one whose flock can be taken at once. After
 * locking, the name must still be the file that was locked, or another
 * file now bears it and is left alone. Best effort: whatever cannot be
 * read, opened or locked is kept. */
static void remove_stale_temps(const char *path) {
  char dir_buf[PATH_MAX], base_buf[PATH_MAX];
  if (snprintf(dir_buf, sizeof dir_buf, "%s", path) >= (int)sizeof dir_buf)
    return;
  memcpy(base_buf, dir_buf, sizeof base_buf);
  const char *base = basename(base_buf);
  size_t base_len = strlen(base);
  DIR *d = opendir(dirname(dir_buf));
  if (d == NULL)
    return;
  int dfd = dirfd(d);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!is_temp_of(e->d_name, base, base_len) ||
        (e->d_type != DT_REG && e->d_type != DT_UNKNOWN))
      continue;
    int fd = openat(dfd, e->d_name,
                    O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
      continue;
    struct stat locked, named;
    if (flock_retry(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &locked) == 0 &&
        S_ISREG(locked.st_mode) &&
        fstatat(dfd, e->d_name, &named, AT_SYMLINK_NOFOLLOW) == 0 &&
        same_file(&locked, &named))
      unlinkat(dfd, e->d_name, 0);
    close(fd); /* drops the lock */
  }
  closedir(d);
}

/* Creates `path.tmp.XXXXXXXX` exclusively, so the process umask applies,
 * and locks it. A scan of another writer may have taken the lock between
 * the create and our flock and removed the file as stale: then the name
 * no longer leads to the locked file, and another name is tried. */
static int create_temp(sst_writer *w) {
  size_t n = strlen(w->path) + 40;
  if ((w->tmp_path = malloc(n)) == NULL)
    return ENOMEM;
  unsigned seed =
      (unsigned)getpid() ^ (unsigned)time(NULL) ^ (unsigned)(uintptr_t)w;
  for (int attempt = 0; attempt < 100; attempt++) {
    seed = seed * 1103515245u + 12345u;
    snprintf(w->tmp_path, n, "%s" TEMP_INFIX "%0*x", w->path, TEMP_DIGITS,
             seed);
    w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (w->fd < 0) {
      if (errno == EEXIST)
        continue;
      return errno;
    }
    struct stat locked, named;
    if (flock_retry(w->fd, LOCK_EX) != 0 || fstat(w->fd, &locked) != 0 ||
        (w->lock_fd = fcntl(w->fd, F_DUPFD_CLOEXEC, 0)) < 0) {
      int rc = errno;
      unlink(w->tmp_path);
      close(w->fd);
      w->fd = -1;
      return rc;
    }
    if (stat(w->tmp_path, &named) == 0 && same_file(&locked, &named))
      return 0;
    close(w->lock_fd);
    close(w->fd);
    w->lock_fd = w->fd = -1;
  }
  return EEXIST;
}

int sst_writer_open(const char *path, const sst_writer_options *opts,
                    sst_writer **out, sst_error *err) {
  *out = NULL;
  sst_writer *w = calloc(1, sizeof *w);
  if (w == NULL)
    return sst_error_set(err, ENOMEM, "%s: out of memory", path);
  w->fd = w->lock_fd = -1;
  if (opts)
    w->o = *opts;
  else
    sst_writer_options_init(&w->o);
  if (w->o.block_bytes == 0)
    w->o.block_bytes = 4096;
  if (w->o.restart_interval == 0)
    w->o.restart_interval = 16;
  w->probes = w->o.filter_bits_per_key
                  ? sst_filter_probes(w->o.filter_bits_per_key)
                  : 0;
  int rc = 0;
  if ((w->path = strdup(path)) == NULL ||
      (w->obuf = malloc(OUT_BUF_SIZE)) == NULL ||
      (w->first_key = malloc(SST_KEY_MAX)) == NULL ||
      (w->last_key = malloc(SST_KEY_MAX)) == NULL ||
      (w->stream_hash = XXH3_createState()) == NULL) {
    rc = ENOMEM;
    goto fail;
  }
  /* Spill files go beside the output, on the same filesystem. */
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", path);
  const char *d = dirname(dir);
  sst_block_builder_init(&w->block, w->o.restart_interval);
  if ((rc = sst_spill_init(&w->keys, d, KEYS_MEM_LIMIT)) ||
      (rc = sst_spill_init(&w->filter, d, SPILL_MEM_LIMIT)) ||
      (rc = sst_spill_init(&w->index_entries, d, SPILL_MEM_LIMIT)) ||
      (rc = sst_spill_init(&w->index_restarts, d, SPILL_MEM_LIMIT)))
    goto fail;
  remove_stale_temps(path);
  if ((rc = create_temp(w)) != 0) {
    sst_error_set(err, rc, "%s: cannot create temporary file: %s", path,
                  sst_strerror(rc));
    sst_writer_free(w);
    return rc;
  }
  uint8_t header[SST_HEADER_SIZE];
  sst_header_encode(header);
  out_write(w, header, sizeof header);
  w->values_off = w->pos;
  *out = w;
  return 0;
fail:
  sst_error_set(err, rc, "%s: %s", path, sst_strerror(rc));
  sst_writer_free(w);
  return rc;
}

/* Checks the key against the previous one and records it as the last. */
static int accept_key(sst_writer *w, const uint8_t *key, size_t len) {
  if (w->err)
    return w->err;
  if (w->in_value || w->finished)
    return SST_ESTATE;
  if (len == 0 || len > SST_KEY_MAX)
    return SST_EKEYSIZE;
  if (w->key_count > 0 && sst_key_cmp(key, len, w->last_key, w->last_len) <= 0)
    return SST_EORDER;
  memcpy(w->last_key, key, len);
  w->last_len = len;
  return 0;
}

static int flush_block(sst_writer *w) {
  const uint8_t *data;
  size_t len;
  if (sst_block_builder_finish(&w->block, &data, &len))
    return fail(w, ENOMEM, "out of memory");
  /* block_off relative to the key region, which starts after the values. */
  sst_handle h = {.values_off = w->values_off,
                  .values_len = w->pos - w->values_off,
                  .block_off = w->keys.size,
                  .block_len = len};
  uint8_t trailer[SST_TRAILER_SIZE];
  sst_put_u32(trailer, sst_checksum(data, len));
  int wrc;
  if ((wrc = sst_spill_write(&w->keys, data, len)) ||
      (wrc = sst_spill_write(&w->keys, trailer, sizeof trailer)))
    return fail(w, wrc, "key block spill");

  h.filter_off = w->filter.size;
  if (w->probes) {
    uint8_t part[4096];
    size_t plen =
        sst_filter_size((uint32_t)w->hash_count, w->o.filter_bits_per_key);
    uint8_t *buf = plen <= sizeof part ? part : malloc(plen);
    if (buf == NULL)
      return fail(w, ENOMEM, "out of memory");
    sst_filter_build(w->hashes, (uint32_t)w->hash_count,
                     w->o.filter_bits_per_key, w->probes, buf);
    int rc = sst_spill_write(&w->filter, buf, plen);
    if (buf != part)
      free(buf);
    if (rc)
      return fail(w, rc, "filter spill");
    h.filter_len = plen;
  }

  /* Index entry: a whole key (restart interval 1), payload a handle. */
  uint8_t head[80], rst[4];
  uint8_t payload[60];
  size_t plen =
      (size_t)(sst_handle_encode(payload, SST_FORMAT_VERSION, &h, 0, 0) -
               payload);
  uint8_t *p = sst_put_varint(head, 0);
  p = sst_put_varint(p, w->first_len);
  p = sst_put_varint(p, plen);
  if (w->index_entries.size > UINT32_MAX - 100 - w->first_len)
    return fail(w, EFBIG, "index larger than 4 GiB");
  sst_put_u32(rst, (uint32_t)w->index_entries.size);
  int rc;
  if ((rc = sst_spill_write(&w->index_entries, head, (size_t)(p - head))) ||
      (rc = sst_spill_write(&w->index_entries, w->first_key, w->first_len)) ||
      (rc = sst_spill_write(&w->index_entries, payload, plen)) ||
      (rc = sst_spill_write(&w->index_restarts, rst, sizeof rst)))
    return fail(w, rc, "index spill");
  w->block_count++;
  sst_block_builder_reset(&w->block);
  w->hash_count = 0;
  w->values_off = w->pos;
  return 0;
}

/* The dictionary index of (mode, uid, gid), adding it if there is room;
 * 0 when it is not in the dictionary (the entry then stores it inline). */
static uint64_t dict_attr(sst_writer *w, const sst_meta *m) {
  if (w->dict_slots == NULL) {
    if ((w->dict_slots = calloc(DICT_SLOTS, sizeof *w->dict_slots)) == NULL ||
        (w->dict = malloc(SST_DICT_MAX * sizeof *w->dict)) == NULL)
      return 0;
  }
  uint32_t key[3] = {m->mode, m->uid, m->gid};
  size_t i = (size_t)XXH3_64bits(key, sizeof key) & (DICT_SLOTS - 1);
  for (;; i = (i + 1) & (DICT_SLOTS - 1)) {
    uint16_t slot = w->dict_slots[i];
    if (slot == 0)
      break;
    const sst_attr *a = &w->dict[slot - 1];
    if (a->mode == m->mode && a->uid == m->uid && a->gid == m->gid)
      return slot;
  }
  if (w->dict_count == SST_DICT_MAX)
    return 0;
  w->dict[w->dict_count] = (sst_attr){m->mode, m->uid, m->gid};
  w->dict_slots[i] = (uint16_t)++w->dict_count;
  return w->dict_count;
}

static int add_entry(sst_writer *w, unsigned flags, uint64_t value_off,
                     uint64_t value_len, uint32_t checksum) {
  const uint8_t *key = w->last_key;
  size_t key_len = w->last_len;
  if (w->block.count == 0) {
    memcpy(w->first_key, key, key_len);
    w->first_len = key_len;
  }
  sst_value_ref v = {
      .flags = flags,
      .len = value_len,
      .rel = (flags & SST_FLAG_SHARED) ? value_off : value_off - w->values_off,
      .checksum = checksum};
  if (w->has_meta && !(flags & SST_FLAG_TOMBSTONE)) {
    const sst_meta *m = &w->meta;
    if (m->type == SST_TYPE_DIR && value_len != 0)
      return SST_EINVAL;
    v.flags |= SST_FLAG_META;
    v.type = m->type;
    v.mode = m->mode;
    v.uid = m->uid;
    v.gid = m->gid;
    v.attr = dict_attr(w, m);
    v.mtime_sec = m->mtime_sec;
    v.mtime_nsec = m->mtime_nsec;
    v.link_id = m->link_id;
    v.nlink = m->link_id ? m->nlink : 1;
    v.xattr_len = m->xattr_len;
    v.xattrs = w->xattr_buf;
    w->features |= SST_FEATURE_META;
    if (m->xattr_len)
      w->features |= SST_FEATURE_XATTRS;
  }
  w->has_meta = 0;
  uint8_t small[SST_VALUE_REF_MAX + 256];
  uint8_t *payload = small;
  if (v.xattr_len > sizeof small - SST_VALUE_REF_MAX &&
      (payload = malloc(SST_VALUE_REF_MAX + v.xattr_len)) == NULL)
    return fail(w, ENOMEM, "out of memory");
  size_t plen =
      (size_t)(sst_value_ref_encode(payload, SST_FORMAT_VERSION, &v) - payload);
  int rc = sst_block_builder_add(&w->block, key, key_len, payload, plen);
  if (payload != small)
    free(payload);
  if (rc)
    return fail(w, ENOMEM, "out of memory");
  if (!(flags & SST_FLAG_TOMBSTONE)) {
    w->have_last = 1;
    w->last_off = value_off;
    w->last_vlen = value_len;
    w->last_sum = checksum;
  }
  if (w->probes) {
    if (w->hash_count == w->hash_cap) {
      size_t cap = w->hash_cap ? 2 * w->hash_cap : 64;
      uint64_t *h = realloc(w->hashes, cap * sizeof *h);
      if (h == NULL)
        return fail(w, ENOMEM, "out of memory");
      w->hashes = h;
      w->hash_cap = cap;
    }
    w->hashes[w->hash_count++] = sst_filter_hash(key, key_len);
  }
  w->key_count++;
  w->key_bytes += key_len;
  w->value_bytes += value_len;
  if (flags & SST_FLAG_TOMBSTONE)
    w->tombstone_count++;
  if ((w->o.block_keys && w->block.count >= w->o.block_keys) ||
      sst_block_builder_size(&w->block) >= w->o.block_bytes)
    return flush_block(w);
  return 0;
}

int sst_writer_set_meta(sst_writer *w, const sst_meta *m) {
  if (w->in_value)
    return SST_ESTATE;
  if (m == NULL) {
    w->has_meta = 0;
    return 0;
  }
  if (m->type > SST_TYPE_SYMLINK || m->mode > 07777 ||
      m->mtime_nsec > 999999999 || m->xattr_len > SST_XATTRS_MAX ||
      (m->xattr_len && m->xattrs == NULL) ||
      (m->link_id && (m->nlink < 2 || m->type != SST_TYPE_FILE)) ||
      (!m->link_id && m->nlink > 1))
    return SST_EINVAL;
  if (m->xattr_len) {
    uint8_t *b = realloc(w->xattr_buf, m->xattr_len);
    if (b == NULL)
      return ENOMEM;
    w->xattr_buf = b;
    memcpy(b, m->xattrs, m->xattr_len);
    /* What the reader would refuse is refused here. */
    sst_value_ref probe = {.flags = SST_FLAG_META,
                           .xattr_len = m->xattr_len,
                           .xattrs = b,
                           .attr = 0,
                           .nlink = 1};
    uint8_t *tmp = malloc(SST_VALUE_REF_MAX + m->xattr_len);
    if (tmp == NULL)
      return ENOMEM;
    uint8_t *end = sst_value_ref_encode(tmp, SST_FORMAT_VERSION, &probe);
    sst_value_ref back;
    int bad = sst_value_ref_decode(tmp, end, SST_FORMAT_VERSION, &back);
    free(tmp);
    if (bad)
      return SST_EINVAL;
  }
  w->meta = *m;
  w->meta.xattrs = NULL;
  w->has_meta = 1;
  return 0;
}

int sst_writer_last_value(const sst_writer *w, uint64_t *offset, uint64_t *len,
                          uint32_t *checksum) {
  if (!w->have_last)
    return SST_ESTATE;
  *offset = w->last_off;
  *len = w->last_vlen;
  *checksum = w->last_sum;
  return 0;
}

int sst_writer_add_shared(sst_writer *w, const void *key, size_t key_len,
                          uint64_t offset, uint64_t len, uint32_t checksum) {
  if (offset < SST_HEADER_SIZE || offset > w->pos || len > w->pos - offset)
    return SST_EINVAL;
  if (w->has_meta && w->meta.type == SST_TYPE_DIR)
    return SST_EINVAL;
  int rc = accept_key(w, key, key_len);
  if (rc)
    return rc;
  return add_entry(w, SST_FLAG_SHARED, offset, len, checksum);
}

int sst_writer_add(sst_writer *w, const void *key, size_t key_len,
                   const void *value, uint64_t value_len) {
  int rc = accept_key(w, key, key_len);
  if (rc)
    return rc;
  if (w->has_meta && w->meta.type == SST_TYPE_DIR && value_len != 0)
    return SST_EINVAL;
  uint64_t off = w->pos;
  if (value_len > SIZE_MAX)
    return fail(w, EFBIG, "value too large");
  if (out_write(w, value, (size_t)value_len))
    return w->err;
  return add_entry(w, 0, off, value_len,
                   sst_checksum(value, (size_t)value_len));
}

int sst_writer_add_tombstone(sst_writer *w, const void *key, size_t key_len) {
  int rc = accept_key(w, key, key_len);
  if (rc)
    return rc;
  w->has_meta = 0; /* a tombstone carries none */
  return add_entry(w, SST_FLAG_TOMBSTONE, w->pos, 0, sst_checksum("", 0));
}

int sst_writer_begin_value(sst_writer *w, const void *key, size_t key_len) {
  int rc = accept_key(w, key, key_len);
  if (rc)
    return rc;
  XXH3_64bits_reset(w->stream_hash);
  w->stream_off = w->pos;
  w->stream_len = 0;
  w->in_value = 1;
  return 0;
}

int sst_writer_append_value(sst_writer *w, const void *data, size_t len) {
  if (w->err)
    return w->err;
  if (!w->in_value)
    return SST_ESTATE;
  XXH3_64bits_update(w->stream_hash, data, len);
  w->stream_len += len;
  return out_write(w, data, len);
}

int sst_writer_end_value(sst_writer *w) {
  if (w->err)
    return w->err;
  if (!w->in_value)
    return SST_ESTATE;
  w->in_value = 0;
  return add_entry(w, 0, w->stream_off, w->stream_len,
                   (uint32_t)XXH3_64bits_digest(w->stream_hash));
}

uint64_t sst_writer_key_count(const sst_writer *w) { return w->key_count; }
uint64_t sst_writer_value_bytes(const sst_writer *w) { return w->value_bytes; }

/* Hashes what passes through on its way to the output. */
struct hashing_sink {
  sst_writer *w;
  XXH3_state_t *h;
};

static int hashing_sink(void *ctx, const void *data, size_t len) {
  struct hashing_sink *s = ctx;
  XXH3_64bits_update(s->h, data, len);
  return out_write(s->w, data, len);
}

/* The properties block: tagged sections, then a checksum of them all.
 * Today's one section is the metadata dictionary. */
static int write_props(sst_writer *w) {
  if (w->dict_count == 0)
    return 0;
  size_t cap = 10 + (size_t)w->dict_count * 15;
  uint8_t *body = malloc(cap);
  if (body == NULL)
    return fail(w, ENOMEM, "out of memory");
  uint8_t *p = sst_put_varint(body, w->dict_count);
  for (uint32_t i = 0; i < w->dict_count; i++) {
    p = sst_put_varint(p, w->dict[i].mode);
    p = sst_put_varint(p, w->dict[i].uid);
    p = sst_put_varint(p, w->dict[i].gid);
  }
  size_t body_len = (size_t)(p - body);
  struct hashing_sink hs = {w, w->stream_hash};
  XXH3_64bits_reset(hs.h);
  uint8_t head[20], trailer[4];
  uint8_t *h = sst_put_varint(head, SST_PROP_ATTRS);
  h = sst_put_varint(h, body_len);
  int rc = hashing_sink(&hs, head, (size_t)(h - head)) ||
           hashing_sink(&hs, body, body_len);
  free(body);
  if (rc)
    return w->err;
  sst_put_u32(trailer, (uint32_t)XXH3_64bits_digest(hs.h));
  return out_write(w, trailer, sizeof trailer);
}

static int write_tail(sst_writer *w) {
  sst_footer f = {0};
  f.keys_off = w->pos;
  if (sst_spill_drain(&w->keys, out_sink, w))
    return fail(w, w->err ? w->err : EIO, "key block copy");
  f.filter_off = w->pos;
  if (sst_spill_drain(&w->filter, out_sink, w))
    return fail(w, w->err ? w->err : EIO, "filter copy");
  f.filter_len = w->pos - f.filter_off;
  f.props_off = w->pos;
  if (write_props(w))
    return w->err;

  f.index_off = w->pos;
  struct hashing_sink hs = {w, w->stream_hash};
  XXH3_64bits_reset(hs.h);
  uint8_t count[4], trailer[4];
  sst_put_u32(count, (uint32_t)w->block_count);
  int rc;
  if ((rc = sst_spill_drain(&w->index_entries, hashing_sink, &hs)) ||
      (rc = sst_spill_drain(&w->index_restarts, hashing_sink, &hs)) ||
      (rc = hashing_sink(&hs, count, sizeof count)))
    return fail(w, rc, "index copy");
  f.index_len = w->pos - f.index_off;
  sst_put_u32(trailer, (uint32_t)XXH3_64bits_digest(hs.h));
  if (out_write(w, trailer, sizeof trailer))
    return w->err;

  f.key_count = w->key_count;
  f.tombstone_count = w->tombstone_count;
  f.key_bytes = w->key_bytes;
  f.value_bytes = w->value_bytes;
  f.block_count = w->block_count;
  f.block_keys = w->o.block_keys;
  f.block_bytes = w->o.block_bytes;
  f.restart_interval = w->o.restart_interval;
  f.filter_bits_per_key = w->o.filter_bits_per_key;
  f.filter_probes = w->probes;
  f.features = w->features;
  uint8_t footer[SST_FOOTER_SIZE];
  sst_footer_encode(&f, footer);
  if (out_write(w, footer, sizeof footer) || out_flush(w))
    return w->err;
  return 0;
}

static int sync_dir(const char *path) {
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", path);
  int fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return errno;
  int rc = fsync(fd) ? errno : 0;
  close(fd);
  return rc;
}

/* Writes what remains of the table after the last key: its last key
 * block, then the tail. */
static int complete_table(sst_writer *w) {
  if (w->in_value)
    fail(w, SST_ESTATE, "a streamed value was not ended");
  if (w->err == 0 && w->block.count > 0)
    flush_block(w);
  if (w->block_count > UINT32_MAX)
    fail(w, EFBIG, "more than 2^32 key blocks");
  if (w->err == 0)
    write_tail(w);
  return w->err;
}

static int finish_result(sst_writer *w, sst_error *err) {
  w->finished = 1;
  if (w->err) {
    if (err)
      *err = w->errmsg;
    return w->err;
  }
  return 0;
}

int sst_writer_finish_temp(sst_writer *w, const char **tmp_path,
                           sst_error *err) {
  if (w->finished)
    return sst_error_set(err, SST_ESTATE, "%s: writer already finished",
                         w->path);
  /* The lock stays with lock_fd, which shares the open file. */
  if (complete_table(w) == 0 && close(w->fd) != 0)
    fail(w, errno, "close");
  w->fd = -1;
  *tmp_path = w->err == 0 ? w->tmp_path : NULL;
  return finish_result(w, err);
}

int sst_writer_finish(sst_writer *w, sst_error *err) {
  if (w->finished)
    return sst_error_set(err, SST_ESTATE, "%s: writer already finished",
                         w->path);
  complete_table(w);
  if (w->err == 0 && !w->o.no_sync && fsync(w->fd) != 0)
    fail(w, errno, "fsync");
  if (w->err == 0 && close(w->fd) != 0)
    fail(w, errno, "close");
  else if (w->err == 0)
    w->fd = -1;
  if (w->err == 0 && rename(w->tmp_path, w->path) != 0)
    fail(w, errno, "rename into place");
  if (w->err == 0) {
    free(w->tmp_path);
    w->tmp_path = NULL;
    close(w->lock_fd); /* the lock is no longer needed once renamed */
    w->lock_fd = -1;
    if (!w->o.no_sync) {
      int rc = sync_dir(w->path);
      if (rc)
        fail(w, rc, "fsync of directory");
    }
  }
  return finish_result(w, err);
}

void sst_writer_free(sst_writer *w) {
  if (w == NULL)
    return;
  if (w->fd >= 0)
    close(w->fd);
  if (w->tmp_path != NULL)
    unlink(w->tmp_path);
  if (w->lock_fd >= 0) /* after the unlink: no scan finds it unlocked */
    close(w->lock_fd);
  free(w->tmp_path);
  free(w->path);
  free(w->obuf);
  free(w->first_key);
  free(w->last_key);
  free(w->hashes);
  if (w->stream_hash)
    XXH3_freeState(w->stream_hash);
  sst_block_builder_free(&w->block);
  sst_spill_free(&w->keys);
  sst_spill_free(&w->filter);
  free(w->xattr_buf);
  free(w->dict);
  free(w->dict_slots);
  sst_spill_free(&w->index_entries);
  sst_spill_free(&w->index_restarts);
  free(w);
}
