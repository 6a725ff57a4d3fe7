/* zpool.c — compresses pieces on worker threads, in submission order out.
 *
 * Slots form a ring indexed by three counters: submitted, started (the
 * next piece a worker claims) and taken. The slot of the piece taken last
 * stays untouched until the next take, so the ring holds at most
 * slots - 1 pending pieces.
 */
#include "zpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct zslot {
  uint8_t *raw, *out;
  size_t len, out_len;
  const ZSTD_CDict *cd;
  uint64_t tag;
  int done;
  size_t zrc; /* zstd's result */
} zslot;

struct sst_zpool {
  pthread_mutex_t lock;
  pthread_cond_t work, done;
  zslot *slots;
  size_t nslots, out_cap;
  uint64_t submitted, started, taken;
  int stop;
  int level;
  unsigned threads, running;
  pthread_t *tids;
  ZSTD_CCtx **cctx; /* one a worker; one alone with no threads */
  unsigned next_cctx;
};

static void compress_slot(ZSTD_CCtx *cctx, zslot *s, size_t out_cap) {
  s->zrc = s->cd ? ZSTD_compress_usingCDict(cctx, s->out, out_cap, s->raw,
                                            s->len, s->cd)
                 : ZSTD_compress2(cctx, s->out, out_cap, s->raw, s->len);
}

static ZSTD_CCtx *new_cctx(int level) {
  ZSTD_CCtx *c = ZSTD_createCCtx();
  if (c != NULL &&
      ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level))) {
    ZSTD_freeCCtx(c);
    c = NULL;
  }
  return c;
}

static void *worker(void *arg) {
  sst_zpool *p = arg;
  pthread_mutex_lock(&p->lock);
  ZSTD_CCtx *cctx = p->cctx[p->next_cctx++];
  for (;;) {
    while (p->started == p->submitted && !p->stop)
      pthread_cond_wait(&p->work, &p->lock);
    if (p->started == p->submitted)
      break; /* stopping, nothing left */
    zslot *s = &p->slots[p->started++ % p->nslots];
    pthread_mutex_unlock(&p->lock);
    compress_slot(cctx, s, p->out_cap);
    pthread_mutex_lock(&p->lock);
    s->done = 1;
    pthread_cond_broadcast(&p->done);
  }
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

int sst_zpool_new(unsigned threads, int level, size_t piece_max,
                  sst_zpool **out) {
  *out = NULL;
  sst_zpool *p = calloc(1, sizeof *p);
  if (p == NULL)
    return ENOMEM;
  p->level = level;
  p->threads = threads;
  p->nslots = 2 * (size_t)(threads ? threads : 1) + 1;
  p->out_cap = ZSTD_compressBound(piece_max);
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->work, NULL);
  pthread_cond_init(&p->done, NULL);
  int rc = 0;
  if ((p->slots = calloc(p->nslots, sizeof *p->slots)) == NULL)
    rc = ENOMEM;
  for (size_t i = 0; rc == 0 && i < p->nslots; i++)
    if ((p->slots[i].raw = malloc(piece_max ? piece_max : 1)) == NULL ||
        (p->slots[i].out = malloc(p->out_cap)) == NULL)
      rc = ENOMEM;
  unsigned n_cctx = threads ? threads : 1;
  if (rc == 0 && (p->cctx = calloc(n_cctx, sizeof *p->cctx)) == NULL)
    rc = ENOMEM;
  for (unsigned i = 0; rc == 0 && i < n_cctx; i++)
    if ((p->cctx[i] = new_cctx(level)) == NULL)
      rc = ENOMEM;
  if (rc == 0 && threads > 0 &&
      (p->tids = calloc(threads, sizeof *p->tids)) == NULL)
    rc = ENOMEM;
  for (unsigned i = 0; rc == 0 && i < threads; i++) {
    if ((rc = pthread_create(&p->tids[i], NULL, worker, p)) == 0)
      p->running++;
  }
  if (rc) {
    sst_zpool_free(p);
    return rc;
  }
  *out = p;
  return 0;
}

void sst_zpool_free(sst_zpool *p) {
  if (p == NULL)
    return;
  pthread_mutex_lock(&p->lock);
  p->stop = 1;
  pthread_cond_broadcast(&p->work);
  pthread_mutex_unlock(&p->lock);
  for (unsigned i = 0; i < p->running; i++)
    pthread_join(p->tids[i], NULL);
  free(p->tids);
  for (size_t i = 0; p->slots != NULL && i < p->nslots; i++) {
    free(p->slots[i].raw);
    free(p->slots[i].out);
  }
  free(p->slots);
  for (unsigned i = 0; p->cctx != NULL && i < (p->threads ? p->threads : 1);
       i++)
    ZSTD_freeCCtx(p->cctx[i]);
  free(p->cctx);
  pthread_mutex_destroy(&p->lock);
  pthread_cond_destroy(&p->work);
  pthread_cond_destroy(&p->done);
  free(p);
}

size_t sst_zpool_pending(const sst_zpool *p) {
  return (size_t)(p->submitted - p->taken);
}

int sst_zpool_full(const sst_zpool *p) {
  return sst_zpool_pending(p) >= p->nslots - 1;
}

void sst_zpool_submit(sst_zpool *p, const void *raw, size_t len,
                      const ZSTD_CDict *cd, uint64_t tag) {
  zslot *s = &p->slots[p->submitted % p->nslots];
  memcpy(s->raw, raw, len);
  s->len = len;
  s->cd = cd;
  s->tag = tag;
  s->done = 0;
  if (p->threads == 0) {
    compress_slot(p->cctx[0], s, p->out_cap);
    s->done = 1;
    p->submitted++;
    p->started++;
    return;
  }
  pthread_mutex_lock(&p->lock);
  p->submitted++;
  pthread_cond_signal(&p->work);
  pthread_mutex_unlock(&p->lock);
}

void sst_zpool_quiesce(sst_zpool *p) {
  if (p == NULL || p->threads == 0)
    return;
  pthread_mutex_lock(&p->lock);
  for (uint64_t i = p->taken; i < p->submitted; i++)
    while (!p->slots[i % p->nslots].done)
      pthread_cond_wait(&p->done, &p->lock);
  pthread_mutex_unlock(&p->lock);
}

int sst_zpool_take(sst_zpool *p, sst_zpiece *piece, const char **why) {
  zslot *s = &p->slots[p->taken % p->nslots];
  if (p->threads > 0) {
    pthread_mutex_lock(&p->lock);
    while (!s->done)
      pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
  }
  p->taken++;
  *piece = (sst_zpiece){.raw = s->raw, .len = s->len, .tag = s->tag};
  if (ZSTD_isError(s->zrc)) {
    *why = ZSTD_getErrorName(s->zrc);
    return SST_EINVAL;
  }
  piece->is_raw = s->zrc >= s->len;
  piece->out = piece->is_raw ? s->raw : s->out;
  piece->out_len = piece->is_raw ? s->len : s->zrc;
  piece->sum = sst_checksum(s->raw, s->len);
  piece->stored_sum = sst_checksum(piece->out, piece->out_len);
  return 0;
}
