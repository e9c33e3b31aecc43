/* learn_internal.h: what learn.c (building a layer) and learn_apply.c
 * (applying it) share: the layer's structure, its key map and the
 * features of a (query, candidate) pair.  Private to src/model. */
#ifndef FM_LEARN_INTERNAL_H
#define FM_LEARN_INTERNAL_H

#include "model_internal.h"

#include <stdint.h>

enum { NW = FM_NWEIGHTS };
#define KIND_BIT 0x80000000u

/* ---- a u64 -> index map (open addressing, linear probing) ------------- */
typedef struct kmap {
  uint64_t *key;
  uint32_t *val; /* UINT32_MAX: empty */
  size_t cap, n;
} kmap;

static inline size_t kmap_slot(uint64_t k, size_t cap) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  return (size_t)k & (cap - 1);
}

static inline uint32_t kmap_get(const kmap *h, uint64_t k) {
  if (!h->cap) return UINT32_MAX;
  for (size_t i = kmap_slot(k, h->cap);; i = (i + 1) & (h->cap - 1)) {
    if (h->val[i] == UINT32_MAX) return UINT32_MAX;
    if (h->key[i] == k) return h->val[i];
  }
}

struct fm_learn {
  const fm_model *m; /* borrowed */
  fm_learn_opts o;
  float d[NW];       /* weight deltas */
  kmap keys;         /* association key -> index into theta */
  float *theta;
  uint8_t *qword;    /* title-block terms: 1 when some word association
                        A[a, .] with the term as a is non-zero (lookups
                        skip the others); NULL when there are no keys */
  uint8_t *rword;    /* the same for the term as b, A[., b] (inside the
                        qword block: not freed on its own) */
  uint32_t *taken;   /* nrefs: query index that accepted it, UINT32_MAX none,
                        UINT32_MAX - 1 several */
  int active;        /* anything to apply */
  fm_learn_info info;
};

/* The components of c as they enter the score (fm_weights order). */
void fm_learn_comp_vec(const fm_candidate *c, float x[NW]);
/* Title-block terms of reference r (borrowed from the model's CSR row). */
size_t fm_learn_ref_title(const fm_model *m, uint32_t r, const uint32_t **t);
/* Title-block terms of the matcher's last query. */
size_t fm_learn_query_title(const fm_matcher *mt, const fm_model *m, const uint32_t **t);
/* Is v among the ascending a[0..n)? */
int fm_learn_in_sorted(const uint32_t *a, size_t n, uint32_t v);
/* Visit the association features of (query terms qt, reference r): fn(key,
 * value); a non-zero return of fn stops the visit and is returned.  Keys:
 * word pairs a << 32 | b; word-kind pairs a << 32 | KIND_BIT | kind.
 * only (NULL: every word) restricts the word pairs to query words a with
 * only[a] set and reference words b with only_ref[b] set (NULL: every
 * word): a lookup passes the layer's qword and rword, training NULL. */
typedef int (*feat_fn)(void *ctx, uint64_t key, float v);
int fm_learn_each_feat(const fm_model *m, unsigned parts, const uint32_t *qt, size_t nq,
                       uint32_t pfx, const uint8_t *only, const uint8_t *only_ref, uint32_t r,
                       feat_fn fn, void *ctx);
/* pairs[0..n) followed by the model's training pairs as positives, into
 * *out (the caller's: fm_free((*out)[0].query), the one block of the
 * copied lines, then *out); *out NULL when the model has none. */
fm_rc fm_learn_with_model_pairs(const fm_model *m, const fm_learn_pair *pairs, size_t n,
                                fm_learn_pair **out, size_t *nout, fm_error *err);

#endif
