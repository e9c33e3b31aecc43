/*
 * topk.h: keeping the k best (score, index) pairs, and exact dense top-k
 * search by inner product.  Internal to the model module.
 *
 * "Better" means a higher score, and on equal scores a smaller index, so
 * every result is fully determined by the scores.  NaN scores are dropped.
 */
#ifndef FM_TOPK_H
#define FM_TOPK_H

#include "fm_util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A bounded heap whose root is the worst of the kept pairs.  The storage
 * (score, idx: k entries each) belongs to the caller; fm_topk only points
 * at it.  n is the number of pairs kept (<= k). */
typedef struct fm_topk {
  int k, n;
  float *score;
  uint32_t *idx;
} fm_topk;

/* Start an empty heap of capacity k (k <= 0 keeps nothing) over the
 * caller's buffers of k entries each. */
void fm_topk_init(fm_topk *t, int k, float *score_buf, uint32_t *idx_buf);

/* The slow path of fm_topk_push: insert or replace the root. */
void fm_topk_push_slow_(fm_topk *t, float score, uint32_t idx);

/* Offer a pair.  The common case, a full heap and a pair no better than the
 * worst kept one, costs one or two compares and no call. */
static inline void fm_topk_push(fm_topk *t, float score, uint32_t idx) {
  if (t->n == t->k &&
      (t->k <= 0 || score < t->score[0] || (score == t->score[0] && idx > t->idx[0])))
    return;
  fm_topk_push_slow_(t, score, idx);
}

/* Sort the kept pairs in place, best first (score[0] is the best).  After
 * this the buffers are a sorted list, no longer a heap: call fm_topk_init
 * before pushing again. */
void fm_topk_sorted(fm_topk *t);

/* Exact dense top-k by inner product (cosine when rows are unit length):
 * for each row of Q (nq x d, row-major) the k rows of R (nr x d,
 * row-major) with the largest dot products, best first, ties to the
 * smaller index.  Computed with cblas_sgemm over blocks of 256 queries x
 * 4096 references and one heap per query.  out_idx and out_score
 * (caller-allocated, nq x k row-major) are written in full on success.
 * FM_ERR_ARG when d < 1, k < 1, k > nr (the caller clamps k to nr when it
 * wants "all of them"), nr > UINT32_MAX or a pointer is NULL; FM_ERR_NOMEM.
 * Deterministic for given inputs and thread counts.  NaN scores are
 * dropped; if that leaves fewer than k for a query, the row is padded with
 * index UINT32_MAX and score -INFINITY. */
fm_rc fm_topk_dense(const float *Q, size_t nq, const float *R, size_t nr, int d, int k,
                    uint32_t *out_idx, float *out_score, fm_error *err);

#ifdef __cplusplus
}
#endif
#endif /* FM_TOPK_H */
