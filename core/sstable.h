/* sstable.h — the sstfs table library: write, sort and read SSTable files.
 *
 * A table is an immutable file of unique keys in bytewise (memcmp) order,
 * each with a value or a deletion marker (tombstone). docs/FORMAT.md draws
 * the file byte by byte.
 *
 * Conventions
 * - Handles are opaque. Functions are named sst_<object>_<verb>.
 * - Every function that can fail returns an int: 0 on success, a positive
 *   errno value for a failed system call, or one of the negative SST_E*
 *   codes below. sst_strerror() turns any of them into text.
 * - Where a function takes an `sst_error *err`, it may be NULL; when it is
 *   not, a failure also leaves a one-line message there naming the file and
 *   what is wrong ("data.sstable: key block 3 at offset 8192: checksum
 *   mismatch").
 * - Results come back through out-pointers. Memory the library returns
 *   belongs to the library unless a function says otherwise.
 * - Threads: a handle is used by one thread at a time (its calls must not
 *   overlap), and separate handles are independent. A reader is the
 *   exception: one reader may be shared by any number of threads (see
 *   Reader below).
 */
#ifndef SSTABLE_H
#define SSTABLE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SST_VERSION_STRING "0.1.0"
#define SST_FORMAT_VERSION 2 /* what the writer writes; 1 is still read */

/* Limits of the format. */
#define SST_KEY_MAX 65536u /* a key is 1 to 64 KiB bytes */

/* Library error codes (a reserved negative range; errno values are > 0). */
enum {
  SST_ENOTFOUND = -30800, /* no such key (or the key is a tombstone) */
  SST_ENOTTABLE,          /* the file is not an sstable (bad magic) */
  SST_EVERSION,           /* format version not supported */
  SST_ETRUNCATED,         /* the file is shorter than its footer says */
  SST_ECORRUPT,           /* a structure fails a bounds or sanity check */
  SST_ECHECKSUM,          /* a checksum does not match */
  SST_EORDER,             /* writer: key not greater than the previous one */
  SST_EKEYSIZE,           /* key empty or longer than SST_KEY_MAX */
  SST_ESTATE,             /* call not allowed in the object's state */
  SST_EPARSE,             /* record input: malformed line */
  SST_EINVAL,             /* bad argument */
  SST_EDUPKEY,            /* two file names give the same key */
  SST_ECHANGED,           /* a file changed while it was read */
  SST_ENOSPANS,           /* read_spans: read this with sst_reader_read */
};

/* Text for any code returned by this library (errno values included).
 * The string is static. */
const char *sst_strerror(int code);

typedef struct sst_error {
  int code;      /* same value the failing function returned */
  char msg[512]; /* one line, no trailing newline */
} sst_error;

/* Where the library reports what no call returns to a caller that could
 * say it: today, a remote table that changed on its server, or a range
 * request that failed after its retries (one line each, no newline).
 * The default writes "sst: LINE" to stderr; NULL restores it. Set it
 * before any reader is opened. */
typedef void sst_log_fn(const char *line);
void sst_set_log(sst_log_fn *fn);

/* ------------------------------------------------------------------ */
/* Keys: the table's order, and how messages show a key.              */

/* Compares two keys in table order: bytewise (memcmp), a proper prefix
 * before the longer key. Returns < 0, 0 or > 0. */
static inline int sst_key_cmp(const uint8_t *a, size_t al, const uint8_t *b,
                              size_t bl) {
  size_t n = al < bl ? al : bl;
  int c = n ? memcmp(a, b, n) : 0;
  if (c != 0)
    return c;
  return (al > bl) - (al < bl);
}

/* A buffer of this many bytes always holds a key's whole rendering. */
#define SST_KEY_RENDER_SIZE 88

/* Writes a short, printable rendering of key into out, the caller's
 * buffer of cap bytes, as the library's own messages show keys: printable
 * ASCII as it is, the backslash and every other byte as \xHH, and "..."
 * in place of what would go past about 80 characters (or past a buffer
 * smaller than SST_KEY_RENDER_SIZE). With cap > 0 the text is always
 * NUL-terminated. Nothing is allocated or kept: out stays the caller's,
 * and the text in it stays valid until the caller changes it. */
void sst_key_render(const uint8_t *key, size_t len, char *out, size_t cap);

/* Entry flags. */
#define SST_FLAG_TOMBSTONE 0x01u
#define SST_FLAG_META 0x02u /* the entry carries file metadata (meta) */
/* The value lies in a value block: small values are stored together,
 * a block compressed as one (sst_entry.value_block; value_offset is the
 * value's offset in the block's decompressed bytes). */
