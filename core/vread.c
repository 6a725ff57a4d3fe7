/* vread.c — reading values stored in value blocks or in chunks (format
 * version 2 with SST_FEATURE_VALUES): the properties section that lists
 * the value blocks, decompression with zstd, and the reader's bounded
 * cache of decompressed blocks and chunks.
 *
 * A value block or chunk is decompressed once, checked against its
 * checksum (over the bytes a reader serves), and kept in the cache, so
 * that the next small file of the same block or the next read in the
 * same chunk costs a copy. Bytes that fail their check are never
 * returned: the read fails with SST_ECHECKSUM (SST_ECORRUPT when the
 * compressed data does not even decode).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "spill.h"
#include "table.h"
#include "warm_frame.h"

/* ---- The value-block section ---- */

int sst_vread_section(sst_reader *r, const uint8_t *p, const uint8_t *limit) {
  uint64_t codec, chunk, count;
  if (r->vblocks != NULL || (p = sst_get_varint(p, limit, &codec)) == NULL ||
      (p = sst_get_varint(p, limit, &chunk)) == NULL ||
      (p = sst_get_varint(p, limit, &count)) == NULL)
    return SST_ECORRUPT;
  if (codec != SST_CODEC_ZSTD)
    return SST_EVERSION;
  /* Each block takes at least 11 bytes of the section. */
  if (chunk < SST_CHUNK_MIN || chunk > SST_CHUNK_MAX ||
      count > (uint64_t)(limit - p) / 11)
    return SST_ECORRUPT;
  if ((r->vblocks = malloc((count ? count : 1) * sizeof *r->vblocks)) == NULL)
    return ENOMEM;
  uint64_t end = SST_HEADER_SIZE, values_end = r->f.keys_off;
  for (uint64_t i = 0; i < count; i++) {
    uint64_t gap, stored2, raw_len;
    if ((p = sst_get_varint(p, limit, &gap)) == NULL ||
        (p = sst_get_varint(p, limit, &stored2)) == NULL ||
        (p = sst_get_varint(p, limit, &raw_len)) == NULL || limit - p < 8)
      return SST_ECORRUPT;
    sst_vblock *b = &r->vblocks[i];
    uint64_t stored = stored2 >> 1;
    if (gap > values_end - end || stored == 0 ||
        stored > values_end - end - gap || raw_len == 0 ||
        raw_len > SST_VBLOCK_MAX || ((stored2 & 1) && stored != raw_len) ||
        stored > ZSTD_COMPRESSBOUND((size_t)raw_len))
      return SST_ECORRUPT;
    b->off = end + gap;
    b->stored = (uint32_t)stored;
    b->raw_len = (uint32_t)raw_len;
    b->raw = (uint32_t)(stored2 & 1);
    b->checksum = sst_get_u32(p);
    b->stored_sum = sst_get_u32(p + 4);
    p += 8;
    end = b->off + stored;
  }
  if (p != limit)
    return SST_ECORRUPT;
  r->vb_count = count;
  r->chunk_size = (uint32_t)chunk;
  return 0;
}

int sst_vread_dict(sst_reader *r, const uint8_t *p, size_t len) {
  if (r->ddict != NULL || len == 0)
    return SST_ECORRUPT;
  r->ddict = ZSTD_createDDict(p, len);
  r->zdict_len = (uint32_t)len;
  return r->ddict ? 0 : SST_ECORRUPT;
}

/* A block or chunk: where its stored bytes lie and how to check them. */
typedef struct piece {
  /* cache key: value block number + 1, chunk offset | 1 << 63, or key
   * block number + 1 | 1 << 62 */
  uint64_t key;
  uint64_t off; /* stored bytes in the file */
  size_t stored, raw_len;
  int raw;
  uint32_t checksum;   /* of the raw bytes */
  uint32_t stored_sum; /* of the stored bytes */
} piece;

/* ---- The cache ---- */

/* Slots: one for each 4 KiB of the cache's bound (the smallest value
 * block), at least 64 and at most 65,536. */
#define SLOT_BYTES (4u << 10)
#define SLOTS_MIN 64
#define SLOTS_MAX 65536
/* Buffers given back (evicted, or done with) wait here for the next
 * piece instead of going back to the allocator: the daemon maps buffers
 * of 32 KiB and more on their own, and a munmap per read costs a TLB
 * shootdown on every core. Sizes of 32 KiB and more are rounded up to
 * 64 KiB so that they fit again; smaller ones, which the heap serves,
 * to 4 KiB. The cache counts a buffer's whole size against its bound. */
