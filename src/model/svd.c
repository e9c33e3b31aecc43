/*
 * svd.c: randomized truncated SVD (Halko, Martinsson, Tropp 2011,
 * Algorithms 4.4 and 5.1) for a CSR matrix.  See docs/svd.md.
 *
 * Layout: the sparse kernels want dense blocks row-major (a row of the block
 * is contiguous, so a sparse row gathers whole rows); LAPACK wants them
 * column-major.  We keep blocks row-major and transpose into a column-major
 * scratch for each factorization: a copy costs far less than LAPACK's
 * LQ-based alternative on the row-major layout (measured 5x slower).
 */
#include "svd.h"
#include "linalg_internal.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
/* Step timing for tuning: build with -DFM_SVD_TIMING to print it. */
#ifdef FM_SVD_TIMING
#include <stdio.h>
static double tlast;
static void TM(const char *what) {
  double t = fm_now();
  if (what) fprintf(stderr, "  %-12s %.4f\n", what, t - tlast);
  tlast = t;
}
#else
#define TM(what) ((void)0)
#endif

void fm_svd_opts_init(fm_svd_opts *o, int k) {
  o->k = k;
  o->oversample = FM_SVD_DEFAULT_OVERSAMPLE;
  o->power_iters = FM_SVD_DEFAULT_POWER_ITERS;
  o->seed = 0;
}

/* ---- random numbers ---------------------------------------------------- */

/* xoshiro256** seeded through splitmix64 (Blackman and Vigna): fast, good
 * enough for a Gaussian sketch, and identical on every platform. */
