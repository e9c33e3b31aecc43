/* rank_cache.c: a bounded cache of the model's rankings, shared by the
 * worker threads.
 *
 * Why it is correct: a served model is immutable, and the key holds the
 * model's generation (a reload makes a new one), so the ranking of
 * (generation, field, k, min_score, vendor) never changes.  Only the
 * model's ranking is cached -- anything read from the store (curated
 * mappings) is applied after, per request -- so no answer can go stale.
 *
 * Shape: 4-way set-associative, sets picked by an FNV-1a hash of the key,
 * least recently used way replaced.  Sets are guarded by a fixed array of
 * mutexes (set index mod NLOCKS), so threads rarely contend and a hit costs
 * one hash, one short critical section and a copy of at most k candidates.
 * Each way owns one malloc'd entry holding its key and candidates, so the
 * memory bound is `entries` times the largest entry (k <= FM_HTTP_MAX_K:
 * under 3.5 KiB; about 0.4 KiB at k = 10). */
#include "http_internal.h"

#include <stdlib.h>
#include <string.h>

#define WAYS 4
#define NLOCKS 64

typedef struct entry {
  uint64_t hash;
  uint64_t used;  /* set's clock at the last hit or fill */
  size_t klen;
  int n;
  fm_candidate *cand; /* n, inside the same allocation */
  unsigned char key[]; /* klen bytes */
} entry;

struct fm_rank_cache {
  size_t nsets;      /* power of two */
  entry **slot;      /* nsets * WAYS */
  uint64_t *clock;   /* per set */
  pthread_mutex_t lock[NLOCKS];
  uint64_t hits, misses; /* atomic */
};

fm_rc fm_rank_cache_new(size_t entries, fm_rank_cache **out) {
  *out = NULL;
  if (entries == 0) return FM_OK;
  size_t nsets = 1;
  while (nsets * WAYS < entries) nsets *= 2;
  fm_rank_cache *c = fm_calloc(1, sizeof *c);
  if (!c) return FM_ERR_NOMEM;
  c->nsets = nsets;
  c->slot = fm_calloc(nsets * WAYS, sizeof *c->slot);
  c->clock = fm_calloc(nsets, sizeof *c->clock);
  if (!c->slot || !c->clock) {
    fm_free(c->slot);
    fm_free(c->clock);
    fm_free(c);
    return FM_ERR_NOMEM;
  }
  for (int i = 0; i < NLOCKS; i++) pthread_mutex_init(&c->lock[i], NULL);
  *out = c;
  return FM_OK;
}

void fm_rank_cache_free(fm_rank_cache *c) {
  if (!c) return;
  for (size_t i = 0; i < c->nsets * WAYS; i++) fm_free(c->slot[i]);
  for (int i = 0; i < NLOCKS; i++) pthread_mutex_destroy(&c->lock[i]);
  fm_free(c->slot);
  fm_free(c->clock);
  fm_free(c);
}

size_t fm_rank_cache_key(unsigned char *buf, size_t cap, uint64_t gen, const char *field,
                         int k, double min_score, const char *vendor) {
  size_t fl = strlen(field), vl = vendor ? strlen(vendor) : 0;
  size_t need = sizeof gen + sizeof k + sizeof min_score + 1 + fl + 1 + vl;
  if (need > cap) return 0;
  unsigned char *p = buf;
  memcpy(p, &gen, sizeof gen);
  p += sizeof gen;
  memcpy(p, &k, sizeof k);
  p += sizeof k;
  memcpy(p, &min_score, sizeof min_score); /* the bits: -0.0 and 0.0 differ, harmlessly */
  p += sizeof min_score;
  *p++ = vendor ? 1 : 0; /* no filter vs a filter on "" */
  memcpy(p, field, fl + 1);
  p += fl + 1;
  memcpy(p, vendor ? vendor : "", vl);
  return need;
}

int fm_rank_cache_get(fm_rank_cache *c, const unsigned char *key, size_t klen,
                      fm_candidate *out, int *n) {
  uint64_t h = fm_hash64(key, klen);
  size_t set = (size_t)h & (c->nsets - 1);
  entry **ways = c->slot + set * WAYS;
  int hit = 0;
  pthread_mutex_t *mu = &c->lock[set % NLOCKS];
  pthread_mutex_lock(mu);
  for (int w = 0; w < WAYS; w++) {
    entry *e = ways[w];
    if (e && e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0) {
      e->used = ++c->clock[set];
      memcpy(out, e->cand, (size_t)e->n * sizeof *out);
      *n = e->n;
      hit = 1;
      break;
    }
  }
  pthread_mutex_unlock(mu);
  __atomic_add_fetch(hit ? &c->hits : &c->misses, 1, __ATOMIC_RELAXED);
  return hit;
}

void fm_rank_cache_put(fm_rank_cache *c, const unsigned char *key, size_t klen,
                       const fm_candidate *cand, int n) {
  /* built outside the lock; the candidates go first for their alignment */
  size_t off = sizeof(entry) + klen;
  off = (off + _Alignof(fm_candidate) - 1) / _Alignof(fm_candidate) * _Alignof(fm_candidate);
  entry *e = fm_malloc(off + (size_t)n * sizeof *cand);
  if (!e) return; /* a cache: failing to remember is fine */
  e->hash = fm_hash64(key, klen);
  e->klen = klen;
  e->n = n;
  memcpy(e->key, key, klen);
  e->cand = (fm_candidate *)((char *)e + off);
  if (n) memcpy(e->cand, cand, (size_t)n * sizeof *cand);
  size_t set = (size_t)e->hash & (c->nsets - 1);
  entry **ways = c->slot + set * WAYS, *old = NULL;
  pthread_mutex_t *mu = &c->lock[set % NLOCKS];
  pthread_mutex_lock(mu);
  int victim = 0;
  for (int w = 0; w < WAYS; w++) {
    entry *x = ways[w];
    if (!x || (x->hash == e->hash && x->klen == klen && memcmp(x->key, key, klen) == 0)) {
      victim = w; /* empty, or another thread filled the same key meanwhile */
      break;
    }
    if (x->used < ways[victim]->used) victim = w;
  }
  old = ways[victim];
  e->used = ++c->clock[set];
  ways[victim] = e;
  pthread_mutex_unlock(mu);
  fm_free(old);
}

void fm_rank_cache_stats(const fm_rank_cache *c, uint64_t *hits, uint64_t *misses,
                         size_t *capacity) {
  *hits = c ? __atomic_load_n(&c->hits, __ATOMIC_RELAXED) : 0;
  *misses = c ? __atomic_load_n(&c->misses, __ATOMIC_RELAXED) : 0;
  *capacity = c ? c->nsets * WAYS : 0;
}
