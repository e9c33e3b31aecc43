/* test_linalg.c: CSR builder and products, randomized SVD against a full
 * dense SVD, top-k heap and dense top-k against brute force, and fault
 * injection through the SVD. */
#include <cblas.h>
#include <lapacke.h>
#include <stdint.h>

#include "fm_test.h"
#include "fm_util.h"
#include "sparse.h"
#include "svd.h"
#include "topk.h"

static uint64_t rs = 0x243f6a8885a308d3ull;
static uint64_t rnd(void) {
  rs ^= rs << 13;
  rs ^= rs >> 7;
  rs ^= rs << 17;
  return rs;
}
static float frnd(void) { return (float)((rnd() >> 40) * 0x1p-24) * 2.0f - 1.0f; }

/* Densify A into a row-major nrows x ncols array (caller frees). */
static float *densify(const fm_csr *A) {
  float *D = calloc((size_t)A->nrows * A->ncols, sizeof *D);
  for (uint32_t i = 0; i < A->nrows; i++)
    for (uint64_t p = A->rowptr[i]; p < A->rowptr[i + 1]; p++)
      D[(size_t)i * A->ncols + A->col[p]] += A->val[p];
  return D;
}

/* A random sparse m x n matrix with about density*m*n entries. */
static void random_csr(fm_csr *A, uint32_t m, uint32_t n, double density) {
  fm_csr_builder b;
  CHECK(fm_csr_builder_init(&b, n) == FM_OK);
  for (uint32_t i = 0; i < m; i++) {
    for (uint32_t j = 0; j < n; j++)
      if ((double)(rnd() % 1000000) < density * 1e6) CHECK(fm_csr_builder_add(&b, j, frnd()) == FM_OK);
    CHECK(fm_csr_builder_end_row(&b) == FM_OK);
  }
  CHECK(fm_csr_builder_finish(&b, A) == FM_OK);
  fm_csr_builder_free(&b);
}

static void test_builder(void) {
  fm_csr_builder b;
  fm_csr A;
  CHECK(fm_csr_builder_init(&b, 10) == FM_OK);
  /* row 0: unsorted with duplicates */
  CHECK(fm_csr_builder_add(&b, 7, 1.0f) == FM_OK);
  CHECK(fm_csr_builder_add(&b, 2, 2.0f) == FM_OK);
  CHECK(fm_csr_builder_add(&b, 7, 0.5f) == FM_OK);
  CHECK(fm_csr_builder_add(&b, 0, 3.0f) == FM_OK);
  CHECK(fm_csr_builder_end_row(&b) == FM_OK);
  /* row 1: empty */
  CHECK(fm_csr_builder_end_row(&b) == FM_OK);
  /* row 2: duplicates cancelling to zero are dropped; bad column/value */
  CHECK(fm_csr_builder_add(&b, 10, 1.0f) == FM_ERR_ARG);
  CHECK(fm_csr_builder_add(&b, 1, NAN) == FM_ERR_ARG);
  CHECK(fm_csr_builder_add(&b, 4, 1.0f) == FM_OK);
  CHECK(fm_csr_builder_add(&b, 4, -1.0f) == FM_OK);
  CHECK(fm_csr_builder_add(&b, 9, 4.0f) == FM_OK);
  CHECK(fm_csr_builder_end_row(&b) == FM_OK);
  /* row 3: long row exercising the merge sort, 100 entries over 10 cols */
  for (int i = 0; i < 100; i++) CHECK(fm_csr_builder_add(&b, (uint32_t)((i * 7) % 10), 1.0f) == FM_OK);
  CHECK(fm_csr_builder_end_row(&b) == FM_OK);
  /* an unterminated row makes finish fail and leaves the builder intact */
  CHECK(fm_csr_builder_add(&b, 1, 1.0f) == FM_OK);
  CHECK(fm_csr_builder_finish(&b, &A) == FM_ERR_ARG);
  CHECK(fm_csr_builder_end_row(&b) == FM_OK);
  CHECK(fm_csr_builder_finish(&b, &A) == FM_OK);
  fm_csr_builder_free(&b);

  CHECK(A.nrows == 5 && A.ncols == 10);
  CHECK(A.rowptr[0] == 0 && A.rowptr[1] == 3 && A.rowptr[2] == 3 && A.rowptr[3] == 4);
  CHECK(A.col[0] == 0 && A.col[1] == 2 && A.col[2] == 7);
  CHECK(A.val[0] == 3.0f && A.val[1] == 2.0f && A.val[2] == 1.5f);
  CHECK(A.col[3] == 9 && A.val[3] == 4.0f);
  CHECK(A.rowptr[4] - A.rowptr[3] == 10);
  for (uint64_t p = A.rowptr[3]; p < A.rowptr[4]; p++) {
    CHECK(A.col[p] == p - A.rowptr[3]);
    CHECK(A.val[p] == 10.0f);
  }
  CHECK(fm_csr_nnz(&A) == 15);

  fm_csr_normalize_rows(&A);
  CHECK_NEAR(A.val[0], 3.0 / sqrt(9 + 4 + 2.25), 1e-6);
  CHECK_NEAR(A.val[3], 1.0, 1e-7);
  for (uint64_t p = A.rowptr[3]; p < A.rowptr[4]; p++) CHECK_NEAR(A.val[p], 1.0 / sqrt(10.0), 1e-6);
  CHECK(A.rowptr[2] == A.rowptr[1]); /* empty row stays empty */
  fm_csr_free(&A);
  fm_csr_free(&A); /* freeing a zeroed matrix is a no-op */

  /* empty matrix */
  CHECK(fm_csr_builder_init(&b, 3) == FM_OK);
  CHECK(fm_csr_builder_finish(&b, &A) == FM_OK);
  CHECK(A.nrows == 0 && fm_csr_nnz(&A) == 0);
  fm_csr_builder_free(&b);
  fm_csr_free(&A);
}