typedef struct rng {
  uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed) {
  for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(rng *r) {
  uint64_t *s = r->s;
  uint64_t out = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return out;
}

/* Uniform in (0, 1]. */
static double rng_unit(rng *r) { return (double)((rng_next(r) >> 11) + 1) * 0x1p-53; }

/* Standard normal deviates by Box-Muller.  The sketch is cut into blocks
 * of GBLOCK values, each from its own generator seeded by (seed, block
 * number), so blocks can be filled in parallel and the result does not
 * depend on the number of threads. */
enum { GBLOCK = 8192 };

typedef struct gauss_ctx {
  float *x;
  size_t n;
  uint64_t seed;
} gauss_ctx;

static void gauss_part(void *p, int tid, int nt) {
  const gauss_ctx *c = p;
  const float two_pi = 6.28318530717958647f;
  size_t nblocks = (c->n + GBLOCK - 1) / GBLOCK;
  for (size_t b = (size_t)tid; b < nblocks; b += (size_t)nt) {
    rng r;
    uint64_t sm = c->seed ^ (0xd1b54a32d192ed03ull * (b + 1));
    rng_seed(&r, splitmix64(&sm));
    size_t i0 = b * GBLOCK, i1 = i0 + GBLOCK < c->n ? i0 + GBLOCK : c->n;
    for (size_t i = i0; i < i1; i += 2) {
      float rad = sqrtf(-2.0f * logf((float)rng_unit(&r)));
      float th = two_pi * (float)rng_unit(&r);
      c->x[i] = rad * cosf(th);
      if (i + 1 < i1) c->x[i + 1] = rad * sinf(th);
    }
  }
}

static void gaussian_fill(uint64_t seed, float *x, size_t n) {
  gauss_ctx c = {x, n, seed};
  fm_par_run(n < 4 * GBLOCK ? 1 : fm_linalg_threads(), gauss_part, &c);
}

/* ---- layout ------------------------------------------------------------ */

enum { TB = 32 }; /* transpose tile */

/* Rows per slice of the level-3 calls on a tall block (see sliced BLAS). */
enum { LBLK = 2048 };

/* The layout changes are pure copies of 17-32 MB blocks, worth two threads
 * (rows cut at multiples of the tile; the result is the same bytes). */
typedef struct tr_ctx {
  const float *src;
  float *dst;
  size_t r, c;
  int to_cm;
} tr_ctx;

static void tr_part(void *p, int tid, int nt) {
  const tr_ctx *t = p;
  size_t r = t->r, c = t->c, nb = (r + TB - 1) / TB;
  size_t b0 = nb * (size_t)tid / (size_t)nt, b1 = nb * (size_t)(tid + 1) / (size_t)nt;
  for (size_t i0 = b0 * TB; i0 < b1 * TB && i0 < r; i0 += TB)
    for (size_t j0 = 0; j0 < c; j0 += TB) {
      size_t i1 = i0 + TB < r ? i0 + TB : r, j1 = j0 + TB < c ? j0 + TB : c;
      if (t->to_cm) {
        for (size_t j = j0; j < j1; j++)
          for (size_t i = i0; i < i1; i++) t->dst[i + j * r] = t->src[i * c + j];
      } else {
        for (size_t i = i0; i < i1; i++)
          for (size_t j = j0; j < j1; j++) t->dst[i * c + j] = t->src[i + j * r];
      }
    }
}

static void transpose(const float *src, size_t r, size_t c, float *dst, int to_cm) {
  tr_ctx t = {src, dst, r, c, to_cm};
  fm_par_run(r * c < ((size_t)1 << 18) ? 1 : fm_linalg_threads(), tr_part, &t);
}

/* dst (r x c column-major, ld r) = src (r x c row-major). */
static void rm_to_cm(const float *src, size_t r, size_t c, float *dst) {
  transpose(src, r, c, dst, 1);
}

/* dst (r x c row-major) = src (r x c column-major, ld r). */
static void cm_to_rm(const float *src, size_t r, size_t c, float *dst) {
  transpose(src, r, c, dst, 0);
}

/* ---- workspace --------------------------------------------------------- */

typedef struct svd_ws {
  size_t m, n, l, k;
  float *Z;   /* n x l row-major: sketch, A^T-side iterate, then B^T */
  float *Y;   /* m x l row-major: A-side iterate, then Q */
  float *T;   /* max(m,n) x l column-major LAPACK scratch */
  float *tau; /* l Householder scalars */
  float *R;   /* l x l: R factor of B^T, destroyed by gesdd */
  float *G;   /* l x l: Gram matrix, then its Cholesky factor */
  float *P;   /* one l x l partial Gram matrix per slice of LBLK rows */
  float *Ur;  /* l x l left singular vectors of R */
  float *Vt;  /* l x l right singular vectors of R, transposed */
  float *Sl;  /* l singular values */
  float *C;   /* n x k row-major: V before the sign fix, when the caller
               * wants no V (else V itself serves) */
  int need_c;
  float *work;
  lapack_int lwork;
  lapack_int *ipiv;  /* l */
  lapack_int *iwork; /* 8 l, for gesdd */
  fm_csr At;
} svd_ws;

static void ws_free(svd_ws *w) {
  fm_free(w->Z);
  fm_free(w->Y);
  fm_free(w->T);
  fm_free(w->tau);
  fm_free(w->R);
  fm_free(w->G);
  fm_free(w->P);
  fm_free(w->Ur);
  fm_free(w->Vt);
  fm_free(w->Sl);
  fm_free(w->C);
  fm_free(w->work);
  fm_free(w->ipiv);
  fm_free(w->iwork);
  fm_csr_free(&w->At);
}

static void *alloc_floats(size_t a, size_t b) {
  if (b && a > SIZE_MAX / sizeof(float) / b) return NULL;
  return fm_malloc(a * b * sizeof(float));
}

static fm_rc lapack_fail(fm_error *err, const char *routine, lapack_int info) {
  return fm_error_set(err, FM_ERR_LAPACK, "fm_svd_randomized: %s failed (info = %d)",
                      routine, (int)info);
}

static fm_rc ws_alloc(svd_ws *w, const fm_csr *A, fm_error *err) {
  size_t m = w->m, n = w->n, l = w->l, k = w->k, mx = m > n ? m : n;
  w->Z = alloc_floats(n, l);
  w->Y = alloc_floats(m, l);
  w->T = alloc_floats(mx, l);
  w->tau = alloc_floats(l, 1);
  w->R = alloc_floats(l, l);
  w->G = alloc_floats(l, l);
  w->P = alloc_floats((mx + LBLK - 1) / LBLK * l, l);
  w->Ur = alloc_floats(l, l);
  w->Vt = alloc_floats(l, l);
  w->Sl = alloc_floats(l, 1);
  w->C = w->need_c ? alloc_floats(n, k) : NULL;
  w->ipiv = fm_malloc(l * sizeof *w->ipiv);
  w->iwork = fm_malloc(8 * l * sizeof *w->iwork);
  if (!w->Z || !w->Y || !w->T || !w->tau || !w->R || !w->G || !w->P || !w->Ur || !w->Vt ||
      !w->Sl || (w->need_c && !w->C) || !w->ipiv || !w->iwork)
    goto nomem;

  /* Workspace queries (lwork = -1) for every LAPACK call below. */
  float q;
  lapack_int info, need = 1;
  lapack_int lm = (lapack_int)m, ln = (lapack_int)n, ll = (lapack_int)l,
             lmx = (lapack_int)mx;
#define QUERY(call, name)                                  \
  do {                                                     \
    q = 0;                                                 \
    info = (call);                                         \
    if (info != 0) return lapack_fail(err, name, info);    \
    if ((lapack_int)q + 1 > need) need = (lapack_int)q + 1; \
  } while (0)
  QUERY(LAPACKE_sgeqrf_work(LAPACK_COL_MAJOR, lmx, ll, w->T, lmx, w->tau, &q, -1),
        "sgeqrf query");
  QUERY(LAPACKE_sorgqr_work(LAPACK_COL_MAJOR, lm, ll, ll, w->T, lm, w->tau, &q, -1),
        "sorgqr query");
  QUERY(LAPACKE_sorgqr_work(LAPACK_COL_MAJOR, ln, ll, ll, w->T, ln, w->tau, &q, -1),
        "sorgqr query");
  QUERY(LAPACKE_sgesdd_work(LAPACK_COL_MAJOR, 'S', ll, ll, w->R, ll, w->Sl, w->Ur, ll,
                            w->Vt, ll, &q, -1, w->iwork),
        "sgesdd query");
#undef QUERY
  w->lwork = need;
  w->work = alloc_floats((size_t)need, 1);
  if (!w->work) goto nomem;
  if (fm_csr_transpose(A, &w->At)) goto nomem;
  return FM_OK;
nomem:
  return fm_error_set(err, FM_ERR_NOMEM,
                      "fm_svd_randomized: out of memory for a %zu x %zu matrix, "
                      "sketch of %zu columns", m, n, l);
}

/* X (r x l row-major) = the unit lower trapezoidal L of the LU factor in T
 * (column-major), rows cut among threads (copies only). */
typedef struct lu_ctx {
  const float *T;
  float *X;
  size_t r, l;
} lu_ctx;

static void lu_part(void *p, int tid, int nt) {
  const lu_ctx *c = p;
  size_t r = c->r, l = c->l, nb = (r + TB - 1) / TB;
  size_t i0 = nb * (size_t)tid / (size_t)nt * TB, i1 = nb * (size_t)(tid + 1) / (size_t)nt * TB;
  if (i1 > r) i1 = r;
  for (size_t i = i0; i < i1; i++) {
    float *x = c->X + i * l;
    size_t d = i < l ? i : l;
    for (size_t j = 0; j < d; j++) x[j] = c->T[i + j * r];
    if (i < l) {
      x[i] = 1.0f;
      memset(x + i + 1, 0, (l - i - 1) * sizeof *x);
    }
  }
}

/* Replace the r x l row-major block X by a basis of its column space made
 * of the LU factor: P X = L U, basis = P^T L (unit lower trapezoidal up to
 * the row permutation).  This is the cheap normalizer between power
 * iterations (as in Halko et al. section 4.5 and scikit-learn's
 * randomized_range_finder): it keeps the columns from collapsing onto the
 * top singular vector at a quarter of the cost of Householder QR. */
static fm_rc orth_lu(svd_ws *w, float *X, size_t r, fm_error *err) {
  size_t l = w->l;
  rm_to_cm(X, r, l, w->T);
  lapack_int info = LAPACKE_sgetrf_work(LAPACK_COL_MAJOR, (lapack_int)r, (lapack_int)l,
                                        w->T, (lapack_int)r, w->ipiv);
  /* info > 0: an exactly zero pivot (rank-deficient block).  L is still a
   * valid factor and the final QR cleans up, so carry on. */
  if (info < 0) return lapack_fail(err, "sgetrf", info);
  lu_ctx c = {w->T, X, r, l};
  fm_par_run(r * l < ((size_t)1 << 18) ? 1 : fm_linalg_threads(), lu_part, &c);
  for (size_t i = l; i-- > 0;) {
    size_t p = (size_t)w->ipiv[i] - 1;
    if (p != i) {
      float *a = X + i * l, *b = X + p * l;
      for (size_t j = 0; j < l; j++) {
        float t = a[j];
        a[j] = b[j];
        b[j] = t;
      }
    }
  }
  return FM_OK;
}

/* The l x l upper triangle of the column-major F (leading dimension ld)
 * into Rout (column-major, l x l), lower part zeroed. */
static void copy_upper(const float *F, size_t ld, size_t l, float *Rout) {
  for (size_t j = 0; j < l; j++)
    for (size_t i = 0; i < l; i++) Rout[i + j * l] = i <= j ? F[i + j * ld] : 0.0f;
}

/* Replace the r x l row-major block X by an orthonormal basis of its column
 * space (Householder QR: sgeqrf + sorgqr); X = Q R with R (upper) written
 * to Rout (column-major, lower part zero). */
static fm_rc orth_qr(svd_ws *w, float *X, size_t r, float *Rout, fm_error *err) {
  size_t l = w->l;
  lapack_int lr = (lapack_int)r, ll = (lapack_int)l, info;
  rm_to_cm(X, r, l, w->T);
  info = LAPACKE_sgeqrf_work(LAPACK_COL_MAJOR, lr, ll, w->T, lr, w->tau, w->work, w->lwork);
  if (info != 0) return lapack_fail(err, "sgeqrf", info);
  copy_upper(w->T, r, l, Rout);
  info = LAPACKE_sorgqr_work(LAPACK_COL_MAJOR, lr, ll, ll, w->T, lr, w->tau, w->work,
                             w->lwork);
  if (info != 0) return lapack_fail(err, "sorgqr", info);
  cm_to_rm(w->T, r, l, X);
  return FM_OK;
}

/* ---- sliced BLAS ------------------------------------------------------ */

/* The level-3 calls on a tall block (r rows: the Gram matrix, X R^{-1},
 * V = Q2 Ur) go in fixed slices of LBLK rows, run on the library's own
 * threads (fm_par_run) with OpenBLAS itself single-threaded for the whole
 * SVD (fm_svd_randomized sets it to one thread and restores it):
 *  - OpenBLAS's idle workers spin (sched_yield) for ~0.1 s after each call,
 *    so with its threads on, every sparse product, the sketch, and the
 *    caller's next threaded step ran against a spinning thread on two
 *    cores;
 *  - OpenBLAS packs the long operand into a per-thread buffer as wide as the
 *    call: a 30000-row call first-touches ~15 MB of buffer pages (a fault
 *    each, slow on a VM), a slice ~2 MB.
 * Each slice is computed the same way whichever thread takes it, and the
 * partial Gram matrices are summed in slice order, so the result does not
 * depend on the number of threads (of either kind). */
typedef struct slice_ctx {
  svd_ws *w;
  const float *X; /* r x l row-major (the strmm slices write it) */
  float *Xw;
  size_t r;
  const float *B; /* l x l: R^{-1} (strmm) or Ur (sgemm), column-major */
  float *C;       /* sgemm output, r x k row-major */
  size_t k;
  int op;         /* 0 partial Grams, 1 strmm, 2 sgemm */
} slice_ctx;

static void slice_part(void *p, int tid, int nt) {
  const slice_ctx *c = p;
  size_t l = c->w->l, ns = (c->r + LBLK - 1) / LBLK;
  int li = (int)l;
  for (size_t s = (size_t)tid; s < ns; s += (size_t)nt) {
    size_t r0 = s * LBLK, nr = c->r - r0 < LBLK ? c->r - r0 : LBLK;
    if (c->op == 0)
      cblas_ssyrk(CblasColMajor, CblasUpper, CblasNoTrans, li, (int)nr, 1.0f, c->X + r0 * l, li,
                  0.0f, c->w->P + s * l * l, li);
    else if (c->op == 1)
      cblas_strmm(CblasColMajor, CblasLeft, CblasUpper, CblasTrans, CblasNonUnit, li, (int)nr,
                  1.0f, c->B, li, c->Xw + r0 * l, li);
    else
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr, (int)c->k, li, 1.0f,
                  c->X + r0 * l, li, c->B, li, 0.0f, c->C + r0 * c->k, (int)c->k);
  }
}

