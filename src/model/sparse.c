/* sparse.c: CSR matrix, its builder, and threaded sparse x dense products. */
#include "sparse.h"
#include "linalg_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- threads ---------------------------------------------------------- */

int fm_linalg_threads(void) {
  const char *e = getenv("FM_THREADS");
  if (e && *e) {
    char *end;
    long v = strtol(e, &end, 10);
    if (*end == '\0' && v >= 1 && v <= 64) return (int)v;
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1) n = 1;
  if (n > 16) n = 16;
  return (int)n;
}

typedef struct par_job {
  fm_par_fn fn;
  void *ctx;
  int tid, nthreads;
} par_job;

static void *par_main(void *p) {
  par_job *j = p;
  j->fn(j->ctx, j->tid, j->nthreads);
  return NULL;
}

void fm_par_run(int nthreads, fm_par_fn fn, void *ctx) {
  enum { MAXT = 64 };
  if (nthreads > MAXT) nthreads = MAXT;
  if (nthreads <= 1) {
    fn(ctx, 0, 1);
    return;
  }
  pthread_t th[MAXT];
  par_job jobs[MAXT];
  int started[MAXT];
  for (int t = 0; t < nthreads; t++) {
    jobs[t] = (par_job){fn, ctx, t, nthreads};
    started[t] = 0;
  }
  /* Worker 0 runs on the calling thread.  A part whose thread cannot be
   * created runs on the calling thread too, so the work always completes. */
  for (int t = 1; t < nthreads; t++)
    started[t] = pthread_create(&th[t], NULL, par_main, &jobs[t]) == 0;
  fn(ctx, 0, nthreads);
  for (int t = 1; t < nthreads; t++) {
    if (started[t])
      pthread_join(th[t], NULL);
    else
      fn(ctx, t, nthreads);
  }
}

/* ---- matrix ----------------------------------------------------------- */

void fm_csr_free(fm_csr *m) {
  if (!m) return;
  fm_free(m->rowptr);
  fm_free(m->col);
  fm_free(m->val);
  memset(m, 0, sizeof *m);
}

/* ---- builder ---------------------------------------------------------- */

fm_rc fm_csr_builder_init(fm_csr_builder *b, uint32_t ncols) {
  memset(b, 0, sizeof *b);
  b->ncols = ncols;
  if (fm_grow((void **)&b->rowptr, &b->rowcap, 1, sizeof *b->rowptr))
    return FM_ERR_NOMEM;
  b->rowptr[0] = 0;
  return FM_OK;
}

fm_rc fm_csr_builder_add(fm_csr_builder *b, uint32_t col, float val) {
  if (col >= b->ncols || !isfinite(val)) return FM_ERR_ARG;
  if (fm_grow((void **)&b->pend, &b->pendcap, b->npend + 1, sizeof *b->pend))
    return FM_ERR_NOMEM;
  b->pend[b->npend].col = col;
  b->pend[b->npend].val = val;
  b->npend++;
  return FM_OK;
}

/* Stable sort of e[0..n) by column: insertion sort for short runs, then a
 * bottom-up merge through tmp.  Stability keeps duplicate columns in the
 * order they were added, so their sum is reproducible. */
static void sort_entries(fm_csr_entry_ *e, fm_csr_entry_ *tmp, size_t n) {
  enum { RUN = 16 };
  for (size_t s = 0; s < n; s += RUN) {
    size_t end = s + RUN < n ? s + RUN : n;
    for (size_t i = s + 1; i < end; i++) {
      fm_csr_entry_ x = e[i];
      size_t j = i;
      while (j > s && e[j - 1].col > x.col) {
        e[j] = e[j - 1];
        j--;
      }
      e[j] = x;
    }
  }
  fm_csr_entry_ *src = e, *dst = tmp;
  for (size_t w = RUN; w < n; w *= 2) {
    for (size_t lo = 0; lo < n; lo += 2 * w) {
      size_t mid = lo + w < n ? lo + w : n;
      size_t hi = lo + 2 * w < n ? lo + 2 * w : n;
      size_t i = lo, j = mid, o = lo;
      while (i < mid && j < hi) dst[o++] = src[j].col < src[i].col ? src[j++] : src[i++];
      while (i < mid) dst[o++] = src[i++];
      while (j < hi) dst[o++] = src[j++];
    }
    fm_csr_entry_ *t = src;
    src = dst;
    dst = t;
  }
  if (src != e) memcpy(e, src, n * sizeof *e);
}