static void check_products(uint32_t m, uint32_t n, double density, int k) {
  fm_csr A, At;
  random_csr(&A, m, n, density);
  float *D = densify(&A);
  float *X = malloc(sizeof(float) * n * k), *Y = malloc(sizeof(float) * m * k);
  float *X2 = malloc(sizeof(float) * m * k), *Y2 = malloc(sizeof(float) * n * k);
  float *Y3 = malloc(sizeof(float) * n * k);
  for (size_t i = 0; i < (size_t)n * k; i++) X[i] = frnd();
  for (size_t i = 0; i < (size_t)m * k; i++) X2[i] = frnd();
  fm_csr_mul_dense(&A, X, k, Y);
  double maxerr = 0;
  for (uint32_t i = 0; i < m; i++)
    for (int c = 0; c < k; c++) {
      double s = 0;
      for (uint32_t j = 0; j < n; j++) s += (double)D[(size_t)i * n + j] * X[(size_t)j * k + c];
      maxerr = fmax(maxerr, fabs(s - Y[(size_t)i * k + c]));
    }
  CHECK(maxerr < 1e-4);
  fm_csr_tmul_dense(&A, X2, k, Y2);
  maxerr = 0;
  for (uint32_t j = 0; j < n; j++)
    for (int c = 0; c < k; c++) {
      double s = 0;
      for (uint32_t i = 0; i < m; i++) s += (double)D[(size_t)i * n + j] * X2[(size_t)i * k + c];
      maxerr = fmax(maxerr, fabs(s - Y2[(size_t)j * k + c]));
    }
  CHECK(maxerr < 1e-4);
  /* tmul equals mul on the explicit transpose, bit for bit */
  CHECK(fm_csr_transpose(&A, &At) == FM_OK);
  CHECK(At.nrows == n && At.ncols == m && fm_csr_nnz(&At) == fm_csr_nnz(&A));
  fm_csr_mul_dense(&At, X2, k, Y3);
  CHECK(memcmp(Y2, Y3, sizeof(float) * n * k) == 0);
  fm_csr_free(&At);
  fm_csr_free(&A);
  free(D); free(X); free(Y); free(X2); free(Y2); free(Y3);
}

static void test_products(void) {
  check_products(7, 5, 0.5, 3);
  check_products(60, 45, 0.1, 17);
  check_products(300, 200, 0.05, 70); /* large enough to use threads */
  check_products(3, 4, 0.0, 5);       /* all-zero matrix */
}

/* ---- SVD ---------------------------------------------------------------- */

/* A = P diag(sigma) Q^T with random orthonormal P, Q and sigma_i =
 * 0.8^i, sparsified by dropping tiny entries would lose the exact
 * spectrum, so the matrix is stored dense-as-sparse. */