#define SST_FLAG_PACKED 0x04u
/* The value is stored in chunks, each compressed or raw, with a table of
 * them after the last (value_offset and value_stored: the stored bytes
 * in the file). */
#define SST_FLAG_CHUNKED 0x08u
/* The value is shared with other entries (hard links, identical values):
 * its bytes may lie anywhere in the value region. */
#define SST_FLAG_SHARED 0x10u

/* ------------------------------------------------------------------ */
/* File metadata (format version 2), optional per entry.               */
/*                                                                     */
/* A table packed from a tree carries, for each entry, the file's type, */
/* permission bits, owner, mtime, hard-link group and extended         */
/* attributes. A directory's entry has the key of its path followed by */
/* '/' ("a/b/"); the root directory's is "/". A symlink's value is its */
/* target. Names of one hard-link group share one value (one copy in   */
/* the file) and carry the same link_id and nlink. Entries without     */
/* SST_FLAG_META are plain key/value entries, as in version 1.         */

enum { SST_TYPE_FILE = 0, SST_TYPE_DIR = 1, SST_TYPE_SYMLINK = 2 };

/* Longest encoded extended attributes of one entry. */
#define SST_XATTRS_MAX (256u << 10)

typedef struct sst_meta {
  unsigned type; /* SST_TYPE_* */
  uint32_t mode; /* permission bits, setuid, setgid, sticky: 07777 */
  uint32_t uid, gid;
  int64_t mtime_sec;   /* seconds since the epoch (may be negative) */
  uint32_t mtime_nsec; /* 0..999999999 */
  uint32_t nlink;      /* names of the entry's hard-link group; 1 if none */
  uint64_t link_id;    /* the hard-link group, 1.. unique in the table;
                          0 when the entry is not hard-linked */
  uint32_t xattr_len;  /* bytes of encoded extended attributes, 0 if none */
  /* Reader: where the encoded attributes lie in the table file (read them
   * with sst_reader_xattrs). Writer: ignored. */
  uint64_t xattr_off;
  /* Writer: the encoded attributes (sst_xattrs_encode), xattr_len bytes.
   * Reader: NULL. */
  const uint8_t *xattrs;
} sst_meta;

/* One extended attribute: a name ("user.x") and a value of any bytes. */
typedef struct sst_xattr {
  const char *name; /* not NUL-terminated when read back: use name_len */
  size_t name_len;  /* 1..255 */
  const uint8_t *value;
  size_t value_len; /* 0..65536 */
} sst_xattr;

/* Encodes n attributes, sorted by name by the caller, into buf (cap
 * bytes). Returns the encoded size (which may exceed cap: then nothing
 * useful was written; call again with a larger buffer), or 0 for n == 0.
 * The layout: count varint, then per attribute name_len varint, name,
 * value_len varint, value. */
size_t sst_xattrs_encode(const sst_xattr *x, size_t n, uint8_t *buf,
                         size_t cap);

/* Steps through encoded attributes: *pos starts at 0. Returns 1 with *x
 * set (pointing into buf), 0 after the last, or SST_ECORRUPT. */
int sst_xattrs_next(const uint8_t *buf, size_t len, size_t *pos, sst_xattr *x);

/* ------------------------------------------------------------------ */
/* Writer: keys in strictly increasing order, streamed to disk.        */

/* A writer is used by one thread at a time. Separate writers are
 * independent, even for the same path, in one process or several: each
 * writes its own locked temporary file, and the last to finish leaves its
 * table at the path. */
typedef struct sst_writer sst_writer;

typedef struct sst_writer_options {
  /* The sparse-index interval: a key block is closed after this many keys
   * (default 64), or earlier once it holds block_bytes of encoded entries
   * (default 4096). The index holds the first key of every block. */
  uint32_t block_keys;
  uint32_t block_bytes;
  /* Keys between restart points inside a key block (default 16). */
  uint32_t restart_interval;
  /* Bloom filter bits per key (default 10, about 1% false positives);
   * 0 disables the filter. */
  uint32_t filter_bits_per_key;
  /* Skip fsync of the file and its directory (tests only). */
  int no_sync;
  /* Value compression with zstd at this level (1..19); 0 stores every
   * value as it is (default), readable in place with no decoding.
   * Compressed, values of up to value_block / 4 bytes are stored together
   * in value blocks of about value_block bytes (default 128 KiB), each
   * compressed as one; larger values are cut into chunks of chunk_size
   * bytes (default 128 KiB), each compressed alone, so that a read at any
   * offset decompresses one chunk. A block or chunk that does not shrink
   * is stored raw. */
  int zstd_level;
  uint32_t value_block;
  uint32_t chunk_size;
  /* With compression, train a zstd dictionary on the first small values
   * (about 4 MiB of them) and keep it when it makes the table smaller
   * (default 1). */
  int dictionary;
  /* Store identical values once: a value whose bytes equal an earlier
   * one's (found by a 128-bit hash, confirmed by comparing the bytes)
   * refers to it (default 0; costs about 48 bytes of memory a distinct
   * value). */
  int dedup;
  /* With compression, the number of threads that compress blocks and
   * chunks while the caller goes on adding (at most SST_THREADS_MAX);
   * 0 compresses in the caller's thread (default). The table's bytes are
   * the same whatever the number. */
  unsigned threads;
} sst_writer_options;