static void run_slices(slice_ctx *c) {
  size_t ns = (c->r + LBLK - 1) / LBLK;
  int nt = fm_linalg_threads();
  fm_par_run(ns < 2 ? 1 : (nt < (int)ns ? nt : (int)ns), slice_part, c);
}

/* G (upper triangle, column-major l x l) = X^T X for the r x l row-major X:
 * partial Grams of the slices, summed in slice order. */
static void gram(svd_ws *w, const float *X, size_t r) {
  size_t l = w->l, ns = (r + LBLK - 1) / LBLK;
  slice_ctx c = {.w = w, .X = X, .r = r, .op = 0};
  run_slices(&c);
  for (size_t j = 0; j < l; j++)
    for (size_t i = 0; i <= j; i++) {
      float g = 0.0f;
      for (size_t s = 0; s < ns; s++) g += w->P[s * l * l + i + j * l];
      w->G[i + j * l] = g;
    }
}

/* X (r x l row-major) := X Rinv, Rinv upper (column-major l x l). */
static void right_mul_upper(svd_ws *w, float *X, size_t r, const float *Rinv) {
  slice_ctx c = {.w = w, .Xw = X, .r = r, .B = Rinv, .op = 1};
  run_slices(&c);
}

/* C (r x k row-major) = X (r x l row-major) B[:, :k] (B column-major l x l). */
static void mul_cols(svd_ws *w, const float *X, size_t r, const float *B, size_t k, float *C) {
  slice_ctx c = {.w = w, .X = X, .r = r, .B = B, .C = C, .k = k, .op = 2};
  run_slices(&c);
}