#define SPARES 4
#define BUF_ROUND (64u << 10)
#define BUF_ROUND_SMALL (4u << 10)

/* A slot holds a piece's decompressed bytes under its whole description:
 * two entries of a crafted table may describe different pieces at one
 * offset, and neither may be served the other's bytes. Slots in use are
 * found through a hash table (chains by index) and kept in a list from
 * the most to the least recently used; free ones in a list of their own.
 * -1 ends every list. */
struct slot {
  piece pc;
  uint8_t *data; /* NULL: free */
  size_t len, cap;
  int32_t pins;         /* spans handed out and not yet released */
  int32_t newer, older; /* the LRU list; older also links free slots */
  int32_t chain;        /* the next in its hash bucket */
};

struct sst_vcache {
  pthread_mutex_t mu;
  uint64_t cap, used;
  struct slot *slots;
  int32_t *buckets;
  uint32_t nslots, mask; /* buckets: mask + 1, a power of two */
  int32_t newest, oldest, free;
  struct spare {
    uint8_t *p;
    size_t cap;
  } spares[SPARES];
};

static int same_piece(const piece *a, const piece *b) {
  return a->key == b->key && a->off == b->off && a->stored == b->stored &&
         a->raw_len == b->raw_len && a->raw == b->raw &&
         a->checksum == b->checksum && a->stored_sum == b->stored_sum;
}

static uint32_t bucket_of(const struct sst_vcache *c, const piece *pc) {
  uint64_t h = pc->key * 0x9e3779b97f4a7c15ull; /* a block's or chunk's */
  return (uint32_t)(h >> 32) & c->mask;
}

int sst_vcache_new(sst_reader *r, uint64_t cap) {
  uint64_t largest = r->vblocks != NULL ? r->chunk_size : 0;
  for (uint64_t i = 0; r->vblocks != NULL && i < r->vb_count; i++)
    if (r->vblocks[i].raw_len > largest)
      largest = r->vblocks[i].raw_len;
  largest = (largest + BUF_ROUND - 1) / BUF_ROUND * BUF_ROUND; /* buf_get's */
  if (cap < 2 * largest)
    cap = 2 * largest;
  struct sst_vcache *c = calloc(1, sizeof *c);
  if (c == NULL)
    return ENOMEM;
  uint64_t n = cap / SLOT_BYTES;
  c->nslots = n < SLOTS_MIN   ? SLOTS_MIN
              : n > SLOTS_MAX ? SLOTS_MAX
                              : (uint32_t)n;
  uint32_t nb = 1;
  while (nb < c->nslots)
    nb <<= 1;
  c->mask = nb - 1;
  if ((c->slots = calloc(c->nslots, sizeof *c->slots)) == NULL ||
      (c->buckets = malloc(nb * sizeof *c->buckets)) == NULL) {
    free(c->slots);
    free(c);
    return ENOMEM;
  }
  memset(c->buckets, 0xff, nb * sizeof *c->buckets);
  for (uint32_t i = 0; i < c->nslots; i++)
    c->slots[i].older = i + 1 < c->nslots ? (int32_t)i + 1 : -1;
  c->free = 0;
  c->newest = c->oldest = -1;
  pthread_mutex_init(&c->mu, NULL);
  c->cap = cap;
  r->vcache = c;
  return 0;
}

/* Frees the spare buffers. */
static void spares_free(struct sst_vcache *c) {
  for (int i = 0; i < SPARES; i++) {
    free(c->spares[i].p);
    c->spares[i].p = NULL;
  }
}