#define SST_THREADS_MAX 64

/* Fills *opts with the defaults above. */
void sst_writer_options_init(sst_writer_options *opts);

/* A compression setting as the tools take it (--compress, -o compress=):
 * "none" (level 0), "zstd" (default_level) or "zstd:LEVEL" with LEVEL 1
 * to 19. Sets *level and returns 0, or returns SST_EINVAL. */
int sst_parse_compress(const char *arg, int default_level, int *level);

/* Creates a writer for `path`. The table is written to a temporary file in
 * the same directory (path + ".tmp." + 8 hex digits) and renamed onto
 * `path` by sst_writer_finish(), so `path` never holds a partial table.
 * The writer holds flock(LOCK_EX) on its temporary file until then.
 * Before creating its own, it removes the temporaries of `path` that a
 * killed writer left: every file in the directory named exactly
 * path + ".tmp." + 8 hex digits whose flock it can take at once. Those
 * locked by a live writer are left alone. opts may be NULL for defaults.
 * On success *out owns the writer; free it with sst_writer_free().
 * Errors: errno values from creating or locking the file. */
int sst_writer_open(const char *path, const sst_writer_options *opts,
                    sst_writer **out, sst_error *err);

/* Adds a key and its whole value.
 * REQUIRES: key is greater (memcmp order, shorter prefix first) than every
 * key added before; 1 <= key_len <= SST_KEY_MAX.
 * Errors: SST_EORDER and SST_EKEYSIZE reject this key only (the writer
 * stays usable); an errno from writing is sticky: every later call returns
 * it and finish fails. */
int sst_writer_add(sst_writer *w, const void *key, size_t key_len,
                   const void *value, uint64_t value_len);

/* Adds a deletion marker for key. Same requirements as sst_writer_add. */
int sst_writer_add_tombstone(sst_writer *w, const void *key, size_t key_len);

/* Gives the next entry added (by add, begin_value, add_shared; not a
 * tombstone) file metadata: *m is copied, xattrs included, and applies to
 * that one entry. NULL clears it. Returns 0, SST_EINVAL (a type, mode,
 * nsec or xattr_len out of range, nlink 0, nlink > 1 without a link_id)
 * or SST_ESTATE inside a value. */
int sst_writer_set_meta(sst_writer *w, const sst_meta *m);

/* Where the value of the last entry added lies in the file being written,
 * for sst_writer_add_shared. SST_ESTATE before the first value. */
int sst_writer_last_value(sst_writer *w, uint64_t *offset, uint64_t *len,
                          uint32_t *checksum);

/* Adds key with a value this writer already wrote (offset, len and
 * checksum from sst_writer_last_value): hard links share one copy. Same
 * key requirements as sst_writer_add; SST_EINVAL if the range is not
 * within what was written. */
int sst_writer_add_shared(sst_writer *w, const void *key, size_t key_len,
                          uint64_t offset, uint64_t len, uint32_t checksum);

/* Streams a value too large to hold in memory: begin, append any number of
 * times, end. Between begin and end no other add is allowed (SST_ESTATE). */
int sst_writer_begin_value(sst_writer *w, const void *key, size_t key_len);
int sst_writer_append_value(sst_writer *w, const void *data, size_t len);
int sst_writer_end_value(sst_writer *w);

/* Completes the table: writes the last key block, the filter, the index and
 * the footer, fsyncs the file, renames it onto the path given at open and
 * fsyncs the directory. Returns the writer's first error if there was one
 * (the temporary file is then removed and `path` is left as it was). */
int sst_writer_finish(sst_writer *w, sst_error *err);

/* Completes the table as sst_writer_finish does, but leaves it in its
 * temporary file: no fsync, no rename, `path` untouched. For a table that
 * is a step on the way to another (sst build hands the part of its input
 * that came in order to the sorter this way). The file stays locked and
 * readable at *tmp_path, which is valid, like the file, until
 * sst_writer_free() removes both. Errors as for sst_writer_finish; the
 * writer accepts no more keys either way. */