fm_rc fm_csr_builder_end_row(fm_csr_builder *b) {
  if (b->nrows >= UINT32_MAX - 1) return FM_ERR_ARG;
  size_t n = b->npend;
  if (fm_grow((void **)&b->rowptr, &b->rowcap, (size_t)b->nrows + 2,
              sizeof *b->rowptr))
    return FM_ERR_NOMEM;
  if (n > 16 &&
      fm_grow((void **)&b->scratch, &b->scratchcap, n, sizeof *b->scratch))
    return FM_ERR_NOMEM;
  if (n) {
    /* Reserve the worst case (no duplicates) before changing anything. */
    size_t cap = b->cap;
    if (fm_grow((void **)&b->col, &cap, b->nnz + n, sizeof *b->col))
      return FM_ERR_NOMEM;
    cap = b->cap;
    if (fm_grow((void **)&b->val, &cap, b->nnz + n, sizeof *b->val))
      return FM_ERR_NOMEM; /* col grew, val did not: cap stays the min */
    b->cap = cap;
    sort_entries(b->pend, b->scratch, n);
  }
  size_t o = b->nnz;
  for (size_t i = 0; i < n;) {
    uint32_t c = b->pend[i].col;
    float s = b->pend[i].val;
    for (i++; i < n && b->pend[i].col == c; i++) s += b->pend[i].val;
    if (s != 0.0f) {
      b->col[o] = c;
      b->val[o] = s;
      o++;
    }
  }
  b->nnz = o;
  b->npend = 0;
  b->nrows++;
  b->rowptr[b->nrows] = o;
  return FM_OK;
}

fm_rc fm_csr_builder_finish(fm_csr_builder *b, fm_csr *out) {
  if (b->npend) return FM_ERR_ARG;
  if (!b->rowptr) return FM_ERR_ARG; /* not initialized or already finished */
  out->nrows = b->nrows;
  out->ncols = b->ncols;
  out->rowptr = b->rowptr;
  out->col = b->col;
  out->val = b->val;
  b->rowptr = NULL;
  b->col = NULL;
  b->val = NULL;
  b->rowcap = b->cap = b->nnz = 0;
  b->nrows = 0;
  return FM_OK;
}

void fm_csr_builder_free(fm_csr_builder *b) {
  if (!b) return;
  fm_free(b->rowptr);
  fm_free(b->col);
  fm_free(b->val);
  fm_free(b->pend);
  fm_free(b->scratch);
  memset(b, 0, sizeof *b);
}

/* ---- operations ------------------------------------------------------- */

void fm_csr_normalize_rows(fm_csr *m) {
  for (uint32_t i = 0; i < m->nrows; i++) {
    double s = 0;
    for (uint64_t p = m->rowptr[i]; p < m->rowptr[i + 1]; p++)
      s += (double)m->val[p] * m->val[p];
    if (s <= 0) continue;
    float inv = (float)(1.0 / sqrt(s));
    for (uint64_t p = m->rowptr[i]; p < m->rowptr[i + 1]; p++) m->val[p] *= inv;
  }
}