/* One CholeskyQR pass over the r x l row-major block X (read column-major,
 * the same memory is X^T, l x r, so no transpose is needed): G = X^T X
 * (ssyrk), G = R^T R (spotrf), X := X R^{-1}.  The last step inverts the
 * small R (strtri) and multiplies in place (strmm), 2.5x faster in OpenBLAS
 * than the triangular solve (strsm) on these blocks.  All level-3 BLAS,
 * several times faster than Householder QR, but the Gram matrix squares
 * the condition number: the pass is refused (X untouched, returns 1) when
 * spotrf fails or a diagonal entry of R is below min_ratio times the
 * largest (or not finite), and the caller falls back to LU or Householder.
 * Returns 0 when X was replaced; then R (upper) is in Rout (column-major,
 * lower part zero) when Rout is not NULL. */
static int cholqr_pass(svd_ws *w, float *X, size_t r, float min_ratio, float *Rout) {
  size_t l = w->l;
  lapack_int ll = (lapack_int)l;
  gram(w, X, r);
  if (LAPACKE_spotrf_work(LAPACK_COL_MAJOR, 'U', ll, w->G, ll) != 0) return 1;
  float lo = INFINITY, hi = 0.0f;
  for (size_t i = 0; i < l; i++) {
    float d = w->G[i + i * l];
    if (!isfinite(d)) return 1;
    if (d < lo) lo = d;
    if (d > hi) hi = d;
  }
  if (!(lo > 0.0f) || lo < min_ratio * hi) return 1;
  if (Rout) copy_upper(w->G, l, l, Rout);
  if (LAPACKE_strtri_work(LAPACK_COL_MAJOR, 'U', 'N', ll, w->G, ll) != 0) return 1;
  right_mul_upper(w, X, r, w->G);
  return 0;
}