int sst_writer_finish_temp(sst_writer *w, const char **tmp_path,
                           sst_error *err);

/* Keys and bytes added so far. */
uint64_t sst_writer_key_count(const sst_writer *w);
uint64_t sst_writer_value_bytes(const sst_writer *w);

/* What the writer stored, for reports: values stored once for several
 * keys (dedup) and their bytes, value blocks and chunks written, and the
 * size of the dictionary (0 without one). Final after finish. */
typedef struct sst_writer_stats {
  uint64_t dedup_values, dedup_bytes;
  uint64_t value_blocks, chunks, raw_pieces;
  uint32_t dict_bytes;
} sst_writer_stats;
void sst_writer_stats_get(const sst_writer *w, sst_writer_stats *out);

/* Frees the writer. If it was not finished, the temporary file is removed
 * and the path given at open is untouched. NULL is allowed. */
void sst_writer_free(sst_writer *w);

/* ------------------------------------------------------------------ */
/* Sorter: records in any order, bounded memory, last duplicate wins.  */

/* A sorter is used by one thread at a time; sst_sorter_finish fills the
 * writer from the calling thread. Behind it, the sorter may run threads of
 * its own (options.threads) that sort and spill while the caller adds.
 * Separate sorters are independent (each spills to its own unlinked
 * temporary files). */
typedef struct sst_sorter sst_sorter;

typedef struct sst_sorter_options {
  /* Bytes of records held in memory, counting every batch being filled,
   * sorted or waiting, before sorted runs are spilled to temporary files
   * (default 256 MiB). */
  uint64_t memory_budget;
  /* Directory for spilled runs (default: $TMPDIR, else /tmp). */
  const char *temp_dir;
  /* Threads that take part: 1 sorts on the caller's thread when a batch
   * is full; N > 1 starts N - 1 threads that sort full batches (and
   * spill) while the caller fills the next. 0 (the default) is the number
   * of CPUs online, at least 2 and at most 4. More than 4 counts as 4.
   * The table written is the same whatever the number. With threads, a
   * budget under 256 KiB may be passed by one batch of up to 64 KiB. */
  uint32_t threads;
} sst_sorter_options;

void sst_sorter_options_init(sst_sorter_options *opts);

/* Errors: ENOMEM, or an errno value from starting a thread. */
int sst_sorter_new(const sst_sorter_options *opts, sst_sorter **out,
                   sst_error *err);

/* Adds a record. When the same key is added more than once, the record
 * added last wins (a later tombstone deletes; a later value revives).
 * Errors: SST_EKEYSIZE, EFBIG (this record only); ENOMEM or errno from
 * spilling (sticky: every later call returns it). */
int sst_sorter_add(sst_sorter *s, const void *key, size_t key_len,
                   const void *value, uint64_t value_len);
int sst_sorter_add_tombstone(sst_sorter *s, const void *key, size_t key_len);

/* Adds the table at `path` as a sorted run older than every record added,
 * before or after: a record added for one of its keys wins over the
 * table's entry. Of two tables, the one added later wins. Its keys,
 * values (however stored: in place, compressed, shared) and tombstones
 * are merged by sst_sorter_finish (file metadata is not kept); each
 * value's checksum is checked then. The table stays open
 * until sst_sorter_free, and the pages of values already merged are given
 * back as the merge goes. Errors: those of sst_reader_open. */
int sst_sorter_add_table(sst_sorter *s, const char *path, sst_error *err);

/* Merges everything added, in key order with duplicates resolved, into w
 * (which must be empty), and removes the spilled runs. It does not finish
 * the writer. */
int sst_sorter_finish(sst_sorter *s, sst_writer *w, sst_error *err);

/* Records added, and sorted runs spilled to disk so far. */
uint64_t sst_sorter_record_count(const sst_sorter *s);
uint64_t sst_sorter_spill_count(const sst_sorter *s);

void sst_sorter_free(sst_sorter *s);

/* ------------------------------------------------------------------ */
/* Reader: an open, memory-mapped table. Nothing is allocated per key  */
/* at open.                                                            */

/* One reader may be shared by any number of threads: the functions
 * below, sst_stack_find and iterators (each thread with its own) may run
 * on it at once. The reader changes only its record of which blocks have
 * been checked, with atomic operations (a race means a block is checked
 * twice), and a lookup's key buffer is per thread. sst_reader_close must
 * not overlap any other call on the reader or on its iterators. */