fm_rc fm_csr_transpose(const fm_csr *A, fm_csr *out) {
  uint64_t nnz = fm_csr_nnz(A);
  fm_csr t = {A->ncols, A->nrows, NULL, NULL, NULL};
  t.rowptr = fm_calloc((size_t)A->ncols + 1, sizeof *t.rowptr);
  t.col = fm_malloc(nnz * sizeof *t.col);
  t.val = fm_malloc(nnz * sizeof *t.val);
  if (!t.rowptr || !t.col || !t.val) {
    fm_csr_free(&t);
    return FM_ERR_NOMEM;
  }
  for (uint64_t p = 0; p < nnz; p++) t.rowptr[A->col[p] + 1]++;
  for (uint32_t j = 0; j < A->ncols; j++) t.rowptr[j + 1] += t.rowptr[j];
  /* Scatter in row order; rowptr[j] serves as the fill cursor of row j and
   * is shifted back afterwards. */
  for (uint32_t i = 0; i < A->nrows; i++) {
    for (uint64_t p = A->rowptr[i]; p < A->rowptr[i + 1]; p++) {
      uint64_t q = t.rowptr[A->col[p]]++;
      t.col[q] = i;
      t.val[q] = A->val[p];
    }
  }
  for (uint32_t j = A->ncols; j > 0; j--) t.rowptr[j] = t.rowptr[j - 1];
  t.rowptr[0] = 0;
  *out = t;
  return FM_OK;
}

/* Below this many multiply-adds a product runs on the calling thread. */
#define PAR_MIN_WORK (1u << 20)

typedef struct mul_ctx {
  const fm_csr *A;
  const float *X;
  float *Y;
  int k;
} mul_ctx;

static void mul_part(void *p, int tid, int nt) {
  const mul_ctx *c = p;
  const fm_csr *A = c->A;
  /* Rows split so each thread gets about the same number of entries. */
  size_t r0 = fm_split_rows(A->rowptr, A->nrows, tid, nt),
         r1 = fm_split_rows(A->rowptr, A->nrows, tid + 1, nt);
  size_t k = (size_t)c->k;
  for (size_t i = r0; i < r1; i++) {
    float *y = c->Y + i * k;
    memset(y, 0, k * sizeof *y);
    uint64_t q = A->rowptr[i], e = A->rowptr[i + 1];
    const uint32_t *col = A->col;
    const float *val = A->val, *X = c->X;
    for (; q + 4 <= e; q += 4)
      fm_axpy4(y, X + (size_t)col[q] * k, X + (size_t)col[q + 1] * k,
               X + (size_t)col[q + 2] * k, X + (size_t)col[q + 3] * k, val[q], val[q + 1],
               val[q + 2], val[q + 3], k);
    for (; q < e; q++) fm_axpy(y, X + (size_t)col[q] * k, val[q], k);
  }
}

void fm_csr_mul_dense(const fm_csr *A, const float *X, int k, float *Y) {
  if (k <= 0) return;
  mul_ctx c = {A, X, Y, k};
  int nt = fm_csr_nnz(A) * (uint64_t)k < PAR_MIN_WORK || A->nrows < 64
               ? 1 : fm_linalg_threads();
  fm_par_run(nt, mul_part, &c);
}

static void tmul_part(void *p, int tid, int nt) {
  const mul_ctx *c = p;
  const fm_csr *A = c->A;
  size_t k = (size_t)c->k;
  /* Each thread owns a slab of output columns, cut at multiples of 16
   * floats (one cache line) so threads do not share lines of Y. */
  size_t blocks = (k + 15) / 16;
  size_t c0 = blocks * (size_t)tid / (size_t)nt * 16;
  size_t c1 = blocks * (size_t)(tid + 1) / (size_t)nt * 16;
  if (c1 > k) c1 = k;
  if (c0 >= c1) return;
  size_t w = c1 - c0;
  for (uint32_t j = 0; j < A->ncols; j++)
    memset(c->Y + (size_t)j * k + c0, 0, w * sizeof(float));
  for (uint32_t i = 0; i < A->nrows; i++) {
    const float *x = c->X + (size_t)i * k + c0;
    for (uint64_t q = A->rowptr[i]; q < A->rowptr[i + 1]; q++)
      fm_axpy(c->Y + (size_t)A->col[q] * k + c0, x, A->val[q], w);
  }
}

void fm_csr_tmul_dense(const fm_csr *A, const float *X, int k, float *Y) {
  if (k <= 0) return;
  mul_ctx c = {A, X, Y, k};
  int nt = fm_csr_nnz(A) * (uint64_t)k < PAR_MIN_WORK ? 1 : fm_linalg_threads();
  if (nt > (k + 15) / 16) nt = (k + 15) / 16;
  fm_par_run(nt, tmul_part, &c);
}