/* The normalization between power iterations: one CholeskyQR pass (the
 * basis only has to stay well conditioned, not orthonormal to the last
 * bit), else the LU factor. */
static fm_rc orth_step(svd_ws *w, float *X, size_t r, fm_error *err) {
  if (cholqr_pass(w, X, r, 1e-3f, NULL) == 0) return FM_OK;
  return orth_lu(w, X, r, err);
}

/* Replace the r x l row-major block X by an orthonormal basis Q of its
 * column space, X = Q R, with R (upper, column-major, lower part zero) in
 * w->R.  CholeskyQR2 (Fukaya et al. 2014: a second pass over the nearly
 * orthonormal result restores orthogonality to working precision; R =
 * R2 R1), with Householder QR for a pass that is refused (an ill
 * conditioned or rank-deficient X).  w->Vt is scratch. */
static fm_rc orth_final(svd_ws *w, float *X, size_t r, fm_error *err) {
  size_t l = w->l;
  int li = (int)l;
  float *R2 = w->Vt;
  if (cholqr_pass(w, X, r, 1e-3f, w->R) != 0) return orth_qr(w, X, r, w->R, err);
  /* the second factor: ~= I after a first pass, else Householder's */
  if (cholqr_pass(w, X, r, 0.5f, R2) != 0) {
    fm_rc rc = orth_qr(w, X, r, R2, err);
    if (rc) return rc;
  }
  cblas_strmm(CblasColMajor, CblasLeft, CblasUpper, CblasNoTrans, CblasNonUnit, li, li, 1.0f,
              R2, li, w->R, li);
  return FM_OK;
}