typedef struct sst_reader sst_reader;

typedef struct sst_reader_options {
  /* Check each value's checksum before returning it (default 1). */
  int verify_values;
  /* After checking a value, give its pages back (madvise MADV_DONTNEED):
   * they stay in the page cache but leave the process's resident set, and
   * a large value is checked 256 KiB at a time. For long-running servers
   * that hand values out through sst_reader_fd rather than the mapping
   * (default 0). */
  int release_pages;
  /* Read key blocks, filter partitions and the values checked by
   * sst_reader_value_check with pread into buffers of the lookup,
   * iterator or check, instead of through the mapping: the mapped pages
   * of a table stay out of the process's resident set however much is
   * listed or looked up (a touch of a mapped file can map a whole 2 MiB
   * page-cache folio). For long-running servers that bound their memory
   * (default 0). */
  int pread_blocks;
  /* Bytes of decompressed value blocks and chunks kept for the next read
   * (0: the default, 4 MiB), and never less than two of the table's
   * largest. Only tables with compressed values use it. */
  uint64_t cache_bytes;
  /* Tables read from a URL: a directory (it must exist) where the blocks
   * fetched are kept, keyed by URL and ETag, for the next open of the
   * same version, by this process or another (NULL: none). Each is
   * checked against a checksum before use, and fetched again when it
   * does not match. It is kept within cache_max bytes of disk: the
   * records used least recently are removed to make room, by whichever
   * process needs it. */
  const char *cache_dir;
  /* The bound of cache_dir in bytes of disk (0: the default, 1 GiB). Every
   * process sharing the directory should give the same bound. */
  uint64_t cache_max;
} sst_reader_options;

void sst_reader_options_init(sst_reader_options *opts);

/* Opens and maps `path`, checks the header, footer, index and their
 * checksums. A path that is not a regular file is refused at once ("PATH:
 * not a regular file": EISDIR for a directory, SST_ENOTTABLE for a FIFO,
 * socket or device), without waiting on it: a FIFO with no writer does
 * not block the open. Errors: errno from open/mmap, SST_ENOTTABLE,
 * SST_EVERSION, SST_ETRUNCATED, SST_ECORRUPT, SST_ECHECKSUM.
 *
 * An http://, https:// or s3://BUCKET/KEY URL (sst_name_is_url; s3://
 * requests are signed, credentials and endpoint from the environment as
 * the AWS tools read them) is read with range
 * requests instead: nothing is mapped (sst_reader_data gives NULL,
 * sst_reader_fd -1, and pread_blocks is implied), the metadata is held
 * in memory, other bytes go through a bounded cache. The version opened
 * is pinned by its ETag: if the object changes, reads fail with
 * SST_ECHANGED. Further errors: ENOENT (404), EACCES (401, 403), EIO (the
 * server could not be reached, or answered ranges wrongly); reads fail
 * with EIO once their retries are spent. */
int sst_reader_open(const char *path, const sst_reader_options *opts,
                    sst_reader **out, sst_error *err);

/* 1 if name is an http://, https:// or s3:// URL (any case), 0 if it is
 * a path. */
int sst_name_is_url(const char *name);

/* Unmaps and frees. Every pointer obtained from the reader or its
 * iterators becomes invalid. NULL is allowed. */
void sst_reader_close(sst_reader *r);

/* One entry of a table. `key` is the caller's key (for sst_reader_find
 * and sst_stack_find) or points into the iterator (valid until it moves
 * or is freed). */
typedef struct sst_entry {
  const uint8_t *key;
  size_t key_len;
  unsigned flags;          /* SST_FLAG_* */
  uint64_t value_len;      /* 0 for a tombstone */
  uint64_t value_offset;   /* position of the value's first byte in the file;
                              SST_FLAG_PACKED: in its value block's bytes;
                              SST_FLAG_CHUNKED: of its first stored byte */
  uint32_t value_checksum; /* of the value; SST_FLAG_CHUNKED: of its chunk
                              table (each chunk has its own);
                              SST_FLAG_PACKED with SST_FEATURE_BLOCKSUM: 0
                              (its value block's checksums cover it) */
  uint64_t value_block;    /* SST_FLAG_PACKED: the value block */
  uint64_t value_stored;   /* SST_FLAG_CHUNKED: bytes stored in the file */
  uint64_t position;       /* offset of the entry in the key region, as if
                              no key block were compressed (FORMAT.md,
                              Positions): unique and stable (in a stack:
                              position * n + source) */
  unsigned source;         /* in a stack: the index of the table the
                              entry comes from; 0 otherwise */
  sst_meta meta;           /* valid when flags & SST_FLAG_META */
} sst_entry;