static void spectrum_matrix(fm_csr *A, int m, int n) {
  int r = m < n ? m : n;
  float *P = malloc(sizeof(float) * m * r), *Qm = malloc(sizeof(float) * n * r);
  float *tau = malloc(sizeof(float) * r);
  for (int i = 0; i < m * r; i++) P[i] = frnd();
  for (int i = 0; i < n * r; i++) Qm[i] = frnd();
  LAPACKE_sgeqrf(LAPACK_COL_MAJOR, m, r, P, m, tau);
  LAPACKE_sorgqr(LAPACK_COL_MAJOR, m, r, r, P, m, tau);
  LAPACKE_sgeqrf(LAPACK_COL_MAJOR, n, r, Qm, n, tau);
  LAPACKE_sorgqr(LAPACK_COL_MAJOR, n, r, r, Qm, n, tau);
  fm_csr_builder b;
  CHECK(fm_csr_builder_init(&b, (uint32_t)n) == FM_OK);
  for (int i = 0; i < m; i++) {
    for (int j = 0; j < n; j++) {
      double s = 0;
      for (int t = 0; t < r; t++) s += P[i + t * m] * pow(0.8, t) * Qm[j + t * n];
      if (s != 0) CHECK(fm_csr_builder_add(&b, (uint32_t)j, (float)s) == FM_OK);
    }
    CHECK(fm_csr_builder_end_row(&b) == FM_OK);
  }
  CHECK(fm_csr_builder_finish(&b, A) == FM_OK);
  fm_csr_builder_free(&b);
  free(P); free(Qm); free(tau);
}

static double frob_resid(const float *D, int m, int n, const float *U, const float *S,
                         const float *V, int k) {
  double e = 0;
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double s = D[(size_t)i * n + j];
      for (int t = 0; t < k; t++) s -= (double)U[i * k + t] * S[t] * V[j * k + t];
      e += s * s;
    }
  return sqrt(e);
}

/* vectors: also compare singular vectors one by one (only meaningful when
 * the leading singular values are well separated). */
static void check_svd_against_dense(const fm_csr *A, int k, uint64_t seed, int q, int vectors) {
  int m = (int)A->nrows, n = (int)A->ncols, r = m < n ? m : n;
  float *D = densify(A), *Dc = malloc(sizeof(float) * m * n);
  memcpy(Dc, D, sizeof(float) * m * n);
  float *Sd = malloc(sizeof(float) * r), *Ud = malloc(sizeof(float) * m * r),
        *Vtd = malloc(sizeof(float) * r * n);
  CHECK(LAPACKE_sgesdd(LAPACK_ROW_MAJOR, 'S', m, n, Dc, n, Sd, Ud, r, Vtd, n) == 0);
  float *U = malloc(sizeof(float) * m * k), *S = malloc(sizeof(float) * k),
        *V = malloc(sizeof(float) * n * k);
  fm_svd_opts o;
  fm_svd_opts_init(&o, k);
  o.seed = seed;
  o.power_iters = q;
  fm_error err;
  fm_error_init(&err);
  CHECK(fm_svd_randomized(A, &o, U, S, V, &err) == FM_OK);
  for (int i = 0; i < k; i++) {
    /* a flat spectrum (the random matrix) converges more slowly */
    CHECK_NEAR(S[i] / Sd[i], 1.0, vectors ? 1e-4 : 1e-2);
    if (i) CHECK(S[i] <= S[i - 1]);
    /* subspace agreement, column by column */
    double du = 0, dv = 0;
    for (int a = 0; a < m; a++) du += (double)U[a * k + i] * Ud[a * r + i];
    for (int b = 0; b < n; b++) dv += (double)V[b * k + i] * Vtd[i * n + b];
    if (vectors) {
      CHECK_NEAR(fabs(du), 1.0, 1e-3);
      CHECK_NEAR(fabs(dv), 1.0, 1e-3);
      CHECK(du * dv > 0); /* U and V flipped together */
    }
    /* sign convention: largest |V| entry positive */
    int best = 0;
    for (int b = 1; b < n; b++)
      if (fabsf(V[b * k + i]) > fabsf(V[best * k + i])) best = b;
    CHECK(V[best * k + i] > 0);
  }
  /* optimal rank-k error is sqrt(sum of the remaining sigma^2) */
  double opt = 0;
  for (int i = k; i < r; i++) opt += (double)Sd[i] * Sd[i];
  opt = sqrt(opt);
  double got = frob_resid(D, m, n, U, S, V, k);
  CHECK(got <= opt * 1.01 + 1e-4);
  free(D); free(Dc); free(Sd); free(Ud); free(Vtd); free(U); free(S); free(V);
}

