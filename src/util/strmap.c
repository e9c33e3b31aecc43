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

static size_t find_slot(const fm_strmap *m, const char *key, size_t len,
                        int *found) {
  size_t mask = m->nslots - 1;
  size_t i = (size_t)fm_hash64(key, len) & mask;
  for (;;) {
    uint32_t s = m->slots[i];
    if (s == 0) {
      *found = 0;
      return i;
    }
    if (m->keylens[s - 1] == len && memcmp(m->keys[s - 1], key, len) == 0) {
      *found = 1;
      return i;
    }
    i = (i + 1) & mask;
  }
}

static fm_rc rehash(fm_strmap *m, size_t nslots) {
  uint32_t *ns = fm_calloc(nslots, sizeof *ns);
  if (!ns) return FM_ERR_NOMEM;
  fm_free(m->slots);
  m->slots = ns;
  m->nslots = nslots;
  for (size_t e = 0; e < m->n; e++) {
    int found;
    size_t i = find_slot(m, m->keys[e], m->keylens[e], &found);
    m->slots[i] = (uint32_t)e + 1;
  }
  return FM_OK;
}

int fm_strmap_get(const fm_strmap *m, const char *key, size_t len,
                  uint32_t *val) {
  if (m->n == 0) return 0;
  int found;
  size_t i = find_slot(m, key, len, &found);
  if (!found) return 0;
  if (val) *val = m->vals[m->slots[i] - 1];
  return 1;
}

fm_rc fm_strmap_put(fm_strmap *m, const char *key, size_t len, uint32_t val,
                    uint32_t *out_val, int *inserted) {
  if (len > UINT32_MAX) return FM_ERR_ARG;
  if ((m->n + 1) * 2 > m->nslots) {
    if (rehash(m, m->nslots ? m->nslots * 2 : 64)) return FM_ERR_NOMEM;
  }
  int found;
  size_t i = find_slot(m, key, len, &found);
  if (found) {
    if (out_val) *out_val = m->vals[m->slots[i] - 1];
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
  m->slots[i] = (uint32_t)m->n + 1;
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
    size_t i = find_slot(m, key, len, &found);
    m->vals[m->slots[i] - 1] = val;
  }
  return FM_OK;
}

size_t fm_strmap_count(const fm_strmap *m) { return m->n; }

const char *fm_strmap_key(const fm_strmap *m, size_t i, size_t *len) {
  if (len) *len = m->keylens[i];
  return m->keys[i];
}

uint32_t fm_strmap_val(const fm_strmap *m, size_t i) { return m->vals[i]; }