/* Finds key. Returns 0 and fills *e (tombstones included: check flags), or
 * SST_ENOTFOUND. e->key is set to the caller's key. Errors: SST_ECORRUPT,
 * SST_ECHECKSUM for a damaged key block. */
int sst_reader_find(const sst_reader *r, const void *key, size_t key_len,
                    sst_entry *e);

/* Looks key up and returns its value as a pointer into the mapping, valid
 * until sst_reader_close(). A tombstone gives SST_ENOTFOUND. With
 * verify_values, a value whose checksum does not match gives
 * SST_ECHECKSUM and no pointer.
 * A value stored in a value block or in chunks (SST_FLAG_PACKED,
 * SST_FLAG_CHUNKED: a compressed table), and any value of a table read
 * from a URL, is read (and decompressed) and always checked, into a
 * buffer that belongs to the library and to the calling thread: the pointer
 * stays valid until that thread's next sst_reader_get or sst_reader_value (on
 * any reader), or its exit. Copy what must live longer; read large values in
 * pieces with sst_reader_read rather than whole: such a value longer than
 * SST_VALUE_WHOLE_MAX gives EFBIG here. */
#define SST_VALUE_WHOLE_MAX ((uint64_t)1 << 30)
int sst_reader_get(const sst_reader *r, const void *key, size_t key_len,
                   const uint8_t **value, uint64_t *value_len);

/* Returns the value of an entry from find or an iterator, checked as in
 * sst_reader_get. */
int sst_reader_value(const sst_reader *r, const sst_entry *e,
                     const uint8_t **value);

/* Reads up to len bytes of e's value, from byte off of it, into buf; *got
 * is what was read (less than len only at the end of the value). Values
 * stored in value blocks or chunks are decompressed a block or chunk at a
 * time, each checked against its checksum before any of its bytes is
 * returned (SST_ECHECKSUM, or SST_ECORRUPT when it does not decode) and
 * kept in the reader's cache (cache_bytes). A plain value's bytes are
 * read as they are: check them with sst_reader_value_check. Any number
 * of threads may read at once. */
int sst_reader_read(const sst_reader *r, const sst_entry *e, uint64_t off,
                    void *buf, size_t len, size_t *got);

/* Pieces of a value held in the reader's cache for a caller that sends
 * them on as they are (a FUSE reply from its iovec), with no copy and no
 * buffer of the caller's. */
#define SST_SPAN_MAX 10
typedef struct sst_span {
  const uint8_t *data;
  size_t len;
} sst_span;
typedef struct sst_spans {
  sst_span span[SST_SPAN_MAX]; /* the bytes read, in order */
  int count;
  /* The library's: what sst_reader_release gives back. */
  int32_t slot[SST_SPAN_MAX];
  uint8_t *own[SST_SPAN_MAX];
  size_t own_cap[SST_SPAN_MAX];
} sst_spans;

/* sst_reader_read of a value stored in value blocks or chunks, into
 * spans of the decompressed, checked pieces instead of a buffer: the
 * span[0 .. count) concatenated are the *got bytes read. The pieces stay
 * in memory, and the cache keeps them past its bound if need be, until
 * sst_reader_release(r, s), which every call that returned 0 needs
 * before r is closed.
 * SST_ENOSPANS for a value stored as it is, a reader with no cache, or a
 * read over more than SST_SPAN_MAX chunks: read those with
 * sst_reader_read (a code of its own, so that no error from below is
 * taken for it). On an error nothing is held. */
int sst_reader_read_spans(const sst_reader *r, const sst_entry *e, uint64_t off,
                          size_t len, sst_spans *s, size_t *got);

/* Gives back the pieces s holds; s may then be used again. */
void sst_reader_release(const sst_reader *r, sst_spans *s);

/* Empties the reader's cache of decompressed pieces, but for those that
 * spans hold, and frees their memory: the next read of any piece reads
 * and decompresses it. Safe while other threads read. */
void sst_reader_drop_cache(const sst_reader *r);

/* Adds key with the value of entry e of table r (not a tombstone),
 * whatever way r stores it, reading a large value a piece at a time.
 * Returns 0 or the first error; *read_rc is that error when it came from
 * reading r (SST_ECHECKSUM for a damaged value), 0 when from writing.
 * A failed read after the value began leaves the writer failed. */
int sst_writer_add_from(sst_writer *w, const void *key, size_t key_len,
                        const sst_reader *r, const sst_entry *e, int *read_rc);

/* Checks a value's checksum, whatever verify_values says. */
int sst_reader_value_check(const sst_reader *r, const sst_entry *e);