static void test_svd(void) {
  fm_csr A;
  spectrum_matrix(&A, 200, 150);
  check_svd_against_dense(&A, 10, 1, 4, 1);
  check_svd_against_dense(&A, 10, 12345, 4, 1); /* a different seed is accurate too */
  check_svd_against_dense(&A, 10, 7, -1, 1);    /* defaults */

  /* determinism: same seed, same bytes */
  int k = 10, m = 200, n = 150;
  float *U1 = malloc(sizeof(float) * m * k), *S1 = malloc(sizeof(float) * k),
        *V1 = malloc(sizeof(float) * n * k);
  float *U2 = malloc(sizeof(float) * m * k), *S2 = malloc(sizeof(float) * k),
        *V2 = malloc(sizeof(float) * n * k);
  fm_svd_opts o;
  fm_svd_opts_init(&o, k);
  o.seed = 99;
  CHECK(fm_svd_randomized(&A, &o, U1, S1, V1, NULL) == FM_OK);
  CHECK(fm_svd_randomized(&A, &o, U2, S2, V2, NULL) == FM_OK);
  CHECK(memcmp(U1, U2, sizeof(float) * m * k) == 0);
  CHECK(memcmp(S1, S2, sizeof(float) * k) == 0);
  CHECK(memcmp(V1, V2, sizeof(float) * n * k) == 0);
  /* U and V optional */
  CHECK(fm_svd_randomized(&A, &o, NULL, S2, NULL, NULL) == FM_OK);
  CHECK(memcmp(S1, S2, sizeof(float) * k) == 0);

  /* argument errors, outputs untouched */
  fm_error err;
  fm_error_init(&err);
  o.k = 151;
  S2[0] = -7.0f;
  CHECK(fm_svd_randomized(&A, &o, U2, S2, V2, &err) == FM_ERR_ARG);
  CHECK(strstr(err.msg, "k = 151") != NULL);
  CHECK(S2[0] == -7.0f);
  o.k = 0;
  CHECK(fm_svd_randomized(&A, &o, U2, S2, V2, NULL) == FM_ERR_ARG);
  o.k = 5;
  CHECK(fm_svd_randomized(&A, &o, U2, NULL, V2, NULL) == FM_ERR_ARG);
  /* k == min(m, n): the sketch is the whole space */
  o.k = 150;
  float *Sf = malloc(sizeof(float) * 150);
  CHECK(fm_svd_randomized(&A, &o, NULL, Sf, NULL, NULL) == FM_OK);
  CHECK_NEAR(Sf[0] / S1[0], 1.0, 1e-4);
  free(Sf);
  fm_csr_free(&A);

  /* rank-deficient sparse matrix with empty rows and columns */
  random_csr(&A, 120, 90, 0.02);
  check_svd_against_dense(&A, 5, 3, 4, 0);
  fm_csr_free(&A);
  free(U1); free(S1); free(V1); free(U2); free(S2); free(V2);
}

static void test_svd_faults(void) {
  fm_csr A;
  random_csr(&A, 80, 60, 0.1);
  float U[80 * 6], S[6], V[60 * 6];
  fm_svd_opts o;
  fm_svd_opts_init(&o, 6);
  int ok = 0, nomem = 0;
  for (long i = 1; i < 200; i++) {
    fm_error err;
    fm_error_init(&err);
    fm_fault_malloc_after(i);
    fm_rc rc = fm_svd_randomized(&A, &o, U, S, V, &err);
    fm_fault_malloc_after(0);
    CHECK(rc == FM_OK || rc == FM_ERR_NOMEM);
    if (rc == FM_ERR_NOMEM) {
      nomem++;
      CHECK(strstr(err.msg, "out of memory") != NULL);
    } else {
      ok++;
      if (ok > 3) break; /* past the last allocation */
    }
  }
  CHECK(nomem >= 10);
  CHECK(ok >= 1);
  fm_csr_free(&A);
}

/* ---- top-k ---------------------------------------------------------------- */

typedef struct pair {
  float s;
  uint32_t i;
} pair;
static int pair_cmp(const void *a, const void *b) {
  const pair *x = a, *y = b;
  if (x->s != y->s) return x->s > y->s ? -1 : 1;
  return x->i < y->i ? -1 : x->i > y->i;
}

