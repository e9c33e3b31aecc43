/* topk.c: bounded heap of best pairs and blocked dense top-k search. */
#include "topk.h"
#include "linalg_internal.h"
#include "sparse.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* a is strictly better than b. */
static inline int better(float sa, uint32_t ia, float sb, uint32_t ib) {
  return sa > sb || (sa == sb && ia < ib);
}

void fm_topk_init(fm_topk *t, int k, float *score_buf, uint32_t *idx_buf) {
  t->k = k > 0 ? k : 0;
  t->n = 0;
  t->score = score_buf;
  t->idx = idx_buf;
}

/* Restore the heap below position i (root = worst) in a heap of n. */
static void sift_down(float *s, uint32_t *x, int n, int i) {
  float sv = s[i];
  uint32_t xv = x[i];
  for (;;) {
    int c = 2 * i + 1;
    if (c >= n) break;
    /* pick the worse child */
    if (c + 1 < n && better(s[c], x[c], s[c + 1], x[c + 1])) c++;
    if (!better(sv, xv, s[c], x[c])) break;
    s[i] = s[c];
    x[i] = x[c];
    i = c;
  }
  s[i] = sv;
  x[i] = xv;
}

void fm_topk_push_slow_(fm_topk *t, float score, uint32_t idx) {
  if (isnan(score) || t->k <= 0) return;
  if (t->n < t->k) {
    int i = t->n++;
    while (i > 0) {
      int p = (i - 1) / 2;
      if (!better(t->score[p], t->idx[p], score, idx)) break;
      t->score[i] = t->score[p];
      t->idx[i] = t->idx[p];
      i = p;
    }
    t->score[i] = score;
    t->idx[i] = idx;
    return;
  }
  if (!better(score, idx, t->score[0], t->idx[0])) return;
  t->score[0] = score;
  t->idx[0] = idx;
  sift_down(t->score, t->idx, t->n, 0);
}

void fm_topk_sorted(fm_topk *t) {
  /* Heap sort: move the worst (root) to the end, shrink, repeat. */
  for (int n = t->n; n > 1; n--) {
    float s = t->score[0];
    uint32_t x = t->idx[0];
    t->score[0] = t->score[n - 1];
    t->idx[0] = t->idx[n - 1];
    t->score[n - 1] = s;
    t->idx[n - 1] = x;
    sift_down(t->score, t->idx, n - 1, 0);
  }
}

enum { QBLOCK = 256, RBLOCK = 4096 };

typedef struct dense_ctx {
  const float *S; /* qb x rb block of scores */
  size_t qb, rb, r0;
  fm_topk *heaps; /* one per query of the block */
} dense_ctx;

static void push_part(void *p, int tid, int nt) {
  const dense_ctx *c = p;
  size_t q0 = c->qb * (size_t)tid / (size_t)nt, q1 = c->qb * (size_t)(tid + 1) / (size_t)nt;
  for (size_t q = q0; q < q1; q++) {
    const float *s = c->S + q * c->rb;
    fm_topk *h = &c->heaps[q];
    for (size_t j = 0; j < c->rb; j++) fm_topk_push(h, s[j], (uint32_t)(c->r0 + j));
  }
}

fm_rc fm_topk_dense(const float *Q, size_t nq, const float *R, size_t nr, int d, int k,
                    uint32_t *out_idx, float *out_score, fm_error *err) {
  if (nq == 0) return FM_OK;
  if (!Q || !R || !out_idx || !out_score)
    return fm_error_set(err, FM_ERR_ARG, "fm_topk_dense: NULL argument");
  if (d < 1 || k < 1)
    return fm_error_set(err, FM_ERR_ARG, "fm_topk_dense: d = %d and k = %d must be >= 1", d, k);
  if ((size_t)k > nr)
    return fm_error_set(err, FM_ERR_ARG,
                        "fm_topk_dense: k = %d exceeds the %zu reference rows", k, nr);
  if (nr > UINT32_MAX)
    return fm_error_set(err, FM_ERR_ARG, "fm_topk_dense: %zu reference rows exceed 2^32-1", nr);
  size_t rbmax = nr < RBLOCK ? nr : RBLOCK, qbmax = nq < QBLOCK ? nq : QBLOCK;
  float *S = fm_malloc(qbmax * rbmax * sizeof *S);
  fm_topk *heaps = fm_malloc(qbmax * sizeof *heaps);
  if (!S || !heaps) {
    fm_free(S);
    fm_free(heaps);
    return fm_error_set(err, FM_ERR_NOMEM, "fm_topk_dense: out of memory for a %zu x %zu block",
                        qbmax, rbmax);
  }
  int nt = fm_linalg_threads();
  for (size_t q0 = 0; q0 < nq; q0 += QBLOCK) {
    size_t qb = nq - q0 < QBLOCK ? nq - q0 : QBLOCK;
    /* The heaps live in the output rows themselves. */
    for (size_t q = 0; q < qb; q++)
      fm_topk_init(&heaps[q], k, out_score + (q0 + q) * (size_t)k, out_idx + (q0 + q) * (size_t)k);
    for (size_t r0 = 0; r0 < nr; r0 += RBLOCK) {
      size_t rb = nr - r0 < RBLOCK ? nr - r0 : RBLOCK;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)qb, (int)rb, d, 1.0f,
                  Q + q0 * (size_t)d, d, R + r0 * (size_t)d, d, 0.0f, S, (int)rb);
      dense_ctx c = {S, qb, rb, r0, heaps};
      fm_par_run(qb * rb < 65536 ? 1 : (nt < (int)qb ? nt : (int)qb), push_part, &c);
    }
    for (size_t q = 0; q < qb; q++) {
      fm_topk_sorted(&heaps[q]);
      for (int j = heaps[q].n; j < k; j++) {
        heaps[q].score[j] = -INFINITY;
        heaps[q].idx[j] = UINT32_MAX;
      }
    }
  }
  fm_free(S);
  fm_free(heaps);
  return FM_OK;
}