/* Reads a whole value into buf (at least e->value_len bytes) with pread,
 * not through the mapping, and checks its checksum on those bytes.
 * SST_ECHECKSUM when they do not match; errno from pread, or
 * SST_ETRUNCATED for a value that ends past the end of the file. */
int sst_reader_value_pread(const sst_reader *r, const sst_entry *e, void *buf);

/* The whole mapping, for callers that serve byte ranges of a value after
 * checking it once (value bytes are data + value_offset). NULL for a
 * table read from a URL. */
const uint8_t *sst_reader_data(const sst_reader *r);

/* A read-only descriptor of the table file, for callers that serve value
 * bytes with pread or splice (at value_offset). Valid until close. -1 for
 * a table read from a URL: read its values with sst_reader_read. */
int sst_reader_fd(const sst_reader *r);

/* For a table with compressed values or key blocks, runs the zstd
 * decoder once on a small built-in frame, so that its code is mapped
 * before the first read; nothing for other tables. A daemon calls it once
 * it has detached: a first read after the page cache was dropped then
 * waits for no page of the decoder's code (measured: 4 to 6 reads from
 * disk in a value's first read on a fresh mount). */
void sst_reader_warm(const sst_reader *r);

/* When the table was last modified, in seconds since the epoch: the
 * file's mtime, or a URL's Last-Modified (0 when the server gave none). */
int64_t sst_reader_mtime(const sst_reader *r);

/* Reads the encoded extended attributes of e (e->meta.xattr_len bytes,
 * at most SST_XATTRS_MAX) into buf; decode them with sst_xattrs_next.
 * 0 or an errno value. */
int sst_reader_xattrs(const sst_reader *r, const sst_entry *e, uint8_t *buf);

typedef struct sst_info {
  uint32_t format_version;
  uint64_t file_size;
  uint64_t key_count; /* entries, tombstones included */
  uint64_t tombstone_count;
  uint64_t key_bytes;   /* sum of key lengths */
  uint64_t value_bytes; /* sum of value lengths */
  uint64_t block_count; /* key blocks */
  uint64_t index_bytes;
  uint64_t filter_bytes;
  uint32_t block_keys; /* writer's index interval */
  uint32_t block_bytes;
  uint32_t restart_interval;
  uint32_t filter_bits_per_key;
  uint32_t features;     /* SST_FEATURE_* */
  uint64_t value_region; /* bytes of the value region (version 2) */
  uint64_t key_region;   /* bytes from the first key block to the end
                            of the file: key blocks, filters, the
                            metadata dictionary, index, footer */
  /* The key blocks with their checksums: bytes stored, and bytes once
   * decompressed (equal unless SST_FEATURE_KEYZ compressed some). */
  uint64_t key_blocks_stored, key_blocks_raw;
  uint64_t position_end; /* every entry's position is below it */
  /* Compressed values (SST_FEATURE_VALUES): value blocks, the chunk size
   * of larger values, the compression dictionary's size (0 if none). */
  uint64_t value_blocks;
  uint32_t chunk_size;
  uint32_t dict_bytes;
  /* Values stored once for several keys: extra keys and their bytes. */
  uint64_t dedup_values, dedup_bytes;
} sst_info;

#define SST_FEATURE_META 1u   /* some entries carry file metadata */
#define SST_FEATURE_XATTRS 2u /* some entries carry extended attributes */
#define SST_FEATURE_VALUES 4u /* value blocks or chunked values */
#define SST_FEATURE_DICT 8u   /* a compression dictionary */
#define SST_FEATURE_KEYZ 16u  /* key blocks may be compressed */
/* A packed value is checked by its value block's checksum alone: its
 * entry stores none (sst_entry.value_checksum is 0). */
#define SST_FEATURE_BLOCKSUM 32u

void sst_reader_info(const sst_reader *r, sst_info *out);
const char *sst_reader_path(const sst_reader *r);

/* Reads every byte of the table and checks every checksum, the order of
 * keys and the layout. Returns 0, or the first problem's code with a
 * message in *err naming the block or key and its offset. */
int sst_reader_verify(const sst_reader *r, sst_error *err);

/* ------------------------------------------------------------------ */
/* Iterator: ordered traversal with seek, ranges and prefixes.         */

/* An iterator holds its position, current key and bound: it is used by
 * one thread at a time. Any number of iterators, on any threads, may read
 * the same readers at once. */
typedef struct sst_iter sst_iter;

int sst_iter_new(const sst_reader *r, sst_iter **out);
void sst_iter_free(sst_iter *it);