static void test_heap(void) {
  for (int round = 0; round < 50; round++) {
    int n = 1 + (int)(rnd() % 300), k = 1 + (int)(rnd() % 40);
    pair *all = malloc(sizeof(pair) * n);
    float sb[40];
    uint32_t ib[40];
    fm_topk t;
    fm_topk_init(&t, k, sb, ib);
    for (int i = 0; i < n; i++) {
      all[i].s = (float)(rnd() % 8); /* many ties */
      all[i].i = (uint32_t)i;
      fm_topk_push(&t, all[i].s, all[i].i);
    }
    /* the same pairs pushed in reverse order give the same result, because
     * ties break by index rather than by arrival */
    fm_topk t2;
    float sb2[40];
    uint32_t ib2[40];
    fm_topk_init(&t2, k, sb2, ib2);
    for (int i = n - 1; i >= 0; i--) fm_topk_push(&t2, all[i].s, all[i].i);
    fm_topk_sorted(&t);
    fm_topk_sorted(&t2);
    qsort(all, (size_t)n, sizeof *all, pair_cmp);
    int want = k < n ? k : n;
    CHECK(t.n == want && t2.n == want);
    for (int i = 0; i < want; i++) {
      CHECK(t.score[i] == all[i].s && t.idx[i] == all[i].i);
      CHECK(t2.score[i] == all[i].s && t2.idx[i] == all[i].i);
    }
    free(all);
  }
  /* NaN is dropped; k = 0 keeps nothing */
  float sb[3];
  uint32_t ib[3];
  fm_topk t;
  fm_topk_init(&t, 3, sb, ib);
  fm_topk_push(&t, NAN, 1);
  fm_topk_push(&t, 1.0f, 2);
  CHECK(t.n == 1);
  fm_topk_init(&t, 0, sb, ib);
  fm_topk_push(&t, 1.0f, 2);
  CHECK(t.n == 0);
}

static void check_dense(size_t nq, size_t nr, int d, int k, int ties) {
  float *Q = malloc(sizeof(float) * nq * d), *R = malloc(sizeof(float) * nr * d);
  for (size_t i = 0; i < nq * d; i++) Q[i] = ties ? (float)(rnd() % 3) : frnd();
  for (size_t i = 0; i < nr * d; i++) R[i] = ties ? (float)(rnd() % 3) : frnd();
  uint32_t *oi = malloc(sizeof(uint32_t) * nq * k);
  float *os = malloc(sizeof(float) * nq * k);
  fm_error err;
  fm_error_init(&err);
  CHECK(fm_topk_dense(Q, nq, R, nr, d, k, oi, os, &err) == FM_OK);
  pair *all = malloc(sizeof(pair) * nr);
  int bad = 0;
  for (size_t q = 0; q < nq; q++) {
    for (size_t r = 0; r < nr; r++) {
      double s = 0;
      for (int c = 0; c < d; c++) s += (double)Q[q * d + c] * R[r * d + c];
      all[r].s = (float)s;
      all[r].i = (uint32_t)r;
    }
    qsort(all, nr, sizeof *all, pair_cmp);
    for (int j = 0; j < k; j++) {
      if (ties) {
        /* small integers: exact in float, so ties must match exactly */
        if (oi[q * k + j] != all[j].i || os[q * k + j] != all[j].s) bad++;
      } else {
        /* allow swapped near-ties: compare scores */
        if (fabs(os[q * k + j] - all[j].s) > 1e-4) bad++;
        double s = 0;
        for (int c = 0; c < d; c++) s += (double)Q[q * d + c] * R[oi[q * k + j] * d + c];
        if (fabs(s - os[q * k + j]) > 1e-4) bad++;
      }
    }
  }
  CHECK(bad == 0);
  free(Q); free(R); free(oi); free(os); free(all);
}

static void test_dense(void) {
  check_dense(1, 1, 1, 1, 0);
  check_dense(10, 50, 8, 5, 0);
  check_dense(300, 5000, 16, 10, 0); /* neither a multiple of the block */
  check_dense(257, 4097, 4, 7, 1);   /* block edges, integer ties */
  check_dense(20, 30, 3, 30, 1);     /* k == nr */
  float Q[4] = {1, 0, 0, 1}, R[4] = {1, 0, 0, 1};
  uint32_t oi[6];
  float os[6];
  fm_error err;
  fm_error_init(&err);
  CHECK(fm_topk_dense(Q, 2, R, 2, 2, 3, oi, os, &err) == FM_ERR_ARG);
  CHECK(strstr(err.msg, "k = 3") != NULL);
  CHECK(fm_topk_dense(Q, 2, R, 2, 0, 1, oi, os, NULL) == FM_ERR_ARG);
  CHECK(fm_topk_dense(Q, 0, R, 2, 2, 1, oi, os, NULL) == FM_OK);
}

int main(void) {
  FM_RUN(test_builder);
  FM_RUN(test_products);
  FM_RUN(test_svd);
  FM_RUN(test_svd_faults);
  FM_RUN(test_heap);
  FM_RUN(test_dense);
  FM_TEST_EXIT();
}
