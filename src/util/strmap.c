/* strmap.c: open-addressing string -> uint32 map with insertion order. */
#include "fm_util.h"

#include <string.h>

void fm_strmap_init(fm_strmap *m) {
  memset(m, 0, sizeof *m);
  fm_arena_init(&m->arena);
}

void fm_strmap_free(fm_strmap *m) {
  fm_free(m->slots);
  fm_free(m->keys);
  fm_free(m->keylens);
  fm_free(m->vals);
  fm_arena_free(&m->arena);
  fm_strmap_init(m);
}

/* The table's own hash (nothing outside this file sees it): eight bytes at
 * a time, each word folded in with one multiply, then an avalanche so that
 * the low bits (the slot) and the high bits (the tag) depend on every byte.
 * fm_hash64 (FNV-1a) is one serial multiply per byte, and training looks
 * up ~8 million short keys. */
static inline uint64_t key_hash(const char *k, size_t n) {
  uint64_t h = 0x9e3779b97f4a7c15ull ^ ((uint64_t)n * 0xff51afd7ed558ccdull);
  for (; n >= 8; k += 8, n -= 8) {
    uint64_t w;
    memcpy(&w, k, 8);
    h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 31;
  }
  if (n) {
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++) w |= (uint64_t)(unsigned char)k[i] << (8 * i);
    h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
  }
  h ^= h >> 32;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 29;
  return h;
}

/* A slot holds the entry's index + 1 in its low half and the high half of
 * its key's hash: a probe that meets another key almost never reads that
 * key's length or bytes. */
static size_t find_slot(const fm_strmap *m, const char *key, size_t len, uint64_t h,
                        int *found) {
  size_t mask = m->nslots - 1;
  size_t i = (size_t)h & mask;
  uint32_t tag = (uint32_t)(h >> 32);
  for (;;) {
    uint64_t s = m->slots[i];
    if (s == 0) {
      *found = 0;
      return i;
    }
    uint32_t e = (uint32_t)s - 1;
    if ((uint32_t)(s >> 32) == tag && m->keylens[e] == len && memcmp(m->keys[e], key, len) == 0) {
      *found = 1;
      return i;
    }
    i = (i + 1) & mask;
  }
}

static uint64_t slot_of(uint64_t h, size_t e) {
  return (h >> 32) << 32 | (uint64_t)(e + 1);
}

static fm_rc rehash(fm_strmap *m, size_t nslots) {
  uint64_t *ns = fm_calloc(nslots, sizeof *ns);
  if (!ns) return FM_ERR_NOMEM;
  fm_free(m->slots);
  m->slots = ns;
  m->nslots = nslots;
  for (size_t e = 0; e < m->n; e++) {
    int found;
    uint64_t h = key_hash(m->keys[e], m->keylens[e]);
    size_t i = find_slot(m, m->keys[e], m->keylens[e], h, &found);
    m->slots[i] = slot_of(h, e);
  }
  return FM_OK;
}

int fm_strmap_get(const fm_strmap *m, const char *key, size_t len,
                  uint32_t *val) {
  if (m->n == 0) return 0;
  int found;
  size_t i = find_slot(m, key, len, key_hash(key, len), &found);
  if (!found) return 0;
  if (val) *val = m->vals[(uint32_t)m->slots[i] - 1];
  return 1;
}

fm_rc fm_strmap_put(fm_strmap *m, const char *key, size_t len, uint32_t val,
                    uint32_t *out_val, int *inserted) {
  if (len > UINT32_MAX) return FM_ERR_ARG;
  if ((m->n + 1) * 2 > m->nslots) {
    if (rehash(m, m->nslots ? m->nslots * 2 : 64)) return FM_ERR_NOMEM;
  }
  int found;
  uint64_t h = key_hash(key, len);
  size_t i = find_slot(m, key, len, h, &found);
  if (found) {
    if (out_val) *out_val = m->vals[(uint32_t)m->slots[i] - 1];
    if (inserted) *inserted = 0;
    return FM_OK;
  }
  if (m->n >= UINT32_MAX - 1) return FM_ERR_NOMEM;
  size_t cap = m->cap;
  if (fm_grow((void **)&m->keys, &cap, m->n + 1, sizeof *m->keys))
    return FM_ERR_NOMEM;
  cap = m->cap;
  if (fm_grow((void **)&m->keylens, &cap, m->n + 1, sizeof *m->keylens))
    return FM_ERR_NOMEM;
  cap = m->cap;
  if (fm_grow((void **)&m->vals, &cap, m->n + 1, sizeof *m->vals))
    return FM_ERR_NOMEM;
  m->cap = cap;
  char *k = fm_arena_strndup(&m->arena, key, len);
  if (!k) return FM_ERR_NOMEM;
  m->keys[m->n] = k;
  m->keylens[m->n] = (uint32_t)len;
  m->vals[m->n] = val;
  m->slots[i] = slot_of(h, m->n);
  m->n++;
  if (out_val) *out_val = val;
  if (inserted) *inserted = 1;
  return FM_OK;
}

fm_rc fm_strmap_set(fm_strmap *m, const char *key, size_t len, uint32_t val) {
  int ins;
  fm_rc rc = fm_strmap_put(m, key, len, val, NULL, &ins);
  if (rc) return rc;
  if (!ins) {
    int found;
    size_t i = find_slot(m, key, len, key_hash(key, len), &found);
    m->vals[(uint32_t)m->slots[i] - 1] = val;
  }
  return FM_OK;
}

size_t fm_strmap_count(const fm_strmap *m) { return m->n; }

const char *fm_strmap_key(const fm_strmap *m, size_t i, size_t *len) {
  if (len) *len = m->keylens[i];
  return m->keys[i];
}

uint32_t fm_strmap_val(const fm_strmap *m, size_t i) { return m->vals[i]; }