void sst_vcache_free(struct sst_vcache *c) {
  if (c == NULL)
    return;
  for (uint32_t i = 0; i < c->nslots; i++)
    free(c->slots[i].data);
  spares_free(c);
  free(c->slots);
  free(c->buckets);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

/* The slot that holds pc, or -1. REQUIRES c->mu held. */
static int32_t cache_find(const struct sst_vcache *c, const piece *pc) {
  for (int32_t i = c->buckets[bucket_of(c, pc)]; i >= 0; i = c->slots[i].chain)
    if (same_piece(&c->slots[i].pc, pc))
      return i;
  return -1;
}

static void lru_unlink(struct sst_vcache *c, int32_t i) {
  struct slot *s = &c->slots[i];
  if (s->newer >= 0)
    c->slots[s->newer].older = s->older;
  else
    c->newest = s->older;
  if (s->older >= 0)
    c->slots[s->older].newer = s->newer;
  else
    c->oldest = s->newer;
}

static void lru_push(struct sst_vcache *c, int32_t i) {
  struct slot *s = &c->slots[i];
  s->newer = -1;
  s->older = c->newest;
  if (c->newest >= 0)
    c->slots[c->newest].newer = i;
  c->newest = i;
  if (c->oldest < 0)
    c->oldest = i;
}

/* Copies [from, from + n) of the cached piece pc into dst: 1 on a hit. */
static int cache_get(struct sst_vcache *c, const piece *pc, size_t from,
                     void *dst, size_t n) {
  int hit = 0;
  pthread_mutex_lock(&c->mu);
  int32_t i = cache_find(c, pc);
  if (i >= 0 && from <= c->slots[i].len && n <= c->slots[i].len - from) {
    memcpy(dst, c->slots[i].data + from, n);
    lru_unlink(c, i);
    lru_push(c, i);
    hit = 1;
  }
  pthread_mutex_unlock(&c->mu);
  return hit;
}

/* The size of a new buffer for len bytes. */
static size_t buf_cap(size_t len) {
  size_t round = len < (32u << 10) ? BUF_ROUND_SMALL : BUF_ROUND;
  return (len + round - 1) / round * round;
}

/* A buffer of at least len bytes (*cap says how many): a spare one, or
 * a new one. NULL when out of memory. */
static uint8_t *buf_get(struct sst_vcache *c, size_t len, size_t *cap) {
  if (c != NULL) {
    pthread_mutex_lock(&c->mu);
    struct spare *best = NULL; /* the smallest that fits */
    for (int i = 0; i < SPARES; i++) {
      struct spare *sp = &c->spares[i];
      if (sp->p != NULL && sp->cap >= len &&
          (best == NULL || sp->cap < best->cap))
        best = sp;
    }
    if (best != NULL) {
      uint8_t *p = best->p;
      *cap = best->cap;
      best->p = NULL;
      pthread_mutex_unlock(&c->mu);
      return p;
    }
    pthread_mutex_unlock(&c->mu);
  }
  *cap = buf_cap(len);
  return malloc(*cap ? *cap : 1);
}

/* Gives a buffer back: kept as a spare in a free place, or in place of
 * a smaller spare (the larger fits more pieces); else freed.
 * REQUIRES c->mu held. */
static void buf_put_locked(struct sst_vcache *c, uint8_t *p, size_t cap) {
  if (p == NULL)
    return;
  struct spare *to = NULL;
  for (int i = 0; i < SPARES; i++) {
    struct spare *sp = &c->spares[i];
    if (sp->p == NULL || to == NULL || (to->p != NULL && sp->cap < to->cap))
      to = sp;
    if (sp->p == NULL)
      break;
  }
  if (to->p != NULL && to->cap >= cap) {
    free(p);
    return;
  }
  free(to->p);
  to->p = p;
  to->cap = cap;
}

static void buf_put(struct sst_vcache *c, uint8_t *p, size_t cap) {
  if (c == NULL) {
    free(p);
    return;
  }
  pthread_mutex_lock(&c->mu);
  buf_put_locked(c, p, cap);
  pthread_mutex_unlock(&c->mu);
}

/* Evicts the least recently used slots that no span holds until need
 * more bytes fit under the bound and a slot is free, or none is left to
 * evict; with all, every slot that no span holds. REQUIRES c->mu held. */
static void evict_locked(struct sst_vcache *c, uint64_t need, int all) {
  int32_t v = c->oldest;
  while (v >= 0 && (all || c->free < 0 || c->used + need > c->cap)) {
    struct slot *s = &c->slots[v];
    int32_t next = s->newer;
    if (s->pins == 0) {
      lru_unlink(c, v);
      int32_t *link = &c->buckets[bucket_of(c, &s->pc)];
      while (*link != v)
        link = &c->slots[*link].chain;
      *link = s->chain;
      c->used -= s->cap;
      buf_put_locked(c, s->data, s->cap);
      s->data = NULL;
      s->older = c->free;
      c->free = v;
    }
    v = next;
  }
}

/* Makes room under the bound for a piece of raw_len bytes about to be
 * loaded and kept: the buffer of the least recently used piece then
 * takes the new one (buf_get finds it among the spares) rather than wait
 * beside it as a spare, so that a full cache holds no more than its
 * bound while it reads. Evicting before the load or after it at insert
 * drops the same piece. */
static void cache_make_room(struct sst_vcache *c, size_t raw_len) {
  pthread_mutex_lock(&c->mu);
  size_t need = buf_cap(raw_len);
  if (need <= c->cap)
    evict_locked(c, need, 0);
  pthread_mutex_unlock(&c->mu);
}

/* Keeps data (len bytes of a buffer of cap from buf_get) as piece pc's,
 * evicting the least recently used, with pins spans holding it. Returns
 * its slot, or -1 when it cannot be kept: a slot holds pc already, the
 * buffer is larger than the bound, or every slot is held by a span; the
 * buffer stays the caller's then. Slots held by spans may take the cache
 * past its bound until they are released. REQUIRES c->mu held. */
static int32_t cache_put_locked(struct sst_vcache *c, const piece *pc,
                                uint8_t *data, size_t len, size_t cap,
                                int32_t pins) {
  if (cap > c->cap || cache_find(c, pc) >= 0)
    return -1;
  evict_locked(c, cap, 0);
  if (c->free < 0)
    return -1;
  int32_t i = c->free;
  struct slot *s = &c->slots[i];
  c->free = s->older;
  s->pc = *pc;
  s->data = data;
  s->len = len;
  s->cap = cap;
  s->pins = pins;
  uint32_t b = bucket_of(c, pc);
  s->chain = c->buckets[b];
  c->buckets[b] = i;
  lru_push(c, i);
  c->used += cap;
  return i;
}

/* cache_put_locked with no span; a buffer not kept is given back. */
static void cache_put(struct sst_vcache *c, const piece *pc, uint8_t *data,
                      size_t len, size_t cap) {
  pthread_mutex_lock(&c->mu);
  if (cache_put_locked(c, pc, data, len, cap, 0) < 0)
    buf_put_locked(c, data, cap);
  pthread_mutex_unlock(&c->mu);
}

/* Decoded key blocks (SST_FEATURE_KEYZ) share the cache: a lookup in a
 * block read a moment ago (the names of one directory, the neighbours of
 * a key) copies it rather than decompress it again. */
static piece key_piece(uint64_t i, const sst_handle *h) {
  return (piece){.key = (i + 1) | (uint64_t)1 << 62,
                 .off = h->block_off,
                 .stored = (size_t)h->block_len,
                 .raw_len = (size_t)h->raw_len};
}

int sst_vcache_get_keys(const sst_reader *r, uint64_t i, const sst_handle *h,
                        uint8_t *dst) {
  piece pc = key_piece(i, h);
  return r->vcache != NULL && cache_get(r->vcache, &pc, 0, dst, pc.raw_len);
}

void sst_vcache_put_keys(const sst_reader *r, uint64_t i, const sst_handle *h,
                         const uint8_t *src) {
  /* Not one that would crowd out the rest (or be kept as a spare). */
  if (r->vcache == NULL || h->raw_len > r->vcache->cap / 8)
    return;
  piece pc = key_piece(i, h);
  size_t cap = 0;
  uint8_t *buf = buf_get(r->vcache, pc.raw_len, &cap);
  if (buf == NULL)
    return;
  memcpy(buf, src, pc.raw_len);
  cache_put(r->vcache, &pc, buf, pc.raw_len, cap);
}

/* ---- Decompression ---- */

/* Decompression contexts (about 160 KiB each once used) are shared by
 * the threads rather than kept one a thread: the daemon's workers seldom
 * decompress at once, and DCTX_KEEP idle ones are kept for the next. */
#define DCTX_KEEP 4
static pthread_mutex_t dctx_mu = PTHREAD_MUTEX_INITIALIZER;
static ZSTD_DCtx *dctx_idle[DCTX_KEEP];
static int dctx_nidle;

static ZSTD_DCtx *dctx_get(void) {
  ZSTD_DCtx *d = NULL;
  pthread_mutex_lock(&dctx_mu);
  if (dctx_nidle > 0)
    d = dctx_idle[--dctx_nidle];
  pthread_mutex_unlock(&dctx_mu);
  return d != NULL ? d : ZSTD_createDCtx();
}

static void dctx_put(ZSTD_DCtx *d) {
  pthread_mutex_lock(&dctx_mu);
  if (d != NULL && dctx_nidle < DCTX_KEEP) {
    dctx_idle[dctx_nidle++] = d;
    d = NULL;
  }
  pthread_mutex_unlock(&dctx_mu);
  ZSTD_freeDCtx(d);
}

void sst_reader_warm(const sst_reader *r) {
  if (r->vblocks == NULL && r->kz == NULL)
    return;
  uint8_t *out = malloc(WARM_RAW);
  ZSTD_DCtx *d = out ? dctx_get() : NULL;
  if (d != NULL)
    (void)ZSTD_decompressDCtx(d, out, WARM_RAW, warm_frame, sizeof warm_frame);
  dctx_put(d); /* kept for the first read */
  free(out);
}

int sst_vread_unzip(void *dst, size_t dst_len, const void *src,
                    size_t src_len) {
  ZSTD_DCtx *d = dctx_get();
  if (d == NULL)
    return ENOMEM;
  size_t got = ZSTD_decompressDCtx(d, dst, dst_len, src, src_len);
  dctx_put(d);
  return ZSTD_isError(got) || got != dst_len ? SST_ECORRUPT : 0;
}

/* Reads len stored bytes at off (file offsets checked by the caller). */
static int read_stored(const sst_reader *r, uint64_t off, void *buf,
                       size_t len) {
  if (r->o.pread_blocks)
    return sst_src_pread(r->src, buf, len, off);
  memcpy(buf, r->data + off, len);
  return 0;
}

/* Reads, checks and decompresses piece pc into a buffer of buf_get's
 * (*raw, *raw_cap), which the caller keeps or gives back. */
static int piece_load(const sst_reader *r, const piece *pc, uint8_t **rawp,
                      size_t *raw_capp) {
  struct sst_vcache *c = r->vcache;
  size_t raw_cap = 0, stored_cap = 0;
  uint8_t *raw = buf_get(c, pc->raw_len, &raw_cap);
  /* A compressed piece of a mapped table is decoded where it lies. */
  const uint8_t *mapped =
      !pc->raw && !r->o.pread_blocks ? r->data + pc->off : NULL;
  uint8_t *copy =
      pc->raw || mapped ? NULL : buf_get(c, pc->stored, &stored_cap);
  const uint8_t *stored = pc->raw ? raw : mapped ? mapped : copy;
  int rc = raw && stored ? 0 : ENOMEM;
  if (rc == 0 && !mapped)
    rc = read_stored(r, pc->off, copy ? copy : raw, pc->stored);
  /* Only bytes that are what the writer stored reach the decoder. */
  if (rc == 0 && sst_checksum(stored, pc->stored) != pc->stored_sum)
    rc = SST_ECHECKSUM;
  if (rc == 0 && !pc->raw) {
    ZSTD_DCtx *d = dctx_get();
    /* Pieces written before the dictionary was trained were compressed
     * without it; their frames name no dictionary. */
    int with_dict =
        r->ddict != NULL && ZSTD_getDictID_fromFrame(stored, pc->stored) != 0;
    size_t got =
        d == NULL ? 0
        : with_dict
            ? ZSTD_decompress_usingDDict(d, raw, pc->raw_len, stored,
                                         pc->stored, r->ddict)
            : ZSTD_decompressDCtx(d, raw, pc->raw_len, stored, pc->stored);
    if (d == NULL)
      rc = ENOMEM;
    else if (ZSTD_isError(got) || got != pc->raw_len)
      rc = SST_ECORRUPT;
    dctx_put(d);
  }
  /* A piece stored raw is the same bytes twice over: checked once when
   * its two sums agree (a writer makes them equal). */
  if (rc == 0 && !(pc->raw && pc->checksum == pc->stored_sum) &&
      sst_checksum(raw, pc->raw_len) != pc->checksum)
    rc = SST_ECHECKSUM;
  if (copy != NULL)
    buf_put(c, copy, stored_cap);
  if (rc) {
    buf_put(c, raw, raw_cap);
    return rc;
  }
  *rawp = raw;
  *raw_capp = raw_cap;
  return 0;
}

/* Copies [from, from + n) of the piece's raw bytes into dst, from the
 * cache or by reading, decompressing and checking the piece. */
static int piece_read(const sst_reader *r, const piece *pc, size_t from,
                      void *dst, size_t n, int fresh) {
  if (!fresh && r->vcache && cache_get(r->vcache, pc, from, dst, n))
    return 0;
  if (r->vcache && !fresh)
    cache_make_room(r->vcache, pc->raw_len);
  uint8_t *raw;
  size_t raw_cap;
  int rc = piece_load(r, pc, &raw, &raw_cap);
  if (rc)
    return rc;
  memcpy(dst, raw + from, n);
  if (r->vcache && !fresh)
    cache_put(r->vcache, pc, raw, pc->raw_len, raw_cap);
  else
    buf_put(r->vcache, raw, raw_cap);
  return 0;
}

/* Marks slot i held by one more span, and the most recently used.
 * REQUIRES c->mu held. */
static void slot_pin(struct sst_vcache *c, int32_t i) {
  c->slots[i].pins++;
  lru_unlink(c, i);
  lru_push(c, i);
}

/* Adds to s the span [from, from + n) of piece pc, held in the cache (or,
 * when the cache cannot keep it, in a buffer of the span's own) until
 * sst_reader_release. REQUIRES s->count < SST_SPAN_MAX. */
static int piece_span(const sst_reader *r, const piece *pc, size_t from,
                      size_t n, sst_spans *s) {
  if (from > pc->raw_len || n > pc->raw_len - from)
    return SST_ECORRUPT;
  struct sst_vcache *c = r->vcache;
  int k = s->count;
  s->own[k] = NULL;
  s->own_cap[k] = 0;
  pthread_mutex_lock(&c->mu);
  int32_t i = cache_find(c, pc);
  if (i >= 0) {
    slot_pin(c, i);
  } else {
    pthread_mutex_unlock(&c->mu);
    cache_make_room(c, pc->raw_len);
    uint8_t *raw;
    size_t raw_cap;
    int rc = piece_load(r, pc, &raw, &raw_cap);
    if (rc)
      return rc;
    pthread_mutex_lock(&c->mu);
    if ((i = cache_find(c, pc)) >= 0) { /* another thread was first */
      buf_put_locked(c, raw, raw_cap);
      slot_pin(c, i);
    } else if ((i = cache_put_locked(c, pc, raw, pc->raw_len, raw_cap, 1)) <
               0) {
      s->own[k] = raw;
      s->own_cap[k] = raw_cap;
    }
  }
  s->slot[k] = i;
  s->span[k].data = (i >= 0 ? c->slots[i].data : s->own[k]) + from;
  s->span[k].len = n;
  s->count++;
  pthread_mutex_unlock(&c->mu);
  return 0;
}

/* ---- Chunk tables ---- */

uint64_t sst_chunk_count(uint64_t len, uint32_t chunk) {
  return len / chunk + (len % chunk != 0);
}

/* Chunk c of value e: where its stored bytes lie and how to check them.
 * The bound is zstd.h's macro, not a call into libzstd: a first read of
 * a chunk then runs no code of libzstd's that a read of a value block
 * does not (the daemon rehearses one read before it serves any). */
static int chunk_piece(const sst_reader *r, const sst_entry *e, uint64_t c,
                       piece *pc) {
  uint64_t cs = r->chunk_size, n = sst_chunk_count(e->value_len, r->chunk_size);
  uint64_t tab_rel = e->value_stored - n * SST_CHUNK_ENTRY;
  uint8_t ent[2 * SST_CHUNK_ENTRY];
  uint64_t start = 0;
  int rc;
  if (c > 0) {
    if ((rc = read_stored(r,
                          e->value_offset + tab_rel + (c - 1) * SST_CHUNK_ENTRY,
                          ent, sizeof ent)))
      return rc;
    start = sst_get_u64(ent) & ~SST_CHUNK_RAW;
  } else if ((rc = read_stored(r, e->value_offset + tab_rel,
                               ent + SST_CHUNK_ENTRY, SST_CHUNK_ENTRY))) {
    return rc;
  }
  const uint8_t *me = ent + SST_CHUNK_ENTRY;
  uint64_t end = sst_get_u64(me) & ~SST_CHUNK_RAW;
  pc->raw = (sst_get_u64(me) & SST_CHUNK_RAW) != 0;
  pc->stored_sum = sst_get_u32(me + 8);
  pc->checksum = sst_get_u32(me + 12);
  pc->raw_len =
      (size_t)(e->value_len - c * cs < cs ? e->value_len - c * cs : cs);
  if (start > end || end > tab_rel || end - start == 0 ||
      (c + 1 == n && end != tab_rel) ||
      (pc->raw && end - start != pc->raw_len) ||
      end - start > ZSTD_COMPRESSBOUND(pc->raw_len))
    return SST_ECORRUPT;
  pc->off = e->value_offset + start;
  pc->stored = (size_t)(end - start);
  pc->key = pc->off | (1ull << 63);
  return 0;
}

/* Value block i as a piece. REQUIRES i < vb_count. */
static piece block_piece(const sst_reader *r, uint64_t i) {
  const sst_vblock *b = &r->vblocks[i];
  return (piece){.key = i + 1,
                 .off = b->off,
                 .stored = b->stored,
                 .raw_len = b->raw_len,
                 .raw = (int)b->raw,
                 .checksum = b->checksum,
                 .stored_sum = b->stored_sum};
}

/* ---- Reading ---- */

/* What a read does with each piece it covers: [from, from + n) of pc. */
typedef int (*piece_fn)(const sst_reader *r, const piece *pc, size_t from,
                        size_t n, void *ctx);

/* Calls fn for each piece that [off, off + len) of e's value covers, in
 * order, until one fails. REQUIRES e packed or chunked, 0 < len <=
 * value_len - off. */
static int each_piece(const sst_reader *r, const sst_entry *e, uint64_t off,
                      size_t len, piece_fn fn, void *ctx) {
  if (e->flags & SST_FLAG_PACKED) {
    piece pc = block_piece(r, e->value_block);
    return fn(r, &pc, (size_t)(e->value_offset + off), len, ctx);
  }
  /* A large value read from its start (cat, cp): a remote source may
   * read ahead of it in large pieces at once. */
  if (off == 0 && r->o.pread_blocks)
    sst_src_value(r->src, e->value_offset, e->value_stored);
  int rc = 0;
  while (rc == 0 && len > 0) {
    uint64_t c = off / r->chunk_size;
    size_t from = (size_t)(off - c * r->chunk_size);
    piece pc;
    if ((rc = chunk_piece(r, e, c, &pc)) != 0)
      break;
    size_t n = pc.raw_len - from < len ? pc.raw_len - from : len;
    rc = fn(r, &pc, from, n, ctx);
    off += n;
    len -= n;
  }
  return rc;
}

/* The end of the read into buf, and whether its pieces bypass the cache. */
struct copy_to {
  uint8_t *out;
  int fresh;
};

static int copy_piece(const sst_reader *r, const piece *pc, size_t from,
                      size_t n, void *ctx) {
  struct copy_to *to = ctx;
  int rc = piece_read(r, pc, from, to->out, n, to->fresh);
  to->out += n;
  return rc;
}

static int span_piece(const sst_reader *r, const piece *pc, size_t from,
                      size_t n, void *ctx) {
  return piece_span(r, pc, from, n, ctx);
}

/* sst_reader_read; with fresh, every piece read from the file and
 * checked again, whatever the cache holds (verify). */
static int vread(const sst_reader *r, const sst_entry *e, uint64_t off,
                 void *buf, size_t len, size_t *got, int fresh) {
  *got = 0;
  if (e->flags & SST_FLAG_TOMBSTONE)
    return SST_ENOTFOUND;
  if (off >= e->value_len || len == 0)
    return 0;
  if (len > e->value_len - off)
    len = (size_t)(e->value_len - off);
  int rc;
  if (e->flags & (SST_FLAG_PACKED | SST_FLAG_CHUNKED)) {
    struct copy_to to = {.out = buf, .fresh = fresh};
    rc = each_piece(r, e, off, len, copy_piece, &to);
  } else {
    rc = read_stored(r, e->value_offset + off, buf, len);
  }
  if (rc == 0)
    *got = len;
  return rc;
}

int sst_reader_read(const sst_reader *r, const sst_entry *e, uint64_t off,
                    void *buf, size_t len, size_t *got) {
  return vread(r, e, off, buf, len, got, 0);
}

int sst_reader_read_spans(const sst_reader *r, const sst_entry *e, uint64_t off,
                          size_t len, sst_spans *s, size_t *got) {
  s->count = 0;
  *got = 0;
  if (e->flags & SST_FLAG_TOMBSTONE)
    return SST_ENOTFOUND;
  if (!(e->flags & (SST_FLAG_PACKED | SST_FLAG_CHUNKED)) || r->vcache == NULL)
    return SST_ENOSPANS;
  if (off >= e->value_len || len == 0)
    return 0;
  if (len > e->value_len - off)
    len = (size_t)(e->value_len - off);
  uint64_t cs = r->chunk_size;
  if ((e->flags & SST_FLAG_CHUNKED) &&
      (off + len - 1) / cs - off / cs >= SST_SPAN_MAX)
    return SST_ENOSPANS;
  int rc = each_piece(r, e, off, len, span_piece, s);
  if (rc) {
    sst_reader_release(r, s);
    return rc;
  }
  *got = len;
  return 0;
}

void sst_reader_release(const sst_reader *r, sst_spans *s) {
  struct sst_vcache *c = r->vcache;
  if (c == NULL || s->count == 0)
    return;
  pthread_mutex_lock(&c->mu);
  for (int k = 0; k < s->count; k++) {
    if (s->slot[k] >= 0)
      c->slots[s->slot[k]].pins--;
    else
      buf_put_locked(c, s->own[k], s->own_cap[k]);
  }
  if (c->used > c->cap) /* past the bound while spans held slots */
    evict_locked(c, 0, 0);
  pthread_mutex_unlock(&c->mu);
  s->count = 0;
}

void sst_reader_drop_cache(const sst_reader *r) {
  struct sst_vcache *c = r->vcache;
  if (c == NULL)
    return;
  pthread_mutex_lock(&c->mu);
  evict_locked(c, 0, 1);
  spares_free(c); /* and their memory with them */
  pthread_mutex_unlock(&c->mu);
}

int sst_vread_check_block(const sst_reader *r, uint64_t i) {
  piece pc = block_piece(r, i);
  uint8_t one;
  return piece_read(r, &pc, 0, &one, 1, 1);
}

int sst_vread_check_table(const sst_reader *r, const sst_entry *e) {
  uint64_t n = sst_chunk_count(e->value_len, r->chunk_size);
  size_t len = (size_t)(n * SST_CHUNK_ENTRY);
  uint8_t *t = malloc(len);
  if (t == NULL)
    return ENOMEM;
  int rc = read_stored(r, e->value_offset + e->value_stored - len, t, len);
  if (rc == 0 && sst_checksum(t, len) != e->value_checksum)
    rc = SST_ECHECKSUM;
  free(t);
  return rc;
}

static int whole(const sst_reader *r, const sst_entry *e, void *buf,
                 int fresh) {
  size_t got;
  int rc;
  if ((e->flags & SST_FLAG_CHUNKED) && (rc = sst_vread_check_table(r, e)) != 0)
    return rc;
  if ((rc = vread(r, e, 0, buf, (size_t)e->value_len, &got, fresh)) != 0)
    return rc;
  if ((e->flags & SST_FLAG_PACKED) &&
      !sst_ref_sumless(r->f.features, e->flags) &&
      sst_checksum(buf, (size_t)e->value_len) != e->value_checksum)
    return SST_ECHECKSUM;
  return 0;
}

int sst_vread_whole(const sst_reader *r, const sst_entry *e, void *buf) {
  return whole(r, e, buf, 0);
}

int sst_vread_check(const sst_reader *r, const sst_entry *e, int fresh) {
  if (e->flags & SST_FLAG_PACKED) {
    uint8_t *buf = malloc(e->value_len ? e->value_len : 1);
    if (buf == NULL)
      return ENOMEM;
    int rc = whole(r, e, buf, fresh);
    free(buf);
    return rc;
  }
  int rc = sst_vread_check_table(r, e);
  size_t step = r->chunk_size;
  uint8_t *buf = rc ? NULL : malloc(step);
  if (rc == 0 && buf == NULL)
    rc = ENOMEM;
  for (uint64_t off = 0; rc == 0 && off < e->value_len; off += step) {
    size_t got;
    rc = vread(r, e, off, buf, step, &got, fresh);
  }
  free(buf);
  return rc;
}

int sst_vread_value(const sst_reader *r, const sst_entry *e,
                    const uint8_t **value) {
  /* A value this large is read in pieces (sst_reader_read): a crafted
   * table must not make a whole read allocate what it claims. */
  if (e->value_len > SST_VALUE_WHOLE_MAX)
    return EFBIG;
  uint8_t *p =
      sst_thread_buf(SST_TBUF_VALUE, e->value_len ? (size_t)e->value_len : 1);
  if (p == NULL)
    return ENOMEM;
  int rc = (e->flags & (SST_FLAG_PACKED | SST_FLAG_CHUNKED))
               ? sst_vread_whole(r, e, p)
               : sst_reader_value_pread(r, e, p);
  if (rc == 0)
    *value = p;
  return rc;
}