fm_rc fm_svd_randomized(const fm_csr *A, const fm_svd_opts *o, float *U,
                        float *S, float *V, fm_error *err) {
  if (!A || !o || !S)
    return fm_error_set(err, FM_ERR_ARG, "fm_svd_randomized: %s is NULL",
                        !A ? "matrix" : !o ? "options" : "S");
  size_t m = A->nrows, n = A->ncols, mn = m < n ? m : n;
  if (o->k < 1 || (size_t)o->k > mn)
    return fm_error_set(err, FM_ERR_ARG,
                        "fm_svd_randomized: k = %d must be between 1 and "
                        "min(rows, cols) = %zu for a %zu x %zu matrix",
                        o->k, mn, m, n);
  int p = o->oversample < 0 ? FM_SVD_DEFAULT_OVERSAMPLE : o->oversample;
  int q = o->power_iters < 0 ? FM_SVD_DEFAULT_POWER_ITERS : o->power_iters;
  if (q > 1000)
    return fm_error_set(err, FM_ERR_ARG,
                        "fm_svd_randomized: power_iters = %d is unreasonable", q);
  if (mn > (size_t)INT32_MAX / 16)
    return fm_error_set(err, FM_ERR_ARG, "fm_svd_randomized: matrix too large for LAPACK");

  svd_ws w;
  memset(&w, 0, sizeof w);
  w.m = m;
  w.n = n;
  w.k = (size_t)o->k;
  w.l = (size_t)o->k + (size_t)p;
  w.need_c = V == NULL;
  if (w.l > mn) w.l = mn;
  size_t l = w.l, k = w.k;

  TM(NULL);
  int blas_threads = openblas_get_num_threads();
  openblas_set_num_threads(1); /* see "sliced BLAS" */
  fm_rc rc = ws_alloc(&w, A, err);
  if (rc) goto done;
  TM("alloc");

  /* Range finder: Y = (A A^T)^q A Omega, normalized after every product. */
  gaussian_fill(o->seed, w.Z, n * l);
  TM("gauss");
  fm_csr_mul_dense(A, w.Z, (int)l, w.Y);
  TM("mul");
  for (int it = 0; it < q; it++) {
    if ((rc = orth_step(&w, w.Y, m, err))) goto done;
    TM("orth m");
    fm_csr_mul_dense(&w.At, w.Y, (int)l, w.Z);
    TM("tmul");
    if ((rc = orth_step(&w, w.Z, n, err))) goto done;
    TM("orth n");
    fm_csr_mul_dense(A, w.Z, (int)l, w.Y);
    TM("mul");
  }
  if ((rc = orth_final(&w, w.Y, m, err))) goto done; /* Y = Q, m x l */
  TM("qr m");

  /* B^T = A^T Q (n x l) = Q2 R; R = Ur diag(S) Vt.  Then
   * A ~= Q B = (Q Vt^T) diag(S) (Q2 Ur)^T, so U = Q Vt^T, V = Q2 Ur. */
  fm_csr_mul_dense(&w.At, w.Y, (int)l, w.Z);
  TM("tmul");
  if (!U) {
    /* Q is needed again only for U: its pages can serve V (first-touched
     * pages cost a fault each, see fm_malloc) */
    fm_free(w.Y);
    w.Y = NULL;
  }
  if ((rc = orth_final(&w, w.Z, n, err))) goto done; /* Z = Q2, n x l */
  TM("qr n");
  lapack_int ll = (lapack_int)l;
  lapack_int info = LAPACKE_sgesdd_work(LAPACK_COL_MAJOR, 'S', ll, ll, w.R, ll, w.Sl, w.Ur, ll,
                                        w.Vt, ll, w.work, w.lwork, w.iwork);
  if (info != 0) {
    rc = lapack_fail(err, "sgesdd", info);
    goto done;
  }
  TM("gesdd");
  /* V = Q2 Ur[:, :k] (n x k row-major; Ur is column-major, so read
   * row-major it is Ur^T, hence the second transpose). */
  float *C = V ? V : w.C; /* straight into the output: no 30 MB copy */
  mul_cols(&w, w.Z, n, w.Ur, k, C);

  /* Sign convention: the largest-magnitude entry of each column of V is
   * positive (first one on ties).  The flip is applied to the matching
   * column of W = Vt^T too, so U comes out consistent.  Nothing can fail
   * from here on: the outputs are written only now. */
  float *best = w.R; /* k <= l*l floats; R is dead after gesdd */
  for (size_t j = 0; j < k; j++) best[j] = 0.0f;
  for (size_t i = 0; i < n; i++) {
    const float *c = C + i * k;
    for (size_t j = 0; j < k; j++)
      if (fabsf(c[j]) > fabsf(best[j])) best[j] = c[j];
  }
  for (size_t i = 0; i < n; i++) {
    float *c = C + i * k;
    for (size_t j = 0; j < k; j++)
      if (best[j] < 0) c[j] = -c[j];
  }
  for (size_t j = 0; j < k; j++)
    if (best[j] < 0)
      for (size_t i = 0; i < l; i++) w.Vt[i * l + j] = -w.Vt[i * l + j];
  for (size_t j = 0; j < k; j++) S[j] = w.Sl[j];
  if (U) {
    /* Read as row-major, the column-major Vt buffer is Vt^T = W (l x l);
     * U = Q W[:, :k], Q row-major m x l. */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)k, (int)l, 1.0f,
                w.Y, (int)l, w.Vt, (int)l, 0.0f, U, (int)k);
  }
  TM("V+out");
  rc = FM_OK;
done:
  ws_free(&w);
  openblas_set_num_threads(blas_threads);
  TM("free");
  return rc;
}