/* An iterator over a stack of n tables seen as one: keys in order, each
 * key once, from the last table that holds it (readers[n-1] is on top).
 * A tombstone in a later table hides the key's entries in earlier ones; with
 * sst_iter_set_skip_tombstones the key then does not appear at all,
 * without it the tombstone does. Entries carry their table's index in
 * `source`. The readers must outlive the iterator. */
int sst_iter_new_stack(const sst_reader *const *readers, size_t n,
                       sst_iter **out);

/* Looks key up in n tables stacked (readers[n - 1] on top): the tables are
 * asked newest first, each one's filter skipping it when it cannot hold
 * the key, and the first that holds it answers (a tombstone included:
 * check e->flags). e->source and e->position are as in a stack's iterator.
 * Returns 0 or SST_ENOTFOUND, or an error of sst_reader_find. */
int sst_stack_find(const sst_reader *const *readers, size_t n, const void *key,
                   size_t key_len, sst_entry *e);

/* Positions at the first entry (seek_first), or the first entry whose key
 * is >= key (seek). Clears any bound set before. */
int sst_iter_seek_first(sst_iter *it);
int sst_iter_seek(sst_iter *it, const void *key, size_t key_len);

/* Positions at the first entry of [from, to): from NULL means the start,
 * to NULL means no upper bound. The iterator stops at `to`. */
int sst_iter_range(sst_iter *it, const void *from, size_t from_len,
                   const void *to, size_t to_len);

/* Positions at the first key starting with prefix; stops after the last. */
int sst_iter_prefix(sst_iter *it, const void *prefix, size_t prefix_len);

/* Positions at the entry whose `position` (see sst_entry) is pos, with no
 * bound; SST_ENOTFOUND when no entry starts there. */
int sst_iter_seek_position(sst_iter *it, uint64_t pos);

/* With on != 0, the iterator never stops on a tombstone: it moves on to
 * the next live key, and seek_position to a tombstone gives
 * SST_ENOTFOUND. Off by default. */
void sst_iter_set_skip_tombstones(sst_iter *it, int on);

/* 1 when positioned on an entry, 0 at the end or after an error. */
int sst_iter_valid(const sst_iter *it);
int sst_iter_next(sst_iter *it);

/* The current entry. REQUIRES: sst_iter_valid(it). */
const sst_entry *sst_iter_entry(const sst_iter *it);

/* The first error the iterator met (a damaged block), or 0. An iterator
 * that stops early because of damage is not valid and returns it here. */
int sst_iter_status(const sst_iter *it);

/* ------------------------------------------------------------------ */
/* Records: `key DELIM value` lines, as read by `sst build` and written */
/* by `sst dump`.                                                       */

/* A parser is used by one thread at a time. */
typedef struct sst_records sst_records;

typedef struct sst_records_options {
  unsigned char delimiter; /* default ',' */
  /* Keys and values carry backslash escapes (\\ \n \r \t \0 \xHH). */
  int escaped;
  /* Lines without a delimiter or with an empty key are counted and
   * skipped, not an error. */
  int skip_bad;
} sst_records_options;

void sst_records_options_init(sst_records_options *opts);

/* Parses records from fd; `name` is used in messages. */
int sst_records_open(int fd, const char *name, const sst_records_options *o,
                     sst_records **out);

/* Reads the next record. Returns 0 with key/value set (pointers valid until
 * the next call), or 0 with *key set to NULL at the end of input, or an
 * error code with a message in *err ("input.csv:17: no ',' delimiter").
 * An empty line is skipped. A final line without a newline is a record. */
int sst_records_next(sst_records *p, const uint8_t **key, size_t *key_len,
                     const uint8_t **value, size_t *value_len, sst_error *err);

/* Lines read, and lines skipped by skip_bad (no delimiter, empty key). */
uint64_t sst_records_line_count(const sst_records *p);
uint64_t sst_records_skipped(const sst_records *p);
void sst_records_free(sst_records *p);

/* Decodes one escaped field (\\ \n \r \t \0 \xHH) in place semantics:
 * writes at most len bytes to out. Returns 0 or SST_EPARSE. */
int sst_unescape(const uint8_t *in, size_t len, uint8_t *out, size_t *out_len);

/* Writes `len` bytes to `out` with every byte that the record format cannot
 * carry raw escaped (backslash, bytes below 0x20, 0x7f, and `delimiter`).
 * out must hold 4 * len bytes. Returns the bytes written. */
size_t sst_escape(const uint8_t *in, size_t len, unsigned char delimiter,
                  uint8_t *out);

#ifdef __cplusplus
}
#endif
#endif
